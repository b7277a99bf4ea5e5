#include "models/fm.h"

#include "common/error.h"
#include "models/mf.h"

namespace recsys {
namespace {

// The per-example loops, for a dim D known at compile time (Eigen then works
// on fixed-size vectors held in registers) or Eigen::Dynamic (WithFactorDim,
// mf.h). Forward accumulates S and the squares
// per element and reduces once per example, not once per slot.
template <int D>
void ForwardRows(const Batch& batch, const TableView& emb, int dim, Real w0, RowMatrix* sums,
                 Vector* logits) {
  using Vec = Eigen::Matrix<Real, 1, D>;
  using ConstMap = Eigen::Map<const Vec>;
  const int n = batch.size;
  Vec s(dim);
  Vec squares(dim);  // sum_s v_{s,f}^2 x_s^2, per f
  for (int e = 0; e < n; ++e) {
    s.setZero();
    squares.setZero();
    Real linear = 0;
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;  // empty slot: x = 0 in the formula
      RECSYS_CHECK(r < emb.rows, "row ", r, " of ", emb.rows);
      const Real x = batch.Value(e, slot);
      const Real* row = emb.Row(r);
      const ConstMap v(row, dim);
      s.noalias() += x * v;
      squares.noalias() += (x * x) * v.cwiseAbs2();
      linear += x * row[dim];
    }
    sums->row(e) = s;
    // The sum-square trick: sum_{s<t} <v_s, v_t> x_s x_t = (|S|^2 - squares) / 2.
    (*logits)[e] = w0 + linear + Real(0.5) * (s.squaredNorm() - squares.sum());
  }
}

template <int D>
void BackwardRows(const Batch& batch, const TableView& emb, const TableView& gemb, int dim, const RowMatrix& sums,
                  const Vector& dlogits) {
  using Vec = Eigen::Matrix<Real, 1, D>;
  using Map = Eigen::Map<Vec>;
  using ConstMap = Eigen::Map<const Vec>;
  const int n = batch.size;
  Vec s(dim);
  for (int e = 0; e < n; ++e) {
    const Real d = dlogits[e];
    if (d == 0) continue;  // nothing to add (e.g. a saturated or padded example)
    s = sums.row(e);
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      const Real x = batch.Value(e, slot);
      const Real dx = d * x;
      const ConstMap v(emb.Row(r), dim);
      Map g(gemb.Row(r), dim);
      // dlogit/dv_{s,f} = x_s (S_f - v_{s,f} x_s): the sum of the other
      // slots' x_t v_t, without materialising it per slot.
      g.noalias() += dx * (s - x * v);
      gemb.Row(r)[dim] += dx;  // dlogit/dw_s = x_s
    }
  }
}

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
  state->logits.resize(n);
  WithFactorDim(dim_, [&](auto d) { ForwardRows<decltype(d)::value>(batch, emb, dim_, w0, &sums, &state->logits); });
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
  WithFactorDim(dim_, [&](auto d) { BackwardRows<decltype(d)::value>(batch, emb, gemb, dim_, sums, state->dlogits); });
  grads[kFactorBiasTable].data[0] += state->dlogits.sum();  // dlogit/dw0 = 1
}

}  // namespace recsys
