// Building blocks of the deep model families (NFM, DeepFM, Wide&Deep, NCF):
// dense-block table specs, a ReLU tower, per-field pooling of embeddings and
// inverted dropout. Pure Eigen math on ParamViews; no I/O, no threads.
//
// Dense parameters live in dense blocks (TableSpec::dense_size > 0) read as
// flat arrays. A weight matrix of a layer from `in` to `out` units is stored
// row-major as in x out floats, so the layer is the matrix product X * W of a
// batch x in activation matrix X.
#ifndef RECSYS_MODELS_LAYERS_H_
#define RECSYS_MODELS_LAYERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "models/model.h"

namespace recsys {

using RowVectorMap = Eigen::Map<Eigen::Matrix<Real, 1, Eigen::Dynamic>>;
using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<Real, 1, Eigen::Dynamic>>;
using VectorMap = Eigen::Map<Vector>;
using ConstVectorMap = Eigen::Map<const Vector>;

// Floats per row of a dense block (the last row may be partly padding). A
// block smaller than this is a single row of exactly its size.
constexpr int kDenseRowWidth = 64;

// Appends a dense block of `size` floats named `name` to *tables with id
// tables->size(). Returns its id.
TableId AddDenseTable(std::vector<TableSpec>* tables, const std::string& name, std::int64_t size, InitKind init,
                      float init_scale);

// The Glorot/Xavier-uniform bound sqrt(6 / (fan_in + fan_out)) of a weight
// matrix; used with InitKind::kUniform.
float GlorotScale(int fan_in, int fan_out);

// Checks (RECSYS_CHECK) that view `id` of `params` holds at least `size`
// floats with data. Used by the models to validate dense views.
void CheckDenseView(const ParamView& params, TableId id, std::int64_t size);

// Checks (RECSYS_CHECK) that view `id` is a sparse view of batch.keys.size()
// rows of `width`, and that the batch's row/value arrays match its shape.
void CheckSparseView(const Batch& batch, const ParamView& params, TableId id, int width);

// The checks MakeModel applies to config.layers and config.dropout; throws
// InputError naming the option.
void ValidateDeepOptions(const ModelConfig& config);

// Inverted dropout with rate p: each entry is kept with probability 1 - p
// and then scaled by 1 / (1 - p), so the expected activation is unchanged
// and inference needs no rescaling. Writes the mask (0 or 1 / (1 - p)) into
// *mask (shaped like *x) and multiplies *x by it. Draws from *rng.
void ApplyDropout(float p, SplitMix64* rng, RowMatrix* x, RowMatrix* mask);

// A stack of fully connected ReLU layers, input -> widths[0] -> ... ->
// widths.back(), each `A = relu(A_prev * W + b)`. With no widths the tower
// is the identity. Optional inverted dropout after every hidden layer, only
// when state->training.
//
// Tables: for layer l a weight block "<prefix>l.w" (in x out,
// Glorot-uniform) and a bias block "<prefix>l.b" (out, zeros), appended in
// that order by the constructor.
//
// Cache: the tower uses state->cache[base, base + CacheSlots()); the caller
// reserves them and passes `base` to Forward and Backward. Constant after
// construction; thread-compatible like the models.
class Tower {
 public:
  Tower(int input_width, const std::vector<int>& widths, float hidden_dropout, const std::string& prefix,
        std::vector<TableSpec>* tables);

  int input_width() const { return input_width_; }
  // widths.back(), or input_width() with no layers.
  int output_width() const { return widths_.empty() ? input_width_ : widths_.back(); }
  int CacheSlots() const { return 1 + 2 * static_cast<int>(widths_.size()); }

  // Runs the tower on `input` (batch x input_width, must stay untouched
  // until Backward). Returns the last activation: a cache matrix, or `input`
  // itself when there are no layers. Requires state->cache.size() >= base +
  // CacheSlots().
  const RowMatrix& Forward(const RowMatrix& input, const ParamView& params, ModelState* state, int base) const;

  // The output Forward returned, for Backward's use.
  const RowMatrix& Output(const RowMatrix& input, const ModelState& state, int base) const;

  // Given dL/d(output) in *d_output (batch x output_width; overwritten as
  // scratch), accumulates the gradients of every layer's weights and biases
  // into `grads` and, if d_input is not null, writes dL/d(input) into it
  // (resized to batch x input_width). Uses what Forward left in the cache.
  void Backward(const RowMatrix& input, RowMatrix* d_output, const ParamView& params, ModelState* state, int base,
                const ParamView& grads, RowMatrix* d_input) const;

 private:
  struct Layer {
    TableId weight;
    TableId bias;
    int in;
    int out;
  };
  // Constant after construction.
  const int input_width_;
  const std::vector<int> widths_;
  const float dropout_;
  std::vector<Layer> layers_;
};

// Sums the embeddings of the slots of each field: for an example e and a
// field f (distinct values of slot_field, in order of first appearance),
// out[e, f*dim .. (f+1)*dim) = sum over the slots s of f of x_s v_s, where
// v_s is columns [0, dim) of the slot's row. A multi-hot field with values
// 1/n is thus the mean of its embeddings; empty slots (row -1) contribute
// nothing. The result is the batch x (fields * dim) input of a deep tower.
class FieldPooling {
 public:
  explicit FieldPooling(const std::vector<std::uint8_t>& slot_field);

  int fields() const { return fields_; }
  int slots() const { return static_cast<int>(slot_to_field_.size()); }

  // Requires batch.slots == slots() and emb rows of at least `dim` floats.
  void Forward(const Batch& batch, const TableView& emb, int dim, RowMatrix* out) const;
  // gemb.Row(r)[0, dim) += x_s * d_out[e, field(s) block] for every slot.
  void Backward(const Batch& batch, const RowMatrix& d_out, int dim, const TableView& gemb) const;

 private:
  std::vector<int> slot_to_field_;  // constant after construction
  int fields_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_MODELS_LAYERS_H_
