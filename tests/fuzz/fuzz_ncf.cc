// Fuzzes the NCF reader. The input holds three files separated by a line
// "%%": PREFIX.train.rating and PREFIX.test.rating (user item rating ts,
// tab-separated) and PREFIX.test.negative ("(user,item)\tneg\tneg..."); a
// missing part is an empty file. The readers check the three against each
// other, which is most of the logic here.
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  const auto parts = fuzz::SplitParts(data, size, 3);
  const char* names[] = {"d.train.rating", "d.test.rating", "d.test.negative"};
  for (std::size_t i = 0; i < 3; ++i) fuzz::WriteScratch(names[i], i < parts.size() ? parts[i] : "");
  DataOptions options;
  options.format = "ncf";
  options.path = fuzz::ScratchDir() + "/d";
  fuzz::ReadAndCheck(options);
  return 0;
}
