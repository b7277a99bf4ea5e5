#include "ps/coordinator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/keys.h"
#include "common/log.h"

namespace recsys {
namespace {

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
  return std::string(head) + metrics + tail;
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
                      {"push_requests", s.push_requests},
                      {"pull_bytes", s.pull_bytes},
                      {"push_bytes", s.push_bytes},
                      {"cpu_seconds", s.cpu_seconds}});
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
  // ---- Agree on the data: item universe and slot layout. ----
  std::vector<WorkerHello> hellos(static_cast<std::size_t>(workers));
  for (int i = 0; i < workers; ++i) {
    int from = -1;
    auto hello = RecvControl<WorkerHello>(transport, Transport::kAnySource, kTagHello, &from);
    hellos[static_cast<std::size_t>(topology.WorkerIndex(from))] = std::move(hello);
  }
  Setup setup;
  std::uint64_t users = 0, users_without_test = 0, train_positives = 0;
  for (const auto& h : hellos) {
    setup.items.insert(setup.items.end(), h.items.begin(), h.items.end());
    users += h.users;
    users_without_test += h.users_without_test;
    train_positives += h.train_positives;
  }
  std::sort(setup.items.begin(), setup.items.end());
  setup.items.erase(std::unique(setup.items.begin(), setup.items.end()), setup.items.end());
  // Every worker reads the same feature files, so layouts agree; a worker
  // without users reports none, so take the first non-empty one.
  std::vector<std::uint8_t> user_slots, item_slots;
  for (const auto& h : hellos) {
    if (!h.user_slot_fields.empty() && user_slots.empty()) user_slots = h.user_slot_fields;
    if (!h.item_slot_fields.empty() && item_slots.empty()) item_slots = h.item_slot_fields;
  }
  setup.slot_field = {kFieldUser, kFieldItem};
  if (config.side_features) {
    setup.slot_field.insert(setup.slot_field.end(), user_slots.begin(), user_slots.end());
    setup.slot_field.insert(setup.slot_field.end(), item_slots.begin(), item_slots.end());
  }
  if (setup.items.empty()) throw InputError("the data has no items");
  setup.tables = make_tables(setup.slot_field);
  for (int r = 1; r < topology.size(); ++r) SendControl(transport, r, kTagSetup, setup);

  std::printf("recsys-ps: %d ranks (1 coordinator, %d server%s, %d worker%s)\n", topology.size(), topology.servers(),
              topology.servers() == 1 ? "" : "s", workers, workers == 1 ? "" : "s");
  std::printf("config: %s\n", DescribeConfig(config).c_str());
  std::printf("data: %llu users (%llu without a held-out item), %zu items, %llu training positives, %zu slots\n",
              static_cast<unsigned long long>(users), static_cast<unsigned long long>(users_without_test),
              setup.items.size(), static_cast<unsigned long long>(train_positives), setup.slot_field.size());
  std::fflush(stdout);

  // In --sync mode every worker runs the same number of steps per epoch.
  const std::uint64_t per_positive = config.loss == "bpr" ? 2 : static_cast<std::uint64_t>(1 + config.neg_ratio);
  std::int64_t max_steps = 0;
  for (const auto& h : hellos) {
    const std::uint64_t examples = h.train_positives * per_positive;
    max_steps = std::max<std::int64_t>(max_steps, static_cast<std::int64_t>(
                                                      (examples + config.batch_size - 1) / config.batch_size));
  }

  std::ofstream metrics_file;
  const std::string partial = config.metrics_out + ".partial";
  if (!config.metrics_out.empty()) {
    metrics_file.open(partial, std::ios::trunc);
    if (!metrics_file) ThrowInputError(config.metrics_out, 0, "cannot open for writing (--metrics-out)");
  }

  std::vector<EpochResult> results;
  std::vector<ServerStats> last_servers;
  const double run_start = Now();
  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    EpochResult r;
    r.epoch = epoch;
    const double t0 = Now();
    for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kTrainEpoch, epoch, max_steps);
    for (int w = 0; w < workers; ++w) {
      // In worker order, not arrival order: floating-point sums depend on
      // the order of their terms, and --sync must give the same bits every run.
      const auto rep = RecvControl<EpochReport>(transport, topology.WorkerRank(w), kTagEpochReport);
      r.totals.loss_sum += rep.loss_sum;
      r.totals.examples += rep.examples;
      r.totals.batches += rep.batches;
      r.totals.sample_seconds += rep.sample_seconds;
      r.totals.pull_wait_seconds += rep.pull_wait_seconds;
      r.totals.compute_seconds += rep.compute_seconds;
      r.totals.push_seconds += rep.push_seconds;
      r.totals.pulled_bytes += rep.pulled_bytes;
      r.totals.pushed_bytes += rep.pushed_bytes;
    }
    const double t1 = Now();
    for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kEvaluate, epoch);
    r.metrics = RankingSums(config.topk);
    r.validation = RankingSums(config.topk);
    for (int w = 0; w < workers; ++w) {  // in worker order, as above
      const auto rep = RecvControl<EvalReport>(transport, topology.WorkerRank(w), kTagEvalReport);
      r.metrics.Merge(rep.sums);
      r.validation.Merge(rep.validation);
    }
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
    for (int s = 0; s < topology.servers(); ++s) {
      int from = -1;
      servers.push_back(RecvControl<ServerStats>(transport, Transport::kAnySource, kTagServerStats, &from));
    }
    std::sort(servers.begin(), servers.end(), [](const ServerStats& a, const ServerStats& b) { return a.rank < b.rank; });

    std::printf("%s\n", FormatLine(r).c_str());
    std::fflush(stdout);
    if (metrics_file.is_open()) {
      metrics_file << EpochJson(r, servers) << '\n';
      metrics_file.flush();
      if (!metrics_file) ThrowInputError(partial, 0, "write failed (--metrics-out)");
    }
    results.push_back(std::move(r));
    last_servers = std::move(servers);
    // Early stopping looks at validation only, never at the test metrics.
    if (config.validation && config.patience > 0 &&
        results.size() - 1 - SelectEpoch(results, true) >= static_cast<std::size_t>(config.patience)) {
      std::printf("early stop: no better validation HR for %d epochs\n", config.patience);
      break;
    }
  }

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

  if (!last_servers.empty()) std::printf("%s\n", DescribeServers(last_servers, run_start).c_str());
  for (int w = 0; w < workers; ++w) SendCommand(transport, topology.WorkerRank(w), Command::kStop, 0);
  for (int s = 0; s < topology.servers(); ++s) SendCommand(transport, topology.ServerRank(s), Command::kStop, 0);
  transport.FlushSends();
  if (metrics_file.is_open()) {
    metrics_file.close();
    if (std::rename(partial.c_str(), config.metrics_out.c_str()) != 0) {
      ThrowInputError(config.metrics_out, 0, "cannot rename the finished metrics file into place");
    }
  }
  return results;
}

}  // namespace recsys
