#include "worker/run.h"

#include "common/log.h"
#include "common/topology.h"
#include "models/model.h"
#include "ps/server_loop.h"
#include "worker/worker_loop.h"

namespace recsys {

ModelConfig ModelConfigFrom(const Config& config, const std::vector<std::uint8_t>& slot_field) {
  ModelConfig mc;
  mc.name = config.model;
  mc.dim = config.dim;
  mc.slot_field = slot_field;
  mc.init_scale = config.init_scale;
  mc.layers = config.layers;
  mc.dropout = config.dropout;
  return mc;
}

std::vector<TableSpec> MakeModelTables(const Config& config, const std::vector<std::uint8_t>& slot_field) {
  return MakeModel(ModelConfigFrom(config, slot_field))->Tables();
}

namespace {

// Models that read only the user and item slots: side-feature slots would
// only cost pulls of rows they never use.
bool UsesSideFeatures(const std::string& model) {
  return model != "mf" && model != "gmf" && model != "mlp" && model != "neumf";
}

}  // namespace

std::vector<EpochResult> RunRank(Transport& transport, const Config& user_config) {
  Config config = user_config;
  if (!UsesSideFeatures(config.model)) config.side_features = false;
  const Topology topology(transport.size(), config.servers);
  switch (topology.RoleOf(transport.rank())) {
    case Role::kCoordinator:
      return RunCoordinator(transport, topology, config, [&config](const std::vector<std::uint8_t>& slot_field) {
        return MakeModelTables(config, slot_field);
      });
    case Role::kServer:
      RunServer(transport, topology, config);
      return {};
    case Role::kWorker:
      RunWorker(transport, topology, config);
      return {};
  }
  return {};
}

}  // namespace recsys
