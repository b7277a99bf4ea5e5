// Tests of control-message decoding (control.h): messages round-trip, and
// the bytes of a corrupt message are refused with InputError before anything
// is allocated from them. The corrupt inputs are the two findings of
// tests/fuzz/fuzz_control (kept in tests/fuzz/regressions/fuzz_control).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/control.h"
#include "common/error.h"

namespace recsys {
namespace {

// gtest's Test has a private Setup() (a trap for SetUp) that hides ours in
// test bodies.
using SetupMessage = recsys::Setup;

// Position of the first 8-byte little-endian `value` in `bytes` (how the
// binary archive writes element counts and string lengths).
std::size_t FindU64(const Bytes& bytes, std::uint64_t value) {
  for (std::size_t i = 0; i + 8 <= bytes.size(); ++i) {
    std::uint64_t v = 0;
    std::memcpy(&v, bytes.data() + i, 8);
    if (v == value) return i;
  }
  return std::string::npos;
}

void PutU64(Bytes* bytes, std::size_t at, std::uint64_t value) { std::memcpy(bytes->data() + at, &value, 8); }

std::string DecodeError(const std::function<void()>& decode) {
  try {
    decode();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Control, MessagesRoundTrip) {
  SetupMessage setup;
  setup.items = {1, 2, 3};
  setup.slot_field = {0, 1, 5};
  setup.tables.resize(1);
  setup.tables[0].name = "emb";
  setup.tables[0].width = 8;
  setup.restore.dir = "ckpt/ckpt-2";
  setup.restore.files = {"shard-0.bin"};
  setup.restore.checksums = {42};
  setup.restore.with_state = false;
  const SetupMessage back = DecodeControl<SetupMessage>(EncodeControl(setup), "setup");
  EXPECT_EQ(back.items, setup.items);
  EXPECT_EQ(back.slot_field, setup.slot_field);
  ASSERT_EQ(back.tables.size(), 1u);
  EXPECT_EQ(back.tables[0].name, "emb");
  EXPECT_EQ(back.tables[0].width, 8);
  EXPECT_EQ(back.restore.dir, setup.restore.dir);
  EXPECT_EQ(back.restore.files, setup.restore.files);
  EXPECT_EQ(back.restore.checksums, setup.restore.checksums);
  EXPECT_FALSE(back.restore.with_state);

  Command command;
  command.kind = Command::kCheckpoint;
  command.epoch = 3;
  command.path = "ckpt/ckpt-3";
  const Command c = DecodeControl<Command>(EncodeControl(command), "command");
  EXPECT_EQ(c.kind, Command::kCheckpoint);
  EXPECT_EQ(c.epoch, 3);
  EXPECT_EQ(c.path, command.path);
}

// Fuzz finding setup_bool_not_0_or_1: a bool byte other than 0 or 1 was read
// straight into a bool (undefined behaviour, a UBSan report).
TEST(Control, BoolByteOtherThanZeroOrOneIsRefused) {
  SetupMessage setup;
  setup.restore.with_state = true;
  Bytes bytes = EncodeControl(setup);
  setup.restore.with_state = false;
  const Bytes without = EncodeControl(setup);
  // The one byte that differs is with_state's.
  ASSERT_EQ(bytes.size(), without.size());
  std::size_t at = bytes.size();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != without[i]) at = i;
  }
  ASSERT_LT(at, bytes.size());
  ASSERT_EQ(static_cast<int>(bytes[at]), 1);
  bytes[at] = 2;
  const std::string error = DecodeError([&] { (void)DecodeControl<SetupMessage>(bytes, "setup message"); });
  EXPECT_NE(error.find("malformed setup message"), std::string::npos) << error;
  EXPECT_NE(error.find("bool byte 2 is neither 0 nor 1"), std::string::npos) << error;
}

// Fuzz finding setup_huge_vector_count: an element count of a vector was
// used to allocate before it was checked (a 20-byte message could ask for
// terabytes). Counts and string lengths are bounded by the message size.
TEST(Control, HugeElementCountIsRefusedBeforeAllocating) {
  WorkerHello hello;
  hello.items = {11, 12, 13, 14, 15, 16, 17};  // a count of 7, found below
  Bytes bytes = EncodeControl(hello);
  const std::size_t at = FindU64(bytes, 7);
  ASSERT_NE(at, std::string::npos);
  for (std::uint64_t count : {std::uint64_t{1} << 40, ~std::uint64_t{0} / 8, std::uint64_t{bytes.size()} + 1}) {
    PutU64(&bytes, at, count);
    const std::string error = DecodeError([&] { (void)DecodeControl<WorkerHello>(bytes, "hello"); });
    EXPECT_NE(error.find("element count " + std::to_string(count) + " exceeds the message size"), std::string::npos)
        << error;
  }
}

TEST(Control, HugeStringLengthIsRefusedBeforeAllocating) {
  Command command;
  command.path = "abcdefghijklmnopq";  // 17 characters, found below
  Bytes bytes = EncodeControl(command);
  const std::size_t at = FindU64(bytes, 17);
  ASSERT_NE(at, std::string::npos);
  PutU64(&bytes, at, std::uint64_t{1} << 50);
  const std::string error = DecodeError([&] { (void)DecodeControl<Command>(bytes, "command"); });
  EXPECT_NE(error.find("string length 1125899906842624 exceeds the message size"), std::string::npos) << error;
}

TEST(Control, TruncatedMessageIsRefused) {
  ServerStats stats;
  stats.rank = 2;
  stats.keys = 99;
  Bytes bytes = EncodeControl(stats);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Bytes cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string error = DecodeError([&] { (void)DecodeControl<ServerStats>(cut, "server stats"); });
    EXPECT_NE(error.find("malformed server stats"), std::string::npos) << n << ": " << error;
  }
}

}  // namespace
}  // namespace recsys
