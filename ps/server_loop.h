// The main loop of a parameter-server rank: serves pulls and applies pushes
// to its ServerShard until the coordinator says stop.
#ifndef RECSYS_PS_SERVER_LOOP_H_
#define RECSYS_PS_SERVER_LOOP_H_

#include "common/config.h"
#include "common/topology.h"
#include "common/transport.h"

namespace recsys {

// Receives the Setup from the coordinator, builds the shard and serves until
// a kStop command. In asynchronous mode pulls are answered and pushes applied
// in arrival order. With config.sync the server steps in lockstep with the
// workers: pushes are applied only once every worker has sent its push of
// the step, in worker order, so the result does not depend on timing (nor,
// since each key's updates are independent, on the number of servers).
void RunServer(Transport& transport, const Topology& topology, const Config& config);

}  // namespace recsys

#endif  // RECSYS_PS_SERVER_LOOP_H_
