// Factorization machine (Rendle, ICDM 2010) over the "all nodes" key space.
#ifndef RECSYS_MODELS_FM_H_
#define RECSYS_MODELS_FM_H_

#include <vector>

#include "common/table_spec.h"
#include "models/model.h"

namespace recsys {

// FM over every slot of an example (user, item and side features), with
// feature values x_s = batch.Value(e, s):
//
//   logit = w0 + sum_s w_s x_s
//              + 1/2 sum_f [ (sum_s v_{s,f} x_s)^2 - sum_s v_{s,f}^2 x_s^2 ]
//
// which equals the pairwise sum_{s<t} <v_s, v_t> x_s x_t in O(k n) per
// example (k = dim, n = slots) instead of O(k n^2). Empty slots (row -1) are
// skipped. Uses the layout of mf.h: v_s and w_s are the factor and weight
// columns of the slot's "emb" row, w0 is the "w0" block. With only a user and
// an item slot, both with x = 1, the logit is exactly MF's.
//
// Forward keeps S = (sum_s v_{s,f} x_s) per example, a batch x dim matrix, in
// state->cache[0]; Backward uses dlogit/dv_{s,f} = x_s (S_f - v_{s,f} x_s).
// Thread-compatible: share one model, give each thread its own ModelState.
class FmModel final : public Model {
 public:
  // Requires config.dim > 0 (RECSYS_CHECK; MakeModel validates user input).
  // config.slot_field is not needed: every slot is a feature.
  explicit FmModel(const ModelConfig& config);

  const std::vector<TableSpec>& Tables() const override { return tables_; }
  void Forward(const Batch& batch, const ParamView& params, ModelState* state) const override;
  void Backward(const Batch& batch, const ParamView& params, ModelState* state,
                const ParamView& grads) const override;

 private:
  // Constant after construction.
  const int dim_;
  const std::vector<TableSpec> tables_;
};

}  // namespace recsys

#endif  // RECSYS_MODELS_FM_H_
