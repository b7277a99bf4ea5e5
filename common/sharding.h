// Which server holds a row. Rows are spread by a hash of (table, key), never
// by range, so consecutive (often hot) ids land on different servers.
#ifndef RECSYS_COMMON_SHARDING_H_
#define RECSYS_COMMON_SHARDING_H_

#include <cstdint>

#include "common/hash.h"
#include "common/types.h"

namespace recsys {

// Returns the shard index in [0, num_shards). num_shards > 0.
inline int ShardOf(TableId table, Key key, int num_shards) {
  const std::uint64_t h = HashCombine(0x5eedULL + table, key);
  return static_cast<int>((static_cast<Uint128>(h) * static_cast<std::uint64_t>(num_shards)) >> 64);
}

}  // namespace recsys

#endif  // RECSYS_COMMON_SHARDING_H_
