// The main loop of a worker rank: reads its partition of the data, agrees
// the setup with the coordinator, then trains and evaluates on command.
#ifndef RECSYS_WORKER_WORKER_LOOP_H_
#define RECSYS_WORKER_WORKER_LOOP_H_

#include "common/config.h"
#include "common/topology.h"
#include "common/transport.h"

namespace recsys {

// Runs until the coordinator sends kStop. Throws InputError for bad data.
void RunWorker(Transport& transport, const Topology& topology, const Config& config);

}  // namespace recsys

#endif  // RECSYS_WORKER_WORKER_LOOP_H_
