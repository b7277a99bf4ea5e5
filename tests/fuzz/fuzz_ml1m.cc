// Fuzzes the ml-1m readers. The input holds up to three files separated by
// a line "%%": ratings.dat (user::item::rating::ts), then users.dat
// (id::gender::age::occupation::zip) and movies.dat (id::title::genres), each
// absent when the input has fewer parts.
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  const auto parts = fuzz::SplitParts(data, size, 3);
  const char* names[] = {"ratings.dat", "users.dat", "movies.dat"};
  for (std::size_t i = 0; i < 3; ++i) {
    if (i < parts.size()) {
      fuzz::WriteScratch(names[i], parts[i]);
    } else {
      fuzz::RemoveScratch(names[i]);
    }
  }
  DataOptions options;
  options.format = "ml-1m";
  options.path = fuzz::ScratchDir();
  fuzz::ReadAndCheck(options);
  return 0;
}
