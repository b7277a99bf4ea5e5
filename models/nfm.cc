#include "models/nfm.h"

#include "common/error.h"
#include "models/mf.h"

namespace recsys {
namespace {

// state->cache slots. The tower's own slots follow kTowerBase.
enum : int {
  kSums = 0,  // batch x dim: S = sum_s x_s v_s
  kBi,        // batch x dim: BI after dropout, the tower's input
  kMask,      // batch x dim: the dropout mask; empty when no dropout ran
  kDOut,      // Backward scratch: dL/d(tower output)
  kDBi,       // Backward scratch: dL/d(BI)
  kTowerBase,
};

}  // namespace

NfmModel::NfmModel(const ModelConfig& config)
    : Model("nfm"), dim_(config.dim), dropout_(config.dropout), tables_(FactorModelTables(config)) {
  RECSYS_CHECK(dropout_ >= 0 && dropout_ < 1, "dropout=", dropout_);
  // Dropout acts on BI, not inside the tower.
  tower_ = std::make_unique<Tower>(dim_, config.layers, 0.0f, "nfm", &tables_);
  h_ = AddDenseTable(&tables_, "h", tower_->output_width(), InitKind::kUniform,
                     GlorotScale(tower_->output_width(), 1));
}

void NfmModel::Forward(const Batch& batch, const ParamView& params, ModelState* state) const {
  RECSYS_CHECK(params.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, kFactorEmbTable, dim_ + 1);
  CheckDenseView(params, kFactorBiasTable, 1);
  CheckDenseView(params, h_, tower_->output_width());
  const int n = batch.size;
  const int slots = kTowerBase + tower_->CacheSlots();
  if (static_cast<int>(state->cache.size()) < slots) state->cache.resize(static_cast<size_t>(slots));
  const TableView& emb = params[kFactorEmbTable];
  const Real w0 = params[kFactorBiasTable].data[0];

  RowMatrix& sums = state->cache[kSums];
  RowMatrix& bi = state->cache[kBi];
  sums.resize(n, dim_);
  sums.setZero();
  bi.resize(n, dim_);
  bi.setZero();  // first sum_s (x_s v_s)^2, then BI
  state->logits.resize(n);
  for (int e = 0; e < n; ++e) {
    auto s = sums.row(e);
    auto q = bi.row(e);
    Real linear = 0;
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      RECSYS_CHECK(r < emb.rows, "row ", r, " of ", emb.rows);
      const Real x = batch.Value(e, slot);
      const ConstRowVectorMap v(emb.Row(r), dim_);
      s.noalias() += x * v;
      q.noalias() += (x * x) * v.cwiseAbs2();
      linear += x * emb.Row(r)[dim_];
    }
    state->logits[e] = w0 + linear;
  }
  bi = Real(0.5) * (sums.cwiseAbs2() - bi);

  RowMatrix& mask = state->cache[kMask];
  if (state->training && dropout_ > 0) {
    ApplyDropout(dropout_, &state->rng, &bi, &mask);
  } else {
    mask.resize(0, 0);
  }
  const RowMatrix& out = tower_->Forward(bi, params, state, kTowerBase);
  state->logits.noalias() += out * ConstVectorMap(params[h_].data, tower_->output_width());
}

void NfmModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                        const ParamView& grads) const {
  RECSYS_CHECK(params.size() == tables_.size() && grads.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, kFactorEmbTable, dim_ + 1);
  CheckSparseView(batch, grads, kFactorEmbTable, dim_ + 1);
  CheckDenseView(grads, kFactorBiasTable, 1);
  CheckDenseView(grads, h_, tower_->output_width());
  const int n = batch.size;
  RECSYS_CHECK(state->cache.size() > kTowerBase && state->cache[kSums].rows() == n &&
                   state->cache[kSums].cols() == dim_ && state->cache[kBi].rows() == n,
               "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const Vector& d = state->dlogits;
  const TableView& emb = params[kFactorEmbTable];
  const TableView& gemb = grads[kFactorEmbTable];
  const RowMatrix& sums = state->cache[kSums];
  const RowMatrix& bi = state->cache[kBi];
  const int width = tower_->output_width();

  grads[kFactorBiasTable].data[0] += d.sum();
  const RowMatrix& out = tower_->Output(bi, *state, kTowerBase);
  RECSYS_CHECK(out.rows() == n && out.cols() == width, "Backward without a matching Forward");
  VectorMap(grads[h_].data, width).noalias() += out.transpose() * d;
  RowMatrix& d_out = state->cache[kDOut];
  d_out.resize(n, width);
  d_out.noalias() = d * ConstRowVectorMap(params[h_].data, width);
  RowMatrix& d_bi = state->cache[kDBi];
  tower_->Backward(bi, &d_out, params, state, kTowerBase, grads, &d_bi);
  const RowMatrix& mask = state->cache[kMask];
  if (mask.size() > 0) {
    RECSYS_CHECK(mask.rows() == n && mask.cols() == dim_, "mask ", mask.rows(), " x ", mask.cols());
    d_bi.array() *= mask.array();
  }

  for (int e = 0; e < n; ++e) {
    const auto s = sums.row(e);
    const auto g_bi = d_bi.row(e);
    for (int slot = 0; slot < batch.slots; ++slot) {
      const std::int32_t r = batch.Row(e, slot);
      if (r < 0) continue;
      const Real x = batch.Value(e, slot);
      const ConstRowVectorMap v(emb.Row(r), dim_);
      // dBI_f / dv_{s,f} = x_s S_f - x_s^2 v_{s,f} = x_s (S_f - x_s v_{s,f}).
      RowVectorMap(gemb.Row(r), dim_).noalias() += x * g_bi.cwiseProduct(s - x * v);
      gemb.Row(r)[dim_] += d[e] * x;  // dlogit/dw_s = x_s
    }
  }
}

}  // namespace recsys
