// Negative sampling over the item universe: uniform over items the user has
// not interacted with.
#ifndef RECSYS_COMMON_DATA_SAMPLER_H_
#define RECSYS_COMMON_DATA_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "common/data/item_universe.h"
#include "common/hash.h"

namespace recsys {

class NegativeSampler {
 public:
  // `items`: the item universe, non-empty (a sorted, unique list converts).
  explicit NegativeSampler(ItemUniverse items);

  // Draws an item uniformly from the universe minus `positives` (sorted; may
  // hold items outside the universe). Rejection sampling, falling back to the
  // explicit complement (O(items)) after 64 rejections (a user who has seen
  // most of the universe). Throws InputError if
  // the user has interacted with every item. Thread-safe (const) given a
  // per-thread rng.
  std::uint64_t Sample(SplitMix64& rng, const std::vector<std::uint64_t>& positives) const;

  const ItemUniverse& items() const { return items_; }

 private:
  ItemUniverse items_;
};

// The evaluation candidates of one user: n distinct items none of which is
// in `positives` (sorted), drawn from a stream seeded by (seed, user) alone,
// so they do not depend on how users are spread over workers (nor on the
// order in which users are evaluated). Returned in draw order. Throws
// InputError if fewer than n items are left to draw from. O(n) memory
// whatever the size of the universe while at most half of the items the user
// has not seen are drawn.
std::vector<std::uint64_t> SampleEvalCandidates(const NegativeSampler& sampler, std::uint64_t seed,
                                                std::uint64_t user, const std::vector<std::uint64_t>& positives,
                                                int n);

// Throws the InputError of SampleEvalCandidates if `user` has fewer than n
// unseen items to draw candidates from, without drawing them.
void CheckEvalCandidates(const NegativeSampler& sampler, std::uint64_t user,
                         const std::vector<std::uint64_t>& positives, int n);

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_SAMPLER_H_
