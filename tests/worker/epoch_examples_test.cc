// Tests of the incremental maker of an epoch's examples
// (worker/epoch_examples.h): the list does not depend on how the work is
// split into steps, it holds every positive once with its negatives (none
// of them a training positive of the user), pairs stay together under a
// pairwise loss, and Start/Finish/Release behave as documented.
#include "worker/epoch_examples.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "common/data/item_universe.h"
#include "common/hash.h"

namespace recsys {
namespace {

struct Fixture {
  std::vector<UserHistory> users;
  std::vector<std::vector<std::uint64_t>> train_sorted;
  NegativeSampler sampler{ItemUniverse(200, {})};

  Fixture() {
    SplitMix64 rng(7);
    for (std::uint64_t u = 0; u < 30; ++u) {
      UserHistory h;
      h.user = 1000 + u;
      // 0..12 positives; user 3 has none (it still takes part in nothing).
      const std::size_t n = u == 3 ? 0 : 1 + rng.NextBelow(12);
      std::set<std::uint64_t> items;
      while (items.size() < n) items.insert(rng.NextBelow(200));
      h.train.assign(items.begin(), items.end());
      std::shuffle(h.train.begin(), h.train.end(), rng);  // oldest first, any order
      users.push_back(h);
      train_sorted.emplace_back(items.begin(), items.end());
    }
  }
  std::size_t positives() const {
    std::size_t n = 0;
    for (const auto& u : users) n += u.train.size();
    return n;
  }
};

bool Same(const std::vector<Example>& a, const std::vector<Example>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].user != b[i].user || a[i].item != b[i].item || a[i].label != b[i].label) return false;
  }
  return true;
}

// Makes the epoch of `seed` with steps of the given sizes (cycled), then Finish.
std::vector<Example> Make(EpochExamples& maker, std::uint64_t seed, const std::vector<std::size_t>& steps) {
  maker.Start(seed);
  for (std::size_t i = 0; !steps.empty() && maker.Advance(steps[i % steps.size()]); ++i) {
  }
  std::vector<Example> out;
  maker.Finish(&out);
  return out;
}

TEST(EpochExamples, TheListDoesNotDependOnHowTheWorkIsSplit) {
  for (const bool pairwise : {false, true}) {
    Fixture f;
    EpochExamples maker(&f.users, &f.train_sorted, &f.sampler, pairwise ? 1 : 4, pairwise);
    const auto whole = Make(maker, 42, {});
    EXPECT_TRUE(Same(whole, Make(maker, 42, {1})));
    EXPECT_TRUE(Same(whole, Make(maker, 42, {16})));
    EXPECT_TRUE(Same(whole, Make(maker, 42, {3, 1, 50, 7})));
    // Another seed: another draw and order.
    EXPECT_FALSE(Same(whole, Make(maker, 43, {})));
  }
}

// Exactly the textbook algorithm on the same random stream: every positive
// followed by its negatives in user order, then Fisher-Yates from the back
// (over pairs for a pairwise loss). Catches a consistent error in the
// look-ahead of the swap partners, which the test above cannot.
TEST(EpochExamples, IsAPlainFisherYatesOfTheListInUserOrder) {
  for (const bool pairwise : {false, true}) {
    Fixture f;
    const int negatives = pairwise ? 1 : 4;
    EpochExamples maker(&f.users, &f.train_sorted, &f.sampler, negatives, pairwise);
    const auto got = Make(maker, 77, {7});
    SplitMix64 rng(77);
    std::vector<Example> expected;
    for (std::size_t i = 0; i < f.users.size(); ++i) {
      for (auto item : f.users[i].train) {
        expected.push_back(Example{f.users[i].user, item, 1.0f});
        for (int k = 0; k < negatives; ++k) {
          expected.push_back(Example{f.users[i].user, f.sampler.Sample(rng, f.train_sorted[i]), 0.0f});
        }
      }
    }
    const std::size_t unit = pairwise ? 2 : 1;
    for (std::size_t left = expected.size() / unit; left > 1; --left) {
      const std::size_t j = rng.NextBelow(left);
      for (std::size_t u = 0; u < unit; ++u) std::swap(expected[unit * (left - 1) + u], expected[unit * j + u]);
    }
    EXPECT_TRUE(Same(got, expected)) << (pairwise ? "pairwise" : "pointwise");
  }
}

TEST(EpochExamples, EveryPositiveOnceWithItsNegatives) {
  Fixture f;
  const int negatives = 4;
  EpochExamples maker(&f.users, &f.train_sorted, &f.sampler, negatives, /*pairwise=*/false);
  ASSERT_EQ(maker.size(), f.positives() * (1 + negatives));
  const auto examples = Make(maker, 5, {16});
  ASSERT_EQ(examples.size(), maker.size());
  std::map<std::uint64_t, const std::vector<std::uint64_t>*> train;
  for (std::size_t i = 0; i < f.users.size(); ++i) train[f.users[i].user] = &f.train_sorted[i];
  std::multiset<std::pair<std::uint64_t, std::uint64_t>> seen_positives;
  std::map<std::uint64_t, std::size_t> negatives_of;
  for (const Example& e : examples) {
    ASSERT_TRUE(train.count(e.user));
    const auto& items = *train[e.user];
    const bool in_train = std::binary_search(items.begin(), items.end(), e.item);
    if (e.label == 1.0f) {
      EXPECT_TRUE(in_train);
      seen_positives.insert({e.user, e.item});
    } else {
      ASSERT_EQ(e.label, 0.0f);
      EXPECT_FALSE(in_train) << "user " << e.user << " got its positive " << e.item << " as a negative";
      ++negatives_of[e.user];
    }
  }
  std::multiset<std::pair<std::uint64_t, std::uint64_t>> expected;
  for (const auto& u : f.users) {
    for (auto item : u.train) expected.insert({u.user, item});
    EXPECT_EQ(negatives_of[u.user], u.train.size() * negatives) << "user " << u.user;
  }
  EXPECT_EQ(seen_positives, expected);
  // Shuffled: the positives are not all at the front, as they were made.
  const auto first_negative = std::find_if(examples.begin(), examples.end(), [](const Example& e) { return e.label == 0; });
  EXPECT_LT(first_negative - examples.begin(), 10);
}

TEST(EpochExamples, PairwiseKeepsEachPositiveBeforeItsNegative) {
  Fixture f;
  EpochExamples maker(&f.users, &f.train_sorted, &f.sampler, 1, /*pairwise=*/true);
  const auto examples = Make(maker, 9, {5});
  ASSERT_EQ(examples.size(), 2 * f.positives());
  std::size_t moved = 0;
  for (std::size_t i = 0; i < examples.size(); i += 2) {
    EXPECT_EQ(examples[i].label, 1.0f);
    EXPECT_EQ(examples[i + 1].label, 0.0f);
    EXPECT_EQ(examples[i].user, examples[i + 1].user);
    if (i > 0 && examples[i].user < examples[i - 2].user) ++moved;
  }
  EXPECT_GT(moved, 0u) << "pairs were not shuffled";
}

TEST(EpochExamples, StartFinishAndRelease) {
  Fixture f;
  EpochExamples maker(&f.users, &f.train_sorted, &f.sampler, 2, false);
  EXPECT_FALSE(maker.Advance(16)) << "nothing started: no work";
  EXPECT_FALSE(maker.Started(1));
  maker.Start(1);
  EXPECT_TRUE(maker.Started(1));
  EXPECT_FALSE(maker.Started(2));
  EXPECT_TRUE(maker.Advance(3));
  // A new Start drops the epoch in the making; the list is that of the new seed.
  const auto direct = Make(maker, 2, {});
  maker.Start(1);
  maker.Advance(10);
  const auto restarted = Make(maker, 2, {4});
  EXPECT_TRUE(Same(direct, restarted));
  EXPECT_FALSE(maker.Started(2)) << "Finish ends the epoch";
  // Finish hands over the list and reuses the caller's buffer.
  std::vector<Example> out = direct;
  maker.Start(3);
  maker.Finish(&out);
  EXPECT_EQ(out.size(), maker.size());
  maker.Release();
  EXPECT_FALSE(maker.Started(3));
  EXPECT_FALSE(maker.Advance(1));
}

TEST(EpochExamples, NoUsersNoExamples) {
  std::vector<UserHistory> users;
  std::vector<std::vector<std::uint64_t>> train_sorted;
  const NegativeSampler sampler(ItemUniverse(10, {}));
  EpochExamples maker(&users, &train_sorted, &sampler, 4, false);
  EXPECT_EQ(maker.size(), 0u);
  maker.Start(1);
  EXPECT_FALSE(maker.Advance(1));
  std::vector<Example> out(3);
  maker.Finish(&out);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace recsys
