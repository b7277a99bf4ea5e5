// A synthetic implicit-feedback data set with planted latent structure and a
// skewed (Zipf) item popularity, deterministic from the seed. Each user's
// history depends only on (seed, user), so a worker generates only its own
// users, and the data do not depend on the number of workers.
//
// The planted model: item factors ~ N(0, 1/d) and user factors ~ N(0, 1), so
// the affinity <u, v> ~ N(0, 1); item popularity ~ Zipf over a seeded
// permutation of the ids. A user draws items by popularity and keeps a drawn
// item with probability sigmoid(4 (<u, v> - 1.5)), skipping repeats, until it
// has interactions_per_user distinct items (timestamps in acceptance order).
// A user that cannot find enough within a draw budget (it wants nearly every
// item) is filled up uniformly from the items it lacks.
//
// Two ways to draw, chosen by the number of items:
//  - up to table_items_max items ("tables"): a Fisher-Yates permutation of
//    popularity ranks, a Vose alias table of the Zipf weights and a table of
//    the item factors; O(items * latent_dim) memory, the fastest draws.
//  - above it ("streaming", tens of millions of items and more): the Zipf rank
//    by rejection-inversion (ZipfSampler), mapped to an item id by a seeded
//    bijection (RankPermutation), and an item's factors recomputed from
//    (seed, item) when it is drawn; O(1) memory whatever the item count.
// Both draw the same planted model (the item factors are even bit-identical,
// each item having its own stream) and the same Zipf law; the popularity
// permutation and the random streams differ, so the two give different data
// for the same options. Nothing in either is of size `users`.
#ifndef RECSYS_COMMON_DATA_SYNTHETIC_H_
#define RECSYS_COMMON_DATA_SYNTHETIC_H_

#include <cstdint>
#include <vector>

#include "common/data/dataset.h"
#include "common/hash.h"

namespace recsys {

struct SyntheticOptions {
  std::uint64_t users = 2000;
  std::uint64_t items = 1000;
  int interactions_per_user = 30;
  std::uint64_t seed = 1;
  int latent_dim = 8;
  double zipf_exponent = 0.8;  // item popularity ~ 1 / rank^s
  // Up to this many items the generator precomputes tables (see above);
  // above it, it streams. 2^20 items of tables take ~60 MB while built.
  std::uint64_t table_items_max = std::uint64_t{1} << 20;
};

// Zipf ranks in [1, n] with P(k) ~ 1 / k^s, drawn by rejection-inversion
// (W. Hoermann, G. Derflinger, "Rejection-inversion to generate variates
// from monotone discrete distributions", ACM TOMACS 6(3), 1996): O(1) memory
// and set-up, a few logs and exps and ~1.1 uniforms per draw for any n and
// s >= 0. Constant after construction; Sample is const given the caller's
// rng.
class ZipfSampler {
 public:
  // n >= 1, s >= 0 (s = 0 is uniform).
  ZipfSampler(std::uint64_t n, double s);
  std::uint64_t Sample(SplitMix64& rng) const;
  // P(k) = k^-s / sum_j j^-s, by direct summation: O(n), for tests.
  double Probability(std::uint64_t k) const;

 private:
  double H(double x) const;         // integral of h from 1 to x
  double HInverse(double y) const;  // inverse of H
  double Hat(double x) const;       // h(x) = x^-s

  std::uint64_t n_;
  double s_;
  double h_integral_x1_;  // H(1.5) - 1
  double h_integral_n_;   // H(n + 0.5)
  double squeeze_;        // a draw with k - x <= squeeze_ is accepted without evaluating H
};

// A seeded bijection of [0, n) onto itself in O(1) memory: a 4-round Feistel
// network on the smallest even number of bits covering n, with cycle walking
// (re-encrypt until the value falls inside [0, n); fewer than 4 rounds of
// walking on average). Constant after construction.
class RankPermutation {
 public:
  RankPermutation(std::uint64_t n, std::uint64_t seed);
  std::uint64_t Forward(std::uint64_t x) const;  // x < n
  std::uint64_t Inverse(std::uint64_t y) const;  // y < n; Inverse(Forward(x)) == x

 private:
  static constexpr int kRounds = 4;
  std::uint64_t Encrypt(std::uint64_t x) const;
  std::uint64_t Decrypt(std::uint64_t y) const;

  std::uint64_t n_;
  int half_bits_;
  std::uint64_t half_mask_;
  std::uint64_t keys_[kRounds];
};

class SyntheticGenerator {
 public:
  // Throws InputError for zero users/items, interactions_per_user < 2,
  // interactions_per_user > items, latent_dim <= 0 or a negative exponent.
  // Tables: O(items * latent_dim) time and memory; streaming: O(1).
  explicit SyntheticGenerator(const SyntheticOptions& options);

  // The interactions of `user` (< users): interactions_per_user distinct
  // items with timestamps 0, 1, ...; deterministic from (seed, user).
  // Thread-safe. Typically ~100 us per user for 30 items with tables, a few
  // times that when streaming (the factors of each drawn item are recomputed).
  std::vector<Interaction> GenerateUser(std::uint64_t user) const;

  const SyntheticOptions& options() const { return options_; }
  bool streaming() const { return streaming_; }

 private:
  // One item drawn by popularity.
  std::uint64_t DrawItem(SplitMix64& rng) const;
  // The planted factors of `item` into out[0..latent_dim).
  void ItemFactors(std::uint64_t item, float* out) const;

  // Constant after construction, so GenerateUser may run on many threads.
  SyntheticOptions options_;
  bool streaming_;
  // Tables only.
  std::vector<float> item_factors_;  // items * latent_dim, row-major
  // Vose alias table of the Zipf popularity: slot i yields item i with
  // probability `probability`, else item `alias`. One struct per slot, so a
  // draw touches one cache line.
  struct AliasSlot {
    double probability = 1.0;
    std::uint64_t alias = 0;
  };
  std::vector<AliasSlot> popularity_;
  // Streaming only.
  ZipfSampler zipf_;
  RankPermutation permutation_;
};

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_SYNTHETIC_H_
