#include "worker/worker_loop.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "common/control.h"
#include "common/data/dataset.h"
#include "common/data/sampler.h"
#include "common/data/split.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/log.h"
#include "models/loss.h"
#include "models/model.h"
#include "worker/batcher.h"
#include "worker/epoch_examples.h"
#include "worker/eval_rows.h"
#include "worker/evaluator.h"
#include "worker/ps_client.h"
#include "worker/row_cache.h"
#include "worker/run.h"

namespace recsys {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Test hook for the --stall-timeout watchdog: the rank named by
// RECSYS_DEBUG_STALL_RANK stops making progress (sleeps until the job is
// brought down) when epoch RECSYS_DEBUG_STALL_EPOCH (default 2) starts.
void MaybeDebugStall(int rank, int epoch) {
  const char* r = std::getenv("RECSYS_DEBUG_STALL_RANK");
  if (r == nullptr || std::atoi(r) != rank) return;
  const char* e = std::getenv("RECSYS_DEBUG_STALL_EPOCH");
  if (epoch != (e ? std::atoi(e) : 2)) return;
  RECSYS_LOG("debug: stalling (RECSYS_DEBUG_STALL_RANK)");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

class Worker {
 public:
  Worker(Transport& transport, const Topology& topology, const Config& config)
      : transport_(transport),
        topology_(topology),
        config_(config),
        index_(topology.WorkerIndex(transport.rank())),
        progress_interval_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(std::min(1.0, config.stall_timeout / 4)))) {}

  void Run() {
    LoadData();
    const auto setup = RecvControl<Setup>(transport_, 0, kTagSetup);
    Prepare(setup);
    for (;;) {
      const auto command = RecvControl<Command>(transport_, 0, kTagCommand);
      if (command.kind == Command::kStop) break;
      if (command.kind == Command::kTrainEpoch) {
        SendControl(transport_, 0, kTagEpochReport, TrainEpoch(command.epoch, command.steps));
      } else if (command.kind == Command::kEvaluate) {
        SendControl(transport_, 0, kTagEvalReport, Evaluate());
      } else {
        throw InputError(Concat("worker got unexpected command ", command.kind));
      }
    }
    transport_.FlushSends();
  }

 private:
  void LoadData() {
    const Topology& topo = topology_;
    const int me = index_;
    data_ = ReadDataset(DataOptionsFrom(config_), [&topo, me](std::uint64_t user) { return topo.WorkerOfUser(user) == me; });
    SplitStats stats;
    users_ = LeaveOneOutSplit(data_, config_.validation, &stats);
    WorkerHello hello;
    hello.items = data_.items;
    hello.dense_items = data_.dense_items;
    hello.user_slot_fields = data_.user_slot_fields;
    hello.item_slot_fields = data_.item_slot_fields;
    hello.users = users_.size();
    hello.users_without_test = stats.users_without_test;
    for (const auto& u : users_) hello.train_positives += u.train.size();
    hello.user_id_collisions = data_.user_id_collisions;
    hello.item_id_collisions = data_.item_id_collisions;
    hello.id_collision_example = data_.id_collision_example;
    SendControl(transport_, 0, kTagHello, hello);
  }

  void Prepare(const Setup& setup) {
    model_ = MakeModel(ModelConfigFrom(config_, setup.slot_field));
    loss_ = MakeLoss(config_.loss);
    tables_ = model_->Tables();
    RECSYS_CHECK(tables_.size() == setup.tables.size(), "worker and coordinator disagree on the model's tables");
    sampler_ = std::make_unique<NegativeSampler>(ItemUniverse(setup.dense_items, setup.items));
    // A user must have enough unseen items for its negatives.
    for (const auto& u : users_) {
      if (u.positives.size() >= sampler_->items().size()) {
        throw InputError(Concat("user ", u.user, " interacted with all ", sampler_->items().size(),
                                " items; no negatives can be sampled"));
      }
    }
    // Training negatives avoid the user's training positives only: excluding
    // the held-out item too would leak the test set into training (it could
    // never be pushed down as a negative). The NCF protocol does the same.
    train_sorted_.resize(users_.size());
    for (std::size_t u = 0; u < users_.size(); ++u) {
      train_sorted_[u] = users_[u].train;
      std::sort(train_sorted_[u].begin(), train_sorted_[u].end());
      train_sorted_[u].erase(std::unique(train_sorted_[u].begin(), train_sorted_[u].end()), train_sorted_[u].end());
      // Each positive draws --neg-ratio negatives among the items the user
      // has not trained on; fewer such items than that is an option out of range.
      const std::size_t all = sampler_->items().size();
      const std::size_t unseen = all > train_sorted_[u].size() ? all - train_sorted_[u].size() : 0;
      if (!loss_->pairwise() && static_cast<std::size_t>(config_.neg_ratio) > unseen) {
        throw InputError(Concat("--neg-ratio ", config_.neg_ratio, " is larger than the ", unseen, " of the ", all,
                                " items that user ", users_[u].user, " has not interacted with; lower --neg-ratio"));
      }
    }
    epoch_examples_ = std::make_unique<EpochExamples>(&users_, &train_sorted_, sampler_.get(),
                                                      loss_->pairwise() ? 1 : config_.neg_ratio, loss_->pairwise());
    batcher_ = std::make_unique<BatchBuilder>(setup.slot_field, &data_);
    evaluator_ = std::make_unique<Evaluator>(config_, &users_, &data_, sampler_.get());
    if (config_.validation) {
      validator_ = std::make_unique<Evaluator>(config_, &users_, &data_, sampler_.get(), Evaluator::Target::kValidation);
    }
    client_ = std::make_unique<PsClient>(&transport_, topology_, tables_, config_.sync);
    eval_rows_ = std::make_unique<EvalRows>(tables_, kMaxEvalRows);
    // The coordinator says why when the cache is off (staleness < 2).
    if (config_.cache_rows > 0 && config_.staleness >= 2) {
      cache_ = std::make_unique<RowCache>(tables_, static_cast<std::size_t>(config_.cache_rows), config_.staleness);
    }
    // A wait on the servers longer than --stall-timeout ends the job naming
    // the server; meanwhile the coordinator hears that this worker is alive.
    if (config_.stall_timeout > 0) {
      client_->SetStallTimeout(config_.stall_timeout, [this] { ReportProgress(last_progress_); });
    }
    // A wait on the servers makes the next epoch's examples meanwhile, a few
    // microseconds at a time (64 examples made, or 64 swaps of the shuffle).
    client_->SetIdleWork([this] { return epoch_examples_->Advance(kIdleExampleUnits); });
  }

  // The epoch's examples (EpochExamples): every training positive with its
  // sampled negatives (fresh each epoch), shuffled. Made during the previous
  // epoch's waits where they were started then; what is left is made here.
  // Then the next epoch's are started, to be made while this one waits for
  // its servers, unless this is the last epoch or two epochs' examples would
  // take more than kMaxExamplesAheadBytes.
  void MakeExamples(int epoch) {
    const std::uint64_t seed = ExamplesSeed(epoch);
    if (!epoch_examples_->Started(seed)) {
      // Not made ahead (first epoch, a resumed run, or lists too large to
      // hold two): free the old list first, so only one is ever held here.
      std::vector<Example>().swap(examples_);
      epoch_examples_->Start(seed);
    }
    epoch_examples_->Finish(&examples_);
    const bool ahead = epoch < config_.epochs && epoch_examples_->size() * sizeof(Example) <= kMaxExamplesAheadBytes;
    if (ahead) {
      epoch_examples_->Start(ExamplesSeed(epoch + 1));
    } else {
      epoch_examples_->Release();
    }
  }
  std::uint64_t ExamplesSeed(int epoch) const {
    return HashCombine(HashCombine(config_.seed, 0xe0c4ULL + static_cast<std::uint64_t>(epoch)),
                       static_cast<std::uint64_t>(index_));
  }

  // With --stall-timeout: tells the coordinator's watchdog that this worker
  // is making progress, at most every progress_interval_.
  // The same messages feed the coordinator's live progress line, so they
  // are sent even without a watchdog (one small message a second).
  void ReportProgress(int epoch, std::int64_t step, double loss_sum = 0.0, std::uint64_t examples = 0) {
    Progress p;
    p.epoch = epoch;
    p.step = step;
    p.loss_sum = loss_sum;
    p.examples = examples;
    ReportProgress(p);
  }
  void ReportProgress(const Progress& p) {
    last_progress_ = p;
    const auto now = Clock::now();
    if (now < next_progress_) return;
    next_progress_ = now + progress_interval_;
    SendControl(transport_, 0, kTagProgress, p);
  }

  // One slot of the pipeline: a batch and its pulled rows.
  struct Slot {
    Batch batch;
    ParamBuffers params;
    PsClient::Ticket ticket = 0;
    // With --cache-rows: what is pulled (into `pulled`) and what the cache serves.
    RowCache::Plan plan;
    ParamBuffers pulled;
  };

  void StartBatch(std::int64_t step, std::int64_t own_batches, Slot* slot, EpochReport* report) {
    const auto t0 = Clock::now();
    const std::int64_t b = static_cast<std::int64_t>(config_.batch_size);
    if (step < own_batches) {
      const std::size_t begin = static_cast<std::size_t>(step * b);
      const std::size_t end = std::min(examples_.size(), static_cast<std::size_t>((step + 1) * b));
      batcher_->Build(examples_.data() + begin, static_cast<int>(end - begin), &slot->batch);
    } else {
      // --sync: this worker is out of data but still steps with the others.
      slot->batch.size = 0;
      slot->batch.keys.clear();
    }
    report->sample_seconds += Since(t0);
    if (cache_) {
      cache_->Prepare(slot->batch.keys, &slot->plan);
      slot->ticket = client_->Pull(slot->plan.pull_keys, &slot->pulled);
    } else {
      slot->ticket = client_->Pull(slot->batch.keys, &slot->params);
    }
  }

  // Blocks until the rows of `slot` are all there.
  void FinishPull(Slot& slot) {
    client_->Wait(slot.ticket);
    if (cache_) cache_->Complete(slot.plan, &slot.pulled, &slot.params);
  }

  // The job's global step of this worker's push of batch t in `epoch`
  // (1-based), for Adam (ps/optimizer.h): the pushes of every worker so far
  // as if the workers took turns, i.e. (b - 1) * W + i + 1 for the b-th
  // batch, W workers and this worker's index i, so every push of the job has
  // its own step. b counts `max_steps` batches for every earlier epoch, the
  // most any worker has (the coordinator's count, the same for every worker
  // and every epoch), so the workers' steps grow at the same rate even when
  // their own batch counts differ, and a run resumed from a checkpoint goes
  // on with the same steps.
  std::uint64_t GlobalStep(int epoch, std::int64_t max_steps, std::int64_t t) const {
    const auto batches_before = static_cast<std::uint64_t>(epoch - 1) * static_cast<std::uint64_t>(max_steps) +
                                static_cast<std::uint64_t>(t);  // b - 1
    return batches_before * static_cast<std::uint64_t>(topology_.workers()) + static_cast<std::uint64_t>(index_) + 1;
  }

  EpochReport TrainEpoch(int epoch, std::int64_t sync_steps) {
    EpochReport report;
    MaybeDebugStall(transport_.rank(), epoch);
    const auto start = Clock::now();
    // Every random stream of an epoch (negatives, shuffle, dropout) is seeded
    // by (seed, epoch, worker), so a run resumed at an epoch boundary
    // continues exactly as the uninterrupted run would.
    state_.rng = SplitMix64(HashCombine(HashCombine(config_.seed, 0xd20900ULL + static_cast<std::uint64_t>(epoch)),
                                        static_cast<std::uint64_t>(index_)));
    MakeExamples(epoch);
    report.sample_seconds += Since(start);
    const std::int64_t own = static_cast<std::int64_t>((examples_.size() + config_.batch_size - 1) / config_.batch_size);
    const std::int64_t steps = config_.sync ? sync_steps : own;
    RECSYS_CHECK(steps >= own, "sync steps ", steps, " < own batches ", own);
    const int k = config_.staleness;
    const std::uint64_t pulled0 = client_->pulled_bytes(), pushed0 = client_->pushed_bytes();
    const std::uint64_t lookups0 = cache_ ? cache_->lookups() : 0, hits0 = cache_ ? cache_->hits() : 0;

    // Pipeline: the pulls of the next `depth` batches are in flight while a
    // batch computes. A server answers one worker's messages in the order
    // they were sent (MPI keeps a sender's order), so the pull of batch t is
    // answered after every push the worker sent before it: it misses exactly
    // the pushes of batches t-depth..t-1, never more. depth <= k keeps that
    // within the staleness bound, and waiting for acks just before a push
    // (not before a pull) keeps at most k pushes unacknowledged while the
    // wait overlaps the pulls in flight. With k = 0 (and --sync) there is no
    // prefetch: batch t+1 is pulled after push t is acknowledged. With the
    // row cache, depth stays <= 1 (PrefetchDepth). At depth 0 with k >= 1
    // the pull of t+1 is sent after push t, so it sees that push without
    // waiting for its ack.
    const int depth = PrefetchDepth(config_);
    RECSYS_CHECK((cache_ != nullptr) == (config_.cache_rows > 0 && k >= 2), "row cache and PrefetchDepth disagree");
    Slot slots[kMaxPrefetch + 1];
    const auto slot_of = [&](std::int64_t step) -> Slot& { return slots[step % (depth + 1)]; };
    for (std::int64_t s = 0; s < std::min<std::int64_t>(steps, depth + 1); ++s) StartBatch(s, own, &slot_of(s), &report);
    for (std::int64_t t = 0; t < steps; ++t) {
      ReportProgress(epoch, t, report.loss_sum, report.examples);
      Slot& cur = slot_of(t);
      auto tw = Clock::now();
      FinishPull(cur);
      report.pull_wait_seconds += Since(tw);

      if (cur.batch.size > 0) {
        const auto tc = Clock::now();
        report.loss_sum += ComputeGradients(cur);
        report.examples += static_cast<std::uint64_t>(cur.batch.size);
        report.compute_seconds += Since(tc);
      } else {
        grads_.Shape(tables_, 0);
      }
      const auto tp = Clock::now();
      if (k >= 1) client_->WaitPushes(k - 1);  // after this push: at most k in flight
      client_->Push(cur.batch.keys, grads_, GlobalStep(epoch, sync_steps, t));
      if (depth == 0 && t + 1 < steps) client_->WaitPushes(k);  // k = 0: the ack before the next pull
      report.push_seconds += Since(tp);
      // cur's pull is consumed and Push copied its keys: the slot is free.
      if (t + 1 + depth < steps) StartBatch(t + 1 + depth, own, &slot_of(t + 1 + depth), &report);
      ++report.batches;
    }
    const auto tw = Clock::now();
    client_->WaitPushes(0);  // the epoch ends with every update applied
    report.push_seconds += Since(tw);
    report.seconds = Since(start);
    report.pulled_bytes = client_->pulled_bytes() - pulled0;
    report.pushed_bytes = client_->pushed_bytes() - pushed0;
    if (cache_) {
      report.cache_lookups = cache_->lookups() - lookups0;
      report.cache_hits = cache_->hits() - hits0;
    }
    return report;
  }

  // Forward, loss, backward and L2 for one batch; leaves gradients in grads_.
  double ComputeGradients(Slot& slot) {
    state_.training = true;
    model_->Forward(slot.batch, slot.params.view, &state_);
    const double loss = loss_->Compute(slot.batch, state_.logits, &state_.dlogits);
    grads_.Shape(tables_, slot.batch.keys.size());
    grads_.Zero();
    model_->Backward(slot.batch, slot.params.view, &state_, grads_.view);
    if (config_.l2 > 0) {
      // L2 on the rows of this batch (the lazy form a parameter server can
      // apply: untouched rows are not decayed).
      for (std::size_t t = 0; t < tables_.size(); ++t) {
        auto& g = grads_.storage[t];
        const auto& w = slot.params.storage[t];
        for (std::size_t i = 0; i < g.size(); ++i) g[i] += config_.l2 * w[i];
      }
    }
    return loss;
  }

  EvalReport Evaluate() {
    const auto start = Clock::now();
    EvalReport report;
    Slot slot;
    // Each distinct row is pulled once per evaluation (EvalRows): the
    // parameters do not change until the next epoch's training.
    std::vector<Key> missing;
    const auto fetch = [&](const Batch& batch) {
      eval_rows_->Missing(batch.keys, &missing);
      if (missing.empty()) return;
      client_->Wait(client_->Pull(missing, &slot.pulled, /*eval=*/true));
      eval_rows_->Store(missing, slot.pulled);
    };
    FetchAllRows(fetch, &slot.batch);
    const ScoreFn score = [&](const std::vector<Example>& examples, std::vector<float>* scores) {
      ReportProgress(0, -1);
      batcher_->Build(examples.data(), static_cast<int>(examples.size()), &slot.batch);
      fetch(slot.batch);
      eval_rows_->Fill(slot.batch.keys, &slot.params);
      state_.training = false;
      model_->Forward(slot.batch, slot.params.view, &state_);
      scores->assign(state_.logits.data(), state_.logits.data() + state_.logits.size());
    };
    report.sums = evaluator_->Evaluate(score);
    report.validation = validator_ ? validator_->Evaluate(score) : RankingSums(config_.topk);
    eval_rows_->Clear();
    report.seconds = Since(start);
    return report;
  }

  // An evaluation scores a chunk of users at a time (~160 users of sampled
  // candidates, ~10 users of full ranking); pulling each chunk's new rows
  // would be one round trip per chunk to a server that sleeps while nobody
  // trains (about 4 ms here: 6 chunks of sampled evaluation on ml-100k, 100
  // of full ranking). So the rows of every user of this worker and of every
  // item (with their side features) are pulled up front, in one request,
  // when they fit in EvalRows; the chunks then pull nothing.
  template <typename Fetch>
  void FetchAllRows(const Fetch& fetch, Batch* batch) {
    const ItemUniverse& items = sampler_->items();
    if (users_.empty() || items.size() == 0 || users_.size() + items.size() > kMaxEvalRows / 4) return;
    std::vector<Example> examples;
    examples.reserve(users_.size() + items.size());
    const std::uint64_t some_item = items[0];
    for (const auto& u : users_) examples.push_back(Example{u.user, some_item, 0.0f});
    const std::uint64_t some_user = users_[0].user;
    items.ForEach([&](std::uint64_t item) { examples.push_back(Example{some_user, item, 0.0f}); });
    batcher_->Build(examples.data(), static_cast<int>(examples.size()), batch);
    // With their side features the rows may still be too many to hold: then
    // the chunks pull what they need as they go.
    if (batch->keys.size() > kMaxEvalRows / 2) return;
    fetch(*batch);
  }

  // Constant after construction.
  Transport& transport_;
  const Topology& topology_;
  const Config& config_;
  const int index_;
  const Clock::duration progress_interval_;

  Clock::time_point next_progress_{};
  Progress last_progress_;  // resent while PsClient waits (the stall watchdog)
  Dataset data_;
  std::vector<UserHistory> users_;
  std::vector<std::vector<std::uint64_t>> train_sorted_;  // per user: training items, sorted
  std::unique_ptr<Model> model_;
  std::unique_ptr<Loss> loss_;
  std::vector<TableSpec> tables_;
  std::unique_ptr<NegativeSampler> sampler_;
  std::unique_ptr<BatchBuilder> batcher_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<Evaluator> validator_;  // --validation only
  std::unique_ptr<PsClient> client_;
  std::unique_ptr<RowCache> cache_;  // --cache-rows with staleness >= 2; training pulls only
  // Rows pulled during an evaluation, kept until it ends; at most 2^20 rows
  // (then it starts again).
  static constexpr std::size_t kMaxEvalRows = std::size_t{1} << 20;
  // Making the next epoch's examples ahead holds two epochs' lists: up to
  // 2 x 256 MiB (11 M examples each); larger lists are made at the epoch's start.
  static constexpr std::size_t kMaxExamplesAheadBytes = std::size_t{256} << 20;
  // Units of EpochExamples::Advance (examples made, or swaps) per step of
  // idle work: a few microseconds.
  static constexpr std::size_t kIdleExampleUnits = 64;
  std::unique_ptr<EvalRows> eval_rows_;
  ModelState state_;
  ParamBuffers grads_;
  std::unique_ptr<EpochExamples> epoch_examples_;
  std::vector<Example> examples_;
};

}  // namespace

void RunWorker(Transport& transport, const Topology& topology, const Config& config) {
#ifdef M_MMAP_THRESHOLD
  // A worker's large buffers (evaluation chunks, model activations, pulled
  // rows) change size from one chunk to the next. glibc maps each block above
  // its mmap threshold afresh and unmaps it when freed, so every chunk paid
  // for munmap and then a page fault per 4 KiB it touched again. Keeping such
  // blocks in the heap, and not trimming it back, reuses the memory instead.
  // 32 MiB is the largest threshold glibc accepts (a larger one is refused,
  // and setting the trim threshold alone would freeze the threshold at its
  // 128 KiB default).
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1) mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  Worker worker(transport, topology, config);
  worker.Run();
}

}  // namespace recsys
