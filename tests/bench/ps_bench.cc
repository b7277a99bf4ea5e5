// The parameter-server path on its own: pull and push of R rows of D floats
// between one worker and S servers, through the real PsClient and server
// loop, against raw MPI exchanges of the same messages in the same run.
//
//   mpirun -n S+2 recsys_bench_ps --dim D --rows 500,1000,10000   (launch/bench_ps.sh)
//
// Rank 0 only sets up and stops the servers; ranks 1..S are servers; rank
// S+1 is the worker. For each R:
//   mpi pull   the worker sends each server a request of the pull's size and
//              receives a reply of the pull reply's size (blocking MPI_Send /
//              MPI_Recv; the floor our pull could reach on this transport)
//   mpi pp     a classic ping-pong of the reply's size, one-way bandwidth
//   pull       PsClient::Pull + Wait, one at a time (round trip)
//   pull x8    8 pulls in flight, then waiting for all (throughput)
//   push       PsClient::Push + WaitPushes(0) (round trip, the optimizer --
//              Adam unless --optimizer says otherwise -- applied on the server)
//   push x8    8 pushes in flight, then waiting for all acks (throughput, as
//              training sends them: it does not wait for each ack)
// Times are medians over the iterations; GB/s counts the rows' floats only.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/control.h"
#include "common/hash.h"
#include "common/keys.h"
#include "common/topology.h"
#include "common/transport.h"
#include "common/wire.h"
#include "ps/server_loop.h"
#include "worker/ps_client.h"

namespace recsys {
namespace {

constexpr int kTagRawRequest = 30000;
constexpr int kTagRawReply = 30001;
constexpr int kTagDone = 30002;

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Options {
  int dim = 32;
  std::string optimizer = "adam";
  std::vector<int> rows = {500, 1000, 10000, 100000};
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--dim") {
      o.dim = std::atoi(argv[i + 1]);
    } else if (a == "--optimizer") {
      o.optimizer = argv[i + 1];
    } else if (a == "--rows") {
      o.rows.clear();
      std::string s = argv[i + 1];
      std::size_t at = 0;
      while (at <= s.size()) {
        const std::size_t comma = s.find(',', at);
        o.rows.push_back(std::atoi(s.substr(at, comma - at).c_str()));
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    }
  }
  return o;
}

// Sizes of one server's share of a pull/push of `rows` rows (wire.h).
std::size_t Align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }
struct Shape {
  int rows_per_server;
  std::size_t request, reply, push;
};
Shape ShapeFor(int rows, int dim, int servers) {
  Shape s;
  s.rows_per_server = (rows + servers - 1) / servers;
  const std::size_t r = static_cast<std::size_t>(s.rows_per_server);
  s.request = sizeof(FrameHeader) + sizeof(SectionHeader) + r * sizeof(Key);
  s.reply = sizeof(FrameHeader) + sizeof(SectionHeader) + Align8(r * static_cast<std::size_t>(dim) * sizeof(Real));
  s.push = s.request + Align8(r * static_cast<std::size_t>(dim) * sizeof(Real));
  return s;
}
int Iterations(std::size_t bytes) {
  return static_cast<int>(std::clamp<std::size_t>(std::size_t{400} * 1000 * 1000 / (bytes + 4096), 20, 3000));
}

// Raw exchange: `a` bytes to every server, `b` bytes back from each.
double RawExchange(int servers, std::size_t a, std::size_t b, int iters, bool worker) {
  std::vector<char> out(std::max(a, b)), in(std::max(a, b));
  std::vector<double> times;
  for (int it = 0; it < iters + 5; ++it) {
    if (worker) {
      const double t0 = Now();
      std::vector<MPI_Request> reqs(static_cast<std::size_t>(servers));
      for (int s = 0; s < servers; ++s) {
        MPI_Isend(out.data(), static_cast<int>(a), MPI_BYTE, 1 + s, kTagRawRequest, MPI_COMM_WORLD, &reqs[static_cast<std::size_t>(s)]);
      }
      for (int s = 0; s < servers; ++s) {
        MPI_Recv(in.data(), static_cast<int>(b), MPI_BYTE, MPI_ANY_SOURCE, kTagRawReply, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
      MPI_Waitall(servers, reqs.data(), MPI_STATUSES_IGNORE);
      if (it >= 5) times.push_back(Now() - t0);
    } else {
      MPI_Recv(in.data(), static_cast<int>(a), MPI_BYTE, MPI_ANY_SOURCE, kTagRawRequest, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
      MPI_Send(out.data(), static_cast<int>(b), MPI_BYTE, servers + 1, kTagRawReply, MPI_COMM_WORLD);
    }
  }
  return Median(times);
}

void RawPhase(const Options& o, int servers, bool worker, std::vector<double>* pull, std::vector<double>* pingpong,
              std::vector<double>* push) {
  for (int rows : o.rows) {
    const Shape sh = ShapeFor(rows, o.dim, servers);
    const int iters = Iterations(sh.reply * static_cast<std::size_t>(servers));
    pull->push_back(RawExchange(servers, sh.request, sh.reply, iters, worker));
    pingpong->push_back(RawExchange(servers, sh.reply, sh.reply, iters, worker));
    push->push_back(RawExchange(servers, sh.push, 8 + sizeof(std::uint64_t), iters, worker));
  }
}

void RunBenchWorker(Transport& transport, const Topology& topology, const Options& o, const std::vector<TableSpec>& tables,
                    const std::vector<double>& raw_pull, const std::vector<double>& raw_pp,
                    const std::vector<double>& raw_push) {
  PsClient client(&transport, topology, tables, /*send_empty=*/false);
  const int servers = topology.servers();
  std::printf("recsys_bench_ps: 1 worker, %d server(s), rows of %d floats, %s; times are medians, us\n", servers,
              o.dim, o.optimizer.c_str());
  std::printf("%8s %9s | %9s %9s %9s | %9s %9s %10s %7s | %9s %9s | %9s %9s %7s | %9s %9s %7s\n", "rows", "B/server",
              "mpi pull", "mpi GB/s", "pp GB/s", "pull", "pull GB/s", "Mrows/s", "/mpi", "pull x8", "x8 GB/s", "push",
              "push GB/s", "/mpi", "push x8", "x8 GB/s", "x8/mpi");
  for (std::size_t c = 0; c < o.rows.size(); ++c) {
    const int rows = o.rows[c];
    const Shape sh = ShapeFor(rows, o.dim, servers);
    const int iters = Iterations(sh.reply * static_cast<std::size_t>(servers));
    SplitMix64 rng(static_cast<std::uint64_t>(rows));
    std::vector<Key> keys(static_cast<std::size_t>(rows));
    for (auto& k : keys) k = MakeKey(kFieldItem, rng.NextBelow(std::uint64_t{1} << 40));
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    ParamBuffers grads;
    grads.Shape(tables, keys.size());
    for (auto& s : grads.storage) std::fill(s.begin(), s.end(), 1e-4f);
    std::vector<ParamBuffers> bufs(8);
    // Warm-up: creates the rows on the servers.
    for (int w = 0; w < 3; ++w) {
      client.Wait(client.Pull(keys, &bufs[0]));
      client.Push(keys, grads);
      client.WaitPushes(0);
    }
    std::vector<double> pull, stream, push, push_stream;
    for (int it = 0; it < iters; ++it) {
      const double t0 = Now();
      client.Wait(client.Pull(keys, &bufs[0]));
      pull.push_back(Now() - t0);
    }
    for (int it = 0; it < std::max(3, iters / 8); ++it) {
      const double t0 = Now();
      PsClient::Ticket last = 0;
      for (auto& b : bufs) last = client.Pull(keys, &b);
      for (PsClient::Ticket t = last - 7; t <= last; ++t) client.Wait(t);
      stream.push_back((Now() - t0) / 8);
    }
    for (int it = 0; it < iters; ++it) {
      const double t0 = Now();
      client.Push(keys, grads);
      client.WaitPushes(0);
      push.push_back(Now() - t0);
    }
    for (int it = 0; it < std::max(3, iters / 8); ++it) {
      const double t0 = Now();
      for (int p = 0; p < 8; ++p) client.Push(keys, grads);
      client.WaitPushes(0);
      push_stream.push_back((Now() - t0) / 8);
    }
    const double bytes = static_cast<double>(keys.size()) * o.dim * sizeof(Real);
    const double tp = Median(pull), ts = Median(stream), tu = Median(push), tus = Median(push_stream);
    std::printf(
        "%8zu %9zu | %9.1f %9.2f %9.2f | %9.1f %9.2f %10.1f %7.2f | %9.1f %9.2f | %9.1f %9.2f %7.2f | %9.1f %9.2f "
        "%7.2f\n",
        keys.size(), sh.reply, raw_pull[c] * 1e6, bytes / raw_pull[c] * 1e-9,
        static_cast<double>(sh.reply) / (raw_pp[c] / 2) * 1e-9, tp * 1e6, bytes / tp * 1e-9,
        static_cast<double>(keys.size()) / tp * 1e-6, raw_pull[c] / tp, ts * 1e6, bytes / ts * 1e-9, tu * 1e6,
        bytes / tu * 1e-9, raw_push[c] / tu, tus * 1e6, bytes / tus * 1e-9, raw_push[c] / tus);
    std::fflush(stdout);
  }
}

int Main(int argc, char** argv) {
  auto transport = MakeMpiTransport(&argc, &argv);
  const Options o = Parse(argc, argv);
  const int size = transport->size();
  if (size < 3) {
    std::fprintf(stderr, "recsys_bench_ps: needs at least 3 ranks (rank 0, servers, one worker)\n");
    transport->Abort(2);
  }
  const int servers = size - 2;
  const Topology topology(size, servers);
  Config config;
  config.optimizer = o.optimizer;
  config.lr = 0.001f;
  TableSpec spec;
  spec.id = 0;
  spec.name = "emb";
  spec.width = o.dim;
  spec.init = InitKind::kNormal;
  spec.init_scale = 0.01f;
  const std::vector<TableSpec> tables = {spec};

  const int rank = transport->rank();
  std::vector<double> raw_pull, raw_pp, raw_push;
  if (rank == 0) {
    Setup setup;
    setup.slot_field = {kFieldUser, kFieldItem};
    setup.tables = tables;
    for (int s = 0; s < servers; ++s) SendControl(*transport, topology.ServerRank(s), kTagSetup, setup);
    transport->Recv(topology.WorkerRank(0), kTagDone);
    for (int s = 0; s < servers; ++s) {
      Command stop;
      stop.kind = Command::kStop;
      SendControl(*transport, topology.ServerRank(s), kTagCommand, stop);
    }
  } else if (rank <= servers) {
    RawPhase(o, servers, /*worker=*/false, &raw_pull, &raw_pp, &raw_push);
    RunServer(*transport, topology, config);
  } else {
    RawPhase(o, servers, /*worker=*/true, &raw_pull, &raw_pp, &raw_push);
    RunBenchWorker(*transport, topology, o, tables, raw_pull, raw_pp, raw_push);
    transport->Send(0, kTagDone, Bytes());
  }
  transport->FlushSends();
  FinalizeMpi();
  return 0;
}

}  // namespace
}  // namespace recsys

int main(int argc, char** argv) {
  try {
    return recsys::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recsys_bench_ps: %s\n", e.what());
    return 1;
  }
}
