#include "ps/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace recsys {
namespace {

constexpr std::size_t kPageBytes = 4096;

// Whether an allocation of `bytes` gets its own mapping. Depends on the
// size alone (and the setting, read once), so that a free finds out again
// how its memory was allocated.
bool Huge(std::size_t bytes) { return bytes >= kHugePageBytes && TableHugePagesOn(); }

std::size_t RoundUp(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

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
  // Map 2 MiB more than needed, then unmap the head before the first 2 MiB
  // boundary and the tail past the allocation.
  const std::size_t length = RoundUp(bytes, kPageBytes);
  void* map = mmap(nullptr, length + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(map);
  const std::uintptr_t aligned = RoundUp(start, kHugePageBytes);
  if (aligned > start) munmap(map, aligned - start);
  const std::size_t tail = (start + length + kHugePageBytes) - (aligned + length);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + length), tail);
  void* p = reinterpret_cast<void*>(aligned);
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
    munmap(p, RoundUp(bytes, kPageBytes));
  }
}

}  // namespace recsys
