#include "worker/export.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/keys.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/server_shard.h"
#include "tests/file_test_util.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;
using testing_util::ReadAll;

class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("recsys_export_test") {}
};

TEST(NpyHeaderTest, IsVersion1With128BytesAndTheShape) {
  const std::string h = NpyHeader("<f4", 12345, 17);
  ASSERT_EQ(h.size(), 128u);
  EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<unsigned char>(h[8]) | (static_cast<unsigned char>(h[9]) << 8), 118);
  const std::string dict = h.substr(10);
  EXPECT_EQ(dict.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (12345, 17), }", 0), 0u) << dict;
  EXPECT_EQ(dict.back(), '\n');
  EXPECT_EQ(NpyHeader("<i8", 3, -1).substr(10, 60), "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }   ");
  // The largest shape still fits.
  EXPECT_EQ(NpyHeader("|u1", ~std::uint64_t{0}, 1 << 20).size(), 128u);
}

// Two shards of an "emb" table (width 3) and a dense block, as servers write
// them; the export holds every row's weights (not the optimizer state).
TEST(ExportTest, WritesWeightsIdsFieldsAndTablesJson) {
  TempDir tmp;
  TableSpec emb;
  emb.id = 0;
  emb.name = "emb";
  emb.width = 3;
  emb.init = InitKind::kNormal;
  emb.init_scale = 0.1f;
  TableSpec w0;
  w0.id = 1;
  w0.name = "w0";
  w0.width = 1;
  w0.dense_size = 1;
  const std::vector<TableSpec> specs = {emb, w0};
  OptimizerConfig adam;
  adam.name = "adam";
  adam.lr = 0.01f;
  ServerShard a(specs, 7, adam), b(specs, 7, adam);
  std::map<std::pair<int, std::int64_t>, std::vector<Real>> expected;  // (field, id) -> weights
  const Real grad[3] = {0.5f, -0.25f, 1.0f};
  for (std::uint64_t i = 0; i < 10; ++i) {
    const Key key = MakeKey(i % 2 ? kFieldUser : kFieldItem, 100 + i);
    ServerShard& s = i < 6 ? a : b;
    s.Push(0, &key, 1, grad);
    std::vector<Real> row(3);
    s.Pull(0, &key, 1, row.data());
    expected[{FieldOf(key), static_cast<std::int64_t>(ValueOf(key))}] = row;
  }
  const Key k0 = MakeKey(kFieldDense, 0);
  const Real g0 = 2.0f;
  a.Push(1, &k0, 1, &g0);
  Real w0_value = 0;
  a.Pull(1, &k0, 1, &w0_value);

  const std::string dir = tmp.path() + "/ck/ckpt-1";
  fs::create_directories(dir);
  Manifest m;
  m.epoch = 1;
  m.model = "mf";
  m.servers = 2;
  m.workers = 1;
  m.settings = {{"--dim", "2"}, {"--seed", "7"}};
  m.tables = specs;
  m.shards.push_back(WriteShardFile(dir, 0, a));
  m.shards.push_back(WriteShardFile(dir, 1, b));
  WriteManifest(dir, m);
  WriteLatest(tmp.path() + "/ck", "ckpt-1");

  const std::string out = tmp.path() + "/out";
  const ExportSummary s = ExportCheckpoint(tmp.path() + "/ck", out);
  EXPECT_EQ(s.epoch, 1);
  EXPECT_EQ(s.tables, 2u);
  EXPECT_EQ(s.rows, 11u);

  const std::string weights = ReadAll(out + "/emb.npy");
  const std::string ids = ReadAll(out + "/emb.ids.npy");
  const std::string fields = ReadAll(out + "/emb.fields.npy");
  ASSERT_EQ(weights.size(), 128u + 10 * 3 * 4);
  ASSERT_EQ(ids.size(), 128u + 10 * 8);
  ASSERT_EQ(fields.size(), 128u + 10);
  EXPECT_EQ(weights.substr(0, 128), NpyHeader("<f4", 10, 3));
  for (std::size_t r = 0; r < 10; ++r) {
    std::int64_t id;
    std::memcpy(&id, ids.data() + 128 + 8 * r, 8);
    const int field = static_cast<unsigned char>(fields[128 + r]);
    std::vector<Real> row(3);
    std::memcpy(row.data(), weights.data() + 128 + 12 * r, 12);
    const auto it = expected.find({field, id});
    ASSERT_NE(it, expected.end()) << "row " << r << " field " << field << " id " << id;
    EXPECT_EQ(row, it->second);
    expected.erase(it);
  }
  EXPECT_TRUE(expected.empty());
  const std::string w0_file = ReadAll(out + "/w0.npy");
  ASSERT_EQ(w0_file.size(), 128u + 4);
  Real w0_read;
  std::memcpy(&w0_read, w0_file.data() + 128, 4);
  EXPECT_EQ(w0_read, w0_value);

  const auto j = nlohmann::json::parse(ReadAll(out + "/tables.json"));
  EXPECT_EQ(j["model"], "mf");
  EXPECT_EQ(j["fields"]["0"], "user");
  EXPECT_EQ(j["fields"]["5"], "genre");
  EXPECT_EQ(j["tables"][0]["rows"], 10);
  EXPECT_EQ(j["tables"][0]["kind"], "sparse");
  EXPECT_EQ(j["tables"][0]["columns"]["embedding"], nlohmann::json({0, 2}));
  EXPECT_EQ(j["tables"][0]["columns"]["bias"], nlohmann::json({2, 3}));
  EXPECT_EQ(j["tables"][0]["rows_by_field"]["user"], 5);
  EXPECT_EQ(j["tables"][1]["kind"], "dense");
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_NE(e.path().extension(), ".tmp") << "left behind: " << e.path();
  }
}

TEST(ExportTest, AMissingCheckpointIsAnInputErrorAndWritesNothing) {
  TempDir tmp;
  EXPECT_THROW(ExportCheckpoint(tmp.path() + "/nope", tmp.path() + "/out"), InputError);
  EXPECT_FALSE(fs::exists(tmp.path() + "/out/tables.json"));
}

}  // namespace
}  // namespace recsys
