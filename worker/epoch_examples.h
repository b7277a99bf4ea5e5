// The training examples of one epoch of one worker, made in small steps.
//
// An epoch's examples are every training positive of the worker's users with
// `negatives` sampled negatives each, shuffled (for a pairwise loss each
// positive is followed by its one negative and pairs are shuffled as units).
// Making them is a pass over every positive and a shuffle of the whole list:
// about a quarter of an MF epoch on MovieLens-100k when done at the epoch's
// start, with the servers idle. EpochExamples does the same work in steps of
// a few microseconds, so the worker can make the next epoch's examples while
// it waits for pull replies (PsClient::SetIdleWork) and finish what is left
// at that epoch's start.
//
// The list depends only on the seed it was started with, never on how the
// work was split into steps: the random stream is consumed in one fixed order.
// Not thread-safe; one per worker.
#ifndef RECSYS_WORKER_EPOCH_EXAMPLES_H_
#define RECSYS_WORKER_EPOCH_EXAMPLES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/data/sampler.h"
#include "common/data/split.h"
#include "common/hash.h"
#include "worker/batcher.h"

namespace recsys {

class EpochExamples {
 public:
  // `users` and `train_sorted` (each user's training positives, sorted and
  // unique, indexed like `users`) and `sampler` must outlive this object and
  // not change. negatives >= 0; pairwise needs negatives == 1.
  EpochExamples(const std::vector<UserHistory>* users, const std::vector<std::vector<std::uint64_t>>* train_sorted,
                const NegativeSampler* sampler, int negatives, bool pairwise);

  // The number of examples of every epoch (positives x (1 + negatives)).
  std::size_t size() const { return size_; }

  // Drops any epoch in the making and starts the one whose random stream is
  // seeded by `seed`.
  void Start(std::uint64_t seed);
  // Is the epoch of `seed` started (possibly finished)?
  bool Started(std::uint64_t seed) const { return started_ && seed_ == seed; }
  // Does about `units` units of work (an example made, or one swap of the
  // shuffle; a positive is made with all its negatives at once) on the epoch
  // started; returns true while work is left. Cheap when done or not started.
  bool Advance(std::size_t units);
  // Finishes the epoch started and swaps its examples into *out (whose old
  // contents and capacity are reused by the next Start).
  void Finish(std::vector<Example>* out);
  // Forgets the epoch in the making and frees its memory.
  void Release();

 private:
  const std::vector<UserHistory>* users_;
  const std::vector<std::vector<std::uint64_t>>* train_sorted_;
  const NegativeSampler* sampler_;
  const int negatives_;
  const bool pairwise_;
  std::size_t size_ = 0;

  bool started_ = false;
  std::uint64_t seed_ = 0;
  SplitMix64 rng_{0};
  std::vector<Example> examples_;
  // Generation: the next user and that user's next training positive.
  std::size_t user_ = 0;
  std::size_t positive_ = 0;
  // Shuffle (Fisher-Yates from the back): units (examples or pairs) left,
  // and the swap partners of the next kAhead steps (step L at L % kAhead).
  std::size_t left_ = 0;
  static constexpr std::size_t kAhead = 16;
  std::size_t ahead_[kAhead] = {};
  bool drawn_ = false;
};

}  // namespace recsys

#endif  // RECSYS_WORKER_EPOCH_EXAMPLES_H_
