// The item universe: every item a run may recommend, negative-sample or rank.
// The dense range [0, dense) (the synthetic generator's items, held as one
// number however many there are) plus a sorted list of other ids (a file's
// items, which may be anything). Header only.
#ifndef RECSYS_COMMON_DATA_ITEM_UNIVERSE_H_
#define RECSYS_COMMON_DATA_ITEM_UNIVERSE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace recsys {

class ItemUniverse {
 public:
  ItemUniverse() = default;
  // The items [0, dense) and those of `listed` (sorted and unique; ids below
  // `dense` are dropped as already in). Implicit from a list, for callers
  // that have only one.
  ItemUniverse(std::vector<std::uint64_t> listed) : ItemUniverse(0, std::move(listed)) {}  // NOLINT
  ItemUniverse(std::uint64_t dense, std::vector<std::uint64_t> listed) : dense_(dense), listed_(std::move(listed)) {
    listed_.erase(listed_.begin(), std::lower_bound(listed_.begin(), listed_.end(), dense_));
  }

  std::size_t size() const { return static_cast<std::size_t>(dense_) + listed_.size(); }
  bool empty() const { return size() == 0; }
  // The i-th item in increasing order, i < size(): O(1).
  std::uint64_t operator[](std::size_t i) const { return i < dense_ ? i : listed_[i - dense_]; }
  // O(1) in the dense range, O(log listed) beyond it.
  bool Contains(std::uint64_t item) const {
    return item < dense_ || std::binary_search(listed_.begin(), listed_.end(), item);
  }
  // Calls fn(item) for every item in increasing order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (std::uint64_t item = 0; item < dense_; ++item) fn(item);
    for (const std::uint64_t item : listed_) fn(item);
  }

  std::uint64_t dense() const { return dense_; }
  const std::vector<std::uint64_t>& listed() const { return listed_; }

 private:
  std::uint64_t dense_ = 0;
  std::vector<std::uint64_t> listed_;  // sorted, unique, all >= dense_
};

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_ITEM_UNIVERSE_H_
