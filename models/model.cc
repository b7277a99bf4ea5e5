// Helpers shared by the model families.
#include "models/model.h"

#include "common/error.h"
#include "models/mf.h"

namespace recsys {

std::vector<TableSpec> FactorModelTables(const ModelConfig& config) {
  RECSYS_CHECK(config.dim > 0, "dim=", config.dim);
  std::vector<TableSpec> tables(2);

  TableSpec& emb = tables[kFactorEmbTable];
  emb.id = kFactorEmbTable;
  emb.name = "emb";
  emb.width = config.dim + 1;  // factors, then the linear weight (see mf.h)
  emb.init = InitKind::kNormal;
  emb.init_scale = config.init_scale;

  TableSpec& w0 = tables[kFactorBiasTable];
  w0.id = kFactorBiasTable;
  w0.name = "w0";
  w0.width = 1;
  w0.init = InitKind::kZeros;
  w0.dense_size = 1;
  return tables;
}

void CheckFactorParams(const Batch& batch, const ParamView& params, int dim) {
  RECSYS_CHECK(params.size() == 2, "tables=", params.size());
  const TableView& emb = params[kFactorEmbTable];
  RECSYS_CHECK(emb.width == dim + 1, "emb width=", emb.width, " dim=", dim);
  RECSYS_CHECK(emb.rows == static_cast<std::int64_t>(batch.keys.size()), "emb rows=", emb.rows,
               " keys=", batch.keys.size());
  RECSYS_CHECK(emb.data != nullptr || emb.rows == 0, "emb has no data");
  const TableView& w0 = params[kFactorBiasTable];
  RECSYS_CHECK(w0.rows >= 1 && w0.width >= 1 && w0.data != nullptr, "w0 rows=", w0.rows);
  RECSYS_CHECK(batch.size >= 0 && batch.slots >= 0, "size=", batch.size, " slots=", batch.slots);
  RECSYS_CHECK(batch.row.size() == static_cast<size_t>(batch.size) * batch.slots, "row entries=",
               batch.row.size());
  RECSYS_CHECK(batch.value.size() == batch.row.size(), "value entries=", batch.value.size());
}

}  // namespace recsys
