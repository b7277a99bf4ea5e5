// Fuzzes the ml-100k ratings reader: the input is u.data (tab-separated
// user item rating timestamp), without side-feature files.
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  fuzz::WriteScratch("u.data", {reinterpret_cast<const char*>(data), size});
  DataOptions options;
  options.format = "ml-100k";
  options.path = fuzz::ScratchDir();
  options.side_features = false;
  fuzz::ReadAndCheck(options);
  return 0;
}
