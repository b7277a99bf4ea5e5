// First-fit allocation of blocks in a shared area (Transport::OwnArea): a
// worker places its pull replies, pushes and pull requests above 4 KiB
// there (PsClient::kMinPlacedBytes), a few blocks at a time. The lowest
// free offset is taken first, so the pages in use (backed as first written)
// stay those of the peak of replies in flight.
#ifndef RECSYS_COMMON_AREA_ALLOCATOR_H_
#define RECSYS_COMMON_AREA_ALLOCATOR_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "common/error.h"

namespace recsys {

class AreaAllocator {
 public:
  // Blocks start at multiples of kAlign (frames need 8; a cache line keeps
  // two replies from sharing one).
  static constexpr std::size_t kAlign = 64;

  explicit AreaAllocator(std::size_t size = 0) : size_(size) {}

  // Finds a free block of `bytes` (> 0): sets *offset and returns true, or
  // returns false when no gap is large enough.
  bool Allocate(std::size_t bytes, std::size_t* offset) {
    RECSYS_CHECK(bytes > 0, "empty block");
    if (bytes > size_) return false;
    const std::size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
    std::size_t at = 0;
    std::size_t i = 0;
    for (; i < used_.size(); ++i) {
      if (used_[i].first - at >= need) break;
      at = used_[i].first + used_[i].second;
    }
    if (i == used_.size() && (at > size_ || size_ - at < need)) return false;
    used_.insert(used_.begin() + static_cast<std::ptrdiff_t>(i), {at, need});
    *offset = at;
    return true;
  }

  // Frees the block at `offset` (from Allocate, not yet freed).
  void Free(std::size_t offset) {
    const auto it = std::lower_bound(used_.begin(), used_.end(), std::make_pair(offset, std::size_t{0}));
    RECSYS_CHECK(it != used_.end() && it->first == offset, "no block at offset ", offset);
    used_.erase(it);
  }

  std::size_t blocks() const { return used_.size(); }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_;
  std::vector<std::pair<std::size_t, std::size_t>> used_;  // (offset, bytes), by offset
};

}  // namespace recsys

#endif  // RECSYS_COMMON_AREA_ALLOCATOR_H_
