// Large tables: the bytes-per-row bound of the slab layout, memory and row
// limits (error and eviction), id admission (--min-count), expiry
// (--expire-after) and their checkpoint fields.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/sharding.h"
#include "ps/admission.h"
#include "ps/checkpoint.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"
#include "ps/server_shard.h"
#include "tests/file_test_util.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;
using testing_util::ReadAll;
using testing_util::WriteAll;

constexpr std::uint64_t kSeed = 77;

TableSpec Spec(TableId id, int width, std::int64_t dense_size = 0) {
  TableSpec spec;
  spec.id = id;
  spec.name = "t" + std::to_string(id);
  spec.width = width;
  spec.init = InitKind::kNormal;
  spec.init_scale = 0.1f;
  spec.dense_size = dense_size;
  return spec;
}

OptimizerConfig Opt(const std::string& name) {
  OptimizerConfig o;
  o.name = name;
  o.lr = 0.05f;
  return o;
}

template <typename Fn>
void ExpectInputError(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "'" << part << "' not in: " << e.what();
    }
  }
}

// ---------------------------------------------------------------------------
// Bytes per row: a property of the layout, checked at every size on the way.

struct LayoutCase {
  const char* optimizer;
  int width;
  RowTracking tracking;
};

TEST(LargeTableTest, BytesPerRowStaysWithinOneAndAHalfOfRawAtEverySize) {
  const LayoutCase cases[] = {
      {"adagrad", 16, {}},            // the benchmark's table: 136 raw bytes
      {"adagrad", 16, {true, true}},  // with expiry and eviction bookkeeping
      {"sgd", 8, {}},                 // 40 raw bytes, the smallest the bound covers
      {"adam", 32, {true, false}},
  };
  for (const LayoutCase& c : cases) {
    auto opt = MakeOptimizer(Opt(c.optimizer));
    EmbeddingTable table(Spec(0, c.width), kSeed, opt.get(), c.tracking);
    std::vector<Real> grad(static_cast<std::size_t>(c.width), 0.01f);
    double worst = 0;
    std::size_t worst_at = 0;
    for (std::size_t n = 1; n <= 200000; ++n) {
      table.Push(Mix64(n), grad.data());
      if (n >= 1000 && (n % 97 == 0 || n == 200000)) {
        const double ratio = static_cast<double>(table.bytes()) / static_cast<double>(table.raw_bytes());
        if (ratio > worst) {
          worst = ratio;
          worst_at = n;
        }
        ASSERT_LE(ratio, 1.5) << c.optimizer << " dim " << c.width << " at " << n << " rows";
      }
    }
    std::printf("[ layout   ] %s dim %d (%zu raw bytes/row%s): worst %.3fx raw at %zu rows, %.3fx at 200k\n",
                c.optimizer, c.width, table.RawRowBytes(),
                c.tracking.epochs || c.tracking.recency ? ", tracked" : "", worst, worst_at,
                static_cast<double>(table.bytes()) / static_cast<double>(table.raw_bytes()));
  }
}

// Chunks of 64 KiB instead of 8 MiB: the same code paths over many chunks
// (a new chunk, the chunk list's own growth) with few rows.
constexpr std::size_t kSmallChunks = std::size_t{64} << 10;

TEST(LargeTableTest, GrowthBytesPredictsEveryAllocation) {
  auto opt = MakeOptimizer(Opt("adagrad"));
  for (std::size_t chunk_bytes : {EmbeddingTable::kChunkBytes, kSmallChunks}) {
    EmbeddingTable table(Spec(0, 16), kSeed, opt.get(), RowTracking{true, true}, chunk_bytes);
    std::vector<Real> grad(16, 0.01f);
    for (std::size_t n = 0; n < 60000; ++n) {
      const std::size_t before = table.bytes();
      const std::size_t growth = table.GrowthBytes();
      table.Push(Mix64(n + 1), grad.data());
      ASSERT_EQ(table.bytes(), before + growth) << "row " << n << ", chunks of " << chunk_bytes << " bytes";
    }
  }
}

TEST(LargeTableTest, CompactionKeepsRowsAndShrinks) {
  auto opt = MakeOptimizer(Opt("sgd"));
  // 72 raw bytes + 8 of tracking: within the documented bound. In chunks of
  // 512 rows, so that compaction moves rows across chunks and Shrink frees
  // whole ones.
  EmbeddingTable table(Spec(0, 16), kSeed, opt.get(), RowTracking{true, true}, kSmallChunks);
  std::vector<Real> grad(16, 0.5f);
  for (std::uint32_t e = 1; e <= 4; ++e) {
    table.SetClock(e, e);
    for (Key k = 0; k < 20000; ++k) {
      if (k % 4 < e) table.Push(Mix64(k), grad.data());
    }
  }
  // Key k is pushed in epochs k % 4 + 1 .. 4 (4 - k % 4 times): every row
  // was last touched in epoch 4. Epoch 5 touches the even keys only.
  EXPECT_EQ(table.size(), 20000u);
  table.SetClock(5, 5);
  for (Key k = 0; k < 20000; k += 2) table.Push(Mix64(k), grad.data());
  const std::size_t bytes = table.bytes();
  EXPECT_EQ(table.DropTouchedBefore(5), 10000u);
  EXPECT_EQ(table.size(), 10000u);
  EXPECT_LT(table.bytes(), bytes);
  EXPECT_LE(static_cast<double>(table.bytes()) / static_cast<double>(table.raw_bytes()), 1.5);
  for (Key k = 0; k < 20000; ++k) {
    const Real* row = table.Find(Mix64(k));
    if (k % 2 == 1) {
      EXPECT_EQ(row, nullptr) << k;
      continue;
    }
    ASSERT_NE(row, nullptr) << k;
    // Pushed in epochs (k % 4 < e) plus epoch 5: a count of SGD steps.
    const int pushes = 4 - static_cast<int>(k % 4) + 1;
    std::vector<Real> init(16);
    InitRow(table.spec(), kSeed, Mix64(k), init.data());
    EXPECT_NEAR(row[0], init[0] - 0.05f * 0.5f * static_cast<float>(pushes), 1e-5) << k;
  }
}

// ---------------------------------------------------------------------------
// Limits.

std::vector<TableSpec> TwoTables() { return {Spec(0, 8), Spec(1, 4, /*dense_size=*/8)}; }

TEST(LargeTableTest, RowLimitStopsWithAClearError) {
  ShardPolicy policy;
  policy.max_rows = 100;
  policy.who = "server rank 3";
  ServerShard shard(TwoTables(), kSeed, Opt("sgd"), policy);
  std::vector<Real> grad(8, 0.1f);
  for (Key k = 0; k < 100; ++k) shard.Push(0, &k, 1, grad.data());
  EXPECT_EQ(shard.total_rows(), 100u);
  const Key extra = 100;
  ExpectInputError([&] { shard.Push(0, &extra, 1, grad.data()); },
                   {"server rank 3", "--max-rows-per-server 100", "100 rows held", "--on-table-full evict"});
  EXPECT_EQ(shard.total_rows(), 100u);
  const Key old = 7;
  EXPECT_NO_THROW(shard.Push(0, &old, 1, grad.data()));  // an existing row needs no room
}

TEST(LargeTableTest, MemoryLimitIsCheckedBeforeAllocating) {
  for (std::uint64_t limit : {std::uint64_t{64} << 10, std::uint64_t{1} << 20, std::uint64_t{5} << 20}) {
    ShardPolicy policy;
    policy.max_bytes = limit;
    policy.who = "server rank 2";
    ServerShard shard(TwoTables(), kSeed, Opt("adagrad"), policy);
    std::vector<Real> grad(8, 0.1f);
    Key k = 0;
    try {
      for (;; ++k) {
        shard.Push(0, &k, 1, grad.data());
        ASSERT_LE(shard.total_bytes(), limit) << "after row " << k;
      }
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("server rank 2"), std::string::npos) << what;
      EXPECT_NE(what.find(Concat("--max-memory-per-server ", limit)), std::string::npos) << what;
      EXPECT_NE(what.find("more bytes"), std::string::npos) << what;
    }
    EXPECT_LE(shard.total_bytes(), limit);
    // It filled a good part of the limit before refusing.
    EXPECT_GT(static_cast<double>(shard.raw_bytes()), 0.5 * static_cast<double>(limit)) << limit;
  }
}

TEST(LargeTableTest, EvictionDropsTheLeastRecentlyTouchedRows) {
  ShardPolicy policy;
  policy.max_rows = 1000;
  policy.evict = true;
  ServerShard shard(TwoTables(), kSeed, Opt("sgd"), policy);
  std::vector<Real> grad(8, 0.1f), out(8);
  const Key hot = 1u << 30;
  for (Key k = 0; k < 5000; ++k) {
    shard.Push(0, &k, 1, grad.data());
    if (k % 10 == 0) shard.Pull(0, &hot, 1, out.data());  // a pull keeps `hot` recent once it exists
    if (k == 0) shard.Push(0, &hot, 1, grad.data());
    ASSERT_LE(shard.total_rows(), 1000u);
  }
  EXPECT_GT(shard.rows_evicted(), 4000u - 1000u);
  EXPECT_TRUE(shard.table(0).Contains(hot));
  EXPECT_TRUE(shard.table(0).Contains(4999));
  EXPECT_FALSE(shard.table(0).Contains(1));
  // The survivors are the most recent ones: rows below the oldest kept key
  // are all gone.
  std::size_t kept_recent = 0;
  for (Key k = 4000; k < 5000; ++k) kept_recent += shard.table(0).Contains(k);
  EXPECT_GT(kept_recent, 900u);
}

TEST(LargeTableTest, EvictionUnderAMemoryLimitKeepsTheBound) {
  ShardPolicy policy;
  policy.max_bytes = 256 << 10;
  policy.evict = true;
  ServerShard shard(TwoTables(), kSeed, Opt("adagrad"), policy);
  std::vector<Real> grad(8, 0.1f);
  for (Key k = 0; k < 50000; ++k) {
    shard.Push(0, &k, 1, grad.data());
    ASSERT_LE(shard.total_bytes(), policy.max_bytes) << k;
  }
  EXPECT_GT(shard.rows_evicted(), 0u);
  EXPECT_TRUE(shard.table(0).Contains(49999));
}

// ---------------------------------------------------------------------------
// Admission.

TEST(AdmissionCounterTest, CountsExactlyAndForgetsAdmittedKeys) {
  AdmissionCounter counter(3, false);
  // Many keys, so clusters form and backward-shift deletion is exercised.
  for (Key k = 0; k < 5000; ++k) EXPECT_FALSE(counter.See(k * 1024, 1));
  EXPECT_EQ(counter.size(), 5000u);
  for (Key k = 0; k < 5000; k += 2) EXPECT_FALSE(counter.See(k * 1024, 1));
  for (Key k = 0; k < 5000; k += 2) EXPECT_TRUE(counter.See(k * 1024, 1)) << k;
  EXPECT_EQ(counter.size(), 2500u);
  for (Key k = 0; k < 5000; ++k) EXPECT_EQ(counter.Count(k * 1024), k % 2 ? 1 : 0) << k;
  EXPECT_GT(counter.bytes(), 2500u * 9);
  counter.Restore(7, 200, 4);  // clamped: the next sighting admits
  EXPECT_EQ(counter.Count(7), 2);
  EXPECT_TRUE(counter.See(7, 4));
  EXPECT_THROW(AdmissionCounter(1, false), InternalError);
}

TEST(AdmissionCounterTest, DropsKeysNotSeenSinceAnEpoch) {
  AdmissionCounter counter(5, true);
  for (Key k = 0; k < 1000; ++k) counter.See(k, k < 600 ? 1 : 2);
  EXPECT_EQ(counter.DropSeenBefore(2), 600u);
  EXPECT_EQ(counter.size(), 400u);
  for (Key k = 0; k < 1000; ++k) EXPECT_EQ(counter.Count(k), k < 600 ? 0 : 1) << k;
}

TEST(LargeTableTest, MinCountCreatesARowAtItsNthSightingOnly) {
  ShardPolicy policy;
  policy.min_count = 3;
  ServerShard shard(TwoTables(), kSeed, Opt("sgd"), policy);
  ServerShard plain(TwoTables(), kSeed, Opt("sgd"));
  const Key key = MakeKey(kFieldItem, 5);
  std::vector<Real> g1(8, 1.0f), g2(8, 2.0f), g3(8, 3.0f), out(8), init(8);
  InitRow(shard.table(0).spec(), kSeed, key, init.data());
  shard.Push(0, &key, 1, g1.data());
  shard.Push(0, &key, 1, g2.data());
  EXPECT_EQ(shard.total_rows(), 0u);
  EXPECT_EQ(shard.pushes_dropped(), 2u);
  EXPECT_EQ(shard.pending_keys(), 1u);
  EXPECT_GT(shard.admission_bytes(), 0u);
  EXPECT_EQ(shard.total_bytes(), shard.table_bytes() + shard.admission_bytes());
  shard.Pull(0, &key, 1, out.data());
  EXPECT_EQ(std::memcmp(out.data(), init.data(), sizeof(Real) * 8), 0);  // the initial row, not created
  EXPECT_EQ(shard.total_rows(), 0u);
  shard.Push(0, &key, 1, g3.data());  // the third sighting: created, and this gradient applied
  plain.Push(0, &key, 1, g3.data());
  EXPECT_EQ(shard.total_rows(), 1u);
  EXPECT_EQ(shard.pending_keys(), 0u);
  EXPECT_EQ(std::memcmp(shard.table(0).Find(key), plain.table(0).Find(key), sizeof(Real) * 8), 0);
  // Dense blocks are never held back.
  const Key dense = MakeKey(kFieldDense, 0);
  shard.Push(1, &dense, 1, g1.data());
  EXPECT_TRUE(shard.table(1).Contains(dense));
}

// A key repeated within one push request: once its first copy creates the
// row (the --min-count-th sighting), the second copy updates that row like
// any present key, as if the copies had come in two requests.
TEST(LargeTableTest, KeyRepeatedInOnePushIsAppliedOnceItsRowExists) {
  ShardPolicy policy;
  policy.min_count = 2;
  ServerShard shard(TwoTables(), kSeed, Opt("sgd"), policy);
  ServerShard split(TwoTables(), kSeed, Opt("sgd"), policy);
  const Key key = MakeKey(kFieldItem, 9);
  std::vector<Real> g1(8, 1.0f), g23(16, 0.0f);
  for (int j = 0; j < 8; ++j) {
    g23[static_cast<std::size_t>(j)] = 2.0f;
    g23[static_cast<std::size_t>(8 + j)] = 3.0f;
  }
  shard.Push(0, &key, 1, g1.data());
  split.Push(0, &key, 1, g1.data());
  const Key twice[2] = {key, key};
  shard.Push(0, twice, 2, g23.data());  // the 2nd sighting creates the row, the 3rd updates it
  split.Push(0, &key, 1, g23.data());
  split.Push(0, &key, 1, g23.data() + 8);
  ASSERT_TRUE(shard.table(0).Contains(key));
  EXPECT_EQ(shard.pushes_dropped(), split.pushes_dropped());
  EXPECT_EQ(shard.pending_keys(), 0u);
  EXPECT_EQ(std::memcmp(shard.table(0).Find(key), split.table(0).Find(key), sizeof(Real) * 8), 0);
}

// Admission is exact, so the same pushes over one shard or over three give
// the same rows, bit for bit.
TEST(LargeTableTest, MinCountAndExpiryDoNotDependOnTheNumberOfServers) {
  ShardPolicy policy;
  policy.min_count = 2;
  policy.expire_after = 1;
  constexpr int kShards = 3;
  const std::vector<TableSpec> specs = {Spec(0, 4)};
  ServerShard one(specs, kSeed, Opt("adam"), policy);
  std::vector<std::unique_ptr<ServerShard>> many;
  for (int s = 0; s < kShards; ++s) many.push_back(std::make_unique<ServerShard>(specs, kSeed, Opt("adam"), policy));
  SplitMix64 rng(5);
  std::vector<Real> grad(4);
  std::map<Key, bool> seen;
  for (std::uint32_t epoch = 1; epoch <= 4; ++epoch) {
    one.SetEpoch(epoch);
    for (auto& s : many) s->SetEpoch(epoch);
    for (int i = 0; i < 3000; ++i) {
      // A long tail: most keys appear once.
      const Key k = rng.NextBelow(4) == 0 ? rng.NextBelow(50) : rng.NextBelow(100000);
      for (Real& g : grad) g = static_cast<Real>(rng.NextDouble() - 0.5);
      one.Push(0, &k, 1, grad.data());
      many[static_cast<std::size_t>(ShardOf(0, k, kShards))]->Push(0, &k, 1, grad.data());
      seen[k] = true;
    }
    std::size_t dropped_many = 0;
    const std::size_t dropped_one = one.EndEpoch(epoch);
    for (auto& s : many) dropped_many += s->EndEpoch(epoch);
    EXPECT_EQ(dropped_one, dropped_many) << "epoch " << epoch;
  }
  std::size_t rows_many = 0, pending_many = 0;
  for (auto& s : many) {
    rows_many += s->total_rows();
    pending_many += s->pending_keys();
  }
  EXPECT_EQ(one.total_rows(), rows_many);
  EXPECT_EQ(one.pending_keys(), pending_many);
  EXPECT_LT(one.total_rows(), seen.size() / 4);  // admission kept the tail out
  for (const auto& [k, unused] : seen) {
    const std::vector<Real> a = one.table(0).RowAndState(k);
    const std::vector<Real> b = many[static_cast<std::size_t>(ShardOf(0, k, kShards))]->table(0).RowAndState(k);
    ASSERT_EQ(a.size(), b.size()) << k;
    if (!a.empty()) {
      EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(Real) * a.size()), 0) << k;
    }
  }
}

// ---------------------------------------------------------------------------
// Expiry.

TEST(LargeTableTest, RowsUntouchedForEEpochsAreDroppedAtTheEpochEnd) {
  ShardPolicy policy;
  policy.expire_after = 2;
  ServerShard shard(TwoTables(), kSeed, Opt("sgd"), policy);
  std::vector<Real> grad(8, 0.1f), out(8);
  const Key a = 1, b = 2, c = 3;
  const Key dense = MakeKey(kFieldDense, 1);
  shard.SetEpoch(1);
  for (Key k : {a, b, c}) shard.Push(0, &k, 1, grad.data());
  shard.Push(1, &dense, 1, grad.data());
  EXPECT_EQ(shard.EndEpoch(1), 0u);
  shard.SetEpoch(2);
  shard.Push(0, &a, 1, grad.data());
  shard.Pull(0, &b, 1, out.data());                    // a training pull touches
  shard.Pull(0, &c, 1, out.data(), /*touch=*/false);   // an evaluation pull does not
  EXPECT_EQ(shard.EndEpoch(2), 0u);  // everything was touched within 2 epochs
  shard.SetEpoch(3);
  EXPECT_EQ(shard.EndEpoch(3), 1u);  // c: last touched in epoch 1
  EXPECT_FALSE(shard.table(0).Contains(c));
  EXPECT_TRUE(shard.table(0).Contains(a));
  EXPECT_TRUE(shard.table(0).Contains(b));
  shard.SetEpoch(4);
  EXPECT_EQ(shard.EndEpoch(4), 2u);
  EXPECT_EQ(shard.table(0).size(), 0u);
  EXPECT_TRUE(shard.table(1).Contains(dense));  // dense blocks never expire
  EXPECT_EQ(shard.rows_expired(), 3u);
  // An expired row starts again from its initial values.
  std::vector<Real> init(8);
  InitRow(shard.table(0).spec(), kSeed, c, init.data());
  shard.Pull(0, &c, 1, out.data());
  EXPECT_EQ(std::memcmp(out.data(), init.data(), sizeof(Real) * 8), 0);
}

// ---------------------------------------------------------------------------
// Checkpoints carry the epochs and the pending counts.

class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("recsys_large_test") {}
};

// One sparse table of width 5 with SGD: rows of 8 + 20 + 4 bytes.
std::unique_ptr<ServerShard> TrackedShard() {
  ShardPolicy policy;
  policy.min_count = 2;
  policy.expire_after = 3;
  auto shard = std::make_unique<ServerShard>(std::vector<TableSpec>{Spec(0, 5)}, kSeed, Opt("sgd"), policy);
  std::vector<Real> grad(5, 0.25f);
  for (std::uint32_t e = 1; e <= 3; ++e) {
    shard->SetEpoch(e);
    for (Key k = 0; k < 10; ++k) {
      const Key key = k + 10 * e;  // 10 new keys per epoch, seen once
      shard->Push(0, &key, 1, grad.data());
      if (k < 3) {
        shard->Push(0, &key, 1, grad.data());  // admitted
      }
    }
  }
  return shard;
}

TEST(LargeTableTest, CheckpointCarriesEpochsAndPendingCounts) {
  TempDir tmp;
  const auto shard = TrackedShard();
  ASSERT_EQ(shard->total_rows(), 9u);
  ASSERT_EQ(shard->pending_keys(), 21u);
  WriteShardFile(tmp.path(), 0, *shard);
  ShardPolicy policy = shard->policy();
  ServerShard restored(std::vector<TableSpec>{Spec(0, 5)}, kSeed, Opt("sgd"), policy);
  std::map<Key, std::uint32_t> epochs;
  ReadShardFile(
      tmp.path() + "/shard-0.bin",
      [&](const TableSpec& spec, int stride, Key key, const Real* values, std::uint32_t epoch, bool has_epochs) {
        EXPECT_TRUE(has_epochs);
        epochs[key] = epoch;
        restored.Restore(spec.id, key, values, static_cast<std::size_t>(stride), epoch);
      },
      [&](const TableSpec& spec, Key key, int count, std::uint32_t epoch) {
        EXPECT_EQ(count, 1);
        restored.RestorePending(spec.id, key, count, epoch);
      });
  EXPECT_EQ(restored.total_rows(), 9u);
  EXPECT_EQ(restored.pending_keys(), 21u);
  for (const auto& [key, epoch] : epochs) EXPECT_EQ(epoch, key / 10) << key;
  // Both now behave the same: the next epoch ends expire the same rows and
  // counts, and a second sighting admits the same pending key.
  for (ServerShard* s : {shard.get(), &restored}) {
    s->SetEpoch(4);
    const Key key = 35;
    std::vector<Real> grad(5, 1.0f);
    s->Push(0, &key, 1, grad.data());
    EXPECT_EQ(s->EndEpoch(4), 3u);  // the rows of epoch 1
    EXPECT_EQ(s->total_rows(), 7u);
    EXPECT_EQ(s->pending_keys(), 20u - 7u);
  }
  // Old (version 1) readers' entry point still reads the file.
  std::size_t n = 0;
  ReadShardFile(tmp.path() + "/shard-0.bin", [&](const TableSpec&, int, Key, const Real*) { ++n; });
  EXPECT_EQ(n, 9u);
}

TEST(LargeTableTest, BadEpochsAndPendingCountsInACheckpointAreInputErrors) {
  TempDir tmp;
  const auto shard = TrackedShard();
  WriteShardFile(tmp.path(), 0, *shard);
  const std::string path = tmp.path() + "/shard-0.bin";
  const std::string good = ReadAll(path);
  // Table 0 ("t0"): rows at 47, flags at 55, rows of 32 bytes from 56; then
  // the pending count, then entries of 16 bytes (key, count, epoch).
  constexpr std::size_t kRows = 47, kFlags = 55, kFirstRow = 56, kRowBytes = 32;
  std::uint64_t rows = 0;
  std::memcpy(&rows, &good[kRows], 8);
  ASSERT_EQ(rows, 9u);
  ASSERT_EQ(good[kFlags], 1);
  const std::size_t pending_at = kFirstRow + rows * kRowBytes;
  std::uint64_t pending = 0;
  std::memcpy(&pending, &good[pending_at], 8);
  ASSERT_EQ(pending, 21u);
  auto patched = [&](std::size_t offset, const void* bytes, std::size_t n) {
    std::string bad = good;
    std::memcpy(&bad[offset], bytes, n);
    WriteAll(path, bad);
  };
  auto read = [&] { ReadShardFile(path, TrackedRowSink(), PendingSink()); };
  EXPECT_NO_THROW(read());

  const std::uint8_t flags = 0x82;
  patched(kFlags, &flags, 1);
  ExpectInputError(read, {path, "unknown flags"});
  const std::uint32_t epoch = (1u << 30) + 1;
  patched(kFirstRow + 28, &epoch, 4);
  ExpectInputError(read, {path, "has epoch"});
  const std::uint64_t huge = std::uint64_t{1} << 58;
  patched(pending_at, &huge, 8);
  ExpectInputError(read, {path, "pending keys", "more than the"});
  for (std::uint32_t count : {0u, 256u, 0xffffffffu}) {
    patched(pending_at + 8 + 8, &count, 4);
    ExpectInputError(read, {path, "has count"});
  }
  patched(pending_at + 8 + 12, &epoch, 4);
  ExpectInputError(read, {path, "pending key", "has epoch"});
  const std::uint64_t too_many_rows = std::uint64_t{1} << 62;
  patched(kRows, &too_many_rows, 8);
  ExpectInputError(read, {path, "more than the"});
  // Truncated anywhere in the new fields: an InputError, never a crash.
  for (std::size_t n = kFlags; n < good.size(); ++n) {
    WriteAll(path, good.substr(0, n));
    EXPECT_THROW(read(), InputError) << n;
  }
}

// ---------------------------------------------------------------------------
// Options.

TEST(LargeTableTest, ByteSizesTakeSuffixes) {
  EXPECT_EQ(ParseByteSize("--x", "0"), 0u);
  EXPECT_EQ(ParseByteSize("--x", "1048576"), 1048576u);
  EXPECT_EQ(ParseByteSize("--x", "64K"), 64u << 10);
  EXPECT_EQ(ParseByteSize("--x", "512M"), 512u << 20);
  EXPECT_EQ(ParseByteSize("--x", "1.5G"), 3ull << 29);
  EXPECT_EQ(ParseByteSize("--x", "2GiB"), 2ull << 30);
  EXPECT_EQ(ParseByteSize("--x", "2gb"), 2ull << 30);
  EXPECT_EQ(ParseByteSize("--x", "1T"), 1ull << 40);
  for (const char* bad : {"", "G", "-1", "1X", "1.5", "12MM", "1e3", "99999999999999999999"}) {
    ExpectInputError([&] { ParseByteSize("--max-memory-per-server", bad); }, {"--max-memory-per-server"});
  }
}

}  // namespace
}  // namespace recsys
