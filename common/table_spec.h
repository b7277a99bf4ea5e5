// What a model declares about each of its parameter tables. Servers create
// tables from these specs; workers use them to lay out pulled rows.
#ifndef RECSYS_COMMON_TABLE_SPEC_H_
#define RECSYS_COMMON_TABLE_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/types.h"

namespace recsys {

enum class InitKind : std::uint8_t {
  kZeros = 0,
  kNormal = 1,   // N(0, scale^2)
  kUniform = 2,  // U(-scale, scale)
};

// A table of rows of `width` floats.
//
// A sparse table (dense_size == 0) is an embedding table: its rows are
// addressed by feature keys (keys.h) and created on first touch.
//
// A dense block (dense_size > 0) holds dense_size floats (an MLP weight
// matrix, a bias, the global bias w0), cut into ceil(dense_size / width) rows
// addressed by MakeKey(kFieldDense, 0..rows-1). It lives on the servers like
// any table and is sharded row by row; workers pull all its rows.
struct TableSpec {
  TableId id = 0;
  std::string name;
  std::int32_t width = 0;
  InitKind init = InitKind::kZeros;
  float init_scale = 0.0f;
  std::int64_t dense_size = 0;

  bool dense() const { return dense_size > 0; }
  // Number of rows of a dense block; 0 for a sparse table.
  std::int64_t dense_rows() const { return dense() ? (dense_size + width - 1) / width : 0; }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & id & name & width & init & init_scale & dense_size;
  }
};

// Writes the initial value of row `key` of `spec` into out[0..width). The
// values depend only on (seed, spec.id, key), never on which server creates
// the row, so a run's result does not depend on the number of servers. For a
// dense block, floats past dense_size in the last row are zero.
void InitRow(const TableSpec& spec, std::uint64_t seed, Key key, Real* out);

}  // namespace recsys

#endif  // RECSYS_COMMON_TABLE_SPEC_H_
