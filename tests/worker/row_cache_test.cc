// Tests of the hot-row cache's policy (worker/row_cache.h): freshness and
// refresh, the rows it assembles, admission by frequency, the capacity bound,
// pinning of rows a batch waits for, and dense blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/keys.h"
#include "common/table_spec.h"
#include "worker/ps_client.h"
#include "worker/row_cache.h"

namespace recsys {
namespace {

TableSpec Sparse(TableId id, int width) {
  TableSpec t;
  t.id = id;
  t.name = "emb" + std::to_string(id);
  t.width = width;
  return t;
}

TableSpec Dense(TableId id, int width, std::int64_t size) {
  TableSpec t = Sparse(id, width);
  t.name = "dense" + std::to_string(id);
  t.dense_size = size;
  return t;
}

Key K(std::uint64_t v) { return MakeKey(kFieldItem, v); }

// What a server would answer for column j of table t of `key`'s row, as of
// `version`: the key, the version and the table can be read back from it.
float Value(Key key, int version, std::size_t t, int j) {
  return static_cast<float>(ValueOf(key) * 100000 + static_cast<std::uint64_t>(version) * 10 + t) + 0.01f * j;
}

// Plays the servers: fills `pulled` for plan.pull_keys with version `version`.
void ServePull(const std::vector<TableSpec>& tables, const RowCache::Plan& plan, int version, ParamBuffers* pulled) {
  pulled->Shape(tables, plan.pull_keys.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    if (tables[t].dense()) {
      std::fill(pulled->storage[t].begin(), pulled->storage[t].end(), static_cast<float>(version));
      continue;
    }
    for (std::size_t i = 0; i < plan.pull_keys.size(); ++i) {
      for (int j = 0; j < tables[t].width; ++j) {
        pulled->storage[t][i * tables[t].width + j] = Value(plan.pull_keys[i], version, t, j);
      }
    }
  }
}

// One whole step: prepare, serve at `version`, complete. Returns the plan.
RowCache::Plan Step(RowCache& cache, const std::vector<TableSpec>& tables, const std::vector<Key>& keys, int version,
                    ParamBuffers* rows) {
  RowCache::Plan plan;
  ParamBuffers pulled;
  cache.Prepare(keys, &plan);
  ServePull(tables, plan, version, &pulled);
  cache.Complete(plan, &pulled, rows);
  return plan;
}

TEST(RowCacheTest, ServesHitsUntilTheRefreshAndThenPullsAgain) {
  const std::vector<TableSpec> tables = {Sparse(0, 3), Sparse(1, 2)};
  RowCache cache(tables, 10, /*refresh_steps=*/3);
  const std::vector<Key> keys = {K(1), K(2)};
  ParamBuffers rows;
  // Step 0: both pulled and admitted.
  RowCache::Plan p = Step(cache, tables, keys, 0, &rows);
  EXPECT_EQ(p.pull_keys, keys);
  EXPECT_TRUE(p.hits.empty());
  // Steps 1 and 2: served from the cache, with the values of step 0's pull.
  for (int step = 1; step <= 2; ++step) {
    p = Step(cache, tables, keys, step, &rows);
    EXPECT_TRUE(p.pull_keys.empty()) << "step " << step;
    EXPECT_EQ(p.hits.size(), 2u);
    for (std::size_t t = 0; t < tables.size(); ++t) {
      ASSERT_EQ(rows.view[t].rows, 2);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        for (int j = 0; j < tables[t].width; ++j) {
          EXPECT_EQ(rows.view[t].Row(static_cast<std::int64_t>(i))[j], Value(keys[i], 0, t, j));
        }
      }
    }
  }
  // Step 3: three steps after the fetch, both are refreshed from the servers.
  p = Step(cache, tables, keys, 3, &rows);
  EXPECT_EQ(p.pull_keys, keys);
  EXPECT_EQ(rows.view[0].Row(1)[0], Value(K(2), 3, 0, 0));
  // Step 4 is served the refreshed rows.
  p = Step(cache, tables, keys, 4, &rows);
  EXPECT_TRUE(p.pull_keys.empty());
  EXPECT_EQ(rows.view[1].Row(0)[1], Value(K(1), 3, 1, 1));
  EXPECT_EQ(cache.lookups(), 10u);
  EXPECT_EQ(cache.hits(), 6u);
}

TEST(RowCacheTest, AssemblesHitsAndPulledRowsInBatchOrder) {
  const std::vector<TableSpec> tables = {Sparse(0, 4)};
  RowCache cache(tables, 10, 5);
  ParamBuffers rows;
  Step(cache, tables, {K(7), K(8)}, 0, &rows);
  // K(7) and K(8) are cached; K(9) and K(6) are new and pulled.
  const std::vector<Key> keys = {K(9), K(8), K(6), K(7)};
  const RowCache::Plan p = Step(cache, tables, keys, 1, &rows);
  EXPECT_EQ(p.pull_keys, (std::vector<Key>{K(9), K(6)}));
  ASSERT_EQ(rows.view[0].rows, 4);
  const int versions[] = {1, 0, 1, 0};  // pulled now, or cached from step 0
  for (std::size_t i = 0; i < keys.size(); ++i) {
    for (int j = 0; j < 4; ++j) EXPECT_EQ(rows.view[0].Row(static_cast<std::int64_t>(i))[j], Value(keys[i], versions[i], 0, j));
  }
}

TEST(RowCacheTest, NeverHoldsMoreThanItsCapacity) {
  const std::vector<TableSpec> tables = {Sparse(0, 2)};
  RowCache cache(tables, 5, 4);
  ParamBuffers rows;
  for (int step = 0; step < 50; ++step) {
    std::vector<Key> keys;
    for (int i = 0; i < 7; ++i) keys.push_back(K(static_cast<std::uint64_t>(step * 7 + i)));
    Step(cache, tables, keys, step, &rows);
    EXPECT_LE(cache.size(), 5u);
  }
  EXPECT_EQ(cache.size(), 5u);
}

TEST(RowCacheTest, KeepsFrequentKeysAndAdmitsAMoreFrequentNewcomer) {
  const std::vector<TableSpec> tables = {Sparse(0, 2)};
  RowCache cache(tables, 2, 4);
  ParamBuffers rows;
  // A and B are in every batch: they fill the cache.
  for (int step = 0; step < 20; ++step) Step(cache, tables, {K(1), K(2)}, step, &rows);
  ASSERT_TRUE(cache.Contains(K(1)));
  ASSERT_TRUE(cache.Contains(K(2)));
  // Cold keys seen once each never displace them.
  for (int step = 20; step < 40; ++step) {
    const RowCache::Plan p = Step(cache, tables, {K(1), K(100 + step)}, step, &rows);
    EXPECT_FALSE(cache.Contains(K(100 + step)));
    EXPECT_EQ(p.pull_slot.back(), -1);
  }
  EXPECT_TRUE(cache.Contains(K(1)));
  EXPECT_TRUE(cache.Contains(K(2)));
  // C, now in every batch while B is gone, outgrows B and takes its slot;
  // A, still in every batch, stays.
  for (int step = 40; step < 80; ++step) Step(cache, tables, {K(1), K(3)}, step, &rows);
  EXPECT_TRUE(cache.Contains(K(1)));
  EXPECT_TRUE(cache.Contains(K(3)));
  EXPECT_FALSE(cache.Contains(K(2)));
  EXPECT_GT(cache.Frequency(K(3)), cache.Frequency(K(2)));
}

TEST(RowCacheTest, RowsABatchWaitsForAreNotEvicted) {
  const std::vector<TableSpec> tables = {Sparse(0, 2)};
  RowCache cache(tables, 1, 4);
  ParamBuffers rows;
  Step(cache, tables, {K(1)}, 0, &rows);
  // Batch `first` reads K(1) from the cache and is still in flight while
  // three more batches ask for K(2), which grows more popular than K(1) but
  // cannot take its slot until `first` is complete.
  RowCache::Plan first;
  cache.Prepare({K(1)}, &first);
  ASSERT_EQ(first.hits.size(), 1u);
  std::vector<RowCache::Plan> later(3);
  for (auto& p : later) {
    cache.Prepare({K(2)}, &p);
    EXPECT_EQ(p.pull_slot, (std::vector<std::int32_t>{-1}));
  }
  EXPECT_GT(cache.Frequency(K(2)), cache.Frequency(K(1)));
  EXPECT_TRUE(cache.Contains(K(1)));
  ParamBuffers pulled;
  ServePull(tables, first, 1, &pulled);
  cache.Complete(first, &pulled, &rows);
  EXPECT_EQ(rows.view[0].Row(0)[0], Value(K(1), 0, 0, 0));
  for (auto& p : later) {
    ServePull(tables, p, 2, &pulled);
    cache.Complete(p, &pulled, &rows);
  }
  // Now nothing pins K(1), and K(2) replaces it.
  Step(cache, tables, {K(2)}, 5, &rows);
  EXPECT_TRUE(cache.Contains(K(2)));
  EXPECT_FALSE(cache.Contains(K(1)));
}

TEST(RowCacheTest, HitsOnARowStillInFlightGetItsPulledValue) {
  const std::vector<TableSpec> tables = {Sparse(0, 2)};
  RowCache cache(tables, 4, 3);
  ParamBuffers rows_a, rows_b, pulled_a, pulled_b;
  RowCache::Plan a, b;
  // Batch b is planned before batch a's pull is done (prefetch): K(5) is a
  // hit of b, filled by a's pull.
  cache.Prepare({K(5)}, &a);
  cache.Prepare({K(5)}, &b);
  EXPECT_EQ(a.pull_keys.size(), 1u);
  EXPECT_TRUE(b.pull_keys.empty());
  ServePull(tables, a, 9, &pulled_a);
  cache.Complete(a, &pulled_a, &rows_a);
  ServePull(tables, b, 10, &pulled_b);
  cache.Complete(b, &pulled_b, &rows_b);
  EXPECT_EQ(rows_b.view[0].Row(0)[1], Value(K(5), 9, 0, 1));
}

TEST(RowCacheTest, ABatchOfAModelWithDenseBlocksAlwaysPullsThem) {
  const std::vector<TableSpec> tables = {Sparse(0, 2), Dense(1, 4, 10)};
  RowCache cache(tables, 4, 8);
  ParamBuffers rows;
  Step(cache, tables, {K(1), K(2)}, 0, &rows);
  const RowCache::Plan p = Step(cache, tables, {K(1), K(2)}, 7, &rows);
  EXPECT_EQ(p.pull_keys.size(), 1u);  // one hit turned into a refresh
  EXPECT_EQ(p.hits.size(), 1u);
  ASSERT_EQ(rows.view[1].rows, 3);
  EXPECT_EQ(rows.storage[1].size(), 12u);
  EXPECT_EQ(rows.view[1].data, rows.storage[1].data());
  for (float v : rows.storage[1]) EXPECT_EQ(v, 7.0f);
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(RowCacheTest, AnEmptyBatchPullsNothing) {
  const std::vector<TableSpec> tables = {Sparse(0, 2), Dense(1, 4, 10)};
  RowCache cache(tables, 4, 8);
  ParamBuffers rows;
  const RowCache::Plan p = Step(cache, tables, {}, 0, &rows);
  EXPECT_TRUE(p.pull_keys.empty());
  EXPECT_EQ(rows.view[0].rows, 0);
  EXPECT_EQ(cache.lookups(), 0u);
}

TEST(RowCacheTest, EvictionKeepsEveryCachedKeyFindable) {
  // Many evictions through a small index: every key the cache says it holds
  // is served from it, and with its own row.
  const std::vector<TableSpec> tables = {Sparse(0, 1)};
  RowCache cache(tables, 16, 2);
  ParamBuffers rows;
  for (int step = 0; step < 400; ++step) {
    std::vector<Key> keys;
    for (int i = 0; i < 6; ++i) keys.push_back(K(static_cast<std::uint64_t>((step * 5 + i * i * 7) % 97)));
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    const RowCache::Plan p = Step(cache, tables, keys, step, &rows);
    for (const auto& [row, slot] : p.hits) {
      const Key key = keys[static_cast<std::size_t>(row)];
      EXPECT_EQ(std::floor(rows.view[0].Row(row)[0] / 100000), static_cast<float>(ValueOf(key))) << "step " << step;
    }
  }
  EXPECT_EQ(cache.size(), 16u);
}

}  // namespace
}  // namespace recsys
