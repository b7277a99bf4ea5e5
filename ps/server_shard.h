// A server's shard of every table of the model. Pure logic: data in, data
// out; no MPI, no threads (the server loop drives it).
//
// The shard holds whichever rows the workers route to it (ShardOf in
// common/sharding.h); it never checks that routing. Because rows start at
// InitRow's values and the optimizers work per row (Adam's global step comes
// with each push), a row's value after a sequence of pushes is bit-identical
// whatever the number of servers.
//
// Rows are created by pushes. A pull of a row that does not exist returns
// its initial values (InitRow) and creates nothing, which is the value the
// row would have been created with: rows that are read but never trained
// (evaluation candidates, say) take no memory.
//
// Large tables (ShardPolicy; README "Large tables"):
//   - Limits: before a row is created (or a count of --min-count is added),
//     the bytes it would allocate (slab and index growth included) and the
//     row count are checked against the limits. Over a limit, the shard
//     throws InputError naming the server, the limit and what the row needs,
//     or, with `evict`, drops the least recently touched rows of that table
//     (1/32 of them, at least one) and goes on. Touches are ordered by a
//     tick that advances with every push (pulls record the current tick),
//     so under --sync the victims do not depend on timing. Dense blocks are
//     never evicted, expired or held back by admission.
//   - Admission (min_count > 1): a key's row is created at its min_count-th
//     sighting; a sighting is a push holding the key (workers send a key
//     once per batch). Before that, pushes to it are dropped and pulls
//     return its initial row.
//   - Expiry (expire_after E > 0): EndEpoch(e) drops the rows (and pending
//     admission counts) last touched in an epoch <= e - E. Pulls and pushes
//     of training touch a row; evaluation pulls do not.
//
// Thread safety: none; one thread (the server loop) owns a shard.
#ifndef RECSYS_PS_SERVER_SHARD_H_
#define RECSYS_PS_SERVER_SHARD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "ps/admission.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"

namespace recsys {

struct ShardPolicy {
  std::uint64_t max_bytes = 0;  // --max-memory-per-server (0: none): table and admission bytes
  std::uint64_t max_rows = 0;   // --max-rows-per-server (0: none)
  bool evict = false;           // --on-table-full evict (else error)
  int min_count = 1;            // --min-count
  int expire_after = 0;         // --expire-after (0: never)
  std::string who = "this server";  // names the server in errors ("server rank 3")
};

class ServerShard {
 public:
  // specs[i].id must be i (a broken order is a bug: RECSYS_CHECK). Throws
  // InputError for a bad optimizer config (see MakeOptimizer) or a bad
  // policy (min_count outside [1, 255], negative expire_after).
  ServerShard(const std::vector<TableSpec>& specs, std::uint64_t seed, const OptimizerConfig& optimizer,
              const ShardPolicy& policy = ShardPolicy());
  ServerShard(const ServerShard&) = delete;
  ServerShard& operator=(const ServerShard&) = delete;

  // Writes rows of keys[0..n) of `table` into out (n * width floats): a
  // missing row reads as its initial values and is not created. Marks the
  // rows touched if `touch` (training pulls; evaluation pulls pass false).
  // `table` and the keys come off the wire, so they are checked: an unknown
  // table, or a key of a dense block that is not MakeKey(kFieldDense, r)
  // with r < dense_rows(), throws InputError (rows before the bad key have
  // been served).
  void Pull(TableId table, const Key* keys, std::size_t n, Real* out, bool touch = true);
  // Applies grads (n * width floats) to rows of keys[0..n) of `table`, in
  // order, creating missing rows first (subject to admission and the
  // limits). A key repeated in one push gets each of its gradients applied
  // in turn (workers sum them first). Errors as for Pull, plus InputError
  // when a limit is reached without `evict` (gradients before that key have
  // been applied). `step` is the job's global step of the push (the
  // optimizer's Update; 0: not known).
  void Push(TableId table, const Key* keys, std::size_t n, const Real* grads, std::uint64_t step = 0);

  // Restores a row read from a checkpoint: sets its first n floats (width
  // weights, then optimizer state; n <= stride(table)), leaves the rest at
  // their initial values, and records `epoch` as its last touch. The limits
  // apply. The caller has checked table and n.
  void Restore(TableId table, Key key, const Real* values, std::size_t n, std::uint32_t epoch = 0);
  // Restores a pending admission count (count >= 1) from a checkpoint;
  // ignored when this run does not count admissions (--min-count 1) or for
  // a key that has a row.
  void RestorePending(TableId table, Key key, int count, std::uint32_t epoch);

  // The epoch that touches record from now on (training of `epoch`).
  void SetEpoch(std::uint32_t epoch);
  // End of epoch `epoch`: drops rows and pending counts not touched in the
  // last expire_after epochs. Returns the rows dropped (0 without expiry).
  std::size_t EndEpoch(std::uint32_t epoch);

  // Floats per row: width weights then the optimizer state.
  int stride(TableId id) const { return tables_.at(id).stride(); }
  std::size_t num_tables() const { return tables_.size(); }
  const EmbeddingTable& table(TableId id) const { return tables_.at(id); }
  // The admission counter of a table, or nullptr (min_count 1, dense block).
  const AdmissionCounter* admission(TableId id) const { return admission_.at(id).get(); }
  int width(TableId id) const { return tables_.at(id).width(); }
  const ShardPolicy& policy() const { return policy_; }

  // Rows held over all tables; bytes of the tables and of the admission
  // counters (what max_bytes bounds); the raw bytes of the rows (key, row,
  // optimizer state).
  std::size_t total_rows() const;
  std::size_t total_bytes() const;
  std::size_t table_bytes() const;
  std::size_t admission_bytes() const;
  std::size_t raw_bytes() const;
  std::size_t pending_keys() const;
  // Since construction: rows evicted, rows expired, pushed rows dropped
  // before admission, pending counts forgotten to make room.
  std::uint64_t rows_evicted() const { return rows_evicted_; }
  std::uint64_t rows_expired() const { return rows_expired_; }
  std::uint64_t pushes_dropped() const { return pushes_dropped_; }
  std::uint64_t pending_forgotten() const { return pending_forgotten_; }

 private:
  // The table `id`, or InputError naming `op` if there is none.
  EmbeddingTable& TableOrThrow(TableId id, const char* op);
  // Makes sure one more row of `t` fits the limits: evicts, or throws.
  void MakeRoomForRow(EmbeddingTable& t);
  // Makes sure one more pending count of table `id` fits max_bytes.
  void MakeRoomForCount(TableId id);
  // The sparse table with the most rows (nullptr if none has rows).
  EmbeddingTable* LargestSparseTable();
  // Advances the recency tick (one per push).
  void Tick();

  // Constant after construction.
  ShardPolicy policy_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<Optimizer> dense_optimizer_;  // optimizer_ with lr = dense_lr
  // Indexed by TableId. The tables' rows change; the vectors do not.
  std::vector<EmbeddingTable> tables_;
  std::vector<std::unique_ptr<AdmissionCounter>> admission_;

  std::uint32_t epoch_ = 0;
  std::uint32_t tick_ = 0;
  std::uint64_t rows_evicted_ = 0;
  std::uint64_t rows_expired_ = 0;
  std::uint64_t pushes_dropped_ = 0;
  std::uint64_t pending_forgotten_ = 0;
  // Scratch of Push: which keys of the request had no row.
  std::vector<bool> missing_;
};

}  // namespace recsys

#endif  // RECSYS_PS_SERVER_SHARD_H_
