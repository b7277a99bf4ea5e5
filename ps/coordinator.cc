#include "ps/coordinator.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/data/item_universe.h"
#include "common/error.h"
#include "common/keys.h"
#include "common/log.h"
#include "ps/checkpoint.h"
#include "ps/neumf_pretrain.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void SendCommand(Transport& transport, int dest, Command::Kind kind, int epoch, std::int64_t steps = 0) {
  Command c;
  c.kind = kind;
  c.epoch = epoch;
  c.steps = steps;
  SendControl(transport, dest, kTagCommand, c);
}

std::string FormatLine(const EpochResult& r) {
  std::string metrics;
  for (std::size_t i = 0; i < r.metrics.ks.size(); ++i) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  HR@%d %.4f  NDCG@%d %.4f", r.metrics.ks[i], r.metrics.HitRatio(i),
                  r.metrics.ks[i], r.metrics.Ndcg(i));
    metrics += buf;
  }
  if (r.validation.users > 0) {
    const std::size_t k = SelectionCutoff(r.validation.ks);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  (valid HR@%d %.4f NDCG@%d %.4f)", r.validation.ks[k], r.validation.HitRatio(k),
                  r.validation.ks[k], r.validation.Ndcg(k));
    metrics += buf;
  }
  char head[64];
  std::snprintf(head, sizeof(head), "epoch %3d  loss %.4f", r.epoch, r.loss);
  char tail[128];
  std::snprintf(tail, sizeof(tail), "  users %lld  samples/s %.0f  time %.2fs (train %.2fs, eval %.2fs)",
                static_cast<long long>(r.metrics.users), r.samples_per_second, r.train_seconds + r.eval_seconds,
                r.train_seconds, r.eval_seconds);
  char cache[96] = "";
  if (r.totals.cache_lookups > 0 && r.examples > 0) {
    std::snprintf(cache, sizeof(cache), "  cache hits %.1f%%  pulled %.0f B/sample",
                  100.0 * static_cast<double>(r.totals.cache_hits) / static_cast<double>(r.totals.cache_lookups),
                  static_cast<double>(r.pulled_bytes) / static_cast<double>(r.examples));
  }
  return std::string(head) + metrics + tail + cache;
}

// The end-of-run report on the servers: load balance, and the CPU time of
// the ranks that mostly wait (the coordinator, the servers), which shows
// that waiting ranks sleep instead of spinning.
std::string DescribeServers(const std::vector<ServerStats>& servers, double run_start) {
  std::uint64_t max_keys = 0, sum_keys = 0, max_bytes = 0, sum_bytes = 0;
  double cpu = 0;
  for (const auto& s : servers) {
    max_keys = std::max(max_keys, s.keys);
    sum_keys += s.keys;
    max_bytes = std::max(max_bytes, s.pull_bytes + s.push_bytes);
    sum_bytes += s.pull_bytes + s.push_bytes;
    cpu += s.cpu_seconds;
  }
  const double n = static_cast<double>(servers.size());
  const double wall = Now() - run_start;
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "servers: %zu, %llu keys in all, imbalance (max/mean) keys %.2f, traffic %.2f; "
                "cpu per server %.2fs, coordinator cpu %.2fs, over %.2fs wall",
                servers.size(), static_cast<unsigned long long>(sum_keys),
                sum_keys ? static_cast<double>(max_keys) * n / static_cast<double>(sum_keys) : 0.0,
                sum_bytes ? static_cast<double>(max_bytes) * n / static_cast<double>(sum_bytes) : 0.0, cpu / n,
                CpuSeconds(), wall);
  return buf;
}

std::string Mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Max over mean of f over the servers (0 when the sum is 0).
template <typename F>
double Imbalance(const std::vector<ServerStats>& servers, F f) {
  double max = 0, sum = 0;
  for (const auto& s : servers) {
    const double v = static_cast<double>(f(s));
    max = std::max(max, v);
    sum += v;
  }
  return sum > 0 ? max * static_cast<double>(servers.size()) / sum : 0.0;
}

// The servers' memory at an epoch's end: keys and bytes with their
// imbalance, bytes per row against the raw bytes, peak resident memory, and
// what admission, expiry and eviction did (README "Large tables").
std::string DescribeServerMemory(const std::vector<ServerStats>& servers) {
  std::uint64_t keys = 0, bytes = 0, raw = 0, peak = 0, expired = 0, evicted = 0, pending = 0, admission = 0,
                dropped = 0;
  for (const auto& s : servers) {
    keys += s.keys;
    bytes += s.table_bytes;
    raw += s.raw_bytes;
    peak = std::max(peak, s.peak_rss_bytes);
    expired += s.rows_expired;
    evicted += s.rows_evicted;
    pending += s.pending_keys;
    admission += s.admission_bytes;
    dropped += s.pushes_dropped;
  }
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "servers: %llu keys (max/mean %.2f), tables %s (max/mean %.2f, %.1f bytes/row, %.2fx raw), "
                "peak rss max %s",
                static_cast<unsigned long long>(keys), Imbalance(servers, [](const ServerStats& s) { return s.keys; }),
                Mib(bytes).c_str(), Imbalance(servers, [](const ServerStats& s) { return s.table_bytes; }),
                keys ? static_cast<double>(bytes) / static_cast<double>(keys) : 0.0,
                raw ? static_cast<double>(bytes) / static_cast<double>(raw) : 0.0, Mib(peak).c_str());
  std::string line = buf;
  if (pending > 0 || admission > 0 || dropped > 0) {
    line += Concat(", pending ", pending, " keys (", Mib(admission), "), pushes dropped ", dropped);
  }
  if (expired > 0) line += Concat(", expired ", expired);
  if (evicted > 0) line += Concat(", evicted ", evicted);
  return line;
}

// One line per server, for the end-of-run report.
std::string DescribeServer(const ServerStats& s) {
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "  server rank %d: %llu keys, table %s (%.2fx raw), rss %s, peak rss %s, %llu pulls (%s, %llu "
                "replies and %llu requests in shared memory), %llu pushes (%s, %llu in shared memory)",
                s.rank, static_cast<unsigned long long>(s.keys), Mib(s.table_bytes).c_str(),
                s.raw_bytes ? static_cast<double>(s.table_bytes) / static_cast<double>(s.raw_bytes) : 0.0,
                Mib(s.rss_bytes).c_str(), Mib(s.peak_rss_bytes).c_str(),
                static_cast<unsigned long long>(s.pull_requests), Mib(s.pull_bytes).c_str(),
                static_cast<unsigned long long>(s.pull_replies_placed),
                static_cast<unsigned long long>(s.pull_requests_placed),
                static_cast<unsigned long long>(s.push_requests), Mib(s.push_bytes).c_str(),
                static_cast<unsigned long long>(s.pushes_placed));
  return buf;
}

// Receives the replies the coordinator waits for, and watches for ranks that
// stop making progress (--stall-timeout). Workers send Progress messages
// while they train and evaluate; a rank counts as alive while it sends them.
class Watchdog {
 public:
  Watchdog(Transport& transport, const Topology& topology, double timeout)
      : transport_(transport), topology_(topology), timeout_(timeout) {}

  // Receives one message with `tag` from each rank of `ranks` (any order);
  // returns them indexed like `ranks`. Throws StallError naming a rank of
  // `ranks` that has sent nothing for the timeout.
  std::vector<Message> Collect(const std::vector<int>& ranks, int tag, const std::string& what) {
    std::vector<Message> out(ranks.size());
    std::vector<bool> done(ranks.size(), false);
    std::size_t left = ranks.size();
    const double start = Now();
    Backoff backoff;
    Message m;
    while (left > 0) {
      bool progress = false;
      while (transport_.TryRecv(Transport::kAnySource, kTagProgress, &m)) {
        last_heard_[m.source] = Now();
        progress_[m.source] = DecodeControl<Progress>(m.data, "progress message");
        progress = true;
      }
      if (on_tick_ && Now() >= next_tick_) {
        next_tick_ = Now() + tick_seconds_;
        on_tick_(progress_);
      }
      if (transport_.TryRecv(Transport::kAnySource, tag, &m)) {
        last_heard_[m.source] = Now();
        const auto it = std::find(ranks.begin(), ranks.end(), m.source);
        if (it == ranks.end() || done[static_cast<std::size_t>(it - ranks.begin())]) {
          throw InternalError(Concat("unexpected ", what, " from rank ", m.source));
        }
        const std::size_t i = static_cast<std::size_t>(it - ranks.begin());
        out[i] = std::move(m);
        done[i] = true;
        --left;
        progress = true;
      }
      if (progress) {
        backoff.Reset();
        continue;
      }
      if (timeout_ > 0) CheckStalls(ranks, done, start, what);
      backoff.Wait();
    }
    return out;
  }

  // Calls `tick` with the latest Progress of each rank every `seconds` while
  // Collect waits; an empty function turns it off.
  void SetTicker(std::function<void(const std::map<int, Progress>&)> tick, double seconds) {
    on_tick_ = std::move(tick);
    tick_seconds_ = seconds;
    next_tick_ = Now() + seconds;
    progress_.clear();
  }

  // Drops Progress messages that have arrived (before the job ends).
  void Drain() {
    Message m;
    while (transport_.TryRecv(Transport::kAnySource, kTagProgress, &m)) {
    }
  }

 private:
  void CheckStalls(const std::vector<int>& ranks, const std::vector<bool>& done, double start, const std::string& what) {
    const double now = Now();
    std::string stalled;
    double worst = 0;
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      if (done[i]) continue;
      const auto it = last_heard_.find(ranks[i]);
      const double since = now - std::max(start, it == last_heard_.end() ? start : it->second);
      const Role role = topology_.RoleOf(ranks[i]);
      // A worker waiting on a server runs its own watchdog (PsClient), which
      // can name the server: give it the first word, half a timeout earlier.
      const double limit = role == Role::kWorker ? timeout_ + std::max(1.0, 0.5 * timeout_) : timeout_;
      if (since <= limit) continue;
      worst = std::max(worst, since);
      const int index = role == Role::kServer ? topology_.ServerIndex(ranks[i]) : topology_.WorkerIndex(ranks[i]);
      stalled += Concat(stalled.empty() ? "" : ", ", "rank ", ranks[i], " (", RoleName(role), " ", index, ")");
    }
    if (stalled.empty()) return;
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.1f", worst);
    throw StallError(Concat(stalled, " made no progress for ", secs, " s while the coordinator waited for ", what,
                            " (--stall-timeout ", timeout_,
                            "); aborting the job."));
  }

  Transport& transport_;
  const Topology& topology_;
  const double timeout_;
  std::map<int, double> last_heard_;
  std::map<int, Progress> progress_;
  std::function<void(const std::map<int, Progress>&)> on_tick_;
  double tick_seconds_ = 1.0;
  double next_tick_ = 0.0;
};

EpochSummary ToSummary(const EpochResult& r) {
  EpochSummary s;
  s.epoch = r.epoch;
  s.loss = r.loss;
  s.examples = r.examples;
  s.train_seconds = r.train_seconds;
  s.eval_seconds = r.eval_seconds;
  s.samples_per_second = r.samples_per_second;
  s.metrics = r.metrics;
  s.validation = r.validation;
  return s;
}

EpochResult FromSummary(const EpochSummary& s) {
  EpochResult r;
  r.epoch = s.epoch;
  r.loss = s.loss;
  r.examples = s.examples;
  r.train_seconds = s.train_seconds;
  r.eval_seconds = s.eval_seconds;
  r.samples_per_second = s.samples_per_second;
  r.metrics = s.metrics;
  r.validation = s.validation;
  r.totals.examples = s.examples;
  return r;
}

std::vector<int> WorkerRanks(const Topology& topology) {
  std::vector<int> ranks;
  for (int w = 0; w < topology.workers(); ++w) ranks.push_back(topology.WorkerRank(w));
  return ranks;
}

std::vector<int> ServerRanks(const Topology& topology) {
  std::vector<int> ranks;
  for (int s = 0; s < topology.servers(); ++s) ranks.push_back(topology.ServerRank(s));
  return ranks;
}

// Writes checkpoints into config.checkpoint_dir and prunes old ones.
class Checkpointer {
 public:
  Checkpointer(Transport& transport, const Topology& topology, const Config& config, Watchdog* watchdog)
      : transport_(transport), topology_(topology), config_(config), watchdog_(watchdog) {}

  // Creates the folder. A fresh run refuses a folder that already holds
  // checkpoints (it would mix two runs); `resumed_from` is the checkpoint a
  // resumed run started from, if it lies in this folder.
  void Prepare(bool resuming, const std::string& resumed_from) {
    const std::string& dir = config_.checkpoint_dir;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir, ec)) ThrowInputError(dir, 0, Concat("cannot create the checkpoint folder (--checkpoint-dir): ", ec.message()));
    if (!resuming && fs::exists(dir + "/LATEST", ec)) {
      ThrowInputError(dir, 0, "already holds checkpoints (LATEST); continue that run with --resume, or choose another --checkpoint-dir");
    }
    if (!resumed_from.empty() && fs::equivalent(fs::path(resumed_from).parent_path(), dir, ec)) {
      last_complete_ = fs::path(resumed_from).filename().string();
    }
    last_time_ = Now();
  }

  bool Due(int epoch, bool last) const {
    if (config_.checkpoint_dir.empty()) return false;
    if (last) return true;
    if (config_.checkpoint_every > 0 && epoch % config_.checkpoint_every == 0) return true;
    return config_.checkpoint_minutes > 0 && Now() - last_time_ >= 60.0 * config_.checkpoint_minutes;
  }

  void Write(int epoch, const std::vector<TableSpec>& tables, const std::vector<EpochResult>& results) {
    const double start = Now();
    const std::string name = CheckpointName(epoch);
    const std::string dir = config_.checkpoint_dir + "/" + name;
    std::error_code ec;
    if (fs::exists(dir + "/MANIFEST", ec)) {
      // Rewriting a checkpoint of an abandoned later run (resumed from an
      // earlier one): make it incomplete first, and LATEST point elsewhere.
      if (!last_complete_.empty()) WriteLatest(config_.checkpoint_dir, last_complete_);
      fs::remove(dir + "/MANIFEST", ec);
    }
    fs::create_directories(dir, ec);
    if (ec) ThrowInputError(dir, 0, Concat("cannot create the checkpoint folder: ", ec.message()));
    Command c;
    c.kind = Command::kCheckpoint;
    c.epoch = epoch;
    c.path = dir;
    for (int s = 0; s < topology_.servers(); ++s) SendControl(transport_, topology_.ServerRank(s), kTagCommand, c);
    const auto replies = watchdog_->Collect(ServerRanks(topology_), kTagCheckpointDone, Concat("the shard files of ", name));
    Manifest m;
    m.epoch = epoch;
    m.model = config_.model;
    m.servers = topology_.servers();
    m.workers = topology_.workers();
    m.settings = ResumeSettings(config_);
    m.tables = tables;
    std::uint64_t rows = 0, bytes = 0;
    for (const Message& reply : replies) {
      const auto done = DecodeControl<CheckpointDone>(reply.data, "checkpoint reply");
      ShardFileInfo info;
      info.name = done.name;
      info.size = done.size;
      info.checksum = done.checksum;
      info.rows = done.rows;
      rows += info.rows;
      bytes += info.size;
      m.shards.push_back(std::move(info));
    }
    for (const EpochResult& r : results) m.results.push_back(ToSummary(r));
    WriteManifest(dir, m);  // the checkpoint is complete from here on
    WriteLatest(config_.checkpoint_dir, name);
    last_complete_ = name;
    last_time_ = Now();
    const auto deleted = PruneCheckpoints(config_.checkpoint_dir, config_.keep_checkpoints, epoch);
    std::string pruned;
    for (const auto& d : deleted) pruned += Concat(pruned.empty() ? "; deleted " : ", ", d);
    std::printf("checkpoint: %s (%zu shard files, %llu rows, %llu bytes, %.2fs%s)\n", dir.c_str(), m.shards.size(),
                static_cast<unsigned long long>(rows), static_cast<unsigned long long>(bytes), Now() - start,
                pruned.c_str());
    std::fflush(stdout);
  }

 private:
  Transport& transport_;
  const Topology& topology_;
  const Config& config_;
  Watchdog* watchdog_;
  std::string last_complete_;  // newest complete checkpoint of this folder that we know of
  double last_time_ = 0;
};

}  // namespace

std::string EpochJson(const EpochResult& r, const std::vector<ServerStats>& servers) {
  nlohmann::ordered_json j;
  j["epoch"] = r.epoch;
  j["loss"] = r.loss;
  for (std::size_t i = 0; i < r.metrics.ks.size(); ++i) {
    j["hr@" + std::to_string(r.metrics.ks[i])] = r.metrics.HitRatio(i);
    j["ndcg@" + std::to_string(r.metrics.ks[i])] = r.metrics.Ndcg(i);
  }
  j["users"] = r.metrics.users;
  if (r.validation.users > 0) {
    for (std::size_t i = 0; i < r.validation.ks.size(); ++i) {
      j["valid_hr@" + std::to_string(r.validation.ks[i])] = r.validation.HitRatio(i);
      j["valid_ndcg@" + std::to_string(r.validation.ks[i])] = r.validation.Ndcg(i);
    }
    j["valid_users"] = r.validation.users;
  }
  j["examples"] = r.examples;
  j["samples_per_s"] = r.samples_per_second;
  j["train_seconds"] = r.train_seconds;
  j["eval_seconds"] = r.eval_seconds;
  j["pulled_bytes"] = r.pulled_bytes;
  j["pushed_bytes"] = r.pushed_bytes;
  if (r.examples > 0) j["pulled_bytes_per_sample"] = static_cast<double>(r.pulled_bytes) / static_cast<double>(r.examples);
  if (r.totals.cache_lookups > 0) {
    j["cache_hit_rate"] = static_cast<double>(r.totals.cache_hits) / static_cast<double>(r.totals.cache_lookups);
  }
  // Where the workers' time went, summed over workers.
  j["time_split"] = {{"sample", r.totals.sample_seconds},
                     {"pull_wait", r.totals.pull_wait_seconds},
                     {"compute", r.totals.compute_seconds},
                     {"push", r.totals.push_seconds}};
  if (!servers.empty()) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& s : servers) {
      list.push_back({{"rank", s.rank},
                      {"keys", s.keys},
                      {"table_bytes", s.table_bytes},
                      {"rss_bytes", s.rss_bytes},
                      {"pull_requests", s.pull_requests},
                      {"pull_replies_placed", s.pull_replies_placed},
                      {"push_requests", s.push_requests},
                      {"pushes_placed", s.pushes_placed},
                      {"pull_requests_placed", s.pull_requests_placed},
                      {"pull_bytes", s.pull_bytes},
                      {"push_bytes", s.push_bytes},
                      {"cpu_seconds", s.cpu_seconds},
                      {"peak_rss_bytes", s.peak_rss_bytes},
                      {"raw_bytes", s.raw_bytes},
                      {"bytes_per_row", s.keys ? static_cast<double>(s.table_bytes) / static_cast<double>(s.keys) : 0.0},
                      {"raw_bytes_per_row", s.keys ? static_cast<double>(s.raw_bytes) / static_cast<double>(s.keys) : 0.0},
                      {"admission_bytes", s.admission_bytes},
                      {"pending_keys", s.pending_keys},
                      {"rows_expired", s.rows_expired},
                      {"rows_evicted", s.rows_evicted},
                      {"pushes_dropped", s.pushes_dropped}});
    }
    j["servers"] = list;
  }
  return j.dump();
}

std::size_t SelectionCutoff(const std::vector<int>& ks) {
  for (std::size_t i = 0; i < ks.size(); ++i) {
    if (ks[i] == 10) return i;
  }
  return ks.size() - 1;
}

std::size_t SelectEpoch(const std::vector<EpochResult>& results, bool validation) {
  RECSYS_CHECK(!results.empty());
  if (!validation) return results.size() - 1;
  const std::size_t k = SelectionCutoff(results.front().validation.ks);
  std::size_t best = 0;
  for (std::size_t i = 1; i < results.size(); ++i) {
    if (results[i].validation.HitRatio(k) > results[best].validation.HitRatio(k)) best = i;
  }
  return best;
}

std::vector<EpochResult> RunCoordinator(Transport& transport, const Topology& topology, const Config& config,
                                        const MakeTablesFn& make_tables) {
  const int workers = topology.workers();
  Watchdog watchdog(transport, topology, config.stall_timeout);
  const std::vector<int> worker_ranks = WorkerRanks(topology);

  // ---- The checkpoint to start from, verified in full before anything is
  // loaded (the workers read their data meanwhile; an error aborts them). ----
  const bool resuming = !config.resume.empty();
  const std::string source = resuming ? config.resume : config.init_from;
  std::string restore_dir;
  std::optional<Manifest> manifest;
  if (!source.empty()) {
    restore_dir = ResolveCheckpoint(source);
    manifest = VerifyCheckpoint(restore_dir);
    const std::string manifest_path = restore_dir + "/MANIFEST";
    if (resuming) {
      CheckResumeSettings(manifest_path, *manifest, config);
    } else if (manifest->model != config.model) {
      ThrowInputError(manifest_path, 0, Concat("the checkpoint is of model '", manifest->model, "', this run trains '",
                                               config.model, "' (--init-from needs the same model)"));
    }
  }
  Checkpointer checkpointer(transport, topology, config, &watchdog);
  if (!config.checkpoint_dir.empty() && !config.eval_only) checkpointer.Prepare(resuming, restore_dir);

  // ---- Agree on the data: item universe and slot layout. ----
  std::vector<WorkerHello> hellos(static_cast<std::size_t>(workers));
  {
    const auto messages = watchdog.Collect(worker_ranks, kTagHello, "the workers' data (hello)");
    for (int w = 0; w < workers; ++w) {
      hellos[static_cast<std::size_t>(w)] = DecodeControl<WorkerHello>(messages[static_cast<std::size_t>(w)].data, "control message");
    }
  }
  Setup setup;
  std::uint64_t users = 0, users_without_test = 0, train_positives = 0;
  std::uint64_t user_collisions = 0, item_collisions = 0;
  std::string collision_example;
  for (const auto& h : hellos) {
    setup.items.insert(setup.items.end(), h.items.begin(), h.items.end());
    setup.dense_items = std::max(setup.dense_items, h.dense_items);
    users += h.users;
    users_without_test += h.users_without_test;
    train_positives += h.train_positives;
    // Each worker checks its own users, and every worker sees every item.
    user_collisions += h.user_id_collisions;
    item_collisions = std::max(item_collisions, h.item_id_collisions);
    if (collision_example.empty()) collision_example = h.id_collision_example;
  }
  std::sort(setup.items.begin(), setup.items.end());
  setup.items.erase(std::unique(setup.items.begin(), setup.items.end()), setup.items.end());
  setup.items = ItemUniverse(setup.dense_items, std::move(setup.items)).listed();
  const std::uint64_t universe_size = setup.dense_items + setup.items.size();
  // Every worker reads the same feature files, so layouts agree; a worker
  // without users reports none, so take the first non-empty one.
  std::vector<std::uint8_t> user_slots, item_slots;
  for (const auto& h : hellos) {
    if (!h.user_slot_fields.empty() && user_slots.empty()) user_slots = h.user_slot_fields;
    if (!h.item_slot_fields.empty() && item_slots.empty()) item_slots = h.item_slot_fields;
  }
  setup.slot_field = config.side_features ? SlotLayout(user_slots, item_slots) : SlotLayout({}, {});
  if (universe_size == 0) throw InputError("the data has no items");
  setup.tables = make_tables(setup.slot_field);
  // NeuMF pre-training: combine the GMF and MLP checkpoints into a NeuMF
  // checkpoint and load it as --init-from would (ps/neumf_pretrain.h). It
  // lands in --checkpoint-dir (kept, as the run's starting point) or else in
  // a temporary folder removed once the servers have read it; either must be
  // readable by every server.
  std::string pretrain_tmp;
  if (!config.pretrain_gmf.empty()) {
    if (config.checkpoint_dir.empty()) {
      pretrain_tmp = (fs::temp_directory_path() / Concat("recsys-neumf-pretrain-", ::getpid())).string();
    }
    restore_dir = pretrain_tmp.empty() ? config.checkpoint_dir + "/pretrained-neumf" : pretrain_tmp;
    BuildPretrainedNeuMf(config, setup.tables, restore_dir);
    manifest = VerifyCheckpoint(restore_dir);
    std::printf("pretrained: NeuMF from GMF %s and MLP %s, alpha %g, written to %s (optimizer state starts fresh)\n",
                config.pretrain_gmf.c_str(), config.pretrain_mlp.c_str(), config.pretrain_alpha, restore_dir.c_str());
  }
  if (manifest) {
    CheckTables(restore_dir + "/MANIFEST", *manifest, setup.tables);
    setup.restore.dir = restore_dir;
    for (const ShardFileInfo& f : manifest->shards) {
      setup.restore.files.push_back(f.name);
      setup.restore.checksums.push_back(f.checksum);
    }
    setup.restore.with_state = resuming;
    setup.restore.epoch = resuming ? manifest->epoch : 0;
  }
  for (int r = 1; r < topology.size(); ++r) SendControl(transport, r, kTagSetup, setup);

  std::printf("recsys-ps: %d ranks (1 coordinator, %d server%s, %d worker%s)\n", topology.size(), topology.servers(),
              topology.servers() == 1 ? "" : "s", workers, workers == 1 ? "" : "s");
  std::printf("config: %s\n", DescribeConfig(config).c_str());
  if (config.optimizer == "adam" && config.adam_mode == "dense" && !config.sync && workers > 1) {
    std::printf("note: --adam-mode dense counts the steps a row missed by the workers' step numbers; with %d "
                "asynchronous workers pushes arrive a little out of step order, and rows that several workers "
                "update take extra momentum steps (exact with --sync or one worker)\n",
                workers);
  }
  if (config.cache_rows > 0 && config.staleness < 2) {
    std::printf("note: --cache-rows is off: a cached row must be refreshed every --staleness steps, and with staleness %d%s "
                "every batch would pull every row anyway (use --staleness 2 or more without --sync)\n",
                config.staleness, config.sync ? " (--sync)" : "");
  }
  std::printf("data: %llu users (%llu without a held-out item), %llu items, %llu training positives, %zu slots\n",
              static_cast<unsigned long long>(users), static_cast<unsigned long long>(users_without_test),
              static_cast<unsigned long long>(universe_size), static_cast<unsigned long long>(train_positives), setup.slot_field.size());
  if (user_collisions + item_collisions > 0) {
    std::printf("warning: hashed ids collide: %llu user ids and %llu item ids share their key (and row) with another "
                "id; e.g. %s\n",
                static_cast<unsigned long long>(user_collisions), static_cast<unsigned long long>(item_collisions),
                collision_example.c_str());
  }
  if (manifest) {
    const auto replies = watchdog.Collect(ServerRanks(topology), kTagRestored, "the servers to load the checkpoint");
    std::uint64_t rows = 0;
    double seconds = 0;
    for (const Message& m : replies) {
      const auto r = DecodeControl<Restored>(m.data, "restore report");
      rows += r.rows;
      seconds = std::max(seconds, r.seconds);
    }
    std::printf("%s: %s (epoch %d, written by %d servers and %d workers): %llu rows into %d servers%s in %.2fs\n",
                resuming ? "resumed" : "initialised from", restore_dir.c_str(), manifest->epoch, manifest->servers,
                manifest->workers, static_cast<unsigned long long>(rows), topology.servers(),
                resuming ? " with optimizer state" : " (weights only)", seconds);
    if (!pretrain_tmp.empty()) {
      std::error_code ec;
      fs::remove_all(pretrain_tmp, ec);
    }
    if (resuming && manifest->workers != workers && !config.eval_only) {
      std::printf("note: %d workers now, %d when the checkpoint was written: training continues correctly, but not "
                  "bit-identically to the uninterrupted run\n", workers, manifest->workers);
    }
  }
  std::fflush(stdout);

  std::ofstream metrics_file;
  const std::string partial = config.metrics_out + ".partial";
  if (!config.metrics_out.empty()) {
    metrics_file.open(partial, std::ios::trunc);
    if (!metrics_file) ThrowInputError(config.metrics_out, 0, "cannot open for writing (--metrics-out)");
  }
  auto finish = [&](const std::vector<ServerStats>& last_servers, double run_start) {
    if (!last_servers.empty()) {
      std::printf("%s\n", DescribeServers(last_servers, run_start).c_str());
      for (const ServerStats& s : last_servers) std::printf("%s\n", DescribeServer(s).c_str());
    }
    watchdog.Drain();
    for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kStop, 0);
    for (int s = 0; s < topology.servers(); ++s) SendCommand(transport, topology.ServerRank(s), Command::kStop, 0);
    transport.FlushSends();
    if (metrics_file.is_open()) {
      metrics_file.close();
      if (std::rename(partial.c_str(), config.metrics_out.c_str()) != 0) {
        ThrowInputError(config.metrics_out, 0, "cannot rename the finished metrics file into place");
      }
    }
  };
  auto evaluate = [&](int epoch, EpochResult* r) {
    for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kEvaluate, epoch);
    r->metrics = RankingSums(config.topk);
    r->validation = RankingSums(config.topk);
    const auto messages = watchdog.Collect(worker_ranks, kTagEvalReport, Concat("the evaluation of epoch ", epoch));
    for (int w = 0; w < workers; ++w) {  // in worker order: sums of doubles depend on it
      const auto rep = DecodeControl<EvalReport>(messages[static_cast<std::size_t>(w)].data, "control message");
      r->metrics.Merge(rep.sums);
      r->validation.Merge(rep.validation);
    }
  };

  const double run_start = Now();
  // ---- --eval-only: one evaluation of the restored model. ----
  if (config.eval_only) {
    EpochResult r;
    r.epoch = manifest->epoch;
    const double t0 = Now();
    evaluate(r.epoch, &r);
    r.eval_seconds = Now() - t0;
    std::string line = Concat("eval-only: ", restore_dir, " (epoch ", r.epoch, ")");
    for (std::size_t i = 0; i < r.metrics.ks.size(); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "  HR@%d %.4f  NDCG@%d %.4f", r.metrics.ks[i], r.metrics.HitRatio(i),
                    r.metrics.ks[i], r.metrics.Ndcg(i));
      line += buf;
    }
    std::printf("%s  users %lld  time %.2fs\n", line.c_str(), static_cast<long long>(r.metrics.users), r.eval_seconds);
    if (metrics_file.is_open()) {
      auto j = nlohmann::ordered_json::parse(EpochJson(r, {}));
      j["eval_only"] = true;
      j["checkpoint"] = restore_dir;
      metrics_file << j.dump() << '\n';
      metrics_file.flush();
      if (!metrics_file) ThrowInputError(partial, 0, "write failed (--metrics-out)");
    }
    finish({}, run_start);
    return {r};
  }

  // In --sync mode every worker runs the same number of steps per epoch.
  const std::uint64_t per_positive = config.loss == "bpr" ? 2 : static_cast<std::uint64_t>(1 + config.neg_ratio);
  std::int64_t max_steps = 0;
  std::int64_t epoch_batches = 0;  // over all workers, for the progress line
  for (const auto& h : hellos) {
    const std::uint64_t examples = h.train_positives * per_positive;
    const auto batches = static_cast<std::int64_t>((examples + config.batch_size - 1) / config.batch_size);
    max_steps = std::max(max_steps, batches);
    epoch_batches += batches;
  }
  if (config.sync) epoch_batches = max_steps * workers;

  std::vector<EpochResult> results;
  int first_epoch = 1;
  if (resuming) {
    // The earlier epochs count for choosing the reported one (--validation).
    for (const EpochSummary& e : manifest->results) results.push_back(FromSummary(e));
    first_epoch = manifest->epoch + 1;
    if (first_epoch > config.epochs) {
      std::printf("nothing to train: the checkpoint is at epoch %d, --epochs is %d\n", manifest->epoch, config.epochs);
    }
  }
  std::vector<ServerStats> last_servers;
  for (int epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    EpochResult r;
    r.epoch = epoch;
    const double t0 = Now();
    for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kTrainEpoch, epoch, max_steps);
    {
      // A live progress line: redrawn in place on a terminal, a plain line
      // every 10 s when the output goes to a file.
      // Under mpirun, rank 0's stdout is a pty even when mpirun's output goes
      // to a file, so the launcher says what the user's terminal is:
      // RECSYS_PROGRESS=tty (redraw), plain (default) or off.
      const char* mode_env = std::getenv("RECSYS_PROGRESS");
      const std::string mode = mode_env ? mode_env : "plain";
      const bool tty = mode == "tty";
      bool drew = false;
      watchdog.SetTicker(
          [&](const std::map<int, Progress>& progress) {
            std::int64_t done = 0;
            double loss_sum = 0;
            std::uint64_t examples = 0;
            for (const auto& [rank, p] : progress) {
              if (p.epoch != epoch) continue;
              done += p.step;
              loss_sum += p.loss_sum;
              examples += p.examples;
            }
            const double elapsed = Now() - t0;
            const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
            const double eta = rate > 0 ? static_cast<double>(epoch_batches - done) / rate : 0.0;
            std::printf("%sepoch %3d  batches %lld/%lld  samples/s %.0f  ETA %.0fs  loss %.4f%s", tty ? "\r" : "",
                        epoch, static_cast<long long>(done), static_cast<long long>(epoch_batches),
                        rate * config.batch_size, eta, examples ? loss_sum / static_cast<double>(examples) : 0.0,
                        tty ? "   " : "\n");
            std::fflush(stdout);
            drew = tty;
          },
          mode == "off" ? 1e30 : (tty ? 0.5 : 10.0));
      const auto messages = watchdog.Collect(worker_ranks, kTagEpochReport, Concat("the training of epoch ", epoch));
      watchdog.SetTicker(nullptr, 1.0);
      if (drew) std::printf("\r\033[K");
      for (int w = 0; w < workers; ++w) {
        // In worker order, not arrival order: floating-point sums depend on
        // the order of their terms, and --sync must give the same bits every run.
        const auto rep = DecodeControl<EpochReport>(messages[static_cast<std::size_t>(w)].data, "control message");
        r.totals.loss_sum += rep.loss_sum;
        r.totals.examples += rep.examples;
        r.totals.batches += rep.batches;
        r.totals.sample_seconds += rep.sample_seconds;
        r.totals.pull_wait_seconds += rep.pull_wait_seconds;
        r.totals.compute_seconds += rep.compute_seconds;
        r.totals.push_seconds += rep.push_seconds;
        r.totals.pulled_bytes += rep.pulled_bytes;
        r.totals.pushed_bytes += rep.pushed_bytes;
        r.totals.cache_lookups += rep.cache_lookups;
        r.totals.cache_hits += rep.cache_hits;
      }
    }
    const double t1 = Now();
    evaluate(epoch, &r);
    const double t2 = Now();
    r.examples = r.totals.examples;
    r.loss = r.examples ? r.totals.loss_sum / static_cast<double>(r.examples) : 0.0;
    r.train_seconds = t1 - t0;
    r.eval_seconds = t2 - t1;
    r.samples_per_second = r.train_seconds > 0 ? static_cast<double>(r.examples) / r.train_seconds : 0.0;
    r.pulled_bytes = r.totals.pulled_bytes;
    r.pushed_bytes = r.totals.pushed_bytes;

    std::vector<ServerStats> servers;
    for (int s = 0; s < topology.servers(); ++s) SendCommand(transport, topology.ServerRank(s), Command::kReportStats, epoch);
    for (const Message& m : watchdog.Collect(ServerRanks(topology), kTagServerStats, Concat("the servers' statistics of epoch ", epoch))) {
      servers.push_back(DecodeControl<ServerStats>(m.data, "control message"));
    }
    std::sort(servers.begin(), servers.end(), [](const ServerStats& a, const ServerStats& b) { return a.rank < b.rank; });

    std::printf("%s\n", FormatLine(r).c_str());
    std::printf("%s\n", DescribeServerMemory(servers).c_str());
    std::fflush(stdout);
    if (metrics_file.is_open()) {
      metrics_file << EpochJson(r, servers) << '\n';
      metrics_file.flush();
      if (!metrics_file) ThrowInputError(partial, 0, "write failed (--metrics-out)");
    }
    results.push_back(std::move(r));
    last_servers = std::move(servers);
    // Early stopping looks at validation only, never at the test metrics.
    const bool stop = config.validation && config.patience > 0 &&
                      results.size() - 1 - SelectEpoch(results, true) >= static_cast<std::size_t>(config.patience);
    if (checkpointer.Due(epoch, stop || epoch == config.epochs)) checkpointer.Write(epoch, setup.tables, results);
    if (stop) {
      std::printf("early stop: no better validation HR for %d epochs\n", config.patience);
      break;
    }
  }
  if (results.empty()) throw InputError("no epoch to report: the checkpoint holds no results");

  // The reported result: the epoch chosen on validation, or the last one.
  const EpochResult& chosen = results[SelectEpoch(results, config.validation)];
  {
    std::string line = Concat("final: epoch ", chosen.epoch, config.validation ? " (best on validation)" : " (last)");
    for (std::size_t i = 0; i < chosen.metrics.ks.size(); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "  HR@%d %.4f  NDCG@%d %.4f", chosen.metrics.ks[i], chosen.metrics.HitRatio(i),
                    chosen.metrics.ks[i], chosen.metrics.Ndcg(i));
      line += buf;
    }
    std::printf("%s  users %lld\n", line.c_str(), static_cast<long long>(chosen.metrics.users));
  }
  if (metrics_file.is_open()) {
    auto j = nlohmann::ordered_json::parse(EpochJson(chosen, {}));
    j["final"] = true;
    j["selected_by"] = config.validation ? "validation" : "last";
    metrics_file << j.dump() << '\n';
    metrics_file.flush();
    if (!metrics_file) ThrowInputError(partial, 0, "write failed (--metrics-out)");
  }
  finish(last_servers, run_start);
  return results;
}

}  // namespace recsys
