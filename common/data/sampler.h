// Negative sampling over the item universe: uniform over items the user has
// not interacted with.
#ifndef RECSYS_COMMON_DATA_SAMPLER_H_
#define RECSYS_COMMON_DATA_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "common/hash.h"

namespace recsys {

class NegativeSampler {
 public:
  // `items`: the item universe, sorted and unique, non-empty.
  explicit NegativeSampler(std::vector<std::uint64_t> items);

  // Draws an item uniformly from the universe minus `positives` (sorted; may
  // hold items outside the universe). Rejection sampling, falling back to the
  // explicit complement (O(items)) after 64 rejections. Throws InputError if
  // the user has interacted with every item. Thread-safe (const) given a
  // per-thread rng.
  std::uint64_t Sample(SplitMix64& rng, const std::vector<std::uint64_t>& positives) const;

  const std::vector<std::uint64_t>& items() const { return items_; }

 private:
  std::vector<std::uint64_t> items_;
};

// The evaluation candidates of one user: n distinct items none of which is
// in `positives` (sorted), drawn from a stream seeded by (seed, user) alone,
// so they do not depend on how users are spread over workers (nor on the
// order in which users are evaluated). Returned in draw order. Throws
// InputError if fewer than n items are left to draw from.
std::vector<std::uint64_t> SampleEvalCandidates(const NegativeSampler& sampler, std::uint64_t seed,
                                                std::uint64_t user, const std::vector<std::uint64_t>& positives,
                                                int n);

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_SAMPLER_H_
