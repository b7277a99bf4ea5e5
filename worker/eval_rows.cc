#include "worker/eval_rows.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace recsys {

EvalRows::EvalRows(std::vector<TableSpec> tables, std::size_t max_rows)
    : tables_(std::move(tables)), max_rows_(max_rows), rows_(tables_.size()) {
  RECSYS_CHECK(max_rows_ >= 1);
  for (const auto& t : tables_) has_dense_ = has_dense_ || t.dense();
}

void EvalRows::Missing(const std::vector<Key>& keys, std::vector<Key>* missing) {
  missing->clear();
  if (has_dense_ && !dense_held_) {
    *missing = keys;
    return;
  }
  for (Key k : keys) {
    if (index_.find(k) == index_.end()) missing->push_back(k);
  }
  if (index_.size() + missing->size() > max_rows_) {
    // Over the bound: start again with this batch's rows.
    Clear();
    *missing = keys;
  }
}

void EvalRows::Store(const std::vector<Key>& keys, const ParamBuffers& pulled) {
  RECSYS_CHECK(pulled.storage.size() == tables_.size(), "pulled rows of ", pulled.storage.size(), " tables");
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    if (!tables_[t].dense()) continue;
    rows_[t] = pulled.storage[t];
    dense_held_ = true;
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto [it, added] = index_.emplace(keys[i], static_cast<std::uint32_t>(index_.size()));
    if (!added) continue;
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      if (tables_[t].dense()) continue;
      const std::size_t width = static_cast<std::size_t>(tables_[t].width);
      const Real* src = pulled.storage[t].data() + i * width;
      rows_[t].insert(rows_[t].end(), src, src + width);
    }
  }
}

void EvalRows::Fill(const std::vector<Key>& keys, ParamBuffers* rows) const {
  rows->Shape(tables_, keys.size());
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    if (tables_[t].dense()) {
      RECSYS_CHECK(dense_held_ && rows_[t].size() == rows->storage[t].size(), "dense block ", t, " not held");
      std::copy(rows_[t].begin(), rows_[t].end(), rows->storage[t].begin());
    }
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto it = index_.find(keys[i]);
    RECSYS_CHECK(it != index_.end(), "key ", keys[i], " not held");
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      if (tables_[t].dense()) continue;
      const std::size_t width = static_cast<std::size_t>(tables_[t].width);
      std::memcpy(rows->storage[t].data() + i * width, rows_[t].data() + it->second * width, width * sizeof(Real));
    }
  }
}

void EvalRows::Clear() {
  index_.clear();
  for (auto& r : rows_) r.clear();
  dense_held_ = false;
}

}  // namespace recsys
