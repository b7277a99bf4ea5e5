// Turns (user, item, label) examples into a Batch in the "all nodes" layout:
// slot 0 user, slot 1 item, then the user's and the item's side features;
// keys de-duplicated so every row is pulled and pushed once per batch.
#ifndef RECSYS_WORKER_BATCHER_H_
#define RECSYS_WORKER_BATCHER_H_

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/data/dataset.h"
#include "models/model.h"

namespace recsys {

struct Example {
  std::uint64_t user = 0;
  std::uint64_t item = 0;
  Real label = 0.0f;
};

class BatchBuilder {
 public:
  // `slot_field` is the agreed layout (Setup::slot_field). Side-feature slots
  // are filled from `data` (which must outlive the builder and must not
  // change after it is built: the builder indexes its feature maps once):
  // after the user and item slots come data.user_slot_fields.size() user
  // slots and then the item slots, if the layout has them.
  BatchBuilder(std::vector<std::uint8_t> slot_field, const Dataset* data);
  BatchBuilder(const BatchBuilder&) = delete;
  BatchBuilder& operator=(const BatchBuilder&) = delete;

  // Fills *batch (reusing its capacity) from examples[0..n). Allocates
  // nothing once the batch and the builder have seen a batch this large.
  void Build(const Example* examples, int n, Batch* batch);

 private:
  // Open addressing from an id to the features of that id in the data set:
  // one probe into a flat array instead of a node-based map per example.
  class FeatureIndex {
   public:
    void Init(const std::unordered_map<std::uint64_t, std::vector<Feature>>& features);
    // The features of `id`, or nullptr.
    const std::vector<Feature>* Find(std::uint64_t id) const;

   private:
    std::vector<std::uint64_t> ids_;
    std::vector<const std::vector<Feature>*> values_;  // nullptr = empty slot
    std::size_t mask_ = 0;
  };

  // Returns the key's row in the batch, appending it to batch->keys if new.
  std::int32_t Intern(Key key, Batch* batch);
  // Makes the key index hold `keys` keys at load <= 1/2, emptied.
  void ResetIndex(std::size_t keys);

  // Constant after construction.
  const std::vector<std::uint8_t> slot_field_;
  const Dataset* data_;
  int user_slots_ = 0;
  int item_slots_ = 0;
  FeatureIndex user_features_;
  FeatureIndex item_features_;

  // Scratch: key -> row in the current batch, open addressing with linear
  // probing. A slot is in use only if its stamp equals generation_, so
  // emptying the index between batches is one increment, not a clear.
  std::vector<Key> slot_key_;
  std::vector<std::int32_t> slot_row_;
  std::vector<std::uint32_t> slot_stamp_;
  std::uint32_t generation_ = 0;
  int shift_ = 64;  // 64 - log2(capacity): the hash's top bits pick the slot
};

}  // namespace recsys

#endif  // RECSYS_WORKER_BATCHER_H_
