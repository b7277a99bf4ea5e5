// A worker-side cache of hot embedding rows (--cache-rows N; README, "Hot-row
// cache"). The most frequently pulled keys keep their rows on the worker, so
// a training batch pulls only the rows it does not hold fresh copies of.
//
// Freshness. A row fetched from its server for the batch of step s may serve
// the batches of steps s+1 .. s+refresh_steps-1; the batch of step
// s+refresh_steps pulls it again (a "refresh"). So every row a batch reads is
// at most refresh_steps-1 steps older than its server copy would have been,
// and a row in use is refreshed at least every refresh_steps steps (the run
// passes --staleness). Rows no batch asks for are not refreshed: nothing
// reads them. With refresh_steps <= 1 nothing could ever be served from the
// cache; the worker then does not create one.
//
// The worker's own pushes are not applied to its cached rows: the update a
// server applies depends on optimizer state (AdaGrad's sums, Adam's moments)
// that lives only on the server, so a local copy of it would be a guess. The
// gradients of cached rows go to the servers unchanged, and the refresh
// brings the updated rows back within the bound above.
//
// Admission and eviction (bounded work, bounded memory). Every training
// lookup counts the key in a Count-Min sketch (4 saturating 16-bit counters
// per key, all in one 64-byte block; 16 counters per cached row, 32 bytes),
// all halved after every 10 * capacity counts (at least 1024) so the
// estimate follows the recent past, as in TinyLFU. A missed
// key is admitted while the cache has free slots; when it is full, 8 slots
// are sampled (a deterministic stream) and the one with the lowest estimated
// frequency is the victim, replaced only if the newcomer's estimate is
// strictly higher. Rows a batch still waits for are never victims.
//
// Usage: Prepare(keys) splits a batch's keys into hits and the keys to pull
// (Plan::pull_keys, which include every key whose admission or refresh needs
// its row); once that pull is done, Complete(plan, pulled, rows) assembles
// the batch's rows and stores the pulled rows that were admitted. Plans must
// complete in the order they were prepared (the worker's pipeline does).
// Dense blocks are never cached: the pulled ones are passed through, and a
// batch of a model with dense blocks always pulls at least one key so that
// its dense blocks come with it.
//
// Not thread-safe; one per worker.
#ifndef RECSYS_WORKER_ROW_CACHE_H_
#define RECSYS_WORKER_ROW_CACHE_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/table_spec.h"
#include "common/types.h"
#include "worker/ps_client.h"

namespace recsys {

class RowCache {
 public:
  // What to pull for one batch, and where the rows go. Owned by the caller;
  // pull_keys must stay alive until the pull of them is done.
  struct Plan {
    std::uint64_t step = 0;
    std::vector<Key> pull_keys;          // keys to pull from the servers
    std::vector<std::int32_t> pull_row;  // per pulled key: its row in the batch
    std::vector<std::int32_t> pull_slot; // per pulled key: cache slot to store it in, or -1
    std::vector<std::pair<std::int32_t, std::int32_t>> hits;  // (row in the batch, cache slot)
    std::size_t batch_keys = 0;
  };

  // `tables` are the model's tables (the sparse ones are cached); capacity
  // >= 1 rows; refresh_steps >= 2.
  RowCache(std::vector<TableSpec> tables, std::size_t capacity, int refresh_steps);
  RowCache(const RowCache&) = delete;
  RowCache& operator=(const RowCache&) = delete;

  // Plans the training batch with distinct keys `keys` as the next step.
  void Prepare(const std::vector<Key>& keys, Plan* plan);
  // `pulled` holds the rows of plan.pull_keys (as PsClient::Pull fills them);
  // shapes *rows for the batch's keys and fills it: pulled rows, cached rows,
  // and the dense blocks (moved out of *pulled). Stores admitted rows.
  void Complete(const Plan& plan, ParamBuffers* pulled, ParamBuffers* rows);

  // Lookups of training keys, and how many were served from the cache,
  // since creation.
  std::uint64_t lookups() const { return lookups_; }
  std::uint64_t hits() const { return hits_; }
  std::size_t size() const { return used_; }
  std::size_t capacity() const { return capacity_; }
  // Whether `key` has a slot (fresh or not, with or without its row yet). For tests.
  bool Contains(Key key) const;
  // The sketch's estimate of how often `key` was looked up lately. For tests.
  std::uint32_t Frequency(Key key) const;

 private:
  static constexpr int kDepth = 4;    // counters per key
  static constexpr int kBlock = 32;   // counters per sketch block (64 bytes)
  static constexpr int kVictimSamples = 8;
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};

  struct SlotInfo {
    Key key = 0;
    std::uint64_t fetched = 0;       // step whose pull (re)filled the row
    std::uint64_t pinned_until = 0;  // last step whose plan reads or fills it
  };

  // `h` is the key's hash (Hash in row_cache.cc).
  void Count(std::uint64_t h);
  std::uint32_t Estimate(std::uint64_t h) const;
  // The slot holding `key` (of hash h), or -1.
  std::int32_t Find(Key key, std::uint64_t h) const;
  void IndexInsert(Key key, std::int32_t slot);
  void IndexErase(Key key);
  // A slot for `key` (not cached), evicting if the policy says so; -1 if not admitted.
  std::int32_t Admit(Key key, std::uint64_t step);

  // Constant after construction.
  const std::vector<TableSpec> tables_;
  const std::size_t capacity_;
  const std::uint64_t refresh_steps_;
  bool has_dense_ = false;

  // Rows: per table, capacity_ * width floats (empty for dense blocks).
  std::vector<std::vector<Real>> rows_;
  std::vector<SlotInfo> slots_;
  std::size_t used_ = 0;
  // Open addressing (linear probing, backward-shift deletion): key -> slot,
  // -1 for an empty bucket. At most half full.
  struct Bucket {
    Key key = 0;
    std::int32_t slot = -1;
  };
  std::vector<Bucket> index_;
  std::size_t index_mask_ = 0;

  // Count-Min sketch in blocks of kBlock counters: a key's kDepth counters
  // are all in one block (one from each quarter), so counting a key touches
  // one cache line, not kDepth.
  std::vector<std::uint16_t> sketch_;
  std::size_t sketch_mask_ = 0;
  std::uint64_t counted_ = 0;   // counts since the last halving
  std::uint64_t age_every_ = 0;

  SplitMix64 victim_rng_{0x5eedcace5eedULL};
  std::uint64_t next_step_ = 0;  // step of the next Prepare
  std::uint64_t completed_ = 0;  // plans completed (they complete in order)
  std::uint64_t lookups_ = 0;
  std::uint64_t hits_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_WORKER_ROW_CACHE_H_
