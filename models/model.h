// The model seam: pure math on Eigen. Given a batch and the rows pulled for
// it, a model computes one logit per example (Forward) and, given dL/dlogit,
// accumulates the gradients of those rows (Backward). It knows nothing of MPI
// or of where the rows came from.
#ifndef RECSYS_MODELS_MODEL_H_
#define RECSYS_MODELS_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "common/hash.h"
#include "common/table_spec.h"
#include "common/types.h"

namespace recsys {

using RowMatrix = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixMap = Eigen::Map<RowMatrix>;
using ConstRowMatrixMap = Eigen::Map<const RowMatrix>;
using Vector = Eigen::Matrix<Real, Eigen::Dynamic, 1>;

// A batch of examples in the "all nodes" layout. Every example has the same
// number of feature slots; slot 0 is the user and slot 1 the item, the rest
// are side features (one-hot fields take one slot, a multi-hot field several
// slots with value 1/n). Keys are de-duplicated: a slot refers to its key by
// index into `keys`, which is also its row index in every sparse table view.
struct Batch {
  int size = 0;   // examples
  int slots = 0;  // feature slots per example
  // size * slots, row-major by example: index into `keys`, or -1 (empty slot).
  std::vector<std::int32_t> row;
  // size * slots: the feature value x of the slot (0 for an empty slot).
  std::vector<Real> value;
  // size: 1 for a positive, 0 for a sampled negative. With a pairwise loss
  // (BPR) examples come in pairs: 2i is the positive, 2i+1 its negative.
  std::vector<Real> label;
  // The batch's distinct keys.
  std::vector<Key> keys;
  // slots: the field of each slot, the same for every example.
  std::vector<std::uint8_t> slot_field;

  std::int32_t Row(int example, int slot) const { return row[static_cast<size_t>(example) * slots + slot]; }
  Real Value(int example, int slot) const { return value[static_cast<size_t>(example) * slots + slot]; }
};

// The rows of one table as one contiguous row-major block. For a sparse table
// `rows` equals batch.keys.size() (row i belongs to batch.keys[i]); for a dense
// block it holds the whole block (TableSpec::dense_rows() rows, read as a
// flat array of dense_size floats).
struct TableView {
  Real* data = nullptr;
  std::int64_t rows = 0;
  int width = 0;

  Real* Row(std::int64_t i) const { return data + i * width; }
  RowMatrixMap Matrix() const { return RowMatrixMap(data, rows, width); }
};

// One view per table, indexed by TableId (the order of Model::Tables()).
using ParamView = std::vector<TableView>;

// Per-thread scratch and results of a model, kept apart from the shared
// parameters (as fastText's Model::State). Models may keep any activations
// they need for Backward in `cache`.
struct ModelState {
  Vector logits;    // Forward output: one logit per example.
  Vector dlogits;   // Backward input: dLoss/dlogit per example.
  std::vector<RowMatrix> cache;
  bool training = true;  // enables dropout
  SplitMix64 rng{0};
};

// Model options shared by the families. Each model reads what it needs.
struct ModelConfig {
  std::string name = "fm";
  int dim = 32;
  // Fields of the slots (Batch::slot_field); decides the side features.
  std::vector<std::uint8_t> slot_field;
  float init_scale = 0.01f;
  // Hidden widths of the deep tower (NFM, DeepFM, Wide&Deep, MLP, NeuMF),
  // input side first. The tower's input width follows from the model (e.g.
  // 2 * dim for MLP); empty means no hidden layer. Ignored by MF, FM, GMF.
  std::vector<int> layers;
  // Inverted-dropout rate in [0, 1), active only when ModelState::training.
  // NFM drops units of the bi-interaction vector; the other deep models drop
  // units of every hidden layer's output.
  float dropout = 0.0f;
};

class Model {
 public:
  virtual ~Model() = default;

  // The tables this model reads, in TableId order. Stable for the model's
  // lifetime; the reference stays valid as long as the model.
  virtual const std::vector<TableSpec>& Tables() const = 0;

  // Computes state->logits (batch.size entries). `params` holds one view
  // per table. Thread-compatible: concurrent calls need distinct states.
  virtual void Forward(const Batch& batch, const ParamView& params, ModelState* state) const = 0;

  // Accumulates (+=) into `grads` the gradient of sum_e dlogits[e] * logit[e]
  // with respect to every row in `params`, using the activations Forward left
  // in `state` for the same batch and params. `grads` has the shape of
  // `params`; the caller zeroes it.
  virtual void Backward(const Batch& batch, const ParamView& params, ModelState* state,
                        const ParamView& grads) const = 0;

  const std::string& name() const { return name_; }

 protected:
  explicit Model(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

// Builds the model named config.name (one of ModelNames()); throws InputError
// for an unknown name or invalid options (dim, layers, dropout).
std::unique_ptr<Model> MakeModel(const ModelConfig& config);
// The names MakeModel accepts.
std::vector<std::string> ModelNames();

}  // namespace recsys

#endif  // RECSYS_MODELS_MODEL_H_
