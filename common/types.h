// Plain types shared by every module. Header only; no dependencies.
#ifndef RECSYS_COMMON_TYPES_H_
#define RECSYS_COMMON_TYPES_H_

#include <cstdint>

namespace recsys {

// A row of an embedding table is addressed by (table, key). Keys carry the
// feature field in their high bits (see keys.h).
using Key = std::uint64_t;
// Every parameter, gradient and optimizer slot is a float.
using Real = float;
// Index of a table in the model's list of TableSpecs.
using TableId = std::uint32_t;

}  // namespace recsys

#endif  // RECSYS_COMMON_TYPES_H_
