// Neural collaborative filtering (He et al., WWW 2017): GMF, MLP and their
// fusion NeuMF, over the user (slot 0) and item (slot 1) of each example.
// Side-feature slots are ignored, as in the paper.
#ifndef RECSYS_MODELS_NCF_H_
#define RECSYS_MODELS_NCF_H_

#include <memory>
#include <vector>

#include "common/table_spec.h"
#include "models/layers.h"
#include "models/model.h"

namespace recsys {

// With p_u, q_i the user's and item's embeddings (dim each), h the output
// weights and b the output bias:
//
//   GMF:   logit = h^T (p_u ⊙ q_i) + b
//   MLP:   logit = h^T tower([p'_u, q'_i]) + b
//   NeuMF: logit = h^T [p_u ⊙ q_i, tower([p'_u, q'_i])] + b
//
// where tower is the ReLU stack of config.layers (its input is the 2 * dim
// concatenation; empty layers make MLP a linear model of the concatenation)
// with config.dropout after every hidden layer. NeuMF keeps separate GMF (p,
// q) and MLP (p', q') embeddings of `dim` each, as in the paper; they share
// one sparse row per key so a key costs one pull, not two.
//
// Tables, in TableId order:
//   0 "emb"   sparse, width dim (GMF, MLP) or 2 * dim (NeuMF: columns
//             [0, dim) the GMF embedding, [dim, 2 dim) the MLP one),
//             kNormal(config.init_scale) (the paper's N(0, 0.01)).
//   then for MLP and NeuMF the tower's blocks "mlp<l>.w", "mlp<l>.b" (layers.h),
//   "h"       dense, the output weights (dim, last width, or dim + last
//             width), Glorot-uniform for a layer of that many inputs to 1,
//   "b"       dense, 1 float, zeros.
// An empty user or item slot acts as a zero embedding.
//
// Thread-compatible: share one model, give each thread its own ModelState.
class NcfModel final : public Model {
 public:
  enum class Kind { kGmf, kMlp, kNeuMf };

  // Requires config.dim > 0, valid layers and dropout, and slot 0 = user,
  // slot 1 = item (RECSYS_CHECK; MakeModel validates user input first).
  NcfModel(const ModelConfig& config, Kind kind);

  const std::vector<TableSpec>& Tables() const override { return tables_; }
  void Forward(const Batch& batch, const ParamView& params, ModelState* state) const override;
  void Backward(const Batch& batch, const ParamView& params, ModelState* state,
                const ParamView& grads) const override;

 private:
  static const char* NameOf(Kind kind);

  // Constant after construction.
  const int dim_;
  const bool gmf_;
  const bool mlp_;
  const int emb_width_;
  std::vector<TableSpec> tables_;
  std::unique_ptr<Tower> tower_;  // MLP and NeuMF only
  TableId h_ = 0;
  TableId b_ = 0;
  int h_size_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_MODELS_NCF_H_
