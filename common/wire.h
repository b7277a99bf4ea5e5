// Flat frames of the hot path: pull and push carry keys and floats as raw
// arrays, one message per server per batch, no serialization library. All
// arrays start at 8-byte aligned offsets so the receiver reads them in place.
//
//   Pull       u64 request, u32 sections, u32 0, then per section:
//              u32 table, u32 n, Key keys[n]
//   PullReply  u64 request, u32 sections, u32 0, then per section:
//              u32 table, u32 n, Real rows[n * width], padding to 8
//   Push       u64 request, u32 sections, u32 0, then per section:
//              u32 table, u32 n, Key keys[n], Real grads[n * width], padding to 8
//   PushAck    u64 request
//
// Frames come from other ranks and are checked like any input: a reader
// never reads past the end, and a count that does not fit is an error.
#ifndef RECSYS_COMMON_WIRE_H_
#define RECSYS_COMMON_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "common/error.h"
#include "common/transport.h"
#include "common/types.h"

namespace recsys {

// Message tags. Hot path first, then control.
enum WireTag : int {
  kTagPull = 1,
  kTagPullReply = 2,
  kTagPush = 3,
  kTagPushAck = 4,
  kTagEvalPull = 5,  // read-only pull, served at once even in --sync mode
  kTagControl = 10,  // Boost.Serialization control messages (control.h)
};

struct FrameHeader {
  std::uint64_t request = 0;
  std::uint32_t sections = 0;
  // Pushes: the job's global step they belong to (Adam's bias correction,
  // ps/optimizer.h), saturated at 2^32 - 1; 0: not known. Other frames: 0.
  std::uint32_t step = 0;
};
static_assert(sizeof(FrameHeader) == 16, "frame header layout");

struct SectionHeader {
  std::uint32_t table = 0;
  std::uint32_t n = 0;
};
static_assert(sizeof(SectionHeader) == 8, "section header layout");

// Appends PODs and arrays to a byte buffer, keeping arrays 8-byte aligned.
class FrameWriter {
 public:
  explicit FrameWriter(Bytes* out) : out_(out) { out_->clear(); }

  template <typename T>
  void Put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "POD only");
    Append(&value, sizeof(T));
  }
  template <typename T>
  void PutArray(const T* data, std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>, "POD only");
    Append(data, n * sizeof(T));
    Align8();
  }
  // Reserves room for n values of T and returns where to write them (valid
  // until the next Put). The caller writes all n; they are not zeroed first
  // (Bytes does not zero what it grows), only the padding after them is.
  template <typename T>
  T* Extend(std::size_t n) {
    const std::size_t at = out_->size();
    out_->resize(at + n * sizeof(T));
    Align8();
    return reinterpret_cast<T*>(out_->data() + at);
  }
  void Align8() { out_->resize((out_->size() + 7) & ~std::size_t{7}, 0); }

 private:
  void Append(const void* data, std::size_t n) {
    const std::size_t at = out_->size();
    out_->resize(at + n);
    if (n) std::memcpy(out_->data() + at, data, n);
  }
  Bytes* out_;
};

// Reads a frame written by FrameWriter. Throws InputError (naming `what`,
// e.g. "pull from rank 5") if the frame is shorter than its counts say.
class FrameReader {
 public:
  FrameReader(const Bytes& in, std::string what) : in_(in), what_(std::move(what)) {}

  template <typename T>
  T Get() {
    T value;
    Need(sizeof(T));
    std::memcpy(&value, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  // Returns a pointer into the frame to n values of T (8-byte aligned).
  template <typename T>
  const T* GetArray(std::size_t n) {
    if (n > (in_.size() - at_) / sizeof(T)) Fail(Concat("array of ", n, " elements runs past the end"));
    const T* p = reinterpret_cast<const T*>(in_.data() + at_);
    at_ += n * sizeof(T);
    at_ = (at_ + 7) & ~std::size_t{7};
    if (at_ > in_.size()) at_ = in_.size();
    return p;
  }
  bool done() const { return at_ >= in_.size(); }

 private:
  void Need(std::size_t n) {
    if (n > in_.size() - at_) Fail(Concat("truncated frame: need ", n, " bytes at offset ", at_));
  }
  [[noreturn]] void Fail(const std::string& why) const {
    throw InputError(Concat("malformed ", what_, " (", in_.size(), " bytes): ", why));
  }
  const Bytes& in_;
  std::string what_;
  std::size_t at_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_COMMON_WIRE_H_
