// Tests of the ranking metrics (metrics.h): ranks with ties, HR@K and NDCG@K
// against values computed by hand, and the exact reduction of partial sums.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "common/metrics.h"

namespace recsys {
namespace {

// 1 / log2(r + 2) for the ranks used below, computed by hand:
//   rank 0: 1/log2(2) = 1
//   rank 1: 1/log2(3) = ln 2 / ln 3 = 0.693147180559945 / 1.098612288668110
//   rank 5: 1/log2(7) = ln 2 / ln 7 = 0.693147180559945 / 1.945910149055313
constexpr double kGain0 = 1.0;
constexpr double kGain1 = 0.6309297535714574;
constexpr double kGain5 = 0.3562071871080222;
constexpr double kTol = 1e-12;

TEST(MetricsTest, RankCountsHigherScores) {
  const float candidates[] = {0.1f, 0.9f, -2.0f, 0.6f, 0.3f};
  EXPECT_EQ(RankOfPositive(1.0f, candidates, 5), 0);
  EXPECT_EQ(RankOfPositive(0.5f, candidates, 5), 2);
  EXPECT_EQ(RankOfPositive(-3.0f, candidates, 5), 5);
  EXPECT_EQ(RankOfPositive(0.5f, candidates, 0), 0);  // no candidates
}

TEST(MetricsTest, TiesCountAgainstThePositive) {
  const float candidates[] = {0.5f, 0.7f, 0.1f, 0.5f};
  EXPECT_EQ(RankOfPositive(0.5f, candidates, 4), 3);  // two ties and one higher
  // A constant model ranks the positive last, not first.
  const float constant[] = {0.0f, 0.0f, 0.0f};
  EXPECT_EQ(RankOfPositive(0.0f, constant, 3), 3);
}

TEST(MetricsTest, HitRatioAndNdcgByHand) {
  RankingSums sums({5, 10});
  for (int rank : {0, 1, 5, 12}) sums.Add(rank);
  EXPECT_EQ(sums.users, 4);
  ASSERT_EQ(sums.ks, (std::vector<int>{5, 10}));
  // K=5: ranks 0 and 1 are hits.
  EXPECT_EQ(sums.hits[0], 2.0);
  EXPECT_NEAR(sums.ndcg[0], kGain0 + kGain1, kTol);
  EXPECT_DOUBLE_EQ(sums.HitRatio(0), 0.5);
  EXPECT_NEAR(sums.Ndcg(0), (kGain0 + kGain1) / 4, kTol);
  // K=10: ranks 0, 1 and 5; rank 12 misses both.
  EXPECT_EQ(sums.hits[1], 3.0);
  EXPECT_NEAR(sums.ndcg[1], kGain0 + kGain1 + kGain5, kTol);
  EXPECT_DOUBLE_EQ(sums.HitRatio(1), 0.75);
  EXPECT_NEAR(sums.Ndcg(1), (kGain0 + kGain1 + kGain5) / 4, kTol);
}

TEST(MetricsTest, CutOffIsExclusive) {
  RankingSums sums({5});
  sums.Add(4);  // hit
  sums.Add(5);  // miss: rank 5 is the sixth place
  EXPECT_EQ(sums.hits[0], 1.0);
  EXPECT_NEAR(sums.ndcg[0], 1.0 / std::log2(6.0), kTol);
}

TEST(MetricsTest, EmptySumsAreZeroNotNan) {
  const RankingSums sums({1, 10});
  EXPECT_EQ(sums.users, 0);
  EXPECT_EQ(sums.HitRatio(0), 0.0);
  EXPECT_EQ(sums.Ndcg(1), 0.0);
  EXPECT_EQ(RankingSums().ks, (std::vector<int>{10}));
}

TEST(MetricsTest, MergeIsTheExactSumOverAllUsers) {
  // Unequal user counts: one worker with 3 users, one with 7.
  const std::vector<int> a_ranks = {0, 1, 5};
  const std::vector<int> b_ranks = {12, 3, 30, 7, 9, 0, 100};
  RankingSums a({5, 10}), b({5, 10}), all({5, 10});
  for (int r : a_ranks) {
    a.Add(r);
    all.Add(r);
  }
  for (int r : b_ranks) {
    b.Add(r);
    all.Add(r);
  }
  RankingSums merged({5, 10});
  merged.Merge(a);
  merged.Merge(b);
  EXPECT_EQ(merged.users, 10);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(merged.hits[k], all.hits[k]);
    EXPECT_NEAR(merged.ndcg[k], all.ndcg[k], kTol);
    EXPECT_NEAR(merged.HitRatio(k), all.HitRatio(k), kTol);
    EXPECT_NEAR(merged.Ndcg(k), all.Ndcg(k), kTol);
  }
  // HR@5: ranks 0 and 1 of the first worker, 3 and 0 of the second: 4 of 10.
  EXPECT_DOUBLE_EQ(merged.HitRatio(0), 4.0 / 10);
  // The average of the two workers' averages (2/3 and 2/7) would be wrong.
  const double average_of_averages = (a.HitRatio(0) + b.HitRatio(0)) / 2;
  EXPECT_NE(merged.HitRatio(0), average_of_averages);
  EXPECT_NEAR(average_of_averages, (2.0 / 3 + 2.0 / 7) / 2, kTol);

  // Merging in place of Add, in either order, gives the same.
  RankingSums other_order({5, 10});
  other_order.Merge(b);
  other_order.Merge(a);
  EXPECT_EQ(other_order.users, merged.users);
  EXPECT_EQ(other_order.hits, merged.hits);
}

TEST(MetricsTest, MergeOfDifferentCutOffsIsABug) {
  RankingSums a({5, 10});
  const RankingSums b({10});
  EXPECT_THROW(a.Merge(b), InternalError);
}

TEST(MetricsTest, NegativeRankIsABug) {
  RankingSums sums;
  EXPECT_THROW(sums.Add(-1), InternalError);
  EXPECT_EQ(sums.users, 0);
}

}  // namespace
}  // namespace recsys
