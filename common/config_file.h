// Config files: `recsys_worker --config run.toml [options]`. Every option
// may come from the file; options on the command line override it.
//
// The file is a flat subset of TOML, one option per line:
//
//   # a comment
//   model = "fm"          # strings in double (or single) quotes
//   dim = 64              # numbers bare
//   sync = true           # options without a value: true or false
//   topk = "5,10"         # or an array: topk = [5, 10]
//   batch_size = 512      # '_' and '-' in names are the same
//
// Tables ([section]), multi-line strings and dotted keys are refused, so
// every accepted file is also valid TOML (Python's tomllib reads it).
//
// The file is expanded into arguments before ParseArgs sees them: the
// file's entries first as `--key=value`, then the command line without
// `--config FILE`. A file entry for an option the command line also gives is
// dropped, so the command line wins whatever the parser does with repeated
// options. A boolean option given as `--name=false` (in the file or on the
// command line) is removed, since ParseArgs treats any occurrence as true.
#ifndef RECSYS_COMMON_CONFIG_FILE_H_
#define RECSYS_COMMON_CONFIG_FILE_H_

#include <string>
#include <vector>

#include "common/config.h"

namespace recsys {

// An argument vector that owns its strings and hands out an argv view for
// ParseArgs. The view stays valid while the object lives and is not
// modified; moving keeps it valid (the strings do not move), copying is
// not allowed.
class ArgList {
 public:
  ArgList() = default;
  explicit ArgList(std::vector<std::string> args);
  ArgList(const ArgList&) = delete;
  ArgList& operator=(const ArgList&) = delete;
  ArgList(ArgList&&) = default;
  ArgList& operator=(ArgList&&) = default;

  int argc() const { return static_cast<int>(args_.size()); }
  const char* const* argv() const { return pointers_.data(); }
  const std::vector<std::string>& args() const { return args_; }

 private:
  std::vector<std::string> args_;
  std::vector<const char*> pointers_;  // into args_, then a final nullptr
};

// One option the parser knows: its long name and whether it takes a value.
struct OptionInfo {
  std::string name;  // without the leading "--"
  bool takes_value = true;
};

// The options ParseArgs accepts, read from its --help text (so options other
// files add are known here without a second list to keep in step).
const std::vector<OptionInfo>& KnownOptions();

// Reads the `--config FILE` (or `--config=FILE`) named in argv, if any, and
// returns the expanded argument vector described above; without --config,
// argv as it is (less `--name=false` booleans). Throws InputError naming the
// file and line for a missing file, a malformed line, an unknown or repeated
// key and a value of the wrong kind; InputError for --config given twice.
ArgList ExpandConfigFile(int argc, const char* const* argv);

// ExpandConfigFile, then ParseArgs on the result. An error ParseArgs reports
// for an option whose value came from the file (e.g. "--dim must be
// positive") is prefixed with that file and line. When `save` is true and
// the run has --metrics-out FILE, writes the effective arguments to
// FILE.config (see FormatConfigFile) before returning; the main program sets
// it on one rank only. Throws InputError.
ParsedArgs ParseArgsWithConfigFile(int argc, const char* const* argv, bool save);

// The arguments of `args` (argv[0] left out) as a config file that --config
// reads back, headed by `summary` (DescribeConfig) as a comment.
// --metrics-out is written commented out, so a rerun from the file does not
// overwrite the first run's metrics.
std::string FormatConfigFile(const std::vector<std::string>& args, const std::string& summary);

}  // namespace recsys

#endif  // RECSYS_COMMON_CONFIG_FILE_H_
