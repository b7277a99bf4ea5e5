#include "common/topology.h"

#include "common/error.h"
#include "common/hash.h"

namespace recsys {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coordinator";
    case Role::kServer:
      return "server";
    case Role::kWorker:
      return "worker";
  }
  return "?";
}

Topology::Topology(int size, int servers) : size_(size), servers_(servers) {
  if (size < 3) {
    throw InputError(Concat("need at least 3 MPI ranks (1 coordinator, 1 server, 1 worker), got ", size,
                            "; start with mpirun -n 3 or more"));
  }
  if (servers < 0) throw InputError(Concat("--servers must be positive, got ", servers));
  if (servers == 0) servers_ = (size - 1 + 3) / 4;
  if (servers_ > size - 2) {
    throw InputError(Concat("--servers ", servers_, " leaves no worker among ", size,
                            " ranks (1 coordinator + servers + at least 1 worker); use --servers <= ", size - 2,
                            " or more ranks"));
  }
}

Role Topology::RoleOf(int rank) const {
  if (rank == 0) return Role::kCoordinator;
  if (rank <= servers_) return Role::kServer;
  return Role::kWorker;
}

int Topology::WorkerOfUser(std::uint64_t user) const {
  const std::uint64_t h = HashCombine(0x05e5ULL, user);
  return static_cast<int>((static_cast<Uint128>(h) * static_cast<std::uint64_t>(workers())) >> 64);
}

}  // namespace recsys
