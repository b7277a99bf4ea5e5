#include "common/error.h"

namespace recsys {

void ThrowInputError(const std::string& file, std::int64_t line, const std::string& message) {
  if (line > 0) throw InputError(Concat(file, ":", line, ": ", message));
  throw InputError(Concat(file, ": ", message));
}

void CheckFailed(const char* file, int line, const char* condition, const std::string& detail) {
  std::string what = Concat(file, ":", line, ": check failed: ", condition);
  if (!detail.empty()) what += Concat(" (", detail, ")");
  throw InternalError(what);
}

}  // namespace recsys

// ---- log.h ----
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/log.h"

namespace recsys {
namespace {
std::mutex& LogMutex() {
  static std::mutex mu;
  return mu;
}
std::string& PrefixStorage() {
  static std::string prefix;
  return prefix;
}
}  // namespace

void SetLogPrefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(LogMutex());
  PrefixStorage() = prefix;
}

const std::string& LogPrefix() { return PrefixStorage(); }

void LogLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(LogMutex());
  const std::string& prefix = PrefixStorage();
  if (prefix.empty()) {
    std::fprintf(stderr, "%s\n", line.c_str());
  } else {
    std::fprintf(stderr, "[%s] %s\n", prefix.c_str(), line.c_str());
  }
  std::fflush(stderr);
}

bool VerboseLogging() {
  static const bool verbose = std::getenv("RECSYS_VERBOSE") != nullptr;
  return verbose;
}

}  // namespace recsys
