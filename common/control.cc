#include "common/control.h"

#include <sys/resource.h>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/device/back_inserter.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include "common/error.h"

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
    boost::archive::binary_iarchive archive(stream, boost::archive::no_header);
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

std::uint64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
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
