// Ranking metrics for leave-one-out evaluation, reduced exactly: workers send
// sums and counts, the coordinator divides once (never an average of
// averages).
#ifndef RECSYS_COMMON_METRICS_H_
#define RECSYS_COMMON_METRICS_H_

#include <cstdint>
#include <vector>

namespace recsys {

// The 0-based rank of the held-out item among its candidates: the number of
// candidates scoring higher, plus those scoring equal (ties are counted
// against the held-out item, so a constant model does not score a hit).
int RankOfPositive(float positive_score, const float* candidate_scores, int n);

// Sums over users for several cut-offs K.
struct RankingSums {
  std::vector<int> ks;          // cut-offs, ascending
  std::vector<double> hits;     // per K: number of users with rank < K
  std::vector<double> ndcg;     // per K: sum of 1/log2(rank+2) over rank < K
  std::int64_t users = 0;

  explicit RankingSums(std::vector<int> cutoffs = {10});
  // Adds one user's rank.
  void Add(int rank);
  // Adds another partial sum (same cut-offs).
  void Merge(const RankingSums& other);
  double HitRatio(std::size_t k_index) const { return users ? hits[k_index] / users : 0.0; }
  double Ndcg(std::size_t k_index) const { return users ? ndcg[k_index] / users : 0.0; }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & ks & hits & ndcg & users;
  }
};

}  // namespace recsys

#endif  // RECSYS_COMMON_METRICS_H_
