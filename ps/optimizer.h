// Server-side optimizers. An optimizer is a stateless rule applied to one row
// at a time; its per-row state (AdaGrad accumulators, Adam moments and step
// count) is stored by the table right after the row's weights. Sparse (lazy)
// semantics: a row is updated only when a gradient for it arrives, and Adam
// counts steps per row.
#ifndef RECSYS_PS_OPTIMIZER_H_
#define RECSYS_PS_OPTIMIZER_H_

#include <memory>
#include <string>

#include "common/types.h"

namespace recsys {

struct OptimizerConfig {
  std::string name = "adam";  // sgd | adagrad | adam
  float lr = 0.001f;
  float beta1 = 0.9f;     // adam
  float beta2 = 0.999f;   // adam
  float eps = 1e-8f;      // adam, adagrad
  float initial_accumulator = 0.0f;  // adagrad
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Floats of state per row of `width` weights.
  virtual int StateSize(int width) const = 0;
  // Writes the initial state of a new row into state[0..StateSize(width)).
  virtual void InitState(Real* state, int width) const = 0;
  // Applies one gradient step to row[0..width) with its state.
  virtual void Update(Real* row, Real* state, const Real* grad, int width) const = 0;
};

// Throws InputError for an unknown name or a non-positive learning rate.
std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config);

}  // namespace recsys

#endif  // RECSYS_PS_OPTIMIZER_H_
