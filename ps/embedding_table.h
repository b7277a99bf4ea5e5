// One shard of one table on a server: rows and their optimizer state stored
// contiguously in a slab, behind an open-addressing hash index from key to
// slot (no node-per-row containers). Rows are created on first touch with
// InitRow's deterministic values, so a row's value depends only on (seed,
// table, key) and the gradients pushed to it, never on the server holding it.
//
// Memory: per row, 8 bytes of key, 4 * (width + optimizer state) bytes of
// slab, and 4 / load bytes of index (load <= 0.7, and > 0.35 once past the
// smallest index). The slab grows by 1.5x, so at most a third of it is spare
// (Reserve avoids even that).
//
// Thread safety: none. A table belongs to one ServerShard, driven by one
// thread. Pointers returned by Find are invalidated by the next Pull, Push or
// Reserve (the slab may move).
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
  // The most rows a table can hold: the index stores slab index + 1 in 32 bits.
  static constexpr std::size_t kMaxRows = 0xffffffffULL;

  // `optimizer` must outlive the table. spec.width must be > 0.
  EmbeddingTable(const TableSpec& spec, std::uint64_t seed, const Optimizer* optimizer);
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;
  EmbeddingTable(EmbeddingTable&&) = default;

  // Copies the row of `key` into out[0..width), creating it if new.
  void Pull(Key key, Real* out);
  // Applies the optimizer to the row of `key` with grad[0..width), creating
  // the row first if new. `grad` must not point into the table.
  void Push(Key key, const Real* grad);
  // The row of `key` (width weights, then the optimizer state), or nullptr if
  // it was never touched. Valid until the next non-const call.
  const Real* Find(Key key) const;
  // Makes room for `rows` rows in total, so that inserting up to that many
  // allocates nothing more. For restoring a checkpoint or a known vocabulary.
  void Reserve(std::size_t rows);

  // ---- Addition for checkpoints (ps/checkpoint.h; owner: checkpoint work) ----
  // Sets the first n floats (n <= stride()) of the row of `key` (width
  // weights, then the optimizer state) to values[0..n), creating the row
  // first if new; floats past n keep their current (or initial) values.
  // `values` must not point into the table.
  void Insert(Key key, const Real* values, std::size_t n);
  // ---- End of addition ----

  std::size_t size() const { return num_rows_; }
  int width() const { return spec_.width; }
  // Floats per row in the slab: width weights then the optimizer state.
  int stride() const { return stride_; }
  const TableSpec& spec() const { return spec_; }
  // Bytes allocated for the slab, the keys and the index (capacity, not size).
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
  // Returns the index_ slot holding `key`, or the empty slot where it would
  // go. index_ must be non-empty.
  std::size_t Probe(Key key) const;
  // Appends a new row for `key` to the slab and returns its slab index.
  std::size_t AppendRow(Key key);
  // Grows index_ to at least `capacity` slots (a power of two) and rehashes.
  void Rehash(std::size_t capacity);
  // Index capacity (power of two) that keeps `rows` rows within the load
  // factor.
  static std::size_t IndexCapacityFor(std::size_t rows);

  // Constant after construction.
  TableSpec spec_;
  std::uint64_t seed_;
  const Optimizer* optimizer_;
  int stride_;  // width + optimizer state, in floats

  // The slab: row i's weights then its state at slab_[i * stride_];
  // slab_.size() == num_rows_ * stride_, and likewise keys_.
  std::vector<Real> slab_;
  std::vector<Key> keys_;  // key of slab row i
  std::size_t num_rows_ = 0;
  // Open addressing, linear probing, power-of-two capacity (or empty before
  // the first row), load <= 0.7; entries are slab index + 1 (0 = empty).
  std::vector<std::uint32_t> index_;
  std::size_t index_mask_ = 0;  // index_.size() - 1 once non-empty
};

}  // namespace recsys

#endif  // RECSYS_PS_EMBEDDING_TABLE_H_
