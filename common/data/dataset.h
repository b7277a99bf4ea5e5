// The in-memory data a worker holds: its own users' interactions, side
// features, and (for formats that give one) the held-out test set.
#ifndef RECSYS_COMMON_DATA_DATASET_H_
#define RECSYS_COMMON_DATA_DATASET_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
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
  // The items [0, dense_items) belong to the universe too, without being
  // listed in `items` (the synthetic generator's items: tens of millions of
  // them cost one number; see ItemUniverse).
  std::uint64_t dense_items = 0;

  // Distinct ids that share their key (keys.h) with another id, so that
  // they share an embedding row: among every item and the kept users. Ids of
  // 56 bits and more are hashed into keys, and csv string ids into 64 bits
  // first, so collisions are possible but rare (README, "Data"). Users on
  // different workers are not compared with each other.
  std::uint64_t user_id_collisions = 0;
  std::uint64_t item_id_collisions = 0;
  std::string id_collision_example;  // the first collision found, or empty

  // Users dropped by the filter are not counted anywhere; this counts kept users.
  std::size_t num_users() const;
};

// The 64-bit id the csv reader gives a user or item that is not all digits:
// a stable hash of its bytes (FNV-1a, then Mix64; the same on every rank,
// run and platform) with the top bit set. The key of such an id is then
// MakeKey(field, id), whose low 56 bits are Mix64(id) (keys.h).
constexpr std::uint64_t kCsvStringIdBit = std::uint64_t{1} << 63;
std::uint64_t CsvStringId(std::string_view text);

// What to read. `format` is one of:
//   synthetic  SyntheticGenerator (synthetic.h) with seed/users/items/
//              interactions_per_user below; items are 0..items-1, all of them
//              (given as dense_items = items, not listed).
//   ml-100k    `path` is a folder: u.data ("user\titem\trating\tts"); with
//              side_features, u.user (age bucket <18,18-24,25-34,35-44,45-49,
//              50-55,56+ -> 0..6; gender M=0, F=1; occupation = its line in
//              u.occupation, or a stable hash of the name without that file)
//              and u.item (genre g of the last 19 flags -> MakeKey(kFieldGenre,
//              g) with value 1/n for n genres), each only if present.
//   ml-1m      `path` is a folder: ratings.dat ("user::item::rating::ts"),
//              optional users.dat (age codes 1..56 -> 0..6, occupation code)
//              and movies.dat (genre names, numbered as in ml-100k's u.genre).
//   ncf        `path` is a prefix: PREFIX.train.rating and PREFIX.test.rating
//              (tab-separated user item rating ts, one test row per user) and
//              PREFIX.test.negative (see ReadCandidatesFile), or
//              eval_candidates instead of the latter. Test rows are appended
//              to `interactions`, so the test item is among the user's
//              positives; the split holds it out. The candidates file must
//              give every test user exactly its test.rating item.
//   csv        `path` is a file with a header line and 2 or 3 columns
//              user,item[,timestamp] (any header names; without a timestamp
//              the line number is used). A 4-column header whose third name
//              is "rating" (MovieLens 20M/25M ratings.csv) is read as
//              user,item,rating,timestamp. A user or item field of digits is
//              the id (up to 2^64 - 1); any other string is hashed to a
//              64-bit id (CsvStringId), so open vocabularies work without an
//              id map. Surrounding double quotes (and spaces) are stripped;
//              no other CSV quoting. Distinct ids that end up with the same
//              key are counted in *_id_collisions (for users, only the kept
//              ones), not rejected.
// Lines may end in "\n" or "\r\n"; blank lines are skipped. Ratings are not
// used (every row is an implicit positive) but must be numbers.
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
// candidates only of users for which keep_user(user) is true. Every line of
// every file is still parsed and checked, so a bad file fails identically on
// every worker, and `items` is the same on every worker.
//
// If options.eval_candidates is set (any format), that file (see
// ReadCandidatesFile) gives the test set: has_given_test is true, and each of
// its kept users must have interactions in the data.
//
// Throws InputError "FILE:LINE: what was expected, got what" for malformed
// lines (wrong column count; ids that are not non-negative integers or
// overflow 64 bits; timestamps that are not integers or overflow; duplicate
// definitions; inconsistent test files), and "FILE: cannot open: <reason>" or
// "FILE: is empty; expected ..." for missing, unreadable and empty files.
// Also for an unknown format or a missing path.
Dataset ReadDataset(const DataOptions& options, const std::function<bool(std::uint64_t)>& keep_user);

// Reads an NCF .test.negative file ("(user,item)\tneg\tneg...") into
// dataset->test_item / test_candidates for kept users, adding every item of
// every line to dataset->items (kept sorted and unique) and setting
// dataset->has_given_test. Every line must have the same number (>= 1) of
// candidates, and no user may have two lines. Candidates are taken as given
// (order and any repeats kept). Throws InputError naming the file and line.
// It does not check users against the data; ReadDataset does.
void ReadCandidatesFile(const std::string& path, const std::function<bool(std::uint64_t)>& keep_user,
                        Dataset* dataset);

}  // namespace recsys

#endif  // RECSYS_COMMON_DATA_DATASET_H_
