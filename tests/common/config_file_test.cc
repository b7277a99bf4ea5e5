// Tests of config files (config_file.h): expansion order, command-line
// overrides, switches, every malformed file refused with its file and line,
// and the saved configuration read back to the same Config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/config_file.h"
#include "common/error.h"

namespace recsys {
namespace {

// A fresh folder per test under testing::TempDir(), removed afterwards.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = Concat(::testing::TempDir(), "/recsys_config_", ::getpid(), "_", info->name());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(std::filesystem::create_directories(dir_)) << dir_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to dir/name and returns the full path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// argv[0] added in front.
std::vector<std::string> Expanded(std::vector<std::string> args) {
  args.insert(args.begin(), "recsys_worker");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  ArgList list = ExpandConfigFile(static_cast<int>(argv.size()), argv.data());
  return std::vector<std::string>(list.args().begin() + 1, list.args().end());
}

Config Parsed(std::vector<std::string> args, bool save = false) {
  args.insert(args.begin(), "recsys_worker");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const ParsedArgs parsed = ParseArgsWithConfigFile(static_cast<int>(argv.size()), argv.data(), save);
  EXPECT_FALSE(parsed.exit_now);
  return parsed.config;
}

// Returns the InputError's message, or fails the test.
std::string ErrorOf(const std::vector<std::string>& args) {
  try {
    Parsed(args);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

using Args = std::vector<std::string>;

TEST(KnownOptionsTest, ReadsNamesAndKindsFromHelp) {
  auto find = [](const std::string& name) -> const OptionInfo* {
    for (const auto& o : KnownOptions()) {
      if (o.name == name) return &o;
    }
    return nullptr;
  };
  ASSERT_NE(find("model"), nullptr);
  EXPECT_TRUE(find("model")->takes_value);
  ASSERT_NE(find("interactions-per-user"), nullptr);  // printed with its description on the next line
  EXPECT_TRUE(find("interactions-per-user")->takes_value);
  ASSERT_NE(find("sync"), nullptr);
  EXPECT_FALSE(find("sync")->takes_value);
  ASSERT_NE(find("no-side-features"), nullptr);
  EXPECT_FALSE(find("no-side-features")->takes_value);
  EXPECT_EQ(find("validation:"), nullptr);  // "--validation:" inside a description is not an option
}

// The fact the design could have relied on: cxxopts keeps the last value of
// a repeated option. Expansion drops overridden file entries anyway.
TEST(KnownOptionsTest, CxxoptsKeepsTheLastOccurrence) {
  const char* argv[] = {"recsys_worker", "--dim=8", "--dim", "16", "--model=mf", "--model=fm", nullptr};
  const ParsedArgs parsed = ParseArgs(6, argv);
  EXPECT_EQ(parsed.config.dim, 16);
  EXPECT_EQ(parsed.config.model, "fm");
}

TEST_F(ConfigFileTest, WithoutConfigTheCommandLineIsUnchanged) {
  EXPECT_EQ(Expanded({"--dim", "16", "--model=mf", "--sync"}), (Args{"--dim", "16", "--model=mf", "--sync"}));
  EXPECT_EQ(Expanded({}), Args{});
}

TEST_F(ConfigFileTest, FileEntriesComeFirstAsKeyEqualsValue) {
  const std::string file = Write("run.toml",
                                 "# a comment\n"
                                 "\n"
                                 "model = \"mf\"   # trailing comment\n"
                                 "dim = 64\n"
                                 "sync = true\n"
                                 "topk = \"5,10\"\n"
                                 "batch_size = 512\n");
  EXPECT_EQ(Expanded({"--config", file, "--epochs", "3"}),
            (Args{"--model=mf", "--dim=64", "--sync", "--topk=5,10", "--batch-size=512", "--epochs", "3"}));
  const Config c = Parsed({"--config=" + file});
  EXPECT_EQ(c.model, "mf");
  EXPECT_EQ(c.dim, 64);
  EXPECT_TRUE(c.sync);
  EXPECT_EQ(c.topk, (std::vector<int>{5, 10}));
  EXPECT_EQ(c.batch_size, 512);
}

TEST_F(ConfigFileTest, CommandLineOverridesTheFile) {
  const std::string file = Write("run.toml", "model = \"mf\"\ndim = 64\nlr = 0.01\nsync = true\n");
  // Each spelling of an option on the command line drops the file's entry.
  EXPECT_EQ(Expanded({"--config", file, "--dim", "16"}), (Args{"--model=mf", "--lr=0.01", "--sync", "--dim", "16"}));
  EXPECT_EQ(Parsed({"--config", file, "--dim", "16"}).dim, 16);
  EXPECT_EQ(Parsed({"--dim=16", "--config", file}).dim, 16);  // position of --config does not matter
  EXPECT_FLOAT_EQ(Parsed({"--config", file, "--lr=0.5"}).lr, 0.5f);
  EXPECT_EQ(Parsed({"--config", file, "--model", "fm"}).model, "fm");
  // A switch the file turns on is turned off with --name=false.
  EXPECT_FALSE(Parsed({"--config", file, "--sync=false"}).sync);
  EXPECT_TRUE(Parsed({"--config", file, "--sync=true"}).sync);
}

TEST_F(ConfigFileTest, SwitchesFalseAreLeftOut) {
  const std::string file = Write("run.toml", "sync = false\nno_side_features = false\neval-full = true\n");
  EXPECT_EQ(Expanded({"--config", file}), (Args{"--eval-full"}));
  EXPECT_EQ(Expanded({"--sync=false", "--validation=true"}), (Args{"--validation"}));
  EXPECT_FALSE(Parsed({"--sync=false"}).sync);  // ParseArgs alone would count it as --sync
}

TEST_F(ConfigFileTest, TomlValueForms) {
  const std::string file = Write("run.toml",
                                 "data = 'C:\\literal'\n"
                                 "format = \"c\\\"s\\\\v\"\n"
                                 "layers = [64, 32, ]\n"
                                 "topk = [ 5,20 ]\n"
                                 "users = 1_000\n"
                                 "l2 = 1e-4\n"
                                 "seed = +7\n");
  EXPECT_EQ(Expanded({"--config", file}),
            (Args{"--data=C:\\literal", "--format=c\"s\\v", "--layers=64,32", "--topk=5,20", "--users=1000",
                  "--l2=1e-4", "--seed=+7"}));
}

TEST_F(ConfigFileTest, ErrorsNameTheFileAndLine) {
  struct Case {
    std::string text;
    std::string expected;  // after "FILE:"
  };
  const std::vector<Case> cases = {
      {"model = \"mf\"\ndim 64\n", "2: expected 'key = value', got 'dim 64'"},
      {"bogus = 1\n", "1: unknown option 'bogus'"},
      {"\n\nmodel = mf\n", "3: expected a quoted string, a number, true, false or an array, got 'mf'"},
      {"[run]\nmodel = \"mf\"\n", "1: tables ([section]) are not supported"},
      {"dim = 8\ndim = 16\n", "2: 'dim' is already set on line 1"},
      {"dim = 8\nbatch-size = 1\nbatch_size = 2\n", "3: 'batch_size' is already set on line 2"},
      {"sync = 1\n", "1: 'sync' is a switch: expected true or false"},
      {"dim = true\n", "1: 'dim' takes a value, not true"},
      {"model = \"mf\n", "1: unterminated string"},
      {"model = \"mf\" fm\n", "1: unexpected text after the value"},
      {"model =\n", "1: expected a value after '='"},
      {"= 3\n", "1: missing key before '='"},
      {"run.dim = 3\n", "1: 'run.dim' is not an option name"},
      {"config = \"other.toml\"\n", "1: a config file cannot name another one"},
      {"layers = [64, [32]]\n", "1: nested arrays are not supported"},
      {"model = \"\"\"mf\"\"\"\n", "1: multi-line strings are not supported"},
      {"model = \"m\\u0066\"\n", "1: unsupported escape '\\u'"},
  };
  for (const auto& c : cases) {
    const std::string file = Write("bad.toml", c.text);
    const std::string error = ErrorOf({"--config", file});
    EXPECT_NE(error.find(file + ":" + c.expected), std::string::npos) << "file:\n" << c.text << "error: " << error;
  }
}

TEST_F(ConfigFileTest, ValueErrorsFromTheParserPointAtTheFileLine) {
  const std::string file = Write("run.toml", "model = \"mf\"\ndim = 0\nlr = \"fast\"\n");
  EXPECT_NE(ErrorOf({"--config", file, "--lr", "0.1"}).find(file + ":2: --dim must be positive"), std::string::npos);
  const std::string lr_error = ErrorOf({"--config", file, "--dim", "8"});
  EXPECT_NE(lr_error.find(file + ":3: --lr"), std::string::npos) << lr_error;
  // The same error from the command line names no file.
  const std::string cli_error = ErrorOf({"--config", file, "--dim", "-1", "--lr", "0.1"});
  EXPECT_EQ(cli_error.find(file), std::string::npos) << cli_error;
  EXPECT_NE(cli_error.find("--dim must be positive"), std::string::npos) << cli_error;
}

TEST_F(ConfigFileTest, CommandLineErrors) {
  EXPECT_NE(ErrorOf({"--config", dir() + "/missing.toml"}).find(dir() + "/missing.toml: cannot open (--config)"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--config"}).find("--config: expected a file name"), std::string::npos);
  EXPECT_NE(ErrorOf({"--config="}).find("--config: expected a file name"), std::string::npos);
  const std::string file = Write("run.toml", "dim = 8\n");
  EXPECT_NE(ErrorOf({"--config", file, "--config", file}).find("--config: given twice"), std::string::npos);
}

TEST_F(ConfigFileTest, SavedConfigurationReadsBackToTheSameConfig) {
  const std::string file = Write("run.toml", "model = \"mf\"\ndim = 24\ntopk = [5, 10]\nsync = true\n");
  const std::string metrics = dir() + "/m.jsonl";
  const Config first =
      Parsed({"--config", file, "--dim", "16", "--data=", "--no-side-features", "--metrics-out", metrics}, true);
  std::ifstream in(metrics + ".config");
  ASSERT_TRUE(in) << "no " << metrics << ".config";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("# effective: " + DescribeConfig(first) + "\n"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\ndim = 16\n"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\ntopk = \"5,10\"\n"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\n# metrics-out = \"" + metrics + "\"\n"), std::string::npos) << text.str();

  const Config again = Parsed({"--config", metrics + ".config"});
  EXPECT_EQ(DescribeConfig(again), DescribeConfig(first));
  EXPECT_EQ(again.metrics_out, "");
}

TEST_F(ConfigFileTest, NothingSavedWithoutSaveOrMetrics) {
  const std::string metrics = dir() + "/m.jsonl";
  Parsed({"--metrics-out", metrics}, false);
  EXPECT_FALSE(std::filesystem::exists(metrics + ".config"));
  Parsed({"--dim", "8"}, true);
  EXPECT_TRUE(std::filesystem::is_empty(dir()));
}

TEST_F(ConfigFileTest, UnwritableConfigIsAnInputError) {
  const std::string metrics = dir() + "/no/such/folder/m.jsonl";
  try {
    Parsed({"--metrics-out", metrics}, true);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(metrics + ".config: cannot write"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace recsys
