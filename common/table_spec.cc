#include "common/table_spec.h"

#include <cmath>

#include "common/hash.h"
#include "common/keys.h"

namespace recsys {

void InitRow(const TableSpec& spec, std::uint64_t seed, Key key, Real* out) {
  const int width = spec.width;
  int valid = width;
  if (spec.dense()) {
    const std::int64_t first = static_cast<std::int64_t>(ValueOf(key)) * width;
    const std::int64_t left = spec.dense_size - first;
    valid = left < width ? static_cast<int>(left < 0 ? 0 : left) : width;
  }
  SplitMix64 rng(HashCombine(HashCombine(seed, 0x7ab1e000ULL + spec.id), key));
  for (int i = 0; i < width; ++i) {
    Real v = 0.0f;
    if (i < valid) {
      switch (spec.init) {
        case InitKind::kZeros:
          v = 0.0f;
          break;
        case InitKind::kUniform:
          v = static_cast<Real>((2.0 * rng.NextDouble() - 1.0) * spec.init_scale);
          break;
        case InitKind::kNormal: {
          // Box-Muller; one normal per pair of uniforms keeps the stream simple.
          const double u1 = 1.0 - rng.NextDouble();  // (0, 1]
          const double u2 = rng.NextDouble();
          v = static_cast<Real>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2) *
                                spec.init_scale);
          break;
        }
      }
    }
    out[i] = v;
  }
}

}  // namespace recsys
