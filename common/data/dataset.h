// The in-memory data a worker holds: its own users' interactions, side
// features, and (for formats that give one) the held-out test set.
#ifndef RECSYS_COMMON_DATA_DATASET_H_
#define RECSYS_COMMON_DATA_DATASET_H_

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/types.h"

namespace recsys {

// One implicit-feedback event. Ids are the data set's own ids.
struct Interaction {
  std::uint64_t user = 0;
  std::uint64_t item = 0;
  std::int64_t ts = 0;  // larger is later; readers without time use the line number
};

// One side feature of a user or item: its key (keys.h: field + value) and
// its value x (1 for one-hot, 1/n for each of n values of a multi-hot field).
struct Feature {
  Key key = 0;
  Real value = 1.0f;
};

struct Dataset {
  // Interactions of the users kept by the reader's filter, in file order.
  std::vector<Interaction> interactions;

  // Side features. user_features holds the kept users only; item_features
  // every item of the file. A user's (item's) features are ordered by field
  // and fill the slots described by user_slot_fields (item_slot_fields) in
  // order: feature j goes to slot j, unused slots stay empty. Empty
  // *_slot_fields means the data set has no such features.
  std::unordered_map<std::uint64_t, std::vector<Feature>> user_features;
  std::unordered_map<std::uint64_t, std::vector<Feature>> item_features;
  std::vector<std::uint8_t> user_slot_fields;
  std::vector<std::uint8_t> item_slot_fields;

  // A held-out test set given by the data (NCF format, or --eval-candidates):
  // the test item of each kept user and, if given, its candidate negatives.
  bool has_given_test = false;
  std::unordered_map<std::uint64_t, std::uint64_t> test_item;
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> test_candidates;

  // Every item id this reader saw anywhere (training, test, candidates, item
  // features), sorted and unique. Workers union these into the item universe.
  std::vector<std::uint64_t> items;

  // Users dropped by the filter are not counted anywhere; this counts kept users.
  std::size_t num_users() const;
};

// What to read. `format` is one of: synthetic, ml-100k, ml-1m, ncf, csv.
struct DataOptions {
  std::string format = "synthetic";
  std::string path;               // folder (ml-*), prefix (ncf) or file (csv)
  std::string eval_candidates;    // optional NCF .test.negative file
  bool side_features = true;      // read u.user/u.item (users.dat/movies.dat) when present
  // synthetic
  std::uint64_t seed = 1;
  std::uint64_t users = 2000;
  std::uint64_t items = 1000;
  int interactions_per_user = 30;
};

// Reads the data set, keeping interactions, user features, test items and
// candidates only of users for which keep_user(user) is true. Throws
// InputError naming the file, the line and what was expected for missing or
// unreadable files, empty files and malformed lines.
Dataset ReadDataset(const DataOptions& options, const std::function<bool(std::uint64_t)>& keep_user);

// Reads an NCF .test.negative file ("(user,item)\tneg\tneg...") into
// dataset->test_item / test_candidates for kept users, adding every item to
// dataset->items. Every line must have the same number of candidates.
void ReadCandidatesFile(const std::string& path, const std::function<bool(std::uint64_t)>& keep_user,
                        Dataset* dataset);

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_DATASET_H_
