#include "common/control.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/detail/archive_serializer_map.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/device/back_inserter.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include "common/error.h"

namespace recsys {
namespace {

// boost::archive::binary_iarchive (same format), except that an element
// count or string length larger than the whole message is refused before
// anything is allocated from it. binary_iarchive resizes a vector or string
// to the count it reads, so a corrupt 20-byte message could ask for
// terabytes (found by tests/fuzz/fuzz_control). Every element takes at
// least one byte, so a genuine count never exceeds the message size. Bools
// are checked too.
class BoundedBinaryIArchive
    : public boost::archive::binary_iarchive_impl<BoundedBinaryIArchive, std::istream::char_type,
                                                  std::istream::traits_type> {
  using Base = boost::archive::binary_iarchive_impl<BoundedBinaryIArchive, std::istream::char_type,
                                                    std::istream::traits_type>;

 public:
  BoundedBinaryIArchive(std::istream& in, std::size_t message_bytes)
      : Base(in, boost::archive::no_header), limit_(message_bytes) {}

  // Hooks called by the archive machinery (which befriends only these).
  using Base::load;
  void load(std::string& s) {
    std::size_t length = 0;
    load(length);
    Check(length, "string length");
    s.resize(length);
    if (length > 0) load_binary(&s[0], length);
  }
  // binary_iarchive reads a bool's byte straight into the bool, which is
  // undefined behaviour for any byte other than 0 and 1.
  void load(bool& b) {
    unsigned char byte = 0;
    load_binary(&byte, 1);
    if (byte > 1) throw std::domain_error(Concat("bool byte ", int{byte}, " is neither 0 nor 1"));
    b = byte != 0;
  }

 private:
  friend class boost::archive::detail::interface_iarchive<BoundedBinaryIArchive>;
  friend class boost::archive::basic_binary_iarchive<BoundedBinaryIArchive>;
  friend class boost::archive::load_access;

  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  void load_override(boost::serialization::collection_size_type& count) {
    Base::load_override(count);
    Check(count, "element count");
  }

  void Check(std::size_t n, const char* what) const {
    if (n > limit_) throw std::length_error(Concat(what, " ", n, " exceeds the message size"));
  }

  const std::size_t limit_;
};

}  // namespace
}  // namespace recsys

// Vectors of plain values are read as one array, as binary_iarchive does.
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(recsys::BoundedBinaryIArchive)

// The archive's non-inline members (defined in the .ipp files included above).
namespace boost {
namespace archive {
template class detail::archive_serializer_map<recsys::BoundedBinaryIArchive>;
template class basic_binary_iprimitive<recsys::BoundedBinaryIArchive, std::istream::char_type,
                                       std::istream::traits_type>;
template class basic_binary_iarchive<recsys::BoundedBinaryIArchive>;
template class binary_iarchive_impl<recsys::BoundedBinaryIArchive, std::istream::char_type,
                                    std::istream::traits_type>;
}  // namespace archive
}  // namespace boost

namespace recsys {

template <typename T>
Bytes EncodeControl(const T& message) {
  Bytes out;
  {
    boost::iostreams::back_insert_device<Bytes> sink(out);
    boost::iostreams::stream<boost::iostreams::back_insert_device<Bytes>> stream(sink);
    boost::archive::binary_oarchive archive(stream, boost::archive::no_header);
    archive << message;
  }
  return out;
}

template <typename T>
T DecodeControl(const Bytes& bytes, const std::string& what) {
  T message;
  try {
    boost::iostreams::array_source source(bytes.data(), bytes.size());
    boost::iostreams::stream<boost::iostreams::array_source> stream(source);
    BoundedBinaryIArchive archive(stream, bytes.size());
    archive >> message;
  } catch (const std::exception& e) {
    throw InputError(Concat("malformed ", what, " (", bytes.size(), " bytes): ", e.what()));
  }
  return message;
}

#define RECSYS_CONTROL_MESSAGE(T)                  \
  template Bytes EncodeControl<T>(const T&);       \
  template T DecodeControl<T>(const Bytes&, const std::string&);

RECSYS_CONTROL_MESSAGE(WorkerHello)
RECSYS_CONTROL_MESSAGE(Setup)
RECSYS_CONTROL_MESSAGE(Command)
RECSYS_CONTROL_MESSAGE(EpochReport)
RECSYS_CONTROL_MESSAGE(EvalReport)
RECSYS_CONTROL_MESSAGE(ServerStats)
RECSYS_CONTROL_MESSAGE(CheckpointDone)
RECSYS_CONTROL_MESSAGE(Restored)
RECSYS_CONTROL_MESSAGE(Progress)

#undef RECSYS_CONTROL_MESSAGE

namespace {

// The value of `field` ("VmHWM:") in /proc/self/status in bytes, or 0.
std::uint64_t ProcStatusBytes(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t bytes = 0;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, field, n) == 0) {
      bytes = std::strtoull(line + n, nullptr, 10) * 1024;  // "VmHWM:   1234 kB"
      break;
    }
  }
  std::fclose(f);
  return bytes;
}

}  // namespace

std::uint64_t PeakRssBytes() {
  if (const std::uint64_t bytes = ProcStatusBytes("VmHWM:")) return bytes;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::uint64_t CurrentRssBytes() {
  if (const std::uint64_t bytes = ProcStatusBytes("VmRSS:")) return bytes;
  return PeakRssBytes();
}

}  // namespace recsys

namespace recsys {

double CpuSeconds() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace recsys
