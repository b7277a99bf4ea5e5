// One shard of one table on a server: rows and their optimizer state stored
// contiguously in a slab, behind an open-addressing hash index from key to
// slot (no node-per-row containers). Rows are created on first touch with
// InitRow's deterministic values.
#ifndef RECSYS_PS_EMBEDDING_TABLE_H_
#define RECSYS_PS_EMBEDDING_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "ps/optimizer.h"

namespace recsys {

class EmbeddingTable {
 public:
  // `optimizer` must outlive the table.
  EmbeddingTable(const TableSpec& spec, std::uint64_t seed, const Optimizer* optimizer);
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;
  EmbeddingTable(EmbeddingTable&&) = default;

  // Copies the row of `key` into out[0..width), creating it if new.
  void Pull(Key key, Real* out);
  // Applies the optimizer to the row of `key` with grad[0..width), creating
  // the row first if new.
  void Push(Key key, const Real* grad);
  // The row of `key`, or nullptr if it was never touched.
  const Real* Find(Key key) const;

  std::size_t size() const { return num_rows_; }
  int width() const { return spec_.width; }
  const TableSpec& spec() const { return spec_; }
  // Bytes held by the slab and the index.
  std::size_t bytes() const;

  // Visits every row: fn(key, const Real* row, const Real* state). For
  // checkpoints and reports. Order is unspecified.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (std::size_t i = 0; i < num_rows_; ++i) {
      const Real* r = slab_.data() + i * stride_;
      fn(keys_[i], r, r + spec_.width);
    }
  }

 private:
  // Returns the slab index of `key`, creating the row if needed.
  std::size_t FindOrCreate(Key key);
  void Grow();

  // Constant after construction.
  TableSpec spec_;
  std::uint64_t seed_;
  const Optimizer* optimizer_;
  int stride_;  // width + optimizer state, in floats

  // The slab: row i's weights then its state at slab_[i * stride_].
  std::vector<Real> slab_;
  std::vector<Key> keys_;  // key of slab row i
  std::size_t num_rows_ = 0;
  // Open addressing, linear probing, power-of-two capacity; entries are
  // slab index + 1 (0 = empty).
  std::vector<std::uint32_t> index_;
};

}  // namespace recsys

#endif  // RECSYS_PS_EMBEDDING_TABLE_H_
