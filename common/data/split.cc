#include "common/data/split.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "common/error.h"

namespace recsys {
namespace {

// One interaction with its position in the file, which breaks timestamp ties.
struct Row {
  std::uint64_t user;
  std::int64_t ts;
  std::size_t position;
  std::uint64_t item;
};

// The distinct items of one user's rows (sorted by time, oldest first), each
// at its latest occurrence, oldest first. Returns the number of rows merged away.
std::size_t DistinctByLatest(const Row* begin, const Row* end, std::vector<std::uint64_t>* items) {
  const std::size_t n = static_cast<std::size_t>(end - begin);
  // (item, index) sorted: the last entry of each item's run is its latest row.
  std::vector<std::pair<std::uint64_t, std::size_t>> by_item(n);
  for (std::size_t i = 0; i < n; ++i) by_item[i] = {begin[i].item, i};
  std::sort(by_item.begin(), by_item.end());
  std::vector<bool> latest(n, false);
  std::size_t distinct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 1 == n || by_item[i + 1].first != by_item[i].first) {
      latest[by_item[i].second] = true;
      ++distinct;
    }
  }
  items->clear();
  items->reserve(distinct);
  for (std::size_t i = 0; i < n; ++i) {
    if (latest[i]) items->push_back(begin[i].item);
  }
  return n - distinct;
}

// Holds out the test (and validation) item of one user from `items`
// (distinct, oldest first), leaving the training positives in it.
UserHistory SplitUser(std::uint64_t user, std::vector<std::uint64_t> items, const Dataset& dataset,
                      bool validation) {
  UserHistory history;
  history.user = user;
  if (dataset.has_given_test) {
    const auto given = dataset.test_item.find(user);
    if (given != dataset.test_item.end()) {
      history.has_test = true;
      history.test_item = given->second;
      // Items are distinct, so the test item appears at most once.
      const auto it = std::find(items.begin(), items.end(), given->second);
      if (it != items.end()) items.erase(it);
    }
  } else if (items.size() >= 2) {
    history.has_test = true;
    history.test_item = items.back();
    items.pop_back();
  }
  // With the test item held out, >= 2 left means >= 3 distinct items: one
  // for validation and at least one to train on.
  if (validation && history.has_test && items.size() >= 2) {
    history.has_valid = true;
    history.valid_item = items.back();
    items.pop_back();
  }
  history.positives = items;
  if (history.has_test) history.positives.push_back(history.test_item);
  if (history.has_valid) history.positives.push_back(history.valid_item);
  std::sort(history.positives.begin(), history.positives.end());
  history.train = std::move(items);
  return history;
}

}  // namespace

std::vector<UserHistory> LeaveOneOutSplit(const Dataset& dataset, bool validation, SplitStats* stats) {
  const std::vector<Interaction>& input = dataset.interactions;
  std::vector<Row> rows(input.size());
  for (std::size_t i = 0; i < input.size(); ++i) rows[i] = {input[i].user, input[i].ts, i, input[i].item};
  // Group by user, then time; the file position makes the order total, so
  // the result does not depend on the sort's stability.
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.user, a.ts, a.position) < std::tie(b.user, b.ts, b.position);
  });

  SplitStats local;
  std::vector<UserHistory> histories;
  std::vector<std::uint64_t> items;
  for (std::size_t begin = 0; begin < rows.size();) {
    std::size_t end = begin;
    while (end < rows.size() && rows[end].user == rows[begin].user) ++end;
    local.duplicates_merged += DistinctByLatest(rows.data() + begin, rows.data() + end, &items);
    histories.push_back(SplitUser(rows[begin].user, items, dataset, validation));
    begin = end;
  }

  // A user with a given test item but no rows is still evaluated (with an
  // empty history), as the test set says.
  if (dataset.has_given_test) {
    const std::size_t with_rows = histories.size();
    for (const auto& entry : dataset.test_item) {
      const auto found = std::lower_bound(
          histories.begin(), histories.begin() + static_cast<std::ptrdiff_t>(with_rows), entry.first,
          [](const UserHistory& history, std::uint64_t user) { return history.user < user; });
      const bool has_rows = found != histories.begin() + static_cast<std::ptrdiff_t>(with_rows) &&
                            found->user == entry.first;
      if (!has_rows) histories.push_back(SplitUser(entry.first, {}, dataset, validation));
    }
    std::sort(histories.begin(), histories.end(),
              [](const UserHistory& a, const UserHistory& b) { return a.user < b.user; });
  }

  for (const UserHistory& history : histories) {
    RECSYS_CHECK(std::is_sorted(history.positives.begin(), history.positives.end()));
    if (!history.has_test) ++local.users_without_test;
  }
  local.users = histories.size();
  if (stats != nullptr) *stats = local;
  return histories;
}

}  // namespace recsys
