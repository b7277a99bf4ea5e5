// Dataset's own methods. The readers that fill a Dataset are in readers.cc.
#include "common/data/dataset.h"

#include <unordered_set>

namespace recsys {

std::size_t Dataset::num_users() const {
  // A kept user may appear only in the given test set (a test item without
  // training rows), so count both sources.
  std::unordered_set<std::uint64_t> users;
  for (const Interaction& x : interactions) users.insert(x.user);
  for (const auto& entry : test_item) users.insert(entry.first);
  return users.size();
}

}  // namespace recsys
