// The rows an evaluation has pulled, kept for the rest of that evaluation.
//
// Nothing trains while the workers evaluate (the coordinator starts an
// evaluation only after every worker's pushes of the epoch are
// acknowledged), so a row pulled for one user's candidates is still exact
// for the next user's. Sampled evaluation pulls each user's ~100 candidates
// and full ranking pulls every item for every user; with this cache each
// distinct row crosses the wire once per evaluation, and the dense blocks
// once. The scores are the same bits as pulling every batch.
//
// Bounded: past `max_rows` rows (all sparse tables together) the cache
// forgets everything and starts again. Clear() at the end of an evaluation.
// Not thread-safe; one per worker.
#ifndef RECSYS_WORKER_EVAL_ROWS_H_
#define RECSYS_WORKER_EVAL_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/table_spec.h"
#include "common/types.h"
#include "worker/ps_client.h"

namespace recsys {

class EvalRows {
 public:
  // `tables`: the model's tables. max_rows >= 1.
  EvalRows(std::vector<TableSpec> tables, std::size_t max_rows);

  // The keys of `keys` (a batch's distinct keys) whose rows are not held;
  // every key when the dense blocks are not held yet, since a pull brings
  // them only along with some key. Empty: Fill can serve the batch as it is.
  void Missing(const std::vector<Key>& keys, std::vector<Key>* missing);
  // Stores the rows of `keys` as PsClient::Pull filled them in `pulled`
  // (and the dense blocks that came with them).
  void Store(const std::vector<Key>& keys, const ParamBuffers& pulled);
  // Shapes *rows for `keys` and fills it from the cache; every key must be
  // held (after Missing and Store).
  void Fill(const std::vector<Key>& keys, ParamBuffers* rows) const;
  void Clear();

  std::size_t size() const { return index_.size(); }

 private:
  // Constant after construction.
  const std::vector<TableSpec> tables_;
  const std::size_t max_rows_;

  bool has_dense_ = false;  // the model has dense blocks
  bool dense_held_ = false;
  std::unordered_map<Key, std::uint32_t> index_;  // key -> row in every sparse table's rows_
  std::vector<std::vector<Real>> rows_;           // per table: sparse rows, or the dense block
};

}  // namespace recsys

#endif  // RECSYS_WORKER_EVAL_ROWS_H_
