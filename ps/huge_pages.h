// Memory for large tables, backed by transparent huge pages where the kernel
// grants them on request (Linux's "madvise" mode, as on this project's
// machines).
//
// A table's rows are read at random: from a table larger than the TLB's
// reach (~8 MiB with 4 KiB pages), nearly every row read also walks the
// page table. 2 MiB pages cover 512 times more per TLB entry. An allocation
// of at least kHugePageBytes is its own mapping (mmap), aligned to 2 MiB,
// advised MADV_HUGEPAGE over the whole 2 MiB blocks it covers and unmapped
// when freed; smaller ones come from operator new. So:
//   - resident memory stays within the allocation, rounded up to 4 KiB: a
//     partial block at the end is not advised (and the mapping ends there),
//     so the kernel never maps 2 MiB for a few bytes of it;
//   - the advice goes with the mapping, never to other heap memory, and
//     malloc's own thresholds are not touched.
//
// RECSYS_HUGE_PAGES=0 in the environment makes every allocation ordinary
// (no mapping, alignment or advice), for measurements (README
// "Performance", session 9). It cannot stop a kernel whose huge pages are
// "always" on.
#ifndef RECSYS_PS_HUGE_PAGES_H_
#define RECSYS_PS_HUGE_PAGES_H_

#include <cstddef>
#include <vector>

namespace recsys {

constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// Whether large allocations get their own advised mapping (false with
// RECSYS_HUGE_PAGES=0; read once per process).
bool TableHugePagesOn();

// Allocates `bytes` (> 0) as described above; throws std::bad_alloc.
void* AllocateTableMemory(std::size_t bytes);
// Frees what AllocateTableMemory(bytes) returned, with the same `bytes`.
void FreeTableMemory(void* p, std::size_t bytes) noexcept;

// A std::allocator for the tables' arrays (EmbeddingTable's slab and index).
template <typename T>
struct TableAllocator {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "small allocations use plain operator new");
  using value_type = T;
  TableAllocator() = default;
  template <typename U>
  TableAllocator(const TableAllocator<U>&) noexcept {}  // NOLINT: implicit, as allocators are
  T* allocate(std::size_t n) { return static_cast<T*>(AllocateTableMemory(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { FreeTableMemory(p, n * sizeof(T)); }
};
// Stateless: any two compare equal.
template <typename T, typename U>
bool operator==(const TableAllocator<T>&, const TableAllocator<U>&) {
  return true;
}
template <typename T, typename U>
bool operator!=(const TableAllocator<T>&, const TableAllocator<U>&) {
  return false;
}

// An array in huge pages once it is large.
template <typename T>
using TableVector = std::vector<T, TableAllocator<T>>;

}  // namespace recsys

#endif  // RECSYS_PS_HUGE_PAGES_H_
