#include "ps/server_shard.h"

#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

// A dense block's rows are MakeKey(kFieldDense, 0..rows-1). Any other key
// would create a row that no worker reads and that no checkpoint can place.
void CheckDenseKey(const EmbeddingTable& table, Key key, const char* op) {
  const TableSpec& spec = table.spec();
  if (FieldOf(key) != kFieldDense || ValueOf(key) >= static_cast<std::uint64_t>(spec.dense_rows())) {
    throw InputError(Concat(op, ": key ", key, " is not a row of dense block '", spec.name, "' (table ",
                            spec.id, ", ", spec.dense_rows(), " rows)"));
  }
}

}  // namespace

ServerShard::ServerShard(const std::vector<TableSpec>& specs, std::uint64_t seed,
                         const OptimizerConfig& optimizer)
    : optimizer_(MakeOptimizer(optimizer)) {
  // Reserved up front so that no table is moved after the next is added.
  tables_.reserve(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    RECSYS_CHECK(specs[i].id == i, "table '", specs[i].name, "' at position ", i, " has id ", specs[i].id);
    tables_.emplace_back(specs[i], seed, optimizer_.get());
  }
}

EmbeddingTable& ServerShard::TableOrThrow(TableId id, const char* op) {
  if (id >= tables_.size()) {
    throw InputError(Concat(op, ": unknown table id ", id, " (this server holds ", tables_.size(), " tables)"));
  }
  return tables_[id];
}

void ServerShard::Pull(TableId table, const Key* keys, std::size_t n, Real* out) {
  EmbeddingTable& t = TableOrThrow(table, "pull");
  const std::size_t width = static_cast<std::size_t>(t.width());
  const bool dense = t.spec().dense();
  for (std::size_t i = 0; i < n; ++i) {
    if (dense) CheckDenseKey(t, keys[i], "pull");
    t.Pull(keys[i], out + i * width);
  }
}

void ServerShard::Push(TableId table, const Key* keys, std::size_t n, const Real* grads) {
  EmbeddingTable& t = TableOrThrow(table, "push");
  const std::size_t width = static_cast<std::size_t>(t.width());
  const bool dense = t.spec().dense();
  for (std::size_t i = 0; i < n; ++i) {
    if (dense) CheckDenseKey(t, keys[i], "push");
    t.Push(keys[i], grads + i * width);
  }
}

std::size_t ServerShard::total_rows() const {
  std::size_t rows = 0;
  for (const EmbeddingTable& t : tables_) rows += t.size();
  return rows;
}

std::size_t ServerShard::total_bytes() const {
  std::size_t bytes = 0;
  for (const EmbeddingTable& t : tables_) bytes += t.bytes();
  return bytes;
}

}  // namespace recsys
