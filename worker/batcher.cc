#include "worker/batcher.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {

BatchBuilder::BatchBuilder(std::vector<std::uint8_t> slot_field, const Dataset* data)
    : slot_field_(std::move(slot_field)), data_(data) {
  RECSYS_CHECK(slot_field_.size() >= 2 && slot_field_[0] == kFieldUser && slot_field_[1] == kFieldItem);
  const int side = static_cast<int>(slot_field_.size()) - 2;
  if (side > 0) {
    user_slots_ = static_cast<int>(data_->user_slot_fields.size());
    item_slots_ = side - user_slots_;
    RECSYS_CHECK(item_slots_ == static_cast<int>(data_->item_slot_fields.size()), "slot layout ", side,
                 " side slots, data has ", data_->user_slot_fields.size(), "+", data_->item_slot_fields.size());
  }
  index_.reserve(4096);
}

std::int32_t BatchBuilder::Intern(Key key, Batch* batch) {
  auto [it, inserted] = index_.try_emplace(key, static_cast<std::int32_t>(batch->keys.size()));
  if (inserted) batch->keys.push_back(key);
  return it->second;
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
  index_.clear();
  static const std::vector<Feature> kNone;
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
      auto it = data_->user_features.find(ex.user);
      const auto& features = it == data_->user_features.end() ? kNone : it->second;
      for (int j = 0; j < user_slots_ && j < static_cast<int>(features.size()); ++j) {
        row[2 + j] = Intern(features[static_cast<std::size_t>(j)].key, batch);
        value[2 + j] = features[static_cast<std::size_t>(j)].value;
      }
    }
    if (item_slots_ > 0) {
      auto it = data_->item_features.find(ex.item);
      const auto& features = it == data_->item_features.end() ? kNone : it->second;
      for (int j = 0; j < item_slots_ && j < static_cast<int>(features.size()); ++j) {
        row[2 + user_slots_ + j] = Intern(features[static_cast<std::size_t>(j)].key, batch);
        value[2 + user_slots_ + j] = features[static_cast<std::size_t>(j)].value;
      }
    }
  }
}

}  // namespace recsys
