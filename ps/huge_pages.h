// Memory for large tables, backed by transparent huge pages where the kernel
// allows them on request (Linux "madvise" mode, as on this project's
// machines).
//
// A table's rows are read at random: from a table larger than the TLB's
// reach (~8 MiB with 4 KiB pages), nearly every row read also walks the
// page table. 2 MiB pages cover 512 times more per TLB entry. An allocation
// of at least kHugePageBytes is aligned to it and advised (MADV_HUGEPAGE)
// over the 2 MiB blocks it covers whole; smaller ones are ordinary. Resident
// memory stays within the allocation: a partial block at the end is not
// advised, so the kernel never maps 2 MiB for a few bytes of it.
//
// RECSYS_HUGE_PAGES=0 in the environment turns the advice off (for
// measurements; README "Performance", session 9).
#ifndef RECSYS_PS_HUGE_PAGES_H_
#define RECSYS_PS_HUGE_PAGES_H_

#include <cstddef>
#include <vector>

namespace recsys {

constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// Whether large allocations are advised (false with RECSYS_HUGE_PAGES=0).
bool TableHugePagesOn();

// Allocates `bytes` (> 0) as described above; throws std::bad_alloc.
void* AllocateTableMemory(std::size_t bytes);
// Frees what AllocateTableMemory(bytes) returned, with the same `bytes`.
void FreeTableMemory(void* p, std::size_t bytes) noexcept;

// A std::allocator for the tables' arrays (EmbeddingTable's slab and index).
template <typename T>
struct TableAllocator {
  using value_type = T;
  TableAllocator() = default;
  template <typename U>
  TableAllocator(const TableAllocator<U>&) noexcept {}  // NOLINT: implicit, as allocators are
  T* allocate(std::size_t n) { return static_cast<T*>(AllocateTableMemory(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { FreeTableMemory(p, n * sizeof(T)); }
  friend bool operator==(const TableAllocator&, const TableAllocator&) { return true; }
  friend bool operator!=(const TableAllocator&, const TableAllocator&) { return false; }
};

// An array in huge pages once it is large.
template <typename T>
using TableVector = std::vector<T, TableAllocator<T>>;

}  // namespace recsys

#endif  // RECSYS_PS_HUGE_PAGES_H_
