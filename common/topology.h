// Which rank plays which role: rank 0 coordinates, ranks 1..S serve
// parameters, the rest are workers.
#ifndef RECSYS_COMMON_TOPOLOGY_H_
#define RECSYS_COMMON_TOPOLOGY_H_

#include <cstdint>
#include <string>

namespace recsys {

enum class Role { kCoordinator, kServer, kWorker };

const char* RoleName(Role role);

class Topology {
 public:
  // `servers` == 0 picks the default: a quarter of the non-coordinator
  // ranks, rounded up, at least 1. Throws InputError if `size` ranks cannot
  // hold a coordinator, the servers and at least one worker.
  Topology(int size, int servers);

  int size() const { return size_; }
  int servers() const { return servers_; }
  int workers() const { return size_ - 1 - servers_; }

  Role RoleOf(int rank) const;
  int ServerRank(int server_index) const { return 1 + server_index; }
  int WorkerRank(int worker_index) const { return 1 + servers_ + worker_index; }
  int ServerIndex(int rank) const { return rank - 1; }
  int WorkerIndex(int rank) const { return rank - 1 - servers_; }

  // The worker that owns `user`: users are spread by a hash so each worker
  // holds whole histories and the split does not depend on id order.
  int WorkerOfUser(std::uint64_t user) const;

 private:
  int size_;
  int servers_;
};

}  // namespace recsys

#endif  // RECSYS_COMMON_TOPOLOGY_H_
