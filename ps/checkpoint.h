// Checkpoints: each server writes its shard of every table to one file, the
// coordinator writes a manifest last. A checkpoint is complete only once its
// MANIFEST exists; every file is written to a temporary name, flushed
// (fsync) and renamed, so a crash at any moment leaves the previous
// checkpoint intact.
//
// Layout of DIR (--checkpoint-dir):
//   DIR/LATEST                      "ckpt-<epoch>\n": the newest complete one
//   DIR/ckpt-<epoch>/shard-<i>.bin  server i's rows (any number of servers)
//   DIR/ckpt-<epoch>/MANIFEST       text: version, configuration, results so
//                                   far, and each shard's size and checksum
//
// Shard file (native little-endian), version 2:
//   "RPSSHARD" u32 version u32 num_tables
//   per table: u32 id, u32 name_len, name, i32 width, u8 init, f32 init_scale,
//              i64 dense_size, i32 stride, u64 rows, u8 flags,
//              rows x (u64 key, stride x f32: width weights, optimizer state,
//                      [u32 last-touched epoch if flags & 1]),
//              u64 pending, pending x (u64 key, u32 count, u32 epoch)
//   "RPSEND!!"
// flags bit 0: rows carry their last-touched epoch (--expire-after); pending
// entries are the --min-count counts of keys without a row yet (epoch 0 when
// not tracked). Version 1 (still read) has neither flags nor pending.
//
// A checkpoint is untrusted input: readers bound every count by the bytes the
// file can hold before allocating, reject names that could leave the
// checkpoint directory, and report every problem as InputError naming the
// file and what is wrong.
#ifndef RECSYS_PS_CHECKPOINT_H_
#define RECSYS_PS_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/metrics.h"
#include "common/table_spec.h"
#include "common/types.h"

namespace recsys {

class ServerShard;

constexpr std::uint32_t kCheckpointVersion = 1;  // of the MANIFEST
constexpr std::uint32_t kShardVersion = 2;       // of the shard files (1 is still read)

// A 64-bit checksum of a byte stream (not cryptographic): any change of one
// aligned 8-byte word changes the result, and the length is mixed in.
class Checksum64 {
 public:
  void Update(const void* data, std::size_t n);
  std::uint64_t Value() const;

 private:
  void MixWord(std::uint64_t word);
  std::uint64_t state_ = 0x6a09e667f3bcc908ULL;
  std::uint64_t pending_ = 0;  // bytes of an incomplete word, little-endian
  int pending_bytes_ = 0;
  std::uint64_t length_ = 0;
};

// One shard file as the manifest records it.
struct ShardFileInfo {
  std::string name;  // file name inside the checkpoint folder, no directory
  std::uint64_t size = 0;
  std::uint64_t checksum = 0;
  std::uint64_t rows = 0;
};

// One epoch's results, as the coordinator reported them; a resumed run needs
// them to choose the reported epoch (--validation) over the whole run.
struct EpochSummary {
  int epoch = 0;
  double loss = 0.0;
  std::uint64_t examples = 0;
  double train_seconds = 0.0;
  double eval_seconds = 0.0;
  double samples_per_second = 0.0;
  RankingSums metrics;
  RankingSums validation;
};

struct Manifest {
  std::uint32_t version = kCheckpointVersion;
  int epoch = 0;
  std::string model;
  int servers = 0;
  int workers = 0;
  // Settings a resumed run must share with the run that wrote the
  // checkpoint, as (option, value); see ResumeSettings.
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<TableSpec> tables;
  std::vector<ShardFileInfo> shards;
  std::vector<EpochSummary> results;  // epochs 1..epoch (fewer after early stop)
};

// Receives one row read from a shard file: values has `stride` floats (the
// width weights, then stride - width of optimizer state).
using RowSink = std::function<void(const TableSpec& spec, int stride, Key key, const Real* values)>;
// The same with the row's last-touched epoch (0 if the file does not carry
// epochs, see has_epochs).
using TrackedRowSink = std::function<void(const TableSpec& spec, int stride, Key key, const Real* values,
                                          std::uint32_t epoch, bool has_epochs)>;
// Receives one pending --min-count entry: count in [1, 255].
using PendingSink = std::function<void(const TableSpec& spec, Key key, int count, std::uint32_t epoch)>;

// Writes every row of every table of `shard` to dir/shard-<server>.bin (via a
// temporary name, fsync, rename). Throws InputError naming the file if it
// cannot be written. Returns what the manifest records.
ShardFileInfo WriteShardFile(const std::string& dir, int server, const ServerShard& shard);

// Reads a shard file, checking its structure and bounds, and hands every row
// to `sink` (may be empty: only check). The rows reach `sink` before the
// checksum is known: verify the file first (VerifyCheckpoint) when rows must
// not be used from a corrupted file. Returns the file's size, checksum and
// row count; `tables` gets the specs it holds. Throws InputError naming the
// file and the problem.
ShardFileInfo ReadShardFile(const std::string& path, const RowSink& sink, std::vector<TableSpec>* tables = nullptr);
// The same, with the rows' epochs and the pending counts (either sink may be
// empty). Epochs are at most 2^30, counts in [1, 255], dense blocks have no
// epochs and no pending entries: anything else is an InputError.
ShardFileInfo ReadShardFile(const std::string& path, const TrackedRowSink& rows, const PendingSink& pending,
                            std::vector<TableSpec>* tables = nullptr);

// Manifest as text; WriteManifest writes dir/MANIFEST atomically.
std::string EncodeManifest(const Manifest& manifest);
void WriteManifest(const std::string& dir, const Manifest& manifest);
// Parses dir/MANIFEST; throws InputError naming the file (and line) for a
// missing, truncated, corrupted or malformed manifest, an unknown version,
// or a shard name that is not a plain file name.
Manifest ReadManifest(const std::string& dir);

// The checkpoint folder `path` names: `path` itself if it holds a MANIFEST,
// else the folder named by path/LATEST. Throws InputError if neither.
std::string ResolveCheckpoint(const std::string& path);

// Reads the manifest of checkpoint folder `dir` and checks every shard file
// it lists (present, size, checksum, structure, tables as in the manifest)
// before anything is loaded. Throws InputError naming the file and the problem.
Manifest VerifyCheckpoint(const std::string& dir);

// Writes dir/LATEST naming `name` (atomically).
void WriteLatest(const std::string& dir, const std::string& name);

// Deletes the ckpt-<e> folders of `dir` with e < current_epoch, keeping the
// newest keep - 1 complete ones (the current one counts as the keep-th).
// Folders of later epochs are left alone. Returns the names deleted.
std::vector<std::string> PruneCheckpoints(const std::string& dir, int keep, int current_epoch);

// The settings of `config` that a run resuming a checkpoint must share with
// the run that wrote it, as (option, value). Epochs, servers, workers,
// staleness, output files and the checkpoint options may differ.
std::vector<std::pair<std::string, std::string>> ResumeSettings(const Config& config);

// Throws InputError naming the manifest and every setting of `config` that
// differs from the checkpoint's.
void CheckResumeSettings(const std::string& manifest_path, const Manifest& manifest, const Config& config);

// Throws InputError naming the manifest if `tables` (the model this run
// builds) differ from the checkpoint's in number, name, width or size.
void CheckTables(const std::string& manifest_path, const Manifest& manifest, const std::vector<TableSpec>& tables);

// "ckpt-<epoch>".
std::string CheckpointName(int epoch);

// Writes `contents` to `path` via path.tmp, fsync, rename, and fsyncs the
// folder. Throws InputError naming the file.
void WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace recsys

#endif  // RECSYS_PS_CHECKPOINT_H_
