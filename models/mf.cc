#include "models/mf.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {

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
  const int width = dim_ + 1;
  const int n = batch.size;

  // Gather whole rows (factors and weight) of the users and items into two
  // batch x width matrices, so the scores are a couple of vectorised
  // operations and Backward finds the partner vectors ready. resize() is a
  // no-op when the shape is unchanged, so a steady state does not allocate.
  if (state->cache.size() < 2) state->cache.resize(2);
  RowMatrix& users = state->cache[0];
  RowMatrix& items = state->cache[1];
  users.resize(n, width);
  items.resize(n, width);
  const ConstRowMatrixMap table(emb.data, emb.rows, width);
  for (int e = 0; e < n; ++e) {
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    RECSYS_CHECK(u < emb.rows && i < emb.rows, "row out of range");
    // An empty slot acts as a zero row: no factor, no bias, no gradient.
    if (u >= 0) users.row(e) = table.row(u); else users.row(e).setZero();
    if (i >= 0) items.row(e) = table.row(i); else items.row(e).setZero();
  }

  const Real w0 = params[kFactorBiasTable].data[0];
  state->logits.resize(n);
  state->logits = (users.leftCols(dim_).cwiseProduct(items.leftCols(dim_))).rowwise().sum() +
                  users.col(dim_) + items.col(dim_);
  state->logits.array() += w0;
}

void MfModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                       const ParamView& grads) const {
  CheckFactorParams(batch, params, dim_);
  CheckFactorParams(batch, grads, dim_);
  const int n = batch.size;
  RECSYS_CHECK(state->cache.size() >= 2 && state->cache[0].rows() == n && state->cache[1].rows() == n,
               "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const RowMatrix& users = state->cache[0];
  const RowMatrix& items = state->cache[1];
  const TableView& gemb = grads[kFactorEmbTable];

  // d logit / d p_u = q_i, d/d q_i = p_u, d/d b_u = d/d b_i = 1. A key seen
  // in many examples (a popular item) sums its contributions here, which is
  // the per-key summation the push expects.
  for (int e = 0; e < n; ++e) {
    const Real d = state->dlogits[e];
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    if (u >= 0) {
      Eigen::Map<Eigen::Matrix<Real, 1, Eigen::Dynamic>> g(gemb.Row(u), dim_);
      g.noalias() += d * items.row(e).head(dim_);
      gemb.Row(u)[dim_] += d;
    }
    if (i >= 0) {
      Eigen::Map<Eigen::Matrix<Real, 1, Eigen::Dynamic>> g(gemb.Row(i), dim_);
      g.noalias() += d * users.row(e).head(dim_);
      gemb.Row(i)[dim_] += d;
    }
  }
  grads[kFactorBiasTable].data[0] += state->dlogits.sum();
}

}  // namespace recsys
