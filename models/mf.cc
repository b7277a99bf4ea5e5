#include "models/mf.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

// The per-example loops, for a dim D known at compile time or Eigen::Dynamic
// (WithFactorDim, mf.h). With the dynamic size, Eigen peeled each row's
// unaligned head and tail (rows are dim + 1 floats, so mostly unaligned) one
// float at a time: MF's backward was 45% of a batch's step at dim 32 (README
// "Performance", session 13).
template <int D>
void ForwardRows(const Batch& batch, const TableView& emb, int dim, Real w0, Vector* logits) {
  using ConstMap = Eigen::Map<const Eigen::Matrix<Real, 1, D>>;
  const int n = batch.size;
  for (int e = 0; e < n; ++e) {
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    RECSYS_CHECK(u < emb.rows && i < emb.rows, "row out of range");
    // An empty slot acts as a zero row: no factor, no bias, no gradient.
    Real dot = 0, bias = 0;
    if (u >= 0 && i >= 0) dot = ConstMap(emb.Row(u), dim).dot(ConstMap(emb.Row(i), dim));
    if (u >= 0) bias += emb.Row(u)[dim];
    if (i >= 0) bias += emb.Row(i)[dim];
    (*logits)[e] = dot + bias + w0;
  }
}

// d logit / d p_u = q_i, d/d q_i = p_u, d/d b_u = d/d b_i = 1. A key seen in
// many examples (a popular item) sums its contributions here, which is the
// per-key summation the push expects. The partner vectors are read from
// `emb`, which Backward does not change.
template <int D>
void BackwardRows(const Batch& batch, const TableView& emb, const TableView& gemb, int dim, const Vector& dlogits) {
  using Map = Eigen::Map<Eigen::Matrix<Real, 1, D>>;
  using ConstMap = Eigen::Map<const Eigen::Matrix<Real, 1, D>>;
  const int n = batch.size;
  for (int e = 0; e < n; ++e) {
    const Real d = dlogits[e];
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    if (u >= 0) {
      if (i >= 0) Map(gemb.Row(u), dim).noalias() += d * ConstMap(emb.Row(i), dim);
      gemb.Row(u)[dim] += d;
    }
    if (i >= 0) {
      if (u >= 0) Map(gemb.Row(i), dim).noalias() += d * ConstMap(emb.Row(u), dim);
      gemb.Row(i)[dim] += d;
    }
  }
}

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
  // Scores straight from the pulled rows: one dim-long dot product and two
  // biases an example, no gathered copies (MF's step is short enough that
  // copying two rows an example was a third of it).
  const Real w0 = params[kFactorBiasTable].data[0];
  state->logits.resize(batch.size);
  WithFactorDim(dim_, [&](auto d) { ForwardRows<decltype(d)::value>(batch, emb, dim_, w0, &state->logits); });
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
  WithFactorDim(dim_, [&](auto d) { BackwardRows<decltype(d)::value>(batch, emb, gemb, dim_, state->dlogits); });
  grads[kFactorBiasTable].data[0] += state->dlogits.sum();
}

}  // namespace recsys
