#include "worker/row_cache.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"

namespace recsys {
namespace {

std::size_t PowerOfTwoAtLeast(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// One hash per key: its low bits pick the index bucket, bits 20.. the
// sketch block, and the top 12 bits its counters within the block.
std::uint64_t Hash(Key key) { return Mix64(key); }
constexpr int kBlockShift = 20;
constexpr int kCounterShift = 52;

}  // namespace

RowCache::RowCache(std::vector<TableSpec> tables, std::size_t capacity, int refresh_steps)
    : tables_(std::move(tables)), capacity_(capacity), refresh_steps_(static_cast<std::uint64_t>(refresh_steps)) {
  RECSYS_CHECK(capacity_ >= 1, "row cache capacity must be >= 1");
  RECSYS_CHECK(refresh_steps >= 2, "row cache refresh_steps must be >= 2, got ", refresh_steps);
  RECSYS_CHECK(capacity_ < (std::size_t{1} << 30), "row cache capacity ", capacity_, " too large");
  rows_.resize(tables_.size());
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    if (tables_[t].dense()) {
      has_dense_ = true;
    } else {
      rows_[t].assign(capacity_ * static_cast<std::size_t>(tables_[t].width), 0.0f);
    }
  }
  slots_.resize(capacity_);
  const std::size_t buckets = PowerOfTwoAtLeast(2 * capacity_);
  index_.assign(buckets, Bucket{});
  index_mask_ = buckets - 1;
  // kDepth * 4 counters per cached row, at least 4096.
  const std::size_t blocks = PowerOfTwoAtLeast(std::max<std::size_t>(4096, kDepth * 4 * capacity_) / kBlock);
  sketch_.assign(blocks * kBlock, 0);
  sketch_mask_ = blocks - 1;
  age_every_ = std::max<std::uint64_t>(1024, 10 * static_cast<std::uint64_t>(capacity_));
}

void RowCache::Count(std::uint64_t h) {
  std::uint16_t* block = &sketch_[((h >> kBlockShift) & sketch_mask_) * kBlock];
  for (int d = 0; d < kDepth; ++d) {
    std::uint16_t& c = block[d * (kBlock / kDepth) + ((h >> (kCounterShift + 3 * d)) & (kBlock / kDepth - 1))];
    if (c != 0xffff) ++c;
  }
  if (++counted_ >= age_every_) {
    // Halving keeps the ranking of keys but lets yesterday's hot keys cool.
    for (auto& c : sketch_) c = static_cast<std::uint16_t>(c >> 1);
    counted_ = 0;
  }
}

std::uint32_t RowCache::Estimate(std::uint64_t h) const {
  const std::uint16_t* block = &sketch_[((h >> kBlockShift) & sketch_mask_) * kBlock];
  std::uint32_t m = 0xffff;
  for (int d = 0; d < kDepth; ++d) {
    m = std::min<std::uint32_t>(m, block[d * (kBlock / kDepth) + ((h >> (kCounterShift + 3 * d)) & (kBlock / kDepth - 1))]);
  }
  return m;
}

std::uint32_t RowCache::Frequency(Key key) const { return Estimate(Hash(key)); }

bool RowCache::Contains(Key key) const { return Find(key, Hash(key)) >= 0; }

std::int32_t RowCache::Find(Key key, std::uint64_t h) const {
  for (std::size_t b = h & index_mask_;; b = (b + 1) & index_mask_) {
    const Bucket& bucket = index_[b];
    if (bucket.slot < 0) return -1;
    if (bucket.key == key) return bucket.slot;
  }
}

void RowCache::IndexInsert(Key key, std::int32_t slot) {
  std::size_t b = Hash(key) & index_mask_;
  while (index_[b].slot >= 0) b = (b + 1) & index_mask_;
  index_[b] = Bucket{key, slot};
}

void RowCache::IndexErase(Key key) {
  std::size_t i = Hash(key) & index_mask_;
  while (index_[i].key != key || index_[i].slot < 0) {
    RECSYS_CHECK(index_[i].slot >= 0, "row cache: erasing a key that is not cached");
    i = (i + 1) & index_mask_;
  }
  // Backward-shift deletion: move later entries of the probe run into the
  // hole when their home bucket allows it, so lookups need no tombstones.
  for (std::size_t j = (i + 1) & index_mask_; index_[j].slot >= 0; j = (j + 1) & index_mask_) {
    const std::size_t home = Hash(index_[j].key) & index_mask_;
    // The entry at j may move to i if its home is not in the cyclic range (i, j].
    const bool home_in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!home_in_range) {
      index_[i] = index_[j];
      i = j;
    }
  }
  index_[i].slot = -1;
}

std::int32_t RowCache::Admit(Key key, std::uint64_t step) {
  std::int32_t slot = -1;
  if (used_ < capacity_) {
    slot = static_cast<std::int32_t>(used_++);
  } else {
    // Sampled LFU: the least popular of a few random slots is the victim,
    // and only a more popular newcomer replaces it.
    std::uint32_t victim_freq = 0;
    for (int i = 0; i < kVictimSamples; ++i) {
      const auto s = static_cast<std::int32_t>(victim_rng_.NextBelow(capacity_));
      const SlotInfo& info = slots_[static_cast<std::size_t>(s)];
      if (info.pinned_until >= completed_) continue;  // a batch still waits for it
      const std::uint32_t f = Frequency(info.key);
      if (slot < 0 || f < victim_freq) {
        slot = s;
        victim_freq = f;
      }
    }
    if (slot < 0 || Frequency(key) <= victim_freq) return -1;
    IndexErase(slots_[static_cast<std::size_t>(slot)].key);
  }
  SlotInfo& info = slots_[static_cast<std::size_t>(slot)];
  info.key = key;
  info.fetched = step;
  info.pinned_until = step;
  IndexInsert(key, slot);
  return slot;
}

void RowCache::Prepare(const std::vector<Key>& keys, Plan* plan) {
  const std::uint64_t step = next_step_++;
  plan->step = step;
  plan->batch_keys = keys.size();
  plan->pull_keys.clear();
  plan->pull_row.clear();
  plan->pull_slot.clear();
  plan->hits.clear();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Key key = keys[i];
    const std::uint64_t h = Hash(key);
    Count(h);
    const auto row = static_cast<std::int32_t>(i);
    std::int32_t slot = Find(key, h);
    if (slot >= 0) {
      SlotInfo& info = slots_[static_cast<std::size_t>(slot)];
      info.pinned_until = step;
      if (step - info.fetched < refresh_steps_) {
        plan->hits.emplace_back(row, slot);
        continue;
      }
      info.fetched = step;  // stale: this pull refreshes it
    } else {
      slot = Admit(key, step);
    }
    plan->pull_keys.push_back(key);
    plan->pull_row.push_back(row);
    plan->pull_slot.push_back(slot);
  }
  // Dense blocks come only with a pull of at least one key: turn one hit
  // into a refresh.
  if (has_dense_ && plan->pull_keys.empty() && !plan->hits.empty()) {
    const auto [row, slot] = plan->hits.back();
    plan->hits.pop_back();
    slots_[static_cast<std::size_t>(slot)].fetched = step;
    plan->pull_keys.push_back(keys[static_cast<std::size_t>(row)]);
    plan->pull_row.push_back(row);
    plan->pull_slot.push_back(slot);
  }
  lookups_ += keys.size();
  hits_ += plan->hits.size();
}

void RowCache::Complete(const Plan& plan, ParamBuffers* pulled, ParamBuffers* rows) {
  RECSYS_CHECK(plan.step == completed_, "row cache plans completed out of order: step ", plan.step, ", expected ",
               completed_);
  rows->Shape(tables_, plan.batch_keys);
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    const TableSpec& spec = tables_[t];
    if (spec.dense()) {
      // Moved, not copied: a dense block can be large.
      if (pulled->storage.size() == tables_.size() && pulled->storage[t].size() == rows->storage[t].size()) {
        std::swap(rows->storage[t], pulled->storage[t]);
        rows->view[t].data = rows->storage[t].data();
        pulled->view[t].data = pulled->storage[t].data();
      }
      continue;
    }
    const std::size_t width = static_cast<std::size_t>(spec.width);
    const std::size_t bytes = width * sizeof(Real);
    Real* dst = rows->storage[t].data();
    Real* cache = rows_[t].data();
    if (!plan.pull_keys.empty()) {
      const Real* src = pulled->storage[t].data();
      for (std::size_t i = 0; i < plan.pull_keys.size(); ++i) {
        const Real* r = src + i * width;
        std::memcpy(dst + static_cast<std::size_t>(plan.pull_row[i]) * width, r, bytes);
        if (plan.pull_slot[i] >= 0) std::memcpy(cache + static_cast<std::size_t>(plan.pull_slot[i]) * width, r, bytes);
      }
    }
    for (const auto& [row, slot] : plan.hits) {
      std::memcpy(dst + static_cast<std::size_t>(row) * width, cache + static_cast<std::size_t>(slot) * width, bytes);
    }
  }
  ++completed_;
}

}  // namespace recsys
