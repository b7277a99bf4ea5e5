// Tests of BatchBuilder (worker/batcher.h) against a plain reference built
// with std::map: every example's slots hold the right key and value, keys are
// de-duplicated in first-seen order, and nothing of one batch leaks into the
// next (the builder's scratch is reused through generation stamps).
#include "worker/batcher.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"

namespace recsys {
namespace {

// A data set with 2 user slots and 3 item slots; some users and items have
// fewer features than slots, some none, one item more than its slots.
Dataset MakeData() {
  Dataset d;
  d.user_slot_fields = {kFieldAge, kFieldGender};
  d.item_slot_fields = {kFieldGenre, kFieldGenre, kFieldGenre};
  for (std::uint64_t u = 0; u < 40; ++u) {
    if (u % 7 == 3) continue;  // no features
    std::vector<Feature> f = {{MakeKey(kFieldAge, u % 5), 1.0f}};
    if (u % 4 != 1) f.push_back({MakeKey(kFieldGender, u % 2), 1.0f});
    d.user_features[u] = f;
  }
  for (std::uint64_t i = 0; i < 60; ++i) {
    if (i % 11 == 5) continue;
    const int genres = static_cast<int>(i % 5);  // 0..4: item 4 etc. have more than 3
    std::vector<Feature> f;
    for (int g = 0; g < genres; ++g) {
      f.push_back({MakeKey(kFieldGenre, (i + static_cast<std::uint64_t>(g) * 3) % 19), 1.0f / static_cast<Real>(genres)});
    }
    d.item_features[i] = f;
  }
  return d;
}

std::vector<std::uint8_t> Slots(const Dataset& d) { return SlotLayout(d.user_slot_fields, d.item_slot_fields); }

// What Build must produce, written the obvious way.
void ReferenceBuild(const Dataset& d, const Example* ex, int n, Batch* out) {
  const int us = static_cast<int>(d.user_slot_fields.size());
  const int is = static_cast<int>(d.item_slot_fields.size());
  const int slots = 2 + us + is;
  std::map<Key, int> index;
  const auto intern = [&](Key k) {
    const auto [it, inserted] = index.emplace(k, static_cast<int>(out->keys.size()));
    if (inserted) out->keys.push_back(k);
    return it->second;
  };
  out->size = n;
  out->slots = slots;
  out->keys.clear();
  out->row.assign(static_cast<std::size_t>(n) * slots, -1);
  out->value.assign(static_cast<std::size_t>(n) * slots, 0.0f);
  out->label.assign(static_cast<std::size_t>(n), 0.0f);
  for (int e = 0; e < n; ++e) {
    const std::size_t base = static_cast<std::size_t>(e) * slots;
    out->label[static_cast<std::size_t>(e)] = ex[e].label;
    out->row[base] = intern(MakeKey(kFieldUser, ex[e].user));
    out->value[base] = 1.0f;
    out->row[base + 1] = intern(MakeKey(kFieldItem, ex[e].item));
    out->value[base + 1] = 1.0f;
    if (const auto it = d.user_features.find(ex[e].user); it != d.user_features.end()) {
      for (int j = 0; j < us && j < static_cast<int>(it->second.size()); ++j) {
        out->row[base + 2 + j] = intern(it->second[j].key);
        out->value[base + 2 + j] = it->second[j].value;
      }
    }
    if (const auto it = d.item_features.find(ex[e].item); it != d.item_features.end()) {
      for (int j = 0; j < is && j < static_cast<int>(it->second.size()); ++j) {
        out->row[base + 2 + us + j] = intern(it->second[j].key);
        out->value[base + 2 + us + j] = it->second[j].value;
      }
    }
  }
}

std::vector<Example> RandomExamples(int n, SplitMix64& rng) {
  std::vector<Example> ex(static_cast<std::size_t>(n));
  for (auto& e : ex) {
    e.user = rng.NextBelow(45);  // 40..44 are unknown to the data: no features
    e.item = rng.NextBelow(65);
    e.label = rng.NextBelow(5) == 0 ? 1.0f : 0.0f;
  }
  return ex;
}

void ExpectSame(const Batch& want, const Batch& got) {
  EXPECT_EQ(got.size, want.size);
  EXPECT_EQ(got.slots, want.slots);
  EXPECT_EQ(got.keys, want.keys);
  EXPECT_EQ(got.row, want.row);
  EXPECT_EQ(got.value, want.value);
  EXPECT_EQ(got.label, want.label);
}

TEST(BatchBuilderTest, MatchesTheReferenceWithSideFeatures) {
  const Dataset d = MakeData();
  BatchBuilder builder(Slots(d), &d);
  SplitMix64 rng(3);
  Batch got, want;
  // Batches of varied sizes, reusing one Batch; 3000 examples make the
  // key index grow past its first capacity in the middle.
  for (const int n : {1, 17, 256, 3, 3000, 256, 40, 1}) {
    const std::vector<Example> ex = RandomExamples(n, rng);
    builder.Build(ex.data(), n, &got);
    ReferenceBuild(d, ex.data(), n, &want);
    SCOPED_TRACE(n);
    ExpectSame(want, got);
  }
}

TEST(BatchBuilderTest, IdsOnlyLayoutIgnoresTheSideFeatures) {
  const Dataset d = MakeData();
  BatchBuilder builder({kFieldUser, kFieldItem}, &d);
  Dataset ids_only;  // the reference without side features
  SplitMix64 rng(5);
  Batch got, want;
  for (const int n : {256, 9}) {
    const std::vector<Example> ex = RandomExamples(n, rng);
    builder.Build(ex.data(), n, &got);
    ReferenceBuild(ids_only, ex.data(), n, &want);
    ExpectSame(want, got);
  }
}

TEST(BatchBuilderTest, ASideFeatureIsOneRowPerBatchAndFreshInTheNext) {
  const Dataset d = MakeData();
  BatchBuilder builder(Slots(d), &d);
  Batch batch;
  // Users 0 and 5 share their age (0); the second batch must intern it anew.
  const std::vector<Example> a = {{0, 1, 1.0f}, {5, 2, 0.0f}};
  builder.Build(a.data(), 2, &batch);
  const int slots = batch.slots;
  EXPECT_EQ(batch.row[2], batch.row[static_cast<std::size_t>(slots) + 2]);
  EXPECT_EQ(batch.keys[static_cast<std::size_t>(batch.row[2])], MakeKey(kFieldAge, 0));
  const std::vector<Example> b = {{8, 7, 1.0f}};
  builder.Build(b.data(), 1, &batch);
  ASSERT_EQ(batch.keys.size(), 2u + 2u + 2u);  // user, item, age, gender, 2 genres
  EXPECT_EQ(batch.keys[static_cast<std::size_t>(batch.row[2])], MakeKey(kFieldAge, 8 % 5));
}

TEST(BatchBuilderTest, GrowingItsIndexForgetsEarlierBatches) {
  // A batch with more keys than the index holds makes it grow, which
  // restarts the generation count: rows stamped by earlier batches must
  // not look current again then.
  const Dataset d = MakeData();
  BatchBuilder builder(Slots(d), &d);
  Batch got, want;
  const auto check = [&](const std::vector<Example>& ex) {
    builder.Build(ex.data(), static_cast<int>(ex.size()), &got);
    ReferenceBuild(d, ex.data(), static_cast<int>(ex.size()), &want);
    ExpectSame(want, got);
  };
  check({{0, 1, 1.0f}});  // stamps user 0's age and gender
  // Many examples without side features (user 44 and item 5 have none):
  // the index grows; user 0's features are not touched.
  std::vector<Example> big;
  for (std::uint64_t i = 0; i < 5000; ++i) big.push_back({44, i % 2 == 0 ? std::uint64_t{5} : std::uint64_t{16}, 0.0f});
  check(big);
  // The next batch has the generation of the first one again.
  check({{1, 2, 1.0f}, {0, 1, 0.0f}});
}

}  // namespace
}  // namespace recsys
