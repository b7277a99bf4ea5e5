#include "models/mf.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

using VectorMap = Eigen::Map<Eigen::Matrix<Real, 1, Eigen::Dynamic>>;
using ConstVectorMap = Eigen::Map<const Eigen::Matrix<Real, 1, Eigen::Dynamic>>;

}  // namespace

MfModel::MfModel(const ModelConfig& config)
    : Model("mf"), dim_(config.dim), tables_(FactorModelTables(config)) {
  RECSYS_CHECK(config.slot_field.size() >= 2 && config.slot_field[0] == kFieldUser &&
                   config.slot_field[1] == kFieldItem,
               "MF needs slot 0 = user and slot 1 = item");
}

void MfModel::Forward(const Batch& batch, const ParamView& params, ModelState* state) const {
  CheckFactorParams(batch, params, dim_);
  RECSYS_CHECK(batch.slots >= 2, "slots=", batch.slots);
  const TableView& emb = params[kFactorEmbTable];
  const int n = batch.size;
  // Scores straight from the pulled rows: one dim-long dot product and two
  // biases an example, no gathered copies (MF's step is short enough that
  // copying two rows an example was a third of it).
  const Real w0 = params[kFactorBiasTable].data[0];
  state->logits.resize(n);
  for (int e = 0; e < n; ++e) {
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    RECSYS_CHECK(u < emb.rows && i < emb.rows, "row out of range");
    // An empty slot acts as a zero row: no factor, no bias, no gradient.
    Real dot = 0, bias = 0;
    if (u >= 0 && i >= 0) dot = ConstVectorMap(emb.Row(u), dim_).dot(ConstVectorMap(emb.Row(i), dim_));
    if (u >= 0) bias += emb.Row(u)[dim_];
    if (i >= 0) bias += emb.Row(i)[dim_];
    state->logits[e] = dot + bias + w0;
  }
}

void MfModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                       const ParamView& grads) const {
  CheckFactorParams(batch, params, dim_);
  CheckFactorParams(batch, grads, dim_);
  const int n = batch.size;
  // Nothing of Forward's is read back, but the contract holds for every model.
  RECSYS_CHECK(state->logits.size() == n, "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const TableView& emb = params[kFactorEmbTable];
  const TableView& gemb = grads[kFactorEmbTable];

  // d logit / d p_u = q_i, d/d q_i = p_u, d/d b_u = d/d b_i = 1. A key seen
  // in many examples (a popular item) sums its contributions here, which is
  // the per-key summation the push expects. The partner vectors are read
  // from `params`, which Backward does not change.
  for (int e = 0; e < n; ++e) {
    const Real d = state->dlogits[e];
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    if (u >= 0) {
      if (i >= 0) VectorMap(gemb.Row(u), dim_).noalias() += d * ConstVectorMap(emb.Row(i), dim_);
      gemb.Row(u)[dim_] += d;
    }
    if (i >= 0) {
      if (u >= 0) VectorMap(gemb.Row(i), dim_).noalias() += d * ConstVectorMap(emb.Row(u), dim_);
      gemb.Row(i)[dim_] += d;
    }
  }
  grads[kFactorBiasTable].data[0] += state->dlogits.sum();
}

}  // namespace recsys
