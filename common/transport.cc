#include "common/transport.h"

#include <chrono>
#include <thread>

#include "common/error.h"

namespace recsys {

double Backoff::Wait() {
  // A few yields first: a reply is often only microseconds away, and a yield
  // lets a co-scheduled rank run without paying a sleep's latency.
  constexpr int kYields = 16;
  if (polls_ < kYields) {
    ++polls_;
    std::this_thread::yield();
    return 0.0;
  }
  const int doublings = polls_ - kYields < 6 ? polls_ - kYields : 6;  // 20us .. 1.28ms
  ++polls_;
  const auto sleep = std::chrono::microseconds(20 << doublings);
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
