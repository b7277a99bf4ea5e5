#include "ps/server_loop.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <thread>
#include <vector>

#include "common/control.h"
#include "common/error.h"
#include "common/log.h"
#include "common/sharding.h"
#include "common/wire.h"
#include "ps/checkpoint.h"
#include "ps/server_shard.h"

namespace recsys {
namespace {

// Test hook for the --stall-timeout watchdog: the rank named by
// RECSYS_DEBUG_STALL_RANK stops making progress (sleeps until killed) at the
// epoch RECSYS_DEBUG_STALL_EPOCH (default 2).
bool DebugStallHere(int rank, int epoch) {
  const char* r = std::getenv("RECSYS_DEBUG_STALL_RANK");
  if (r == nullptr || std::atoi(r) != rank) return false;
  const char* e = std::getenv("RECSYS_DEBUG_STALL_EPOCH");
  return epoch == (e ? std::atoi(e) : 2);
}

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Server {
 public:
  Server(Transport& transport, const Topology& topology, const Config& config, const Setup& setup)
      : transport_(transport),
        topology_(topology),
        sync_(config.sync),
        index_(topology.ServerIndex(transport.rank())),
        shard_(setup.tables, config.seed, OptimizerFromConfig(config)),
        queues_(static_cast<std::size_t>(topology.workers())) {}

  // Loads this server's rows of every shard file of `plan` (written by any
  // number of servers): a row is kept if ShardOf assigns it here. The
  // coordinator verified the files; the checksum is checked again as they
  // are read, in case a file changed since.
  Restored Restore(const RestorePlan& plan) {
    const double start = Seconds();
    Restored report;
    report.server = index_;
    const int servers = topology_.servers();
    for (std::size_t f = 0; f < plan.files.size(); ++f) {
      const std::string path = plan.dir + "/" + plan.files[f];
      const ShardFileInfo info = ReadShardFile(path, [&](const TableSpec& spec, int stride, Key key, const Real* values) {
        if (spec.id >= shard_.num_tables() || spec.width != shard_.width(spec.id)) {
          ThrowInputError(path, 0, Concat("table ", spec.id, " '", spec.name, "' does not match this run's model"));
        }
        if (plan.with_state && stride != shard_.stride(spec.id)) {
          ThrowInputError(path, 0, Concat("table '", spec.name, "' has ", stride - spec.width,
                                          " floats of optimizer state per row; this run's optimizer needs ",
                                          shard_.stride(spec.id) - spec.width));
        }
        if (ShardOf(spec.id, key, servers) != index_) return;
        shard_.Restore(spec.id, key, values, static_cast<std::size_t>(plan.with_state ? stride : spec.width));
        ++report.rows;
      });
      if (f < plan.checksums.size() && info.checksum != plan.checksums[f]) {
        ThrowInputError(path, 0, "changed while it was being restored (checksum differs from the verified one)");
      }
    }
    report.seconds = Seconds() - start;
    return report;
  }

  // Returns false once told to stop.
  bool Handle(Message& m) {
    switch (m.tag) {
      case kTagEvalPull:
        AnswerPull(m);
        return true;
      case kTagPull:
      case kTagPush:
        if (!sync_) {
          if (m.tag == kTagPull) {
            AnswerPull(m);
          } else {
            ApplyPush(m);
          }
        } else {
          const int w = topology_.WorkerIndex(m.source);
          if (w < 0 || w >= topology_.workers()) {
            throw InputError(Concat("pull/push from rank ", m.source, ", which is not a worker"));
          }
          queues_[static_cast<std::size_t>(w)].push_back(std::move(m));
          StepLockstep();
        }
        return true;
      case kTagCommand: {
        const auto command = DecodeControl<Command>(m.data, "command");
        if (command.kind == Command::kReportStats) {
          if (DebugStallHere(transport_.rank(), command.epoch)) {
            RECSYS_LOG("debug: stalling (RECSYS_DEBUG_STALL_RANK)");
            for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
          }
          SendControl(transport_, 0, kTagServerStats, Stats());
          return true;
        }
        if (command.kind == Command::kCheckpoint) {
          // Every push of the epoch has been applied (workers waited for
          // their acks before reporting), so the shard is a consistent state.
          const ShardFileInfo info = WriteShardFile(command.path, index_, shard_);
          CheckpointDone done;
          done.server = index_;
          done.name = info.name;
          done.size = info.size;
          done.checksum = info.checksum;
          done.rows = info.rows;
          SendControl(transport_, 0, kTagCheckpointDone, done);
          return true;
        }
        if (command.kind == Command::kStop) return false;
        throw InputError(Concat("server got unexpected command ", command.kind));
      }
      default:
        throw InputError(Concat("server got a message with unknown tag ", m.tag, " from rank ", m.source));
    }
  }

 private:
  static OptimizerConfig OptimizerFromConfig(const Config& config) {
    OptimizerConfig o;
    o.name = config.optimizer;
    o.lr = config.lr;
    return o;
  }

  // In lockstep: answer pulls at the head of any worker's queue (the state
  // they see is after every push of the previous step), and apply a step's
  // pushes once every worker's head is a push.
  void StepLockstep() {
    for (;;) {
      bool all_push = true;
      for (auto& q : queues_) {
        while (!q.empty() && q.front().tag == kTagPull) {
          AnswerPull(q.front());
          q.pop_front();
        }
        if (q.empty()) all_push = false;
      }
      if (!all_push) return;
      for (auto& q : queues_) {
        ApplyPush(q.front());
        q.pop_front();
      }
    }
  }

  void AnswerPull(const Message& m) {
    FrameReader in(m.data, Concat("pull from rank ", m.source));
    const auto header = in.Get<FrameHeader>();
    // First pass: size the reply exactly, so it is written without regrowth.
    std::size_t bytes = sizeof(FrameHeader);
    std::vector<std::pair<SectionHeader, const Key*>> sections;
    // header.sections comes off the wire: reserve no more than the frame can
    // hold (8 header bytes per section); a count too large for the frame
    // then fails in Get below instead of allocating up to 64 GiB here.
    sections.reserve(std::min<std::size_t>(header.sections, m.data.size() / sizeof(SectionHeader)));
    for (std::uint32_t s = 0; s < header.sections; ++s) {
      const auto sec = in.Get<SectionHeader>();
      CheckTable(sec.table, m.source);
      sections.emplace_back(sec, in.GetArray<Key>(sec.n));
      bytes += sizeof(SectionHeader) + ((std::size_t{sec.n} * shard_.width(sec.table) * sizeof(Real) + 7) & ~std::size_t{7});
    }
    Bytes reply;
    reply.reserve(bytes);
    FrameWriter out(&reply);
    out.Put(header);
    for (const auto& [sec, keys] : sections) {
      out.Put(sec);
      Real* rows = out.Extend<Real>(std::size_t{sec.n} * shard_.width(sec.table));
      shard_.Pull(sec.table, keys, sec.n, rows);
    }
    ++pull_requests_;
    pull_bytes_ += reply.size();
    transport_.Send(m.source, kTagPullReply, std::move(reply));
  }

  void ApplyPush(const Message& m) {
    FrameReader in(m.data, Concat("push from rank ", m.source));
    const auto header = in.Get<FrameHeader>();
    for (std::uint32_t s = 0; s < header.sections; ++s) {
      const auto sec = in.Get<SectionHeader>();
      CheckTable(sec.table, m.source);
      const Key* keys = in.GetArray<Key>(sec.n);
      const Real* grads = in.GetArray<Real>(std::size_t{sec.n} * shard_.width(sec.table));
      shard_.Push(sec.table, keys, sec.n, grads);
    }
    ++push_requests_;
    push_bytes_ += m.data.size();
    Bytes ack;
    FrameWriter out(&ack);
    out.Put(header.request);
    transport_.Send(m.source, kTagPushAck, std::move(ack));
  }

  void CheckTable(std::uint32_t table, int source) const {
    if (table >= shard_.num_tables()) {
      throw InputError(Concat("rank ", source, " addressed table ", table, " but the model has ", shard_.num_tables()));
    }
  }

  ServerStats Stats() const {
    ServerStats s;
    s.rank = transport_.rank();
    s.keys = shard_.total_rows();
    s.table_bytes = shard_.total_bytes();
    s.rss_bytes = PeakRssBytes();
    s.pull_requests = pull_requests_;
    s.push_requests = push_requests_;
    s.pull_bytes = pull_bytes_;
    s.push_bytes = push_bytes_;
    s.cpu_seconds = CpuSeconds();
    return s;
  }

  // Constant after construction.
  Transport& transport_;
  const Topology& topology_;
  const bool sync_;
  const int index_;  // server index, 0..servers-1

  ServerShard shard_;
  // --sync only: messages of each worker not yet processed, in arrival order.
  std::vector<std::deque<Message>> queues_;
  std::uint64_t pull_requests_ = 0;
  std::uint64_t push_requests_ = 0;
  std::uint64_t pull_bytes_ = 0;
  std::uint64_t push_bytes_ = 0;
};

}  // namespace

void RunServer(Transport& transport, const Topology& topology, const Config& config) {
  const auto setup = RecvControl<Setup>(transport, 0, kTagSetup);
  Server server(transport, topology, config, setup);
  if (!setup.restore.dir.empty()) SendControl(transport, 0, kTagRestored, server.Restore(setup.restore));
  Backoff backoff;
  Message m;
  for (;;) {
    if (!transport.TryRecv(Transport::kAnySource, Transport::kAnyTag, &m)) {
      backoff.Wait();
      continue;
    }
    backoff.Reset();
    if (!server.Handle(m)) break;
  }
  transport.FlushSends();
}

}  // namespace recsys
