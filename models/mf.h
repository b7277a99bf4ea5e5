// Matrix factorisation with biases, and the table layout it shares with the
// other factorisation models (FM and, later, its neural descendants).
#ifndef RECSYS_MODELS_MF_H_
#define RECSYS_MODELS_MF_H_

#include <type_traits>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "models/model.h"

namespace recsys {

// ---- Layout shared by the factorisation models (defined in model.cc) ----
//
// Table kFactorEmbTable, "emb": sparse, width dim + 1. Columns [0, dim) of a
//   row are the factor vector v of its key, column dim is the key's linear
//   weight w (the user/item bias of MF). Users, items and side features all
//   live here ("all nodes"), one row per key.
// Table kFactorBiasTable, "w0": a dense block of one float, the global bias,
//   initialised to zero.
//
// Initialisation: InitRow applies one initializer to a whole row, so "emb" is
// kNormal(config.init_scale) throughout and the weight column starts at
// ~N(0, init_scale^2) instead of 0. With the default scale (0.01) that is
// harmless, and it spares the worker and the servers any per-column special
// case: they treat the table like any other.
constexpr TableId kFactorEmbTable = 0;
constexpr TableId kFactorBiasTable = 1;

// The two TableSpecs above for config.dim and config.init_scale. Requires
// config.dim > 0 (MakeModel checks it and throws InputError).
std::vector<TableSpec> FactorModelTables(const ModelConfig& config);

// Checks (RECSYS_CHECK) that `params` has the factorisation layout for `dim`
// and matches `batch`: two views, "emb" of batch.keys.size() rows of width
// dim + 1, and a non-empty "w0".
void CheckFactorParams(const Batch& batch, const ParamView& params, int dim);

// Calls fn(std::integral_constant<int, D>()) with D = dim for the dims the
// factorisation models' loops are compiled for (16, 32, 64: Eigen then works
// on fixed-size vectors, unrolled, with unaligned loads), and D =
// Eigen::Dynamic for any other; a model's forward and backward dispatch
// through it, so they always agree on D.
template <typename Fn>
void WithFactorDim(int dim, Fn&& fn) {
  switch (dim) {
    case 16:
      fn(std::integral_constant<int, 16>());
      break;
    case 32:
      fn(std::integral_constant<int, 32>());
      break;
    case 64:
      fn(std::integral_constant<int, 64>());
      break;
    default:
      fn(std::integral_constant<int, Eigen::Dynamic>());
      break;
  }
}

// MF: logit = w0 + b_u + b_i + <p_u, q_i>, where slot 0 of each example is
// the user u and slot 1 the item i; side-feature slots are ignored. p_u and
// b_u are the factor and weight columns of the user's "emb" row (likewise
// q_i, b_i). An empty user or item slot (row -1) contributes nothing.
//
// Forward and Backward read the rows in place (Backward reads the partner
// vectors from `params`, as Forward did) and keep nothing in state->cache.
// Thread-compatible: share one model between
// threads, give each thread its own ModelState.
class MfModel final : public Model {
 public:
  // Requires config.dim > 0, and config.slot_field to start with
  // kFieldUser, kFieldItem (RECSYS_CHECK; MakeModel validates user input).
  explicit MfModel(const ModelConfig& config);

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

#endif  // RECSYS_MODELS_MF_H_
