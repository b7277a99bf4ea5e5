// Neural factorization machine (He & Chua, SIGIR 2017).
#ifndef RECSYS_MODELS_NFM_H_
#define RECSYS_MODELS_NFM_H_

#include <memory>
#include <vector>

#include "common/table_spec.h"
#include "models/layers.h"
#include "models/model.h"

namespace recsys {

// NFM over every slot of an example (user, item and side features), with
// feature values x_s:
//
//   logit = w0 + sum_s w_s x_s + h^T tower( BI )
//   BI    = 1/2 [ (sum_s x_s v_s)^2 - sum_s (x_s v_s)^2 ]   (element-wise)
//
// BI, the bi-interaction pooling, is a dim-vector: FM's sum-square trick
// kept per factor instead of summed, so with no hidden layers and h = ones
// the last term is FM's pairwise term. In training, inverted dropout with
// rate config.dropout is applied to BI (the paper's main regulariser). The
// tower is the ReLU stack of config.layers over the dim-wide BI.
//
// Tables, in TableId order: "emb" and "w0" exactly as mf.h's factorisation
// layout (factors in columns [0, dim), the linear weight in column dim),
// then the tower's blocks "nfm<l>.w", "nfm<l>.b" (layers.h), then "h", the
// dense output weights (Glorot-uniform). No output bias: w0 is one.
//
// Thread-compatible: share one model, give each thread its own ModelState.
class NfmModel final : public Model {
 public:
  // Requires config.dim > 0 and valid layers and dropout (RECSYS_CHECK;
  // MakeModel validates user input first). Every slot is a feature.
  explicit NfmModel(const ModelConfig& config);

  const std::vector<TableSpec>& Tables() const override { return tables_; }
  void Forward(const Batch& batch, const ParamView& params, ModelState* state) const override;
  void Backward(const Batch& batch, const ParamView& params, ModelState* state,
                const ParamView& grads) const override;

 private:
  // Constant after construction.
  const int dim_;
  const float dropout_;
  std::vector<TableSpec> tables_;
  std::unique_ptr<Tower> tower_;
  TableId h_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_MODELS_NFM_H_
