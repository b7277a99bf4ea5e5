// Tests of the PS client against real server loops, and of whole jobs
// (coordinator, servers, workers) as threads over LocalTransport.
//
// Nothing here may hang: every job runs under a watchdog that aborts the
// transport after a generous deadline, which makes every rank's next receive
// throw, so a lost message fails the test instead of blocking the suite.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/control.h"
#include "common/error.h"
#include "common/keys.h"
#include "common/table_spec.h"
#include "common/topology.h"
#include "common/transport.h"
#include "common/wire.h"
#include "ps/coordinator.h"
#include "ps/optimizer.h"
#include "ps/server_loop.h"
#include "worker/ps_client.h"
#include "tests/file_test_util.h"
#include "worker/run.h"

namespace recsys {
namespace {

// gtest's Test has a private Setup() (a trap for SetUp) that hides ours in
// test bodies.
using SetupMessage = recsys::Setup;

// Far beyond what any test here needs; only reached when something is lost.
constexpr double kDeadlineSeconds = 60.0;
constexpr int kDeadlineCode = 124;

// Aborts `transport` (and so the whole local job) unless destroyed within
// `seconds`.
class Watchdog {
 public:
  Watchdog(Transport* transport, double seconds)
      : thread_([this, transport, seconds] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) return;
          lock.unlock();
          try {
            transport->Abort(kDeadlineCode);
          } catch (const TransportAborted&) {
          }
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::thread thread_;  // last: starts once the members above exist
};

// RunLocalRanks under a watchdog held by rank 0.
// Each rank has a shared area of `area_bytes` (0: none).
void RunWithDeadline(int n, const std::function<void(int rank, Transport& transport)>& fn,
                     std::size_t area_bytes = kDefaultSharedAreaBytes) {
  try {
    RunLocalRanks(
        n,
        [&](int rank, Transport& t) {
          if (rank != 0) return fn(rank, t);
          Watchdog watchdog(&t, kDeadlineSeconds);
          fn(rank, t);
        },
        area_bytes);
  } catch (const TransportAborted& e) {
    if (e.code() == kDeadlineCode) throw std::runtime_error("the local job did not finish before the deadline");
    throw;
  }
}

// ---------------------------------------------------------------------------
// PsClient against RunServer threads

constexpr std::uint64_t kSeed = 7;
constexpr int kTagClientDone = 100;  // test-only: the client tells rank 0 it is done

TableSpec Spec(TableId id, const char* name, int width, InitKind init, float scale, std::int64_t dense_size = 0) {
  TableSpec spec;
  spec.id = id;
  spec.name = name;
  spec.width = width;
  spec.init = init;
  spec.init_scale = scale;
  spec.dense_size = dense_size;
  return spec;
}

// Two sparse tables and a dense block of 10 floats in 3 rows of 4.
std::vector<TableSpec> Tables() {
  return {Spec(0, "emb", 5, InitKind::kNormal, 0.1f), Spec(1, "linear", 1, InitKind::kUniform, 0.3f),
          Spec(2, "mlp", 4, InitKind::kUniform, 0.5f, 10)};
}
constexpr std::size_t kDense = 2;

std::vector<Key> Keys() {
  std::vector<Key> keys;
  for (std::uint64_t i = 0; i < 15; ++i) keys.push_back(MakeKey(kFieldUser, i));
  for (std::uint64_t i = 0; i < 15; ++i) keys.push_back(MakeKey(kFieldItem, i * 7));
  for (std::uint64_t i = 0; i < 5; ++i) keys.push_back(MakeKey(kFieldGenre, i));
  for (std::uint64_t i = 0; i < 5; ++i) keys.push_back(MakeKey(kFieldOccupation, (std::uint64_t{1} << 62) + i));
  return keys;
}

Config ServerConfig(const std::string& optimizer, float lr) {
  Config c;
  c.optimizer = optimizer;
  c.lr = lr;
  c.seed = kSeed;
  c.sync = false;
  return c;
}

// Runs rank 0 as a minimal coordinator (a Setup to every server, then stats
// and Stop once the client is done), ranks 1..servers as RunServer, and
// `client` on the one worker rank. Returns the servers' stats.
std::vector<ServerStats> RunWithServers(int servers, const std::vector<TableSpec>& tables, const Config& config,
                                        const std::function<void(PsClient& client)>& client,
                                        std::size_t area_bytes = kDefaultSharedAreaBytes) {
  const int n = servers + 2;
  const Topology topology(n, servers);
  std::vector<ServerStats> stats;
  RunWithDeadline(n, [&](int rank, Transport& t) {
    switch (topology.RoleOf(rank)) {
      case Role::kCoordinator: {
        SetupMessage setup;
        setup.tables = tables;
        for (int s = 0; s < servers; ++s) SendControl(t, topology.ServerRank(s), kTagSetup, setup);
        t.Recv(topology.WorkerRank(0), kTagClientDone);
        Command command;
        command.kind = Command::kReportStats;
        for (int s = 0; s < servers; ++s) SendControl(t, topology.ServerRank(s), kTagCommand, command);
        for (int s = 0; s < servers; ++s) stats.push_back(RecvControl<ServerStats>(t, topology.ServerRank(s), kTagServerStats));
        command.kind = Command::kStop;
        for (int s = 0; s < servers; ++s) SendControl(t, topology.ServerRank(s), kTagCommand, command);
        break;
      }
      case Role::kServer:
        RunServer(t, topology, config);
        break;
      case Role::kWorker: {
        PsClient ps(&t, topology, tables, /*send_empty=*/false);
        client(ps);
        // Every block of the area offered for a reply came back, whether the
        // reply was placed there or sent.
        EXPECT_EQ(t.AreaBlocksInUse(), 0u);
        t.Send(0, kTagClientDone, Bytes());
        break;
      }
    }
  }, area_bytes);
  return stats;
}

// Row `i` of table `t` in `buffers`.
std::vector<Real> RowOf(const ParamBuffers& buffers, const std::vector<TableSpec>& tables, std::size_t t, std::size_t i) {
  const std::size_t w = static_cast<std::size_t>(tables[t].width);
  const auto& s = buffers.storage[t];
  return std::vector<Real>(s.begin() + static_cast<std::ptrdiff_t>(i * w), s.begin() + static_cast<std::ptrdiff_t>((i + 1) * w));
}

std::vector<Real> Init(const TableSpec& spec, Key key) {
  std::vector<Real> row(static_cast<std::size_t>(spec.width));
  InitRow(spec, kSeed, key, row.data());
  return row;
}

// The key of row i of table t for a batch of `keys`.
Key KeyOfRow(const TableSpec& spec, const std::vector<Key>& keys, std::size_t i) {
  return spec.dense() ? MakeKey(kFieldDense, i) : keys[i];
}

std::size_t RowsOf(const TableSpec& spec, const std::vector<Key>& keys) {
  return spec.dense() ? static_cast<std::size_t>(spec.dense_rows()) : keys.size();
}

// Expects every row pulled for `keys` to be InitRow's.
void ExpectInitialRows(const ParamBuffers& rows, const std::vector<TableSpec>& tables, const std::vector<Key>& keys) {
  ASSERT_EQ(rows.storage.size(), tables.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    ASSERT_EQ(rows.storage[t].size(), RowsOf(tables[t], keys) * static_cast<std::size_t>(tables[t].width)) << t;
    ASSERT_EQ(rows.view[t].data, rows.storage[t].data());
    for (std::size_t i = 0; i < RowsOf(tables[t], keys); ++i) {
      EXPECT_EQ(RowOf(rows, tables, t, i), Init(tables[t], KeyOfRow(tables[t], keys, i))) << "table " << t << " row " << i;
    }
  }
}

// A pull frame (wire.h) of `keys` from table 0, offering `place`, as a
// worker sends it to one server.
Bytes PullFrame(std::uint64_t request, ReplyPlace place, const std::vector<Key>& keys) {
  Bytes frame;
  FrameWriter out(&frame);
  FrameHeader header;
  header.request = request;
  header.sections = 1;
  out.Put(header);
  out.Put(place);
  out.Put(SectionHeader{0, static_cast<std::uint32_t>(keys.size())});
  out.PutArray(keys.data(), keys.size());
  return frame;
}

// Runs one server (rank 1; rank 0 the coordinator, rank 2 a worker, each
// with a shared area of `area_bytes`, 0: none) on the messages that `send`
// sends as the worker, until a stop. Returns the server's InputError, or ""
// if it served them all; *transports stay for reading the replies.
std::string ServeWorkerMessages(const std::vector<TableSpec>& tables, const Config& config, std::size_t area_bytes,
                                const std::function<void(Transport& worker)>& send,
                                std::vector<std::unique_ptr<Transport>>* transports) {
  *transports = MakeLocalTransports(3, area_bytes);
  Transport& coordinator = *(*transports)[0];
  SetupMessage setup;
  setup.tables = tables;
  SendControl(coordinator, 1, kTagSetup, setup);
  send(*(*transports)[2]);
  Command stop;
  stop.kind = Command::kStop;
  SendControl(coordinator, 1, kTagCommand, stop);
  try {
    RunServer(*(*transports)[1], Topology(3, 1), config);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Gradients for `keys`, different for every (step, table, row, element).
ParamBuffers Gradients(const std::vector<TableSpec>& tables, const std::vector<Key>& keys, int step) {
  ParamBuffers grads;
  grads.Shape(tables, keys.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    for (std::size_t j = 0; j < grads.storage[t].size(); ++j) {
      grads.storage[t][j] = 0.01f * static_cast<Real>(step + 1) + 0.001f * static_cast<Real>(j % 97) -
                            0.002f * static_cast<Real>(t);
    }
  }
  return grads;
}

TEST(PsClientTest, PullEqualsInitRowForAnyNumberOfServers) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  for (int servers : {1, 2, 3}) {
    SCOPED_TRACE("servers " + std::to_string(servers));
    ParamBuffers rows, eval_rows;
    std::uint64_t pulled = 0;
    const std::vector<ServerStats> stats =
        RunWithServers(servers, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
          ps.Wait(ps.Pull(keys, &rows));
          ps.Wait(ps.Pull(keys, &eval_rows, /*eval=*/true));
          pulled = ps.pulled_bytes();
          // Rows are created by pushes (pulls read missing rows as their
          // initial values): a zero push places every row on its server.
          ParamBuffers zero;
          zero.Shape(tables, keys.size());
          zero.Zero();
          ps.Push(keys, zero);
          ps.WaitPushes(0);
        });
    ExpectInitialRows(rows, tables, keys);
    EXPECT_EQ(eval_rows.storage, rows.storage);
    EXPECT_GT(pulled, 0u);
    // Every row lives on exactly one server, and with several servers each
    // holds some.
    ASSERT_EQ(stats.size(), static_cast<std::size_t>(servers));
    std::uint64_t total = 0;
    for (const ServerStats& s : stats) {
      total += s.keys;
      EXPECT_GT(s.keys, 0u) << "rank " << s.rank;
      EXPECT_EQ(s.pull_requests, 2u) << "rank " << s.rank;  // one message per server per pull
    }
    EXPECT_EQ(total, 2 * keys.size() + 3);
  }
}

// A server answers a pull of many keys in slices (server_loop.cc,
// kSliceKeys = 2048 keys, counted over the pull's tables), letting MPI move
// earlier replies in between: the rows must be the same as served whole,
// for rows that exist and rows that do not, for two tables, for pulls of a
// multiple of the slice and not, with several pulls in flight. And whether
// the replies are written into the worker's shared area (the default here:
// the local ranks share memory), sent as messages (no area), or some of each
// (an area with room for one reply at a time).
TEST(PsClientTest, LargePullsReturnEveryRowWithSeveralInFlight) {
  // Rows of 63 + 1 floats: a server's reply is above the eager limit
  // (256 KiB), above which a placed reply is also polled for until read,
  // even when two servers share a pull, whatever the keys' split.
  const std::vector<TableSpec> tables = {Spec(0, "emb", 63, InitKind::kNormal, 0.1f),
                                         Spec(1, "linear", 1, InitKind::kUniform, 0.3f)};
  for (std::uint64_t count : {5000, 4096}) {
    std::vector<Key> keys;
    for (std::uint64_t i = 0; i < count; ++i) keys.push_back(MakeKey(kFieldItem, i * 3 + 1));
    // Every third key gets a gradient, so the pull mixes rows that exist
    // with rows read as their initial values.
    std::vector<Key> pushed;
    for (std::size_t i = 0; i < keys.size(); i += 3) pushed.push_back(keys[i]);
    const ParamBuffers g = Gradients(tables, pushed, 0);
    for (int servers : {1, 2}) {
      // One server's reply: 16 + 2 * 8 bytes of headers, then its rows.
      const std::size_t reply = 32 + (count + servers - 1) / servers * 64 * 4;
      ASSERT_GT(reply, kDefaultEagerLimit + 1);
      for (std::size_t area : {kDefaultSharedAreaBytes, std::size_t{0}, reply + reply / 4}) {
        SCOPED_TRACE(std::to_string(count) + " keys, servers " + std::to_string(servers) + ", area " +
                     std::to_string(area));
        std::vector<ParamBuffers> rows(3);
        std::uint64_t placed = 0;
        const std::vector<ServerStats> stats = RunWithServers(
            servers, tables, ServerConfig("sgd", 1.0f),
            [&](PsClient& ps) {
              ps.Push(pushed, g);
              ps.WaitPushes(0);
              PsClient::Ticket last = 0;
              for (auto& r : rows) last = ps.Pull(keys, &r);
              for (PsClient::Ticket t = last - 2; t <= last; ++t) ps.Wait(t);
              placed = ps.placed_replies();
            },
            area);
        std::uint64_t served_placed = 0;
        for (const ServerStats& s : stats) served_placed += s.pull_replies_placed;
        EXPECT_EQ(served_placed, placed);
        const std::uint64_t replies = 3 * static_cast<std::uint64_t>(servers);
        if (area == kDefaultSharedAreaBytes) {
          EXPECT_EQ(placed, replies);
        } else if (area == 0) {
          EXPECT_EQ(placed, 0u);
        } else {
          // Room for one server's reply at a time: the first pull's replies
          // (one server) or some of them (two: the area is full after one),
          // then messages while it is held.
          EXPECT_GE(placed, 1u);
          EXPECT_LT(placed, replies);
        }
        for (const ParamBuffers& r : rows) {
          for (std::size_t t = 0; t < tables.size(); ++t) {
            const std::size_t width = static_cast<std::size_t>(tables[t].width);
            ASSERT_EQ(r.storage[t].size(), keys.size() * width);
            for (std::size_t i = 0; i < keys.size(); ++i) {
              std::vector<Real> expected = Init(tables[t], keys[i]);
              if (i % 3 == 0) {
                const std::vector<Real> gi = RowOf(g, tables, t, i / 3);
                for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
              }
              ASSERT_EQ(RowOf(r, tables, t, i), expected) << "table " << t << " row " << i;
            }
          }
        }
      }
    }
  }
}

// A large push (here above the eager limit, as a rendezvous message would
// be; PsClient places any above kMinPlacedBytes) to a server that has
// written a pull reply into the worker's shared area (so it maps it) is written there and read in
// place by the server (kTagPushPlaced); its block is freed at the ack. Every
// gradient must be applied once, whether the pushes are placed, sent as
// messages (no area; or before any reply was placed: a server that never
// wrote into the area may not be able to map it), or some of each (an area
// with room for one push at a time), with several pushes in flight.
TEST(PsClientTest, LargePushesAreReadFromTheWorkersAreaOnceItsServerWroteThere) {
  const std::vector<TableSpec> tables = {Spec(0, "emb", 63, InitKind::kNormal, 0.1f),
                                         Spec(1, "linear", 1, InitKind::kUniform, 0.3f)};
  constexpr std::uint64_t kCount = 5000;
  std::vector<Key> keys;
  for (std::uint64_t i = 0; i < kCount; ++i) keys.push_back(MakeKey(kFieldItem, i * 5 + 2));
  const std::vector<ParamBuffers> grads = {Gradients(tables, keys, 0), Gradients(tables, keys, 1),
                                           Gradients(tables, keys, 2)};
  for (int servers : {1, 2}) {
    // One server's push frame: 16 bytes, then per table 8 + n keys + n rows.
    const std::size_t n = (kCount + servers - 1) / servers;
    const std::size_t push = 16 + 2 * 8 + n * 8 * 2 + n * 64 * 4;
    ASSERT_GT(push, kDefaultEagerLimit + 1);
    for (bool pull_first : {true, false}) {
      for (std::size_t area : {kDefaultSharedAreaBytes, std::size_t{0}, push + push / 4}) {
        SCOPED_TRACE("servers " + std::to_string(servers) + (pull_first ? ", pull first" : ", push first") +
                     ", area " + std::to_string(area));
        ParamBuffers before, after;
        std::uint64_t placed = 0;
        const std::vector<ServerStats> stats = RunWithServers(
            servers, tables, ServerConfig("sgd", 1.0f),
            [&](PsClient& ps) {
              if (pull_first) ps.Wait(ps.Pull(keys, &before));
              for (const ParamBuffers& g : grads) ps.Push(keys, g);
              EXPECT_EQ(ps.pushes_in_flight(), 3);
              ps.WaitPushes(0);
              ps.Wait(ps.Pull(keys, &after));
              placed = ps.placed_pushes();
            },
            area);
        std::uint64_t served_placed = 0, pushes = 0;
        for (const ServerStats& s : stats) {
          served_placed += s.pushes_placed;
          pushes += s.push_requests;
        }
        EXPECT_EQ(served_placed, placed);
        EXPECT_EQ(pushes, 3 * static_cast<std::uint64_t>(servers));
        if (area == kDefaultSharedAreaBytes && pull_first) {
          EXPECT_EQ(placed, pushes);
        } else if (area == 0 || !pull_first) {
          EXPECT_EQ(placed, 0u);
        } else {
          EXPECT_GE(placed, 1u);
          EXPECT_LT(placed, pushes);
        }
        for (std::size_t t = 0; t < tables.size(); ++t) {
          ASSERT_EQ(after.storage[t].size(), keys.size() * static_cast<std::size_t>(tables[t].width));
          for (std::size_t i = 0; i < keys.size(); ++i) {
            std::vector<Real> expected = Init(tables[t], keys[i]);
            for (const ParamBuffers& g : grads) {
              const std::vector<Real> gi = RowOf(g, tables, t, i);
              for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
            }
            ASSERT_EQ(RowOf(after, tables, t, i), expected) << "table " << t << " row " << i;
          }
        }
      }
    }
  }
}

// A pull whose keys take more than kMinPlacedBytes, to a server that has
// written a reply into the worker's shared area (so it maps it), has its
// keys written there and read in place by the server (kRequestPlaced); the
// block is freed at the reply (RunWithServers checks that none is left).
// Before any reply was placed, and without an area, the keys go in the
// message. Training and evaluation pulls of different keys, several in
// flight, must return every row right either way (a server reading another
// pull's block, or one freed too early, would return wrong rows), also when
// the reply is small enough to come as a message (a width-1 table).
TEST(PsClientTest, LargePullRequestsAreReadFromTheWorkersAreaOnceItsServerWroteThere) {
  const std::vector<TableSpec> wide = {Spec(0, "emb", 63, InitKind::kNormal, 0.1f),
                                       Spec(1, "linear", 1, InitKind::kUniform, 0.3f)};
  const std::vector<TableSpec> narrow = {Spec(0, "linear", 1, InitKind::kUniform, 0.3f)};
  constexpr int kRounds = 4;
  struct Case {
    const std::vector<TableSpec>* tables;
    std::uint64_t count;
    int servers;
    bool replies_placed;
  };
  // One server's keys take 8 bytes of section header + 8 per key for each
  // table; its reply 8 + 4 * width per key. With two servers each gets at
  // least 2,000 of the 5,000 keys (this hash), so both go through the area.
  for (const Case& c : {Case{&wide, 5000, 1, true}, Case{&wide, 5000, 2, true}, Case{&narrow, 600, 1, false}}) {
    const std::vector<TableSpec>& tables = *c.tables;
    // Pull j of the run asks for its own keys, shifted by j; every third key
    // of the whole range has a gradient.
    std::vector<std::vector<Key>> keys(3 * kRounds);
    for (std::size_t j = 0; j < keys.size(); ++j) {
      for (std::uint64_t i = 0; i < c.count; ++i) keys[j].push_back(MakeKey(kFieldItem, i * 7 + 3 + 11 * j));
    }
    std::vector<Key> pushed;
    for (std::uint64_t k = 0; k < c.count * 7 + 11 * 3 * kRounds + 3; k += 3) pushed.push_back(MakeKey(kFieldItem, k));
    std::unordered_map<Key, std::size_t> pushed_at;
    for (std::size_t i = 0; i < pushed.size(); ++i) pushed_at[pushed[i]] = i;
    const ParamBuffers g = Gradients(tables, pushed, 0);
    if (c.servers == 1) {
      ASSERT_GT(16 + 16 + tables.size() * (8 + c.count * 8), PsClient::kMinPlacedBytes);
      ASSERT_EQ(16 + 8 + c.count * 4 > PsClient::kMinPlacedBytes, c.replies_placed);
    }
    for (std::size_t area : {kDefaultSharedAreaBytes, std::size_t{0}}) {
      SCOPED_TRACE(std::to_string(c.count) + " keys, " + std::to_string(tables.size()) + " tables, servers " +
                   std::to_string(c.servers) + ", area " + std::to_string(area));
      std::vector<ParamBuffers> rows(3 * kRounds);
      std::uint64_t placed = 0, placed_replies = 0;
      const std::vector<ServerStats> stats = RunWithServers(
          c.servers, tables, ServerConfig("sgd", 1.0f),
          [&](PsClient& ps) {
            ps.Push(pushed, g);
            ps.WaitPushes(0);
            if (!c.replies_placed) {
              // Replies this small never go into the area: a large one first,
              // so that the server has written there.
              std::vector<Key> many;
              for (std::uint64_t i = 0; i < 2000; ++i) many.push_back(MakeKey(kFieldUser, i));
              ParamBuffers once;
              ps.Wait(ps.Pull(many, &once));
            }
            for (std::size_t j = 0; j < rows.size(); j += 3) {
              // The first round's pulls all leave before any reply has come.
              const PsClient::Ticket first = ps.Pull(keys[j], &rows[j]);
              ps.Pull(keys[j + 1], &rows[j + 1], /*eval=*/true);
              const PsClient::Ticket last = ps.Pull(keys[j + 2], &rows[j + 2]);
              for (PsClient::Ticket t = first; t <= last; ++t) ps.Wait(t);
            }
            placed = ps.placed_requests();
            placed_replies = ps.placed_replies();
          },
          area);
      std::uint64_t served_placed = 0;
      for (const ServerStats& s : stats) served_placed += s.pull_requests_placed;
      EXPECT_EQ(served_placed, placed);
      const std::uint64_t servers = static_cast<std::uint64_t>(c.servers);
      if (area == 0) {
        EXPECT_EQ(placed, 0u);
      } else if (c.replies_placed) {
        EXPECT_EQ(placed, 3u * (kRounds - 1) * servers);
      } else {
        EXPECT_EQ(placed, 3u * kRounds * servers);
        EXPECT_EQ(placed_replies, 1u);  // the large one only
      }
      for (std::size_t j = 0; j < rows.size(); ++j) {
        for (std::size_t t = 0; t < tables.size(); ++t) {
          ASSERT_EQ(rows[j].storage[t].size(), keys[j].size() * static_cast<std::size_t>(tables[t].width));
          for (std::size_t i = 0; i < keys[j].size(); ++i) {
            std::vector<Real> expected = Init(tables[t], keys[j][i]);
            const auto at = pushed_at.find(keys[j][i]);
            if (at != pushed_at.end()) {
              const std::vector<Real> gi = RowOf(g, tables, t, at->second);
              for (std::size_t e = 0; e < expected.size(); ++e) expected[e] -= gi[e];
            }
            ASSERT_EQ(RowOf(rows[j], tables, t, i), expected) << "pull " << j << " table " << t << " row " << i;
          }
        }
      }
    }
  }
}

// Batch-sized pull replies and pushes, above PsClient::kMinPlacedBytes and
// below the eager limit, go through the worker's shared area too (pushes
// once the server has placed a reply there); tiny ones stay messages. The
// rows pulled are the same either way.
TEST(PsClientTest, BatchSizedRepliesAndPushesArePlacedTinyOnesAreMessages) {
  const std::vector<TableSpec> tables = {Spec(0, "emb", 16, InitKind::kNormal, 0.1f)};
  std::vector<Key> tiny, batch;
  for (std::uint64_t i = 0; i < 10; ++i) tiny.push_back(MakeKey(kFieldUser, i));
  for (std::uint64_t i = 0; i < 200; ++i) batch.push_back(MakeKey(kFieldItem, i));
  // A reply: 16 bytes of frame header, 8 of section header, then the rows;
  // a push adds the keys.
  const auto reply = [](std::size_t n) { return 16 + 8 + n * 16 * 4; };
  const auto push = [](std::size_t n) { return 16 + 8 + n * 8 + n * 16 * 4; };
  ASSERT_LE(push(tiny.size()), PsClient::kMinPlacedBytes);
  ASSERT_GT(reply(batch.size()), PsClient::kMinPlacedBytes);
  ASSERT_LT(push(batch.size()), kDefaultEagerLimit);
  const ParamBuffers g_tiny = Gradients(tables, tiny, 0);
  const ParamBuffers g_batch = Gradients(tables, batch, 1);
  ParamBuffers tiny_rows, batch_rows, first_tiny;
  std::uint64_t placed_replies = 0, placed_pushes = 0;
  const std::vector<ServerStats> stats =
      RunWithServers(1, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
        ps.Wait(ps.Pull(tiny, &first_tiny));  // a message
        ps.Push(batch, g_batch);              // a message: no reply placed yet
        ps.WaitPushes(0);
        ps.Wait(ps.Pull(batch, &batch_rows));  // placed
        ps.Push(batch, g_batch);               // placed
        ps.Push(tiny, g_tiny);                 // a message
        ps.WaitPushes(0);
        ps.Wait(ps.Pull(tiny, &tiny_rows));  // a message
        ps.Wait(ps.Pull(batch, &batch_rows));  // placed
        placed_replies = ps.placed_replies();
        placed_pushes = ps.placed_pushes();
      });
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(placed_replies, 2u);
  EXPECT_EQ(placed_pushes, 1u);
  EXPECT_EQ(stats[0].pull_replies_placed, 2u);
  EXPECT_EQ(stats[0].pushes_placed, 1u);
  EXPECT_EQ(stats[0].push_requests, 3u);
  EXPECT_EQ(stats[0].pull_requests_placed, 0u);  // 200 keys: 1.6 KB, messages
  for (std::size_t i = 0; i < tiny.size(); ++i) {
    std::vector<Real> expected = Init(tables[0], tiny[i]);
    ASSERT_EQ(RowOf(first_tiny, tables, 0, i), expected);
    const std::vector<Real> gi = RowOf(g_tiny, tables, 0, i);
    for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
    ASSERT_EQ(RowOf(tiny_rows, tables, 0, i), expected) << "row " << i;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::vector<Real> expected = Init(tables[0], batch[i]);
    const std::vector<Real> gi = RowOf(g_batch, tables, 0, i);
    for (int k = 0; k < 2; ++k) {
      for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
    }
    ASSERT_EQ(RowOf(batch_rows, tables, 0, i), expected) << "row " << i;
  }
}

// With two servers the client gathers each server's rows of a push and
// scatters its reply's rows one by one, and each server copies its rows
// with a copy of fixed size for the common widths (common/row_copy.h) and
// memcpy for the others: every width must come back as pushed.
TEST(PsClientTest, RowsOfEveryCopyWidthGoThroughTwoServers) {
  const std::vector<TableSpec> tables = {
      Spec(0, "w16", 16, InitKind::kNormal, 0.1f), Spec(1, "w32", 32, InitKind::kNormal, 0.1f),
      Spec(2, "w33", 33, InitKind::kNormal, 0.1f), Spec(3, "w64", 64, InitKind::kNormal, 0.1f),
      Spec(4, "w5", 5, InitKind::kUniform, 0.3f)};
  std::vector<Key> keys;
  for (std::uint64_t i = 0; i < 300; ++i) keys.push_back(MakeKey(kFieldItem, i * 11 + 3));
  const ParamBuffers g = Gradients(tables, keys, 0);
  ParamBuffers rows;
  RunWithServers(2, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
    ps.Push(keys, g);
    ps.WaitPushes(0);
    ps.Wait(ps.Pull(keys, &rows));
  });
  for (std::size_t t = 0; t < tables.size(); ++t) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::vector<Real> expected = Init(tables[t], keys[i]);
      const std::vector<Real> gi = RowOf(g, tables, t, i);
      for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
      ASSERT_EQ(RowOf(rows, tables, t, i), expected) << tables[t].name << " row " << i;
    }
  }
}

// A placed push names a place in the worker's shared area; the server reads
// only a place inside the area, and refuses any other (or an area it cannot
// map) as bad input naming the rank.
TEST(PsClientTest, ServerReadsAPlacedPushOnlyFromInsideTheArea) {
  const std::vector<TableSpec> tables = {Spec(0, "emb", 4, InitKind::kNormal, 0.1f)};
  const std::size_t area_bytes = std::size_t{1} << 20;
  const std::vector<Key> keys = {MakeKey(kFieldItem, 1), MakeKey(kFieldItem, 2)};
  const std::vector<Real> grads = {1, 2, 3, 4, 5, 6, 7, 8};
  // Writes a push frame at offset `at` of the worker's area, sends the
  // worker's note naming `place` (bytes 1: the frame's size) and then a
  // pull; returns the server's error, or "" and the pull's reply in *reply.
  const auto serve = [&](ReplyPlace place, std::size_t area, Message* reply, std::size_t at = 4096) -> std::string {
    std::vector<std::unique_ptr<Transport>> transports;
    const std::string error = ServeWorkerMessages(
        tables, ServerConfig("sgd", 1.0f), area,
        [&](Transport& worker) {
          std::size_t frame_bytes = 0;
          if (area > 0) {
            FrameWriter out(worker.OwnArea().data + at, 16 + 8 + 16 + 32);
            FrameHeader header;
            header.request = 7;
            header.sections = 1;
            out.Put(header);
            out.Put(SectionHeader{0, 2});
            out.PutArray(keys.data(), keys.size());
            out.PutArray(grads.data(), grads.size());
            frame_bytes = out.size();
          }
          if (place.bytes == 1) place.bytes = frame_bytes;  // "the frame's size"
          Bytes note;
          FrameWriter(&note).Put(place);
          worker.Send(1, kTagPushPlaced, std::move(note));
          worker.Send(1, kTagPull, PullFrame(8, ReplyPlace{}, keys));
        },
        &transports);
    if (!error.empty()) return error;
    Transport& worker = *transports[2];
    Message ack;
    EXPECT_TRUE(worker.TryRecv(1, kTagPushAck, &ack));
    EXPECT_EQ(FrameReader(ack.data, "ack").Get<std::uint64_t>(), 7u);
    EXPECT_TRUE(worker.TryRecv(1, kTagPullReply, reply));
    return "";
  };
  Message reply;

  // A place inside the area: the gradients are applied (SGD, lr 1).
  ASSERT_EQ(serve(ReplyPlace{4096, 1}, area_bytes, &reply), "");
  FrameReader in(reply.data, "reply");
  EXPECT_EQ(in.Get<FrameHeader>().request, 8u);
  EXPECT_EQ(in.Get<SectionHeader>().n, 2u);
  const Real* rows = in.GetArray<Real>(8);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::vector<Real> expected = Init(tables[0], keys[i]);
    for (std::size_t j = 0; j < 4; ++j) expected[j] -= grads[i * 4 + j];
    EXPECT_EQ(std::vector<Real>(rows + i * 4, rows + i * 4 + 4), expected) << i;
  }

  // A place that ends where the area ends.
  ASSERT_EQ(serve(ReplyPlace{area_bytes - 72, 1}, area_bytes, &reply, area_bytes - 72), "");
  EXPECT_EQ(reply.data.size(), 16u + 8u + 32u);

  // Places the server must refuse.
  EXPECT_NE(serve(ReplyPlace{area_bytes - 32, 72}, area_bytes, &reply).find("push from rank 2 is 72 bytes at offset"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{~std::uint64_t{0} - 8, 72}, area_bytes, &reply).find("of its shared area"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{4100, 72}, area_bytes, &reply).find("at offset 4100"), std::string::npos);
  EXPECT_NE(serve(ReplyPlace{4096, 8}, area_bytes, &reply).find("is 8 bytes"), std::string::npos);
  // A frame that claims more than the place holds.
  EXPECT_NE(serve(ReplyPlace{4096, 40}, area_bytes, &reply).find("runs past the end"), std::string::npos);
  // A note of the wrong size.
  {
    std::vector<std::unique_ptr<Transport>> transports;
    const std::string error = ServeWorkerMessages(
        tables, ServerConfig("sgd", 1.0f), area_bytes,
        [](Transport& worker) { worker.Send(1, kTagPushPlaced, Bytes(24, 0)); }, &transports);
    EXPECT_NE(error.find("placed push from rank 2 has 24 bytes"), std::string::npos) << error;
  }
  // No area to read it from.
  EXPECT_NE(serve(ReplyPlace{4096, 72}, 0, &reply).find("which this server cannot map"), std::string::npos);
}

// A placed pull request names where in the worker's shared area its keys
// are; the server reads only a place inside the area, and refuses any other
// (or an area it cannot map, or a message with more after the place) as bad
// input naming the rank.
TEST(PsClientTest, ServerReadsAPlacedPullRequestOnlyFromInsideTheArea) {
  const std::vector<TableSpec> tables = {Spec(0, "emb", 4, InitKind::kNormal, 0.1f)};
  const std::size_t area_bytes = std::size_t{1} << 20;
  const std::vector<Key> keys = {MakeKey(kFieldItem, 1), MakeKey(kFieldItem, 2), MakeKey(kFieldItem, 3)};
  constexpr std::size_t kSections = 8 + 3 * 8;  // the sections' bytes
  // Writes the request's sections at offset `at` of the worker's area and
  // sends a pull naming `place` (bytes 1: the sections' size), then `extra`
  // bytes; the header says `sections` and `flags`, and the reply's place is
  // `reply_place` (none: by message). Returns the server's error, or "" and
  // its reply in *reply.
  struct Head {
    std::uint32_t sections = 1;
    std::uint32_t flags = kRequestPlaced;
    ReplyPlace reply_place;
  };
  const auto serve = [&](ReplyPlace place, std::size_t area, Message* reply, std::size_t at = 4096,
                         std::size_t extra = 0, Head head = Head()) -> std::string {
    std::vector<std::unique_ptr<Transport>> transports;
    const std::string error = ServeWorkerMessages(
        tables, ServerConfig("sgd", 1.0f), area,
        [&](Transport& worker) {
          if (area > 0) {
            FrameWriter out(worker.OwnArea().data + at, kSections);
            out.Put(SectionHeader{0, 3});
            out.PutArray(keys.data(), keys.size());
          }
          if (place.bytes == 1) place.bytes = kSections;
          Bytes frame;
          FrameWriter out(&frame);
          FrameHeader header;
          header.request = 11;
          header.sections = head.sections;
          header.step = head.flags;
          out.Put(header);
          out.Put(head.reply_place);
          out.Put(place);
          frame.resize(frame.size() + extra, 0);
          worker.Send(1, kTagPull, std::move(frame));
        },
        &transports);
    if (error.empty()) {
      EXPECT_TRUE(transports[2]->TryRecv(1, kTagPullReply, reply));
    }
    return error;
  };
  Message reply;

  // A place inside the area: the keys' rows come back, in a reply that is
  // not flagged as placed (it came as a message).
  ASSERT_EQ(serve(ReplyPlace{4096, 1}, area_bytes, &reply), "");
  {
    FrameReader in(reply.data, "reply");
    const auto header = in.Get<FrameHeader>();
    EXPECT_EQ(header.request, 11u);
    EXPECT_EQ(header.step, 0u);
    EXPECT_EQ(in.Get<SectionHeader>().n, 3u);
    const Real* rows = in.GetArray<Real>(12);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(std::vector<Real>(rows + i * 4, rows + i * 4 + 4), Init(tables[0], keys[i])) << i;
    }
  }
  // A place that ends where the area ends.
  ASSERT_EQ(serve(ReplyPlace{area_bytes - kSections, 1}, area_bytes, &reply, area_bytes - kSections), "");
  EXPECT_EQ(reply.data.size(), 16u + 8u + 48u);

  // Places the server must refuse.
  EXPECT_NE(serve(ReplyPlace{area_bytes - 16, kSections}, area_bytes, &reply)
                .find("pull from rank 2 has its keys in 32 bytes at offset"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{~std::uint64_t{0} - 8, kSections}, area_bytes, &reply).find("of its shared area"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{4100, kSections}, area_bytes, &reply).find("at offset 4100"), std::string::npos);
  // Sections that claim more keys than the place holds.
  EXPECT_NE(serve(ReplyPlace{4096, 16}, area_bytes, &reply).find("runs past the end"), std::string::npos);
  // More in the message after the place.
  EXPECT_NE(serve(ReplyPlace{4096, 1}, area_bytes, &reply, 4096, 8).find("placed pull from rank 2 has 56 bytes"),
            std::string::npos);
  // No area to read them from.
  EXPECT_NE(serve(ReplyPlace{4096, kSections}, 0, &reply).find("which this server cannot map"), std::string::npos);
  // More sections than tables: refused before anything is sized from them
  // (zeros in the area would read as empty sections).
  Head many;
  many.sections = 0xffffffffu;
  EXPECT_NE(serve(ReplyPlace{0, area_bytes}, area_bytes, &reply, 4096, 0, many)
                .find("pull from rank 2 has 4294967295 sections; this server holds 1 tables"),
            std::string::npos);
  // Flags other than 0 and kRequestPlaced.
  Head flags;
  flags.flags = kRequestPlaced + 1;
  EXPECT_NE(serve(ReplyPlace{4096, 1}, area_bytes, &reply, 4096, 0, flags).find("pull from rank 2 has flags 3"),
            std::string::npos);
  // A reply's place over the keys.
  Head overlap;
  overlap.reply_place = ReplyPlace{4096 - 64, 128};
  EXPECT_NE(serve(ReplyPlace{4096, 1}, area_bytes, &reply, 4096, 0, overlap).find("overlaps its keys"),
            std::string::npos);
  // Apart from them: the reply is written there.
  overlap.reply_place = ReplyPlace{8192, 128};
  ASSERT_EQ(serve(ReplyPlace{4096, 1}, area_bytes, &reply, 4096, 0, overlap), "");
  EXPECT_EQ(FrameReader(reply.data, "note").Get<FrameHeader>().step, kReplyPlaced);
}

// A pull may offer a place in the worker's shared area for its reply; the
// server writes there only a frame that fits, inside the area, and refuses
// any other place as bad input naming the rank (it comes off the wire).
TEST(PsClientTest, ServerWritesAReplyOnlyIntoAPlaceThatHoldsIt) {
  const std::vector<TableSpec> tables = {Spec(0, "emb", 4, InitKind::kNormal, 0.1f)};
  const std::size_t area_bytes = std::size_t{1} << 20;
  const std::vector<Key> keys = {MakeKey(kFieldItem, 1), MakeKey(kFieldItem, 2), MakeKey(kFieldItem, 3)};
  const std::size_t reply = 16 + 8 + keys.size() * 4 * sizeof(Real);  // 72 bytes
  // Serves one pull offering `place`; returns the server's error, or "" and
  // the note in *note.
  const auto serve = [&](ReplyPlace place, Message* note, std::vector<Transport*>* keep_area,
                         std::vector<std::unique_ptr<Transport>>* transports) -> std::string {
    const std::string error = ServeWorkerMessages(
        tables, ServerConfig("sgd", 0.1f), area_bytes,
        [&](Transport& worker) { worker.Send(1, kTagPull, PullFrame(42, place, keys)); }, transports);
    keep_area->assign({(*transports)[2].get()});
    if (error.empty()) {
      EXPECT_TRUE((*transports)[2]->TryRecv(1, kTagPullReply, note));
    }
    return error;
  };
  std::vector<Transport*> worker;
  std::vector<std::unique_ptr<Transport>> transports;
  Message note;

  // A place that holds the reply: the frame is there, the note says so.
  ASSERT_EQ(serve(ReplyPlace{4096, reply}, &note, &worker, &transports), "");
  FrameReader in(note.data, "note");
  const auto done = in.Get<FrameHeader>();
  EXPECT_EQ(done.request, 42u);
  EXPECT_EQ(done.step, kReplyPlaced);
  EXPECT_EQ(in.Get<std::uint64_t>(), reply);
  const SharedArea area = worker[0]->OwnArea();
  FrameReader placed(area.data + 4096, reply, "placed reply");
  EXPECT_EQ(placed.Get<FrameHeader>().request, 42u);
  const auto section = placed.Get<SectionHeader>();
  EXPECT_EQ(section.n, keys.size());
  const Real* rows = placed.GetArray<Real>(keys.size() * 4);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(std::vector<Real>(rows + i * 4, rows + i * 4 + 4), Init(tables[0], keys[i])) << i;
  }

  // No place: a reply message with the rows.
  ASSERT_EQ(serve(ReplyPlace{0, 0}, &note, &worker, &transports), "");
  EXPECT_EQ(note.data.size(), reply);

  // Places the server must refuse.
  EXPECT_NE(serve(ReplyPlace{4096, reply - 8}, &note, &worker, &transports).find("offers a place of 64 bytes for a reply of 72"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{area_bytes - 64, reply}, &note, &worker, &transports).find("of its shared area"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{~std::uint64_t{0} - 8, reply}, &note, &worker, &transports).find("pull from rank 2 offers"),
            std::string::npos);
  EXPECT_NE(serve(ReplyPlace{4100, reply}, &note, &worker, &transports).find("at offset 4100"), std::string::npos);
}

TEST(PsClientTest, DenseBlockIsPulledWholeForAnyBatch) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> one = {MakeKey(kFieldItem, 3)};
  ParamBuffers rows;
  std::uint64_t bytes_after_empty = 1;
  RunWithServers(3, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
    ps.Wait(ps.Pull(one, &rows));
    // An empty batch pulls nothing at all (not even the dense block) and is
    // done at once.
    const std::uint64_t before = ps.pulled_bytes();
    ParamBuffers empty;
    ps.Wait(ps.Pull({}, &empty));
    bytes_after_empty = ps.pulled_bytes() - before;
  });
  ASSERT_EQ(rows.storage[kDense].size(), 12u);
  EXPECT_EQ(rows.view[kDense].rows, 3);
  ExpectInitialRows(rows, tables, one);
  // 10 floats of the block, then the zero tail of its last row.
  EXPECT_EQ(rows.storage[kDense][10], 0.0f);
  EXPECT_EQ(rows.storage[kDense][11], 0.0f);
  EXPECT_EQ(bytes_after_empty, 0u);
}

TEST(PsClientTest, SgdPushWithLearningRateOneSubtractsTheGradient) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  const std::vector<Key> some(keys.begin(), keys.begin() + 7);
  const ParamBuffers g = Gradients(tables, keys, 0);
  const ParamBuffers h = Gradients(tables, some, 1);
  ParamBuffers before, after;
  int in_flight_after_wait = -1;
  RunWithServers(2, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
    ps.Wait(ps.Pull(keys, &before));
    ps.Push(keys, g);
    ps.Push(some, h);
    ps.WaitPushes(0);
    in_flight_after_wait = ps.pushes_in_flight();
    ps.Wait(ps.Pull(keys, &after));
  });
  ExpectInitialRows(before, tables, keys);
  EXPECT_EQ(in_flight_after_wait, 0);
  for (std::size_t t = 0; t < tables.size(); ++t) {
    for (std::size_t i = 0; i < RowsOf(tables[t], keys); ++i) {
      std::vector<Real> expected = RowOf(before, tables, t, i);
      const std::vector<Real> gi = RowOf(g, tables, t, i);
      for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
      // The second push touched the first 7 keys and, as every non-empty
      // push does, the whole dense block.
      if (i < RowsOf(tables[t], some)) {
        const std::vector<Real> hi = RowOf(h, tables, t, i);
        for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= hi[j];
      }
      EXPECT_EQ(RowOf(after, tables, t, i), expected) << "table " << t << " row " << i;
    }
  }
}

// A push carries the job's global step to the servers, whose Adam corrects
// by it (ps/optimizer.h): each row ends as the optimizer's update at that
// step of its initial values.
TEST(PsClientTest, PushCarriesTheGlobalStepToAdam) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  const ParamBuffers g = Gradients(tables, keys, 0);
  constexpr std::uint64_t kStep = 5000;
  ParamBuffers before, after;
  RunWithServers(2, tables, ServerConfig("adam", 0.01f), [&](PsClient& ps) {
    ps.Wait(ps.Pull(keys, &before));
    ps.Push(keys, g, kStep);
    ps.WaitPushes(0);
    ps.Wait(ps.Pull(keys, &after));
  });
  OptimizerConfig adam;
  adam.name = "adam";
  adam.lr = 0.01f;
  const auto opt = MakeOptimizer(adam);
  int at_step_differs = 0;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    for (std::size_t i = 0; i < RowsOf(tables[t], keys); ++i) {
      std::vector<Real> expected = RowOf(before, tables, t, i);
      const int width = static_cast<int>(expected.size());
      std::vector<Real> per_row = expected;
      std::vector<Real> state(static_cast<std::size_t>(opt->StateSize(width))), state0 = state;
      const std::vector<Real> gi = RowOf(g, tables, t, i);
      opt->Update(expected.data(), state.data(), gi.data(), width, kStep);
      opt->Update(per_row.data(), state0.data(), gi.data(), width, 0);
      EXPECT_EQ(RowOf(after, tables, t, i), expected) << "table " << t << " row " << i;
      if (per_row != expected) ++at_step_differs;
    }
  }
  EXPECT_GT(at_step_differs, 0) << "the step must change the update for this test to mean anything";
}

TEST(PsClientTest, StalenessWindowBoundsPushesInFlight) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  constexpr int kPushes = 6;
  std::vector<int> in_flight;
  ParamBuffers before, after;
  std::vector<ParamBuffers> grads;
  for (int p = 0; p < kPushes; ++p) grads.push_back(Gradients(tables, keys, p));
  RunWithServers(3, tables, ServerConfig("sgd", 1.0f), [&](PsClient& ps) {
    ps.Wait(ps.Pull(keys, &before));
    in_flight.push_back(ps.pushes_in_flight());
    // Acks are only taken in while waiting, so every push counts until then.
    for (int p = 0; p < kPushes; ++p) ps.Push(keys, grads[static_cast<std::size_t>(p)]);
    in_flight.push_back(ps.pushes_in_flight());
    ps.WaitPushes(2);
    in_flight.push_back(ps.pushes_in_flight());
    ps.WaitPushes(0);
    in_flight.push_back(ps.pushes_in_flight());
    ps.WaitPushes(0);  // nothing in flight: returns at once
    in_flight.push_back(ps.pushes_in_flight());
    ps.Wait(ps.Pull(keys, &after));
  });
  ASSERT_EQ(in_flight.size(), 5u);
  EXPECT_EQ(in_flight[0], 0);
  EXPECT_EQ(in_flight[1], kPushes);
  EXPECT_LE(in_flight[2], 2);
  EXPECT_EQ(in_flight[3], 0);
  EXPECT_EQ(in_flight[4], 0);
  // Applied in order, each exactly once.
  for (std::size_t t = 0; t < tables.size(); ++t) {
    for (std::size_t i = 0; i < RowsOf(tables[t], keys); ++i) {
      std::vector<Real> expected = RowOf(before, tables, t, i);
      for (const ParamBuffers& g : grads) {
        const std::vector<Real> gi = RowOf(g, tables, t, i);
        for (std::size_t j = 0; j < expected.size(); ++j) expected[j] -= gi[j];
      }
      EXPECT_EQ(RowOf(after, tables, t, i), expected) << "table " << t << " row " << i;
    }
  }
}

// --stall-timeout inside the worker: a wait on a server that never answers
// throws StallError naming the worker's rank and that server's, and not the
// server that did answer; the wait calls its keep-alive hook meanwhile.
TEST(PsClientTest, WaitOnASilentServerThrowsStallErrorNamingIt) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  const Topology topology(4, 2);  // coordinator 0, servers 1 and 2, worker 3
  std::string pull_error, push_error;
  int keep_alive_calls = 0;
  RunWithDeadline(4, [&](int rank, Transport& t) {
    switch (rank) {
      case 0: {  // a minimal coordinator for the one real server (rank 1)
        SetupMessage setup;
        setup.tables = tables;
        SendControl(t, 1, kTagSetup, setup);
        t.Recv(3, kTagClientDone);
        Command stop;
        stop.kind = Command::kStop;
        SendControl(t, 1, kTagCommand, stop);
        break;
      }
      case 1:
        RunServer(t, topology, ServerConfig("sgd", 1.0f));
        break;
      case 2:  // the silent server: receives nothing, answers nothing
        t.Recv(3, kTagClientDone);
        break;
      default: {
        PsClient ps(&t, topology, tables, /*send_empty=*/false);
        ps.SetStallTimeout(0.3, [&] { ++keep_alive_calls; });
        ParamBuffers rows;
        try {
          ps.Wait(ps.Pull(keys, &rows));
        } catch (const StallError& e) {
          pull_error = e.what();
        }
        try {
          ps.Push(keys, Gradients(tables, keys, 0));
          ps.WaitPushes(0);
        } catch (const StallError& e) {
          push_error = e.what();
        }
        t.Send(0, kTagClientDone, Bytes());
        t.Send(2, kTagClientDone, Bytes());
        break;
      }
    }
  });
  for (const std::string& error : {pull_error, push_error}) {
    EXPECT_NE(error.find("rank 3 (worker 0) waited"), std::string::npos) << error;
    EXPECT_NE(error.find("for a reply from rank 2 (server 1) (--stall-timeout 0.3)"), std::string::npos) << error;
    EXPECT_EQ(error.find("rank 1 (server 0)"), std::string::npos) << error;
  }
  EXPECT_GT(keep_alive_calls, 0);
}

TEST(PsClientTest, AdamTrajectoryDoesNotDependOnTheNumberOfServers) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<Key> keys = Keys();
  std::vector<std::vector<std::vector<Real>>> finals;  // per server count: storage
  for (int servers : {1, 3}) {
    ParamBuffers rows;
    RunWithServers(servers, tables, ServerConfig("adam", 0.05f), [&](PsClient& ps) {
      for (int step = 0; step < 5; ++step) {
        // Overlapping subsets, so rows see different numbers of updates.
        const std::vector<Key> batch(keys.begin() + step * 3, keys.begin() + step * 3 + 20);
        ps.Wait(ps.Pull(batch, &rows));
        ps.Push(batch, Gradients(tables, batch, step));
        ps.WaitPushes(0);
      }
      ps.Wait(ps.Pull(keys, &rows));
    });
    finals.push_back(rows.storage);
  }
  ASSERT_EQ(finals.size(), 2u);
  EXPECT_EQ(finals[0], finals[1]);
  // And the rows did move.
  EXPECT_NE(finals[0][0][0], Init(tables[0], keys[0])[0]);
}

// ---------------------------------------------------------------------------
// Whole jobs: RunRank on every rank

Config JobConfig(std::vector<std::string> extra) {
  std::vector<std::string> args = {"recsys_worker", "--users", "200", "--items", "150", "--interactions-per-user",
                                   "12", "--epochs", "2", "--dim", "8"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const ParsedArgs parsed = ParseArgs(static_cast<int>(argv.size()), argv.data());
  EXPECT_FALSE(parsed.exit_now);
  return parsed.config;
}

std::vector<EpochResult> RunJob(int ranks, const Config& config, std::size_t area_bytes = kDefaultSharedAreaBytes) {
  std::vector<EpochResult> results;
  RunWithDeadline(
      ranks,
      [&](int rank, Transport& t) {
        std::vector<EpochResult> r = RunRank(t, config);
        if (rank == 0) {
          results = std::move(r);
        } else {
          EXPECT_TRUE(r.empty()) << "rank " << rank;
        }
      },
      area_bytes);
  return results;
}

// Bit-identical losses and metrics, epoch by epoch.
void ExpectSameResults(const std::vector<EpochResult>& a, const std::vector<EpochResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t e = 0; e < a.size(); ++e) {
    SCOPED_TRACE("epoch " + std::to_string(a[e].epoch));
    EXPECT_EQ(a[e].epoch, b[e].epoch);
    EXPECT_EQ(a[e].examples, b[e].examples);
    EXPECT_EQ(a[e].loss, b[e].loss);
    EXPECT_EQ(a[e].metrics.users, b[e].metrics.users);
    EXPECT_EQ(a[e].metrics.ks, b[e].metrics.ks);
    EXPECT_EQ(a[e].metrics.hits, b[e].metrics.hits);
    EXPECT_EQ(a[e].metrics.ndcg, b[e].metrics.ndcg);
  }
}

// Results every sane run has: 2 epochs, all 200 users evaluated, 11 training
// positives per user with 4 negatives each, a finite loss, metrics in range.
void ExpectSaneResults(const std::vector<EpochResult>& results) {
  ASSERT_EQ(results.size(), 2u);
  for (std::size_t e = 0; e < results.size(); ++e) {
    const EpochResult& r = results[e];
    SCOPED_TRACE("epoch " + std::to_string(r.epoch));
    EXPECT_EQ(r.epoch, static_cast<int>(e) + 1);
    EXPECT_EQ(r.metrics.users, 200);
    EXPECT_EQ(r.examples, 200u * 11 * 5);
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_GT(r.loss, 0.0);
    EXPECT_LT(r.loss, 1.0);  // BCE starts near ln 2
    for (std::size_t k = 0; k < r.metrics.ks.size(); ++k) {
      EXPECT_GE(r.metrics.HitRatio(k), 0.0);
      EXPECT_LE(r.metrics.HitRatio(k), 1.0);
      EXPECT_LE(r.metrics.Ndcg(k), r.metrics.HitRatio(k));  // each hit's gain is at most 1
    }
    EXPECT_GT(r.totals.batches, 0u);
    EXPECT_GT(r.pulled_bytes, 0u);
    EXPECT_GT(r.pushed_bytes, 0u);
  }
}

TEST(LocalJobTest, SyncRunsAreDeterministic) {
  const Config config = JobConfig({"--sync", "--servers", "1"});
  const std::vector<EpochResult> first = RunJob(4, config);
  const std::vector<EpochResult> second = RunJob(4, config);
  ExpectSaneResults(first);
  ExpectSameResults(first, second);
  // It learns: the second epoch's loss is lower.
  ASSERT_EQ(first.size(), 2u);
  EXPECT_LT(first[1].loss, first[0].loss);
}

// Pull replies and pushes through the workers' shared areas (the default
// here: batches of the defaults are well above PsClient::kMinPlacedBytes)
// give a --sync job exactly the results of messages (no areas), for one
// worker and for two.
TEST(LocalJobTest, SyncResultsAreTheSameThroughSharedAreasAndMessages) {
  testing_util::TempDir dir("recsys_area_job");
  // Sums a counter over the servers' records of every epoch in a metrics file.
  const auto total = [](const std::string& path, const std::string& field) {
    const std::string text = testing_util::ReadAll(path);
    std::uint64_t sum = 0;
    const std::string needle = "\"" + field + "\":";
    EXPECT_NE(text.find(needle), std::string::npos) << path << " has no " << field;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      sum += std::stoull(text.substr(at + needle.size()));
    }
    return sum;
  };
  for (int workers : {1, 2}) {
    SCOPED_TRACE(std::to_string(workers) + " workers");
    const std::string area_out = dir.path() + "/area" + std::to_string(workers) + ".jsonl";
    const std::string msg_out = dir.path() + "/msg" + std::to_string(workers) + ".jsonl";
    // Batches with keys enough for placed requests (above 4 KiB: 512 keys),
    // which lockstep servers queue with their blocks held.
    const auto config = [&](const std::string& out) {
      Config c = JobConfig({"--sync", "--servers", "1", "--batch-size", "2048", "--metrics-out", out});
      c.users = 1500;
      c.items = 1000;
      return c;
    };
    const std::vector<EpochResult> area = RunJob(2 + workers, config(area_out));
    const std::vector<EpochResult> messages = RunJob(2 + workers, config(msg_out), 0);
    EXPECT_GT(total(area_out, "pull_replies_placed"), 0u);
    EXPECT_GT(total(area_out, "pushes_placed"), 0u);
    EXPECT_GT(total(area_out, "pull_requests_placed"), 0u);
    EXPECT_GT(total(msg_out, "push_requests"), 0u);
    EXPECT_EQ(total(msg_out, "pull_replies_placed"), 0u);
    EXPECT_EQ(total(msg_out, "pushes_placed"), 0u);
    EXPECT_EQ(total(msg_out, "pull_requests_placed"), 0u);
    ASSERT_EQ(area.size(), 2u);
    ExpectSameResults(area, messages);
  }
}

// The key property of the design: with --sync, the number of servers does
// not change a single bit of the results.
TEST(LocalJobTest, SyncResultsDoNotDependOnTheNumberOfServers) {
  // The defaults (FM, BCE, Adam), and MF with BPR, AdaGrad and batches small
  // enough that the two workers' step counts differ (empty lockstep steps).
  const std::vector<std::vector<std::string>> variants = {
      {}, {"--model", "mf", "--loss", "bpr", "--optimizer", "adagrad", "--lr", "0.05", "--batch-size", "100"}};
  for (const auto& variant : variants) {
    SCOPED_TRACE(variant.empty() ? "defaults" : "mf/bpr/adagrad");
    std::vector<std::string> one_server = {"--sync", "--servers", "1"};
    std::vector<std::string> three_servers = {"--sync", "--servers", "3"};
    one_server.insert(one_server.end(), variant.begin(), variant.end());
    three_servers.insert(three_servers.end(), variant.begin(), variant.end());
    const std::vector<EpochResult> one = RunJob(1 + 1 + 2, JobConfig(one_server));
    const std::vector<EpochResult> three = RunJob(1 + 3 + 2, JobConfig(three_servers));
    ASSERT_EQ(one.size(), 2u);
    EXPECT_EQ(one[0].metrics.users, 200);
    EXPECT_TRUE(std::isfinite(one[1].loss));
    ExpectSameResults(one, three);
  }
}

// With three or more workers the coordinator's sums over workers (loss,
// NDCG) must be added in a fixed order: floating-point addition is not
// associative, and the order in which reports arrive varies from run to run.
TEST(LocalJobTest, SyncResultsWithThreeWorkersAreReproducible) {
  const std::vector<EpochResult> first = RunJob(1 + 1 + 3, JobConfig({"--sync", "--servers", "1", "--epochs", "3"}));
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].metrics.users, 200);
  for (int run = 0; run < 3; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    ExpectSameResults(first, RunJob(1 + 2 + 3, JobConfig({"--sync", "--servers", "2", "--epochs", "3"})));
  }
}

TEST(LocalJobTest, AsyncRunCompletesAndEvaluatesEveryUser) {
  const std::vector<EpochResult> results = RunJob(1 + 2 + 2, JobConfig({"--servers", "2", "--staleness", "2"}));
  ExpectSaneResults(results);
}

TEST(LocalJobTest, ReportsEveryCutOff) {
  const std::vector<EpochResult> results = RunJob(5, JobConfig({"--topk", "10,5", "--servers", "2"}));
  ExpectSaneResults(results);
  for (const EpochResult& r : results) {
    ASSERT_EQ(r.metrics.ks, (std::vector<int>{5, 10}));
    ASSERT_EQ(r.metrics.hits.size(), 2u);
    EXPECT_LE(r.metrics.hits[0], r.metrics.hits[1]);
    EXPECT_LE(r.metrics.ndcg[0], r.metrics.ndcg[1]);
  }
}

TEST(LocalJobTest, FullRankingIsNoEasierThanSampled) {
  const std::vector<EpochResult> sampled = RunJob(4, JobConfig({"--sync", "--servers", "1", "--topk", "5,10"}));
  const std::vector<EpochResult> full =
      RunJob(4, JobConfig({"--sync", "--servers", "1", "--topk", "5,10", "--eval-full"}));
  ExpectSaneResults(full);
  ASSERT_EQ(sampled.size(), full.size());
  for (std::size_t e = 0; e < full.size(); ++e) {
    // Evaluation does not touch training.
    EXPECT_EQ(full[e].loss, sampled[e].loss);
    EXPECT_EQ(full[e].metrics.users, sampled[e].metrics.users);
    // The 99 sampled candidates are a subset of the items a user never saw,
    // so no user ranks better against all of them.
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_LE(full[e].metrics.hits[k], sampled[e].metrics.hits[k]);
      EXPECT_LE(full[e].metrics.ndcg[k], sampled[e].metrics.ndcg[k]);
    }
  }
  // With ~138 candidates instead of 99, a model that has learnt little ranks
  // strictly worse somewhere.
  EXPECT_LT(full.back().metrics.ndcg[1], sampled.back().metrics.ndcg[1]);
}

TEST(LocalJobTest, AFailingRankFailsTheJob) {
  // A CSV file that does not exist: every worker throws InputError while
  // reading, and the coordinator and servers, waiting, are released.
  const Config config = JobConfig({"--format", "csv", "--data", "/nonexistent/recsys/ratings.csv"});
  EXPECT_THROW(RunJob(4, config), InputError);
}

// --cache-rows (worker/row_cache.h) in whole jobs: FM (a dense w0 block)
// and MF (sparse tables only), one server and two.
TEST(LocalJobTest, HotRowCacheServesRowsAndPullsLess) {
  for (const char* model : {"fm", "mf"}) {
    SCOPED_TRACE(model);
    const std::vector<std::string> common = {"--model", model, "--servers", "2", "--staleness", "4"};
    std::vector<std::string> cached = common;
    cached.insert(cached.end(), {"--cache-rows", "400"});  // room for every row
    const std::vector<EpochResult> without = RunJob(1 + 2 + 1, JobConfig(common));
    const std::vector<EpochResult> with = RunJob(1 + 2 + 1, JobConfig(cached));
    ExpectSaneResults(with);
    for (std::size_t e = 0; e < with.size(); ++e) {
      EXPECT_EQ(without[e].totals.cache_lookups, 0u);
      EXPECT_GT(with[e].totals.cache_lookups, 0u);
      EXPECT_GT(with[e].totals.cache_hits, with[e].totals.cache_lookups / 3);
      EXPECT_LE(with[e].totals.cache_hits, with[e].totals.cache_lookups);
      EXPECT_LT(with[e].pulled_bytes, without[e].pulled_bytes);
    }
  }
}

TEST(LocalJobTest, HotRowCacheIsOffWithSync) {
  // With --sync every row must be fresh at every step: the cache is off and
  // the run is bit-identical to one without it.
  const std::vector<EpochResult> plain = RunJob(1 + 1 + 2, JobConfig({"--sync", "--servers", "1"}));
  const std::vector<EpochResult> cached = RunJob(1 + 1 + 2, JobConfig({"--sync", "--servers", "1", "--cache-rows", "50"}));
  ExpectSameResults(plain, cached);
  for (const EpochResult& r : cached) EXPECT_EQ(r.totals.cache_lookups, 0u);
}

}  // namespace
}  // namespace recsys
