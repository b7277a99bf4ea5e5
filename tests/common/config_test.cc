// Tests of command-line parsing (config.h): model defaults, overrides, and
// an InputError naming the option for every bad value.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"

namespace recsys {
namespace {

ParsedArgs Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "recsys_worker");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseArgs(static_cast<int>(argv.size()), argv.data());
}

Config ParseConfig(const std::vector<std::string>& args) {
  const ParsedArgs parsed = Parse(args);
  EXPECT_FALSE(parsed.exit_now);
  return parsed.config;
}

// Returns the InputError's message, or fails the test.
std::string ErrorOf(const std::vector<std::string>& args) {
  std::string joined;
  for (const auto& a : args) joined += " " + a;
  try {
    Parse(args);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted:" << joined;
  return "";
}

// Expects an InputError whose message contains every one of `parts`.
void ExpectError(const std::vector<std::string>& args, const std::vector<std::string>& parts) {
  const std::string message = ErrorOf(args);
  for (const auto& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos) << "message: '" << message << "'\nexpected to contain: " << part;
  }
}

TEST(ConfigTest, DefaultsWithoutArguments) {
  const Config c = ParseConfig({});
  EXPECT_EQ(c.model, "fm");
  EXPECT_EQ(c.loss, "bce");
  EXPECT_EQ(c.dim, 32);
  EXPECT_FLOAT_EQ(c.lr, 0.004f);
  EXPECT_EQ(c.l2, 0.0f);
  EXPECT_EQ(c.neg_ratio, 4);
  EXPECT_EQ(c.epochs, 20);
  EXPECT_EQ(c.optimizer, "adam");
  EXPECT_FLOAT_EQ(c.init_scale, 0.01f);
  EXPECT_EQ(c.batch_size, 256);
  EXPECT_EQ(c.format, "synthetic");
  EXPECT_TRUE(c.data.empty());
  EXPECT_TRUE(c.side_features);
  EXPECT_EQ(c.users, 2000u);
  EXPECT_EQ(c.items, 1000u);
  EXPECT_EQ(c.interactions_per_user, 30);
  EXPECT_FALSE(c.eval_full);
  EXPECT_TRUE(c.eval_candidates.empty());
  EXPECT_EQ(c.eval_negatives, 99);
  EXPECT_EQ(c.topk, (std::vector<int>{10}));
  EXPECT_EQ(c.servers, 0);
  EXPECT_EQ(c.staleness, 2);
  EXPECT_FALSE(c.sync);
  EXPECT_EQ(c.seed, 1u);
  EXPECT_TRUE(c.metrics_out.empty());
}

TEST(ConfigTest, ModelDefaults) {
  for (const char* model : {"mf", "fm"}) {
    const Config c = ParseConfig({"--model", model});
    EXPECT_EQ(c.model, model);
    EXPECT_EQ(c.dim, 32) << model;
    EXPECT_FLOAT_EQ(c.lr, std::string(model) == "fm" ? 0.004f : 0.002f) << model;
    EXPECT_EQ(c.l2, 0.0f) << model;
    EXPECT_EQ(c.neg_ratio, 4) << model;
    EXPECT_EQ(c.epochs, 20) << model;
    EXPECT_EQ(c.optimizer, "adam") << model;
    EXPECT_EQ(c.prefetch, 1) << model;  // no tower
  }
  // GMF's and NeuMF's L2 (chosen on validation at 30 epochs).
  EXPECT_FLOAT_EQ(ParseConfig({"--model", "gmf"}).l2, 0.01f);
  EXPECT_FLOAT_EQ(ParseConfig({"--model", "neumf"}).l2, 0.001f);
  // Models with a deep tower do not pull ahead unless told to.
  for (const char* model : {"mlp", "neumf", "nfm", "deepfm", "wide_deep"}) {
    EXPECT_EQ(ParseConfig({"--model", model}).prefetch, 0) << model;
    EXPECT_EQ(ParseConfig({"--model", model, "--prefetch", "2"}).prefetch, 2) << model;
  }
  EXPECT_EQ(ParseConfig({"--model", "mlp", "--layers", "none"}).prefetch, 1);
}

TEST(ConfigTest, AdamModeDefaultsToLazyForEveryModelAndIsChecked) {
  EXPECT_EQ(ParseConfig({"--model", "mf"}).adam_mode, "lazy");
  EXPECT_EQ(ParseConfig({"--model", "mf", "--adam-mode", "dense"}).adam_mode, "dense");
  for (const auto& d : {"mf", "fm", "nfm", "deepfm", "wide_deep", "gmf", "mlp", "neumf"}) {
    EXPECT_EQ(ParseConfig({"--model", d}).adam_mode, "lazy") << d;
  }
  ExpectError({"--adam-mode", "eager"}, {"--adam-mode", "eager", "lazy, dense"});
}

TEST(ConfigTest, DenseLrDefaultsToLr) {
  EXPECT_EQ(ParseConfig({"--model", "mlp"}).dense_lr, 0.0f);
  EXPECT_FLOAT_EQ(ParseConfig({"--model", "mlp", "--dense-lr", "0.0005"}).dense_lr, 0.0005f);
}

// BPR has its own step, L2 and epochs (tuned for BPR-MF), unless given.
TEST(ConfigTest, BprDefaults) {
  const Config c = ParseConfig({"--model", "mf", "--loss", "bpr"});
  EXPECT_FLOAT_EQ(c.lr, 0.0075f);
  EXPECT_FLOAT_EQ(c.l2, 0.01f);
  EXPECT_EQ(c.epochs, 30);
  const Config d = ParseConfig({"--model", "mf", "--loss", "bpr", "--lr", "0.001", "--l2", "0", "--epochs", "5"});
  EXPECT_FLOAT_EQ(d.lr, 0.001f);
  EXPECT_EQ(d.l2, 0.0f);
  EXPECT_EQ(d.epochs, 5);
}

TEST(ConfigTest, ExplicitFlagsOverrideModelDefaults) {
  const Config c = ParseConfig({"--model", "mf", "--dim", "16", "--lr", "0.05", "--l2", "0.001", "--neg-ratio", "2",
                                "--epochs", "3", "--optimizer", "sgd", "--loss", "bpr", "--batch-size", "64",
                                "--init-scale", "0.1", "--seed", "99", "--servers", "2", "--staleness", "5",
                                "--users", "50", "--items", "40", "--interactions-per-user", "7",
                                "--eval-negatives", "20", "--no-side-features", "--metrics-out", "m.jsonl"});
  EXPECT_EQ(c.model, "mf");
  EXPECT_EQ(c.dim, 16);
  EXPECT_FLOAT_EQ(c.lr, 0.05f);
  EXPECT_FLOAT_EQ(c.l2, 0.001f);
  EXPECT_EQ(c.neg_ratio, 2);
  EXPECT_EQ(c.epochs, 3);
  EXPECT_EQ(c.optimizer, "sgd");
  EXPECT_EQ(c.loss, "bpr");
  EXPECT_EQ(c.batch_size, 64);
  EXPECT_FLOAT_EQ(c.init_scale, 0.1f);
  EXPECT_EQ(c.seed, 99u);
  EXPECT_EQ(c.servers, 2);
  EXPECT_EQ(c.staleness, 5);
  EXPECT_EQ(c.users, 50u);
  EXPECT_EQ(c.items, 40u);
  EXPECT_EQ(c.interactions_per_user, 7);
  EXPECT_EQ(c.eval_negatives, 20);
  EXPECT_FALSE(c.side_features);
  EXPECT_EQ(c.metrics_out, "m.jsonl");

  // The = form works as well, and flags may come in any order.
  const Config d = ParseConfig({"--dim=8", "--model=fm", "--epochs=1"});
  EXPECT_EQ(d.model, "fm");
  EXPECT_EQ(d.dim, 8);
  EXPECT_EQ(d.epochs, 1);
  EXPECT_FLOAT_EQ(d.lr, 0.004f);  // not given: the model's default
}

TEST(ConfigTest, DataOptions) {
  const Config c = ParseConfig({"--format", "ml-100k", "--data", "/tmp/ml-100k"});
  EXPECT_EQ(c.format, "ml-100k");
  EXPECT_EQ(c.data, "/tmp/ml-100k");
  const Config e = ParseConfig({"--format", "ncf", "--data", "x", "--eval-candidates", "x.test.negative"});
  EXPECT_EQ(e.eval_candidates, "x.test.negative");
  EXPECT_TRUE(ParseConfig({"--eval-full"}).eval_full);
}

TEST(ConfigTest, TopKParsedAndSorted) {
  EXPECT_EQ(ParseConfig({"--topk", "5,10,20"}).topk, (std::vector<int>{5, 10, 20}));
  EXPECT_EQ(ParseConfig({"--topk", "20,5,10"}).topk, (std::vector<int>{5, 10, 20}));
  EXPECT_EQ(ParseConfig({"--topk", "10,5,10"}).topk, (std::vector<int>{5, 10}));  // duplicates dropped
  EXPECT_EQ(ParseConfig({"--topk", "1"}).topk, (std::vector<int>{1}));
}

TEST(ConfigTest, HelpExitsNow) {
  for (const char* flag : {"--help", "-h"}) {
    const ParsedArgs parsed = Parse({"--dim", "8", flag});
    EXPECT_TRUE(parsed.exit_now) << flag;
    EXPECT_NE(parsed.message.find("--model"), std::string::npos) << parsed.message;
    EXPECT_NE(parsed.message.find("--staleness"), std::string::npos) << parsed.message;
  }
  // Help wins even over otherwise bad values that are never validated.
  EXPECT_TRUE(Parse({"--help", "--dim", "0"}).exit_now);
  EXPECT_FALSE(Parse({}).exit_now);
}

TEST(ConfigTest, SyncForcesStalenessZero) {
  EXPECT_EQ(ParseConfig({"--sync"}).staleness, 0);
  const Config c = ParseConfig({"--staleness", "5", "--sync"});
  EXPECT_TRUE(c.sync);
  EXPECT_EQ(c.staleness, 0);
  EXPECT_EQ(ParseConfig({"--staleness", "0"}).staleness, 0);
  EXPECT_FALSE(ParseConfig({"--staleness", "0"}).sync);
}

TEST(ConfigTest, UnknownOptionOrArgument) {
  ExpectError({"--bogus", "1"}, {"bogus"});
  ExpectError({"--dimm", "8"}, {"dimm"});
  ExpectError({"stray"}, {"stray"});
}

TEST(ConfigTest, UnknownNames) {
  ExpectError({"--model", "xgboost"}, {"--model", "xgboost", "mf", "fm"});
  ExpectError({"--format", "parquet"}, {"--format", "parquet"});
  ExpectError({"--optimizer", "rmsprop"}, {"--optimizer", "rmsprop"});
  ExpectError({"--loss", "mse"}, {"--loss", "mse"});
}

TEST(ConfigTest, OutOfRangeNumbers) {
  ExpectError({"--dim", "0"}, {"--dim"});
  ExpectError({"--dim", "-3"}, {"--dim"});
  ExpectError({"--dim", "5000"}, {"--dim"});
  ExpectError({"--epochs", "-1"}, {"--epochs"});
  ExpectError({"--epochs=-1"}, {"--epochs"});
  ExpectError({"--epochs", "0"}, {"--epochs"});
  ExpectError({"--batch-size", "0"}, {"--batch-size"});
  ExpectError({"--neg-ratio", "0"}, {"--neg-ratio"});
  ExpectError({"--lr", "0"}, {"--lr"});
  ExpectError({"--lr", "nan"}, {"--lr"});
  ExpectError({"--l2", "-0.1"}, {"--l2"});
  ExpectError({"--init-scale", "-1"}, {"--init-scale"});
  ExpectError({"--staleness", "-1"}, {"--staleness"});
  ExpectError({"--prefetch", "-1"}, {"--prefetch"});
  ExpectError({"--prefetch", "3"}, {"--prefetch"});
  ExpectError({"--dense-lr", "-0.001"}, {"--dense-lr"});
  ExpectError({"--dense-lr", "0"}, {"--dense-lr"});
  ExpectError({"--servers", "-2"}, {"--servers"});
  ExpectError({"--eval-negatives", "0"}, {"--eval-negatives"});
}

TEST(ConfigTest, MalformedNumbersNameTheOption) {
  ExpectError({"--dim", "abc"}, {"dim", "abc"});
  ExpectError({"--epochs", "2.5"}, {"epochs"});
}

TEST(ConfigTest, BadTopK) {
  for (const char* bad : {"0", "a", "5,", "5,,10", "-5", "5;10", "10x", ""}) {
    ExpectError({"--topk", bad}, {"--topk"});
  }
}

TEST(ConfigTest, BadCombinations) {
  ExpectError({"--format", "ml-100k"}, {"--format ml-100k", "--data"});
  ExpectError({"--format", "csv"}, {"--data"});
  ExpectError({"--eval-full", "--eval-candidates", "x.test.negative"}, {"--eval-full", "--eval-candidates"});
  ExpectError({"--items", "10", "--interactions-per-user", "10"}, {"--interactions-per-user", "--items"});
  ExpectError({"--items", "10", "--interactions-per-user", "11"}, {"--interactions-per-user"});
  ExpectError({"--interactions-per-user", "1"}, {"--interactions-per-user"});
  ExpectError({"--users", "0"}, {"--users"});
  ExpectError({"--items", "0"}, {"--items"});
  // The synthetic-only limits do not apply to files.
  EXPECT_EQ(ParseConfig({"--format", "csv", "--data", "f.csv", "--items", "10", "--interactions-per-user", "50"}).format,
            "csv");
  // Just below the limit is fine.
  EXPECT_EQ(ParseConfig({"--items", "10", "--interactions-per-user", "9"}).interactions_per_user, 9);
}

TEST(ConfigTest, DescribeNamesTheEffectiveSettings) {
  const std::string text = DescribeConfig(ParseConfig({"--model", "mf", "--sync", "--topk", "5,10"}));
  EXPECT_NE(text.find("model=mf"), std::string::npos) << text;
  EXPECT_NE(text.find("topk=5,10"), std::string::npos) << text;
  EXPECT_NE(text.find("staleness=0 sync"), std::string::npos) << text;
}

}  // namespace
}  // namespace recsys
