// A server's shard of every table of the model. Pure logic: data in, data
// out; no MPI, no threads (the server loop drives it).
//
// The shard holds whichever rows the workers route to it (ShardOf in
// common/sharding.h); it never checks that routing. Because rows start at
// InitRow's values and the optimizers are lazy and per row, a row's value
// after a sequence of pushes is bit-identical whatever the number of servers.
//
// Thread safety: none; one thread (the server loop) owns a shard.
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
  // specs[i].id must be i (a broken order is a bug: RECSYS_CHECK). Throws
  // InputError for a bad optimizer config (see MakeOptimizer).
  ServerShard(const std::vector<TableSpec>& specs, std::uint64_t seed, const OptimizerConfig& optimizer);
  ServerShard(const ServerShard&) = delete;
  ServerShard& operator=(const ServerShard&) = delete;

  // Writes rows of keys[0..n) of `table` into out (n * width floats),
  // creating missing rows. `table` and the keys come off the wire, so they
  // are checked: an unknown table, or a key of a dense block that is not
  // MakeKey(kFieldDense, r) with r < dense_rows(), throws InputError (rows
  // before the bad key have been served).
  void Pull(TableId table, const Key* keys, std::size_t n, Real* out);
  // Applies grads (n * width floats) to rows of keys[0..n) of `table`, in
  // order, creating missing rows first. A key repeated in one push gets each
  // of its gradients applied in turn (workers sum them first). Errors as for
  // Pull (gradients before the bad key have been applied).
  void Push(TableId table, const Key* keys, std::size_t n, const Real* grads);

  // Restores a row read from a checkpoint: sets its first n floats (width
  // weights, then optimizer state; n <= stride(table)) and leaves the rest at
  // their initial values. The caller has checked table and n.
  void Restore(TableId table, Key key, const Real* values, std::size_t n) {
    tables_.at(table).Insert(key, values, n);
  }
  // Floats per row: width weights then the optimizer state.
  int stride(TableId id) const { return tables_.at(id).stride(); }

  std::size_t num_tables() const { return tables_.size(); }
  const EmbeddingTable& table(TableId id) const { return tables_.at(id); }
  int width(TableId id) const { return tables_.at(id).width(); }
  // Rows held over all tables, and the bytes they take.
  std::size_t total_rows() const;
  std::size_t total_bytes() const;

 private:
  // The table `id`, or InputError naming `op` if there is none.
  EmbeddingTable& TableOrThrow(TableId id, const char* op);

  // Constant after construction.
  std::unique_ptr<Optimizer> optimizer_;
  // Indexed by TableId. The tables' rows change; the vector does not.
  std::vector<EmbeddingTable> tables_;
};

}  // namespace recsys

#endif  // RECSYS_PS_SERVER_SHARD_H_
