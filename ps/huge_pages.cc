#include "ps/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace recsys {
namespace {

// Whether an allocation of `bytes` gets the huge-page treatment. Depends on
// the size alone (and the setting, read once), so that a free finds out
// again how its memory was allocated.
bool Huge(std::size_t bytes) { return bytes >= kHugePageBytes && TableHugePagesOn(); }

}  // namespace

bool TableHugePagesOn() {
  static const bool on = [] {
    const char* env = std::getenv("RECSYS_HUGE_PAGES");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return on;
}

void* AllocateTableMemory(std::size_t bytes) {
  if (!Huge(bytes)) return ::operator new(bytes);
  void* p = ::operator new(bytes, std::align_val_t{kHugePageBytes});
#ifdef MADV_HUGEPAGE
  // Advice only: a kernel without transparent huge pages (or with them off)
  // refuses it, and the memory stays in ordinary pages.
  madvise(p, bytes & ~(kHugePageBytes - 1), MADV_HUGEPAGE);
#endif
  return p;
}

void FreeTableMemory(void* p, std::size_t bytes) noexcept {
  if (!Huge(bytes)) {
    ::operator delete(p);
  } else {
    ::operator delete(p, std::align_val_t{kHugePageBytes});
  }
}

}  // namespace recsys
