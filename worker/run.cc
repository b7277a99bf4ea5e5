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
  return mc;
}

std::vector<TableSpec> MakeModelTables(const Config& config, const std::vector<std::uint8_t>& slot_field) {
  return MakeModel(ModelConfigFrom(config, slot_field))->Tables();
}

std::vector<EpochResult> RunRank(Transport& transport, const Config& config) {
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
