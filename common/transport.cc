#include "common/transport.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/error.h"

namespace recsys {

bool Transport::PlaceInArea(std::size_t bytes, std::size_t* offset) {
  if (!area_sized_) {
    area_blocks_ = AreaAllocator(OwnArea().size);
    area_sized_ = true;
  }
  return bytes > 0 && area_blocks_.Allocate(bytes, offset);
}

void Transport::ReleaseInArea(std::size_t offset) { area_blocks_.Free(offset); }

std::size_t SharedAreaBytesFromEnv() {
  const char* env = std::getenv("RECSYS_SHARED_AREA_MB");
  if (env == nullptr || *env == '\0') return kDefaultSharedAreaBytes;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(env, &end, 10);
  if (*end != '\0' || env[0] == '-' || mb > (std::uint64_t{1} << 20)) {
    throw InputError(Concat("RECSYS_SHARED_AREA_MB=", env, ": expected a whole number of MiB from 0 to 1048576"));
  }
  return static_cast<std::size_t>(mb) << 20;
}

namespace {
// The longest sleep between polls, in microseconds. RECSYS_MAX_SLEEP_US
// overrides it (for measurements).
int MaxSleepMicros() {
  static const int value = [] {
    const char* env = std::getenv("RECSYS_MAX_SLEEP_US");
    return env ? std::max(1, std::atoi(env)) : 1280;
  }();
  return value;
}
}  // namespace

namespace {
WaitPolicy& Policy() {
  static WaitPolicy policy;
  return policy;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

void SetWaitPolicy(const WaitPolicy& policy) { Policy() = policy; }
const WaitPolicy& GetWaitPolicy() { return Policy(); }

double Backoff::Wait(bool may_sleep) {
  const WaitPolicy& policy = Policy();
  const auto now = std::chrono::steady_clock::now();
  if (!started_) {
    started_ = true;
    since_ = now;
    sleeps_ = 0;
  }
  const auto waited = now - since_;
  if (waited < policy.pause_spin) {
    // ~0.15 us on this VM's CPU; PAUSE costs 10-140 cycles across CPUs.
    for (int i = 0; i < 8; ++i) CpuRelax();
    return 0.0;
  }
  if (waited < policy.spin || !may_sleep) {
    std::this_thread::yield();
    return 0.0;
  }
  const int doublings = sleeps_;
  if (sleeps_ < 10) ++sleeps_;
  const auto sleep = std::chrono::microseconds(std::min(20 << doublings, MaxSleepMicros()));
  std::this_thread::sleep_for(sleep);
  return std::chrono::duration<double>(sleep).count();
}

Message Transport::Recv(int source, int tag) {
  Message out;
  const bool got = RecvWhile(source, tag, &out, -1.0);
  RECSYS_CHECK(got);
  return out;
}

bool Transport::RecvWhile(int source, int tag, Message* out, double timeout_seconds) {
  Backoff backoff;
  const auto start = std::chrono::steady_clock::now();
  while (!TryRecv(source, tag, out)) {
    const double slept = backoff.Wait();
    if (slept > 0) {
      ++idle_sleeps_;
      idle_seconds_ += slept;
      if (timeout_seconds >= 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_seconds) {
        return false;
      }
    }
  }
  return true;
}

void Transport::Barrier() {
  // Gather at rank 0, then release: 2(n-1) tiny messages, fine for the
  // handful of barriers a run needs.
  if (rank() == 0) {
    for (int r = 1; r < size(); ++r) Recv(r, kTagBarrier);
    for (int r = 1; r < size(); ++r) Send(r, kTagBarrier, Bytes());
    FlushSends();  // complete before the caller may finalize MPI
  } else {
    Send(0, kTagBarrier, Bytes());
    Recv(0, kTagBarrier);
  }
}

void Transport::Broadcast(Bytes* data) {
  if (rank() == 0) {
    for (int r = 1; r < size(); ++r) Send(r, kTagBroadcast, *data);
  } else {
    *data = Recv(0, kTagBroadcast).data;
  }
}

}  // namespace recsys
