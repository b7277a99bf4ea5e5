#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

// The element loops below take __restrict pointers: row and state are disjoint
// parts of one slab row and grad comes from a receive buffer, so they never
// alias, and saying so spares the compiler a runtime overlap check before it
// vectorises. The loops that take a sqrt (AdaGrad, Adam) vectorise only under
// -fno-math-errno: with errno semantics GCC and Clang guard every sqrt call
// with a branch and give up on the loop. Nothing here reads errno, so the
// recsys_ps target should compile with -fno-math-errno.

namespace recsys {
namespace {

// The sqrt-and-divide loops of AdaGrad and Adam are bound by the divider:
// built for the portable x86-64 baseline (SSE2) they take 4 floats an
// instruction, and with AVX 8, so a 33-float Adam row update takes 11 ns
// instead of 20 (measured on this machine's Zen 3). Each loop is compiled
// twice, for the baseline and with AVX enabled, and the optimizer picks once,
// at construction, by what the CPU supports. No fused multiply-adds
// (-ffp-contract=off for this library, CMakeLists.txt), and sqrt and divide
// are correctly rounded at any width, so both versions give the same bits
// and a job's results do not depend on which CPU its servers ran on. (In a
// build that targets AVX already, RECSYS_ARCH=x86-64-v3 by default, both
// versions are AVX code; the choice matters for RECSYS_ARCH=x86-64.)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RECSYS_TARGET_AVX __attribute__((target("avx")))
bool CpuHasAvx() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx");
}
#else
#define RECSYS_TARGET_AVX
bool CpuHasAvx() { return false; }
#endif

struct AdamConstants {
  Real b1, b2, one_minus_b1, one_minus_b2, eps;
};

// The element loops. m and v are parameters because GCC trusts __restrict on
// parameters, not on pointers derived inside a function. Always inlined into
// the two versions of each below, which compile them for their instruction
// set (a function of the default target may be inlined into an AVX one).
__attribute__((always_inline)) inline void AdamLoop(Real* __restrict row, Real* __restrict m, Real* __restrict v,
                                                    const Real* __restrict grad, int width, Real step, Real inv_bc2,
                                                    const AdamConstants& c) {
  for (int i = 0; i < width; ++i) {
    const Real g = grad[i];
    const Real mi = c.b1 * m[i] + c.one_minus_b1 * g;
    const Real vi = c.b2 * v[i] + c.one_minus_b2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    row[i] -= step * mi / (std::sqrt(vi * inv_bc2) + c.eps);
  }
}
// --adam-mode dense: the k missed steps of a row, in closed form
// (optimizer.h): `drift` is lr_T * S(k), d1 = b1^k, d2 = b2^k.
__attribute__((always_inline)) inline void AdamCatchUpLoop(Real* __restrict row, Real* __restrict m,
                                                           Real* __restrict v, int width, Real drift, Real inv_bc2,
                                                           Real d1, Real d2, Real eps) {
  for (int i = 0; i < width; ++i) {
    const Real mi = m[i];
    const Real vi = v[i];
    row[i] -= drift * mi / (std::sqrt(vi * inv_bc2) + eps);
    m[i] = d1 * mi;
    v[i] = d2 * vi;
  }
}
__attribute__((always_inline)) inline void AdaGradLoop(Real* __restrict row, Real* __restrict acc,
                                                       const Real* __restrict grad, int width, Real lr, Real eps) {
  for (int i = 0; i < width; ++i) {
    const Real g = grad[i];
    const Real a = acc[i] + g * g;
    acc[i] = a;
    row[i] -= lr * g / (std::sqrt(a) + eps);
  }
}

using AdamRowFn = void (*)(Real* __restrict row, Real* __restrict m, Real* __restrict v,
                           const Real* __restrict grad, int width, Real step, Real inv_bc2, AdamConstants c);
using AdaGradRowFn = void (*)(Real* __restrict row, Real* __restrict acc, const Real* __restrict grad, int width,
                              Real lr, Real eps);

void AdamRowBase(Real* __restrict row, Real* __restrict m, Real* __restrict v, const Real* __restrict grad, int width,
                 Real step, Real inv_bc2, AdamConstants c) {
  AdamLoop(row, m, v, grad, width, step, inv_bc2, c);
}
RECSYS_TARGET_AVX void AdamRowAvx(Real* __restrict row, Real* __restrict m, Real* __restrict v,
                                  const Real* __restrict grad, int width, Real step, Real inv_bc2, AdamConstants c) {
  AdamLoop(row, m, v, grad, width, step, inv_bc2, c);
}
using AdamCatchUpFn = void (*)(Real* __restrict row, Real* __restrict m, Real* __restrict v, int width, Real drift,
                              Real inv_bc2, Real d1, Real d2, Real eps);
void AdamCatchUpBase(Real* __restrict row, Real* __restrict m, Real* __restrict v, int width, Real drift,
                     Real inv_bc2, Real d1, Real d2, Real eps) {
  AdamCatchUpLoop(row, m, v, width, drift, inv_bc2, d1, d2, eps);
}
RECSYS_TARGET_AVX void AdamCatchUpAvx(Real* __restrict row, Real* __restrict m, Real* __restrict v, int width,
                                      Real drift, Real inv_bc2, Real d1, Real d2, Real eps) {
  AdamCatchUpLoop(row, m, v, width, drift, inv_bc2, d1, d2, eps);
}
void AdaGradRowBase(Real* __restrict row, Real* __restrict acc, const Real* __restrict grad, int width, Real lr,
                    Real eps) {
  AdaGradLoop(row, acc, grad, width, lr, eps);
}
RECSYS_TARGET_AVX void AdaGradRowAvx(Real* __restrict row, Real* __restrict acc, const Real* __restrict grad,
                                     int width, Real lr, Real eps) {
  AdaGradLoop(row, acc, grad, width, lr, eps);
}

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const OptimizerConfig& config) : lr_(config.lr) {}

  int StateSize(int /*width*/) const override { return 0; }
  void InitState(Real* /*state*/, int /*width*/) const override {}

  void Update(Real* __restrict row, Real* /*state*/, const Real* __restrict grad, int width,
              std::uint64_t /*step*/) const override {
    const Real lr = lr_;
    for (int i = 0; i < width; ++i) row[i] -= lr * grad[i];
  }

 private:
  const Real lr_;
};

class AdaGrad final : public Optimizer {
 public:
  explicit AdaGrad(const OptimizerConfig& config)
      : lr_(config.lr),
        eps_(config.eps),
        initial_accumulator_(config.initial_accumulator),
        row_(!config.baseline_loops && CpuHasAvx() ? AdaGradRowAvx : AdaGradRowBase) {}

  int StateSize(int width) const override { return width; }

  void InitState(Real* state, int width) const override {
    const Real a0 = initial_accumulator_;  // a local: state cannot alias it
    for (int i = 0; i < width; ++i) state[i] = a0;
  }

  void Update(Real* row, Real* acc, const Real* grad, int width, std::uint64_t /*step*/) const override {
    row_(row, acc, grad, width, lr_, eps_);
  }

 private:
  const Real lr_;
  const Real eps_;
  const Real initial_accumulator_;
  const AdaGradRowFn row_;  // the loop for this CPU
};

class Adam final : public Optimizer {
  // The bias corrections of a step, folded for the element loop (Corrections).
  struct Correction {
    Real step;
    Real inv_bc2;
  };

 public:
  explicit Adam(const OptimizerConfig& config)
      : lr_(config.lr),
        beta1_(config.beta1),
        beta2_(config.beta2),
        eps_(config.eps),
        constants_{beta1_, beta2_, 1.0f - beta1_, 1.0f - beta2_, eps_},
        row_(!config.baseline_loops && CpuHasAvx() ? AdamRowAvx : AdamRowBase),
        catch_up_(!config.baseline_loops && CpuHasAvx() ? AdamCatchUpAvx : AdamCatchUpBase),
        dense_(config.adam_mode == "dense"),
        corrections_(kTableSteps) {
    // Entry 0 is never read (t >= 1 after the increment).
    for (int t = 1; t < kTableSteps; ++t) {
      Correction& c = corrections_[static_cast<std::size_t>(t)];
      Corrections(static_cast<double>(t), &c.step, &c.inv_bc2);
    }
    // 1 - b^T grows towards 1 with T and float rounding is monotone: once the
    // last tabulated step rounds to no correction at all, so does every
    // later one (with the default betas from T ~ 17,000 on).
    const Correction& last = corrections_.back();
    converged_ = last.step == lr_ && last.inv_bc2 == 1.0f;
    if (dense_) {
      missed_.resize(kTableMissed);
      for (int k = 1; k < kTableMissed; ++k) Missed(k, &missed_[static_cast<std::size_t>(k)]);
    }
  }

  // m[width], v[width], then the row's update count (lazy) or last step (dense).
  int StateSize(int width) const override { return 2 * width + 1; }

  void InitState(Real* state, int width) const override {
    for (int i = 0; i < 2 * width + 1; ++i) state[i] = 0.0f;
  }

  void Update(Real* __restrict row, Real* __restrict state, const Real* __restrict grad, int width,
              std::uint64_t global_step) const override {
    if (dense_) {
      UpdateDense(row, state, grad, width, global_step);
      return;
    }
    // Saturates at 2^24 (t + 1 rounds back to t); see optimizer.h.
    const Real t = state[2 * width] + 1.0f;
    state[2 * width] = t;
    // T = max(t, global step), both exact integers below 2^53 in a double.
    const Correction c = CorrectionsAt(std::max(static_cast<double>(t), static_cast<double>(global_step)));
    row_(row, state, state + width, grad, width, c.step, c.inv_bc2, constants_);
  }

 private:
  // The bias corrections of step T (>= 1), from the table where it has them.
  Correction CorrectionsAt(double big_t) const {
    if (big_t < kTableSteps) return corrections_[static_cast<std::size_t>(big_t)];
    Correction c{lr_, 1.0f};
    if (!converged_) Corrections(big_t, &c.step, &c.inv_bc2);
    return c;
  }

  // --adam-mode dense with a known step: catch up on the steps the row
  // missed since its last one (held in the last slot), then the update.
  void UpdateDense(Real* __restrict row, Real* __restrict state, const Real* __restrict grad, int width,
                   std::uint64_t global_step) const {
    const double last = static_cast<double>(state[2 * width]);
    // Without a step (0): the update at the row's last step (1 for a new
    // row), no catch-up, and the slot keeps its step.
    const double big_t = global_step > 0 ? static_cast<double>(global_step) : std::max(last, 1.0);
    // The slot keeps the latest step seen: asynchronous workers' pushes may
    // arrive a little out of step order (then nothing was missed).
    state[2 * width] = static_cast<Real>(std::max(last, big_t));
    const Correction c = CorrectionsAt(big_t);
    // last == 0: a new row (or one from a lazy run's state, refused at
    // resume): its moments are zero, nothing to catch up on.
    if (last > 0 && big_t > last + 1) {
      const double k = big_t - last - 1;
      MissedSteps f;
      if (k < kTableMissed) {
        f = missed_[static_cast<std::size_t>(k)];
      } else {
        Missed(k, &f);
      }
      catch_up_(row, state, state + width, width, c.step * f.drift, c.inv_bc2, f.d1, f.d2, eps_);
    }
    row_(row, state, state + width, grad, width, c.step, c.inv_bc2, constants_);
  }

  // What k missed steps do (AdamCatchUpLoop): S(k) (the step's factor; lr_T
  // multiplies it at the update), b1^k and b2^k, in double.
  struct MissedSteps {
    Real drift = 0.0f;
    Real d1 = 1.0f;
    Real d2 = 1.0f;
  };
  void Missed(double k, MissedSteps* f) const {
    const double r = static_cast<double>(beta1_) / std::sqrt(static_cast<double>(beta2_));
    // sum_{j=1..k} r^j; r = 1 only for beta1 = sqrt(beta2).
    f->drift = static_cast<Real>(r == 1.0 ? k : r * (1.0 - std::pow(r, k)) / (1.0 - r));
    f->d1 = static_cast<Real>(std::pow(static_cast<double>(beta1_), k));
    f->d2 = static_cast<Real>(std::pow(static_cast<double>(beta2_), k));
  }
  // Missed-step counts tabulated (most rows of a job miss fewer steps).
  static constexpr int kTableMissed = 1 << 12;

  // Steps whose bias corrections are tabulated: two pow() calls per row
  // update cost more than the row's 33-element loop. Past the table the
  // default betas need no correction (converged_); only betas close enough
  // to 1 to need one there pay for the pow() calls. The table holds exactly
  // what Corrections computes, so results are the same bits either way.
  static constexpr int kTableSteps = 1 << 15;

  // The bias corrections of a step, in double (pow of a float base near 1
  // loses digits in float), folded into two scalars for the element loop:
  //   lr * (m / bc1) / (sqrt(v / bc2) + eps) = step * m / (sqrt(v * inv_bc2) + eps)
  void Corrections(double t, Real* step, Real* inv_bc2) const {
    const double bc1 = 1.0 - std::pow(static_cast<double>(beta1_), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(beta2_), t);
    *step = static_cast<Real>(static_cast<double>(lr_) / bc1);
    *inv_bc2 = static_cast<Real>(1.0 / bc2);
  }

  const Real lr_;
  const Real beta1_;
  const Real beta2_;
  const Real eps_;
  const AdamConstants constants_;
  const AdamRowFn row_;  // the loop for this CPU
  const AdamCatchUpFn catch_up_;  // likewise
  const bool dense_;  // --adam-mode dense
  std::vector<Correction> corrections_;  // indexed by T; constant after construction
  std::vector<MissedSteps> missed_;  // indexed by k (dense only); constant after construction
  bool converged_ = false;  // steps from kTableSteps on take no correction (lr, 1)
};

void CheckPositive(const OptimizerConfig& config, const char* what, float value) {
  if (!(std::isfinite(value) && value > 0.0f)) {
    throw InputError(Concat("optimizer '", config.name, "': ", what,
                            " must be a finite number > 0, got ", value));
  }
}

void CheckBeta(const OptimizerConfig& config, const char* what, float value) {
  // Written so that NaN fails too. beta = 1 would make the bias correction
  // 1 - beta^t zero.
  if (!(value >= 0.0f && value < 1.0f)) {
    throw InputError(Concat("optimizer '", config.name, "': ", what, " must be in [0, 1), got ", value));
  }
}

}  // namespace

std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config) {
  const std::string& name = config.name;
  if (name != "sgd" && name != "adagrad" && name != "adam") {
    throw InputError(Concat("unknown optimizer '", name, "'; valid names: sgd, adagrad, adam"));
  }
  CheckPositive(config, "lr", config.lr);
  if (name == "sgd") return std::make_unique<Sgd>(config);

  CheckPositive(config, "eps", config.eps);
  if (name == "adagrad") {
    if (!(std::isfinite(config.initial_accumulator) && config.initial_accumulator >= 0.0f)) {
      throw InputError(Concat("optimizer 'adagrad': initial_accumulator must be a finite number >= 0, got ",
                              config.initial_accumulator));
    }
    return std::make_unique<AdaGrad>(config);
  }

  CheckBeta(config, "beta1", config.beta1);
  CheckBeta(config, "beta2", config.beta2);
  if (config.adam_mode != "lazy" && config.adam_mode != "dense") {
    throw InputError(Concat("optimizer 'adam': unknown mode '", config.adam_mode, "'; valid modes: lazy, dense"));
  }
  return std::make_unique<Adam>(config);
}

}  // namespace recsys
