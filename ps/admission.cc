#include "ps/admission.h"

#include <algorithm>

#include "common/error.h"
#include "common/hash.h"

namespace recsys {
namespace {

constexpr std::size_t kMinSlots = 32;
constexpr std::size_t kLoadNum = 7;
constexpr std::size_t kLoadDen = 10;

// A different mix than the tables' index, so that a key's slot here is not
// correlated with its slot there (no shared clusters).
inline std::size_t HomeSlot(Key key, std::size_t mask) {
  return static_cast<std::size_t>(Mix64(key ^ 0x9e3779b97f4a7c15ULL)) & mask;
}

}  // namespace

AdmissionCounter::AdmissionCounter(int min_count, bool track_epochs)
    : min_count_(min_count), track_epochs_(track_epochs) {
  RECSYS_CHECK(min_count >= 2 && min_count <= kMaxMinCount, "min count ", min_count);
}

std::size_t AdmissionCounter::Probe(Key key) const {
  std::size_t s = HomeSlot(key, mask_);
  // Terminates: the load factor keeps 30% of the slots empty.
  while (counts_[s] != 0 && keys_[s] != key) s = (s + 1) & mask_;
  return s;
}

int AdmissionCounter::Count(Key key) const {
  if (counts_.empty()) return 0;
  return counts_[Probe(key)];
}

bool AdmissionCounter::See(Key key, std::uint32_t epoch) {
  if (!counts_.empty()) {
    const std::size_t s = Probe(key);
    if (counts_[s] != 0) {
      if (counts_[s] + 1 >= min_count_) {
        Erase(s);
        return true;
      }
      ++counts_[s];
      if (track_epochs_) epochs_[s] = epoch;
      return false;
    }
  }
  Add(key, 1, epoch);  // min_count >= 2: one sighting never admits
  return false;
}

void AdmissionCounter::Restore(Key key, int count, std::uint32_t epoch) {
  RECSYS_CHECK(count >= 1, "pending count ", count);
  const auto c = static_cast<std::uint8_t>(std::min(count, min_count_ - 1));
  if (!counts_.empty()) {
    const std::size_t s = Probe(key);
    if (counts_[s] != 0) {
      counts_[s] = c;
      if (track_epochs_) epochs_[s] = epoch;
      return;
    }
  }
  Add(key, c, epoch);
}

void AdmissionCounter::Add(Key key, std::uint8_t count, std::uint32_t epoch) {
  if (counts_.empty()) {
    Rehash(kMinSlots);
  } else if ((size_ + 1) * kLoadDen > counts_.size() * kLoadNum) {
    Rehash(counts_.size() * 2);
  }
  const std::size_t s = Probe(key);
  keys_[s] = key;
  counts_[s] = count;
  if (track_epochs_) epochs_[s] = epoch;
  ++size_;
}

void AdmissionCounter::Erase(std::size_t hole) {
  // Backward shift: move later entries of the cluster into the hole when
  // their home slot does not lie cyclically in (hole, j].
  std::size_t j = hole;
  for (;;) {
    j = (j + 1) & mask_;
    if (counts_[j] == 0) break;
    const std::size_t home = HomeSlot(keys_[j], mask_);
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    keys_[hole] = keys_[j];
    counts_[hole] = counts_[j];
    if (track_epochs_) epochs_[hole] = epochs_[j];
    hole = j;
  }
  counts_[hole] = 0;
  --size_;
}

void AdmissionCounter::Rehash(std::size_t capacity) {
  RECSYS_CHECK(capacity > 0 && (capacity & (capacity - 1)) == 0 && size_ * kLoadDen <= capacity * kLoadNum);
  std::vector<Key> keys(capacity);
  std::vector<std::uint8_t> counts(capacity, 0);
  std::vector<std::uint32_t> epochs(track_epochs_ ? capacity : 0);
  const std::size_t mask = capacity - 1;
  for (std::size_t s = 0; s < counts_.size(); ++s) {
    if (counts_[s] == 0) continue;
    std::size_t t = HomeSlot(keys_[s], mask);
    while (counts[t] != 0) t = (t + 1) & mask;
    keys[t] = keys_[s];
    counts[t] = counts_[s];
    if (track_epochs_) epochs[t] = epochs_[s];
  }
  keys_.swap(keys);
  counts_.swap(counts);
  epochs_.swap(epochs);
  mask_ = mask;
}

std::size_t AdmissionCounter::DropSeenBefore(std::uint32_t epoch) {
  RECSYS_CHECK(track_epochs_, "the admission counter does not track epochs");
  std::size_t dropped = 0;
  for (std::size_t s = 0; s < counts_.size(); ++s) {
    if (counts_[s] != 0 && epochs_[s] < epoch) {
      counts_[s] = 0;
      ++dropped;
    }
  }
  if (dropped == 0) return 0;
  size_ -= dropped;
  if (size_ == 0) {
    Clear();
    return dropped;
  }
  // Rebuild at the size the survivors need (this also closes the holes).
  std::size_t capacity = kMinSlots;
  while (size_ * kLoadDen > capacity * kLoadNum) capacity *= 2;
  Rehash(capacity);
  return dropped;
}

void AdmissionCounter::Clear() {
  std::vector<Key>().swap(keys_);
  std::vector<std::uint8_t>().swap(counts_);
  std::vector<std::uint32_t>().swap(epochs_);
  mask_ = 0;
  size_ = 0;
}

std::size_t AdmissionCounter::GrowthBytes() const {
  const std::size_t slot_bytes = sizeof(Key) + 1 + (track_epochs_ ? sizeof(std::uint32_t) : 0);
  if (counts_.empty()) return kMinSlots * slot_bytes;
  if ((size_ + 1) * kLoadDen > counts_.size() * kLoadNum) return counts_.size() * slot_bytes;  // doubles
  return 0;
}

std::size_t AdmissionCounter::bytes() const {
  return keys_.capacity() * sizeof(Key) + counts_.capacity() + epochs_.capacity() * sizeof(std::uint32_t);
}

}  // namespace recsys
