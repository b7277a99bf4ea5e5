// Helpers shared by the model tests: batches built the way the worker builds
// them, and owned parameter storage laid out as the worker lays out pulled
// rows.
#ifndef RECSYS_TESTS_MODELS_MODEL_TEST_UTIL_H_
#define RECSYS_TESTS_MODELS_MODEL_TEST_UTIL_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/keys.h"
#include "common/table_spec.h"
#include "models/model.h"

namespace recsys {
namespace testing_util {

// One example's slots as (key, value); a value of 0 with key 0 marks an
// empty slot.
struct SlotSpec {
  bool empty = true;
  Key key = 0;
  Real value = 0;
};
inline SlotSpec Slot(std::uint8_t field, std::uint64_t id, Real value = 1.0f) { return {false, MakeKey(field, id), value}; }
inline const SlotSpec kEmpty{};

// Builds a Batch the way the worker does: de-duplicated keys in order of
// first appearance, slots referring to them by index. `extra_keys` are added
// to the batch without being referenced (their gradients must stay zero).
inline Batch BuildBatch(const std::vector<std::uint8_t>& slot_field, const std::vector<std::vector<SlotSpec>>& examples,
                 const std::vector<Real>& labels, const std::vector<Key>& extra_keys = {}) {
  Batch batch;
  batch.size = static_cast<int>(examples.size());
  batch.slots = static_cast<int>(slot_field.size());
  batch.slot_field = slot_field;
  batch.label = labels;
  std::map<Key, std::int32_t> index;
  auto row_of = [&](Key key) {
    auto it = index.find(key);
    if (it != index.end()) return it->second;
    const auto r = static_cast<std::int32_t>(batch.keys.size());
    index.emplace(key, r);
    batch.keys.push_back(key);
    return r;
  };
  for (const auto& example : examples) {
    EXPECT_EQ(example.size(), slot_field.size());
    for (const SlotSpec& s : example) {
      batch.row.push_back(s.empty ? -1 : row_of(s.key));
      batch.value.push_back(s.empty ? 0.0f : s.value);
    }
  }
  for (Key key : extra_keys) row_of(key);
  return batch;
}

inline const std::vector<std::uint8_t> kUserItem = {kFieldUser, kFieldItem};
inline const std::vector<std::uint8_t> kWithSides = {kFieldUser, kFieldItem, kFieldAge, kFieldGenre, kFieldGenre};

// Six examples (three (positive, negative) pairs, so BCE and BPR both apply)
// with users and items repeated across examples, so per-key summation of
// gradients is exercised.
inline Batch UserItemBatch() {
  using F = Field;
  return BuildBatch(kUserItem,
                    {{Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 0)},
                     {Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 1)},
                     {Slot(F::kFieldUser, 1), Slot(F::kFieldItem, 0)},
                     {Slot(F::kFieldUser, 1), Slot(F::kFieldItem, 2)},
                     {Slot(F::kFieldUser, 2), Slot(F::kFieldItem, 1)},
                     {Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 3)}},
                    {1, 0, 1, 0, 1, 0}, {MakeKey(kFieldItem, 99)});
}

// As UserItemBatch, plus an age slot (one-hot, sometimes missing) and a
// two-slot multi-hot genre field (values 1/n, the second slot empty for a
// single genre, both empty for none). Genres and ages repeat across examples.
inline Batch SideFeatureBatch() {
  using F = Field;
  const Real h = 0.5f;
  return BuildBatch(
      kWithSides,
      {{Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 0), Slot(F::kFieldAge, 3), Slot(F::kFieldGenre, 0, h),
        Slot(F::kFieldGenre, 1, h)},
       {Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 1), Slot(F::kFieldAge, 3), Slot(F::kFieldGenre, 2), kEmpty},
       {Slot(F::kFieldUser, 1), Slot(F::kFieldItem, 0), Slot(F::kFieldAge, 5), Slot(F::kFieldGenre, 0, h),
        Slot(F::kFieldGenre, 1, h)},
       {Slot(F::kFieldUser, 1), Slot(F::kFieldItem, 2), Slot(F::kFieldAge, 5), kEmpty, kEmpty},
       {Slot(F::kFieldUser, 2), Slot(F::kFieldItem, 1), kEmpty, Slot(F::kFieldGenre, 2), kEmpty},
       {Slot(F::kFieldUser, 0), Slot(F::kFieldItem, 3), Slot(F::kFieldAge, 3), Slot(F::kFieldGenre, 1, h),
        Slot(F::kFieldGenre, 2, h)}},
      {1, 0, 1, 0, 1, 0}, {MakeKey(kFieldGenre, 99)});
}

// Owns the storage of one value per parameter of every table, laid out as
// the worker lays out pulled rows.
class Params {
 public:
  Params(const std::vector<TableSpec>& tables, const Batch& batch) {
    for (const TableSpec& spec : tables) {
      const std::int64_t rows = spec.dense() ? spec.dense_rows() : static_cast<std::int64_t>(batch.keys.size());
      storage_.emplace_back(static_cast<size_t>(rows * spec.width), 0.0f);
      TableView view;
      view.rows = rows;
      view.width = spec.width;
      views_.push_back(view);
    }
    Rebind();
  }
  Params(const Params& other) : storage_(other.storage_), views_(other.views_) { Rebind(); }
  Params& operator=(const Params&) = delete;

  const ParamView& view() const { return views_; }
  std::vector<std::vector<Real>>& storage() { return storage_; }
  std::vector<Real>& table(TableId id) { return storage_[id]; }

  void Randomize(std::mt19937* rng, float scale) {
    std::normal_distribution<float> normal(0.0f, scale);
    for (auto& table : storage_)
      for (Real& x : table) x = normal(*rng);
  }

 private:
  void Rebind() {
    for (size_t t = 0; t < views_.size(); ++t) views_[t].data = storage_[t].data();
  }
  std::vector<std::vector<Real>> storage_;
  ParamView views_;
};

inline ModelConfig Config(const std::string& name, int dim, const std::vector<std::uint8_t>& slot_field) {
  ModelConfig config;
  config.name = name;
  config.dim = dim;
  config.slot_field = slot_field;
  return config;
}

}  // namespace testing_util
}  // namespace recsys

#endif  // RECSYS_TESTS_MODELS_MODEL_TEST_UTIL_H_
