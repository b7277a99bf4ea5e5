// Flat frames of the hot path: pull and push carry keys and floats as raw
// arrays, one message per server per batch, no serialization library. All
// arrays start at 8-byte aligned offsets so the receiver reads them in place.
//
//   Pull       u64 request, u32 sections, u32 0, u64 offset, u64 bytes
//              (ReplyPlace), then per section: u32 table, u32 n, Key keys[n]
//              Or, when the worker wrote the sections into its own shared
//              area: u64 request, u32 sections, u32 kRequestPlaced, the
//              ReplyPlace, then u64 offset, u64 bytes (a ReplyPlace: where
//              the sections are); the server reads them there, and the
//              worker frees the place at the reply
//   PullReply  u64 request, u32 sections, u32 0, then per section:
//              u32 table, u32 n, Real rows[n * width], padding to 8
//              Or, when the pull offered a place (bytes > 0) and the server
//              wrote the reply there: u64 request, u32 sections,
//              u32 kReplyPlaced, u64 bytes written at the place.
//   Push       u64 request, u32 sections, u32 step, then per section:
//              u32 table, u32 n, Key keys[n], Real grads[n * width], padding to 8
//   PushPlaced u64 offset, u64 bytes (ReplyPlace): a Push frame the worker
//              wrote at that place of its own shared area; the server reads
//              it there, and the worker frees the place at the ack
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
  kTagPushPlaced = 6,  // a push whose frame is in the sender's shared area
  kTagControl = 10,  // Boost.Serialization control messages (control.h)
};

struct FrameHeader {
  std::uint64_t request = 0;
  std::uint32_t sections = 0;
  // Pushes: the job's global step they belong to (Adam's bias correction,
  // ps/optimizer.h), saturated at 2^32 - 1; 0: not known. Pull replies:
  // kReplyPlaced or 0. Pulls: kRequestPlaced or 0. Other frames: 0.
  std::uint32_t step = 0;
};
static_assert(sizeof(FrameHeader) == 16, "frame header layout");

// A pull reply's frame is at the place its pull offered, not in the message.
constexpr std::uint32_t kReplyPlaced = 1;
// A pull's sections (its keys) are in the worker's shared area, at the place
// that follows the reply's place in the message. A pull's flags are 0 or
// this; it has at most one section per table.
constexpr std::uint32_t kRequestPlaced = 2;  // not kReplyPlaced: a mix-up shows

// Where a pull's reply may be written instead of sent: `bytes` bytes at
// `offset` in the puller's shared area (Transport::OwnArea). bytes == 0:
// reply by message. Also where a placed push's frame is (kTagPushPlaced), and
// a placed pull's sections (kRequestPlaced).
struct ReplyPlace {
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  // Whether the place lies inside an area of `size` bytes and starts 8-byte
  // aligned (as frames must). The fields come off the wire: no overflow.
  bool InsideOf(std::size_t size) const { return offset <= size && bytes <= size - offset && offset % 8 == 0; }
};
static_assert(sizeof(ReplyPlace) == 16, "reply place layout");

struct SectionHeader {
  std::uint32_t table = 0;
  std::uint32_t n = 0;
};
static_assert(sizeof(SectionHeader) == 8, "section header layout");

// Bytes of one section of a pull reply: its header and n rows of `width`
// floats, padded to 8. The worker sizes the place it offers and the server
// its reply with this; they must agree exactly.
inline std::size_t PullReplySectionBytes(std::size_t n, std::size_t width) {
  return sizeof(SectionHeader) + ((n * width * sizeof(Real) + 7) & ~std::size_t{7});
}

// Appends PODs and arrays to a byte buffer, keeping arrays 8-byte aligned:
// a Bytes that grows, or fixed memory of a known capacity (a place in a
// shared area), where writing past the capacity is an InternalError.
class FrameWriter {
 public:
  explicit FrameWriter(Bytes* out) : out_(out) { out_->clear(); }
  FrameWriter(char* data, std::size_t capacity) : fixed_(data), capacity_(capacity) {}

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
    T* at = reinterpret_cast<T*>(Grow(n * sizeof(T)));
    Align8();
    return at;
  }
  void Align8() {
    const std::size_t pad = ((size() + 7) & ~std::size_t{7}) - size();
    if (pad) std::memset(Grow(pad), 0, pad);
  }
  // Bytes written so far.
  std::size_t size() const { return out_ != nullptr ? out_->size() : size_; }

 private:
  void Append(const void* data, std::size_t n) {
    char* at = Grow(n);
    if (n) std::memcpy(at, data, n);
  }
  // Room for n more bytes, not written yet.
  char* Grow(std::size_t n) {
    if (out_ != nullptr) {
      const std::size_t at = out_->size();
      out_->resize(at + n);
      return out_->data() + at;
    }
    RECSYS_CHECK(n <= capacity_ - size_, "frame of ", size_ + n, " bytes in a place of ", capacity_);
    char* at = fixed_ + size_;
    size_ += n;
    return at;
  }
  Bytes* out_ = nullptr;
  char* fixed_ = nullptr;  // when out_ is null
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

// Reads a frame written by FrameWriter. Throws InputError (naming `what`,
// e.g. "pull from rank 5") if the frame is shorter than its counts say.
class FrameReader {
 public:
  FrameReader(const Bytes& in, std::string what) : FrameReader(in.data(), in.size(), std::move(what)) {}
  FrameReader(const char* data, std::size_t size, std::string what) : data_(data), size_(size), what_(std::move(what)) {}
  // For the messages of every batch: `what` from rank `source`, put into
  // words only if the frame is malformed (not a string per message).
  // `what` is a string literal (kept as a pointer).
  template <std::size_t N>
  FrameReader(const Bytes& in, const char (&what)[N], int source) : FrameReader(in.data(), in.size(), what, source) {}
  template <std::size_t N>
  FrameReader(const char* data, std::size_t size, const char (&what)[N], int source)
      : data_(data), size_(size), what_static_(what), source_(source) {}

  template <typename T>
  T Get() {
    T value;
    Need(sizeof(T));
    std::memcpy(&value, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  // Returns a pointer into the frame to n values of T (8-byte aligned).
  template <typename T>
  const T* GetArray(std::size_t n) {
    if (n > (size_ - at_) / sizeof(T)) Fail(Concat("array of ", n, " elements runs past the end"));
    const T* p = reinterpret_cast<const T*>(data_ + at_);
    at_ += n * sizeof(T);
    at_ = (at_ + 7) & ~std::size_t{7};
    if (at_ > size_) at_ = size_;
    return p;
  }
  bool done() const { return at_ >= size_; }

 private:
  void Need(std::size_t n) {
    if (n > size_ - at_) Fail(Concat("truncated frame: need ", n, " bytes at offset ", at_));
  }
  [[noreturn]] void Fail(const std::string& why) const {
    const std::string what = what_static_ != nullptr ? Concat(what_static_, " from rank ", source_) : what_;
    throw InputError(Concat("malformed ", what, " (", size_, " bytes): ", why));
  }
  const char* data_;
  std::size_t size_;
  std::string what_;
  const char* what_static_ = nullptr;  // with source_, instead of what_
  int source_ = -1;
  std::size_t at_ = 0;
};

}  // namespace recsys

#endif  // RECSYS_COMMON_WIRE_H_
