// Shared by the data-reader fuzz targets. The readers take paths, so each
// input is written to files in a private scratch folder and read back through
// ReadDataset, exactly as a job reads them. The contract under test
// (common/data/dataset.h): any bytes either parse or throw InputError; a
// crash, a hang, a sanitizer report or any other exception is a finding.
#ifndef RECSYS_TESTS_FUZZ_READER_FUZZ_H_
#define RECSYS_TESTS_FUZZ_READER_FUZZ_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/data/dataset.h"

namespace recsys {
namespace fuzz {

// The scratch folder of this process (created on first use under $TMPDIR or
// /tmp, removed at exit). Not thread-safe; libFuzzer runs inputs one by one.
const std::string& ScratchDir();

// Writes `contents` to ScratchDir()/name and returns the path.
std::string WriteScratch(const std::string& name, std::string_view contents);
// Removes ScratchDir()/name if present (a file left by an earlier input).
void RemoveScratch(const std::string& name);

// Splits an input into at most `max_parts` parts at the separator line
// "\n%%\n", so one input can hold several files (e.g. ratings.dat, users.dat,
// movies.dat). Fewer separators give fewer parts.
std::vector<std::string_view> SplitParts(const std::uint8_t* data, std::size_t size, std::size_t max_parts);

// Reads `options` keeping every other user (so both the kept and the
// skipped paths run), then splits the result leave-one-out as a worker
// does, and checks what dataset.h promises of a successful read. Returns
// normally on success or InputError; anything else escapes (a finding).
void ReadAndCheck(const DataOptions& options);

}  // namespace fuzz
}  // namespace recsys

#endif  // RECSYS_TESTS_FUZZ_READER_FUZZ_H_
