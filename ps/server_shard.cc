#include "ps/server_shard.h"

#include <algorithm>

#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

// A dense block's rows are MakeKey(kFieldDense, 0..rows-1). Any other key
// would create a row that no worker reads and that no checkpoint can place.
void CheckDenseKey(const EmbeddingTable& table, Key key, const char* op) {
  const TableSpec& spec = table.spec();
  if (FieldOf(key) != kFieldDense || ValueOf(key) >= static_cast<std::uint64_t>(spec.dense_rows())) {
    throw InputError(Concat(op, ": key ", key, " is not a row of dense block '", spec.name, "' (table ",
                            spec.id, ", ", spec.dense_rows(), " rows)"));
  }
}

// Recency ticks are halved before they reach the top bit, so they never
// wrap (the order of rows survives, up to new ties).
constexpr std::uint32_t kTickLimit = 0x80000000u;

std::unique_ptr<Optimizer> MakeDenseOptimizer(OptimizerConfig config) {
  if (config.dense_lr != 0.0f) config.lr = config.dense_lr;
  // A dense block gets a gradient at every step: it misses none, and
  // --adam-mode dense would only mistake asynchronous workers' out-of-order
  // steps for missed ones (optimizer.h).
  config.adam_mode = "lazy";
  return MakeOptimizer(config);
}

}  // namespace

ServerShard::ServerShard(const std::vector<TableSpec>& specs, std::uint64_t seed, const OptimizerConfig& optimizer,
                         const ShardPolicy& policy)
    : policy_(policy), optimizer_(MakeOptimizer(optimizer)), dense_optimizer_(MakeDenseOptimizer(optimizer)) {
  if (policy_.min_count < 1 || policy_.min_count > AdmissionCounter::kMaxMinCount) {
    throw InputError(Concat("--min-count must be in [1, ", AdmissionCounter::kMaxMinCount, "], got ", policy_.min_count));
  }
  if (policy_.expire_after < 0) throw InputError(Concat("--expire-after must be >= 0, got ", policy_.expire_after));
  // Reserved up front so that no table is moved after the next is added.
  tables_.reserve(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    RECSYS_CHECK(specs[i].id == i, "table '", specs[i].name, "' at position ", i, " has id ", specs[i].id);
    RowTracking tracking;
    if (!specs[i].dense()) {
      tracking.epochs = policy_.expire_after > 0;
      tracking.recency = policy_.evict;
    }
    tables_.emplace_back(specs[i], seed, specs[i].dense() ? dense_optimizer_.get() : optimizer_.get(), tracking);
    admission_.push_back(policy_.min_count > 1 && !specs[i].dense()
                             ? std::make_unique<AdmissionCounter>(policy_.min_count, policy_.expire_after > 0)
                             : nullptr);
  }
}

EmbeddingTable& ServerShard::TableOrThrow(TableId id, const char* op) {
  if (id >= tables_.size()) {
    throw InputError(Concat(op, ": unknown table id ", id, " (this server holds ", tables_.size(), " tables)"));
  }
  return tables_[id];
}

void ServerShard::Pull(TableId table, const Key* keys, std::size_t n, Real* out, bool touch) {
  EmbeddingTable& t = TableOrThrow(table, "pull");
  t.SetClock(epoch_, tick_);
  const std::size_t width = static_cast<std::size_t>(t.width());
  if (!t.spec().dense()) {
    t.PeekMany(keys, n, out, touch);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    CheckDenseKey(t, keys[i], "pull");
    t.Peek(keys[i], out + i * width, touch);
  }
}

void ServerShard::Push(TableId table, const Key* keys, std::size_t n, const Real* grads, std::uint64_t step) {
  EmbeddingTable& t = TableOrThrow(table, "push");
  Tick();
  t.SetClock(epoch_, tick_);
  t.SetStep(step);
  AdmissionCounter* admission = admission_[table].get();
  const bool limited = policy_.max_bytes > 0 || policy_.max_rows > 0;
  const std::size_t width = static_cast<std::size_t>(t.width());
  const bool dense = t.spec().dense();
  // Without limits no row is removed while a push is applied, so the rows
  // present can be located and updated in one prefetching pass first; the
  // keys that were missing then go through admission and creation in order.
  // (With limits, creating a row may evict others: one key at a time.)
  const bool batched = !dense && !limited;
  if (batched && t.PushManyIfPresent(keys, n, grads, &missing_) == 0) return;
  for (std::size_t i = 0; i < n; ++i) {
    if (dense) CheckDenseKey(t, keys[i], "push");
    const Real* grad = grads + i * width;
    // (A key repeated in one request may have been created by its first
    // copy after the batched pass marked it missing: look again.)
    if ((batched && !missing_[i]) || t.PushIfPresent(keys[i], grad)) continue;
    if (admission != nullptr) {
      if (admission->Count(keys[i]) == 0 && policy_.max_bytes > 0) MakeRoomForCount(table);
      if (!admission->See(keys[i], epoch_)) {
        ++pushes_dropped_;
        continue;
      }
    }
    if (limited) MakeRoomForRow(t);
    t.Push(keys[i], grad);
  }
}

void ServerShard::Restore(TableId table, Key key, const Real* values, std::size_t n, std::uint32_t epoch) {
  EmbeddingTable& t = tables_.at(table);
  t.SetClock(epoch_, tick_);
  if ((policy_.max_bytes > 0 || policy_.max_rows > 0) && !t.Contains(key)) MakeRoomForRow(t);
  t.Insert(key, values, n, epoch);
}

void ServerShard::RestorePending(TableId table, Key key, int count, std::uint32_t epoch) {
  AdmissionCounter* admission = admission_.at(table).get();
  if (admission == nullptr || tables_[table].Contains(key)) return;
  if (admission->Count(key) == 0 && policy_.max_bytes > 0) MakeRoomForCount(table);
  admission->Restore(key, count, epoch);
}

void ServerShard::SetEpoch(std::uint32_t epoch) { epoch_ = epoch; }

std::size_t ServerShard::EndEpoch(std::uint32_t epoch) {
  const int e = static_cast<int>(epoch);
  if (policy_.expire_after <= 0 || e - policy_.expire_after + 1 <= 0) return 0;
  // Kept: rows touched in epochs e - E + 1 .. e.
  const auto oldest_kept = static_cast<std::uint32_t>(e - policy_.expire_after + 1);
  std::size_t dropped = 0;
  for (std::size_t id = 0; id < tables_.size(); ++id) {
    if (tables_[id].spec().dense()) continue;
    dropped += tables_[id].DropTouchedBefore(oldest_kept);
    if (admission_[id]) admission_[id]->DropSeenBefore(oldest_kept);
  }
  rows_expired_ += dropped;
  return dropped;
}

void ServerShard::Tick() {
  if (++tick_ < kTickLimit) return;
  for (EmbeddingTable& t : tables_) t.HalveTicks();
  tick_ >>= 1;
}

EmbeddingTable* ServerShard::LargestSparseTable() {
  EmbeddingTable* best = nullptr;
  for (EmbeddingTable& t : tables_) {
    if (!t.spec().dense() && t.size() > 0 && (best == nullptr || t.size() > best->size())) best = &t;
  }
  return best;
}

void ServerShard::MakeRoomForRow(EmbeddingTable& t) {
  for (int round = 0;; ++round) {
    const std::size_t rows = total_rows();
    const bool rows_over = policy_.max_rows > 0 && rows + 1 > policy_.max_rows;
    // Bytes change only when something grows: skip the sum otherwise.
    const std::size_t growth = policy_.max_bytes > 0 ? t.GrowthBytes() : 0;
    const std::size_t bytes = growth > 0 ? total_bytes() : 0;
    const bool bytes_over = growth > 0 && bytes + growth > policy_.max_bytes;
    if (!rows_over && !bytes_over) return;

    EmbeddingTable* victim = (!t.spec().dense() && t.size() > 0) ? &t : LargestSparseTable();
    if (!policy_.evict || victim == nullptr || round > 64) {
      const std::string what =
          rows_over ? Concat("--max-rows-per-server ", policy_.max_rows, " is reached (", rows,
                             " rows held); a new row of table '", t.spec().name, "' needs one more")
                    : Concat("--max-memory-per-server ", policy_.max_bytes, " bytes would be exceeded: a new row of table '",
                             t.spec().name, "' needs ", growth, " more bytes (slab or index growth) on top of the ",
                             bytes, " held (", rows, " rows), ", bytes + growth, " in all");
      throw InputError(Concat(policy_.who, ": ", what,
                              policy_.evict ? " and there is no row left to evict"
                                            : ". Raise the limit, use more servers, or pass --on-table-full evict"));
    }
    rows_evicted_ += victim->EvictLeastRecent(std::max<std::size_t>(1, victim->size() / 32));
    // Evicting from another table frees bytes only as whole chunks.
    if (victim != &t) victim->Shrink();
  }
}

void ServerShard::MakeRoomForCount(TableId id) {
  AdmissionCounter& admission = *admission_[id];
  const std::size_t growth = admission.GrowthBytes();
  if (growth == 0) return;
  const std::size_t bytes = total_bytes();
  if (bytes + growth <= policy_.max_bytes) return;
  if (policy_.evict) {
    // Pending counts are the cheapest state to lose: forget them all (their
    // keys start counting again) rather than evict trained rows.
    pending_forgotten_ += admission.size();
    admission.Clear();
    if (total_bytes() + admission.GrowthBytes() <= policy_.max_bytes) return;
  }
  throw InputError(Concat(policy_.who, ": --max-memory-per-server ", policy_.max_bytes,
                          " bytes would be exceeded: counting a new key of table '", tables_[id].spec().name,
                          "' for --min-count needs ", growth, " more bytes on top of the ", bytes, " held (",
                          total_rows(), " rows, ", pending_keys(), " pending keys)",
                          policy_.evict ? "" : ". Raise the limit, use more servers, or pass --on-table-full evict"));
}

std::size_t ServerShard::total_rows() const {
  std::size_t rows = 0;
  for (const EmbeddingTable& t : tables_) rows += t.size();
  return rows;
}

std::size_t ServerShard::table_bytes() const {
  std::size_t bytes = 0;
  for (const EmbeddingTable& t : tables_) bytes += t.bytes();
  return bytes;
}

std::size_t ServerShard::admission_bytes() const {
  std::size_t bytes = 0;
  for (const auto& a : admission_) bytes += a ? a->bytes() : 0;
  return bytes;
}

std::size_t ServerShard::total_bytes() const { return table_bytes() + admission_bytes(); }

std::size_t ServerShard::raw_bytes() const {
  std::size_t bytes = 0;
  for (const EmbeddingTable& t : tables_) bytes += t.raw_bytes();
  return bytes;
}

std::size_t ServerShard::pending_keys() const {
  std::size_t n = 0;
  for (const auto& a : admission_) n += a ? a->size() : 0;
  return n;
}

}  // namespace recsys
