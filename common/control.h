// Control messages between coordinator, servers and workers, carried with
// Boost.Serialization (binary archives) on their own tags. The hot path
// (pull/push) never goes through here; see wire.h.
#ifndef RECSYS_COMMON_CONTROL_H_
#define RECSYS_COMMON_CONTROL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/table_spec.h"
#include "common/transport.h"

namespace recsys {

enum ControlTag : int {
  kTagHello = 11,        // worker -> coordinator: WorkerHello
  kTagSetup = 12,        // coordinator -> workers and servers: Setup
  kTagCommand = 13,      // coordinator -> workers and servers: Command
  kTagEpochReport = 14,  // worker -> coordinator: EpochReport
  kTagEvalReport = 15,   // worker -> coordinator: EvalReport
  kTagServerStats = 16,  // server -> coordinator: ServerStats
  kTagCheckpointDone = 17,  // server -> coordinator: CheckpointDone
  kTagRestored = 18,        // server -> coordinator: Restored
  kTagProgress = 19,        // worker or server -> coordinator: Progress (watchdog)
};

// What servers load before serving (--resume, --init-from): the shard files
// of a verified checkpoint. Each server reads all of them and keeps the rows
// that ShardOf assigns to it, so any number of servers can restore any
// checkpoint.
struct RestorePlan {
  std::string dir;                 // the ckpt-<epoch> folder; empty: start fresh
  std::vector<std::string> files;  // shard file names inside dir
  std::vector<std::uint64_t> checksums;  // per file, from the verified manifest
  bool with_state = true;  // optimizer state too (--resume); weights only (--init-from)
  // The epoch the checkpoint ends (--resume; 0 otherwise): training goes on
  // with epoch + 1, and rows keep their last-touched epochs (--expire-after).
  std::int32_t epoch = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & dir & files & checksums & with_state & epoch;
  }
};

// What a worker tells the coordinator after reading its partition.
struct WorkerHello {
  std::vector<std::uint64_t> items;  // items it saw, sorted
  std::uint64_t dense_items = 0;     // and the items [0, dense_items) (Dataset::dense_items)
  std::vector<std::uint8_t> user_slot_fields;
  std::vector<std::uint8_t> item_slot_fields;
  std::uint64_t users = 0;
  std::uint64_t users_without_test = 0;
  std::uint64_t train_positives = 0;
  // Ids sharing a key with another id (Dataset::*_id_collisions).
  std::uint64_t user_id_collisions = 0;
  std::uint64_t item_id_collisions = 0;
  std::string id_collision_example;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & items & dense_items & user_slot_fields & item_slot_fields & users & users_without_test & train_positives &
        user_id_collisions & item_id_collisions & id_collision_example;
  }
};

// What every rank needs before training: the agreed item universe and slot
// layout, and the model's tables.
struct Setup {
  // The universe: [0, dense_items) and `items` (sorted, unique, >= dense_items).
  std::vector<std::uint64_t> items;
  std::uint64_t dense_items = 0;
  std::vector<std::uint8_t> slot_field;
  std::vector<TableSpec> tables;
  RestorePlan restore;  // read by servers only

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & items & dense_items & slot_field & tables & restore;
  }
};

struct Command {
  // kCheckpoint (servers): write the shard into folder `path`, reply
  // CheckpointDone.
  enum Kind : std::int32_t { kTrainEpoch = 1, kEvaluate = 2, kStop = 3, kReportStats = 4, kCheckpoint = 5 };
  std::int32_t kind = kStop;
  std::int32_t epoch = 0;
  // kTrainEpoch in --sync mode: every worker runs exactly this many steps
  // (empty ones when its own data is exhausted) so servers can step in lockstep.
  std::int64_t steps = 0;
  std::string path;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & kind & epoch & steps & path;
  }
};

// Sums over one worker's epoch; the coordinator adds them up.
struct EpochReport {
  double loss_sum = 0.0;
  std::uint64_t examples = 0;
  std::uint64_t batches = 0;
  double seconds = 0.0;
  // Where a step's time went (seconds summed over the epoch).
  double sample_seconds = 0.0;
  double pull_wait_seconds = 0.0;
  double compute_seconds = 0.0;
  double push_seconds = 0.0;
  std::uint64_t pulled_bytes = 0;
  std::uint64_t pushed_bytes = 0;
  // --cache-rows: keys the batches looked up, and how many the cache served.
  std::uint64_t cache_lookups = 0;
  std::uint64_t cache_hits = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & loss_sum & examples & batches & seconds & sample_seconds & pull_wait_seconds & compute_seconds &
        push_seconds & pulled_bytes & pushed_bytes & cache_lookups & cache_hits;
  }
};

struct EvalReport {
  RankingSums sums;        // on the test items
  RankingSums validation;  // on the validation items (empty without --validation)
  double seconds = 0.0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & sums & validation & seconds;
  }
};

struct ServerStats {
  std::int32_t rank = 0;
  std::uint64_t keys = 0;
  std::uint64_t table_bytes = 0;
  std::uint64_t rss_bytes = 0;
  std::uint64_t pull_requests = 0;
  std::uint64_t push_requests = 0;
  std::uint64_t pull_bytes = 0;
  std::uint64_t push_bytes = 0;
  double cpu_seconds = 0.0;  // user + system time of the server process so far
  // Large tables (README "Large tables"). table_bytes counts the tables'
  // allocations; raw_bytes what their rows need (key + row + optimizer
  // state); admission_bytes the --min-count counters. rss_bytes is the
  // resident memory now, peak_rss_bytes its peak (VmHWM).
  std::uint64_t peak_rss_bytes = 0;
  std::uint64_t raw_bytes = 0;
  std::uint64_t admission_bytes = 0;
  std::uint64_t pending_keys = 0;    // keys counted by --min-count, without a row yet
  std::uint64_t rows_expired = 0;    // in this epoch (--expire-after)
  std::uint64_t rows_evicted = 0;    // since the start (--on-table-full evict)
  std::uint64_t pushes_dropped = 0;  // pushed rows of keys not yet admitted, since the start
  // Pull replies written into the worker's shared area (Transport::OwnArea)
  // instead of sent; the others of pull_requests went as messages.
  std::uint64_t pull_replies_placed = 0;
  // Pushes read from the worker's shared area (kTagPushPlaced); the others
  // of push_requests came as messages.
  std::uint64_t pushes_placed = 0;
  // Pull requests whose keys were read from the worker's shared area
  // (kRequestPlaced); the others of pull_requests came in their messages.
  std::uint64_t pull_requests_placed = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & rank & keys & table_bytes & rss_bytes & pull_requests & push_requests & pull_bytes & push_bytes &
        cpu_seconds & peak_rss_bytes & raw_bytes & admission_bytes & pending_keys & rows_expired & rows_evicted &
        pushes_dropped & pull_replies_placed & pushes_placed & pull_requests_placed;
  }
};

// A server's reply to kCheckpoint: the shard file it wrote.
struct CheckpointDone {
  std::int32_t server = 0;  // server index
  std::string name;         // file name inside the checkpoint folder
  std::uint64_t size = 0;
  std::uint64_t checksum = 0;
  std::uint64_t rows = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & server & name & size & checksum & rows;
  }
};

// A server's report after loading a RestorePlan.
struct Restored {
  std::int32_t server = 0;
  std::uint64_t rows = 0;  // rows this server kept
  double seconds = 0.0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & server & rows & seconds;
  }
};

// Sent at most about once a second by a rank that is making progress, so the
// coordinator's watchdog (--stall-timeout) can name a rank that is not.
struct Progress {
  std::int32_t epoch = 0;  // 0 while evaluating
  std::int64_t step = 0;   // batches done in this epoch
  // Training loss so far in this epoch, for the live progress line.
  double loss_sum = 0.0;
  std::uint64_t examples = 0;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & epoch & step & loss_sum & examples;
  }
};

// Serialises a control message. Defined for the message types above.
template <typename T>
Bytes EncodeControl(const T& message);
// Parses a control message; throws InputError naming `what` if the bytes
// are not a valid T.
template <typename T>
T DecodeControl(const Bytes& bytes, const std::string& what);

// Convenience: encode and send / receive and decode (blocking, polling).
template <typename T>
void SendControl(Transport& transport, int dest, int tag, const T& message) {
  transport.Send(dest, tag, EncodeControl(message));
}
template <typename T>
T RecvControl(Transport& transport, int source, int tag, int* from = nullptr) {
  Message m = transport.Recv(source, tag);
  if (from) *from = m.source;
  return DecodeControl<T>(m.data, "control message");
}

// Peak resident set size of this process in bytes (VmHWM of
// /proc/self/status, else getrusage's ru_maxrss).
std::uint64_t PeakRssBytes();
// Resident set size of this process now in bytes (VmRSS of
// /proc/self/status; the peak where /proc is not available).
std::uint64_t CurrentRssBytes();
// User plus system CPU time of this process in seconds (getrusage).
double CpuSeconds();

}  // namespace recsys

#endif  // RECSYS_COMMON_CONTROL_H_
