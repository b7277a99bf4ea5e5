#include "models/deepfm.h"

#include "common/error.h"
#include "models/mf.h"

namespace recsys {
namespace {

// state->cache slots. The tower's own slots follow kTowerBase.
enum : int {
  kSums = 0,  // batch x dim: S = sum_s x_s v_s (DeepFM only)
  kPooled,    // batch x F dim: the per-field embeddings, the tower's input
  kDOut,      // Backward scratch: dL/d(tower output)
  kDPooled,   // Backward scratch: dL/d(pooled)
  kTowerBase,
};

}  // namespace

DeepFmModel::DeepFmModel(const ModelConfig& config, bool with_fm)
    : Model(with_fm ? "deepfm" : "wide_deep"),
      dim_(config.dim),
      fm_(with_fm),
      pooling_(config.slot_field),
      tables_(FactorModelTables(config)) {
  RECSYS_CHECK(pooling_.fields() > 0, "no slots");
  tower_ = std::make_unique<Tower>(pooling_.fields() * dim_, config.layers, config.dropout, "deep", &tables_);
  h_ = AddDenseTable(&tables_, "h", tower_->output_width(), InitKind::kUniform,
                     GlorotScale(tower_->output_width(), 1));
}

void DeepFmModel::Forward(const Batch& batch, const ParamView& params, ModelState* state) const {
  RECSYS_CHECK(params.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, kFactorEmbTable, dim_ + 1);
  CheckDenseView(params, kFactorBiasTable, 1);
  CheckDenseView(params, h_, tower_->output_width());
  const int n = batch.size;
  const int slots = kTowerBase + tower_->CacheSlots();
  if (static_cast<int>(state->cache.size()) < slots) state->cache.resize(static_cast<size_t>(slots));
  const TableView& emb = params[kFactorEmbTable];
  const Real w0 = params[kFactorBiasTable].data[0];

  // The shallow part, per example as in FmModel::Forward.
  RowMatrix& sums = state->cache[kSums];
  sums.resize(n, fm_ ? dim_ : 0);
  state->logits.resize(n);
  for (int e = 0; e < n; ++e) {
    Real linear = 0;
    Real squares = 0;  // sum_s |x_s v_s|^2
    if (fm_) sums.row(e).setZero();
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      RECSYS_CHECK(r < emb.rows, "row ", r, " of ", emb.rows);
      const Real x = batch.Value(e, slot);
      linear += x * emb.Row(r)[dim_];
      if (fm_) {
        const ConstRowVectorMap v(emb.Row(r), dim_);
        sums.row(e).noalias() += x * v;
        squares += x * x * v.squaredNorm();
      }
    }
    state->logits[e] = w0 + linear;
    if (fm_) state->logits[e] += Real(0.5) * (sums.row(e).squaredNorm() - squares);
  }

  // The deep part: pooled field embeddings through the tower.
  RowMatrix& pooled = state->cache[kPooled];
  pooling_.Forward(batch, emb, dim_, &pooled);
  const RowMatrix& out = tower_->Forward(pooled, params, state, kTowerBase);
  state->logits.noalias() += out * ConstVectorMap(params[h_].data, tower_->output_width());
}

void DeepFmModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                           const ParamView& grads) const {
  RECSYS_CHECK(params.size() == tables_.size() && grads.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, kFactorEmbTable, dim_ + 1);
  CheckSparseView(batch, grads, kFactorEmbTable, dim_ + 1);
  CheckDenseView(grads, kFactorBiasTable, 1);
  CheckDenseView(grads, h_, tower_->output_width());
  const int n = batch.size;
  RECSYS_CHECK(state->cache.size() > kTowerBase && state->cache[kPooled].rows() == n &&
                   state->cache[kPooled].cols() == pooling_.fields() * dim_ && state->cache[kSums].rows() == n,
               "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const Vector& d = state->dlogits;
  const TableView& emb = params[kFactorEmbTable];
  const TableView& gemb = grads[kFactorEmbTable];
  const RowMatrix& sums = state->cache[kSums];
  const RowMatrix& pooled = state->cache[kPooled];
  const int width = tower_->output_width();

  grads[kFactorBiasTable].data[0] += d.sum();
  const RowMatrix& out = tower_->Output(pooled, *state, kTowerBase);
  RECSYS_CHECK(out.rows() == n && out.cols() == width, "Backward without a matching Forward");
  VectorMap(grads[h_].data, width).noalias() += out.transpose() * d;
  RowMatrix& d_out = state->cache[kDOut];
  d_out.resize(n, width);
  d_out.noalias() = d * ConstRowVectorMap(params[h_].data, width);
  RowMatrix& d_pooled = state->cache[kDPooled];
  tower_->Backward(pooled, &d_out, params, state, kTowerBase, grads, &d_pooled);
  pooling_.Backward(batch, d_pooled, dim_, gemb);

  for (int e = 0; e < n; ++e) {
    const Real de = d[e];
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      const Real dx = de * batch.Value(e, slot);
      gemb.Row(r)[dim_] += dx;  // dlogit/dw_s = x_s
      if (fm_) {
        // As FmModel: dlogit/dv_{s,f} = x_s (S_f - x_s v_{s,f}).
        const Real x = batch.Value(e, slot);
        const ConstRowVectorMap v(emb.Row(r), dim_);
        RowVectorMap(gemb.Row(r), dim_).noalias() += dx * (sums.row(e) - x * v);
      }
    }
  }
}

}  // namespace recsys
