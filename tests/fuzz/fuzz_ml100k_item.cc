// Fuzzes the ml-100k item-features reader: the input is u.item
// (id|title|release date|video release date|url|19 genre flags); u.data is a
// fixed valid file.
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  fuzz::WriteScratch("u.data", "1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n");
  fuzz::WriteScratch("u.item", {reinterpret_cast<const char*>(data), size});
  DataOptions options;
  options.format = "ml-100k";
  options.path = fuzz::ScratchDir();
  fuzz::ReadAndCheck(options);
  return 0;
}
