#include "tests/fuzz/reader_fuzz.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "common/data/split.h"
#include "common/error.h"

namespace recsys {
namespace fuzz {
namespace {

// A broken promise of the reader: report it as a crash, with what broke.
void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: reader contract broken: %s\n", what);
  std::abort();
}

class Scratch {
 public:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/recsys_fuzz.XXXXXX";
    Require(::mkdtemp(pattern.data()) != nullptr, "cannot create the scratch folder");
    dir_ = pattern;
  }
  ~Scratch() {
    for (const std::string& name : names_) std::remove((dir_ + "/" + name).c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  void Remember(const std::string& name) {
    if (std::find(names_.begin(), names_.end(), name) == names_.end()) names_.push_back(name);
  }

 private:
  std::string dir_;
  std::vector<std::string> names_;
};

Scratch& TheScratch() {
  static Scratch scratch;
  return scratch;
}

}  // namespace

const std::string& ScratchDir() { return TheScratch().dir(); }

std::string WriteScratch(const std::string& name, std::string_view contents) {
  TheScratch().Remember(name);
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  Require(static_cast<bool>(out), "cannot write a scratch file");
  return path;
}

void RemoveScratch(const std::string& name) { std::remove((ScratchDir() + "/" + name).c_str()); }

std::vector<std::string_view> SplitParts(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
  constexpr std::string_view kSeparator = "\n%%\n";
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const std::size_t at = rest.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(rest.substr(0, at + 1));  // keep the line's newline
    rest.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(rest);
  return parts;
}

void ReadAndCheck(const DataOptions& options) {
  Dataset dataset;
  try {
    dataset = ReadDataset(options, [](std::uint64_t user) { return user % 2 == 0; });
  } catch (const InputError&) {
    return;  // refused with a message: the expected outcome for bad bytes
  }
  // What dataset.h promises of a successful read.
  Require(std::is_sorted(dataset.items.begin(), dataset.items.end()), "items not sorted");
  Require(std::adjacent_find(dataset.items.begin(), dataset.items.end()) == dataset.items.end(),
          "items not unique");
  const auto known = [&](std::uint64_t item) {
    return std::binary_search(dataset.items.begin(), dataset.items.end(), item);
  };
  for (const Interaction& x : dataset.interactions) {
    Require(x.user % 2 == 0, "interaction of a user the filter dropped");
    Require(known(x.item), "interaction item missing from items");
  }
  for (const auto& [user, item] : dataset.test_item) {
    Require(user % 2 == 0, "test item of a user the filter dropped");
    Require(known(item), "test item missing from items");
  }
  for (const auto& [user, candidates] : dataset.test_candidates) {
    for (const std::uint64_t c : candidates) Require(known(c), "candidate missing from items");
  }
  // What a worker does next with the data.
  for (const bool validation : {false, true}) {
    SplitStats stats;
    const std::vector<UserHistory> users = LeaveOneOutSplit(dataset, validation, &stats);
    Require(users.size() == stats.users, "split counts");
  }
}

}  // namespace fuzz
}  // namespace recsys
