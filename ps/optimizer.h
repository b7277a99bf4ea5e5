// Server-side optimizers. An optimizer is a stateless rule applied to one row
// at a time; its per-row state (AdaGrad accumulators, Adam moments and the
// row's update count or last step) is stored by the table right after the
// row's weights. Sparse (lazy) semantics: a row is updated only when a
// gradient for it arrives. Adam's bias correction counts the job's global
// step, which each push carries (numbered as if the workers took turns,
// worker/worker_loop.cc GlobalStep), as TensorFlow's LazyAdam and PyTorch's
// SparseAdam count the optimizer's steps, not the row's own updates. So a
// row's trajectory depends only on its own gradients and the steps they were
// pushed at, never on which other rows share its server: a run's result
// does not depend on the number of servers.
#ifndef RECSYS_PS_OPTIMIZER_H_
#define RECSYS_PS_OPTIMIZER_H_

#include <cstdint>
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
  // The step of the dense blocks (tower weights); 0: lr. ServerShard gives
  // the dense tables their own optimizer with this step (--dense-lr).
  float dense_lr = 0.0f;
  // adam: "lazy" (a row moves only when it gets a gradient) or "dense" (a
  // row also takes, at its next update, the steps its moments would have
  // taken under dense Adam over the steps it missed; below).
  std::string adam_mode = "lazy";
  // The element loops are compiled for the x86-64 baseline and with AVX, and
  // the AVX ones run where the CPU has it (same bits, twice as fast). True:
  // always the baseline ones (tests compare the two).
  bool baseline_loops = false;
};

// The update rules, with g the gradient and every operation per element:
//
//   sgd      w -= lr * g                                        state: none
//   adagrad  acc += g^2;  w -= lr * g / (sqrt(acc) + eps)       state: acc[width]
//   adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t += 1;  T = max(t, step)
//            w -= lr * (m / (1-b1^T)) / (sqrt(v / (1-b2^T)) + eps)
//                                                   state: m[width], v[width], t (dense: s)
//
// --adam-mode dense (adam_mode): first, a row whose last update was at step
// s < T - 1 takes the k = T - 1 - s steps it missed, as dense Adam takes
// them with zero gradients, in closed form:
//            w -= lr_T * S(k) * m / (sqrt(v * ibc2_T) + eps);  m *= b1^k;  v *= b2^k
//            with S(k) = sum_{j=1..k} (b1 / sqrt(b2))^j, and lr_T = lr / (1-b1^T),
//            ibc2_T = 1 / (1-b2^T) the corrections of step T for all of them.
//            Exact but for those corrections and eps (which dense Adam
//            scales by b2^(j/2)): late in a run, where the corrections are
//            1, it matches dense Adam to 1e-4; from a run's first steps it
//            moves a row a few percent too far (5% from step 1, 0.25% from
//            step 1,000; optimizer_test). The last slot then holds s, the
//            row's last step (a float: exact to 2^24, rounded past it).
// Dense Adam (PyTorch's default trainer) moves a row that gets a gradient
// every P steps about sqrt(P) times further per gradient than lazy Adam, as
// its v decays between gradients, and keeps moving it on its momentum. On
// MovieLens-100k the models peak earlier with it and overfit sooner; on
// validation MLP gains and MF, GMF and NeuMF do not (README, "Adam's bias
// correction, lazy and dense rows"). Without a step (0) a dense update is
// the one at the row's last step, with no catch-up.
// The missed steps are counted by the workers' step numbers, so dense is
// exact with --sync or one worker. With several asynchronous workers a
// push may arrive after a later-numbered one: the slot keeps the larger
// step, and a row that several workers update takes extra momentum steps
// for steps that were not missed (the coordinator prints a note). Past
// 2^24 steps the slot rounds, and a row may take one such step too.
// The dense blocks (towers) take a gradient at every step: ServerShard
// gives them the lazy rule, as asynchronous workers' steps arrive out of
// order and would look like missed steps.
//
// `step` is the job's global step of the update (Update's argument), t the
// row's own count of updates, kept as a float in the last slot of the state.
// Why the global step: corrected by its own count t, a row's first updates
// take steps of about lr whatever the job did before. Corrected by the
// global step T, which passes a few thousand early in a job and makes the
// corrections ~1, a rare row whose m and v have seen few gradients takes
// larger steps (about lr / sqrt(t (1 - b2)) while t << 1 / (1 - b2)), as
// under PyTorch's SparseAdam and closer to dense Adam. The per-row rule made
// NeuMF on MovieLens-100k peak 0.016 HR@10 below the PyTorch trainer; a
// PyTorch trainer given the per-row rule fell by as much, and with
// SparseAdam's global step it came within 0.005 (README, "Adam's bias
// correction, lazy and dense rows"). With step = 0 (not known: unit tests,
// tools) T is t, the per-row rule. A float counts t exactly up to 2^24
// (16.7M) updates of one row; past that, t stays at 2^24, where both bias
// corrections are 1 to float precision, so the update is unchanged.
//
// Thread safety: an Optimizer is immutable after construction, so any number
// of threads may call its const methods at once, on distinct rows.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Floats of state per row of `width` weights.
  virtual int StateSize(int width) const = 0;
  // Writes the initial state of a new row into state[0..StateSize(width)).
  virtual void InitState(Real* state, int width) const = 0;
  // Applies one gradient step to row[0..width) with its state, as part of
  // the job's global step `step` (counted from 1; 0: not known). `grad` must
  // not overlap row or state. No allocation; one virtual call per row, the
  // loop over elements is branch-free so the compiler can vectorise it.
  virtual void Update(Real* row, Real* state, const Real* grad, int width, std::uint64_t step) const = 0;
};

// Returns the optimizer named by config.name. Throws InputError for an unknown
// name (the message lists the valid ones), a learning rate that is not a
// finite number > 0, a beta outside [0, 1) or an eps that is not > 0 (for the
// optimizers that use them), a negative initial_accumulator, or an adam_mode
// other than lazy or dense.
std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config);

}  // namespace recsys

#endif  // RECSYS_PS_OPTIMIZER_H_
