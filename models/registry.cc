// The factories: the one place that maps option names to model and loss
// classes, so callers depend only on model.h and loss.h.
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "models/fm.h"
#include "models/loss.h"
#include "models/mf.h"
#include "models/model.h"

namespace recsys {
namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::vector<std::string> ModelNames() { return {"mf", "fm"}; }

std::unique_ptr<Model> MakeModel(const ModelConfig& config) {
  if (config.name != "mf" && config.name != "fm") {
    throw InputError(Concat("--model: unknown model '", config.name, "'; valid: ", JoinNames(ModelNames())));
  }
  if (config.dim <= 0) throw InputError(Concat("--dim must be positive (got ", config.dim, ")"));
  if (config.name == "mf") return std::make_unique<MfModel>(config);
  return std::make_unique<FmModel>(config);
}

std::unique_ptr<Loss> MakeLoss(const std::string& name) {
  if (name == "bce") return std::make_unique<BceLoss>();
  if (name == "bpr") return std::make_unique<BprLoss>();
  throw InputError(Concat("--loss: unknown loss '", name, "'; valid: bce, bpr"));
}

}  // namespace recsys
