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
  // A side feature with its key numbered densely: the keys of side features
  // are few (MovieLens-100k: ~50 in a batch, but 9 per example), so a
  // batch's rows for them sit in small arrays indexed by that number
  // instead of being hashed again for every example.
  struct DenseFeature {
    std::uint32_t id = 0;  // index into dense_keys_
    Real value = 1.0f;
  };
  // Open addressing from an id to the features of that id in the data set:
  // one probe into a flat array instead of a node-based map per example.
  class FeatureIndex {
   public:
    // Indexes `features`, numbering each new feature key in *dense.
    void Init(const std::unordered_map<std::uint64_t, std::vector<Feature>>& features,
              std::unordered_map<Key, std::uint32_t>* dense, std::vector<Key>* dense_keys);
    // The features of `id` (*count of them), or nullptr.
    const DenseFeature* Find(std::uint64_t id, int* count) const;

   private:
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
    std::vector<std::uint64_t> ids_;
    std::vector<std::uint32_t> begin_;  // into features_
    std::vector<std::uint32_t> count_;  // kEmpty = empty slot
    std::vector<DenseFeature> features_;
    std::size_t mask_ = 0;
  };

  // Returns the key's row in the batch, appending it to batch->keys if new.
  std::int32_t Intern(Key key, Batch* batch);
  // The same for the side feature numbered `id`.
  std::int32_t InternDense(std::uint32_t id, Batch* batch);
  // Makes the key index hold `keys` keys at load <= 1/2, emptied.
  void ResetIndex(std::size_t keys);

  // Constant after construction.
  const std::vector<std::uint8_t> slot_field_;
  const Dataset* data_;
  int user_slots_ = 0;
  int item_slots_ = 0;
  FeatureIndex user_features_;
  FeatureIndex item_features_;
  std::vector<Key> dense_keys_;  // side-feature keys by their number

  // Scratch: the row of each side feature in the current batch, valid where
  // dense_stamp_ equals generation_.
  std::vector<std::int32_t> dense_row_;
  std::vector<std::uint32_t> dense_stamp_;
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
