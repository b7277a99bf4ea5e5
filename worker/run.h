// The one place that knows everything: picks this rank's role and runs it.
// Used by main() over MPI and by tests over LocalTransport.
#ifndef RECSYS_WORKER_RUN_H_
#define RECSYS_WORKER_RUN_H_

#include <vector>

#include "common/config.h"
#include "common/data/dataset.h"
#include "common/transport.h"
#include "models/model.h"
#include "ps/coordinator.h"

namespace recsys {

// Runs this rank's role to completion. On rank 0 returns the per-epoch
// results; on other ranks an empty vector. Throws on bad input.
std::vector<EpochResult> RunRank(Transport& transport, const Config& config);

// The model options of `config` for a slot layout.
ModelConfig ModelConfigFrom(const Config& config, const std::vector<std::uint8_t>& slot_field);

// Builds the tables of config's model for a slot layout (what the
// coordinator hands to the servers).
std::vector<TableSpec> MakeModelTables(const Config& config, const std::vector<std::uint8_t>& slot_field);

// The data options of `config` (what ReadDataset reads).
DataOptions DataOptionsFrom(const Config& config);

}  // namespace recsys

#endif  // RECSYS_WORKER_RUN_H_
