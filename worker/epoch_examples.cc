#include "worker/epoch_examples.h"

#include <utility>

#include "common/error.h"

namespace recsys {

EpochExamples::EpochExamples(const std::vector<UserHistory>* users,
                             const std::vector<std::vector<std::uint64_t>>* train_sorted,
                             const NegativeSampler* sampler, int negatives, bool pairwise)
    : users_(users), train_sorted_(train_sorted), sampler_(sampler), negatives_(negatives), pairwise_(pairwise) {
  RECSYS_CHECK(users_->size() == train_sorted_->size(), "users ", users_->size(), " vs ", train_sorted_->size());
  RECSYS_CHECK(negatives_ >= 0 && (!pairwise_ || negatives_ == 1), "negatives=", negatives_, " pairwise=", pairwise_);
  std::size_t positives = 0;
  for (const UserHistory& u : *users_) positives += u.train.size();
  size_ = positives * (1 + static_cast<std::size_t>(negatives_));
}

void EpochExamples::Start(std::uint64_t seed) {
  started_ = true;
  seed_ = seed;
  rng_ = SplitMix64(seed);
  examples_.clear();
  examples_.reserve(size_);
  user_ = 0;
  positive_ = 0;
  left_ = 0;
  drawn_ = false;
}

bool EpochExamples::Advance(std::size_t units) {
  if (!started_) return false;
  // Generation, in the order of users and of their positives.
  while (units > 0 && user_ < users_->size()) {
    const UserHistory& u = (*users_)[user_];
    if (positive_ == u.train.size()) {
      ++user_;
      positive_ = 0;
      if (user_ == users_->size()) left_ = pairwise_ ? examples_.size() / 2 : examples_.size();
      continue;
    }
    examples_.push_back(Example{u.user, u.train[positive_], 1.0f});
    for (int k = 0; k < negatives_; ++k) {
      examples_.push_back(Example{u.user, sampler_->Sample(rng_, (*train_sorted_)[user_]), 0.0f});
    }
    ++positive_;
    // A positive with its negatives counts as that many units (at least 1
    // was left), so a step's length does not grow with --neg-ratio.
    const std::size_t made = 1 + static_cast<std::size_t>(negatives_);
    units = units > made ? units - made : 0;
  }
  if (user_ < users_->size()) return true;
  // Fisher-Yates from the back, over examples or over (positive, negative)
  // pairs: step L (L = left_) swaps unit L-1 with unit j_L, uniform in
  // 0..L-1. The j's are drawn kAhead steps early (the stream's order is the
  // same) so that the random unit can be prefetched: without it each swap
  // waited for a cache and TLB miss into the list (12 MB on MovieLens-100k).
  const std::size_t unit = pairwise_ ? 2 : 1;
  const auto draw = [&](std::size_t steps_ahead) {
    if (left_ <= steps_ahead + 1) return;  // step left_ - steps_ahead does not exist
    const std::size_t j = rng_.NextBelow(left_ - steps_ahead);
    ahead_[(left_ - steps_ahead) % kAhead] = j;
    __builtin_prefetch(&examples_[unit * j]);
  };
  if (!drawn_) {
    for (std::size_t k = 0; k < kAhead; ++k) draw(k);
    drawn_ = true;
  }
  for (; units > 0 && left_ > 1; --units, --left_) {
    const std::size_t j = ahead_[left_ % kAhead];
    draw(kAhead);
    for (std::size_t u = 0; u < unit; ++u) std::swap(examples_[unit * (left_ - 1) + u], examples_[unit * j + u]);
  }
  return left_ > 1;
}

void EpochExamples::Finish(std::vector<Example>* out) {
  RECSYS_CHECK(started_, "Finish before Start");
  while (Advance(~std::size_t{0})) {
  }
  RECSYS_CHECK(examples_.size() == size_, "made ", examples_.size(), " examples, expected ", size_);
  std::swap(examples_, *out);
  started_ = false;
}

void EpochExamples::Release() {
  started_ = false;
  std::vector<Example>().swap(examples_);
}

}  // namespace recsys
