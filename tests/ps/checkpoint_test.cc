#include "ps/checkpoint.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "common/keys.h"
#include "common/transport.h"
#include "ps/optimizer.h"
#include "ps/server_shard.h"
#include "worker/run.h"
#include "tests/file_test_util.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;
using testing_util::ReadAll;
using testing_util::WriteAll;

constexpr std::uint64_t kSeed = 99;

class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("recsys_ckpt_test") {}
};

std::vector<TableSpec> Specs() {
  TableSpec emb;
  emb.id = 0;
  emb.name = "emb";
  emb.width = 5;
  emb.init = InitKind::kNormal;
  emb.init_scale = 0.1f;
  TableSpec dense;
  dense.id = 1;
  dense.name = "tower";
  dense.width = 4;
  dense.init = InitKind::kUniform;
  dense.init_scale = 0.2f;
  dense.dense_size = 10;  // 3 rows, the last half used
  return {emb, dense};
}

OptimizerConfig Adam() {
  OptimizerConfig o;
  o.name = "adam";
  o.lr = 0.01f;
  return o;
}

// A shard with some trained rows in both tables.
std::unique_ptr<ServerShard> TrainedShard(std::uint64_t salt = 0) {
  auto shard = std::make_unique<ServerShard>(Specs(), kSeed, Adam());
  std::vector<Real> grad(5);
  for (std::uint64_t i = 0; i < 40; ++i) {
    const Key key = MakeKey(i % 2 ? kFieldUser : kFieldItem, i * 7 + salt);
    for (int j = 0; j < 5; ++j) grad[static_cast<std::size_t>(j)] = 0.01f * static_cast<float>(i + 1) - 0.003f * j;
    shard->Push(0, &key, 1, grad.data());
  }
  for (std::uint64_t r = 0; r < 3; ++r) {
    const Key key = MakeKey(kFieldDense, r);
    shard->Push(1, &key, 1, grad.data());
  }
  return shard;
}

// Expects InputError whose message contains `part`.
template <typename Fn>
void ExpectInputError(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected InputError containing '" << part << "'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// A complete one-shard checkpoint in dir/ckpt-3, as the coordinator writes it.
Manifest WriteCheckpoint(const std::string& root, const ServerShard& shard) {
  const std::string dir = root + "/" + CheckpointName(3);
  fs::create_directories(dir);
  Manifest m;
  m.epoch = 3;
  m.model = "mf";
  m.servers = 1;
  m.workers = 2;
  m.settings = {{"--dim", "5"}, {"--data", "a path with spaces"}};
  m.tables = Specs();
  m.shards.push_back(WriteShardFile(dir, 0, shard));
  EpochSummary r;
  r.epoch = 3;
  r.loss = 0.1 + 1e-17;
  r.examples = 1234;
  r.metrics = RankingSums({5, 10});
  r.metrics.Add(2);
  r.metrics.Add(7);
  r.validation = RankingSums({5, 10});
  m.results.push_back(r);
  WriteManifest(dir, m);
  WriteLatest(root, CheckpointName(3));
  return m;
}

TEST(Checksum64Test, ChunkingDoesNotMatterAndBytesDo) {
  std::string data(1000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  Checksum64 whole;
  whole.Update(data.data(), data.size());
  for (std::size_t chunk : {1, 3, 7, 8, 13, 999}) {
    Checksum64 parts;
    for (std::size_t i = 0; i < data.size(); i += chunk) parts.Update(data.data() + i, std::min(chunk, data.size() - i));
    EXPECT_EQ(parts.Value(), whole.Value()) << chunk;
  }
  for (std::size_t i : {0, 1, 500, 999}) {
    std::string changed = data;
    changed[i] ^= 1;
    Checksum64 c;
    c.Update(changed.data(), changed.size());
    EXPECT_NE(c.Value(), whole.Value()) << i;
  }
  Checksum64 shorter;
  shorter.Update(data.data(), data.size() - 1);
  EXPECT_NE(shorter.Value(), whole.Value());
}

TEST(CheckpointTest, ShardFileRoundTripsRowsAndOptimizerState) {
  TempDir tmp;
  const auto shard = TrainedShard();
  const ShardFileInfo written = WriteShardFile(tmp.path(), 4, *shard);
  EXPECT_EQ(written.name, "shard-4.bin");
  EXPECT_EQ(written.rows, shard->total_rows());
  EXPECT_FALSE(fs::exists(tmp.path() + "/shard-4.bin.tmp"));

  std::map<std::pair<TableId, Key>, std::vector<Real>> rows;
  std::vector<TableSpec> tables;
  const ShardFileInfo read = ReadShardFile(
      tmp.path() + "/shard-4.bin",
      [&](const TableSpec& spec, int stride, Key key, const Real* values) {
        EXPECT_EQ(stride, shard->stride(spec.id));
        rows[{spec.id, key}] = std::vector<Real>(values, values + stride);
      },
      &tables);
  EXPECT_EQ(read.size, written.size);
  EXPECT_EQ(read.checksum, written.checksum);
  EXPECT_EQ(read.rows, written.rows);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[1].name, "tower");
  EXPECT_EQ(tables[1].dense_size, 10);
  ASSERT_EQ(rows.size(), shard->total_rows());
  for (TableId t = 0; t < 2; ++t) {
    const EmbeddingTable& table = shard->table(t);
    table.ForEach([&](Key key, const Real* row, const Real* state) {
      const auto& got = rows.at({t, key});
      ASSERT_EQ(got.size(), static_cast<std::size_t>(table.stride()));
      const std::size_t width = static_cast<std::size_t>(table.width());
      EXPECT_EQ(std::memcmp(got.data(), row, width * sizeof(Real)), 0) << "table " << t << " key " << key;
      EXPECT_EQ(std::memcmp(got.data() + width, state, (got.size() - width) * sizeof(Real)), 0)
          << "table " << t << " key " << key;
    });
  }

  // Restoring into a fresh shard reproduces every row and its state.
  ServerShard restored(Specs(), kSeed, Adam());
  for (const auto& [id, values] : rows) restored.Restore(id.first, id.second, values.data(), values.size());
  EXPECT_EQ(restored.total_rows(), shard->total_rows());
  for (const auto& [id, values] : rows) {
    const std::vector<Real> row = restored.table(id.first).RowAndState(id.second);
    ASSERT_EQ(row.size(), values.size());
    EXPECT_EQ(std::memcmp(row.data(), values.data(), values.size() * sizeof(Real)), 0);
  }
}

TEST(CheckpointTest, ManifestRoundTripsExactly) {
  TempDir tmp;
  const auto shard = TrainedShard();
  const Manifest m = WriteCheckpoint(tmp.path(), *shard);
  EXPECT_EQ(ResolveCheckpoint(tmp.path()), tmp.path() + "/ckpt-3");
  const std::string dir = tmp.path() + "/ckpt-3";
  EXPECT_EQ(ResolveCheckpoint(dir), dir);
  const Manifest got = VerifyCheckpoint(dir);
  EXPECT_EQ(got.epoch, 3);
  EXPECT_EQ(got.model, "mf");
  EXPECT_EQ(got.workers, 2);
  EXPECT_EQ(got.settings, m.settings);
  ASSERT_EQ(got.shards.size(), 1u);
  EXPECT_EQ(got.shards[0].checksum, m.shards[0].checksum);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].loss, m.results[0].loss);  // bit-exact
  EXPECT_EQ(got.results[0].metrics.ks, m.results[0].metrics.ks);
  EXPECT_EQ(got.results[0].metrics.hits, m.results[0].metrics.hits);
  EXPECT_EQ(got.results[0].metrics.ndcg, m.results[0].metrics.ndcg);
  EXPECT_EQ(got.results[0].metrics.users, 2);
  EXPECT_EQ(EncodeManifest(got), EncodeManifest(m));
}

TEST(CheckpointTest, EveryTruncationAndFlippedByteOfAShardIsRefused) {
  TempDir tmp;
  const auto shard = TrainedShard();
  WriteCheckpoint(tmp.path(), *shard);
  const std::string dir = tmp.path() + "/ckpt-3";
  const std::string path = dir + "/shard-0.bin";
  const std::string good = ReadAll(path);
  for (std::size_t n = 0; n < good.size(); n += (n < 200 ? 1 : 97)) {
    WriteAll(path, good.substr(0, n));
    EXPECT_THROW(VerifyCheckpoint(dir), InputError) << "truncated to " << n;
    EXPECT_THROW(ReadShardFile(path, RowSink()), InputError) << "truncated to " << n;
  }
  for (std::size_t i = 0; i < good.size(); i += (i < 200 ? 1 : 13)) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    WriteAll(path, bad);
    ExpectInputError([&] { VerifyCheckpoint(dir); }, path);
  }
  WriteAll(path, good + "x");
  ExpectInputError([&] { VerifyCheckpoint(dir); }, "bytes, the MANIFEST says");
  WriteAll(path, good);
  EXPECT_NO_THROW(VerifyCheckpoint(dir));
}

TEST(CheckpointTest, WrongMagicVersionAndAbsurdSizesAreInputErrors) {
  TempDir tmp;
  const auto shard = TrainedShard();
  WriteShardFile(tmp.path(), 0, *shard);
  const std::string path = tmp.path() + "/shard-0.bin";
  const std::string good = ReadAll(path);
  auto patched = [&](std::size_t offset, const void* bytes, std::size_t n) {
    std::string bad = good;
    std::memcpy(&bad[offset], bytes, n);
    WriteAll(path, bad);
  };
  patched(0, "NOTSHARD", 8);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "wrong magic");
  const std::uint32_t version = 77;
  patched(8, &version, 4);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "version 77");
  const std::uint32_t tables = 0xffffffffu;
  patched(12, &tables, 4);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "tables");
  // Table 0: id at 16, name length at 20, name "emb" at 24, width at 27,
  // init at 31, scale at 32, dense size at 36, stride at 44, rows at 48.
  const std::uint32_t name_len = 0x7fffffffu;
  patched(20, &name_len, 4);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "name of");
  const std::int32_t width = -3;
  patched(27, &width, 4);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "width -3");
  const std::int32_t stride = 1 << 30;
  patched(44, &stride, 4);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "stride");
  const std::uint64_t rows = std::uint64_t{1} << 60;
  patched(48, &rows, 8);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "more than the");
  const std::int64_t dense = -1;
  patched(36, &dense, 8);
  ExpectInputError([&] { ReadShardFile(path, RowSink()); }, "dense size");
  ExpectInputError([&] { ReadShardFile(tmp.path() + "/none.bin", RowSink()); }, "cannot open");
}

TEST(CheckpointTest, ManifestProblemsAreNamed) {
  TempDir tmp;
  const auto shard = TrainedShard();
  Manifest m = WriteCheckpoint(tmp.path(), *shard);
  const std::string dir = tmp.path() + "/ckpt-3";
  const std::string good = ReadAll(dir + "/MANIFEST");

  // Truncated or edited: the manifest's own checksum.
  WriteAll(dir + "/MANIFEST", good.substr(0, good.size() / 2));
  ExpectInputError([&] { VerifyCheckpoint(dir); }, "no checksum line");
  std::string edited = good;
  edited[edited.find("epoch 3") + 6] = '4';
  WriteAll(dir + "/MANIFEST", edited);
  ExpectInputError([&] { VerifyCheckpoint(dir); }, "corrupted: checksum");

  // Names that would leave the folder, with a valid checksum.
  for (const char* name : {"../shard-0.bin", "/etc/passwd", "..", "a/b", ""}) {
    Manifest bad = m;
    bad.shards[0].name = name;
    WriteAll(dir + "/MANIFEST", EncodeManifest(bad));
    EXPECT_THROW(VerifyCheckpoint(dir), InputError) << name;
  }
  // Absurd counts in a well-formed manifest are bounded, not allocated.
  WriteAll(dir + "/MANIFEST", "recsys-ps checkpoint\nversion 1\nresult 1 0x1p+0 1 0x0p+0 0x0p+0 0x0p+0 1 999999999\n");
  EXPECT_THROW(ReadManifest(dir), InputError);
  {
    Manifest bad = m;
    bad.version = 2;
    WriteAll(dir + "/MANIFEST", EncodeManifest(bad));
    ExpectInputError([&] { VerifyCheckpoint(dir); }, "format version 2");
  }
  {
    Manifest bad = m;
    bad.shards[0].checksum ^= 1;
    WriteAll(dir + "/MANIFEST", EncodeManifest(bad));
    ExpectInputError([&] { VerifyCheckpoint(dir); }, "corrupted: checksum");
  }
  {
    Manifest bad = m;
    bad.tables[0].width = 6;
    WriteAll(dir + "/MANIFEST", EncodeManifest(bad));
    ExpectInputError([&] { VerifyCheckpoint(dir); }, "differs from the MANIFEST");
  }
  // A missing manifest: the checkpoint is incomplete.
  fs::remove(dir + "/MANIFEST");
  ExpectInputError([&] { ResolveCheckpoint(tmp.path()); }, "MANIFEST is missing");
  ExpectInputError([&] { ReadManifest(dir); }, "cannot open");
  // LATEST may only name a ckpt folder inside the checkpoint folder.
  WriteAll(tmp.path() + "/LATEST", "../../etc\n");
  ExpectInputError([&] { ResolveCheckpoint(tmp.path()); }, "expected the name of a ckpt-<epoch> folder");
  ExpectInputError([&] { ResolveCheckpoint(tmp.path() + "/nope"); }, "does not exist");
}

TEST(CheckpointTest, SettingsAndTablesMustMatch) {
  Config config;
  config.model = "mf";
  Manifest m;
  m.model = "mf";
  m.settings = ResumeSettings(config);
  m.tables = Specs();
  EXPECT_NO_THROW(CheckResumeSettings("M", m, config));
  Config other = config;
  other.epochs = 99;  // may differ
  other.servers = 7;
  EXPECT_NO_THROW(CheckResumeSettings("M", m, other));
  other.dim = 64;
  other.seed = 5;
  ExpectInputError([&] { CheckResumeSettings("M", m, other); }, "--dim was '32', this run has '64'; --seed was '1'");
  other = config;
  other.model = "fm";
  ExpectInputError([&] { CheckResumeSettings("M", m, other); }, "of model 'mf', this run trains 'fm'");
  // Adam's last state slot is a count (lazy) or a step (dense): the mode
  // must match, and a checkpoint from before --adam-mode was lazy.
  other = config;
  other.adam_mode = "dense";
  ExpectInputError([&] { CheckResumeSettings("M", m, other); }, "--adam-mode was 'lazy', this run has 'dense'");
  Manifest old = m;
  old.settings.erase(std::remove_if(old.settings.begin(), old.settings.end(),
                                    [](const auto& s) { return s.first == "--adam-mode"; }),
                     old.settings.end());
  ASSERT_EQ(old.settings.size() + 1, m.settings.size());
  EXPECT_NO_THROW(CheckResumeSettings("M", old, config));
  ExpectInputError([&] { CheckResumeSettings("M", old, other); }, "--adam-mode was 'lazy' (not recorded)");
  EXPECT_NO_THROW(CheckTables("M", m, Specs()));
  auto tables = Specs();
  tables[0].width = 9;
  ExpectInputError([&] { CheckTables("M", m, tables); }, "width 9");
  tables.pop_back();
  ExpectInputError([&] { CheckTables("M", m, tables); }, "holds 2 tables");
}

TEST(CheckpointTest, PruneKeepsTheNewestCompleteOnes) {
  TempDir tmp;
  for (int e : {1, 2, 3, 4, 6}) {
    fs::create_directories(tmp.path() + "/" + CheckpointName(e));
    if (e != 3) WriteAll(tmp.path() + "/" + CheckpointName(e) + "/MANIFEST", "x");
  }
  const auto deleted = PruneCheckpoints(tmp.path(), 2, 5);
  // Current 5 counts as one; ckpt-4 is kept; 3 (incomplete), 2 and 1 go; 6 is later and stays.
  EXPECT_EQ(deleted, (std::vector<std::string>{"ckpt-3", "ckpt-2", "ckpt-1"}));
  EXPECT_TRUE(fs::exists(tmp.path() + "/ckpt-4"));
  EXPECT_TRUE(fs::exists(tmp.path() + "/ckpt-6"));
  EXPECT_FALSE(fs::exists(tmp.path() + "/ckpt-1"));
}

// ---------------------------------------------------------------------------
// Whole jobs on in-process ranks

Config JobConfig(std::vector<std::string> extra) {
  std::vector<std::string> args = {"recsys_worker", "--users", "150", "--items", "120", "--interactions-per-user",
                                   "10", "--dim", "8", "--sync", "--model", "fm"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseArgs(static_cast<int>(argv.size()), argv.data()).config;
}

std::vector<EpochResult> RunJob(int ranks, const Config& config) {
  std::vector<EpochResult> results;
  RunLocalRanks(ranks, [&](int rank, Transport& t) {
    auto r = RunRank(t, config);
    if (rank == 0) results = std::move(r);
  });
  return results;
}

void ExpectSame(const EpochResult& a, const EpochResult& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.examples, b.examples);
  EXPECT_EQ(a.metrics.hits, b.metrics.hits);
  EXPECT_EQ(a.metrics.ndcg, b.metrics.ndcg);
}

TEST(CheckpointJobTest, ResumedSyncRunMatchesUninterruptedOneOnMoreServers) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/ck";
  // 2 servers and 2 workers, uninterrupted.
  const auto full = RunJob(5, JobConfig({"--epochs", "3", "--servers", "2"}));
  // 2 epochs with checkpoints, then resumed on 3 servers (same 2 workers).
  const auto first = RunJob(5, JobConfig({"--epochs", "2", "--servers", "2", "--checkpoint-dir", dir}));
  ASSERT_EQ(first.size(), 2u);
  ExpectSame(first[1], full[1]);
  const auto resumed = RunJob(6, JobConfig({"--epochs", "3", "--servers", "3", "--resume", dir}));
  ASSERT_EQ(resumed.size(), 3u);  // the restored epochs, then epoch 3
  ExpectSame(resumed[0], full[0]);
  ExpectSame(resumed[2], full[2]);
  // --eval-only on the saved model reproduces epoch 2's metrics, also from --init-from on 1 server.
  const auto eval = RunJob(4, JobConfig({"--servers", "1", "--init-from", dir + "/ckpt-2", "--eval-only"}));
  ASSERT_EQ(eval.size(), 1u);
  EXPECT_EQ(eval[0].metrics.hits, full[1].metrics.hits);
  EXPECT_EQ(eval[0].metrics.ndcg, full[1].metrics.ndcg);
}

// The complete checkpoints (ckpt-<epoch> folders with a MANIFEST) in `dir`, sorted.
std::vector<std::string> Checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (fs::exists(entry.path() / "MANIFEST")) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// When checkpoints are due: --checkpoint-every N epochs, --checkpoint-minutes
// M (at the first epoch end M minutes after the previous one), always after
// the last epoch; --keep-checkpoints K leaves the K newest; LATEST names the
// newest.
TEST(CheckpointJobTest, CheckpointsAreDueByEpochsOrMinutesAndTheNewestAreKept) {
  TempDir tmp;
  const std::string every = tmp.path() + "/every";
  RunJob(4, JobConfig({"--epochs", "5", "--checkpoint-dir", every, "--checkpoint-every", "2", "--keep-checkpoints", "9"}));
  EXPECT_EQ(Checkpoints(every), (std::vector<std::string>{"ckpt-2", "ckpt-4", "ckpt-5"}));
  EXPECT_EQ(ReadAll(every + "/LATEST"), "ckpt-5\n");

  const std::string rarely = tmp.path() + "/rarely";
  RunJob(4, JobConfig({"--epochs", "3", "--checkpoint-dir", rarely, "--checkpoint-minutes", "1000"}));
  EXPECT_EQ(Checkpoints(rarely), (std::vector<std::string>{"ckpt-3"}));

  const std::string often = tmp.path() + "/often";  // every epoch takes longer than 6 microseconds
  RunJob(4, JobConfig({"--epochs", "3", "--checkpoint-dir", often, "--checkpoint-minutes", "1e-7", "--keep-checkpoints",
                       "9"}));
  EXPECT_EQ(Checkpoints(often), (std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3"}));

  const std::string kept = tmp.path() + "/kept";
  RunJob(4, JobConfig({"--epochs", "4", "--checkpoint-dir", kept, "--keep-checkpoints", "2"}));
  EXPECT_EQ(Checkpoints(kept), (std::vector<std::string>{"ckpt-3", "ckpt-4"}));
  EXPECT_EQ(ReadAll(kept + "/LATEST"), "ckpt-4\n");
}

TEST(CheckpointJobTest, MismatchedResumeIsRefusedBeforeLoading) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/ck";
  RunJob(4, JobConfig({"--epochs", "1", "--checkpoint-dir", dir}));
  const std::string before = ReadAll(dir + "/ckpt-1/MANIFEST");
  EXPECT_THROW(RunJob(4, JobConfig({"--epochs", "2", "--resume", dir, "--dim", "16"})), InputError);
  EXPECT_THROW(RunJob(4, JobConfig({"--epochs", "2", "--checkpoint-dir", dir})), InputError);  // would mix runs
  EXPECT_EQ(ReadAll(dir + "/ckpt-1/MANIFEST"), before);
}

}  // namespace
}  // namespace recsys
