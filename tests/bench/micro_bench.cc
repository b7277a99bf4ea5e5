// Micro-benchmarks of the hot kernels (Google Benchmark). Not run by ctest:
//
//   build/tests/bench/recsys_bench [--benchmark_filter=REGEX] [--benchmark_repetitions=3]
//
// Shapes follow the MovieLens-100k runs of launch/bench_train.sh: batch 256,
// dim 32 (rows of 33 floats: factors and the linear weight), ~2,600 keys,
// about 450 distinct keys per batch with ids only and 470 with side features.
// Where an optimisation replaced a simpler form, the old form is kept here as
// a "Baseline" benchmark so both are measured in the same run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <numeric>
#include <random>
#include <unordered_map>
#include <vector>

#include "common/data/dataset.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/table_spec.h"
#include "common/topology.h"
#include "common/transport.h"
#include "common/wire.h"
#include "models/loss.h"
#include "models/model.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"
#include "worker/batcher.h"
#include "worker/epoch_examples.h"
#include "worker/ps_client.h"

namespace recsys {
namespace {

constexpr int kBatch = 256;
constexpr int kDim = 32;
constexpr int kUsers = 943;
constexpr int kItems = 1682;

// ---- A MovieLens-100k-like data set and the examples of one batch ----

// Zipf-like item popularity: a few items in most batches, as in ml-100k.
std::uint64_t ZipfItem(SplitMix64& rng) {
  const double u = rng.NextDouble();
  return 1 + static_cast<std::uint64_t>(std::pow(u, 2.5) * (kItems - 1));
}

Dataset MakeMl100kLike(bool side) {
  Dataset d;
  if (!side) return d;
  SplitMix64 rng(7);
  for (std::uint64_t u = 1; u <= kUsers; ++u) {
    d.user_features[u] = {{MakeKey(kFieldAge, rng.NextBelow(7)), 1.0f},
                          {MakeKey(kFieldGender, rng.NextBelow(2)), 1.0f},
                          {MakeKey(kFieldOccupation, rng.NextBelow(21)), 1.0f}};
  }
  for (std::uint64_t i = 1; i <= kItems; ++i) {
    const int n = 1 + static_cast<int>(rng.NextBelow(3));
    std::vector<Feature> f;
    for (int g = 0; g < n; ++g) f.push_back({MakeKey(kFieldGenre, rng.NextBelow(19)), 1.0f / n});
    d.item_features[i] = f;
  }
  d.user_slot_fields = {kFieldAge, kFieldGender, kFieldOccupation};
  d.item_slot_fields.assign(6, kFieldGenre);
  return d;
}

std::vector<std::uint8_t> SlotFields(const Dataset& d) { return SlotLayout(d.user_slot_fields, d.item_slot_fields); }

// `batches` batches of examples: each positive followed by 4 negatives of the
// same user, as the worker's epoch before its shuffle (users cluster a bit).
std::vector<Example> MakeExamples(int batches, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<Example> ex;
  ex.reserve(static_cast<std::size_t>(batches) * kBatch);
  while (ex.size() < static_cast<std::size_t>(batches) * kBatch) {
    const std::uint64_t user = 1 + rng.NextBelow(kUsers);
    ex.push_back({user, ZipfItem(rng), 1.0f});
    for (int k = 0; k < 4; ++k) ex.push_back({user, 1 + rng.NextBelow(kItems), 0.0f});
  }
  ex.resize(static_cast<std::size_t>(batches) * kBatch);
  std::shuffle(ex.begin(), ex.end(), rng);
  return ex;
}

// ---- Key de-duplication: BatchBuilder::Build ----

// The form BatchBuilder had before: std::unordered_map for the key index and
// a map lookup per example for each side of the features.
class BaselineBatchBuilder {
 public:
  BaselineBatchBuilder(std::vector<std::uint8_t> slot_field, const Dataset* data)
      : slot_field_(std::move(slot_field)), data_(data) {
    user_slots_ = static_cast<int>(data_->user_slot_fields.size());
    item_slots_ = static_cast<int>(data_->item_slot_fields.size());
    index_.reserve(4096);
  }
  void Build(const Example* examples, int n, Batch* batch) {
    const int slots = static_cast<int>(slot_field_.size());
    batch->size = n;
    batch->slots = slots;
    batch->slot_field = slot_field_;
    batch->row.assign(static_cast<std::size_t>(n) * slots, -1);
    batch->value.assign(static_cast<std::size_t>(n) * slots, 0.0f);
    batch->label.resize(static_cast<std::size_t>(n));
    batch->keys.clear();
    index_.clear();
    static const std::vector<Feature> kNone;
    for (int e = 0; e < n; ++e) {
      const Example& ex = examples[e];
      std::int32_t* row = batch->row.data() + static_cast<std::size_t>(e) * slots;
      Real* value = batch->value.data() + static_cast<std::size_t>(e) * slots;
      batch->label[static_cast<std::size_t>(e)] = ex.label;
      row[0] = Intern(MakeKey(kFieldUser, ex.user), batch);
      value[0] = 1.0f;
      row[1] = Intern(MakeKey(kFieldItem, ex.item), batch);
      value[1] = 1.0f;
      if (user_slots_ > 0) {
        auto it = data_->user_features.find(ex.user);
        const auto& features = it == data_->user_features.end() ? kNone : it->second;
        for (int j = 0; j < user_slots_ && j < static_cast<int>(features.size()); ++j) {
          row[2 + j] = Intern(features[static_cast<std::size_t>(j)].key, batch);
          value[2 + j] = features[static_cast<std::size_t>(j)].value;
        }
      }
      if (item_slots_ > 0) {
        auto it = data_->item_features.find(ex.item);
        const auto& features = it == data_->item_features.end() ? kNone : it->second;
        for (int j = 0; j < item_slots_ && j < static_cast<int>(features.size()); ++j) {
          row[2 + user_slots_ + j] = Intern(features[static_cast<std::size_t>(j)].key, batch);
          value[2 + user_slots_ + j] = features[static_cast<std::size_t>(j)].value;
        }
      }
    }
  }

 private:
  std::int32_t Intern(Key key, Batch* batch) {
    auto [it, inserted] = index_.try_emplace(key, static_cast<std::int32_t>(batch->keys.size()));
    if (inserted) batch->keys.push_back(key);
    return it->second;
  }
  const std::vector<std::uint8_t> slot_field_;
  const Dataset* data_;
  int user_slots_ = 0;
  int item_slots_ = 0;
  std::unordered_map<Key, std::int32_t> index_;
};

template <typename Builder>
void RunBuild(benchmark::State& state) {
  const bool side = state.range(0) != 0;
  const Dataset data = MakeMl100kLike(side);
  Builder builder(SlotFields(data), &data);
  constexpr int kBatches = 64;
  const std::vector<Example> ex = MakeExamples(kBatches, 3);
  Batch batch;
  int b = 0;
  std::size_t keys = 0;
  for (auto _ : state) {
    builder.Build(ex.data() + static_cast<std::size_t>(b) * kBatch, kBatch, &batch);
    keys += batch.keys.size();
    benchmark::DoNotOptimize(batch.keys.data());
    b = (b + 1) % kBatches;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["keys/batch"] = static_cast<double>(keys) / static_cast<double>(state.iterations());
}
void BM_BatchBuild(benchmark::State& state) { RunBuild<BatchBuilder>(state); }
void BM_BatchBuild_Baseline(benchmark::State& state) { RunBuild<BaselineBatchBuilder>(state); }
BENCHMARK(BM_BatchBuild)->ArgName("side")->Arg(0)->Arg(1);

// One epoch's examples (EpochExamples: 4 negatives per positive, then the
// shuffle) for MovieLens-100k's shape: 943 users with 105 training positives
// each, 1,682 items, 495k examples. The worker makes them while it waits for
// pulls; this is their whole cost, were it paid at the epoch's start.
void BM_EpochExamples(benchmark::State& state) {
  std::vector<UserHistory> users(943);
  std::vector<std::vector<std::uint64_t>> train_sorted(users.size());
  SplitMix64 rng(3);
  for (std::size_t u = 0; u < users.size(); ++u) {
    users[u].user = u;
    for (int k = 0; k < 105; ++k) users[u].train.push_back(rng.NextBelow(1682));
    train_sorted[u] = users[u].train;
    std::sort(train_sorted[u].begin(), train_sorted[u].end());
    train_sorted[u].erase(std::unique(train_sorted[u].begin(), train_sorted[u].end()), train_sorted[u].end());
  }
  const NegativeSampler sampler(ItemUniverse(1682, {}));
  EpochExamples maker(&users, &train_sorted, &sampler, 4, false);
  std::vector<Example> out;
  std::uint64_t seed = 0;
  for (auto _ : state) {
    maker.Start(++seed);
    maker.Finish(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(maker.size()));
}
BENCHMARK(BM_EpochExamples)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BatchBuild_Baseline)->ArgName("side")->Arg(0)->Arg(1);

// ---- Row gather / scatter over a plain row-major array ----

std::vector<std::int32_t> RandomRows(int n, std::int64_t rows, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
  for (auto& i : idx) i = static_cast<std::int32_t>(rng.NextBelow(static_cast<std::uint64_t>(rows)));
  return idx;
}

// Gathers `per_set` random rows of `width` floats, `stride` floats apart in
// a table of `rows` rows, into a contiguous block; cycles through `sets`
// sets of rows.
void RunRowGather(benchmark::State& state, std::int64_t rows, std::size_t width, std::size_t stride, int per_set,
                  int sets_count) {
  std::vector<Real> table(static_cast<std::size_t>(rows) * stride, 1.0f);
  std::vector<Real> out(static_cast<std::size_t>(per_set) * width);
  std::vector<std::vector<std::int32_t>> sets;
  for (int s = 0; s < sets_count; ++s) sets.push_back(RandomRows(per_set, rows, static_cast<std::uint64_t>(s)));
  std::size_t s = 0;
  for (auto _ : state) {
    const auto& idx = sets[s];
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::memcpy(out.data() + i * width, table.data() + static_cast<std::size_t>(idx[i]) * stride,
                  sizeof(Real) * width);
    }
    benchmark::DoNotOptimize(out.data());
    if (++s == sets.size()) s = 0;
  }
  state.SetItemsProcessed(state.iterations() * per_set);
  state.SetBytesProcessed(state.iterations() * per_set * static_cast<std::int64_t>(width * sizeof(Real)));
}

// Args: table rows, row width. Gathers 512 random rows into a contiguous block.
void BM_RowGather(benchmark::State& state) {
  const auto width = static_cast<std::size_t>(state.range(1));
  RunRowGather(state, state.range(0), width, width, 512, 64);
}
BENCHMARK(BM_RowGather)->Args({2626, 33})->Args({1 << 20, 16})->Args({1 << 20, 33})->Args({1 << 20, 64});

// Args: table rows, row width, row stride (floats from one row's start to
// the next). The server's slab keeps each row's optimizer state right after
// its weights, so a pull gathers `width` floats out of every `stride`
// (Adam: 33 of 100); stride == width is the same rows stored alone. 10,000
// rows a request, as bench_ps's largest.
void BM_RowGatherStrided(benchmark::State& state) {
  RunRowGather(state, state.range(0), static_cast<std::size_t>(state.range(1)), static_cast<std::size_t>(state.range(2)),
               10000, 16);
}
BENCHMARK(BM_RowGatherStrided)
    ->ArgNames({"rows", "width", "stride"})
    ->Args({12000, 33, 33})
    ->Args({12000, 33, 100})
    ->Args({1 << 20, 33, 33})
    ->Args({1 << 20, 33, 100});

// Scatter-add of 512 rows of gradients into random rows.
void BM_RowScatterAdd(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const int width = static_cast<int>(state.range(1));
  std::vector<Real> table(static_cast<std::size_t>(rows) * width, 1.0f);
  std::vector<Real> grads(512 * static_cast<std::size_t>(width), 0.5f);
  std::vector<std::vector<std::int32_t>> sets;
  for (int s = 0; s < 64; ++s) sets.push_back(RandomRows(512, rows, static_cast<std::uint64_t>(s)));
  int s = 0;
  for (auto _ : state) {
    const auto& idx = sets[static_cast<std::size_t>(s)];
    for (std::size_t i = 0; i < idx.size(); ++i) {
      Real* dst = table.data() + static_cast<std::size_t>(idx[i]) * width;
      const Real* src = grads.data() + i * width;
      for (int j = 0; j < width; ++j) dst[j] += src[j];
    }
    benchmark::DoNotOptimize(table.data());
    s = (s + 1) & 63;
  }
  state.SetItemsProcessed(state.iterations() * 512);
  state.SetBytesProcessed(state.iterations() * 512 * width * static_cast<std::int64_t>(sizeof(Real)));
}
BENCHMARK(BM_RowScatterAdd)->Args({2626, 33})->Args({1 << 20, 33});

// ---- The server's table: hash lookup + copy (pull) and optimizer (push) ----

std::vector<Key> TableKeys(std::int64_t rows) {
  std::vector<Key> keys(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) keys[static_cast<std::size_t>(i)] = MakeKey(kFieldItem, static_cast<std::uint64_t>(i));
  return keys;
}

// `baseline`: the x86-64 baseline loops even where the CPU has AVX
// (OptimizerConfig::baseline_loops), to show what the AVX clones gain.
std::unique_ptr<Optimizer> NamedOptimizer(int which, bool baseline = false) {
  OptimizerConfig c;
  c.baseline_loops = baseline;
  c.name = which == 0 ? "sgd" : which == 1 ? "adagrad" : "adam";
  c.lr = 0.002f;
  return MakeOptimizer(c);
}

TableSpec SparseSpec(int width) {
  TableSpec spec;
  spec.name = "emb";
  spec.width = width;
  spec.init = InitKind::kNormal;
  spec.init_scale = 0.01f;
  return spec;
}

// A table of `rows` rows of width 33 (keys TableKeys(rows), created by
// pulls) with optimizer `optimizer` (0 sgd, 1 adagrad, 2 adam), and 64 sets
// of 512 of its keys drawn at random (about a batch's distinct keys each),
// which the table benchmarks below cycle through.
// A table of `rows` rows of width 33 and 64 requests of `per_set` random
// keys each (repeats possible, as RandomRows draws with replacement).
struct FilledTable {
  // `in_order`: each set's keys in the table's row order (as sorted keys
  // inserted in order come), instead of at random.
  FilledTable(int optimizer, std::int64_t rows, bool baseline = false, int per_set = 512, bool in_order = false)
      : opt(NamedOptimizer(optimizer, baseline)), table(SparseSpec(33), 1, opt.get()) {
    const auto keys = TableKeys(rows);
    std::vector<Real> out(33);
    for (Key k : keys) table.Pull(k, out.data());
    for (int s = 0; s < 64; ++s) {
      std::vector<Key> set;
      std::vector<std::int32_t> picked = RandomRows(per_set, rows, static_cast<std::uint64_t>(s));
      if (in_order) std::sort(picked.begin(), picked.end());
      for (std::int32_t r : picked) {
        set.push_back(keys[static_cast<std::size_t>(r)]);
      }
      sets.push_back(std::move(set));
    }
  }
  // The next set, round robin.
  const std::vector<Key>& Next() {
    const auto& set = sets[next];
    next = (next + 1) & 63;
    return set;
  }

  std::unique_ptr<Optimizer> opt;
  EmbeddingTable table;
  std::vector<std::vector<Key>> sets;
  std::size_t next = 0;
};

// Args: table rows. One key at a time (Pull), as the server did before its
// batched path.
void BM_TablePull(benchmark::State& state) {
  FilledTable f(2, state.range(0));
  std::vector<Real> block(512 * 33);
  for (auto _ : state) {
    const auto& set = f.Next();
    for (std::size_t i = 0; i < set.size(); ++i) f.table.Pull(set[i], block.data() + i * 33);
    benchmark::DoNotOptimize(block.data());
  }
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_TablePull)->Arg(2626)->Arg(1 << 20);

// Requests through the server's batched path (PeekMany: prefetching
// lookups, one call per request). Args: table rows, keys per request (512 as
// a batch's pull; 10,000 as bench_ps's, whose rows overflow L2; 100,000, whose
// rows and reply outgrow the L3 cache).
void BM_TablePullMany(benchmark::State& state) {
  const int per_set = static_cast<int>(state.range(1));
  FilledTable f(2, state.range(0), false, per_set);
  std::vector<Real> block(static_cast<std::size_t>(per_set) * 33);
  for (auto _ : state) {
    const auto& set = f.Next();
    f.table.PeekMany(set.data(), set.size(), block.data(), true);
    benchmark::DoNotOptimize(block.data());
  }
  state.SetItemsProcessed(state.iterations() * per_set);
}
BENCHMARK(BM_TablePullMany)
    ->ArgNames({"rows", "keys"})
    ->Args({2626, 512})
    ->Args({1 << 20, 512})
    ->Args({12000, 10000})
    ->Args({120000, 100000})
    ->Args({1 << 20, 10000});

// Args: optimizer (0 sgd, 1 adagrad, 2 adam), table rows. Sparse update of
// 512 random rows of width 33 (lookup + update), as a server applies a push,
// one key at a time.
void BM_TablePush(benchmark::State& state) {
  FilledTable f(static_cast<int>(state.range(0)), state.range(1));
  std::vector<Real> grads(512 * 33, 1e-3f);
  for (auto _ : state) {
    const auto& set = f.Next();
    for (std::size_t i = 0; i < set.size(); ++i) f.table.Push(set[i], grads.data() + i * 33);
  }
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_TablePush)->ArgNames({"opt", "rows"})->Args({0, 2626})->Args({1, 2626})->Args({2, 2626})->Args({2, 1 << 20});

// The same updates through the server's batched path (PushManyIfPresent).
// Args: table rows (Adam), baseline loops (1) or AVX where the CPU has it (0),
// keys per request, keys at random (0) or in the table's row order (1).
void BM_TablePushMany(benchmark::State& state) {
  const int per_set = static_cast<int>(state.range(2));
  FilledTable f(2, state.range(0), state.range(1) != 0, per_set, state.range(3) != 0);
  std::vector<Real> grads(static_cast<std::size_t>(per_set) * 33, 1e-3f);
  std::vector<bool> missing;
  for (auto _ : state) {
    const auto& set = f.Next();
    f.table.PushManyIfPresent(set.data(), set.size(), grads.data(), &missing);
  }
  state.SetItemsProcessed(state.iterations() * per_set);
}
BENCHMARK(BM_TablePushMany)
    ->ArgNames({"rows", "base", "keys", "ordered"})
    ->Args({2626, 0, 512, 0})
    ->Args({2626, 1, 512, 0})
    ->Args({1 << 20, 0, 512, 0})
    ->Args({12000, 0, 10000, 0})
    ->Args({12000, 0, 10000, 1})
    ->Args({120000, 0, 100000, 1});

// The optimizer's update alone, on 512 contiguous rows of width 33 (no lookup).
// Args: optimizer, and for Adam the rows' initial step count: younger rows
// than 2^15 steps read their bias corrections from the table, older ones
// take none with the default betas (until session 7 they took the pow()
// path, the form every update took before they were tabulated); then
// baseline loops (1) or AVX where the CPU has it (0).
void BM_OptimizerUpdate(benchmark::State& state) {
  const auto opt = NamedOptimizer(static_cast<int>(state.range(0)), state.range(2) != 0);
  constexpr int kWidth = 33;
  const int stride = kWidth + opt->StateSize(kWidth);
  std::vector<Real> slab(512 * static_cast<std::size_t>(stride), 0.0f);
  for (int r = 0; r < 512; ++r) {
    opt->InitState(slab.data() + r * stride + kWidth, kWidth);
    if (state.range(0) == 2) slab[static_cast<std::size_t>(r) * stride + kWidth + 2 * kWidth] = static_cast<Real>(state.range(1));
  }
  std::vector<Real> grads(512 * kWidth, 1e-3f);
  for (auto _ : state) {
    for (int r = 0; r < 512; ++r) {
      Real* row = slab.data() + static_cast<std::size_t>(r) * stride;
      opt->Update(row, row + kWidth, grads.data() + r * kWidth, kWidth, /*step=*/0);
    }
    benchmark::DoNotOptimize(slab.data());
  }
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_OptimizerUpdate)
    ->ArgNames({"opt", "t0", "base"})
    ->Args({0, 0, 0})
    ->Args({1, 0, 0})
    ->Args({1, 0, 1})
    ->Args({2, 0, 0})
    ->Args({2, 0, 1})
    ->Args({2, 1 << 20, 0});

// ---- Models: forward + loss + backward of one batch ----

struct ModelFixture {
  std::unique_ptr<Model> model;
  std::vector<TableSpec> tables;
  Batch batch;
  ParamBuffers params;
  ParamBuffers grads;
  ModelState state;
  std::unique_ptr<Loss> loss = MakeLoss("bce");

  ModelFixture(const std::string& name, bool side) {
    const Dataset data = MakeMl100kLike(side);
    ModelConfig mc;
    mc.name = name;
    mc.dim = kDim;
    mc.slot_field = SlotFields(data);
    if (name == "nfm") mc.layers = {64};
    if (name == "deepfm" || name == "wide_deep") mc.layers = {64, 32};
    if (name == "mlp" || name == "neumf") mc.layers = {64, 32, 16};
    model = MakeModel(mc);
    tables = model->Tables();
    BatchBuilder builder(mc.slot_field, &data);
    const auto ex = MakeExamples(1, 5);
    builder.Build(ex.data(), kBatch, &batch);
    params.Shape(tables, batch.keys.size());
    SplitMix64 rng(9);
    for (auto& s : params.storage) {
      for (auto& v : s) v = static_cast<Real>(rng.NextDouble() * 0.2 - 0.1);
    }
    grads.Shape(tables, batch.keys.size());
  }

  void Step() {
    state.training = true;
    model->Forward(batch, params.view, &state);
    loss->Compute(batch, state.logits, &state.dlogits);
    grads.Zero();
    model->Backward(batch, params.view, &state, grads.view);
  }
};

// Args: model index into kModels.
const char* const kModels[] = {"mf", "fm", "gmf", "mlp", "neumf", "nfm", "deepfm", "wide_deep"};
bool SideFor(const std::string& m) { return m == "fm" || m == "nfm" || m == "deepfm" || m == "wide_deep"; }

void BM_ModelStep(benchmark::State& state) {
  const std::string name = kModels[state.range(0)];
  ModelFixture f(name, SideFor(name));
  state.SetLabel(name);
  for (auto _ : state) {
    f.Step();
    benchmark::DoNotOptimize(f.grads.storage[0].data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ModelStep)->DenseRange(0, 7);

void BM_ModelForward(benchmark::State& state) {
  const std::string name = kModels[state.range(0)];
  ModelFixture f(name, SideFor(name));
  state.SetLabel(name);
  f.state.training = false;
  for (auto _ : state) {
    f.model->Forward(f.batch, f.params.view, &f.state);
    benchmark::DoNotOptimize(f.state.logits.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ModelForward)->DenseRange(0, 7);

// ---- PS client: frame packing and unpacking against an in-process fake ----

// A transport whose "server" answers every pull at once with zero rows and
// acknowledges every push, so a benchmark sees only the client's work (routing,
// packing, unpacking) and a reply's construction.
class EchoServerTransport final : public Transport {
 public:
  // Ranks: the coordinator, `servers` servers, then this worker.
  explicit EchoServerTransport(std::vector<TableSpec> tables, int servers = 1)
      : tables_(std::move(tables)), servers_(servers) {}
  int rank() const override { return servers_ + 1; }
  int size() const override { return servers_ + 2; }
  void Send(int dest, int tag, Bytes data) override {
    FrameReader in(data, "bench");
    const auto header = in.Get<FrameHeader>();
    Message reply;
    reply.source = dest;
    if (tag == kTagPush) {
      reply.tag = kTagPushAck;
      FrameWriter out(&reply.data);
      out.Put(header.request);
    } else {
      reply.tag = kTagPullReply;
      in.Get<ReplyPlace>();  // no area here: replies are messages
      FrameWriter out(&reply.data);
      out.Put(header);
      for (std::uint32_t s = 0; s < header.sections; ++s) {
        const auto sec = in.Get<SectionHeader>();
        in.GetArray<Key>(sec.n);
        out.Put(sec);
        out.Extend<Real>(std::size_t{sec.n} * static_cast<std::size_t>(tables_[sec.table].width));
      }
    }
    queue_.push_back(std::move(reply));
  }
  bool TryRecv(int /*source*/, int tag, Message* out) override {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (tag == kAnyTag || it->tag == tag) {
        *out = std::move(*it);
        queue_.erase(it);
        return true;
      }
    }
    return false;
  }
  [[noreturn]] void Abort(int code) override { throw TransportAborted(code); }
  void FlushSends() override {}

 private:
  std::vector<TableSpec> tables_;
  int servers_;
  std::deque<Message> queue_;
};

// Args: model index, servers. One pull (with its reply) and one push of a
// batch; with 2 servers each gets its share of the rows, which the client
// gathers and scatters row by row.
void BM_PsClientPullPush(benchmark::State& state) {
  const std::string name = kModels[state.range(0)];
  const int servers = static_cast<int>(state.range(1));
  ModelFixture f(name, SideFor(name));
  state.SetLabel(name);
  EchoServerTransport transport(f.tables, servers);
  const Topology topology(servers + 2, servers);
  PsClient client(&transport, topology, f.tables, false);
  ParamBuffers rows;
  for (auto _ : state) {
    client.Wait(client.Pull(f.batch.keys, &rows));
    client.Push(f.batch.keys, f.grads);
    client.WaitPushes(0);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["bytes/iter"] =
      static_cast<double>(client.pulled_bytes() + client.pushed_bytes()) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_PsClientPullPush)
    ->ArgNames({"model", "servers"})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({4, 1})
    ->Args({6, 1})
    ->Args({0, 2})
    ->Args({4, 2});

}  // namespace
}  // namespace recsys

BENCHMARK_MAIN();
