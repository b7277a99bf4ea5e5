#include "ps/embedding_table.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/hash.h"

namespace recsys {
namespace {

// Smallest slab (rows) and index (slots) allocated; avoids a string of tiny
// reallocations for the first rows.
constexpr std::size_t kMinRows = 16;
constexpr std::size_t kMinIndex = 32;
// Load factor limit of the index, as a fraction kLoadNum / kLoadDen. At 0.7
// linear probing needs ~2.2 probes for a hit and ~6 for a miss on average.
constexpr std::size_t kLoadNum = 7;
constexpr std::size_t kLoadDen = 10;

// Where `key` starts probing. Mix64 is a full-avalanche bijection, so keys
// that differ only in their high bits (field ids, multiples of 2^32) still
// spread over the low bits that pick the slot.
inline std::size_t HomeSlot(Key key, std::size_t mask) { return static_cast<std::size_t>(Mix64(key)) & mask; }

}  // namespace

EmbeddingTable::EmbeddingTable(const TableSpec& spec, std::uint64_t seed, const Optimizer* optimizer)
    : spec_(spec), seed_(seed), optimizer_(optimizer), stride_(0) {
  RECSYS_CHECK(optimizer_ != nullptr);
  RECSYS_CHECK(spec_.width > 0, "table '", spec_.name, "' has width ", spec_.width);
  const int state = optimizer_->StateSize(spec_.width);
  RECSYS_CHECK(state >= 0 && state <= std::numeric_limits<int>::max() - spec_.width);
  stride_ = spec_.width + state;
}

void EmbeddingTable::Pull(Key key, Real* out) {
  // FindOrCreate may move the slab: call it before taking slab_.data().
  const std::size_t i = FindOrCreate(key);
  const Real* row = slab_.data() + i * static_cast<std::size_t>(stride_);
  std::memcpy(out, row, sizeof(Real) * static_cast<std::size_t>(spec_.width));
}

void EmbeddingTable::Push(Key key, const Real* grad) {
  const std::size_t i = FindOrCreate(key);  // before slab_.data(), as in Pull
  Real* row = slab_.data() + i * static_cast<std::size_t>(stride_);
  optimizer_->Update(row, row + spec_.width, grad, spec_.width);
}

const Real* EmbeddingTable::Find(Key key) const {
  if (index_.empty()) return nullptr;
  const std::uint32_t entry = index_[Probe(key)];
  if (entry == 0) return nullptr;
  return slab_.data() + (entry - 1) * static_cast<std::size_t>(stride_);
}

void EmbeddingTable::Reserve(std::size_t rows) {
  RECSYS_CHECK(rows <= kMaxRows, "table '", spec_.name, "': cannot hold ", rows, " rows");
  if (rows > keys_.capacity()) {
    // reserve() allocates exactly what is asked, so a known size costs no
    // growth slack.
    slab_.reserve(rows * static_cast<std::size_t>(stride_));
    keys_.reserve(rows);
  }
  const std::size_t capacity = IndexCapacityFor(rows);
  if (capacity > index_.size()) Rehash(capacity);
}

// ---- Addition for checkpoints ----
void EmbeddingTable::Insert(Key key, const Real* values, std::size_t n) {
  RECSYS_CHECK(n <= static_cast<std::size_t>(stride_), "insert of ", n, " floats into rows of ", stride_);
  const std::size_t i = FindOrCreate(key);  // before slab_.data(), as in Pull
  std::memcpy(slab_.data() + i * static_cast<std::size_t>(stride_), values, n * sizeof(Real));
}
// ---- End of addition ----

std::size_t EmbeddingTable::bytes() const {
  return slab_.capacity() * sizeof(Real) + keys_.capacity() * sizeof(Key) +
         index_.capacity() * sizeof(std::uint32_t);
}

std::size_t EmbeddingTable::Probe(Key key) const {
  std::size_t slot = HomeSlot(key, index_mask_);
  // Terminates: the load factor keeps at least 30% of the slots empty.
  for (;;) {
    const std::uint32_t entry = index_[slot];
    if (entry == 0 || keys_[entry - 1] == key) return slot;
    slot = (slot + 1) & index_mask_;
  }
}

std::size_t EmbeddingTable::FindOrCreate(Key key) {
  if (index_.empty()) Rehash(kMinIndex);
  std::size_t slot = Probe(key);
  if (index_[slot] != 0) return index_[slot] - 1;

  if ((num_rows_ + 1) * kLoadDen > index_.size() * kLoadNum) {
    Rehash(index_.size() * 2);
    slot = Probe(key);  // the empty slot moved with the new capacity
  }
  const std::size_t i = AppendRow(key);
  index_[slot] = static_cast<std::uint32_t>(i + 1);
  return i;
}

std::size_t EmbeddingTable::AppendRow(Key key) {
  RECSYS_CHECK(num_rows_ < kMaxRows, "table '", spec_.name, "' is full at ", num_rows_, " rows");
  if (num_rows_ == keys_.capacity()) {
    // Grow by 1.5x rather than the library's 2x: the slab is most of a
    // server's memory, and 1.5x bounds both the idle slack (a third) and the
    // peak while the old and the new slab coexist during the copy.
    std::size_t rows = std::max(kMinRows, num_rows_ + num_rows_ / 2);
    rows = std::min(rows, kMaxRows);
    slab_.reserve(rows * static_cast<std::size_t>(stride_));
    keys_.reserve(rows);
  }
  const std::size_t i = num_rows_;
  // Within capacity: neither call reallocates.
  slab_.resize(slab_.size() + static_cast<std::size_t>(stride_));
  keys_.push_back(key);
  ++num_rows_;

  Real* row = slab_.data() + i * static_cast<std::size_t>(stride_);
  InitRow(spec_, seed_, key, row);
  optimizer_->InitState(row + spec_.width, spec_.width);
  return i;
}

void EmbeddingTable::Rehash(std::size_t capacity) {
  RECSYS_CHECK(capacity > 0 && (capacity & (capacity - 1)) == 0, "capacity ", capacity);
  RECSYS_CHECK(num_rows_ * kLoadDen <= capacity * kLoadNum);
  // A fresh vector rather than assign(): it frees the old index now and is
  // allocated at exactly `capacity`.
  std::vector<std::uint32_t>(capacity, 0).swap(index_);
  index_mask_ = capacity - 1;
  // Rebuild from the keys, in slab order: a sequential read, and no key
  // comparisons, since keys are unique.
  for (std::size_t i = 0; i < num_rows_; ++i) {
    std::size_t slot = HomeSlot(keys_[i], index_mask_);
    while (index_[slot] != 0) slot = (slot + 1) & index_mask_;
    index_[slot] = static_cast<std::uint32_t>(i + 1);
  }
}

std::size_t EmbeddingTable::IndexCapacityFor(std::size_t rows) {
  std::size_t capacity = kMinIndex;
  while (rows * kLoadDen > capacity * kLoadNum) capacity *= 2;
  return capacity;
}

}  // namespace recsys
