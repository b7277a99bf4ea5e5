// Fuzzes the csv reader and, when the input has a second part after a line
// "%%", an --eval-candidates file (NCF .test.negative syntax) checked
// against the csv data.
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  const auto parts = fuzz::SplitParts(data, size, 2);
  DataOptions options;
  options.format = "csv";
  options.path = fuzz::WriteScratch("r.csv", parts[0]);
  if (parts.size() > 1) options.eval_candidates = fuzz::WriteScratch("c.negative", parts[1]);
  fuzz::ReadAndCheck(options);
  return 0;
}
