// recsys_worker: every rank of `mpirun -n N recsys_worker ...` runs this.
// main() catches every error once, prints it with the rank and brings the
// whole job down with MPI_Abort, so no rank is left waiting for a peer that
// died (see LightGBM's main.cpp for the same rule).
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "common/config.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/log.h"
#include "common/topology.h"
#include "common/transport.h"
#include "ps/checkpoint.h"
#include "ps/coordinator.h"
#include "worker/run.h"

namespace {

constexpr int kExitInputError = 2;
constexpr int kExitInternalError = 3;

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<recsys::Transport> transport;
  try {
    transport = recsys::MakeMpiTransport(&argc, &argv);
  } catch (const recsys::InputError& e) {  // the environment (RECSYS_SHARED_AREA_MB)
    std::fprintf(stderr, "recsys_worker: error: %s\n", e.what());
    return kExitInputError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recsys_worker: cannot start MPI: %s\n", e.what());
    return kExitInternalError;
  }
  const int rank = transport->rank();
  recsys::SetLogPrefix(recsys::Concat("rank ", rank));

  recsys::ParsedArgs args;
  try {
    // --config FILE expanded (command line wins); rank 0 saves the result as METRICS.config.
    args = recsys::ParseArgsWithConfigFile(argc, argv, /*save=*/rank == 0);
    if (args.exit_now) {
      if (rank == 0) std::printf("%s\n", args.message.c_str());
      recsys::FinalizeMpi();
      return 0;
    }
    // Every rank parses the same arguments and would print the same error:
    // let rank 0 speak; the others wait to be taken down by its abort.
  } catch (const recsys::InputError& e) {
    if (rank == 0) {
      std::fprintf(stderr, "recsys_worker: error: %s\n", e.what());
      transport->Abort(kExitInputError);
    }
    std::this_thread::sleep_for(std::chrono::seconds(10));
    transport->Abort(kExitInputError);
  }

  // --verify-checkpoint: rank 0 checks the checkpoint; no training.
  if (!args.config.verify_checkpoint.empty()) {
    if (rank == 0) {
      try {
        const std::string dir = recsys::ResolveCheckpoint(args.config.verify_checkpoint);
        const recsys::Manifest m = recsys::VerifyCheckpoint(dir);
        std::uint64_t rows = 0, bytes = 0;
        for (const auto& s : m.shards) {
          rows += s.rows;
          bytes += s.size;
        }
        std::printf("checkpoint %s is complete and intact: model %s, epoch %d, %zu shard files, %llu rows, %llu bytes\n",
                    dir.c_str(), m.model.c_str(), m.epoch, m.shards.size(), static_cast<unsigned long long>(rows),
                    static_cast<unsigned long long>(bytes));
        std::fflush(stdout);
      } catch (const recsys::InputError& e) {
        std::fprintf(stderr, "recsys_worker: error: %s\n", e.what());
        std::fflush(stderr);
        transport->Abort(kExitInputError);
      }
    }
    transport->FlushSends();
    transport->Barrier();  // the other ranks wait for rank 0 asleep, not spinning in MPI_Finalize
    recsys::FinalizeMpi();
    return 0;
  }

  int code = 0;
  try {
    const recsys::Topology topology(transport->size(), args.config.servers);
    recsys::SetLogPrefix(recsys::Concat("rank ", rank, " (", recsys::RoleName(topology.RoleOf(rank)), ")"));
    recsys::RunRank(*transport, args.config);
  } catch (const recsys::InputError& e) {
    recsys::LogLine(recsys::Concat("error: ", e.what()));
    code = kExitInputError;
  } catch (const recsys::StallError& e) {
    recsys::LogLine(recsys::Concat("error: ", e.what()));
    code = kExitInternalError;
  } catch (const std::exception& e) {
    recsys::LogLine(recsys::Concat("internal error: ", e.what()));
    code = kExitInternalError;
  } catch (...) {
    recsys::LogLine("internal error: unknown exception");
    code = kExitInternalError;
  }
  if (code != 0) transport->Abort(code);
  transport->FlushSends();
  transport->Barrier();  // wait here, asleep, not spinning in MPI_Finalize
  recsys::FinalizeMpi();
  return 0;
}
