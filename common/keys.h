// The one key space ("all nodes"): users, items and every side feature are
// rows of the same embedding tables. A key is the field in the top 8 bits and
// the value in the low 56 bits; values that do not fit are hashed into them.
#ifndef RECSYS_COMMON_KEYS_H_
#define RECSYS_COMMON_KEYS_H_

#include <cstdint>
#include <vector>

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

// The slot layout of a batch (Setup::slot_field, BatchBuilder): the user,
// the item, then the user's side-feature slots and the item's. Pass empty
// lists for a run without side features.
inline std::vector<std::uint8_t> SlotLayout(const std::vector<std::uint8_t>& user_slots,
                                            const std::vector<std::uint8_t>& item_slots) {
  std::vector<std::uint8_t> layout = {kFieldUser, kFieldItem};
  // Appended one by one: GCC 12 -O3 -march=x86-64-v3 warns, wrongly, that
  // inserting a range into the two-element vector writes out of bounds.
  for (const std::uint8_t f : user_slots) layout.push_back(f);
  for (const std::uint8_t f : item_slots) layout.push_back(f);
  return layout;
}

constexpr std::uint8_t FieldOf(Key key) { return static_cast<std::uint8_t>(key >> kFieldShift); }
constexpr std::uint64_t ValueOf(Key key) { return key & kValueMask; }

}  // namespace recsys

#endif  // RECSYS_COMMON_KEYS_H_
