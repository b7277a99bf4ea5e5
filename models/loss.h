// Losses on logits. Small seam (as fastText's Loss): BCE on sampled
// negatives, and BPR on (positive, negative) pairs.
#ifndef RECSYS_MODELS_LOSS_H_
#define RECSYS_MODELS_LOSS_H_

#include <memory>
#include <string>

#include "models/model.h"

namespace recsys {

class Loss {
 public:
  virtual ~Loss() = default;
  // Returns the summed loss over the batch and writes dLoss/dlogit for each
  // example into *dlogits (resized to batch.size). Gradients are of the sum,
  // not the mean: a row's gradient does not shrink with the batch size.
  virtual double Compute(const Batch& batch, const Vector& logits, Vector* dlogits) const = 0;
  // True if examples come in (positive, negative) pairs.
  virtual bool pairwise() const = 0;
};

// Pointwise binary cross-entropy with labels in {0, 1}, computed stably.
class BceLoss final : public Loss {
 public:
  double Compute(const Batch& batch, const Vector& logits, Vector* dlogits) const override;
  bool pairwise() const override { return false; }
};

// Bayesian personalised ranking: -log sigmoid(logit[2i] - logit[2i+1]).
class BprLoss final : public Loss {
 public:
  double Compute(const Batch& batch, const Vector& logits, Vector* dlogits) const override;
  bool pairwise() const override { return true; }
};

// "bce" or "bpr"; throws InputError otherwise.
std::unique_ptr<Loss> MakeLoss(const std::string& name);

}  // namespace recsys

#endif  // RECSYS_MODELS_LOSS_H_
