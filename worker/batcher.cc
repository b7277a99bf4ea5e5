#include "worker/batcher.h"

#include <algorithm>

#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"

namespace recsys {
namespace {

// Fibonacci hashing: the top bits of key * 2^64/phi. Cheaper than a full
// mixer, and keys differing only in their low bits (consecutive ids) or
// only in the field bits still land on different slots.
inline std::size_t SlotOf(std::uint64_t key, int shift) {
  return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ULL) >> shift);
}

// log2 of the smallest power of two >= 2 * n (load <= 1/2), at least 2^4.
int BitsFor(std::size_t n) {
  int bits = 4;
  while ((std::size_t{1} << bits) < 2 * n) ++bits;
  return bits;
}

}  // namespace

void BatchBuilder::FeatureIndex::Init(const std::unordered_map<std::uint64_t, std::vector<Feature>>& features,
                                      std::unordered_map<Key, std::uint32_t>* dense, std::vector<Key>* dense_keys) {
  const std::size_t capacity = std::size_t{1} << BitsFor(features.size());
  ids_.assign(capacity, 0);
  begin_.assign(capacity, 0);
  count_.assign(capacity, kEmpty);
  mask_ = capacity - 1;
  features_.clear();
  for (const auto& [id, list] : features) {
    std::size_t slot = static_cast<std::size_t>(Mix64(id)) & mask_;
    while (count_[slot] != kEmpty) slot = (slot + 1) & mask_;
    RECSYS_CHECK(features_.size() + list.size() < kEmpty, "too many side features: ", features_.size());
    ids_[slot] = id;
    begin_[slot] = static_cast<std::uint32_t>(features_.size());
    count_[slot] = static_cast<std::uint32_t>(list.size());
    for (const Feature& f : list) {
      // Users and items are interned by hash (Intern); a side feature with
      // their key would get a second row for the same key.
      RECSYS_CHECK(FieldOf(f.key) != kFieldUser && FieldOf(f.key) != kFieldItem, "side feature with key ", f.key);
      const auto [it, inserted] = dense->try_emplace(f.key, static_cast<std::uint32_t>(dense_keys->size()));
      if (inserted) dense_keys->push_back(f.key);
      features_.push_back(DenseFeature{it->second, f.value});
    }
  }
}

const BatchBuilder::DenseFeature* BatchBuilder::FeatureIndex::Find(std::uint64_t id, int* count) const {
  *count = 0;
  if (ids_.empty()) return nullptr;
  // Terminates: the load is at most 1/2, so there is an empty slot.
  for (std::size_t slot = static_cast<std::size_t>(Mix64(id)) & mask_;; slot = (slot + 1) & mask_) {
    if (count_[slot] == kEmpty) return nullptr;
    if (ids_[slot] == id) {
      *count = static_cast<int>(count_[slot]);
      return features_.data() + begin_[slot];
    }
  }
}

BatchBuilder::BatchBuilder(std::vector<std::uint8_t> slot_field, const Dataset* data)
    : slot_field_(std::move(slot_field)), data_(data) {
  RECSYS_CHECK(slot_field_.size() >= 2 && slot_field_[0] == kFieldUser && slot_field_[1] == kFieldItem);
  const int side = static_cast<int>(slot_field_.size()) - 2;
  if (side > 0) {
    user_slots_ = static_cast<int>(data_->user_slot_fields.size());
    item_slots_ = side - user_slots_;
    RECSYS_CHECK(item_slots_ == static_cast<int>(data_->item_slot_fields.size()), "slot layout ", side,
                 " side slots, data has ", data_->user_slot_fields.size(), "+", data_->item_slot_fields.size());
    std::unordered_map<Key, std::uint32_t> dense;
    if (user_slots_ > 0) user_features_.Init(data_->user_features, &dense, &dense_keys_);
    if (item_slots_ > 0) item_features_.Init(data_->item_features, &dense, &dense_keys_);
    dense_row_.assign(dense_keys_.size(), 0);
    dense_stamp_.assign(dense_keys_.size(), 0);
  }
  ResetIndex(2048);
}

void BatchBuilder::ResetIndex(std::size_t keys) {
  const int bits = BitsFor(keys);
  const std::size_t capacity = std::size_t{1} << bits;
  if (capacity > slot_key_.size()) {
    slot_key_.assign(capacity, 0);
    slot_row_.assign(capacity, 0);
    slot_stamp_.assign(capacity, 0);
    std::fill(dense_stamp_.begin(), dense_stamp_.end(), 0);
    generation_ = 0;
    shift_ = 64 - bits;
  }
  if (++generation_ == 0) {
    // The stamps wrapped around (after 2^32 batches): old stamps could now
    // look current, so clear them once.
    std::fill(slot_stamp_.begin(), slot_stamp_.end(), 0);
    std::fill(dense_stamp_.begin(), dense_stamp_.end(), 0);
    generation_ = 1;
  }
}

inline std::int32_t BatchBuilder::Intern(Key key, Batch* batch) {
  const std::size_t mask = slot_key_.size() - 1;
  for (std::size_t slot = SlotOf(key, shift_);; slot = (slot + 1) & mask) {
    if (slot_stamp_[slot] != generation_) {
      const auto row = static_cast<std::int32_t>(batch->keys.size());
      slot_stamp_[slot] = generation_;
      slot_key_[slot] = key;
      slot_row_[slot] = row;
      batch->keys.push_back(key);
      return row;
    }
    if (slot_key_[slot] == key) return slot_row_[slot];
  }
}

inline std::int32_t BatchBuilder::InternDense(std::uint32_t id, Batch* batch) {
  if (dense_stamp_[id] != generation_) {
    dense_stamp_[id] = generation_;
    dense_row_[id] = static_cast<std::int32_t>(batch->keys.size());
    batch->keys.push_back(dense_keys_[id]);
  }
  return dense_row_[id];
}

void BatchBuilder::Build(const Example* examples, int n, Batch* batch) {
  const int slots = static_cast<int>(slot_field_.size());
  batch->size = n;
  batch->slots = slots;
  batch->slot_field = slot_field_;
  batch->row.assign(static_cast<std::size_t>(n) * slots, -1);
  batch->value.assign(static_cast<std::size_t>(n) * slots, 0.0f);
  batch->label.resize(static_cast<std::size_t>(n));
  batch->keys.clear();
  // At most n * slots distinct keys: the index never fills.
  ResetIndex(static_cast<std::size_t>(n) * static_cast<std::size_t>(slots));
  for (int e = 0; e < n; ++e) {
    const Example& ex = examples[e];
    std::int32_t* row = batch->row.data() + static_cast<std::size_t>(e) * slots;
    Real* value = batch->value.data() + static_cast<std::size_t>(e) * slots;
    batch->label[static_cast<std::size_t>(e)] = ex.label;
    row[0] = Intern(MakeKey(kFieldUser, ex.user), batch);
    value[0] = 1.0f;
    row[1] = Intern(MakeKey(kFieldItem, ex.item), batch);
    value[1] = 1.0f;
    if (user_slots_ > 0) {
      int count = 0;
      const DenseFeature* features = user_features_.Find(ex.user, &count);
      count = std::min(user_slots_, count);
      for (int j = 0; j < count; ++j) {
        row[2 + j] = InternDense(features[j].id, batch);
        value[2 + j] = features[j].value;
      }
    }
    if (item_slots_ > 0) {
      int count = 0;
      const DenseFeature* features = item_features_.Find(ex.item, &count);
      count = std::min(item_slots_, count);
      for (int j = 0; j < count; ++j) {
        row[2 + user_slots_ + j] = InternDense(features[j].id, batch);
        value[2 + user_slots_ + j] = features[j].value;
      }
    }
  }
}

}  // namespace recsys
