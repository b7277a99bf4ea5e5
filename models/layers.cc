#include "models/layers.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace recsys {

TableId AddDenseTable(std::vector<TableSpec>* tables, const std::string& name, std::int64_t size, InitKind init,
                      float init_scale) {
  RECSYS_CHECK(size > 0, name, " size=", size);
  TableSpec spec;
  spec.id = static_cast<TableId>(tables->size());
  spec.name = name;
  spec.width = static_cast<std::int32_t>(std::min<std::int64_t>(size, kDenseRowWidth));
  spec.init = init;
  spec.init_scale = init_scale;
  spec.dense_size = size;
  tables->push_back(spec);
  return spec.id;
}

float GlorotScale(int fan_in, int fan_out) {
  RECSYS_CHECK(fan_in > 0 && fan_out > 0, "fan_in=", fan_in, " fan_out=", fan_out);
  return static_cast<float>(std::sqrt(6.0 / (fan_in + fan_out)));
}

void CheckDenseView(const ParamView& params, TableId id, std::int64_t size) {
  RECSYS_CHECK(id < params.size(), "table ", id, " of ", params.size());
  const TableView& v = params[id];
  RECSYS_CHECK(v.data != nullptr && v.rows * v.width >= size, "dense table ", id, ": ", v.rows, " x ", v.width,
               " floats, need ", size);
}

void CheckSparseView(const Batch& batch, const ParamView& params, TableId id, int width) {
  RECSYS_CHECK(id < params.size(), "table ", id, " of ", params.size());
  const TableView& v = params[id];
  RECSYS_CHECK(v.width == width, "table ", id, " width=", v.width, " expected ", width);
  RECSYS_CHECK(v.rows == static_cast<std::int64_t>(batch.keys.size()), "table ", id, " rows=", v.rows,
               " keys=", batch.keys.size());
  RECSYS_CHECK(v.data != nullptr || v.rows == 0, "table ", id, " has no data");
  RECSYS_CHECK(batch.size >= 0 && batch.slots >= 0, "size=", batch.size, " slots=", batch.slots);
  RECSYS_CHECK(batch.row.size() == static_cast<size_t>(batch.size) * batch.slots, "row entries=",
               batch.row.size());
  RECSYS_CHECK(batch.value.size() == batch.row.size(), "value entries=", batch.value.size());
}

void ValidateDeepOptions(const ModelConfig& config) {
  for (int w : config.layers) {
    if (w <= 0 || w > 65536) {
      std::string text;
      for (int x : config.layers) text += Concat(text.empty() ? "" : ",", x);
      throw InputError(Concat("--layers: widths must be in [1, 65536], got '", text, "'"));
    }
  }
  if (!(config.dropout >= 0.0f && config.dropout < 1.0f)) {
    throw InputError(Concat("--dropout must be in [0, 1), got ", config.dropout));
  }
}

void ApplyDropout(float p, SplitMix64* rng, RowMatrix* x, RowMatrix* mask) {
  mask->resize(x->rows(), x->cols());
  const Real keep_scale = static_cast<Real>(1.0 / (1.0 - p));
  Real* m = mask->data();
  const Eigen::Index n = mask->size();
  for (Eigen::Index i = 0; i < n; ++i) m[i] = rng->NextDouble() < p ? Real(0) : keep_scale;
  x->array() *= mask->array();
}

// ---- Tower ----

Tower::Tower(int input_width, const std::vector<int>& widths, float hidden_dropout, const std::string& prefix,
             std::vector<TableSpec>* tables)
    : input_width_(input_width), widths_(widths), dropout_(hidden_dropout) {
  RECSYS_CHECK(input_width > 0, "tower input width=", input_width);
  RECSYS_CHECK(hidden_dropout >= 0 && hidden_dropout < 1, "dropout=", hidden_dropout);
  int in = input_width;
  for (size_t l = 0; l < widths.size(); ++l) {
    const int out = widths[l];
    RECSYS_CHECK(out > 0, "layer width=", out);
    Layer layer;
    layer.in = in;
    layer.out = out;
    layer.weight = AddDenseTable(tables, Concat(prefix, l, ".w"), static_cast<std::int64_t>(in) * out,
                                 InitKind::kUniform, GlorotScale(in, out));
    layer.bias = AddDenseTable(tables, Concat(prefix, l, ".b"), out, InitKind::kZeros, 0.0f);
    layers_.push_back(layer);
    in = out;
  }
}

// Cache layout from `base`: [base] a 1x1 matrix holding the dropout keep
// scale Forward used (1 without dropout), then per layer l its activation
// A_l at base + 1 + l and a backward scratch at base + 1 + L + l.
const RowMatrix& Tower::Forward(const RowMatrix& input, const ParamView& params, ModelState* state,
                                int base) const {
  RECSYS_CHECK(static_cast<int>(state->cache.size()) >= base + CacheSlots(), "cache too small");
  RECSYS_CHECK(input.cols() == input_width_, "tower input cols=", input.cols(), " expected ", input_width_);
  const bool drop = state->training && dropout_ > 0;
  RowMatrix& info = state->cache[static_cast<size_t>(base)];
  info.resize(1, 1);
  info(0, 0) = drop ? static_cast<Real>(1.0 / (1.0 - dropout_)) : Real(1);
  const int count = static_cast<int>(layers_.size());
  const RowMatrix* prev = &input;
  for (int l = 0; l < count; ++l) {
    const Layer& layer = layers_[static_cast<size_t>(l)];
    CheckDenseView(params, layer.weight, static_cast<std::int64_t>(layer.in) * layer.out);
    CheckDenseView(params, layer.bias, layer.out);
    const ConstRowMatrixMap w(params[layer.weight].data, layer.in, layer.out);
    const ConstRowVectorMap b(params[layer.bias].data, layer.out);
    RowMatrix& a = state->cache[static_cast<size_t>(base + 1 + l)];
    a.resize(prev->rows(), layer.out);
    a.noalias() = *prev * w;
    a.rowwise() += b;
    a = a.cwiseMax(Real(0));
    if (drop) {
      // The mask need not be kept: a dropped unit has A = 0, and a kept one
      // has A > 0 exactly when its ReLU was active, so Backward recovers
      // dA/dZ = scale * [A > 0] from A alone.
      const Real keep_scale = info(0, 0);
      Real* data = a.data();
      for (Eigen::Index i = 0; i < a.size(); ++i) {
        data[i] = state->rng.NextDouble() < dropout_ ? Real(0) : data[i] * keep_scale;
      }
    }
    prev = &a;
  }
  return *prev;
}

const RowMatrix& Tower::Output(const RowMatrix& input, const ModelState& state, int base) const {
  if (layers_.empty()) return input;
  const size_t slot = static_cast<size_t>(base) + layers_.size();
  RECSYS_CHECK(state.cache.size() > slot, "Tower::Output without a matching Forward");
  return state.cache[slot];
}

void Tower::Backward(const RowMatrix& input, RowMatrix* d_output, const ParamView& params, ModelState* state,
                     int base, const ParamView& grads, RowMatrix* d_input) const {
  const int count = static_cast<int>(layers_.size());
  RECSYS_CHECK(static_cast<int>(state->cache.size()) >= base + CacheSlots() &&
                   state->cache[static_cast<size_t>(base)].size() == 1,
               "Tower::Backward without a matching Forward");
  RECSYS_CHECK(d_output->rows() == input.rows() && d_output->cols() == output_width(), "d_output ",
               d_output->rows(), " x ", d_output->cols());
  if (count == 0) {
    if (d_input != nullptr) *d_input = *d_output;
    return;
  }
  const Real keep_scale = state->cache[static_cast<size_t>(base)](0, 0);
  RowMatrix* d_a = d_output;
  for (int l = count - 1; l >= 0; --l) {
    const Layer& layer = layers_[static_cast<size_t>(l)];
    const RowMatrix& a = state->cache[static_cast<size_t>(base + 1 + l)];
    RECSYS_CHECK(a.rows() == input.rows() && a.cols() == layer.out, "Tower::Backward without a matching Forward");
    const RowMatrix& a_prev = l == 0 ? input : state->cache[static_cast<size_t>(base + l)];
    // dZ = dA * scale * [A > 0], in place.
    d_a->array() *= (a.array() > Real(0)).cast<Real>() * keep_scale;
    CheckDenseView(grads, layer.weight, static_cast<std::int64_t>(layer.in) * layer.out);
    CheckDenseView(grads, layer.bias, layer.out);
    RowMatrixMap gw(grads[layer.weight].data, layer.in, layer.out);
    RowVectorMap gb(grads[layer.bias].data, layer.out);
    gw.noalias() += a_prev.transpose() * *d_a;
    // The bias gradient, dZ's column sums, is summed into a vector of our
    // own (SIMD-aligned) and then added to gb. Summed straight into gb, a
    // Map, Eigen sums the columns before gb's first aligned float in another
    // order than the rest, so results depended on where malloc put gb.
    // The same holds for a reduction read straight from caller memory
    // (.sum() of a Map): reduce owned matrices, as the models do.
    const Eigen::Matrix<Real, 1, Eigen::Dynamic> column_sums = d_a->colwise().sum();
    gb.noalias() += column_sums;
    if (l == 0 && d_input == nullptr) break;
    RowMatrix* d_prev = l == 0 ? d_input : &state->cache[static_cast<size_t>(base + 1 + count + l - 1)];
    const ConstRowMatrixMap w(params[layer.weight].data, layer.in, layer.out);
    d_prev->resize(d_a->rows(), layer.in);
    d_prev->noalias() = *d_a * w.transpose();
    d_a = d_prev;
  }
}

// ---- FieldPooling ----

FieldPooling::FieldPooling(const std::vector<std::uint8_t>& slot_field) {
  std::vector<std::uint8_t> seen;
  for (std::uint8_t f : slot_field) {
    const auto it = std::find(seen.begin(), seen.end(), f);
    if (it == seen.end()) {
      slot_to_field_.push_back(static_cast<int>(seen.size()));
      seen.push_back(f);
    } else {
      slot_to_field_.push_back(static_cast<int>(it - seen.begin()));
    }
  }
  fields_ = static_cast<int>(seen.size());
}

void FieldPooling::Forward(const Batch& batch, const TableView& emb, int dim, RowMatrix* out) const {
  RECSYS_CHECK(batch.slots == slots(), "batch slots=", batch.slots, " model slots=", slots());
  RECSYS_CHECK(emb.width >= dim, "emb width=", emb.width, " dim=", dim);
  out->resize(batch.size, static_cast<Eigen::Index>(fields_) * dim);
  out->setZero();
  for (int e = 0; e < batch.size; ++e) {
    Real* row_out = out->row(e).data();
    for (int s = 0; s < batch.slots; ++s) {
      const std::int32_t r = batch.Row(e, s);
      if (r < 0) continue;
      RECSYS_CHECK(r < emb.rows, "row ", r, " of ", emb.rows);
      RowVectorMap block(row_out + static_cast<std::ptrdiff_t>(slot_to_field_[static_cast<size_t>(s)]) * dim, dim);
      block.noalias() += batch.Value(e, s) * ConstRowVectorMap(emb.Row(r), dim);
    }
  }
}

void FieldPooling::Backward(const Batch& batch, const RowMatrix& d_out, int dim, const TableView& gemb) const {
  RECSYS_CHECK(d_out.rows() == batch.size && d_out.cols() == static_cast<Eigen::Index>(fields_) * dim,
               "d_out ", d_out.rows(), " x ", d_out.cols());
  for (int e = 0; e < batch.size; ++e) {
    const Real* row_d = d_out.row(e).data();
    for (int s = 0; s < batch.slots; ++s) {
      const std::int32_t r = batch.Row(e, s);
      if (r < 0) continue;
      RowVectorMap g(gemb.Row(r), dim);
      g.noalias() +=
          batch.Value(e, s) *
          ConstRowVectorMap(row_d + static_cast<std::ptrdiff_t>(slot_to_field_[static_cast<size_t>(s)]) * dim, dim);
    }
  }
}

}  // namespace recsys
