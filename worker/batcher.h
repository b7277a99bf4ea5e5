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
  // are filled from `data` (which must outlive the builder): after the user
  // and item slots come data.user_slot_fields.size() user slots and then the
  // item slots, if the layout has them.
  BatchBuilder(std::vector<std::uint8_t> slot_field, const Dataset* data);

  // Fills *batch (reusing its capacity) from examples[0..n).
  void Build(const Example* examples, int n, Batch* batch);

 private:
  std::int32_t Intern(Key key, Batch* batch);

  const std::vector<std::uint8_t> slot_field_;
  const Dataset* data_;
  int user_slots_ = 0;
  int item_slots_ = 0;
  std::unordered_map<Key, std::int32_t> index_;  // scratch: key -> row in the batch
};

}  // namespace recsys

#endif  // RECSYS_WORKER_BATCHER_H_
