#include "ps/server_loop.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <optional>
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

// Test hook for the workers' wait watchdog (PsClient, --stall-timeout): the
// server rank named by RECSYS_DEBUG_MUTE_RANK stops answering (sleeps until
// the job is brought down) at its RECSYS_DEBUG_MUTE_AFTER-th pull or push
// (default 20), while the workers wait for its replies.
void MaybeDebugMute(int rank) {
  static const char* const r = std::getenv("RECSYS_DEBUG_MUTE_RANK");
  if (r == nullptr || std::atoi(r) != rank) return;
  static const char* const after = std::getenv("RECSYS_DEBUG_MUTE_AFTER");
  static long requests = 0;
  if (++requests < (after ? std::atol(after) : 20)) return;
  RECSYS_LOG("debug: no longer answering pulls and pushes (RECSYS_DEBUG_MUTE_RANK)");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// Keys of a pull served at a time, counted over all the pull's tables.
// Between slices the server lets MPI move the replies it has sent: Open MPI
// moves a large message only while its sender is inside an MPI call, so
// without this a reply waited until the whole next request had been served
// (README "Performance", session 9).
constexpr std::size_t kSliceKeys = 2048;

class Server {
 public:
  Server(Transport& transport, const Topology& topology, const Config& config, const Setup& setup)
      : transport_(transport),
        topology_(topology),
        sync_(config.sync),
        index_(topology.ServerIndex(transport.rank())),
        shard_(setup.tables, config.seed, OptimizerFromConfig(config), PolicyFromConfig(config, transport.rank())),
        queues_(static_cast<std::size_t>(topology.workers())) {
    // Training goes on after the restored checkpoint's epoch (or at 1).
    shard_.SetEpoch(static_cast<std::uint32_t>(setup.restore.epoch + 1));
  }

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
      const auto check_table = [&](const TableSpec& spec) {
        if (spec.id >= shard_.num_tables() || spec.width != shard_.width(spec.id)) {
          ThrowInputError(path, 0, Concat("table ", spec.id, " '", spec.name, "' does not match this run's model"));
        }
      };
      // Epochs recorded after the checkpoint's own are corrupt input.
      const auto check_epoch = [&](const TableSpec& spec, Key key, std::uint32_t epoch) {
        if (plan.with_state && epoch > static_cast<std::uint32_t>(plan.epoch)) {
          ThrowInputError(path, 0, Concat("key ", key, " of table '", spec.name, "' was last touched in epoch ", epoch,
                                          ", after the checkpoint's epoch ", plan.epoch));
        }
      };
      const auto rows = [&](const TableSpec& spec, int stride, Key key, const Real* values, std::uint32_t epoch,
                            bool has_epochs) {
        check_table(spec);
        if (plan.with_state && stride != shard_.stride(spec.id)) {
          ThrowInputError(path, 0, Concat("table '", spec.name, "' has ", stride - spec.width,
                                          " floats of optimizer state per row; this run's optimizer needs ",
                                          shard_.stride(spec.id) - spec.width));
        }
        check_epoch(spec, key, epoch);
        if (ShardOf(spec.id, key, servers) != index_) return;
        // A resumed row keeps its last touch; a row from a checkpoint
        // without epochs counts as touched at the checkpoint's epoch, and
        // --init-from starts every row afresh at epoch 0.
        const std::uint32_t touched =
            plan.with_state ? (has_epochs ? epoch : static_cast<std::uint32_t>(plan.epoch)) : 0;
        shard_.Restore(spec.id, key, values, static_cast<std::size_t>(plan.with_state ? stride : spec.width), touched);
        ++report.rows;
      };
      const auto pending = [&](const TableSpec& spec, Key key, int count, std::uint32_t epoch) {
        check_table(spec);
        check_epoch(spec, key, epoch);
        // Admission counts are training state: --init-from starts without.
        if (!plan.with_state || ShardOf(spec.id, key, servers) != index_) return;
        shard_.RestorePending(spec.id, key, count, epoch);
      };
      const ShardFileInfo info = ReadShardFile(path, rows, pending);
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
        AnswerPull(m, /*touch=*/false);
        return true;
      case kTagPull:
      case kTagPush:
      case kTagPushPlaced:
        MaybeDebugMute(transport_.rank());
        if (!sync_) {
          if (m.tag == kTagPull) {
            AnswerPull(m, /*touch=*/true);
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
          // The epoch's end: expire old rows, then report what is left;
          // the next training is of the next epoch.
          const std::size_t expired = shard_.EndEpoch(static_cast<std::uint32_t>(command.epoch));
          shard_.SetEpoch(static_cast<std::uint32_t>(command.epoch + 1));
          SendControl(transport_, 0, kTagServerStats, Stats(expired));
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
    o.dense_lr = config.dense_lr;
    o.adam_mode = config.adam_mode;
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
          AnswerPull(q.front(), /*touch=*/true);
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

  // Training pulls (touch) mark the rows touched; evaluation pulls do not.
  void AnswerPull(const Message& m, bool touch) {
    FrameReader in(m.data, "pull", m.source);
    const auto header = in.Get<FrameHeader>();
    const auto place = in.Get<ReplyPlace>();
    // The sections: in the message, or (kRequestPlaced) where the worker
    // wrote them in its shared area, which it keeps until our reply.
    std::optional<FrameReader> placed_sections;
    if (header.step != 0 && header.step != kRequestPlaced) {
      throw InputError(Concat("pull from rank ", m.source, " has flags ", header.step, " (expected 0 or ",
                              kRequestPlaced, ")"));
    }
    // At most one section per table: a larger count comes off the wire.
    if (header.sections > shard_.num_tables()) {
      throw InputError(Concat("pull from rank ", m.source, " has ", header.sections, " sections; this server holds ",
                              shard_.num_tables(), " tables"));
    }
    if (header.step == kRequestPlaced) {
      const auto at = in.Get<ReplyPlace>();
      if (!in.done()) throw InputError(Concat("placed pull from rank ", m.source, " has ", m.data.size(), " bytes"));
      const SharedArea area = transport_.PeerArea(m.source);
      if (area.empty()) {
        // A worker places requests only for a server that has written into
        // its area, so this server could map it then.
        throw InputError(Concat("pull from rank ", m.source, " has its keys in its shared area, which this server "
                                "cannot map"));
      }
      if (!at.InsideOf(area.size)) {
        throw InputError(Concat("pull from rank ", m.source, " has its keys in ", at.bytes, " bytes at offset ",
                                at.offset, " of its shared area of ", area.size, " bytes"));
      }
      // The reply would overwrite keys not yet read (both places inside).
      if (place.bytes > 0 && place.InsideOf(area.size) && place.offset < at.offset + at.bytes &&
          at.offset < place.offset + place.bytes) {
        throw InputError(Concat("pull from rank ", m.source, " offers a place for its reply that overlaps its keys"));
      }
      std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the worker's release
      placed_sections.emplace(area.data + at.offset, static_cast<std::size_t>(at.bytes), "placed pull", m.source);
      ++placed_requests_;
    }
    FrameReader& sections_in = placed_sections ? *placed_sections : in;
    // First pass: size the reply exactly, so it is written without regrowth.
    std::size_t bytes = sizeof(FrameHeader);
    std::vector<std::pair<SectionHeader, const Key*>> sections;
    sections.reserve(header.sections);  // at most the tables (checked above)
    for (std::uint32_t s = 0; s < header.sections; ++s) {
      const auto sec = sections_in.Get<SectionHeader>();
      CheckTable(sec.table, m.source);
      sections.emplace_back(sec, sections_in.GetArray<Key>(sec.n));
      bytes += PullReplySectionBytes(sec.n, static_cast<std::size_t>(shard_.width(sec.table)));
    }
    // The reply goes where the worker offered (its shared area, on this
    // node), or into a message.
    char* placed = nullptr;
    if (place.bytes > 0) {
      const SharedArea area = transport_.PeerArea(m.source);
      if (!area.empty()) {
        if (!place.InsideOf(area.size)) {
          throw InputError(Concat("pull from rank ", m.source, " offers ", place.bytes, " bytes at offset ",
                                  place.offset, " of its shared area of ", area.size, " bytes"));
        }
        if (place.bytes < bytes) {
          throw InputError(Concat("pull from rank ", m.source, " offers a place of ", place.bytes,
                                  " bytes for a reply of ", bytes));
        }
        placed = area.data + place.offset;
      }
    }
    Bytes reply;
    if (placed == nullptr) {
      reply = transport_.SpareBuffer();
      reply.reserve(bytes);
    }
    FrameWriter out = placed != nullptr ? FrameWriter(placed, bytes) : FrameWriter(&reply);
    FrameHeader reply_header = header;
    reply_header.step = 0;  // a reply's own flag (kReplyPlaced goes only in the note)
    out.Put(reply_header);
    std::size_t served = 0;  // keys served since MPI last had a turn
    for (const auto& [sec, keys] : sections) {
      out.Put(sec);
      const std::size_t width = static_cast<std::size_t>(shard_.width(sec.table));
      Real* rows = out.Extend<Real>(std::size_t{sec.n} * width);
      for (std::size_t at = 0; at < sec.n;) {
        if (served == kSliceKeys) {
          transport_.SendsInFlight();  // moves earlier replies along
          served = 0;
        }
        const std::size_t n = std::min(kSliceKeys - served, sec.n - at);
        shard_.Pull(sec.table, keys + at, n, rows + at * width, touch);
        at += n;
        served += n;
      }
    }
    ++pull_requests_;
    pull_bytes_ += out.size();
    if (placed != nullptr) {
      // The rows are in the worker's memory; the message says so. (The
      // message's own synchronisation makes the writes visible to the
      // worker; the fence states the order, common/transport.h.)
      std::atomic_thread_fence(std::memory_order_release);
      FrameHeader done = reply_header;
      done.step = kReplyPlaced;
      Bytes note;
      FrameWriter note_out(&note);
      note_out.Put(done);
      note_out.Put(static_cast<std::uint64_t>(out.size()));
      ++placed_replies_;
      transport_.PlacedInto(m.source, out.size());
      transport_.Send(m.source, kTagPullReply, std::move(note));
      return;
    }
    transport_.Send(m.source, kTagPullReply, std::move(reply));
  }

  void ApplyPush(const Message& m) {
    // The frame: the message, or (kTagPushPlaced) what the worker wrote
    // into its shared area at the place the message names.
    const char* frame = m.data.data();
    std::size_t frame_bytes = m.data.size();
    if (m.tag == kTagPushPlaced) {
      FrameReader note(m.data, "placed push", m.source);
      const auto place = note.Get<ReplyPlace>();
      if (!note.done()) throw InputError(Concat("placed push from rank ", m.source, " has ", m.data.size(), " bytes"));
      const SharedArea area = transport_.PeerArea(m.source);
      if (area.empty()) {
        // A worker places pushes only for a server that has written into its
        // area, so this server could map it then.
        throw InputError(Concat("push from rank ", m.source, " is in its shared area, which this server cannot map"));
      }
      if (!place.InsideOf(area.size) || place.bytes < sizeof(FrameHeader)) {
        throw InputError(Concat("push from rank ", m.source, " is ", place.bytes, " bytes at offset ", place.offset,
                                " of its shared area of ", area.size, " bytes"));
      }
      std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the worker's release
      frame = area.data + place.offset;
      frame_bytes = static_cast<std::size_t>(place.bytes);
    }
    FrameReader in(frame, frame_bytes, "push", m.source);
    const auto header = in.Get<FrameHeader>();
    for (std::uint32_t s = 0; s < header.sections; ++s) {
      const auto sec = in.Get<SectionHeader>();
      CheckTable(sec.table, m.source);
      const Key* keys = in.GetArray<Key>(sec.n);
      const Real* grads = in.GetArray<Real>(std::size_t{sec.n} * shard_.width(sec.table));
      shard_.Push(sec.table, keys, sec.n, grads, header.step);
    }
    ++push_requests_;
    if (m.tag == kTagPushPlaced) {
      ++placed_pushes_;
      // The worker may reuse the block once acked: reads before the ack.
      std::atomic_thread_fence(std::memory_order_release);
    }
    push_bytes_ += frame_bytes;
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

  static ShardPolicy PolicyFromConfig(const Config& config, int rank) {
    ShardPolicy p;
    p.max_bytes = config.max_memory_per_server;
    p.max_rows = config.max_rows_per_server;
    p.evict = config.on_table_full == "evict";
    p.min_count = config.min_count;
    p.expire_after = config.expire_after;
    p.who = Concat("server rank ", rank);
    return p;
  }

  ServerStats Stats(std::size_t expired) const {
    ServerStats s;
    s.rank = transport_.rank();
    s.keys = shard_.total_rows();
    s.table_bytes = shard_.table_bytes();
    s.raw_bytes = shard_.raw_bytes();
    s.admission_bytes = shard_.admission_bytes();
    s.pending_keys = shard_.pending_keys();
    s.rows_expired = expired;
    s.rows_evicted = shard_.rows_evicted();
    s.pushes_dropped = shard_.pushes_dropped();
    s.rss_bytes = CurrentRssBytes();
    s.peak_rss_bytes = PeakRssBytes();
    s.pull_requests = pull_requests_;
    s.pull_replies_placed = placed_replies_;
    s.pushes_placed = placed_pushes_;
    s.pull_requests_placed = placed_requests_;
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
  std::uint64_t placed_replies_ = 0;  // of pull_requests_
  std::uint64_t placed_pushes_ = 0;   // of push_requests_
  std::uint64_t placed_requests_ = 0;  // of pull_requests_: keys read from the worker's area
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
      // A large reply still moving: keep it moving (poll, do not sleep).
      backoff.Wait(/*may_sleep=*/!transport.SendsInFlight());
      continue;
    }
    backoff.Reset();
    if (!server.Handle(m)) break;
  }
  transport.FlushSends();
}

}  // namespace recsys
