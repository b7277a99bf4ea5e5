#include "models/fm.h"

#include "common/error.h"
#include "models/mf.h"

namespace recsys {
namespace {
using RowVectorMap = Eigen::Map<Eigen::Matrix<Real, 1, Eigen::Dynamic>>;
using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<Real, 1, Eigen::Dynamic>>;
}  // namespace

FmModel::FmModel(const ModelConfig& config)
    : Model("fm"), dim_(config.dim), tables_(FactorModelTables(config)) {}

void FmModel::Forward(const Batch& batch, const ParamView& params, ModelState* state) const {
  CheckFactorParams(batch, params, dim_);
  const TableView& emb = params[kFactorEmbTable];
  const int n = batch.size;
  const Real w0 = params[kFactorBiasTable].data[0];

  // S (batch x dim) is needed again by Backward; resize() keeps the buffer
  // when the batch shape has not changed.
  if (state->cache.empty()) state->cache.resize(1);
  RowMatrix& sums = state->cache[0];
  sums.resize(n, dim_);
  sums.setZero();
  state->logits.resize(n);

  for (int e = 0; e < n; ++e) {
    auto s = sums.row(e);
    Real linear = 0;
    Real squares = 0;  // sum_s sum_f v_{s,f}^2 x_s^2
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;  // empty slot: x = 0 in the formula
      RECSYS_CHECK(r < emb.rows, "row ", r, " of ", emb.rows);
      const Real x = batch.Value(e, slot);
      const Real* row = emb.Row(r);
      const ConstRowVectorMap v(row, dim_);
      s.noalias() += x * v;
      squares += x * x * v.squaredNorm();
      linear += x * row[dim_];
    }
    // The sum-square trick: sum_{s<t} <v_s, v_t> x_s x_t = (|S|^2 - squares) / 2.
    state->logits[e] = w0 + linear + Real(0.5) * (s.squaredNorm() - squares);
  }
}

void FmModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                       const ParamView& grads) const {
  CheckFactorParams(batch, params, dim_);
  CheckFactorParams(batch, grads, dim_);
  const int n = batch.size;
  RECSYS_CHECK(!state->cache.empty() && state->cache[0].rows() == n && state->cache[0].cols() == dim_,
               "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const RowMatrix& sums = state->cache[0];
  const TableView& emb = params[kFactorEmbTable];
  const TableView& gemb = grads[kFactorEmbTable];

  for (int e = 0; e < n; ++e) {
    const Real d = state->dlogits[e];
    if (d == 0) continue;  // nothing to add (e.g. a saturated or padded example)
    const auto s = sums.row(e);
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      const Real x = batch.Value(e, slot);
      const Real dx = d * x;
      const ConstRowVectorMap v(emb.Row(r), dim_);
      RowVectorMap g(gemb.Row(r), dim_);
      // dlogit/dv_{s,f} = x_s (S_f - v_{s,f} x_s): the sum of the other
      // slots' x_t v_t, without materialising it per slot.
      g.noalias() += dx * (s - x * v);
      gemb.Row(r)[dim_] += dx;  // dlogit/dw_s = x_s
    }
  }
  grads[kFactorBiasTable].data[0] += state->dlogits.sum();  // dlogit/dw0 = 1
}

}  // namespace recsys
