// Leave-one-out evaluation of a worker's users: each held-out item is ranked
// against its candidates (sampled per user from the seed, given by a file,
// or every item the user has not interacted with) and HR@K / NDCG@K are
// accumulated as sums for the coordinator to reduce.
#ifndef RECSYS_WORKER_EVALUATOR_H_
#define RECSYS_WORKER_EVALUATOR_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "common/config.h"
#include "common/data/dataset.h"
#include "common/data/sampler.h"
#include "common/data/split.h"
#include "common/metrics.h"
#include "worker/batcher.h"

namespace recsys {

// Fills scores[i] with the model's score of examples[i].
using ScoreFn = std::function<void(const std::vector<Example>& examples, std::vector<float>* scores)>;

class Evaluator {
 public:
  // Which held-out item is ranked: the test item, or (with --validation) the
  // validation item, which has its own sampled candidates.
  enum class Target { kTest, kValidation };

  // Looks up every user's given candidates once; sampled candidates are
  // drawn again at each evaluation (they depend only on the seed and the
  // user, so they are the same each time, and a worker with millions of
  // users does not hold 99 ids for each). `users`, `data` and `sampler` must
  // outlive the evaluator. Throws InputError if a given candidate list names
  // an item outside the universe or a user has too few unseen items for the
  // sampled candidates.
  Evaluator(const Config& config, const std::vector<UserHistory>* users, const Dataset* data,
            const NegativeSampler* sampler, Target target = Target::kTest);

  // Scores users' candidates in chunks of about `chunk_examples` examples.
  RankingSums Evaluate(const ScoreFn& score, std::size_t chunk_examples = 16384) const;

  // Users with a held-out item of the target (those Evaluate counts).
  std::size_t num_eval_users() const { return eval_users_.size(); }

 private:
  // The items to rank for user index u, held-out item first.
  void Candidates(std::size_t u, std::vector<std::uint64_t>* out) const;

  const Config& config_;
  const std::vector<UserHistory>* users_;
  const NegativeSampler* sampler_;
  const Target target_;
  std::vector<std::size_t> eval_users_;                  // indices into *users_
  bool given_ = false;  // candidates from the data (test target only), else sampled
  std::vector<std::vector<std::uint64_t>> candidates_;   // per eval user, if given_
};

}  // namespace recsys

#endif  // RECSYS_WORKER_EVALUATOR_H_
