#include "ps/embedding_table.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/hash.h"
#include "common/row_copy.h"

namespace recsys {
namespace {

// Smallest slab growth (rows) and index (slots) allocated; avoids a string
// of tiny reallocations for the first rows.
constexpr std::size_t kMinRows = 16;
constexpr std::size_t kMinIndex = 32;
// Load factor limit of the index, as a fraction kLoadNum / kLoadDen. At 0.7
// linear probing needs ~2.2 probes for a hit and ~6 for a miss on average.
constexpr std::size_t kLoadNum = 7;
constexpr std::size_t kLoadDen = 10;
// Bytes of the index per slot: the slab index and the tag.
constexpr std::size_t kSlotBytes = sizeof(std::uint32_t) + sizeof(std::uint8_t);

// A key's hash picks its home slot (the low bits) and its tag (the top 7
// bits, with the high bit set so that no tag is 0, an empty slot). Mix64 is
// a full-avalanche bijection, so keys that differ only in their high bits
// (field ids, multiples of 2^32) still spread over both.
inline std::size_t HomeSlot(std::uint64_t hash, std::size_t mask) { return static_cast<std::size_t>(hash) & mask; }
inline std::uint8_t TagOf(std::uint64_t hash) { return static_cast<std::uint8_t>(0x80 | (hash >> 57)); }

// Prefetches the cache lines (64 bytes) that hold the `bytes` bytes from p,
// the last one too when p is not at a line's start (a row of 33 floats, or
// Adam's state of 67, spans one more line than its size suggests, and the
// update count is in that last one).
inline void PrefetchBytes(const Real* p, std::size_t bytes) {
  if (bytes == 0) return;
  const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{63};
  const std::uintptr_t last = (reinterpret_cast<std::uintptr_t>(p) + bytes - 1) & ~std::uintptr_t{63};
  for (std::uintptr_t line = first; line <= last; line += 64) __builtin_prefetch(reinterpret_cast<const void*>(line));
}

// Reallocates v to exactly `capacity` elements (keeping its contents):
// reserve() may round up and never shrinks.
template <typename T>
void SetCapacity(TableVector<T>* v, std::size_t capacity) {
  if (v->capacity() == capacity) return;
  TableVector<T> fresh;
  fresh.reserve(capacity);
  fresh.assign(v->begin(), v->end());
  v->swap(fresh);
}

}  // namespace

EmbeddingTable::EmbeddingTable(const TableSpec& spec, std::uint64_t seed, const Optimizer* optimizer,
                               RowTracking tracking, std::size_t chunk_bytes)
    : spec_(spec), seed_(seed), optimizer_(optimizer), tracking_(tracking), stride_(0), state_size_(0) {
  RECSYS_CHECK(optimizer_ != nullptr);
  RECSYS_CHECK(spec_.width > 0, "table '", spec_.name, "' has width ", spec_.width);
  const int state = optimizer_->StateSize(spec_.width);
  RECSYS_CHECK(state >= 0 && state <= std::numeric_limits<int>::max() - spec_.width);
  stride_ = spec_.width + state;
  state_size_ = state;
  const std::size_t row_bytes = RawRowBytes() + (tracking_.epochs ? 4 : 0) + (tracking_.recency ? 4 : 0);
  chunk_shift_ = 0;
  while ((std::size_t{2} << chunk_shift_) * row_bytes <= chunk_bytes) ++chunk_shift_;
  chunk_rows_ = std::size_t{1} << chunk_shift_;
  chunk_mask_ = chunk_rows_ - 1;
}

void EmbeddingTable::Touch(std::size_t i) {
  Chunk& c = chunks_[i >> chunk_shift_];
  if (tracking_.epochs) c.epochs[i & chunk_mask_] = epoch_;
  if (tracking_.recency) c.ticks[i & chunk_mask_] = tick_;
}

template <typename Copy>
bool EmbeddingTable::PeekAt(std::size_t i, Key key, Real* out, bool touch, Copy copy) {
  if (i == kNone) {
    InitRow(spec_, seed_, key, out);
    return false;
  }
  if (touch) Touch(i);
  copy(out, RowAt(i), static_cast<std::size_t>(spec_.width));
  return true;
}

bool EmbeddingTable::UpdateAt(std::size_t i, const Real* grad) {
  if (i == kNone) return false;
  Touch(i);
  optimizer_->Update(RowAt(i), StateAt(i), grad, spec_.width, step_);
  return true;
}

void EmbeddingTable::Pull(Key key, Real* out) { PeekAt(FindOrCreate(key), key, out, /*touch=*/true, AnyRowCopy()); }

bool EmbeddingTable::Peek(Key key, Real* out, bool touch) {
  return PeekAt(Locate(key), key, out, touch, AnyRowCopy());
}

void EmbeddingTable::Push(Key key, const Real* grad) { UpdateAt(FindOrCreate(key), grad); }

bool EmbeddingTable::PushIfPresent(Key key, const Real* grad) { return UpdateAt(Locate(key), grad); }

std::size_t EmbeddingTable::Locate(Key key) const {
  if (index_.empty()) return kNone;
  const std::uint32_t entry = index_[Probe(key, Mix64(key))];
  return entry == 0 ? kNone : entry - 1;
}

void EmbeddingTable::LocateMany(const Key* keys, std::size_t n, std::size_t* out, bool with_state) const {
  const std::size_t row_bytes = sizeof(Real) * static_cast<std::size_t>(spec_.width);
  const std::size_t state_bytes = with_state ? sizeof(Real) * static_cast<std::size_t>(state_size_) : 0;
  if (index_.empty()) {
    std::fill(out, out + n, kNone);
    return;
  }
  // Stage 1 (key i + 2d): hash, prefetch the home slot's tag and entry.
  // Stage 2 (key i + d): find the first slot from home whose tag matches
  //   (tags now cached) and prefetch the key and the row it points to (the
  //   right ones unless another key in the run shares the tag, 1 in 128).
  // Stage 3 (key i): the probe proper, which then mostly hits the cache.
  constexpr std::size_t kAhead = 8;
  std::uint64_t hashes[2 * kAhead];
  const auto stage1 = [&](std::size_t j) {
    const std::uint64_t hash = Mix64(keys[j]);
    hashes[j % (2 * kAhead)] = hash;
    const std::size_t slot = HomeSlot(hash, index_mask_);
    __builtin_prefetch(&tags_[slot]);
    __builtin_prefetch(&index_[slot]);
  };
  const auto stage2 = [&](std::size_t j) {
    const std::uint64_t hash = hashes[j % (2 * kAhead)];
    const std::uint8_t tag = TagOf(hash);
    std::size_t slot = HomeSlot(hash, index_mask_);
    while (tags_[slot] != tag && tags_[slot] != 0) slot = (slot + 1) & index_mask_;
    const std::uint32_t entry = index_[slot];
    if (entry != 0) {
      __builtin_prefetch(&chunks_[(entry - 1) >> chunk_shift_].keys[(entry - 1) & chunk_mask_]);
      PrefetchBytes(RowAt(entry - 1), row_bytes);
      PrefetchBytes(StateAt(entry - 1), state_bytes);
    }
  };
  for (std::size_t j = 0; j < std::min(n, 2 * kAhead); ++j) stage1(j);
  for (std::size_t j = 0; j < std::min(n, kAhead); ++j) stage2(j);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t hash = hashes[i % (2 * kAhead)];
    if (i + 2 * kAhead < n) stage1(i + 2 * kAhead);
    if (i + kAhead < n) stage2(i + kAhead);
    const std::uint32_t entry = index_[Probe(keys[i], hash)];
    out[i] = entry == 0 ? kNone : entry - 1;
  }
}

std::size_t EmbeddingTable::PeekMany(const Key* keys, std::size_t n, Real* out, bool touch) {
  located_.resize(n);
  LocateMany(keys, n, located_.data(), /*with_state=*/false);
  return WithRowCopy(spec_.width, [&](auto copy) { return CopyRows(keys, n, out, touch, copy); });
}

template <typename Copy>
std::size_t EmbeddingTable::CopyRows(const Key* keys, std::size_t n, Real* out, bool touch, Copy copy) {
  const std::size_t width = static_cast<std::size_t>(spec_.width);
  const std::size_t row_bytes = sizeof(Real) * width;
  // LocateMany prefetched each row, but for a table whose weights outgrow a
  // core's L2 (1 MiB here) the early rows of a long request are gone by the
  // time they are copied: prefetch again, a few rows ahead of the copy. (A
  // small table's rows are still cached, and there the extra work measured
  // ~10% slower.)
  constexpr std::size_t kCopyAhead = 8;
  constexpr std::size_t kCachedTableBytes = std::size_t{1} << 20;
  const bool prefetch = num_rows_ * row_bytes > kCachedTableBytes;
  std::size_t present = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (prefetch && i + kCopyAhead < n && located_[i + kCopyAhead] != kNone) {
      PrefetchBytes(RowAt(located_[i + kCopyAhead]), row_bytes);
    }
    present += PeekAt(located_[i], keys[i], out + i * width, touch, copy) ? 1 : 0;
  }
  return present;
}

std::size_t EmbeddingTable::PushManyIfPresent(const Key* keys, std::size_t n, const Real* grads,
                                              std::vector<bool>* missing) {
  located_.resize(n);
  LocateMany(keys, n, located_.data(), /*with_state=*/true);
  missing->resize(n);
  const std::size_t width = static_cast<std::size_t>(spec_.width);
  std::size_t absent = 0;
  for (std::size_t i = 0; i < n; ++i) {
    (*missing)[i] = !UpdateAt(located_[i], grads + i * width);
    absent += (*missing)[i] ? 1 : 0;
  }
  return absent;
}

const Real* EmbeddingTable::Find(Key key) const {
  const std::size_t i = Locate(key);
  return i == kNone ? nullptr : RowAt(i);
}

const Real* EmbeddingTable::FindState(Key key) const {
  const std::size_t i = Locate(key);
  return i == kNone || state_size_ == 0 ? nullptr : StateAt(i);
}

std::vector<Real> EmbeddingTable::RowAndState(Key key) const {
  const std::size_t i = Locate(key);
  if (i == kNone) return {};
  std::vector<Real> out(static_cast<std::size_t>(stride_));
  std::memcpy(out.data(), RowAt(i), sizeof(Real) * static_cast<std::size_t>(spec_.width));
  if (state_size_ > 0) {
    std::memcpy(out.data() + spec_.width, StateAt(i), sizeof(Real) * static_cast<std::size_t>(state_size_));
  }
  return out;
}

void EmbeddingTable::SetChunkCapacity(Chunk* c, std::size_t rows) {
  SetCapacity(&c->keys, rows);
  SetCapacity(&c->rows, rows * static_cast<std::size_t>(spec_.width));
  if (state_size_ > 0) SetCapacity(&c->state, rows * static_cast<std::size_t>(state_size_));
  if (tracking_.epochs) SetCapacity(&c->epochs, rows);
  if (tracking_.recency) SetCapacity(&c->ticks, rows);
}

void EmbeddingTable::Reserve(std::size_t rows) {
  RECSYS_CHECK(rows <= kMaxRows, "table '", spec_.name, "': cannot hold ", rows, " rows");
  // Fill the last chunk up and add full chunks (the last one exactly sized).
  while (capacity_rows_ < rows) {
    const bool last_full = chunks_.empty() || chunks_.back().keys.capacity() == chunk_rows_;
    if (last_full) chunks_.emplace_back();
    Chunk& c = chunks_.back();
    const std::size_t old = c.keys.capacity();
    const std::size_t cap = std::min(chunk_rows_, old + (rows - capacity_rows_));
    SetChunkCapacity(&c, cap);
    capacity_rows_ += cap - old;
  }
  const std::size_t capacity = IndexCapacityFor(rows);
  if (capacity > index_.size()) Rehash(capacity);
}

void EmbeddingTable::Insert(Key key, const Real* values, std::size_t n, std::uint32_t epoch) {
  RECSYS_CHECK(n <= static_cast<std::size_t>(stride_), "insert of ", n, " floats into rows of ", stride_);
  const std::size_t i = FindOrCreate(key);
  const std::size_t width = static_cast<std::size_t>(spec_.width);
  std::memcpy(RowAt(i), values, std::min(n, width) * sizeof(Real));
  if (n > width) std::memcpy(StateAt(i), values + width, (n - width) * sizeof(Real));
  Touch(i);
  if (tracking_.epochs) chunks_[i >> chunk_shift_].epochs[i & chunk_mask_] = epoch;
}

std::size_t EmbeddingTable::bytes() const {
  std::size_t bytes = index_.capacity() * sizeof(std::uint32_t) + tags_.capacity() * sizeof(std::uint8_t) +
                      chunks_.capacity() * sizeof(Chunk);
  for (const Chunk& c : chunks_) {
    bytes += c.keys.capacity() * sizeof(Key) + (c.rows.capacity() + c.state.capacity()) * sizeof(Real) +
             (c.epochs.capacity() + c.ticks.capacity()) * sizeof(std::uint32_t);
  }
  return bytes;
}

std::size_t EmbeddingTable::NextChunkCapacity(bool* new_chunk) const {
  // Grow by an eighth of the rows: bounded spare space, and amortised
  // copying of at most one chunk per growth.
  const std::size_t step = std::max(kMinRows, num_rows_ / 8);
  *new_chunk = chunks_.empty() || chunks_.back().keys.capacity() == chunk_rows_;
  const std::size_t old = *new_chunk ? 0 : chunks_.back().keys.capacity();
  return std::min(chunk_rows_, old + step);
}

std::size_t EmbeddingTable::GrowthBytes() const {
  std::size_t bytes = 0;
  if (num_rows_ == capacity_rows_) {
    bool new_chunk = false;
    const std::size_t cap = NextChunkCapacity(&new_chunk);
    const std::size_t old = new_chunk ? 0 : chunks_.back().keys.capacity();
    const std::size_t row_bytes = RawRowBytes() + (tracking_.epochs ? 4 : 0) + (tracking_.recency ? 4 : 0);
    bytes += (cap - old) * row_bytes;
    if (new_chunk && chunks_.size() == chunks_.capacity()) {
      bytes += std::max<std::size_t>(1, chunks_.capacity()) * sizeof(Chunk);  // the vector doubles
    }
  }
  if (index_.empty()) {
    bytes += kMinIndex * kSlotBytes;
  } else if ((num_rows_ + 1) * kLoadDen > index_.size() * kLoadNum) {
    bytes += index_.size() * kSlotBytes;  // doubles
  }
  return bytes;
}

void EmbeddingTable::GrowSlab() {
  RECSYS_CHECK(num_rows_ == capacity_rows_);
  RECSYS_CHECK(num_rows_ < kMaxRows, "table '", spec_.name, "' is full at ", num_rows_, " rows");
  bool new_chunk = false;
  const std::size_t cap = NextChunkCapacity(&new_chunk);
  if (new_chunk) chunks_.emplace_back();
  Chunk& c = chunks_.back();
  const std::size_t old = c.keys.capacity();
  SetChunkCapacity(&c, cap);
  capacity_rows_ += cap - old;
}

std::size_t EmbeddingTable::Probe(Key key, std::uint64_t hash) const {
  const std::uint8_t tag = TagOf(hash);
  // Terminates: the load factor keeps at least 30% of the slots empty. A
  // slot whose tag differs holds another key: skipped without reading it.
  for (std::size_t slot = HomeSlot(hash, index_mask_);; slot = (slot + 1) & index_mask_) {
    const std::uint8_t t = tags_[slot];
    if (t == 0 || (t == tag && KeyAt(index_[slot] - 1) == key)) return slot;
  }
}

std::size_t EmbeddingTable::FindOrCreate(Key key) {
  if (index_.empty()) Rehash(kMinIndex);
  const std::uint64_t hash = Mix64(key);
  std::size_t slot = Probe(key, hash);
  if (index_[slot] != 0) return index_[slot] - 1;

  if ((num_rows_ + 1) * kLoadDen > index_.size() * kLoadNum) {
    Rehash(index_.size() * 2);
    slot = Probe(key, hash);  // the empty slot moved with the new capacity
  }
  const std::size_t i = AppendRow(key);
  index_[slot] = static_cast<std::uint32_t>(i + 1);
  tags_[slot] = TagOf(hash);
  return i;
}

std::size_t EmbeddingTable::AppendRow(Key key) {
  if (num_rows_ == capacity_rows_) GrowSlab();
  const std::size_t i = num_rows_;
  Chunk& c = chunks_[i >> chunk_shift_];
  // Within capacity: none of these reallocates.
  c.keys.push_back(key);
  c.rows.resize(c.rows.size() + static_cast<std::size_t>(spec_.width));
  c.state.resize(c.state.size() + static_cast<std::size_t>(state_size_));
  if (tracking_.epochs) c.epochs.push_back(epoch_);
  if (tracking_.recency) c.ticks.push_back(tick_);
  ++num_rows_;

  InitRow(spec_, seed_, key, RowAt(i));
  optimizer_->InitState(StateAt(i), spec_.width);
  return i;
}

void EmbeddingTable::Rehash(std::size_t capacity) {
  RECSYS_CHECK(capacity > 0 && (capacity & (capacity - 1)) == 0, "capacity ", capacity);
  RECSYS_CHECK(num_rows_ * kLoadDen <= capacity * kLoadNum);
  // Fresh arrays rather than assign(): allocated at exactly `capacity`, and
  // both before either is replaced, so that a failed allocation leaves the
  // index as it was. The old arrays are freed at the closing brace, before
  // the rebuild.
  {
    TableVector<std::uint32_t> index(capacity, 0);
    TableVector<std::uint8_t> tags(capacity, 0);
    index.swap(index_);
    tags.swap(tags_);
  }
  index_mask_ = capacity - 1;
  // Rebuild from the keys, in slab order: a sequential read, and no key
  // comparisons, since keys are unique.
  for (std::size_t i = 0; i < num_rows_; ++i) {
    const std::uint64_t hash = Mix64(KeyAt(i));
    std::size_t slot = HomeSlot(hash, index_mask_);
    while (tags_[slot] != 0) slot = (slot + 1) & index_mask_;
    index_[slot] = static_cast<std::uint32_t>(i + 1);
    tags_[slot] = TagOf(hash);
  }
}

std::size_t EmbeddingTable::IndexCapacityFor(std::size_t rows) {
  std::size_t capacity = kMinIndex;
  while (rows * kLoadDen > capacity * kLoadNum) capacity *= 2;
  return capacity;
}

std::size_t EmbeddingTable::Compact(const std::vector<bool>& keep) {
  RECSYS_CHECK(keep.size() == num_rows_);
  const std::size_t width = static_cast<std::size_t>(spec_.width);
  const std::size_t state = static_cast<std::size_t>(state_size_);
  std::size_t w = 0;
  for (std::size_t r = 0; r < num_rows_; ++r) {
    if (!keep[r]) continue;
    if (w != r) {
      Chunk& from = chunks_[r >> chunk_shift_];
      Chunk& to = chunks_[w >> chunk_shift_];
      const std::size_t fi = r & chunk_mask_, ti = w & chunk_mask_;
      to.keys[ti] = from.keys[fi];
      std::memcpy(to.rows.data() + ti * width, from.rows.data() + fi * width, width * sizeof(Real));
      if (state > 0) std::memcpy(to.state.data() + ti * state, from.state.data() + fi * state, state * sizeof(Real));
      if (tracking_.epochs) to.epochs[ti] = from.epochs[fi];
      if (tracking_.recency) to.ticks[ti] = from.ticks[fi];
    }
    ++w;
  }
  const std::size_t dropped = num_rows_ - w;
  // Trim the sizes (not the capacities) of the chunks to the rows kept.
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    const std::size_t first = c * chunk_rows_;
    const std::size_t used = w > first ? std::min(chunk_rows_, w - first) : 0;
    Chunk& chunk = chunks_[c];
    chunk.keys.resize(used);
    chunk.rows.resize(used * width);
    chunk.state.resize(used * state);
    if (tracking_.epochs) chunk.epochs.resize(used);
    if (tracking_.recency) chunk.ticks.resize(used);
  }
  num_rows_ = w;
  if (!index_.empty()) Rehash(index_.size());
  return dropped;
}

std::size_t EmbeddingTable::DropTouchedBefore(std::uint32_t epoch) {
  RECSYS_CHECK(tracking_.epochs, "table '", spec_.name, "' does not track epochs");
  std::vector<bool> keep(num_rows_);
  bool any = false;
  for (std::size_t i = 0; i < num_rows_; ++i) {
    keep[i] = EpochAt(i) >= epoch;
    any = any || !keep[i];
  }
  if (!any) return 0;
  const std::size_t dropped = Compact(keep);
  Shrink();
  return dropped;
}

std::size_t EmbeddingTable::EvictLeastRecent(std::size_t count) {
  RECSYS_CHECK(tracking_.recency, "table '", spec_.name, "' does not track recency");
  count = std::min(count, num_rows_);
  if (count == 0) return 0;
  // The count-th smallest tick by a two-level radix select (64k buckets on
  // the high then the low 16 bits): O(rows) time and 256 KiB of scratch, not
  // a copy of every tick.
  std::vector<std::size_t> hist(1 << 16);
  for (std::size_t i = 0; i < num_rows_; ++i) ++hist[TickAt(i) >> 16];
  std::size_t below = 0, high = 0;
  while (below + hist[high] < count) below += hist[high++];
  std::fill(hist.begin(), hist.end(), 0);
  for (std::size_t i = 0; i < num_rows_; ++i) {
    if ((TickAt(i) >> 16) == high) ++hist[TickAt(i) & 0xffff];
  }
  std::size_t low = 0;
  while (below + hist[low] < count) below += hist[low++];
  const std::uint32_t threshold = static_cast<std::uint32_t>((high << 16) | low);
  // Drop every row older than the threshold tick, and rows at it in slab
  // order until `count` are gone.
  std::size_t at_threshold = count - below;
  std::vector<bool> keep(num_rows_);
  for (std::size_t i = 0; i < num_rows_; ++i) {
    const std::uint32_t t = TickAt(i);
    if (t < threshold) {
      keep[i] = false;
    } else if (t == threshold && at_threshold > 0) {
      keep[i] = false;
      --at_threshold;
    } else {
      keep[i] = true;
    }
  }
  return Compact(keep);
}

void EmbeddingTable::HalveTicks() {
  if (!tracking_.recency) return;
  for (Chunk& c : chunks_) {
    for (std::uint32_t& t : c.ticks) t >>= 1;
  }
  tick_ >>= 1;
}

void EmbeddingTable::Shrink() {
  // Keep the chunks that hold rows; free the others whole.
  const std::size_t needed = (num_rows_ + chunk_rows_ - 1) >> chunk_shift_;
  if (chunks_.size() > needed) {
    for (std::size_t c = needed; c < chunks_.size(); ++c) capacity_rows_ -= chunks_[c].keys.capacity();
    chunks_.resize(needed);
  }
  if (num_rows_ > 0) {
    // The last chunk keeps the growth headroom a growing table would have
    // (an eighth of the rows), not what it held before: copies one chunk
    // at most.
    Chunk& last = chunks_.back();
    const std::size_t used = last.keys.size();
    const std::size_t target = std::min(chunk_rows_, used + std::max(kMinRows, num_rows_ / 8));
    if (last.keys.capacity() > target) {
      capacity_rows_ -= last.keys.capacity() - target;
      SetChunkCapacity(&last, target);
    }
  }
  if (num_rows_ == 0) {
    std::vector<Chunk>().swap(chunks_);
    TableVector<std::uint32_t>().swap(index_);
    TableVector<std::uint8_t>().swap(tags_);
    index_mask_ = 0;
    capacity_rows_ = 0;
    return;
  }
  const std::size_t capacity = IndexCapacityFor(num_rows_);
  if (capacity < index_.size()) Rehash(capacity);
}

}  // namespace recsys
