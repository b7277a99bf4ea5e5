// The MPI transport end to end (run by transport_order.sh under mpirun):
// messages of every size around Open MPI's shared-memory eager limit (256
// KiB, set in transport_mpi.cc; below it a send is one copy, above it a
// rendezvous), sent by several ranks under two tags to rank 0, arrive whole,
// byte for byte, and in each sender's order, whether rank 0 receives for any
// source and tag, for one tag at a time or for one source at a time; and a
// message that came while rank 0 slept is found by its next probe. Exits
// non-zero naming the first message that does not.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/transport.h"

namespace recsys {
namespace {

constexpr int kTagA = 101;
constexpr int kTagB = 102;
constexpr int kTagDone = 103;

// The sizes of each sender's messages, in send order.
const std::vector<std::size_t>& Sizes() {
  static const std::size_t p = 256 * 1024;  // the eager limit
  static const std::vector<std::size_t> sizes = {0,         1,         8,      1000, p - 1, p, p + 1, 2 * p - 1, 2 * p,
                                                 2 * p + 5, 3 * p + 7, 1280024, 8,   p,     0, 5 * p + 3};
  return sizes;
}

// Message `seq` of `sender` in `round`: every 8 bytes are a hash of all
// three and of their offset, so bytes out of place, repeated or from another
// message show.
Bytes Pattern(int sender, int round, std::size_t seq, std::size_t size) {
  Bytes b(size);
  const std::uint64_t seed = HashCombine(HashCombine(static_cast<std::uint64_t>(sender), static_cast<std::uint64_t>(round)), seq);
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t word = Mix64(seed ^ (i / 8));
    std::memcpy(b.data() + i, &word, std::min<std::size_t>(8, size - i));
  }
  return b;
}

int TagOf(std::size_t seq) { return seq % 3 == 1 ? kTagB : kTagA; }

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "transport_check: FAIL: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

void Check(const Message& m, int round, std::size_t seq) {
  const std::vector<std::size_t>& sizes = Sizes();
  if (seq >= sizes.size()) Fail("round " + std::to_string(round) + ": an extra message from rank " + std::to_string(m.source));
  const Bytes want = Pattern(m.source, round, seq, sizes[seq]);
  if (m.tag != TagOf(seq)) Fail("round " + std::to_string(round) + ": message " + std::to_string(seq) + " from rank " +
                                std::to_string(m.source) + " has tag " + std::to_string(m.tag));
  if (m.data.size() != want.size() || m.data != want) {
    Fail("round " + std::to_string(round) + ": message " + std::to_string(seq) + " from rank " +
         std::to_string(m.source) + " has " + std::to_string(m.data.size()) + " bytes, expected " +
         std::to_string(want.size()) + (m.data.size() == want.size() ? " (contents differ)" : ""));
  }
}

// A message that does not come within a minute is lost: fail instead of
// waiting for ctest's timeout.
Message RecvOrFail(Transport& t, int source, int tag) {
  Message m;
  if (!t.RecvWhile(source, tag, &m, 60.0)) {
    Fail("rank " + std::to_string(t.rank()) + " waited 60 s for a message (source " + std::to_string(source) +
         ", tag " + std::to_string(tag) + ")");
  }
  return m;
}

// Shared areas (one node; skipped with RECSYS_SHARED_AREA_MB=0): each sender
// writes a pattern into rank 0's area and says where; until rank 0 has read
// it (AreaRead) the sender's SendsInFlight stays true, and afterwards turns
// false.
void CheckAreas(Transport& t, int senders) {
  if (SharedAreaBytesFromEnv() == 0) return;  // areas turned off
  constexpr std::size_t kBlock = 512 * 1024;  // above the eager limit: waited for until read
  if (t.rank() == 0) {
    const SharedArea area = t.OwnArea();
    if (area.size < kBlock * static_cast<std::size_t>(senders + 1)) Fail("rank 0 has no shared area");
    for (int i = 0; i < senders; ++i) {
      const Message note = RecvOrFail(t, Transport::kAnySource, kTagA);
      const std::size_t at = kBlock * static_cast<std::size_t>(note.source);
      for (std::size_t j = 0; j < kBlock; ++j) {
        if (area.data[at + j] != static_cast<char>(note.source * 31 + j)) {
          Fail("byte " + std::to_string(j) + " that rank " + std::to_string(note.source) + " wrote into the area");
        }
      }
      t.AreaRead(note.source);
    }
    return;
  }
  if (!t.SharesNodeWith(0)) Fail("rank 0 is not seen on this node");
  const SharedArea area = t.PeerArea(0);
  if (area.size < kBlock * static_cast<std::size_t>(senders + 1)) Fail("cannot map rank 0's shared area");
  for (std::size_t j = 0; j < kBlock; ++j) area.data[kBlock * static_cast<std::size_t>(t.rank()) + j] = static_cast<char>(t.rank() * 31 + j);
  t.PlacedInto(0, kBlock);
  if (!t.SendsInFlight()) Fail("a large placed block is not in flight before it is read");
  t.Send(0, kTagA, Bytes(8));
  const auto start = std::chrono::steady_clock::now();
  Backoff backoff;
  while (t.SendsInFlight()) {
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) Fail("the placed block was never marked read");
    backoff.Wait(/*may_sleep=*/true);
  }
}

// A message that came while its receiver slept is found by the receiver's
// first probe after the sleep. (Open MPI's MPI_Improbe matches first and
// only then, finding nothing, runs the progress engine that takes the
// message off the shared-memory queue: probed once, it reports the message
// only at the next probe, and a waiting rank slept once more.) Each sender
// sends one message, then flags in rank 0's area (block 0, unused above)
// that it has gone; rank 0 waits for the flags without calling MPI, then
// must receive every message with one TryRecv each. Skipped without areas.
// (This is Open MPI's ob1 over shared memory, the project's transport: one
// progress call takes every queued message, so a second probe finds each.
// It fails without the second probe, unless a message happened to come
// while rank 0 was still in the barrier's last MPI calls.)
void CheckSeenAfterSleep(Transport& t, int senders) {
  if (SharedAreaBytesFromEnv() == 0) return;
  constexpr int kTagSlept = 104;
  const SharedArea area = t.rank() == 0 ? t.OwnArea() : t.PeerArea(0);
  const auto flag = [&](int rank) { return reinterpret_cast<std::uint64_t*>(area.data + 64 * rank); };
  if (t.rank() == 0) {
    for (int s = 1; s <= senders; ++s) __atomic_store_n(flag(s), 0, __ATOMIC_RELAXED);
  }
  t.Barrier();
  if (t.rank() != 0) {
    t.Send(0, kTagSlept, Bytes(8, static_cast<char>(t.rank())));
    t.FlushSends();  // an eager message: in rank 0's queue once sent
    __atomic_store_n(flag(t.rank()), 1, __ATOMIC_RELEASE);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  for (int s = 1; s <= senders; ++s) {
    while (__atomic_load_n(flag(s), __ATOMIC_ACQUIRE) == 0) {
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) Fail("rank " + std::to_string(s) + " never sent");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  Message m;
  for (int i = 0; i < senders; ++i) {
    if (!t.TryRecv(Transport::kAnySource, kTagSlept, &m)) {
      Fail("message " + std::to_string(i + 1) + " of " + std::to_string(senders) +
           " that came while rank 0 slept was not found by its probe");
    }
  }
}

int Main(int argc, char** argv) {
  auto transport = MakeMpiTransport(&argc, &argv);
  Transport& t = *transport;
  const int senders = t.size() - 1;
  if (senders < 2) Fail("needs at least 3 ranks (2 senders)");
  const std::size_t count = Sizes().size();
  // Round 0: rank 0 receives for any source and any tag. Round 1: all of
  // tag B first, then tag A, each for any source. Round 2: one sender at a
  // time, any tag.
  for (int round = 0; round < 3; ++round) {
    if (t.rank() != 0) {
      for (std::size_t seq = 0; seq < count; ++seq) t.Send(0, TagOf(seq), Pattern(t.rank(), round, seq, Sizes()[seq]));
      t.FlushSends();
      RecvOrFail(t, 0, kTagDone);  // the next round starts when rank 0 has all of this one
      continue;
    }
    std::vector<std::size_t> next_a(static_cast<std::size_t>(senders) + 1, 0), next_b(next_a);
    // The next message of `source` under `tag` in its send order.
    const auto expect = [&](const Message& m) {
      auto& next = m.tag == kTagB ? next_b : next_a;
      std::size_t& seq = next[static_cast<std::size_t>(m.source)];
      while (seq < count && TagOf(seq) != m.tag) ++seq;
      Check(m, round, seq);  // fails for seq == count: an extra message
      ++seq;
    };
    std::size_t received = 0;
    std::vector<std::size_t> any_next(static_cast<std::size_t>(senders) + 1, 0);
    if (round == 0) {
      while (received < count * static_cast<std::size_t>(senders)) {
        const Message m = RecvOrFail(t, Transport::kAnySource, Transport::kAnyTag);
        // For any tag, a sender's messages come in exactly their send order.
        std::size_t& seq = any_next[static_cast<std::size_t>(m.source)];
        Check(m, round, seq++);
        ++received;
      }
    } else if (round == 1) {
      for (int tag : {kTagB, kTagA}) {
        std::size_t of_tag = 0;
        for (std::size_t seq = 0; seq < count; ++seq) of_tag += TagOf(seq) == tag ? 1 : 0;
        for (std::size_t i = 0; i < of_tag * static_cast<std::size_t>(senders); ++i) expect(RecvOrFail(t, Transport::kAnySource, tag));
      }
    } else {
      for (int s = senders; s >= 1; --s) {
        for (std::size_t seq = 0; seq < count; ++seq) Check(RecvOrFail(t, s, Transport::kAnyTag), round, seq);
      }
    }
    for (int s = 1; s <= senders; ++s) t.Send(s, kTagDone, Bytes());
  }
  t.FlushSends();
  // No test message may be left: every sender had sent its last round
  // before rank 0 released it. (Barrier messages may be, so only the test's
  // tags are checked.)
  Message extra;
  for (int tag : {kTagA, kTagB}) {
    if (t.rank() == 0 && t.TryRecv(Transport::kAnySource, tag, &extra)) {
      Fail("an extra message of " + std::to_string(extra.data.size()) + " bytes from rank " +
           std::to_string(extra.source));
    }
  }
  CheckAreas(t, senders);
  CheckSeenAfterSleep(t, senders);
  if (t.rank() == 0) std::printf("transport_check: ok (%d senders, %zu messages each, 3 rounds)\n", senders, count);
  t.Barrier();
  FinalizeMpi();
  return 0;
}

}  // namespace
}  // namespace recsys

int main(int argc, char** argv) {
  try {
    return recsys::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport_check: %s\n", e.what());
    return 1;
  }
}
