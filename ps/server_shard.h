// A server's shard of every table of the model. Pure logic: data in, data
// out; no MPI, no threads (the server loop drives it).
#ifndef RECSYS_PS_SERVER_SHARD_H_
#define RECSYS_PS_SERVER_SHARD_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"

namespace recsys {

class ServerShard {
 public:
  ServerShard(const std::vector<TableSpec>& specs, std::uint64_t seed, const OptimizerConfig& optimizer);
  ServerShard(const ServerShard&) = delete;
  ServerShard& operator=(const ServerShard&) = delete;

  // Writes rows of keys[0..n) of `table` into out (n * width floats),
  // creating missing rows. Throws InputError for an unknown table.
  void Pull(TableId table, const Key* keys, std::size_t n, Real* out);
  // Applies grads (n * width floats) to rows of keys[0..n) of `table`.
  void Push(TableId table, const Key* keys, std::size_t n, const Real* grads);

  std::size_t num_tables() const { return tables_.size(); }
  const EmbeddingTable& table(TableId id) const { return tables_.at(id); }
  int width(TableId id) const { return tables_.at(id).width(); }
  // Rows held over all tables, and the bytes they take.
  std::size_t total_rows() const;
  std::size_t total_bytes() const;

 private:
  // Constant after construction.
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<EmbeddingTable> tables_;  // indexed by TableId
};

}  // namespace recsys

#endif  // RECSYS_PS_SERVER_SHARD_H_
