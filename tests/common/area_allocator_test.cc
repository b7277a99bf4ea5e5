// AreaAllocator: first-fit blocks of a worker's shared area for pull replies.
#include "common/area_allocator.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "common/error.h"

namespace recsys {
namespace {

TEST(AreaAllocatorTest, TakesTheLowestGapThatFitsAndAlignsBlocks) {
  AreaAllocator a(1000);
  std::size_t x = 1, y = 1, z = 1;
  ASSERT_TRUE(a.Allocate(100, &x));  // rounded to 128
  ASSERT_TRUE(a.Allocate(1, &y));    // 64
  ASSERT_TRUE(a.Allocate(64, &z));
  EXPECT_EQ(x, 0u);
  EXPECT_EQ(y, 128u);
  EXPECT_EQ(z, 192u);
  a.Free(x);
  std::size_t w = 1;
  ASSERT_TRUE(a.Allocate(128, &w));  // the freed gap at 0 fits exactly
  EXPECT_EQ(w, 0u);
  std::size_t v = 1;
  ASSERT_TRUE(a.Allocate(129, &v));  // too big for any gap below 256: after z
  EXPECT_EQ(v, 256u);
  EXPECT_EQ(a.blocks(), 4u);
  for (std::size_t b : {w, y, z, v}) a.Free(b);
  EXPECT_EQ(a.blocks(), 0u);
}

TEST(AreaAllocatorTest, RefusesWhatDoesNotFitAndReusesFreedRoom) {
  AreaAllocator a(256);
  std::size_t x = 0, y = 0, z = 0;
  EXPECT_FALSE(a.Allocate(257, &x));
  ASSERT_TRUE(a.Allocate(256, &x));  // the whole area
  EXPECT_FALSE(a.Allocate(1, &y));
  a.Free(x);
  ASSERT_TRUE(a.Allocate(200, &y));  // 256 with the rounding
  EXPECT_FALSE(a.Allocate(1, &z));
  a.Free(y);
  // Blocks freed out of order leave gaps that later blocks fill.
  std::vector<std::size_t> at(4);
  for (auto& o : at) ASSERT_TRUE(a.Allocate(64, &o));
  a.Free(at[1]);
  a.Free(at[2]);
  ASSERT_TRUE(a.Allocate(128, &z));
  EXPECT_EQ(z, 64u);
}

TEST(AreaAllocatorTest, AnEmptyAreaHoldsNothingAndBadFreesAreBugs) {
  AreaAllocator none;
  std::size_t x = 0;
  EXPECT_FALSE(none.Allocate(1, &x));
  AreaAllocator a(1024);
  EXPECT_THROW(a.Allocate(0, &x), InternalError);
  ASSERT_TRUE(a.Allocate(10, &x));
  EXPECT_THROW(a.Free(x + 64), InternalError);
  a.Free(x);
  EXPECT_THROW(a.Free(x), InternalError);
}

}  // namespace
}  // namespace recsys
