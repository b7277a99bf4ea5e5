#include "models/loss.h"

#include <cmath>

#include "common/error.h"

namespace recsys {
namespace {

// log(1 + exp(z)) without overflow for large z nor loss of precision for
// very negative z: max(z, 0) + log1p(exp(-|z|)).
double Softplus(double z) { return (z > 0 ? z : 0.0) + std::log1p(std::exp(-std::fabs(z))); }

// 1 / (1 + exp(-z)), evaluated so that exp never overflows.
double Sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double ez = std::exp(z);
  return ez / (1.0 + ez);
}

void CheckShapes(const Batch& batch, const Vector& logits) {
  RECSYS_CHECK(logits.size() == batch.size, "logits=", logits.size(), " batch=", batch.size);
  RECSYS_CHECK(batch.label.size() == static_cast<size_t>(batch.size), "labels=", batch.label.size(),
               " batch=", batch.size);
}

}  // namespace

double BceLoss::Compute(const Batch& batch, const Vector& logits, Vector* dlogits) const {
  CheckShapes(batch, logits);
  dlogits->resize(batch.size);
  double total = 0;
  // The log1p(exp(-|z|)) terms of the softplus, summed as the log of their
  // product, one log per kProductTerms examples: a log1p an example was a
  // quarter of MF's step (README "Performance", session 13). Each factor is
  // in [1, 2], so the product stays far from overflow (<= 2^256). Its
  // rounding adds an absolute error of ~1e-16 an example (a term below that,
  // |z| > ~37, is lost), far below anything the loss is read for (it is only
  // reported); the gradients do not depend on it.
  constexpr int kProductTerms = 256;
  double product = 1.0;
  for (int e = 0; e < batch.size; ++e) {
    const double z = logits[e];
    const double y = batch.label[e];
    // -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, exact in y in [0, 1].
    // Softplus and Sigmoid share exp(-|z|), computed once: the same bits
    // as calling them, for one exp a sample instead of two.
    const double ez = std::exp(-std::fabs(z));
    total += (z > 0 ? z : 0.0) - y * z;
    product *= 1.0 + ez;
    if ((e + 1) % kProductTerms == 0) {
      total += std::log(product);
      product = 1.0;
    }
    (*dlogits)[e] = static_cast<Real>((z >= 0 ? 1.0 / (1.0 + ez) : ez / (1.0 + ez)) - y);
  }
  return total + std::log(product);
}

double BprLoss::Compute(const Batch& batch, const Vector& logits, Vector* dlogits) const {
  CheckShapes(batch, logits);
  RECSYS_CHECK(batch.size % 2 == 0, "BPR needs (positive, negative) pairs; batch=", batch.size);
  dlogits->resize(batch.size);
  double total = 0;
  for (int p = 0; p + 1 < batch.size; p += 2) {
    const double diff = static_cast<double>(logits[p]) - logits[p + 1];
    // -log s(diff) = softplus(-diff); d/d diff = -s(-diff).
    total += Softplus(-diff);
    const double g = Sigmoid(-diff);
    (*dlogits)[p] = static_cast<Real>(-g);
    (*dlogits)[p + 1] = static_cast<Real>(g);
  }
  return total;
}

}  // namespace recsys
