// Copies of one row of `width` floats, where the width is known only at run
// time but is nearly always one of a few. WithRowCopy picks, once for a loop,
// a copy of fixed size for the common widths (it compiles to vector moves)
// and a memcpy of the run-time size for the others, which costs a library
// call and a size dispatch per row: EmbeddingTable::PeekMany's copies took
// 0.78-0.97x the time (README "Performance", session 12). The worker's
// per-row copies for several servers measured no change with it
// (BM_PsClientPullPush/servers:2) and keep memcpy.
#ifndef RECSYS_COMMON_ROW_COPY_H_
#define RECSYS_COMMON_ROW_COPY_H_

#include <cstddef>
#include <cstring>

#include "common/types.h"

namespace recsys {

template <int kWidth>
struct FixedRowCopy {
  void operator()(Real* out, const Real* row, std::size_t /*width*/) const {
    std::memcpy(out, row, sizeof(Real) * kWidth);
  }
};

struct AnyRowCopy {
  void operator()(Real* out, const Real* row, std::size_t width) const {
    std::memcpy(out, row, sizeof(Real) * width);
  }
};

// Calls fn(copy) with the copy for rows of `width` floats (FixedRowCopy for
// 16, 32, 33 and 64: the models' widths at dim 16, 32 and 64, with and
// without a bias; AnyRowCopy otherwise) and returns what fn returns.
template <typename Fn>
decltype(auto) WithRowCopy(int width, Fn&& fn) {
  switch (width) {
    case 16:
      return fn(FixedRowCopy<16>());
    case 32:
      return fn(FixedRowCopy<32>());
    case 33:
      return fn(FixedRowCopy<33>());
    case 64:
      return fn(FixedRowCopy<64>());
    default:
      return fn(AnyRowCopy());
  }
}

}  // namespace recsys

#endif  // RECSYS_COMMON_ROW_COPY_H_
