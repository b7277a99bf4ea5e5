// DeepFM (Guo et al., IJCAI 2017) and Wide&Deep (Cheng et al., DLRS 2016):
// a shallow part and a deep tower over the per-field embeddings, summed.
// They differ only in the shallow part, so one class implements both.
#ifndef RECSYS_MODELS_DEEPFM_H_
#define RECSYS_MODELS_DEEPFM_H_

#include <memory>
#include <vector>

#include "common/table_spec.h"
#include "models/layers.h"
#include "models/model.h"

namespace recsys {

// With feature values x_s over every slot (user, item, side features):
//
//   DeepFM:    logit = FM(x) + deep(x)
//   Wide&Deep: logit = w0 + sum_s w_s x_s + deep(x)
//   deep(x)  = h^T tower( [e_1, ..., e_F] ),  e_f = sum over the slots s of
//              field f of x_s v_s
//
// FM(x) is exactly FmModel's logit (fm.h) on the same tables. The deep input
// concatenates one dim-vector per field (FieldPooling in layers.h: fields in
// order of first appearance in config.slot_field; a multi-hot field with
// values 1/n pools to the mean of its embeddings), so it is F * dim wide. The
// tower is the ReLU stack of config.layers with config.dropout after every
// hidden layer. The embeddings v are shared by the FM (or wide) part and the
// deep part, as in DeepFM; Wide&Deep's wide part is the linear term only (no
// hand-made cross features).
//
// Tables, in TableId order: "emb" and "w0" as mf.h's factorisation layout,
// then the tower's blocks "deep<l>.w", "deep<l>.b" (layers.h), then "h", the
// dense output weights of the deep part (Glorot-uniform). No deep output
// bias: w0 is one.
//
// Thread-compatible: share one model, give each thread its own ModelState.
class DeepFmModel final : public Model {
 public:
  // with_fm: true for DeepFM, false for Wide&Deep. Requires config.dim > 0,
  // valid layers and dropout (RECSYS_CHECK; MakeModel validates user input
  // first); batches must have config.slot_field.size() slots.
  DeepFmModel(const ModelConfig& config, bool with_fm);

  const std::vector<TableSpec>& Tables() const override { return tables_; }
  void Forward(const Batch& batch, const ParamView& params, ModelState* state) const override;
  void Backward(const Batch& batch, const ParamView& params, ModelState* state,
                const ParamView& grads) const override;

 private:
  // Constant after construction.
  const int dim_;
  const bool fm_;
  const FieldPooling pooling_;
  std::vector<TableSpec> tables_;
  std::unique_ptr<Tower> tower_;
  TableId h_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_MODELS_DEEPFM_H_
