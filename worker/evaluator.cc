#include "worker/evaluator.h"

#include <algorithm>

#include "common/error.h"
#include "common/hash.h"

namespace recsys {

namespace {

// Validation candidates come from their own stream, so they are not the
// test candidates of the same user.
constexpr std::uint64_t kValidationSalt = 0x7a11da7e5eedULL;

bool HasTarget(const UserHistory& h, Evaluator::Target target) {
  return target == Evaluator::Target::kTest ? h.has_test : h.has_valid;
}

std::uint64_t TargetItem(const UserHistory& h, Evaluator::Target target) {
  return target == Evaluator::Target::kTest ? h.test_item : h.valid_item;
}

}  // namespace

Evaluator::Evaluator(const Config& config, const std::vector<UserHistory>* users, const Dataset* data,
                     const NegativeSampler* sampler, Target target)
    : config_(config),
      users_(users),
      sampler_(sampler),
      target_(target),
      given_(!config.eval_full && target == Target::kTest && data->has_given_test) {
  const auto& items = sampler_->items();
  for (std::size_t u = 0; u < users_->size(); ++u) {
    const UserHistory& h = (*users_)[u];
    if (!HasTarget(h, target_)) continue;
    eval_users_.push_back(u);
    if (config_.eval_full) continue;
    if (!given_) {
      CheckEvalCandidates(*sampler_, h.user, h.positives, config_.eval_negatives);
      continue;
    }
    auto it = data->test_candidates.find(h.user);
    if (it == data->test_candidates.end()) {
      throw InputError(Concat("user ", h.user, " has a held-out item but no candidate list"));
    }
    for (auto item : it->second) {
      if (!items.Contains(item)) {
        throw InputError(Concat("candidate item ", item, " of user ", h.user, " is not in the data's items"));
      }
    }
    candidates_.push_back(it->second);
  }
}

void Evaluator::Candidates(std::size_t e, std::vector<std::uint64_t>* out) const {
  const UserHistory& h = (*users_)[eval_users_[e]];
  out->clear();
  out->push_back(TargetItem(h, target_));
  if (given_) {
    out->insert(out->end(), candidates_[e].begin(), candidates_[e].end());
    return;
  }
  if (!config_.eval_full) {
    const std::uint64_t seed =
        target_ == Target::kValidation ? HashCombine(config_.seed, kValidationSalt) : config_.seed;
    const std::vector<std::uint64_t> sampled =
        SampleEvalCandidates(*sampler_, seed, h.user, h.positives, config_.eval_negatives);
    out->insert(out->end(), sampled.begin(), sampled.end());
    return;
  }
  // Full ranking: every item the user never interacted with.
  sampler_->items().ForEach([&](std::uint64_t item) {
    if (!std::binary_search(h.positives.begin(), h.positives.end(), item)) out->push_back(item);
  });
}

RankingSums Evaluator::Evaluate(const ScoreFn& score, std::size_t chunk_examples) const {
  RankingSums sums(config_.topk);
  std::vector<Example> examples;
  std::vector<std::size_t> starts;  // per user in the chunk: first example
  std::vector<float> scores;
  std::vector<std::uint64_t> cands;
  examples.reserve(chunk_examples);
  auto flush = [&] {
    if (examples.empty()) return;
    score(examples, &scores);
    RECSYS_CHECK(scores.size() == examples.size());
    starts.push_back(examples.size());
    for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
      const std::size_t begin = starts[i], end = starts[i + 1];
      sums.Add(RankOfPositive(scores[begin], scores.data() + begin + 1, static_cast<int>(end - begin - 1)));
    }
    examples.clear();
    starts.clear();
  };
  for (std::size_t e = 0; e < eval_users_.size(); ++e) {
    Candidates(e, &cands);
    if (!examples.empty() && examples.size() + cands.size() > chunk_examples) flush();
    starts.push_back(examples.size());
    const std::uint64_t user = (*users_)[eval_users_[e]].user;
    for (auto item : cands) examples.push_back(Example{user, item, 0.0f});
  }
  flush();
  return sums;
}

}  // namespace recsys
