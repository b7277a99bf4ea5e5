// Tests of the key space (keys.h), sharding (sharding.h), deterministic row
// initialisation (table_spec.h) and the rank layout (topology.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/sharding.h"
#include "common/table_spec.h"
#include "common/topology.h"

namespace recsys {
namespace {

// ---------------------------------------------------------------------------
// Keys

static_assert(FieldOf(MakeKey(kFieldItem, 42)) == kFieldItem, "MakeKey is constexpr");
static_assert(ValueOf(MakeKey(kFieldItem, 42)) == 42, "MakeKey is constexpr");

TEST(KeysTest, SmallValuesRoundTrip) {
  const std::uint64_t values[] = {0, 1, 2, 943, 1682, 123456789, kValueMask - 1, kValueMask};
  for (std::uint8_t field : {std::uint8_t{kFieldUser}, std::uint8_t{kFieldItem}, std::uint8_t{kFieldGenre},
                             std::uint8_t{77}, std::uint8_t{kFieldDense}}) {
    for (std::uint64_t v : values) {
      const Key key = MakeKey(field, v);
      EXPECT_EQ(FieldOf(key), field) << "value " << v;
      EXPECT_EQ(ValueOf(key), v) << "field " << int{field};
      EXPECT_EQ(key, (static_cast<std::uint64_t>(field) << 56) | v);
    }
  }
}

TEST(KeysTest, SameValueInDifferentFieldsGivesDifferentKeys) {
  std::set<Key> keys;
  for (int field = 0; field < 256; ++field) keys.insert(MakeKey(static_cast<std::uint8_t>(field), 7));
  EXPECT_EQ(keys.size(), 256u);
}

TEST(KeysTest, LargeValuesAreHashedInto56BitsAndKeepTheirField) {
  const std::uint64_t large[] = {kValueMask + 1, std::uint64_t{1} << 60, 0xdeadbeefcafebabeULL, ~std::uint64_t{0},
                                 (std::uint64_t{1} << 56) | 5};
  std::set<Key> keys;
  for (std::uint64_t v : large) {
    const Key key = MakeKey(kFieldOccupation, v);
    EXPECT_EQ(FieldOf(key), kFieldOccupation) << v;
    EXPECT_LE(ValueOf(key), kValueMask) << v;
    EXPECT_EQ(ValueOf(key), Mix64(v) & kValueMask) << v;
    EXPECT_EQ(MakeKey(kFieldOccupation, v), key) << "deterministic";
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), std::size(large)) << "distinct large values collide";
  // A large value is hashed, not truncated: 2^56 + 5 does not alias 5.
  EXPECT_NE(MakeKey(kFieldItem, (std::uint64_t{1} << 56) | 5), MakeKey(kFieldItem, 5));
  EXPECT_NE(MakeKey(kFieldItem, kValueMask + 1), MakeKey(kFieldItem, 0));
}

TEST(KeysTest, ManyLargeValuesDoNotCollide) {
  std::set<Key> keys;
  constexpr int kValues = 20000;
  for (int i = 0; i < kValues; ++i) keys.insert(MakeKey(kFieldGenre, (std::uint64_t{1} << 63) + i));
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kValues));
  for (Key key : keys) ASSERT_EQ(FieldOf(key), kFieldGenre);
}

// ---------------------------------------------------------------------------
// Sharding

TEST(ShardingTest, InRangeAndDeterministic) {
  for (int shards = 1; shards <= 17; ++shards) {
    for (std::uint64_t i = 0; i < 2000; ++i) {
      const Key key = MakeKey(static_cast<std::uint8_t>(i % 3), i * 2654435761ULL);
      const int s = ShardOf(static_cast<TableId>(i % 4), key, shards);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, shards);
      ASSERT_EQ(ShardOf(static_cast<TableId>(i % 4), key, shards), s);
    }
  }
  EXPECT_EQ(ShardOf(0, ~Key{0}, 1), 0);
}

void ExpectBalanced(int shards) {
  constexpr int kKeys = 100000;
  std::vector<int> counts(static_cast<std::size_t>(shards), 0);
  for (int i = 0; i < kKeys; ++i) ++counts[static_cast<std::size_t>(ShardOf(0, MakeKey(kFieldItem, i), shards))];
  const double expected = static_cast<double>(kKeys) / shards;
  for (int s = 0; s < shards; ++s) {
    EXPECT_GT(counts[static_cast<std::size_t>(s)], 0.9 * expected) << "shard " << s << " of " << shards;
    EXPECT_LT(counts[static_cast<std::size_t>(s)], 1.1 * expected) << "shard " << s << " of " << shards;
  }
}

TEST(ShardingTest, BalancedOverThreeShards) { ExpectBalanced(3); }
TEST(ShardingTest, BalancedOverEightShards) { ExpectBalanced(8); }

TEST(ShardingTest, ConsecutiveIdsSpread) {
  // Range partitioning would put runs of neighbours on one shard; a hash
  // puts a neighbour on the same shard about 1/S of the time.
  constexpr int kShards = 8;
  constexpr int kKeys = 10000;
  int same_as_previous = 0;
  int previous = ShardOf(1, MakeKey(kFieldItem, 0), kShards);
  for (int i = 1; i < kKeys; ++i) {
    const int s = ShardOf(1, MakeKey(kFieldItem, i), kShards);
    same_as_previous += s == previous;
    previous = s;
  }
  EXPECT_LT(same_as_previous, 2 * kKeys / kShards);
  // Every window of 8 consecutive ids touches several shards.
  for (int start = 0; start < 1000; start += 8) {
    std::set<int> touched;
    for (int i = start; i < start + 8; ++i) touched.insert(ShardOf(1, MakeKey(kFieldItem, i), kShards));
    EXPECT_GE(touched.size(), 3u) << "ids " << start << ".." << start + 7;
  }
}

TEST(ShardingTest, TablesAreShardedIndependently) {
  // The same key of two tables need not share a server (the dense rows of
  // every block would otherwise pile onto the same few servers).
  int differ = 0;
  for (int i = 0; i < 1000; ++i) differ += ShardOf(0, MakeKey(kFieldDense, i), 4) != ShardOf(1, MakeKey(kFieldDense, i), 4);
  EXPECT_GT(differ, 600);  // ~750 expected
}

// ---------------------------------------------------------------------------
// InitRow

TableSpec Spec(TableId id, int width, InitKind init, float scale, std::int64_t dense_size = 0) {
  TableSpec spec;
  spec.id = id;
  spec.name = "t";
  spec.width = width;
  spec.init = init;
  spec.init_scale = scale;
  spec.dense_size = dense_size;
  return spec;
}

std::vector<Real> Row(const TableSpec& spec, std::uint64_t seed, Key key) {
  std::vector<Real> row(static_cast<std::size_t>(spec.width), -99.0f);
  InitRow(spec, seed, key, row.data());
  return row;
}

TEST(InitRowTest, DeterministicForSeedTableAndKey) {
  for (InitKind init : {InitKind::kNormal, InitKind::kUniform}) {
    const TableSpec spec = Spec(2, 9, init, 0.3f);
    const Key key = MakeKey(kFieldItem, 1234);
    const std::vector<Real> first = Row(spec, 5, key);
    // Other rows computed in between change nothing (no hidden state).
    for (int i = 0; i < 100; ++i) Row(spec, 5, MakeKey(kFieldUser, i));
    EXPECT_EQ(Row(spec, 5, key), first);
    // Only the id counts, not the name.
    TableSpec renamed = spec;
    renamed.name = "other";
    EXPECT_EQ(Row(renamed, 5, key), first);
  }
}

TEST(InitRowTest, DiffersAcrossKeysTablesAndSeeds) {
  const TableSpec spec = Spec(1, 8, InitKind::kNormal, 0.1f);
  const Key key = MakeKey(kFieldUser, 10);
  const std::vector<Real> base = Row(spec, 7, key);
  EXPECT_NE(Row(spec, 7, MakeKey(kFieldUser, 11)), base);
  EXPECT_NE(Row(spec, 7, MakeKey(kFieldItem, 10)), base);  // same value, other field
  EXPECT_NE(Row(Spec(2, 8, InitKind::kNormal, 0.1f), 7, key), base);
  EXPECT_NE(Row(spec, 8, key), base);
  // Elements within a row differ too (not one value repeated).
  EXPECT_EQ(std::set<Real>(base.begin(), base.end()).size(), base.size());
}

struct Moments {
  double mean = 0, std = 0, min = 0, max = 0;
};

Moments MomentsOver(const TableSpec& spec, int rows) {
  double sum = 0, sum2 = 0;
  Moments m;
  m.min = 1e30;
  m.max = -1e30;
  std::vector<Real> row(static_cast<std::size_t>(spec.width));
  for (int r = 0; r < rows; ++r) {
    InitRow(spec, 3, MakeKey(kFieldItem, r), row.data());
    for (Real v : row) {
      sum += v;
      sum2 += static_cast<double>(v) * v;
      m.min = std::min<double>(m.min, v);
      m.max = std::max<double>(m.max, v);
    }
  }
  const double n = static_cast<double>(rows) * spec.width;
  m.mean = sum / n;
  m.std = std::sqrt(sum2 / n - m.mean * m.mean);
  return m;
}

TEST(InitRowTest, NormalHasTheRequestedStd) {
  for (float scale : {0.01f, 0.5f}) {
    const Moments m = MomentsOver(Spec(0, 16, InitKind::kNormal, scale), 4000);  // 64k samples
    EXPECT_NEAR(m.std, scale, 0.02 * scale);
    EXPECT_NEAR(m.mean, 0.0, 0.02 * scale);
    EXPECT_LT(m.min, -3 * scale);  // tails are there
    EXPECT_GT(m.max, 3 * scale);
  }
}

TEST(InitRowTest, UniformStaysInRange) {
  const float scale = 0.25f;
  const Moments m = MomentsOver(Spec(0, 16, InitKind::kUniform, scale), 2000);
  EXPECT_GE(m.min, -scale);
  EXPECT_LE(m.max, scale);
  EXPECT_LT(m.min, -0.99 * scale);
  EXPECT_GT(m.max, 0.99 * scale);
  EXPECT_NEAR(m.std, scale / std::sqrt(3.0), 0.02 * scale);
}

TEST(InitRowTest, ZerosAreZero) {
  const std::vector<Real> row = Row(Spec(0, 7, InitKind::kZeros, 1.0f), 1, MakeKey(kFieldUser, 3));
  EXPECT_EQ(row, std::vector<Real>(7, 0.0f));
}

TEST(InitRowTest, DenseBlockRowsAreZeroPastDenseSize) {
  // 10 floats in rows of 4: rows 0 and 1 full, row 2 holds 2 values then 2 zeros.
  const TableSpec spec = Spec(4, 4, InitKind::kUniform, 1.0f, 10);
  ASSERT_EQ(spec.dense_rows(), 3);
  for (int r = 0; r < 2; ++r) {
    for (Real v : Row(spec, 9, MakeKey(kFieldDense, r))) EXPECT_NE(v, 0.0f) << "row " << r;
  }
  const std::vector<Real> last = Row(spec, 9, MakeKey(kFieldDense, 2));
  EXPECT_NE(last[0], 0.0f);
  EXPECT_NE(last[1], 0.0f);
  EXPECT_EQ(last[2], 0.0f);
  EXPECT_EQ(last[3], 0.0f);
  // A row wholly past the block is all zeros.
  EXPECT_EQ(Row(spec, 9, MakeKey(kFieldDense, 3)), std::vector<Real>(4, 0.0f));

  // An exact multiple of the width has no zero tail.
  const TableSpec exact = Spec(4, 4, InitKind::kNormal, 1.0f, 8);
  ASSERT_EQ(exact.dense_rows(), 2);
  for (Real v : Row(exact, 9, MakeKey(kFieldDense, 1))) EXPECT_NE(v, 0.0f);
  // A sparse table is never cut.
  for (Real v : Row(Spec(4, 4, InitKind::kNormal, 1.0f), 9, MakeKey(kFieldDense, 2))) EXPECT_NE(v, 0.0f);
}

// ---------------------------------------------------------------------------
// Topology

TEST(TopologyTest, ThreeRanks) {
  const Topology t(3, 0);
  EXPECT_EQ(t.size(), 3);
  EXPECT_EQ(t.servers(), 1);
  EXPECT_EQ(t.workers(), 1);
  EXPECT_EQ(t.RoleOf(0), Role::kCoordinator);
  EXPECT_EQ(t.RoleOf(1), Role::kServer);
  EXPECT_EQ(t.RoleOf(2), Role::kWorker);
  EXPECT_EQ(t.ServerRank(0), 1);
  EXPECT_EQ(t.WorkerRank(0), 2);
  EXPECT_EQ(t.ServerIndex(1), 0);
  EXPECT_EQ(t.WorkerIndex(2), 0);
  EXPECT_STREQ(RoleName(Role::kCoordinator), "coordinator");
  EXPECT_STREQ(RoleName(Role::kServer), "server");
  EXPECT_STREQ(RoleName(Role::kWorker), "worker");
}

// Checks that ranks 1..servers serve and the rest work, and that the index
// maps are inverse to each other.
void ExpectLayout(const Topology& t, int servers) {
  ASSERT_EQ(t.servers(), servers);
  ASSERT_EQ(t.workers(), t.size() - 1 - servers);
  EXPECT_EQ(t.RoleOf(0), Role::kCoordinator);
  for (int r = 1; r < t.size(); ++r) EXPECT_EQ(t.RoleOf(r), r <= servers ? Role::kServer : Role::kWorker) << r;
  for (int s = 0; s < t.servers(); ++s) {
    EXPECT_EQ(t.RoleOf(t.ServerRank(s)), Role::kServer);
    EXPECT_EQ(t.ServerIndex(t.ServerRank(s)), s);
  }
  for (int w = 0; w < t.workers(); ++w) {
    EXPECT_EQ(t.RoleOf(t.WorkerRank(w)), Role::kWorker);
    EXPECT_EQ(t.WorkerIndex(t.WorkerRank(w)), w);
  }
  EXPECT_EQ(t.WorkerRank(t.workers() - 1), t.size() - 1);
}

TEST(TopologyTest, DefaultServersAreAQuarterRoundedUp) {
  ExpectLayout(Topology(3, 0), 1);
  ExpectLayout(Topology(4, 0), 1);
  ExpectLayout(Topology(5, 0), 1);
  ExpectLayout(Topology(6, 0), 2);   // 5 non-coordinators -> 2
  ExpectLayout(Topology(9, 0), 2);
  ExpectLayout(Topology(10, 0), 3);
  ExpectLayout(Topology(16, 0), 4);  // 15 -> 4 servers, 11 workers
  EXPECT_EQ(Topology(16, 0).workers(), 11);
}

TEST(TopologyTest, ExplicitServers) {
  ExpectLayout(Topology(6, 1), 1);
  ExpectLayout(Topology(6, 3), 3);
  ExpectLayout(Topology(6, 4), 4);  // N-2: one worker left
  ExpectLayout(Topology(16, 10), 10);
  ExpectLayout(Topology(16, 14), 14);
}

// Returns the InputError's message, or fails.
std::string TopologyError(int size, int servers) {
  try {
    Topology t(size, servers);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "Topology(" << size << ", " << servers << ") did not throw";
  return "";
}

TEST(TopologyTest, RejectsTooFewRanksAndTooManyServers) {
  for (int size : {0, 1, 2}) EXPECT_NE(TopologyError(size, 0).find("at least 3"), std::string::npos) << size;
  EXPECT_NE(TopologyError(2, 1).find("at least 3"), std::string::npos);
  EXPECT_NE(TopologyError(3, 2).find("--servers 2"), std::string::npos);
  EXPECT_NE(TopologyError(6, 5).find("--servers <= 4"), std::string::npos);
  EXPECT_NE(TopologyError(16, 15).find("--servers"), std::string::npos);
  EXPECT_NE(TopologyError(6, -1).find("--servers"), std::string::npos);
}

TEST(TopologyTest, WorkerOfUserInRangeStableAndSpread) {
  for (int size : {3, 6, 16}) {
    const Topology t(size, 0);
    std::vector<int> counts(static_cast<std::size_t>(t.workers()), 0);
    constexpr int kUsers = 20000;
    for (std::uint64_t user = 0; user < kUsers; ++user) {
      const int w = t.WorkerOfUser(user);
      ASSERT_GE(w, 0);
      ASSERT_LT(w, t.workers());
      ASSERT_EQ(Topology(size, 0).WorkerOfUser(user), w);  // another rank computes the same
      ++counts[static_cast<std::size_t>(w)];
    }
    const double expected = static_cast<double>(kUsers) / t.workers();
    for (int c : counts) {
      EXPECT_GT(c, 0.85 * expected) << "size " << size;
      EXPECT_LT(c, 1.15 * expected) << "size " << size;
    }
  }
  // Owner depends on the number of workers only, not on the number of servers.
  for (std::uint64_t user = 0; user < 1000; ++user) {
    EXPECT_EQ(Topology(4, 1).WorkerOfUser(user), Topology(6, 3).WorkerOfUser(user));
  }
}

}  // namespace
}  // namespace recsys
