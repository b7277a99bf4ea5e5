// Tests of the synthetic generator at scale: the Zipf sampler's law, the
// rank permutation, the streaming generator's independence of the number of
// workers and of the number of items (no O(items) memory), and the item
// universe held as a range. The generator's small-scale behaviour (tables)
// is tested in data_test.cc.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/data/dataset.h"
#include "common/data/item_universe.h"
#include "common/data/sampler.h"
#include "common/data/synthetic.h"
#include "common/topology.h"

namespace recsys {
namespace {

using Items = std::vector<std::uint64_t>;

// ---------------------------------------------------------------------------
// ZipfSampler

// Empirical frequencies of the top ranks against the exact law, within 5
// binomial standard deviations (a fixed seed: the test is deterministic; the
// bound says how far it may be from the law before it is a bug).
void ExpectZipfLaw(std::uint64_t n, double s) {
  const ZipfSampler zipf(n, s);
  SplitMix64 rng(2024);
  constexpr int kDraws = 200000;
  std::vector<int> counts(n + 1, 0);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    ++counts[k];
  }
  auto expect_near = [&](double observed_count, double p, const char* what) {
    const double expected = kDraws * p;
    const double sd = std::sqrt(kDraws * p * (1 - p));
    EXPECT_NEAR(observed_count, expected, 5 * sd + 1) << what << " n=" << n << " s=" << s;
  };
  for (std::uint64_t k = 1; k <= std::min<std::uint64_t>(n, 20); ++k) {
    expect_near(counts[k], zipf.Probability(k), "rank");
  }
  // And the mass of the body and of the tail.
  double body_p = 0, tail_p = 0, body = 0, tail = 0;
  for (std::uint64_t k = 1; k <= n; ++k) {
    (k <= n / 10 ? body_p : tail_p) += zipf.Probability(k);
    (k <= n / 10 ? body : tail) += counts[k];
  }
  expect_near(body, body_p, "top 10% of ranks");
  expect_near(tail, tail_p, "bottom 90% of ranks");
}

TEST(ZipfSamplerTest, FollowsTheLaw) {
  ExpectZipfLaw(1000, 0.8);
  ExpectZipfLaw(1000, 1.0);  // H is a log here
  ExpectZipfLaw(1000, 1.5);
  ExpectZipfLaw(1000, 0.0);  // uniform
  ExpectZipfLaw(1, 0.8);
  ExpectZipfLaw(2, 0.8);
  ExpectZipfLaw(37, 0.3);
}

// At a billion ranks: the ratios of the top ranks and the mass of the far
// tail, against the law (the tail's sum by its integral, which is exact to
// ~1e-9 relative there).
TEST(ZipfSamplerTest, FollowsTheLawAtABillionRanks) {
  const std::uint64_t n = 1000000000;
  const double s = 0.8;
  const ZipfSampler zipf(n, s);
  SplitMix64 rng(7);
  constexpr int kDraws = 400000;
  int rank1 = 0, rank2 = 0, far = 0;
  const std::uint64_t far_from = 100000000;  // ranks above 1e8
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    rank1 += k == 1;
    rank2 += k == 2;
    far += k > far_from;
  }
  // sum_{k=a+1}^{b} k^-s ~ ((b + 1/2)^(1-s) - (a + 1/2)^(1-s)) / (1 - s).
  auto tail_sum = [&](double a, double b) { return (std::pow(b + 0.5, 1 - s) - std::pow(a + 0.5, 1 - s)) / (1 - s); };
  double head = 0;
  for (int k = 1; k <= 1000; ++k) head += std::pow(k, -s);
  const double total = head + tail_sum(1000, static_cast<double>(n));
  const double p1 = 1 / total, p2 = std::pow(2.0, -s) / total;
  const double p_far = tail_sum(static_cast<double>(far_from), static_cast<double>(n)) / total;
  EXPECT_NEAR(rank1, kDraws * p1, 5 * std::sqrt(kDraws * p1));
  EXPECT_NEAR(rank2, kDraws * p2, 5 * std::sqrt(kDraws * p2));
  EXPECT_NEAR(far, kDraws * p_far, 5 * std::sqrt(kDraws * p_far * (1 - p_far)));
  EXPECT_GT(p_far, 0.3);  // the long tail is really drawn from
}

// ---------------------------------------------------------------------------
// RankPermutation

TEST(RankPermutationTest, IsABijectionWithItsInverse) {
  for (const std::uint64_t n : {1u, 2u, 3u, 4u, 5u, 17u, 1000u, 4096u, 4097u, 100003u}) {
    const RankPermutation p(n, 99);
    std::vector<bool> hit(n, false);
    for (std::uint64_t x = 0; x < n; ++x) {
      const std::uint64_t y = p.Forward(x);
      ASSERT_LT(y, n) << "n=" << n;
      ASSERT_FALSE(hit[y]) << "n=" << n << " x=" << x << " collides at " << y;
      hit[y] = true;
      ASSERT_EQ(p.Inverse(y), x) << "n=" << n;
    }
  }
}

TEST(RankPermutationTest, SeededAndScattered) {
  const std::uint64_t n = 50000000;
  const RankPermutation a(n, 1), b(n, 1), c(n, 2);
  int differ = 0, low = 0;
  for (std::uint64_t x = 0; x < 1000; ++x) {
    EXPECT_EQ(a.Forward(x), b.Forward(x));
    differ += a.Forward(x) != c.Forward(x);
    low += a.Forward(x) < n / 10;
  }
  EXPECT_GT(differ, 990);
  // The top ranks land all over the id range, not near 0 (~100 of 1000
  // expected in the lowest tenth).
  EXPECT_GT(low, 50);
  EXPECT_LT(low, 160);
  // Far beyond what a table could hold: still a round trip.
  const RankPermutation huge(std::uint64_t{1} << 40, 5);
  for (std::uint64_t x : {std::uint64_t{0}, std::uint64_t{12345}, (std::uint64_t{1} << 40) - 1}) {
    const std::uint64_t y = huge.Forward(x);
    EXPECT_LT(y, std::uint64_t{1} << 40);
    EXPECT_EQ(huge.Inverse(y), x);
  }
}

// ---------------------------------------------------------------------------
// The streaming generator

SyntheticOptions Streaming(std::uint64_t users, std::uint64_t items, int per_user) {
  SyntheticOptions options;
  options.users = users;
  options.items = items;
  options.interactions_per_user = per_user;
  options.seed = 3;
  options.table_items_max = 0;  // stream whatever the size
  return options;
}

void ExpectValidHistory(const std::vector<Interaction>& history, std::uint64_t user, const SyntheticOptions& options) {
  ASSERT_EQ(history.size(), static_cast<std::size_t>(options.interactions_per_user));
  std::set<std::uint64_t> items;
  for (std::size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(history[i].user, user);
    EXPECT_EQ(history[i].ts, static_cast<std::int64_t>(i));
    EXPECT_LT(history[i].item, options.items);
    items.insert(history[i].item);
  }
  EXPECT_EQ(items.size(), history.size());
}

// No allocation proportional to the items: a 100-million-item and a
// 2^40-item generator (whose tables would need 5 GB and 50 TB) are built,
// and their first users generated, at once.
TEST(SyntheticStreamingTest, MemoryDoesNotGrowWithItems) {
  for (const std::uint64_t items : {std::uint64_t{100000000}, std::uint64_t{1} << 40}) {
    SyntheticOptions options;  // the default threshold: streaming is automatic
    options.users = 10000000;
    options.items = items;
    options.interactions_per_user = 20;
    const SyntheticGenerator generator(options);
    ASSERT_TRUE(generator.streaming());
    for (std::uint64_t user = 0; user < 100; ++user) ExpectValidHistory(generator.GenerateUser(user), user, options);
  }
  SyntheticOptions small;
  EXPECT_FALSE(SyntheticGenerator(small).streaming());  // the defaults keep their tables (and data)
}

TEST(SyntheticStreamingTest, DeterministicPerUserAndSeed) {
  const SyntheticOptions options = Streaming(1000, 5000000, 10);
  const SyntheticGenerator a(options), b(options);
  const std::vector<Interaction> late = a.GenerateUser(777);
  for (std::uint64_t user = 0; user < 20; ++user) b.GenerateUser(user);
  const std::vector<Interaction> again = b.GenerateUser(777);
  ExpectValidHistory(late, 777, options);
  for (std::size_t i = 0; i < late.size(); ++i) EXPECT_EQ(late[i].item, again[i].item);
  SyntheticOptions other = options;
  other.seed = 4;
  const std::vector<Interaction> different = SyntheticGenerator(other).GenerateUser(777);
  int same = 0;
  for (std::size_t i = 0; i < late.size(); ++i) same += late[i].item == different[i].item;
  EXPECT_LT(same, 3);
}

// The union of the workers' partitions is the same data set for any number
// of workers, with tables and streaming alike (ReadDataset as a worker calls
// it, keeping the users Topology assigns to it).
TEST(SyntheticStreamingTest, SameDataForAnyNumberOfWorkers) {
  for (const std::uint64_t items : {std::uint64_t{1000}, std::uint64_t{3000000}}) {  // tables, streaming
    DataOptions options;
    options.users = 400;
    options.items = items;
    options.interactions_per_user = 6;
    options.seed = 21;
    std::vector<std::tuple<std::uint64_t, std::int64_t, std::uint64_t>> reference;
    for (const int workers : {1, 2, 3, 5}) {
      const Topology topology(1 + 1 + workers, 1);
      std::vector<std::tuple<std::uint64_t, std::int64_t, std::uint64_t>> all;
      std::size_t users = 0;
      for (int w = 0; w < workers; ++w) {
        const Dataset part =
            ReadDataset(options, [&](std::uint64_t user) { return topology.WorkerOfUser(user) == w; });
        EXPECT_EQ(part.dense_items, items);
        EXPECT_TRUE(part.items.empty());
        users += part.num_users();
        for (const Interaction& x : part.interactions) all.emplace_back(x.user, x.ts, x.item);
      }
      EXPECT_EQ(users, 400u);
      std::sort(all.begin(), all.end());
      if (workers == 1) {
        reference = all;
        EXPECT_EQ(reference.size(), 400u * 6);
      } else {
        EXPECT_EQ(all, reference) << workers << " workers, " << items << " items";
      }
    }
  }
}

TEST(SyntheticStreamingTest, PopularityIsZipfOverScatteredIds) {
  const SyntheticOptions options = Streaming(3000, 2000000, 10);
  const SyntheticGenerator generator(options);
  std::map<std::uint64_t, int> counts;
  for (std::uint64_t user = 0; user < options.users; ++user) {
    for (const Interaction& x : generator.GenerateUser(user)) ++counts[x.item];
  }
  // The 30 000 interactions are spread over the 2 million items with a heavy
  // head: uniform draws would give ~30 000 distinct items, each ~once.
  std::vector<int> sorted;
  for (const auto& [item, count] : counts) sorted.push_back(count);
  std::sort(sorted.rbegin(), sorted.rend());
  int top = 0;
  for (int i = 0; i < 100; ++i) top += sorted[static_cast<std::size_t>(i)];
  EXPECT_GT(top, 30000 / 20);  // the 100 most drawn items (0.005%) take over 5%
  EXPECT_GT(counts.size(), 5000u);  // and the tail is long
  // The items of the 10 top popularity ranks are drawn ~4.6% of the time
  // (acceptance by affinity is independent of the rank), uniform draws
  // would give them 0.0005%; and they are not the lowest ids.
  const RankPermutation permutation(options.items, options.seed);
  int top_ranks = 0;
  std::uint64_t lowest = options.items;
  for (std::uint64_t rank = 0; rank < 10; ++rank) {
    top_ranks += counts[permutation.Forward(rank)];
    lowest = std::min(lowest, permutation.Forward(rank));
  }
  EXPECT_GT(top_ranks, 30000 * 25 / 1000);
  EXPECT_LT(top_ranks, 30000 * 70 / 1000);
  EXPECT_GT(lowest, 1000u);
}

TEST(SyntheticStreamingTest, FillsUpWhenTheBudgetRunsOut) {
  // Every item: the complement path.
  const SyntheticOptions all = Streaming(10, 60, 60);
  ExpectValidHistory(SyntheticGenerator(all).GenerateUser(3), 3, all);
  // More than the budget finds among many items (the taste holds ~10% of
  // them, and the budget is 1000 + 200 per item): the rejection path.
  const SyntheticOptions many = Streaming(10, 5000, 1000);
  ExpectValidHistory(SyntheticGenerator(many).GenerateUser(4), 4, many);
}

// ---------------------------------------------------------------------------
// ItemUniverse and the samplers over a range

TEST(ItemUniverseTest, RangePlusList) {
  const ItemUniverse u(10, {3, 9, 10, 15, 1000});  // 3 and 9 are in the range already
  EXPECT_EQ(u.size(), 13u);
  EXPECT_EQ(u[0], 0u);
  EXPECT_EQ(u[9], 9u);
  EXPECT_EQ(u[10], 10u);
  EXPECT_EQ(u[12], 1000u);
  EXPECT_TRUE(u.Contains(3));
  EXPECT_TRUE(u.Contains(15));
  EXPECT_FALSE(u.Contains(11));
  EXPECT_FALSE(u.Contains(1001));
  Items all;
  u.ForEach([&](std::uint64_t item) { all.push_back(item); });
  EXPECT_EQ(all, (Items{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 1000}));
  EXPECT_TRUE(ItemUniverse().empty());
}

// A range and the list of the same items draw the very same negatives and
// candidates: holding the synthetic items as a range changes no result.
TEST(ItemUniverseTest, RangeSamplesAsTheListDoes) {
  Items list;
  for (std::uint64_t i = 0; i < 1000; ++i) list.push_back(i);
  const NegativeSampler listed(list), range(ItemUniverse(1000, {}));
  const Items positives = {4, 8, 15, 16, 23, 42};
  SplitMix64 a(5), b(5);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(listed.Sample(a, positives), range.Sample(b, positives));
  EXPECT_EQ(SampleEvalCandidates(listed, 1, 77, positives, 99), SampleEvalCandidates(range, 1, 77, positives, 99));
}

// Candidates over fifty million items: drawn without touching the universe.
TEST(ItemUniverseTest, EvalCandidatesAtScale) {
  const NegativeSampler sampler(ItemUniverse(50000000, {}));
  const Items positives = {1, 2, 3};
  const Items candidates = SampleEvalCandidates(sampler, 9, 1234, positives, 99);
  ASSERT_EQ(candidates.size(), 99u);
  EXPECT_EQ(std::set<std::uint64_t>(candidates.begin(), candidates.end()).size(), 99u);
  for (const std::uint64_t c : candidates) EXPECT_LT(c, 50000000u);
  SplitMix64 rng(1);
  EXPECT_LT(sampler.Sample(rng, positives), 50000000u);
}

}  // namespace
}  // namespace recsys
