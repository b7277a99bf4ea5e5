// Small, fast, well-mixed 64-bit hashes. Used for sharding, for deterministic
// row initialisation and for per-user random streams. Header only.
#ifndef RECSYS_COMMON_HASH_H_
#define RECSYS_COMMON_HASH_H_

#include <cstdint>

namespace recsys {

// 128-bit products map a 64-bit hash onto [0, n) without a division.
__extension__ using Uint128 = unsigned __int128;

// The finaliser of SplitMix64: a bijection on 64-bit values with full
// avalanche. Mix64(x) != Mix64(y) for x != y.
constexpr std::uint64_t Mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Combines two values into one hash; order matters.
constexpr std::uint64_t HashCombine(std::uint64_t a, std::uint64_t b) {
  return Mix64(a ^ (Mix64(b) + 0x632be59bd9b4e019ULL + (a << 6) + (a >> 2)));
}

// A tiny counter-based generator: stream i of seed s is fully determined by
// (s, i), independent of the order in which streams are used elsewhere.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 bits of precision.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n), n > 0, without modulo bias worth speaking of (n << 2^64).
  std::uint64_t NextBelow(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<Uint128>(Next()) * n) >> 64);
  }

  // Satisfies UniformRandomBitGenerator so <random> and std::shuffle accept it.
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() { return Next(); }

 private:
  std::uint64_t state_;
};

}  // namespace recsys

#endif  // RECSYS_COMMON_HASH_H_
