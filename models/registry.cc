// The factories: the one place that maps option names to model and loss
// classes, so callers depend only on model.h and loss.h.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "models/deepfm.h"
#include "models/fm.h"
#include "models/layers.h"
#include "models/loss.h"
#include "models/mf.h"
#include "models/model.h"
#include "models/ncf.h"
#include "models/nfm.h"

namespace recsys {
namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::vector<std::string> ModelNames() { return {"mf", "fm", "nfm", "deepfm", "wide_deep", "gmf", "mlp", "neumf"}; }

std::unique_ptr<Model> MakeModel(const ModelConfig& config) {
  const std::vector<std::string> names = ModelNames();
  if (std::find(names.begin(), names.end(), config.name) == names.end()) {
    throw InputError(Concat("--model: unknown model '", config.name, "'; valid: ", JoinNames(names)));
  }
  if (config.dim <= 0) throw InputError(Concat("--dim must be positive (got ", config.dim, ")"));
  ValidateDeepOptions(config);
  const std::string& name = config.name;
  if (name == "mf") return std::make_unique<MfModel>(config);
  if (name == "fm") return std::make_unique<FmModel>(config);
  if (name == "nfm") return std::make_unique<NfmModel>(config);
  if (name == "deepfm") return std::make_unique<DeepFmModel>(config, /*with_fm=*/true);
  if (name == "wide_deep") return std::make_unique<DeepFmModel>(config, /*with_fm=*/false);
  if (name == "gmf") return std::make_unique<NcfModel>(config, NcfModel::Kind::kGmf);
  if (name == "mlp") return std::make_unique<NcfModel>(config, NcfModel::Kind::kMlp);
  return std::make_unique<NcfModel>(config, NcfModel::Kind::kNeuMf);
}

std::unique_ptr<Loss> MakeLoss(const std::string& name) {
  if (name == "bce") return std::make_unique<BceLoss>();
  if (name == "bpr") return std::make_unique<BprLoss>();
  throw InputError(Concat("--loss: unknown loss '", name, "'; valid: bce, bpr"));
}

}  // namespace recsys
