#include "common/data/sampler.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <unordered_set>
#include <utility>

#include "common/error.h"

namespace recsys {
namespace {

// Rejection sampling needs 1 / (1 - fraction seen) draws on average; after
// this many rejections the user has seen most of the universe and drawing
// from the explicit complement is cheaper.
constexpr int kMaxRejections = 64;

// Separates the evaluation stream of a user from every other stream derived
// from (seed, user), e.g. the training sampler's.
constexpr std::uint64_t kEvalStreamSalt = 0x6576616c63616e64ULL;  // "evalcand"

bool Contains(const std::vector<std::uint64_t>& sorted, std::uint64_t item) {
  return std::binary_search(sorted.begin(), sorted.end(), item);
}

// The universe items not in `positives` (sorted), in increasing order.
std::vector<std::uint64_t> Complement(const ItemUniverse& items, const std::vector<std::uint64_t>& positives) {
  std::vector<std::uint64_t> complement;
  auto p = positives.begin();
  items.ForEach([&](std::uint64_t item) {
    while (p != positives.end() && *p < item) ++p;
    if (p == positives.end() || *p != item) complement.push_back(item);
  });
  return complement;
}

// The number of universe items not in `positives` (which may hold items
// outside the universe).
std::size_t ComplementSize(const ItemUniverse& items, const std::vector<std::uint64_t>& positives) {
  std::size_t inside = 0;
  for (const std::uint64_t p : positives) inside += items.Contains(p) ? 1 : 0;
  return items.size() - inside;
}

}  // namespace

NegativeSampler::NegativeSampler(ItemUniverse items) : items_(std::move(items)) {
  RECSYS_CHECK(!items_.empty(), "the item universe is empty");
  const std::vector<std::uint64_t>& listed = items_.listed();
  RECSYS_CHECK(std::adjacent_find(listed.begin(), listed.end(), std::greater_equal<>()) == listed.end(),
               "the item universe must be sorted and unique");
}

std::uint64_t NegativeSampler::Sample(SplitMix64& rng, const std::vector<std::uint64_t>& positives) const {
  for (int attempt = 0; attempt < kMaxRejections; ++attempt) {
    const std::uint64_t item = items_[rng.NextBelow(items_.size())];
    if (!Contains(positives, item)) return item;
  }
  const std::vector<std::uint64_t> complement = Complement(items_, positives);
  if (complement.empty()) {
    throw InputError(Concat("negative sampling: a user has interacted with all ", items_.size(),
                            " items, so no negative item is left to sample"));
  }
  return complement[rng.NextBelow(complement.size())];
}

void CheckEvalCandidates(const NegativeSampler& sampler, std::uint64_t user,
                         const std::vector<std::uint64_t>& positives, int n) {
  RECSYS_CHECK(n >= 0, "n=", n);
  const ItemUniverse& items = sampler.items();
  const std::size_t available = ComplementSize(items, positives);
  if (available < static_cast<std::size_t>(n)) {
    throw InputError(Concat("evaluation candidates: user ", user, " has interacted with ", items.size() - available,
                            " of the ", items.size(), " items, so only ", available,
                            " are left to draw ", n, " candidates from"));
  }
}

std::vector<std::uint64_t> SampleEvalCandidates(const NegativeSampler& sampler, std::uint64_t seed,
                                                std::uint64_t user, const std::vector<std::uint64_t>& positives,
                                                int n) {
  CheckEvalCandidates(sampler, user, positives, n);
  const ItemUniverse& items = sampler.items();
  const std::size_t wanted = static_cast<std::size_t>(n);
  const std::size_t available = ComplementSize(items, positives);
  SplitMix64 rng(HashCombine(seed, user) ^ kEvalStreamSalt);
  std::vector<std::uint64_t> candidates;
  candidates.reserve(wanted);
  if (2 * wanted <= available) {
    // Rejection is fast while at most half of the allowed items are taken.
    // Candidate lists are usually short (99), where a linear scan beats a set.
    constexpr std::size_t kLinearScanMax = 128;
    std::unordered_set<std::uint64_t> taken;
    while (candidates.size() < wanted) {
      const std::uint64_t item = items[rng.NextBelow(items.size())];
      if (Contains(positives, item)) continue;
      if (wanted <= kLinearScanMax) {
        if (std::find(candidates.begin(), candidates.end(), item) != candidates.end()) continue;
      } else if (!taken.insert(item).second) {
        continue;
      }
      candidates.push_back(item);
    }
  } else {
    // Few items left: a partial Fisher-Yates shuffle of the complement.
    std::vector<std::uint64_t> complement = Complement(items, positives);
    for (std::size_t i = 0; i < wanted; ++i) {
      std::swap(complement[i], complement[i + rng.NextBelow(complement.size() - i)]);
      candidates.push_back(complement[i]);
    }
  }
  return candidates;
}

}  // namespace recsys
