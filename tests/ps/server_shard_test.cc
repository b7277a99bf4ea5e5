#include "ps/server_shard.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/sharding.h"
#include "common/table_spec.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"

namespace recsys {
namespace {

constexpr std::uint64_t kSeed = 1234;

TableSpec Spec(TableId id, int width, InitKind init = InitKind::kNormal, float scale = 0.1f,
               std::int64_t dense_size = 0) {
  TableSpec spec;
  spec.id = id;
  spec.name = "t" + std::to_string(id);
  spec.width = width;
  spec.init = init;
  spec.init_scale = scale;
  spec.dense_size = dense_size;
  return spec;
}

std::unique_ptr<Optimizer> Opt(const std::string& name, float lr = 0.05f) {
  OptimizerConfig config;
  config.name = name;
  config.lr = lr;
  config.initial_accumulator = 0.1f;
  return MakeOptimizer(config);
}

// Compares as bits, so that -0.0 vs 0.0 or two NaNs would not slip through.
bool SameBits(const Real* a, const Real* b, int n) { return std::memcmp(a, b, sizeof(Real) * n) == 0; }

// ---------------------------------------------------------------------------
// EmbeddingTable

TEST(EmbeddingTableTest, FirstPullEqualsInitRowAndIsStable) {
  auto opt = Opt("adagrad");
  for (InitKind init : {InitKind::kNormal, InitKind::kUniform, InitKind::kZeros}) {
    const TableSpec spec = Spec(3, 8, init, 0.5f);
    EmbeddingTable table(spec, kSeed, opt.get());
    for (Key key : {Key{0}, MakeKey(kFieldUser, 17), MakeKey(kFieldItem, 17), ~Key{0}}) {
      std::vector<Real> expected(8), first(8), second(8);
      InitRow(spec, kSeed, key, expected.data());
      table.Pull(key, first.data());
      table.Pull(key, second.data());
      EXPECT_TRUE(SameBits(first.data(), expected.data(), 8)) << "key " << key;
      EXPECT_TRUE(SameBits(second.data(), expected.data(), 8)) << "key " << key;
      // A new row's state is the optimizer's initial state.
      const Real* state = table.FindState(key);
      ASSERT_NE(state, nullptr);
      for (int i = 0; i < 8; ++i) EXPECT_EQ(state[i], 0.1f);
    }
    EXPECT_EQ(table.size(), 4u);
  }
}

TEST(EmbeddingTableTest, FindIsNullForUntouchedKeys) {
  auto opt = Opt("sgd");
  EmbeddingTable table(Spec(0, 4), kSeed, opt.get());
  EXPECT_EQ(table.Find(42), nullptr);  // before any row exists
  std::vector<Real> out(4);
  table.Pull(42, out.data());
  EXPECT_NE(table.Find(42), nullptr);
  for (Key key = 0; key < 1000; ++key) {
    if (key != 42) {
      EXPECT_EQ(table.Find(key), nullptr) << key;
    }
  }
  EXPECT_EQ(table.Find(Key{42} << 32), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

// Keys whose hashes share the home slot (the low bits; here the low 12, so
// for any index of up to 4096 slots, as this table's of 3 rows is) and the
// 7-bit tag (the top 7 bits) can only be told apart by the keys themselves:
// every probe must still compare them.
TEST(EmbeddingTableTest, KeysSharingHomeSlotAndTagStayApart) {
  std::vector<Key> same;
  const std::uint64_t want = Mix64(1);
  for (Key key = 1; same.size() < 4; ++key) {
    const std::uint64_t h = Mix64(key);
    if ((h & 4095) == (want & 4095) && (h >> 57) == (want >> 57)) same.push_back(key);
  }
  auto opt = Opt("sgd", 1.0f);
  EmbeddingTable table(Spec(0, 2), kSeed, opt.get());
  // The first three get rows, with different gradients; the fourth none.
  for (std::size_t i = 0; i < 3; ++i) {
    const std::vector<Real> grad = {static_cast<Real>(i + 1), 0.0f};
    table.Push(same[i], grad.data());
  }
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table.Find(same[3]), nullptr);
  std::vector<Real> batch(8);
  EXPECT_EQ(table.PeekMany(same.data(), 4, batch.data(), /*touch=*/false), 3u);
  for (std::size_t i = 0; i < 4; ++i) {
    std::vector<Real> expected(2);
    InitRow(Spec(0, 2), kSeed, same[i], expected.data());
    if (i < 3) expected[0] -= static_cast<Real>(i + 1);
    ASSERT_NE(table.Find(same[i]) == nullptr, i < 3) << i;
    if (i < 3) {
      EXPECT_EQ(table.Find(same[i])[0], expected[0]) << i;
    }
    EXPECT_EQ(batch[2 * i], expected[0]) << i;
    EXPECT_EQ(batch[2 * i + 1], expected[1]) << i;
  }
}

TEST(EmbeddingTableTest, PushCreatesTheRowThenUpdatesIt) {
  auto opt = Opt("sgd", 0.5f);
  const TableSpec spec = Spec(1, 3);
  EmbeddingTable table(spec, kSeed, opt.get());
  const Key key = MakeKey(kFieldItem, 5);
  const std::vector<Real> grad = {1.0f, -2.0f, 0.0f};
  table.Push(key, grad.data());
  std::vector<Real> init(3), out(3);
  InitRow(spec, kSeed, key, init.data());
  table.Pull(key, out.data());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], init[i] - 0.5f * grad[i]);
}

// The batched calls a server uses (PeekMany, PushManyIfPresent) give the same
// bits as the one-key calls: on a table of 20k rows, with keys that are
// missing, keys repeated within one request, requests shorter and longer
// than the prefetch distance, and both kinds of row tracking.
TEST(EmbeddingTableTest, BatchedPullAndPushEqualTheOneKeyCalls) {
  // Widths with a copy of their own (PeekMany) and one without.
  for (const int w : {9, 16, 33, 64}) {
    for (const bool tracked : {false, true}) {
      SCOPED_TRACE("width " + std::to_string(w) + (tracked ? ", tracked" : ""));
      const std::size_t uw = static_cast<std::size_t>(w);
      auto opt = Opt("adam");
      const TableSpec spec = Spec(0, w);
      RowTracking tracking;
      tracking.epochs = tracking.recency = tracked;
      EmbeddingTable batched(spec, kSeed, opt.get(), tracking), single(spec, kSeed, opt.get(), tracking);
      batched.SetClock(3, 7);
      single.SetClock(3, 7);
      std::vector<Real> grad(uw);
      for (std::uint64_t k = 0; k < 20000; ++k) {
        for (int c = 0; c < w; ++c) grad[static_cast<std::size_t>(c)] = 0.01f * static_cast<float>((k + c) % 7);
        batched.Push(MakeKey(kFieldItem, k), grad.data());
        single.Push(MakeKey(kFieldItem, k), grad.data());
      }
      SplitMix64 rng(5);
      for (const std::size_t n : {0, 1, 7, 16, 17, 500, 3000}) {
        std::vector<Key> keys(n);
        // About a tenth of the keys do not exist; a few repeat.
        for (auto& key : keys) key = MakeKey(kFieldItem, rng.NextBelow(22000));
        if (n > 4) keys[n - 1] = keys[1];
        std::vector<Real> got(n * uw), want(n * uw);
        std::size_t present = 0;
        for (std::size_t i = 0; i < n; ++i) present += single.Peek(keys[i], want.data() + i * uw, true) ? 1 : 0;
        EXPECT_EQ(batched.PeekMany(keys.data(), n, got.data(), true), present);
        EXPECT_TRUE(n == 0 || SameBits(got.data(), want.data(), static_cast<int>(n * uw))) << "pull of " << n << " keys";

        std::vector<Real> grads(n * uw);
        for (std::size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 13) - 0.005f;
        std::vector<bool> missing;
        std::size_t absent = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const bool had = single.PushIfPresent(keys[i], grads.data() + i * uw);
          absent += had ? 0 : 1;
        }
        EXPECT_EQ(batched.PushManyIfPresent(keys.data(), n, grads.data(), &missing), absent);
        ASSERT_EQ(missing.size(), n);
        for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(missing[i], batched.Find(keys[i]) == nullptr) << i;
      }
      // Every row (weights and optimizer state) and its tracking agree.
      ASSERT_EQ(batched.size(), single.size());
      single.ForEachWithEpoch([&](Key key, const Real* row, const Real* state, std::uint32_t epoch) {
        const std::vector<Real> other = batched.RowAndState(key);
        ASSERT_EQ(other.size(), static_cast<std::size_t>(single.stride()));
        EXPECT_TRUE(SameBits(row, other.data(), single.width())) << key;
        EXPECT_TRUE(SameBits(state, other.data() + single.width(), single.stride() - single.width())) << key;
        (void)epoch;
      });
      // Recency: evicting the same number of least recent rows drops the same keys.
      if (tracked) {
        EXPECT_EQ(batched.EvictLeastRecent(5000), single.EvictLeastRecent(5000));
        single.ForEach([&](Key key, const Real*, const Real*) { EXPECT_TRUE(batched.Contains(key)) << key; });
      }
    }
  }
}

// 100k keys, many of them shaped to defeat a weak hash (multiples of 2^32,
// keys differing only in the field byte, powers of two), through a dozen
// rehashes: every row stays findable with its own values.
TEST(EmbeddingTableTest, GrowthKeepsEveryRowFindable) {
  std::vector<Key> keys;
  std::unordered_set<Key> seen;
  auto add = [&](Key k) {
    if (seen.insert(k).second) keys.push_back(k);
  };
  for (Key i = 0; i < 30000; ++i) add(i << 32);                    // multiples of 2^32
  for (Key f = 0; f < 256; ++f) add((f << 56) | 54321);             // only the field differs
  for (Key f = 0; f < 256; ++f) add(f << 56);
  for (int b = 0; b < 64; ++b) add(Key{1} << b);                    // powers of two
  for (Key i = 0; i < 20000; ++i) add(i << 44);                     // high bits only
  for (Key i = 0; i < 20000; ++i) add(MakeKey(kFieldItem, i));      // dense ids
  SplitMix64 rng(99);
  while (keys.size() < 100000) add(rng.Next());
  ASSERT_EQ(keys.size(), 100000u);

  auto opt = Opt("sgd", 0.25f);
  const TableSpec spec = Spec(2, 4);
  EmbeddingTable table(spec, kSeed, opt.get());
  // A gradient that depends on the key, so that a row found under the wrong
  // key would show.
  auto grad_of = [](Key k, Real* g) {
    SplitMix64 r(k);
    for (int i = 0; i < 4; ++i) g[i] = static_cast<Real>(r.NextDouble() - 0.5);
  };
  std::vector<Real> g(4);
  for (Key k : keys) {
    grad_of(k, g.data());
    table.Push(k, g.data());
  }
  ASSERT_EQ(table.size(), keys.size());

  std::vector<Real> expected(4);
  for (Key k : keys) {
    InitRow(spec, kSeed, k, expected.data());
    grad_of(k, g.data());
    opt->Update(expected.data(), nullptr, g.data(), 4, /*step=*/0);
    const Real* row = table.Find(k);
    ASSERT_NE(row, nullptr) << "key " << k;
    ASSERT_TRUE(SameBits(row, expected.data(), 4)) << "key " << k;
  }
  // Neighbours of stored keys were never touched.
  for (Key i = 30000; i < 31000; ++i) EXPECT_EQ(table.Find(i << 32), nullptr) << i;
  for (Key f = 0; f < 256; ++f) EXPECT_EQ(table.Find((f << 56) | 54322), nullptr) << f;

  // ForEach visits each row once.
  std::size_t visited = 0;
  table.ForEach([&](Key k, const Real* row, const Real* /*state*/) {
    ++visited;
    EXPECT_EQ(row, table.Find(k));
  });
  EXPECT_EQ(visited, keys.size());
  EXPECT_EQ(table.size(), keys.size());
}

// Raw bytes of a row: its key plus weights and optimizer state.
double BytesPerRowRatio(const EmbeddingTable& table) {
  const double raw = sizeof(Key) + sizeof(Real) * static_cast<double>(table.stride());
  return static_cast<double>(table.bytes()) / (static_cast<double>(table.size()) * raw);
}

TEST(EmbeddingTableTest, BytesPerRowIsCloseToRaw) {
  auto opt = Opt("adagrad");
  EmbeddingTable table(Spec(0, 16), kSeed, opt.get());
  ASSERT_EQ(table.stride(), 32);
  std::vector<Real> out(16);
  for (Key k = 0; k < 100000; ++k) table.Pull(Mix64(k), out.data());
  const double ratio = BytesPerRowRatio(table);
  std::printf("[ table    ] 100k rows, dim 16, adagrad: %.1f bytes/row, %.3fx raw (136 bytes)\n",
              static_cast<double>(table.bytes()) / 100000.0, ratio);
  EXPECT_LE(ratio, 1.5);
}

TEST(EmbeddingTableTest, ReserveAvoidsGrowth) {
  auto opt = Opt("adagrad");
  EmbeddingTable table(Spec(0, 16), kSeed, opt.get());
  table.Reserve(100000);
  std::vector<Real> out(16);
  table.Pull(0, out.data());
  const Real* first = table.Find(0);
  const Real* first_state = table.FindState(0);
  const std::size_t bytes = table.bytes();
  for (Key k = 1; k < 100000; ++k) table.Pull(Mix64(k), out.data());
  EXPECT_EQ(table.Find(0), first);  // the slab never moved
  EXPECT_EQ(table.FindState(0), first_state);
  EXPECT_EQ(table.bytes(), bytes);
  const double ratio = BytesPerRowRatio(table);
  std::printf("[ table    ] reserved 100k rows, dim 16, adagrad: %.3fx raw\n", ratio);
  EXPECT_LE(ratio, 1.1);
}

TEST(EmbeddingTableTest, BrokenContractsAreChecked) {
  auto opt = Opt("sgd");
  EXPECT_THROW(EmbeddingTable(Spec(0, 0), kSeed, opt.get()), InternalError);
  EXPECT_THROW(EmbeddingTable(Spec(0, 4), kSeed, nullptr), InternalError);
  EmbeddingTable table(Spec(0, 4), kSeed, opt.get());
  EXPECT_THROW(table.Reserve(EmbeddingTable::kMaxRows + 1), InternalError);
}

// ---------------------------------------------------------------------------
// ServerShard

std::vector<TableSpec> ModelSpecs() {
  return {
      Spec(0, 8, InitKind::kNormal, 0.1f),                     // embeddings
      Spec(1, 1, InitKind::kUniform, 0.05f),                   // linear weights
      Spec(2, 4, InitKind::kNormal, 1.0f, /*dense_size=*/10),  // a 3-row dense block
  };
}

TEST(ServerShardTest, UnknownTableIsAnInputError) {
  ServerShard shard(ModelSpecs(), kSeed, OptimizerConfig{});
  const Key key = 1;
  std::vector<Real> buf(8);
  EXPECT_THROW(shard.Pull(3, &key, 1, buf.data()), InputError);
  EXPECT_THROW(shard.Push(3, &key, 1, buf.data()), InputError);
  EXPECT_THROW(shard.Pull(0xffffffffu, &key, 1, buf.data()), InputError);
  EXPECT_EQ(shard.total_rows(), 0u);
}

TEST(ServerShardTest, SpecsMustBeInIdOrder) {
  std::vector<TableSpec> specs = ModelSpecs();
  std::swap(specs[0], specs[1]);
  EXPECT_THROW(ServerShard(specs, kSeed, OptimizerConfig{}), InternalError);
  OptimizerConfig bad;
  bad.name = "lbfgs";
  EXPECT_THROW(ServerShard(ModelSpecs(), kSeed, bad), InputError);
}

TEST(ServerShardTest, DenseBlockRowsInitZeroPastDenseSize) {
  ServerShard shard(ModelSpecs(), kSeed, OptimizerConfig{});
  const std::vector<Key> keys = {MakeKey(kFieldDense, 0), MakeKey(kFieldDense, 1), MakeKey(kFieldDense, 2)};
  std::vector<Real> out(3 * 4, -1.0f);
  shard.Pull(2, keys.data(), keys.size(), out.data());
  // dense_size 10 in rows of 4: floats 10 and 11 are padding.
  for (int i = 0; i < 10; ++i) EXPECT_NE(out[i], 0.0f) << i;  // N(0, 1): never exactly 0
  EXPECT_EQ(out[10], 0.0f);
  EXPECT_EQ(out[11], 0.0f);
  EXPECT_EQ(shard.table(2).size(), 0u);  // pulls create no rows
  std::vector<Real> zero(3 * 4, 0.0f);
  shard.Push(2, keys.data(), keys.size(), zero.data());
  EXPECT_EQ(shard.table(2).size(), 3u);

  // Keys that are not rows of the block come off the wire: InputError.
  std::vector<Real> buf(4);
  for (Key bad : {MakeKey(kFieldDense, 3), MakeKey(kFieldItem, 0), Key{0}}) {
    EXPECT_THROW(shard.Pull(2, &bad, 1, buf.data()), InputError) << bad;
    EXPECT_THROW(shard.Push(2, &bad, 1, buf.data()), InputError) << bad;
  }
  EXPECT_EQ(shard.table(2).size(), 3u);
}

// --dense-lr: the dense blocks step with their own rate, the sparse tables
// with lr. SGD from the initial rows: one push of gradient 1 moves a row by
// exactly its table's step.
TEST(ServerShardTest, DenseBlocksStepWithDenseLr) {
  OptimizerConfig config;
  config.name = "sgd";
  config.lr = 0.5f;
  config.dense_lr = 0.125f;
  ServerShard shard(ModelSpecs(), kSeed, config);
  const Key sparse = MakeKey(kFieldItem, 7), dense = MakeKey(kFieldDense, 1);
  std::vector<Real> before_s(8), after_s(8), before_d(4), after_d(4);
  shard.Pull(0, &sparse, 1, before_s.data());
  shard.Pull(2, &dense, 1, before_d.data());
  const std::vector<Real> ones(8, 1.0f);
  shard.Push(0, &sparse, 1, ones.data());
  shard.Push(2, &dense, 1, ones.data());
  shard.Pull(0, &sparse, 1, after_s.data());
  shard.Pull(2, &dense, 1, after_d.data());
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(before_s[i] - after_s[i], 0.5f, 1e-6f) << i;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(before_d[i] - after_d[i], 0.125f, 1e-6f) << i;

  // 0 (the default) means lr; a bad dense step is refused like a bad lr.
  config.dense_lr = 0.0f;
  ServerShard same(ModelSpecs(), kSeed, config);
  same.Push(2, &dense, 1, ones.data());
  same.Pull(2, &dense, 1, after_d.data());
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(before_d[i] - after_d[i], 0.5f, 1e-6f) << i;
  config.dense_lr = -1.0f;
  EXPECT_THROW(ServerShard(ModelSpecs(), kSeed, config), InputError);
}

TEST(ServerShardTest, TotalsSumOverTables) {
  ServerShard shard(ModelSpecs(), kSeed, OptimizerConfig{});
  EXPECT_EQ(shard.num_tables(), 3u);
  EXPECT_EQ(shard.width(0), 8);
  const std::vector<Key> keys = {1, 2, 3};
  std::vector<Real> out(3 * 8);
  shard.Push(0, keys.data(), 3, out.data());
  shard.Push(1, keys.data(), 2, out.data());
  EXPECT_EQ(shard.total_rows(), 5u);
  EXPECT_EQ(shard.total_bytes(), shard.table(0).bytes() + shard.table(1).bytes() + shard.table(2).bytes());
  EXPECT_GT(shard.total_bytes(), 0u);
}

// The core property: how keys are split over servers must not change the
// result. The same stream of pulls and pushes, sent to one shard or routed
// over three with ShardOf, pulls the same values and leaves bit-identical rows
// and optimizer state.
class ShardingInvarianceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ShardingInvarianceTest, OneShardEqualsThreeShards) {
  const std::vector<TableSpec> specs = ModelSpecs();
  OptimizerConfig config;
  const std::string param = GetParam();
  config.name = param == "adam-dense" ? "adam" : param;
  if (param == "adam-dense") config.adam_mode = "dense";  // the steps' gaps of 3 make it catch up
  config.lr = 0.05f;
  config.initial_accumulator = 0.1f;
  constexpr int kShards = 3;
  ServerShard one(specs, kSeed, config);
  std::vector<std::unique_ptr<ServerShard>> many;
  for (int s = 0; s < kShards; ++s) many.push_back(std::make_unique<ServerShard>(specs, kSeed, config));

  SplitMix64 rng(2024);
  std::vector<std::unordered_set<Key>> touched(specs.size());
  for (int batch = 0; batch < 60; ++batch) {
    for (const TableSpec& spec : specs) {
      const std::size_t width = static_cast<std::size_t>(spec.width);
      // A de-duplicated batch of keys, as workers send them; a small key range
      // so that rows are hit many times (Adam's per-row t grows).
      std::vector<Key> keys;
      std::unordered_set<Key> in_batch;
      const int n = spec.dense() ? static_cast<int>(spec.dense_rows()) : 40;
      for (int i = 0; i < n; ++i) {
        const Key k = spec.dense() ? MakeKey(kFieldDense, static_cast<std::uint64_t>(i))
                                   : MakeKey(static_cast<std::uint8_t>(rng.NextBelow(3)), rng.NextBelow(200));
        if (in_batch.insert(k).second) keys.push_back(k);
      }
      std::vector<Real> grads(keys.size() * width);
      for (Real& g : grads) g = static_cast<Real>(rng.NextDouble() * 2.0 - 1.0);
      touched[spec.id].insert(keys.begin(), keys.end());

      // Route each key, keeping the batch order within a shard.
      std::vector<std::vector<Key>> shard_keys(kShards);
      std::vector<std::vector<Real>> shard_grads(kShards);
      std::vector<std::vector<std::size_t>> shard_pos(kShards);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const int s = ShardOf(spec.id, keys[i], kShards);
        shard_keys[s].push_back(keys[i]);
        shard_grads[s].insert(shard_grads[s].end(), grads.begin() + i * width, grads.begin() + (i + 1) * width);
        shard_pos[s].push_back(i);
      }

      // Pull (as a worker does before its step), then push.
      std::vector<Real> pulled_one(keys.size() * width), pulled_many(keys.size() * width);
      one.Pull(spec.id, keys.data(), keys.size(), pulled_one.data());
      for (int s = 0; s < kShards; ++s) {
        std::vector<Real> part(shard_keys[s].size() * width);
        many[s]->Pull(spec.id, shard_keys[s].data(), shard_keys[s].size(), part.data());
        for (std::size_t j = 0; j < shard_pos[s].size(); ++j) {
          std::memcpy(&pulled_many[shard_pos[s][j] * width], &part[j * width], sizeof(Real) * width);
        }
      }
      ASSERT_EQ(std::memcmp(pulled_one.data(), pulled_many.data(), sizeof(Real) * pulled_one.size()), 0)
          << "batch " << batch << " table " << spec.id;

      // The global step that comes with every push (Adam's bias correction):
      // the same on every shard, as workers send it.
      const std::uint64_t step = static_cast<std::uint64_t>(batch + 1) * 3;
      one.Push(spec.id, keys.data(), keys.size(), grads.data(), step);
      for (int s = 0; s < kShards; ++s) {
        many[s]->Push(spec.id, shard_keys[s].data(), shard_keys[s].size(), shard_grads[s].data(), step);
      }
    }
  }

  // Every row, weights and optimizer state, bit for bit; and each row lives
  // on exactly the shard ShardOf names.
  std::size_t rows_many = 0;
  for (int s = 0; s < kShards; ++s) rows_many += many[s]->total_rows();
  EXPECT_EQ(one.total_rows(), rows_many);
  for (const TableSpec& spec : specs) {
    const int stride = one.table(spec.id).stride();
    for (Key k : touched[spec.id]) {
      const int home = ShardOf(spec.id, k, kShards);
      const std::vector<Real> a = one.table(spec.id).RowAndState(k);
      const std::vector<Real> b = many[home]->table(spec.id).RowAndState(k);
      ASSERT_EQ(a.size(), static_cast<std::size_t>(stride));
      ASSERT_EQ(b.size(), static_cast<std::size_t>(stride)) << "key " << k << " missing on shard " << home;
      EXPECT_TRUE(SameBits(a.data(), b.data(), stride)) << "table " << spec.id << " key " << k;
      for (int s = 0; s < kShards; ++s) {
        if (s != home) {
          EXPECT_EQ(many[s]->table(spec.id).Find(k), nullptr);
        }
      }
    }
  }
  // The rows did move away from their initial values.
  std::vector<Real> init(8);
  const Key some = *touched[0].begin();
  InitRow(specs[0], kSeed, some, init.data());
  EXPECT_FALSE(SameBits(one.table(0).Find(some), init.data(), 8));
}

INSTANTIATE_TEST_SUITE_P(ServerShard, ShardingInvarianceTest, ::testing::Values("sgd", "adagrad", "adam", "adam-dense"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           std::string name = param.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace recsys
