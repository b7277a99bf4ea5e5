// Tests of the flat hot-path frames (wire.h): round trips with odd counts
// keep every array 8-byte aligned, and a reader of a short or lying frame
// throws InputError instead of reading past the end.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/keys.h"
#include "common/wire.h"

namespace recsys {
namespace {

bool Aligned8(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 8 == 0; }

// A push-like frame: header, then per section table, n, keys[n], floats[n * width].
struct Section {
  std::uint32_t table;
  std::vector<Key> keys;
  std::vector<Real> values;
};

Bytes WriteFrame(std::uint64_t request, const std::vector<Section>& sections) {
  Bytes frame = {'x', 'y', 'z'};  // the writer starts from an empty buffer
  FrameWriter out(&frame);
  FrameHeader header;
  header.request = request;
  header.sections = static_cast<std::uint32_t>(sections.size());
  out.Put(header);
  for (const Section& s : sections) {
    out.Put(SectionHeader{s.table, static_cast<std::uint32_t>(s.keys.size())});
    out.PutArray(s.keys.data(), s.keys.size());
    out.PutArray(s.values.data(), s.values.size());
  }
  return frame;
}

// Reads a frame written by WriteFrame, with `width` floats per key.
std::vector<Section> ReadFrame(const Bytes& frame, int width, std::uint64_t* request) {
  FrameReader in(frame, "push from rank 5");
  const auto header = in.Get<FrameHeader>();
  *request = header.request;
  std::vector<Section> sections;
  for (std::uint32_t s = 0; s < header.sections; ++s) {
    const auto sec = in.Get<SectionHeader>();
    const Key* keys = in.GetArray<Key>(sec.n);
    EXPECT_TRUE(Aligned8(keys));
    EXPECT_EQ((reinterpret_cast<const char*>(keys) - frame.data()) % 8, 0);
    const Real* values = in.GetArray<Real>(std::size_t{sec.n} * width);
    EXPECT_TRUE(Aligned8(values));
    EXPECT_EQ((reinterpret_cast<const char*>(values) - frame.data()) % 8, 0);
    sections.push_back(Section{sec.table, std::vector<Key>(keys, keys + sec.n),
                               std::vector<Real>(values, values + std::size_t{sec.n} * width)});
  }
  return sections;
}

std::vector<Section> OddSections() {
  // 3 keys of width 3 (9 floats: 36 bytes, 4 of padding), 1 key (3 floats),
  // 0 keys, 5 keys (15 floats).
  std::vector<Section> sections;
  for (std::uint32_t t = 0; t < 4; ++t) {
    const std::uint32_t n = t == 0 ? 3 : t == 1 ? 1 : t == 2 ? 0 : 5;
    Section s{t, {}, {}};
    for (std::uint32_t i = 0; i < n; ++i) {
      s.keys.push_back(MakeKey(static_cast<std::uint8_t>(t), 1000 * t + i));
      for (int j = 0; j < 3; ++j) s.values.push_back(static_cast<Real>(t) + 0.25f * i + 0.01f * j);
    }
    sections.push_back(s);
  }
  return sections;
}

void ExpectSameSections(const std::vector<Section>& got, const std::vector<Section>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t s = 0; s < got.size(); ++s) {
    EXPECT_EQ(got[s].table, want[s].table);
    EXPECT_EQ(got[s].keys, want[s].keys);
    EXPECT_EQ(got[s].values, want[s].values);
  }
}

TEST(WireTest, RoundTripWithOddCountsKeepsAlignment) {
  const std::vector<Section> sections = OddSections();
  const Bytes frame = WriteFrame(0x123456789abcULL, sections);
  EXPECT_EQ(frame.size() % 8, 0u);
  // 16 header + (8 + 24 + 40) + (8 + 8 + 16) + (8) + (8 + 40 + 64).
  EXPECT_EQ(frame.size(), 16u + 72u + 32u + 8u + 112u);
  std::uint64_t request = 0;
  ExpectSameSections(ReadFrame(frame, 3, &request), sections);
  EXPECT_EQ(request, 0x123456789abcULL);
}

TEST(WireTest, PaddingIsZeroAndArraysFollowIt) {
  Bytes frame;
  FrameWriter out(&frame);
  out.Put(std::uint32_t{7});
  const Real three[] = {1.5f, 2.5f, 3.5f};
  out.PutArray(three, 3);  // 4 + 12 = 16: no padding
  const std::uint8_t one[] = {9};
  out.PutArray(one, 1);  // 17 -> padded to 24
  ASSERT_EQ(frame.size(), 24u);
  for (std::size_t i = 17; i < 24; ++i) EXPECT_EQ(frame[i], 0) << i;
  out.Put(std::uint64_t{42});
  ASSERT_EQ(frame.size(), 32u);

  FrameReader in(frame, "test frame");
  EXPECT_EQ(in.Get<std::uint32_t>(), 7u);
  const Real* floats = in.GetArray<Real>(3);
  EXPECT_EQ(floats[2], 3.5f);
  EXPECT_EQ(in.GetArray<std::uint8_t>(1)[0], 9);
  EXPECT_EQ(in.Get<std::uint64_t>(), 42u);
  EXPECT_TRUE(in.done());
}

TEST(WireTest, EmptyArraysAndEmptyFrame) {
  Bytes frame;
  FrameWriter out(&frame);
  out.PutArray(static_cast<const Key*>(nullptr), 0);
  EXPECT_TRUE(frame.empty());
  FrameReader in(frame, "empty");
  EXPECT_TRUE(in.done());
  EXPECT_NO_THROW(in.GetArray<Key>(0));  // zero elements: allowed
  EXPECT_THROW(in.Get<std::uint8_t>(), InputError);
  EXPECT_THROW(in.GetArray<Key>(1), InputError);
}

TEST(WireTest, EveryTruncationThrows) {
  const Bytes full = WriteFrame(77, OddSections());
  for (std::size_t size = 0; size < full.size(); ++size) {
    // A copy of exactly `size` bytes, so a read past it would be out of the
    // allocation (and caught by the sanitizer build).
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    std::uint64_t request = 0;
    try {
      ReadFrame(cut, 3, &request);
      // Only cutting the trailing padding of the last array would be
      // harmless, and the last array here (15 floats = 60 bytes) ends 4
      // bytes before the end.
      EXPECT_GE(size, full.size() - 4) << "truncated to " << size << " of " << full.size() << " bytes was accepted";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("malformed push from rank 5"), std::string::npos) << what;
      EXPECT_NE(what.find("(" + std::to_string(size) + " bytes)"), std::string::npos) << what;
    }
  }
}

TEST(WireTest, CountsThatRunPastTheEndThrow) {
  std::vector<Section> one = {Section{0, {MakeKey(kFieldItem, 1), MakeKey(kFieldItem, 2)}, {1, 2, 3, 4}}};
  Bytes frame = WriteFrame(1, one);
  // Lie about the number of keys: the section header sits at offset 16.
  for (std::uint32_t n : {3u, 1000u, 0x7fffffffu, 0xffffffffu}) {
    Bytes lying = frame;
    std::memcpy(lying.data() + 16 + 4, &n, sizeof(n));
    std::uint64_t request = 0;
    try {
      ReadFrame(lying, 2, &request);
      ADD_FAILURE() << "n = " << n << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("runs past the end"), std::string::npos) << e.what();
    }
  }
  // Lie about the number of sections.
  Bytes more_sections = frame;
  const std::uint32_t sections = 2;
  std::memcpy(more_sections.data() + 8, &sections, sizeof(sections));
  std::uint64_t request = 0;
  EXPECT_THROW(ReadFrame(more_sections, 2, &request), InputError);

  // Huge element counts must not overflow n * sizeof(T) into a small number.
  FrameReader in(frame, "x");
  in.Get<FrameHeader>();
  EXPECT_THROW(in.GetArray<Key>(std::size_t{1} << 61), InputError);
  EXPECT_THROW(in.GetArray<Real>(~std::size_t{0}), InputError);
}

TEST(WireTest, ExtendReservesAlignedRoom) {
  Bytes frame;
  FrameWriter out(&frame);
  FrameHeader header;
  header.request = 9;
  header.sections = 1;
  out.Put(header);
  out.Put(SectionHeader{2, 3});
  Key* keys = out.Extend<Key>(3);
  EXPECT_EQ(frame.size(), 16u + 8u + 24u);
  EXPECT_TRUE(Aligned8(keys));
  for (int i = 0; i < 3; ++i) keys[i] = MakeKey(kFieldUser, 100 + i);
  Real* values = out.Extend<Real>(5);  // 20 bytes -> 24
  EXPECT_EQ(frame.size(), 48u + 24u);
  EXPECT_TRUE(Aligned8(values));
  for (int i = 0; i < 5; ++i) values[i] = 0.5f * i;
  EXPECT_EQ(frame[frame.size() - 1], 0);  // padding zeroed
  EXPECT_EQ(out.Extend<Real>(0), reinterpret_cast<Real*>(frame.data() + frame.size()));
  EXPECT_EQ(frame.size(), 72u);

  FrameReader in(frame, "extended");
  EXPECT_EQ(in.Get<FrameHeader>().request, 9u);
  const auto sec = in.Get<SectionHeader>();
  EXPECT_EQ(sec.table, 2u);
  const Key* got_keys = in.GetArray<Key>(sec.n);
  EXPECT_EQ(got_keys[2], MakeKey(kFieldUser, 102));
  const Real* got_values = in.GetArray<Real>(5);
  EXPECT_EQ(got_values[4], 2.0f);
  EXPECT_TRUE(in.done());
}


TEST(WireTest, FixedWriterFillsItsPlaceAndRefusesMore) {
  alignas(8) char place[48] = {};
  FrameWriter out(place, sizeof(place));
  FrameHeader header;
  header.request = 5;
  header.sections = 1;
  out.Put(header);
  out.Put(SectionHeader{0, 3});
  Real* values = out.Extend<Real>(3);  // 12 bytes -> 16
  EXPECT_EQ(values, reinterpret_cast<Real*>(place + 24));
  for (int i = 0; i < 3; ++i) values[i] = 1.0f + i;
  EXPECT_EQ(out.size(), 40u);
  EXPECT_EQ(place[39], 0);  // padding zeroed
  EXPECT_NO_THROW(out.Put(std::uint64_t{1}));  // 48: exactly full
  EXPECT_EQ(out.size(), 48u);
  EXPECT_THROW(out.Put(std::uint8_t{1}), InternalError);
  EXPECT_THROW(out.Extend<Real>(1), InternalError);
}

TEST(WireTest, ReaderOverMemoryReadsWhatAFixedWriterWrote) {
  alignas(8) char place[64];
  std::memset(place, 0x5a, sizeof(place));
  FrameWriter out(place, sizeof(place));
  out.Put(ReplyPlace{128, 4096});
  const Key keys[] = {MakeKey(kFieldUser, 1), MakeKey(kFieldItem, 2)};
  out.PutArray(keys, 2);
  FrameReader in(place, out.size(), "placed frame");
  const auto p = in.Get<ReplyPlace>();
  EXPECT_EQ(p.offset, 128u);
  EXPECT_EQ(p.bytes, 4096u);
  const Key* read = in.GetArray<Key>(2);
  EXPECT_EQ(read[1], keys[1]);
  EXPECT_TRUE(in.done());
  EXPECT_THROW(in.Get<std::uint8_t>(), InputError);  // the reader stops at the size it was given
}

}  // namespace
}  // namespace recsys
