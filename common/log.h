// Minimal logging to stderr with the rank as prefix. Messages meant for the
// person running the job (per-epoch lines) go to stdout from the coordinator.
#ifndef RECSYS_COMMON_LOG_H_
#define RECSYS_COMMON_LOG_H_

#include <string>

#include "common/error.h"

namespace recsys {

// Sets the prefix ("rank 3 (server)") of this process's log lines.
void SetLogPrefix(const std::string& prefix);
const std::string& LogPrefix();
// Writes one line to stderr, atomically with respect to other threads.
void LogLine(const std::string& line);
// Off unless RECSYS_VERBOSE is set in the environment.
bool VerboseLogging();

}  // namespace recsys

#define RECSYS_LOG(...) ::recsys::LogLine(::recsys::Concat(__VA_ARGS__))
#define RECSYS_VLOG(...)                                                   \
  do {                                                                     \
    if (::recsys::VerboseLogging()) ::recsys::LogLine(::recsys::Concat(__VA_ARGS__)); \
  } while (0)

#endif  // RECSYS_COMMON_LOG_H_
