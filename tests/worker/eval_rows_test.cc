// Tests of the evaluation's row cache (worker/eval_rows.h): what it asks to
// pull, that it serves the rows it was given (and the dense blocks), its
// bound, and Clear.
#include "worker/eval_rows.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "common/keys.h"
#include "common/table_spec.h"
#include "worker/ps_client.h"

namespace recsys {
namespace {

TableSpec Table(TableId id, int width, std::int64_t dense_size = 0) {
  TableSpec t;
  t.id = id;
  t.name = "t" + std::to_string(id);
  t.width = width;
  t.dense_size = dense_size;
  return t;
}

Key K(std::uint64_t v) { return MakeKey(kFieldItem, v); }

// Rows as a server would send them: table t, key k, column j -> a value
// that names all three; dense blocks filled with `dense`.
void Serve(const std::vector<TableSpec>& tables, const std::vector<Key>& keys, float dense, ParamBuffers* out) {
  out->Shape(tables, keys.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    if (tables[t].dense()) {
      std::fill(out->storage[t].begin(), out->storage[t].end(), dense);
      continue;
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      for (int j = 0; j < tables[t].width; ++j) {
        out->storage[t][i * tables[t].width + j] = static_cast<float>(ValueOf(keys[i]) * 100 + t * 10 + j);
      }
    }
  }
}

void ExpectRows(const std::vector<TableSpec>& tables, const std::vector<Key>& keys, float dense,
                const ParamBuffers& rows) {
  ParamBuffers want;
  Serve(tables, keys, dense, &want);
  ASSERT_EQ(rows.storage.size(), want.storage.size());
  for (std::size_t t = 0; t < tables.size(); ++t) EXPECT_EQ(rows.storage[t], want.storage[t]) << "table " << t;
}

TEST(EvalRowsTest, PullsEachRowOnceAndServesItAfterwards) {
  const std::vector<TableSpec> tables = {Table(0, 3), Table(1, 2), Table(2, 4, /*dense_size=*/6)};
  EvalRows cache(tables, 100);
  std::vector<Key> missing;
  ParamBuffers pulled, rows;

  // Nothing held yet: every key, since the dense blocks come with a pull.
  const std::vector<Key> first = {K(1), K(2), K(3)};
  cache.Missing(first, &missing);
  EXPECT_EQ(missing, first);
  Serve(tables, missing, 7.0f, &pulled);
  cache.Store(missing, pulled);
  cache.Fill(first, &rows);
  ExpectRows(tables, first, 7.0f, rows);

  // Then only the keys not seen, and rows come back in the batch's order.
  const std::vector<Key> second = {K(3), K(9), K(1)};
  cache.Missing(second, &missing);
  EXPECT_EQ(missing, std::vector<Key>{K(9)});
  Serve(tables, missing, 8.0f, &pulled);  // the dense block of a later pull is the same in practice
  cache.Store(missing, pulled);
  cache.Fill(second, &rows);
  ExpectRows(tables, second, 8.0f, rows);
  EXPECT_EQ(cache.size(), 4u);

  // Held already: nothing to pull.
  cache.Missing({K(9), K(2)}, &missing);
  EXPECT_TRUE(missing.empty());

  // Clear (the end of an evaluation) forgets rows and dense blocks.
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  cache.Missing({K(9)}, &missing);
  EXPECT_EQ(missing, std::vector<Key>{K(9)});
  EXPECT_THROW(cache.Fill({K(9)}, &rows), InternalError);
}

TEST(EvalRowsTest, StartsAgainPastItsBound) {
  const std::vector<TableSpec> tables = {Table(0, 2)};
  EvalRows cache(tables, 4);
  std::vector<Key> missing;
  ParamBuffers pulled, rows;
  const std::vector<Key> a = {K(1), K(2), K(3)};
  cache.Missing(a, &missing);
  Serve(tables, missing, 0.0f, &pulled);
  cache.Store(missing, pulled);
  // Two more would make 5 rows > 4: the cache is emptied and the whole batch pulled.
  const std::vector<Key> b = {K(3), K(4), K(5)};
  cache.Missing(b, &missing);
  EXPECT_EQ(missing, b);
  EXPECT_EQ(cache.size(), 0u);
  Serve(tables, missing, 0.0f, &pulled);
  cache.Store(missing, pulled);
  cache.Fill(b, &rows);
  ExpectRows(tables, b, 0.0f, rows);
  EXPECT_EQ(cache.size(), 3u);
}

}  // namespace
}  // namespace recsys
