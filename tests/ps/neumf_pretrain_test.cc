// NeuMF pre-training (ps/neumf_pretrain.h): the NeuMF built from a GMF and
// an MLP checkpoint scores every example as alpha * GMF + (1 - alpha) * MLP,
// and mismatched checkpoints are refused.
#include "ps/neumf_pretrain.h"

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "models/model.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/server_shard.h"
#include "tests/models/model_test_util.h"
#include "tests/file_test_util.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;
using testing_util::Params;

class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("recsys_neumf_test") {}
};

constexpr int kDim = 4;
const std::vector<int> kLayers = {8, 4};

Config RunConfig(const std::string& model, int dim = kDim) {
  Config c;
  c.model = model;
  c.dim = dim;
  c.layers = model == "gmf" ? std::vector<int>() : kLayers;
  c.users = 50;
  c.items = 40;
  return c;
}

std::unique_ptr<Model> Build(const std::string& model, int dim = kDim) {
  ModelConfig config = testing_util::Config(model, dim, testing_util::kUserItem);
  if (model != "gmf") config.layers = kLayers;
  return MakeModel(config);
}

// Writes `params` (rows of `batch`'s keys, dense blocks whole) as a
// checkpoint of `config` into `dir`, with Adam state (which the NeuMF must
// not inherit).
void WriteCheckpoint(const std::string& dir, const Config& config, const Model& model, Params& params,
                     const Batch& batch) {
  fs::create_directories(dir);
  OptimizerConfig adam;
  ServerShard shard(model.Tables(), config.seed, adam);
  for (const TableSpec& spec : model.Tables()) {
    const Real* data = params.table(spec.id).data();
    if (spec.dense()) {
      for (std::int64_t r = 0; r < spec.dense_rows(); ++r) {
        shard.Restore(spec.id, MakeKey(kFieldDense, static_cast<std::uint64_t>(r)), data + r * spec.width,
                      static_cast<std::size_t>(spec.width));
      }
    } else {
      for (std::size_t k = 0; k < batch.keys.size(); ++k) {
        shard.Restore(spec.id, batch.keys[k], data + k * static_cast<std::size_t>(spec.width),
                      static_cast<std::size_t>(spec.width));
      }
    }
  }
  Manifest m;
  m.epoch = 3;
  m.model = config.model;
  m.servers = 1;
  m.workers = 1;
  m.settings = ResumeSettings(config);
  m.tables = model.Tables();
  m.shards.push_back(WriteShardFile(dir, 0, shard));
  WriteManifest(dir, m);
}

// Loads checkpoint `dir` (one shard) into `params` laid out for `batch`.
void LoadCheckpoint(const std::string& dir, const Batch& batch, Params* params) {
  std::map<Key, std::size_t> index;
  for (std::size_t k = 0; k < batch.keys.size(); ++k) index[batch.keys[k]] = k;
  std::size_t rows = 0;
  ReadShardFile(dir + "/shard-0.bin", [&](const TableSpec& spec, int stride, Key key, const Real* values) {
    EXPECT_EQ(stride, spec.width) << "optimizer state must not be carried over";
    std::vector<Real>& table = params->table(spec.id);
    const std::size_t row = spec.dense() ? ValueOf(key) : index.at(key);
    for (int j = 0; j < spec.width; ++j) table[row * static_cast<std::size_t>(spec.width) + static_cast<std::size_t>(j)] = values[j];
    ++rows;
  });
  EXPECT_GT(rows, batch.keys.size());
}

class NeuMfPretrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    batch_ = testing_util::UserItemBatch();
    gmf_ = Build("gmf");
    mlp_ = Build("mlp");
    neumf_ = Build("neumf");
    gmf_params_ = std::make_unique<Params>(gmf_->Tables(), batch_);
    mlp_params_ = std::make_unique<Params>(mlp_->Tables(), batch_);
    std::mt19937 rng(7);
    gmf_params_->Randomize(&rng, 0.5f);
    mlp_params_->Randomize(&rng, 0.5f);
    WriteCheckpoint(gmf_dir(), RunConfig("gmf"), *gmf_, *gmf_params_, batch_);
    WriteCheckpoint(mlp_dir(), RunConfig("mlp"), *mlp_, *mlp_params_, batch_);
  }
  std::string gmf_dir() const { return tmp_.path() + "/gmf"; }
  std::string mlp_dir() const { return tmp_.path() + "/mlp"; }
  Config NeuMfConfig(double alpha, int dim = kDim) const {
    Config c = RunConfig("neumf", dim);
    c.pretrain_gmf = gmf_dir();
    c.pretrain_mlp = mlp_dir();
    c.pretrain_alpha = alpha;
    return c;
  }
  Vector Logits(const Model& model, const Params& params) const {
    ModelState state;
    state.training = false;
    model.Forward(batch_, params.view(), &state);
    return state.logits;
  }

  TempDir tmp_;
  Batch batch_;
  std::unique_ptr<Model> gmf_, mlp_, neumf_;
  std::unique_ptr<Params> gmf_params_, mlp_params_;
};

TEST_F(NeuMfPretrainTest, LogitIsTheAlphaMixOfGmfAndMlp) {
  const Vector gmf = Logits(*gmf_, *gmf_params_);
  const Vector mlp = Logits(*mlp_, *mlp_params_);
  for (double alpha : {0.5, 0.3, 1.0}) {
    SCOPED_TRACE(alpha);
    const std::string out = tmp_.path() + "/neumf";
    const Manifest m = BuildPretrainedNeuMf(NeuMfConfig(alpha), neumf_->Tables(), out);
    EXPECT_EQ(m.model, "neumf");
    // It is an ordinary, verifiable checkpoint of this NeuMF's tables.
    const Manifest verified = VerifyCheckpoint(out);
    CheckTables(out + "/MANIFEST", verified, neumf_->Tables());
    Params params(neumf_->Tables(), batch_);
    LoadCheckpoint(out, batch_, &params);
    const Vector neumf = Logits(*neumf_, params);
    ASSERT_EQ(neumf.size(), batch_.size);
    for (int e = 0; e < batch_.size; ++e) {
      const double expected = alpha * gmf[e] + (1 - alpha) * mlp[e];
      EXPECT_NEAR(neumf[e], expected, 1e-5 * (1 + std::abs(expected))) << "example " << e;
    }
  }
}

TEST_F(NeuMfPretrainTest, RowsAreGmfThenMlpAndTowerIsCopied) {
  const std::string out = tmp_.path() + "/neumf";
  BuildPretrainedNeuMf(NeuMfConfig(0.5), neumf_->Tables(), out);
  Params params(neumf_->Tables(), batch_);
  LoadCheckpoint(out, batch_, &params);
  const std::vector<Real>& emb = params.table(0);
  for (std::size_t k = 0; k < batch_.keys.size(); ++k) {
    for (int j = 0; j < kDim; ++j) {
      EXPECT_EQ(emb[k * 2 * kDim + j], gmf_params_->table(0)[k * kDim + j]);
      EXPECT_EQ(emb[k * 2 * kDim + kDim + j], mlp_params_->table(0)[k * kDim + j]);
    }
  }
  // Tower blocks: same names and ids in MLP and NeuMF (between emb and h).
  for (std::size_t t = 1; t + 2 < neumf_->Tables().size(); ++t) {
    EXPECT_EQ(neumf_->Tables()[t].name, mlp_->Tables()[t].name);
    EXPECT_EQ(params.table(static_cast<TableId>(t)), mlp_params_->table(static_cast<TableId>(t)));
  }
}

TEST_F(NeuMfPretrainTest, RefusesWrongModelAndMismatchedShapes) {
  const std::string out = tmp_.path() + "/neumf";
  Config swapped = NeuMfConfig(0.5);
  std::swap(swapped.pretrain_gmf, swapped.pretrain_mlp);
  try {
    BuildPretrainedNeuMf(swapped, neumf_->Tables(), out);
    FAIL() << "a swapped pair was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--pretrain-gmf needs a checkpoint of model 'gmf'; this one is of model 'mlp'"),
              std::string::npos) << e.what();
  }
  const auto neumf8 = Build("neumf", 8);
  try {
    BuildPretrainedNeuMf(NeuMfConfig(0.5, 8), neumf8->Tables(), out);
    FAIL() << "another --dim was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--dim was '4', this run has '8'"), std::string::npos) << e.what();
  }
  Config layers = NeuMfConfig(0.5);
  layers.layers = {16, 4};
  try {
    BuildPretrainedNeuMf(layers, neumf_->Tables(), out);
    FAIL() << "other --layers were accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--layers was '8,4', this run has '16,4'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out + "/MANIFEST"));
}

TEST(NeuMfPretrainConfigTest, OptionsAreValidated) {
  auto parse = [](std::vector<const char*> args) {
    args.insert(args.begin(), "recsys_worker");
    return ParseArgs(static_cast<int>(args.size()), args.data());
  };
  const ParsedArgs ok = parse({"--model", "neumf", "--pretrain-gmf", "g", "--pretrain-mlp", "m"});
  EXPECT_EQ(ok.config.pretrain_gmf, "g");
  EXPECT_EQ(ok.config.pretrain_mlp, "m");
  EXPECT_EQ(ok.config.pretrain_alpha, 0.5);
  EXPECT_THROW(parse({"--model", "neumf", "--pretrain-gmf", "g"}), InputError);
  EXPECT_THROW(parse({"--model", "gmf", "--pretrain-gmf", "g", "--pretrain-mlp", "m"}), InputError);
  EXPECT_THROW(parse({"--model", "neumf", "--pretrain-gmf", "g", "--pretrain-mlp", "m", "--init-from", "x"}),
               InputError);
  EXPECT_THROW(parse({"--model", "neumf", "--pretrain-gmf", "g", "--pretrain-mlp", "m", "--pretrain-alpha", "1.5"}),
               InputError);
}

}  // namespace
}  // namespace recsys
