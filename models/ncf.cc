#include "models/ncf.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

// state->cache slots. The tower's own slots follow kTowerBase.
enum : int {
  kUsers = 0,    // batch x emb_width: the user rows
  kItems,        // batch x emb_width: the item rows
  kGmf,          // batch x dim: p_u ⊙ q_i
  kMlpInput,     // batch x 2 dim: [p'_u, q'_i]
  kDGmf,         // Backward scratch: dL/d(p_u ⊙ q_i)
  kDTowerOut,    // Backward scratch: dL/d(tower output)
  kDMlpInput,    // Backward scratch: dL/d[p'_u, q'_i]
  kTowerBase,
};

}  // namespace

const char* NcfModel::NameOf(Kind kind) {
  switch (kind) {
    case Kind::kGmf:
      return "gmf";
    case Kind::kMlp:
      return "mlp";
    case Kind::kNeuMf:
      return "neumf";
  }
  return "?";
}

NcfModel::NcfModel(const ModelConfig& config, Kind kind)
    : Model(NameOf(kind)),
      dim_(config.dim),
      gmf_(kind != Kind::kMlp),
      mlp_(kind != Kind::kGmf),
      emb_width_((gmf_ ? config.dim : 0) + (mlp_ ? config.dim : 0)) {
  RECSYS_CHECK(config.dim > 0, "dim=", config.dim);
  RECSYS_CHECK(config.slot_field.size() >= 2 && config.slot_field[0] == kFieldUser &&
                   config.slot_field[1] == kFieldItem,
               "NCF needs slot 0 = user and slot 1 = item");
  TableSpec emb;
  emb.id = 0;
  emb.name = "emb";
  emb.width = emb_width_;
  emb.init = InitKind::kNormal;
  emb.init_scale = config.init_scale;
  tables_.push_back(emb);
  h_size_ = gmf_ ? dim_ : 0;
  if (mlp_) {
    tower_ = std::make_unique<Tower>(2 * dim_, config.layers, config.dropout, "mlp", &tables_);
    h_size_ += tower_->output_width();
  }
  h_ = AddDenseTable(&tables_, "h", h_size_, InitKind::kUniform, GlorotScale(h_size_, 1));
  b_ = AddDenseTable(&tables_, "b", 1, InitKind::kZeros, 0.0f);
}

void NcfModel::Forward(const Batch& batch, const ParamView& params, ModelState* state) const {
  RECSYS_CHECK(params.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, 0, emb_width_);
  CheckDenseView(params, h_, h_size_);
  CheckDenseView(params, b_, 1);
  RECSYS_CHECK(batch.slots >= 2, "slots=", batch.slots);
  const int n = batch.size;
  const int slots = kTowerBase + (tower_ ? tower_->CacheSlots() : 0);
  if (static_cast<int>(state->cache.size()) < slots) state->cache.resize(static_cast<size_t>(slots));

  // Gather the user and item rows; an empty slot is a zero row.
  const TableView& emb = params[0];
  const ConstRowMatrixMap table(emb.data, emb.rows, emb_width_);
  RowMatrix& users = state->cache[kUsers];
  RowMatrix& items = state->cache[kItems];
  users.resize(n, emb_width_);
  items.resize(n, emb_width_);
  for (int e = 0; e < n; ++e) {
    const std::int32_t u = batch.Row(e, 0);
    const std::int32_t i = batch.Row(e, 1);
    RECSYS_CHECK(u < emb.rows && i < emb.rows, "row out of range");
    if (u >= 0) users.row(e) = table.row(u); else users.row(e).setZero();
    if (i >= 0) items.row(e) = table.row(i); else items.row(e).setZero();
  }

  const Real* h = params[h_].data;
  state->logits.resize(n);
  state->logits.setConstant(params[b_].data[0]);
  if (gmf_) {
    RowMatrix& g = state->cache[kGmf];
    g.resize(n, dim_);
    g.noalias() = users.leftCols(dim_).cwiseProduct(items.leftCols(dim_));
    state->logits.noalias() += g * ConstVectorMap(h, dim_);
  }
  if (mlp_) {
    RowMatrix& x = state->cache[kMlpInput];
    x.resize(n, 2 * dim_);
    x.leftCols(dim_) = users.rightCols(dim_);
    x.rightCols(dim_) = items.rightCols(dim_);
    const RowMatrix& out = tower_->Forward(x, params, state, kTowerBase);
    state->logits.noalias() += out * ConstVectorMap(h + (gmf_ ? dim_ : 0), tower_->output_width());
  }
}

void NcfModel::Backward(const Batch& batch, const ParamView& params, ModelState* state,
                        const ParamView& grads) const {
  RECSYS_CHECK(params.size() == tables_.size() && grads.size() == tables_.size(), "tables=", params.size());
  CheckSparseView(batch, params, 0, emb_width_);
  CheckSparseView(batch, grads, 0, emb_width_);
  CheckDenseView(grads, h_, h_size_);
  CheckDenseView(grads, b_, 1);
  const int n = batch.size;
  RECSYS_CHECK(state->cache.size() >= kTowerBase && state->cache[kUsers].rows() == n &&
                   state->cache[kUsers].cols() == emb_width_,
               "Backward without a matching Forward");
  RECSYS_CHECK(state->dlogits.size() == n, "dlogits=", state->dlogits.size(), " batch=", n);
  const Vector& d = state->dlogits;
  const RowMatrix& users = state->cache[kUsers];
  const RowMatrix& items = state->cache[kItems];
  const Real* h = params[h_].data;
  Real* gh = grads[h_].data;
  const TableView& gemb = grads[0];
  grads[b_].data[0] += d.sum();

  if (gmf_) {
    const RowMatrix& g = state->cache[kGmf];
    VectorMap(gh, dim_).noalias() += g.transpose() * d;
    // dL/d(p ⊙ q) = d h^T; then dL/dp = that ⊙ q and dL/dq = that ⊙ p.
    RowMatrix& dg = state->cache[kDGmf];
    dg.resize(n, dim_);
    dg.noalias() = d * ConstRowVectorMap(h, dim_);
    for (int e = 0; e < n; ++e) {
      const std::int32_t u = batch.Row(e, 0);
      const std::int32_t i = batch.Row(e, 1);
      if (u >= 0) RowVectorMap(gemb.Row(u), dim_).noalias() += dg.row(e).cwiseProduct(items.row(e).head(dim_));
      if (i >= 0) RowVectorMap(gemb.Row(i), dim_).noalias() += dg.row(e).cwiseProduct(users.row(e).head(dim_));
    }
  }
  if (mlp_) {
    const RowMatrix& x = state->cache[kMlpInput];
    const RowMatrix& out = tower_->Output(x, *state, kTowerBase);
    const int width = tower_->output_width();
    const int offset = gmf_ ? dim_ : 0;
    RECSYS_CHECK(out.rows() == n && out.cols() == width, "Backward without a matching Forward");
    VectorMap(gh + offset, width).noalias() += out.transpose() * d;
    RowMatrix& d_out = state->cache[kDTowerOut];
    d_out.resize(n, width);
    d_out.noalias() = d * ConstRowVectorMap(h + offset, width);
    RowMatrix& dx = state->cache[kDMlpInput];
    tower_->Backward(x, &d_out, params, state, kTowerBase, grads, &dx);
    const int column = emb_width_ - dim_;  // the MLP embedding's first column
    for (int e = 0; e < n; ++e) {
      const std::int32_t u = batch.Row(e, 0);
      const std::int32_t i = batch.Row(e, 1);
      if (u >= 0) RowVectorMap(gemb.Row(u) + column, dim_).noalias() += dx.row(e).head(dim_);
      if (i >= 0) RowVectorMap(gemb.Row(i) + column, dim_).noalias() += dx.row(e).tail(dim_);
    }
  }
}

}  // namespace recsys
