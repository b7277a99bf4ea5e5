#include "common/metrics.h"

#include <cmath>

#include "common/error.h"

namespace recsys {

int RankOfPositive(float positive_score, const float* candidate_scores, int n) {
  int rank = 0;
  for (int i = 0; i < n; ++i) rank += candidate_scores[i] >= positive_score ? 1 : 0;
  return rank;
}

RankingSums::RankingSums(std::vector<int> cutoffs)
    : ks(std::move(cutoffs)), hits(ks.size(), 0.0), ndcg(ks.size(), 0.0) {}

void RankingSums::Add(int rank) {
  RECSYS_CHECK(rank >= 0, "rank=", rank);
  ++users;
  const double gain = 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  for (std::size_t i = 0; i < ks.size(); ++i) {
    if (rank < ks[i]) {
      hits[i] += 1.0;
      ndcg[i] += gain;
    }
  }
}

void RankingSums::Merge(const RankingSums& other) {
  RECSYS_CHECK(other.ks == ks, "merging metrics of different cut-offs");
  for (std::size_t i = 0; i < ks.size(); ++i) {
    hits[i] += other.hits[i];
    ndcg[i] += other.ndcg[i];
  }
  users += other.users;
}

}  // namespace recsys
