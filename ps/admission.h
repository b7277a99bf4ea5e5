// Id admission (--min-count N): counts the sightings of keys that have no
// row yet, so a row is created only at a key's N-th sighting.
//
// The counts are exact (a key's count is never raised by another key), so
// which keys are admitted, and when, does not depend on which other keys
// share the server: a run's result stays independent of the number of
// servers. A count-min sketch would be smaller but lets colliding keys,
// whose set depends on the sharding, admit each other early.
//
// Layout: open addressing with linear probing over parallel slot arrays, a
// 64-bit key and an 8-bit count per slot (count 0 = empty slot), plus a
// 32-bit last-seen epoch per slot when epochs are tracked (so that pending
// keys expire with --expire-after like rows do). Load <= 0.7, so about 13 to
// 26 bytes per pending key (17 to 34 with epochs), against 8 + 4 * stride
// for a row. An admitted key leaves the counter (backward-shift deletion, no
// tombstones).
//
// Thread safety: none; owned by one ServerShard.
#ifndef RECSYS_PS_ADMISSION_H_
#define RECSYS_PS_ADMISSION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace recsys {

class AdmissionCounter {
 public:
  // The largest --min-count: counts are 8-bit.
  static constexpr int kMaxMinCount = 255;

  // min_count in [2, kMaxMinCount] (1 needs no counter: RECSYS_CHECK).
  AdmissionCounter(int min_count, bool track_epochs);

  // Records one sighting of `key` in `epoch`. Returns true if this is its
  // min_count-th sighting: the key is admitted and forgotten here (the
  // caller creates its row). Otherwise counts it and returns false.
  bool See(Key key, std::uint32_t epoch);
  // The pending count of `key` (0 if none).
  int Count(Key key) const;
  // Sets the pending count of `key` (1 <= count < min_count; larger counts
  // are clamped to min_count - 1, so the next sighting admits) and its epoch.
  // For checkpoints.
  void Restore(Key key, int count, std::uint32_t epoch);
  // Forgets the keys last seen in an epoch < `epoch` (needs epochs tracked).
  // Returns how many.
  std::size_t DropSeenBefore(std::uint32_t epoch);
  // Forgets every pending count.
  void Clear();

  // Bytes that counting one more key would allocate now (0 if it fits).
  std::size_t GrowthBytes() const;
  std::size_t size() const { return size_; }
  std::size_t bytes() const;
  int min_count() const { return min_count_; }
  bool tracks_epochs() const { return track_epochs_; }

  // Visits every pending key: fn(key, count, epoch (0 if not tracked)).
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (std::size_t s = 0; s < counts_.size(); ++s) {
      if (counts_[s] != 0) fn(keys_[s], static_cast<int>(counts_[s]), track_epochs_ ? epochs_[s] : 0u);
    }
  }

 private:
  // The slot of `key`, or the empty slot where it would go. Slots non-empty.
  std::size_t Probe(Key key) const;
  // Inserts a new key (not present) with count and epoch, growing if needed.
  void Add(Key key, std::uint8_t count, std::uint32_t epoch);
  // Empties slot `s` by backward-shift deletion.
  void Erase(std::size_t s);
  // Rebuilds the slots at `capacity` (a power of two), keeping the entries.
  void Rehash(std::size_t capacity);

  // Constant after construction.
  int min_count_;
  bool track_epochs_;

  std::vector<Key> keys_;
  std::vector<std::uint8_t> counts_;   // 0: empty slot
  std::vector<std::uint32_t> epochs_;  // empty unless track_epochs_
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_PS_ADMISSION_H_
