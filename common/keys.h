// The one key space ("all nodes"): users, items and every side feature are
// rows of the same embedding tables. A key is the field in the top 8 bits and
// the value in the low 56 bits; values that do not fit are hashed into them.
#ifndef RECSYS_COMMON_KEYS_H_
#define RECSYS_COMMON_KEYS_H_

#include <cstdint>

#include "common/hash.h"
#include "common/types.h"

namespace recsys {

// Field ids used by the built-in readers. Models treat fields as opaque
// except that every example has a user and an item.
enum Field : std::uint8_t {
  kFieldUser = 0,
  kFieldItem = 1,
  kFieldAge = 2,
  kFieldGender = 3,
  kFieldOccupation = 4,
  kFieldGenre = 5,
  kNumBuiltinFields = 6,
  // Rows of dense parameter blocks (see TableSpec::dense_size).
  kFieldDense = 255,
};

constexpr int kFieldShift = 56;
constexpr std::uint64_t kValueMask = (std::uint64_t{1} << kFieldShift) - 1;

// Maps (field, value) to a key. Values below 2^56 map to themselves, so keys
// of ordinary ids stay readable; larger values are hashed (collisions are then
// possible, as in any hashed vocabulary, but vanishingly rare).
constexpr Key MakeKey(std::uint8_t field, std::uint64_t value) {
  const std::uint64_t v = (value & ~kValueMask) ? (Mix64(value) & kValueMask) : value;
  return (static_cast<std::uint64_t>(field) << kFieldShift) | v;
}

constexpr std::uint8_t FieldOf(Key key) { return static_cast<std::uint8_t>(key >> kFieldShift); }
constexpr std::uint64_t ValueOf(Key key) { return key & kValueMask; }

}  // namespace recsys

#endif  // RECSYS_COMMON_KEYS_H_
