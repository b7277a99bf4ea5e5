// Leave-one-out split. Each user's latest interaction is held out for test
// (and, with validation, the second-latest for validation). "Latest" orders
// a user's interactions by (timestamp, position in the file): among equal
// timestamps the one appearing last in the file is the latest. Repeated
// (user, item) pairs are merged into one positive at their latest time.
#ifndef RECSYS_COMMON_DATA_SPLIT_H_
#define RECSYS_COMMON_DATA_SPLIT_H_

#include <cstdint>
#include <vector>

#include "common/data/dataset.h"

namespace recsys {

struct UserHistory {
  std::uint64_t user = 0;
  std::vector<std::uint64_t> train;  // training positives, oldest first
  bool has_test = false;
  std::uint64_t test_item = 0;
  bool has_valid = false;
  std::uint64_t valid_item = 0;
  // Every item of the user (train, valid, test), sorted: never a negative.
  std::vector<std::uint64_t> positives;
};

struct SplitStats {
  std::size_t users = 0;
  // Users not evaluated. Without a given test set: users with a single
  // distinct item, which is kept for training. With one: users that have
  // interactions but no given test item.
  std::size_t users_without_test = 0;
  // Rows dropped because the same (user, item) appeared before.
  std::size_t duplicates_merged = 0;
};

// Splits `dataset`'s interactions per user. If the data set gives a test set
// (dataset.has_given_test), a user's test item is the given one (removed from
// training where it also appears there) instead of the latest; a user with a
// given test item but no interactions is returned too, with an empty
// history. With `validation`, the latest remaining interaction of an
// evaluated user with at least 3 distinct items becomes the validation item.
// Returns users sorted by id. `stats` may be null.
std::vector<UserHistory> LeaveOneOutSplit(const Dataset& dataset, bool validation, SplitStats* stats);

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_SPLIT_H_
