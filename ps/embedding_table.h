// One shard of one table on a server: rows and their optimizer state stored
// in slabs, behind an open-addressing hash index from key to
// slab position (no node-per-row containers; a 7-bit tag per index slot lets
// a probe skip the other keys in its run without reading them). Rows are
// created on first touch with InitRow's deterministic values, so a row's
// value depends only on (seed, table, key) and the gradients pushed to it,
// never on the server holding it.
//
// Layout. Rows live in chunks of kChunkBytes at most (a power of two of
// rows); chunk c holds rows [c * chunk_rows, (c + 1) * chunk_rows) as
// parallel arrays: keys, the rows' weights (width floats each), their
// optimizer state (stride - width floats each), and, when tracked, a 32-bit
// last-touched epoch and a 32-bit recency tick per row. Weights and state
// are apart because a pull reads only the weights: packed together they
// take a third of the bytes (Adam), so more of a table's rows stay in the
// caches and a pull's rows share cache lines and pages (README,
// "Performance", session 11). A full table grows its last chunk (or opens a
// new one) by max(16, rows / 8) rows, so:
//   - the spare slab is at most an eighth of the rows (plus 16 rows), and
//     growth never copies more than one chunk (no 2x peak while a whole slab
//     is copied, as a single growing vector would have);
//   - the index is 5 bytes per slot (a 4-byte slab position and a 1-byte
//     tag) at load in (0.35, 0.7]: at most 14.3 bytes per row.
// Per row this is at most 1.125 x (8 + 4 * stride + tracking) + 14.3 bytes
// (+ 16 rows of slack for tiny tables), i.e. within 1.5x of the raw bytes
// R = 8 + 4 * stride for R >= 40 without tracking (dim 8 with SGD) and for
// R >= 63 with both trackings (dim 16 with AdaGrad is R = 136: ~1.3x).
// Tests assert it at every size from 1000 rows on.
//
// The slab's and the index's arrays come from TableAllocator: from 2 MiB on
// they sit in transparent huge pages (ps/huge_pages.h), so that random row
// reads from a large table do not also miss the TLB. A full chunk's arrays
// take 4 to 8 MiB in all; its weights and its state are each in whole huge
// pages when they take 2 MiB or more (the state always does with Adam and
// AdaGrad; the weights do for dims that are powers of two of 16 and more,
// and not, e.g., for Adam with dim 24: 16,384 rows x 96 bytes), its keys
// and tracking (under 2 MiB for rows of 32 bytes and more) are not.
//
// Removing rows (expiry, eviction) compacts the slab in place, keeping the
// rows' order, and rebuilds the index.
//
// Thread safety: none. A table belongs to one ServerShard, driven by one
// thread. Pointers returned by Find are invalidated by the next non-const
// call.
#ifndef RECSYS_PS_EMBEDDING_TABLE_H_
#define RECSYS_PS_EMBEDDING_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "ps/huge_pages.h"
#include "ps/optimizer.h"

namespace recsys {

// Per-row bookkeeping a table keeps besides the row itself (4 bytes each).
struct RowTracking {
  bool epochs = false;   // the epoch that last touched the row (--expire-after)
  bool recency = false;  // a tick of the request that last touched it (eviction)
};

class EmbeddingTable {
 public:
  // The most rows a table can hold: the index stores slab index + 1 in 32 bits.
  static constexpr std::size_t kMaxRows = 0xffffffffULL;
  // Largest chunk of the slab, in bytes (one row at least): several 2 MiB
  // huge pages.
  static constexpr std::size_t kChunkBytes = std::size_t{8} << 20;

  // `optimizer` must outlive the table. spec.width must be > 0. Chunks hold
  // at most `chunk_bytes` of rows (tests pass less, to cover several chunks
  // with few rows).
  EmbeddingTable(const TableSpec& spec, std::uint64_t seed, const Optimizer* optimizer,
                 RowTracking tracking = RowTracking(), std::size_t chunk_bytes = kChunkBytes);
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;
  EmbeddingTable(EmbeddingTable&&) = default;

  // Copies the row of `key` into out[0..width), creating it if new, and
  // marks it touched.
  void Pull(Key key, Real* out);
  // Copies the row of `key` into out[0..width) if it exists, else its
  // initial values (InitRow); creates nothing. Marks an existing row touched
  // if `touch`. Returns whether the row exists.
  bool Peek(Key key, Real* out, bool touch);
  // Applies the optimizer to the row of `key` with grad[0..width), creating
  // the row first if new, and marks it touched. `grad` must not point into
  // the table.
  void Push(Key key, const Real* grad);
  // Applies grad to the row of `key` if it exists (marking it touched);
  // returns false, doing nothing, if it does not.
  bool PushIfPresent(Key key, const Real* grad);
  // Batched forms of Peek and PushIfPresent for a request's keys, with the
  // index and row reads of later keys prefetched while earlier ones are
  // copied (a server's pull and push loops). PeekMany(keys, n, out, touch)
  // is Peek of keys[i] into out + i * width for every i; it returns the
  // number of keys that existed.
  std::size_t PeekMany(const Key* keys, std::size_t n, Real* out, bool touch);
  // Applies grads + i * width to the row of keys[i] for every key that
  // exists; sets missing[i] (resized to n) to whether keys[i] did not (its
  // gradient was not applied). Returns the count of missing keys.
  std::size_t PushManyIfPresent(const Key* keys, std::size_t n, const Real* grads, std::vector<bool>* missing);
  // The weights of `key`'s row (width floats), or nullptr if it does not
  // exist. Valid until the next non-const call.
  const Real* Find(Key key) const;
  // Its optimizer state (stride() - width() floats), or nullptr if the row
  // does not exist or the optimizer keeps no state.
  const Real* FindState(Key key) const;
  // A copy of the row's weights then its state (stride() floats; empty if
  // the row does not exist): the row as checkpoints store it.
  std::vector<Real> RowAndState(Key key) const;
  bool Contains(Key key) const { return Find(key) != nullptr; }
  // Makes room for `rows` rows in total, so that inserting up to that many
  // allocates nothing more (except the index, which is sized here too).
  void Reserve(std::size_t rows);

  // Sets the first n floats (n <= stride()) of the row of `key` (its width
  // weights, then its optimizer state) to values[0..n), creating the row
  // first if new; floats past n keep their current (or initial) values. The
  // row's last-touched epoch becomes `epoch`. For checkpoints. `values` must
  // not point into the table.
  void Insert(Key key, const Real* values, std::size_t n, std::uint32_t epoch);
  void Insert(Key key, const Real* values, std::size_t n) { Insert(key, values, n, epoch_); }

  // The job's global step that the updates from now on belong to (the
  // optimizer's Update; 0, the initial value: not known).
  void SetStep(std::uint64_t step) { step_ = step; }

  // ---- Tracking (RowTracking) ----
  // The epoch and recency tick that touching a row records from now on.
  void SetClock(std::uint32_t epoch, std::uint32_t tick) {
    epoch_ = epoch;
    tick_ = tick;
  }
  // Drops every row last touched in an epoch < `epoch` (needs
  // tracking.epochs) and frees the slab and index space no longer needed.
  // Returns the rows dropped.
  std::size_t DropTouchedBefore(std::uint32_t epoch);
  // Drops the `count` rows (at most size()) touched longest ago by recency
  // tick, ties broken by slab position (oldest created first); needs
  // tracking.recency. Keeps the freed capacity for new rows. Returns the
  // rows dropped.
  std::size_t EvictLeastRecent(std::size_t count);
  // Halves every recency tick (for a tick counter about to wrap): the order
  // of rows is kept, up to new ties.
  void HalveTicks();
  // Frees whole chunks past the rows and shrinks the index to the rows.
  void Shrink();

  // Bytes that inserting one more row would allocate now (slab growth and
  // index growth; 0 if the row fits in what is allocated). The transient
  // peak while growing adds at most one chunk, or the old index and tags.
  std::size_t GrowthBytes() const;

  std::size_t size() const { return num_rows_; }
  int width() const { return spec_.width; }
  // Floats per row: width weights plus the optimizer state.
  int stride() const { return stride_; }
  const TableSpec& spec() const { return spec_; }
  const RowTracking& tracking() const { return tracking_; }
  // Bytes allocated for the slab, the keys, the tracking and the index
  // (capacity, not size).
  std::size_t bytes() const;
  // Bytes the rows themselves take: size() * (8 + 4 * stride()).
  std::size_t raw_bytes() const { return num_rows_ * RawRowBytes(); }
  std::size_t RawRowBytes() const { return sizeof(Key) + sizeof(Real) * static_cast<std::size_t>(stride_); }

  // Visits every row: fn(key, const Real* row, const Real* state), where
  // state may be nullptr when the optimizer keeps none (SGD). For
  // checkpoints and reports. Order is unspecified.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (std::size_t i = 0; i < num_rows_; ++i) fn(KeyAt(i), RowAt(i), StateAt(i));
  }
  // Visits every row with its last-touched epoch (0 if not tracked):
  // fn(key, const Real* row, const Real* state, epoch).
  template <typename Fn>
  void ForEachWithEpoch(Fn fn) const {
    for (std::size_t i = 0; i < num_rows_; ++i) {
      fn(KeyAt(i), RowAt(i), StateAt(i), tracking_.epochs ? EpochAt(i) : 0u);
    }
  }

 private:
  // A run of rows of the slab; its vectors have the same capacity in rows,
  // and sizes equal to the rows in use (the tracking vectors stay empty when
  // not tracked).
  struct Chunk {
    TableVector<Key> keys;
    TableVector<Real> rows;   // width floats a row
    TableVector<Real> state;  // state_size_ floats a row (empty without state)
    TableVector<std::uint32_t> epochs;
    TableVector<std::uint32_t> ticks;
  };

  Key KeyAt(std::size_t i) const { return chunks_[i >> chunk_shift_].keys[i & chunk_mask_]; }
  const Real* RowAt(std::size_t i) const {
    return chunks_[i >> chunk_shift_].rows.data() + (i & chunk_mask_) * static_cast<std::size_t>(spec_.width);
  }
  Real* RowAt(std::size_t i) {
    return chunks_[i >> chunk_shift_].rows.data() + (i & chunk_mask_) * static_cast<std::size_t>(spec_.width);
  }
  const Real* StateAt(std::size_t i) const {
    return chunks_[i >> chunk_shift_].state.data() + (i & chunk_mask_) * static_cast<std::size_t>(state_size_);
  }
  Real* StateAt(std::size_t i) {
    return chunks_[i >> chunk_shift_].state.data() + (i & chunk_mask_) * static_cast<std::size_t>(state_size_);
  }
  // Sets the capacity of chunk c's arrays to `rows` rows (SetCapacity).
  void SetChunkCapacity(Chunk* c, std::size_t rows);
  std::uint32_t EpochAt(std::size_t i) const { return chunks_[i >> chunk_shift_].epochs[i & chunk_mask_]; }
  std::uint32_t TickAt(std::size_t i) const { return chunks_[i >> chunk_shift_].ticks[i & chunk_mask_]; }
  // Records a touch of row i at the current clock.
  void Touch(std::size_t i);
  // What Peek and PushIfPresent do with the row at slab index i (kNone: the
  // key has no row), shared by the one-key and the batched calls. PeekAt
  // writes `key`'s initial values when there is no row, and copies a row
  // with `copy` (common/row_copy.h); both return whether there was one.
  template <typename Copy>
  bool PeekAt(std::size_t i, Key key, Real* out, bool touch, Copy copy);
  bool UpdateAt(std::size_t i, const Real* grad);
  // PeekMany's loop over located_: PeekAt for each key, with `copy` for a
  // row of the table's width (WithRowCopy).
  template <typename Copy>
  std::size_t CopyRows(const Key* keys, std::size_t n, Real* out, bool touch, Copy copy);
  // Slab index of `key`, or kNone.
  std::size_t Locate(Key key) const;
  // out[i] = Locate(keys[i]) for i < n, software-pipelined: the index slot
  // of key i + 2d and the key and row of key i + d are prefetched while key
  // i is resolved, so a large table's cache misses overlap. The weights of
  // each row found are prefetched, and its state too if `with_state`.
  void LocateMany(const Key* keys, std::size_t n, std::size_t* out, bool with_state) const;
  static constexpr std::size_t kNone = ~std::size_t{0};

  // Returns the slab index of `key`, creating the row if needed.
  std::size_t FindOrCreate(Key key);
  // Returns the index_ slot holding `key`, or the empty slot where it would
  // go; `hash` is Mix64(key). index_ must be non-empty.
  std::size_t Probe(Key key, std::uint64_t hash) const;
  // Appends a new row for `key` to the slab and returns its slab index.
  std::size_t AppendRow(Key key);
  // Capacity of the last chunk after its next growth (when the slab is full).
  std::size_t NextChunkCapacity(bool* new_chunk) const;
  // Grows the slab by one step (the slab must be full).
  void GrowSlab();
  // Grows (or shrinks) index_ to `capacity` slots (a power of two) and
  // rehashes.
  void Rehash(std::size_t capacity);
  // Keeps the rows i with keep[i] (in order), drops the others, rebuilds
  // the index. Returns the rows dropped.
  std::size_t Compact(const std::vector<bool>& keep);
  // Index capacity (power of two) that keeps `rows` rows within the load
  // factor.
  static std::size_t IndexCapacityFor(std::size_t rows);

  // Constant after construction.
  TableSpec spec_;
  std::uint64_t seed_;
  const Optimizer* optimizer_;
  RowTracking tracking_;
  int stride_;      // width + optimizer state, in floats
  int state_size_;  // optimizer state, in floats
  std::size_t chunk_rows_;  // rows of a full chunk (a power of two)
  int chunk_shift_;         // log2(chunk_rows_)
  std::size_t chunk_mask_;  // chunk_rows_ - 1

  // The slab: row i in chunks_[i / chunk_rows_] at i % chunk_rows_. Every
  // chunk but the last is full (chunk_rows_ rows in use) once rows exist
  // past it.
  std::vector<Chunk> chunks_;
  std::size_t num_rows_ = 0;
  std::size_t capacity_rows_ = 0;  // rows the chunks can hold without growing
  // Open addressing, linear probing, power-of-two capacity (or empty before
  // the first row), load <= 0.7; entries are slab index + 1 (0 = empty).
  TableVector<std::uint32_t> index_;
  // Per slot, 7 bits of the key's hash with the top bit set (0: empty): a
  // probe reads the key of a slot only when the tag matches, so the keys of
  // other rows in the run (a random access each) are skipped.
  TableVector<std::uint8_t> tags_;
  std::size_t index_mask_ = 0;  // index_.size() - 1 once non-empty
  // What a touch records (SetClock).
  std::uint32_t epoch_ = 0;
  std::uint32_t tick_ = 0;
  std::uint64_t step_ = 0;  // SetStep
  // Scratch of the batched calls (slab indices of a request's keys).
  std::vector<std::size_t> located_;
};

}  // namespace recsys

#endif  // RECSYS_PS_EMBEDDING_TABLE_H_
