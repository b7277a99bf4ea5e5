// Tests of the in-process transport (transport.h, LocalTransport): ordering,
// matching, collectives, job-wide failure and backoff; and of the control
// messages (control.h) that travel over it.
//
// Nothing here may hang on a failure: a rank that waits for something that
// might not come uses RecvWhile with a generous timeout and throws, and the
// failure of one rank releases the others through Abort.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/control.h"
#include "common/error.h"
#include "common/keys.h"
#include "common/transport.h"

namespace recsys {
namespace {

// Generous: only reached when something is broken.
constexpr double kPatienceSeconds = 20.0;

Bytes BytesOf(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string StringOf(const Bytes& b) { return std::string(b.begin(), b.end()); }

Bytes Encode32(std::uint32_t v) {
  Bytes b(sizeof(v));
  std::memcpy(b.data(), &v, sizeof(v));
  return b;
}
std::uint32_t Decode32(const Bytes& b) {
  std::uint32_t v = 0;
  if (b.size() != sizeof(v)) throw std::runtime_error("bad payload size");
  std::memcpy(&v, b.data(), sizeof(v));
  return v;
}

// Receives or throws: a test that waits forever would hang the suite.
Message MustRecv(Transport& t, int source, int tag) {
  Message m;
  if (!t.RecvWhile(source, tag, &m, kPatienceSeconds)) {
    throw std::runtime_error("rank " + std::to_string(t.rank()) + ": nothing from " + std::to_string(source) +
                             " with tag " + std::to_string(tag));
  }
  return m;
}

TEST(TransportTest, RanksAndSizes) {
  std::vector<int> seen(4, -1);
  RunLocalRanks(4, [&](int rank, Transport& t) {
    EXPECT_EQ(t.rank(), rank);
    EXPECT_EQ(t.size(), 4);
    seen[static_cast<std::size_t>(rank)] = rank;
  });
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
}

TEST(TransportTest, PerSenderOrderUnderManyMessages) {
  constexpr std::uint32_t kPerSender = 3000;
  std::map<int, std::uint32_t> received;
  bool in_order = true;
  RunLocalRanks(4, [&](int rank, Transport& t) {
    if (rank != 0) {
      // Two tags interleaved: order holds per sender, whatever the tag.
      for (std::uint32_t i = 0; i < kPerSender; ++i) t.Send(0, 20 + static_cast<int>(i % 2), Encode32(i));
      return;
    }
    std::map<int, std::uint32_t> next;
    for (std::uint32_t n = 0; n < 3 * kPerSender; ++n) {
      const Message m = MustRecv(t, Transport::kAnySource, Transport::kAnyTag);
      const std::uint32_t i = Decode32(m.data);
      if (i != next[m.source] || m.tag != 20 + static_cast<int>(i % 2)) in_order = false;
      next[m.source] = i + 1;
    }
    received = next;
    Message extra;
    EXPECT_FALSE(t.TryRecv(Transport::kAnySource, Transport::kAnyTag, &extra));
  });
  EXPECT_TRUE(in_order);
  EXPECT_EQ(received, (std::map<int, std::uint32_t>{{1, kPerSender}, {2, kPerSender}, {3, kPerSender}}));
}

TEST(TransportTest, TagAndSourceFiltering) {
  std::vector<std::string> got;
  RunLocalRanks(4, [&](int rank, Transport& t) {
    if (rank == 1) {
      t.Send(0, 5, BytesOf("five-a"));
      t.Send(0, 7, BytesOf("seven"));
      t.Send(0, 5, BytesOf("five-b"));
      t.Send(2, 9, BytesOf("go"));  // lets rank 2 send only after these
    } else if (rank == 2) {
      MustRecv(t, 1, 9);
      t.Send(0, 5, BytesOf("from-2"));
      t.Send(3, 9, BytesOf("go"));
    } else if (rank == 3) {
      MustRecv(t, 2, 9);
      t.Send(0, 8, BytesOf("from-3"));
    } else {
      // A later tag first: the earlier tag-5 messages wait.
      const Message seven = MustRecv(t, 1, 7);
      got.push_back(StringOf(seven.data));
      EXPECT_EQ(seven.source, 1);
      EXPECT_EQ(seven.tag, 7);
      const Message from3 = MustRecv(t, 3, Transport::kAnyTag);  // arrives last of all
      got.push_back(StringOf(from3.data));
      EXPECT_EQ(from3.tag, 8);
      // Source 2, tag 5 skips rank 1's earlier tag-5 messages.
      got.push_back(StringOf(MustRecv(t, 2, 5).data));
      got.push_back(StringOf(MustRecv(t, Transport::kAnySource, 5).data));
      got.push_back(StringOf(MustRecv(t, 1, Transport::kAnyTag).data));
      Message none;
      EXPECT_FALSE(t.TryRecv(Transport::kAnySource, Transport::kAnyTag, &none));
      EXPECT_FALSE(t.TryRecv(1, 5, &none));
    }
  });
  EXPECT_EQ(got, (std::vector<std::string>{"seven", "from-3", "from-2", "five-a", "five-b"}));
}

TEST(TransportTest, AnySourceHearsEveryone) {
  std::multiset<int> sources;
  RunLocalRanks(4, [&](int rank, Transport& t) {
    if (rank != 0) {
      t.Send(0, 3, Encode32(static_cast<std::uint32_t>(rank * 10)));
      return;
    }
    for (int i = 0; i < 3; ++i) {
      const Message m = MustRecv(t, Transport::kAnySource, 3);
      EXPECT_EQ(Decode32(m.data), static_cast<std::uint32_t>(m.source * 10));
      sources.insert(m.source);
    }
  });
  EXPECT_EQ(sources, (std::multiset<int>{1, 2, 3}));
}

TEST(TransportTest, SendToItselfAndEmptyMessages) {
  RunLocalRanks(3, [&](int rank, Transport& t) {
    if (rank != 2) return;
    t.Send(2, 4, Bytes());
    const Message m = MustRecv(t, 2, 4);
    EXPECT_TRUE(m.data.empty());
    EXPECT_EQ(m.source, 2);
    EXPECT_THROW(t.Send(3, 4, Bytes()), InternalError);
    EXPECT_THROW(t.Send(-1, 4, Bytes()), InternalError);
  });
}

TEST(TransportTest, BarrierHoldsEveryoneUntilAllArrive) {
  constexpr int kRanks = 4;
  constexpr int kRounds = 20;
  std::atomic<int> arrived{0};
  std::atomic<int> early{0};
  RunLocalRanks(kRanks, [&](int rank, Transport& t) {
    for (int round = 1; round <= kRounds; ++round) {
      // Stagger the ranks so a broken barrier would let some through early.
      for (int i = 0; i < rank * 50; ++i) std::this_thread::yield();
      ++arrived;
      t.Barrier();
      if (arrived.load() < round * kRanks) ++early;
      t.Barrier();  // nobody starts the next round before all have checked
    }
  });
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(arrived.load(), kRanks * kRounds);
}

TEST(TransportTest, BroadcastCopiesRootDataInOrder) {
  std::vector<std::vector<std::string>> got(4);
  RunLocalRanks(4, [&](int rank, Transport& t) {
    for (const std::string text : {"first", "", "third, longer than the others"}) {
      Bytes data = rank == 0 ? BytesOf(text) : BytesOf("stale");
      t.Broadcast(&data);
      got[static_cast<std::size_t>(rank)].push_back(StringOf(data));
    }
  });
  for (const auto& g : got) EXPECT_EQ(g, (std::vector<std::string>{"first", "", "third, longer than the others"}));
}

class Boom : public std::runtime_error {
 public:
  Boom() : std::runtime_error("boom on rank 2") {}
};

TEST(TransportTest, AFailingRankReleasesTheOthersAndItsErrorComesOut) {
  std::atomic<int> released{0};
  std::atomic<int> codes{0};
  bool got_boom = false;
  try {
    RunLocalRanks(4, [&](int rank, Transport& t) {
      if (rank == 2) {
        // Wait until every other rank is about to block, then fail.
        for (int i = 0; i < 3; ++i) MustRecv(t, Transport::kAnySource, 1);
        throw Boom();
      }
      t.Send(2, 1, Bytes());
      try {
        Message never;
        // Nobody ever sends tag 99: only the abort can end this wait.
        if (!t.RecvWhile(Transport::kAnySource, 99, &never, kPatienceSeconds)) {
          throw std::runtime_error("rank " + std::to_string(rank) + " was not released by the failure");
        }
      } catch (const TransportAborted& e) {
        ++released;
        codes += e.code();
        throw;
      }
    });
  } catch (const Boom& e) {
    got_boom = true;
    EXPECT_STREQ(e.what(), "boom on rank 2");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "RunLocalRanks threw " << e.what() << " instead of the failing rank's error";
  }
  EXPECT_TRUE(got_boom);
  EXPECT_EQ(released.load(), 3);
  EXPECT_EQ(codes.load(), 3);  // each saw code 1
}

TEST(TransportTest, ExplicitAbortComesOutAsTransportAborted) {
  std::atomic<int> released{0};
  try {
    RunLocalRanks(3, [&](int rank, Transport& t) {
      if (rank == 0) {
        MustRecv(t, 1, 1);
        MustRecv(t, 2, 1);
        t.Abort(7);
      }
      t.Send(0, 1, Bytes());
      try {
        Message never;
        if (!t.RecvWhile(Transport::kAnySource, 99, &never, kPatienceSeconds)) {
          throw std::runtime_error("not released by Abort");
        }
      } catch (const TransportAborted&) {
        ++released;
        throw;
      }
    });
    ADD_FAILURE() << "RunLocalRanks returned normally";
  } catch (const TransportAborted& e) {
    EXPECT_EQ(e.code(), 7);
  }
  EXPECT_EQ(released.load(), 2);
}

TEST(TransportTest, RecvWhileTimesOut) {
  RunLocalRanks(3, [&](int rank, Transport& t) {
    if (rank != 1) return;
    Message m;
    EXPECT_FALSE(t.RecvWhile(Transport::kAnySource, 42, &m, 0.0));
    EXPECT_GT(t.idle_sleeps(), 0u);  // it slept rather than spun
    EXPECT_GT(t.idle_seconds(), 0.0);
  });
}

// Sets a wait policy for one test and restores the process's afterwards.
class ScopedWaitPolicy {
 public:
  ScopedWaitPolicy(std::chrono::microseconds spin, std::chrono::microseconds pause_spin) : saved_(GetWaitPolicy()) {
    WaitPolicy policy;
    policy.spin = spin;
    policy.pause_spin = pause_spin;
    SetWaitPolicy(policy);
  }
  ~ScopedWaitPolicy() { SetWaitPolicy(saved_); }

 private:
  WaitPolicy saved_;
};

TEST(TransportTest, BackoffPollsForItsSpinTimeThenSleepsLonger) {
  const ScopedWaitPolicy scoped(std::chrono::microseconds(3000), std::chrono::microseconds(1000));
  using Clock = std::chrono::steady_clock;
  Backoff backoff;
  const auto start = Clock::now();
  int polls = 0;
  while (backoff.Wait() == 0.0) {
    ++polls;
    ASSERT_LT(Clock::now() - start, std::chrono::seconds(10)) << "never sleeps";
  }
  // It polled (paused, then yielded) for at least the spin time before its first sleep.
  EXPECT_GE(Clock::now() - start, GetWaitPolicy().spin);
  EXPECT_GE(polls, 2);
  std::vector<double> sleeps;
  for (int i = 0; i < 14; ++i) sleeps.push_back(backoff.Wait());
  for (std::size_t i = 1; i < sleeps.size(); ++i) {
    EXPECT_GT(sleeps[i], 0.0);
    EXPECT_GE(sleeps[i], sleeps[i - 1]) << "sleeps shrink at " << i;
  }
  EXPECT_GT(sleeps.back(), sleeps.front());  // grows
  EXPECT_LE(sleeps.back(), 0.05);            // but stays short (a ~1 ms cap by default)
  EXPECT_EQ(sleeps[sleeps.size() - 1], sleeps[sleeps.size() - 2]) << "no cap";
  backoff.Reset();
  EXPECT_EQ(backoff.Wait(), 0.0);  // after progress, polls again
}

TEST(TransportTest, BackoffThatMayNotSleepKeepsPolling) {
  const ScopedWaitPolicy scoped(std::chrono::microseconds(0), std::chrono::microseconds(0));
  Backoff backoff;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(backoff.Wait(/*may_sleep=*/false), 0.0);
  EXPECT_GT(backoff.Wait(), 0.0);  // and sleeps once it may
}

TEST(TransportTest, BackoffWithoutSpinSleepsAtOnce) {
  const ScopedWaitPolicy scoped(std::chrono::microseconds(0), std::chrono::microseconds(0));
  Backoff backoff;
  EXPECT_GT(backoff.Wait(), 0.0);
}

// ---------------------------------------------------------------------------
// Control messages

// gtest's Test has a private Setup() (a trap for SetUp), which hides our
// Setup inside test bodies.
using SetupMessage = recsys::Setup;

TEST(ControlTest, SetupRoundTrip) {
  SetupMessage setup;
  setup.items = {1, 5, 1682, MakeKey(kFieldItem, 1), ~std::uint64_t{0}};
  setup.slot_field = {kFieldUser, kFieldItem, kFieldAge, kFieldGenre};
  TableSpec emb;
  emb.id = 0;
  emb.name = "emb";
  emb.width = 33;
  emb.init = InitKind::kNormal;
  emb.init_scale = 0.01f;
  TableSpec w0;
  w0.id = 1;
  w0.name = "w0 (dense)";
  w0.width = 4;
  w0.init = InitKind::kUniform;
  w0.init_scale = 0.5f;
  w0.dense_size = 10;
  setup.tables = {emb, w0};

  const SetupMessage back = DecodeControl<SetupMessage>(EncodeControl(setup), "setup");
  EXPECT_EQ(back.items, setup.items);
  EXPECT_EQ(back.slot_field, setup.slot_field);
  ASSERT_EQ(back.tables.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.tables[i].id, setup.tables[i].id);
    EXPECT_EQ(back.tables[i].name, setup.tables[i].name);
    EXPECT_EQ(back.tables[i].width, setup.tables[i].width);
    EXPECT_EQ(back.tables[i].init, setup.tables[i].init);
    EXPECT_EQ(back.tables[i].init_scale, setup.tables[i].init_scale);
    EXPECT_EQ(back.tables[i].dense_size, setup.tables[i].dense_size);
  }
  EXPECT_EQ(back.tables[1].dense_rows(), 3);

  const SetupMessage empty = DecodeControl<SetupMessage>(EncodeControl(SetupMessage()), "setup");
  EXPECT_TRUE(empty.items.empty());
  EXPECT_TRUE(empty.tables.empty());
}

TEST(ControlTest, CommandRoundTrip) {
  Command c;
  c.kind = Command::kTrainEpoch;
  c.epoch = 17;
  c.steps = std::int64_t{1} << 40;
  const Command back = DecodeControl<Command>(EncodeControl(c), "command");
  EXPECT_EQ(back.kind, Command::kTrainEpoch);
  EXPECT_EQ(back.epoch, 17);
  EXPECT_EQ(back.steps, std::int64_t{1} << 40);
}

TEST(ControlTest, EpochReportRoundTrip) {
  EpochReport r;
  r.loss_sum = 1234.5678;
  r.examples = 11000;
  r.batches = 43;
  r.seconds = 0.25;
  r.sample_seconds = 0.01;
  r.pull_wait_seconds = 0.02;
  r.compute_seconds = 0.03;
  r.push_seconds = 0.04;
  r.pulled_bytes = std::uint64_t{1} << 35;
  r.pushed_bytes = 99;
  const EpochReport back = DecodeControl<EpochReport>(EncodeControl(r), "epoch report");
  EXPECT_EQ(back.loss_sum, r.loss_sum);
  EXPECT_EQ(back.examples, r.examples);
  EXPECT_EQ(back.batches, r.batches);
  EXPECT_EQ(back.seconds, r.seconds);
  EXPECT_EQ(back.sample_seconds, r.sample_seconds);
  EXPECT_EQ(back.pull_wait_seconds, r.pull_wait_seconds);
  EXPECT_EQ(back.compute_seconds, r.compute_seconds);
  EXPECT_EQ(back.push_seconds, r.push_seconds);
  EXPECT_EQ(back.pulled_bytes, r.pulled_bytes);
  EXPECT_EQ(back.pushed_bytes, r.pushed_bytes);
}

TEST(ControlTest, EvalReportRoundTrip) {
  EvalReport r;
  r.sums = RankingSums({5, 10, 20});
  for (int rank : {0, 3, 7, 15, 50}) r.sums.Add(rank);
  r.seconds = 1.5;
  const EvalReport back = DecodeControl<EvalReport>(EncodeControl(r), "eval report");
  EXPECT_EQ(back.sums.ks, (std::vector<int>{5, 10, 20}));
  EXPECT_EQ(back.sums.hits, r.sums.hits);
  EXPECT_EQ(back.sums.ndcg, r.sums.ndcg);  // bit-exact: binary archive
  EXPECT_EQ(back.sums.users, 5);
  EXPECT_EQ(back.seconds, 1.5);
}

TEST(ControlTest, HelloAndServerStatsRoundTrip) {
  WorkerHello h;
  h.items = {3, 4, 9};
  h.user_slot_fields = {kFieldAge};
  h.item_slot_fields = {kFieldGenre, kFieldGenre};
  h.users = 10;
  h.users_without_test = 1;
  h.train_positives = 77;
  const WorkerHello hb = DecodeControl<WorkerHello>(EncodeControl(h), "hello");
  EXPECT_EQ(hb.items, h.items);
  EXPECT_EQ(hb.user_slot_fields, h.user_slot_fields);
  EXPECT_EQ(hb.item_slot_fields, h.item_slot_fields);
  EXPECT_EQ(hb.users, 10u);
  EXPECT_EQ(hb.users_without_test, 1u);
  EXPECT_EQ(hb.train_positives, 77u);

  ServerStats s;
  s.rank = 3;
  s.keys = 1000;
  s.push_bytes = 12345;
  const ServerStats sb = DecodeControl<ServerStats>(EncodeControl(s), "stats");
  EXPECT_EQ(sb.rank, 3);
  EXPECT_EQ(sb.keys, 1000u);
  EXPECT_EQ(sb.push_bytes, 12345u);
}

TEST(ControlTest, SendAndReceiveOverTheTransport) {
  RunLocalRanks(3, [&](int rank, Transport& t) {
    if (rank == 0) {
      Command c;
      c.kind = Command::kEvaluate;
      c.epoch = 4;
      SendControl(t, 2, kTagCommand, c);
    } else if (rank == 2) {
      const Message m = MustRecv(t, Transport::kAnySource, kTagCommand);
      EXPECT_EQ(m.source, 0);
      const Command c = DecodeControl<Command>(m.data, "command");
      EXPECT_EQ(c.kind, Command::kEvaluate);
      EXPECT_EQ(c.epoch, 4);
    }
  });
}

// Returns the InputError's message, or fails.
template <typename T>
std::string DecodeError(const Bytes& bytes) {
  try {
    DecodeControl<T>(bytes, "control message from rank 4");
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "decoding " << bytes.size() << " bytes did not throw";
  return "";
}

TEST(ControlTest, GarbageIsAnInputError) {
  const Bytes ff(64, static_cast<char>(0xff));
  EXPECT_NE(DecodeError<SetupMessage>(ff).find("malformed control message from rank 4 (64 bytes)"), std::string::npos);
  EXPECT_NE(DecodeError<SetupMessage>(Bytes()).find("(0 bytes)"), std::string::npos);
  EXPECT_FALSE(DecodeError<Command>(Bytes{1, 2, 3}).empty());
  EXPECT_FALSE(DecodeError<EvalReport>(ff).empty());
  EXPECT_FALSE(DecodeError<EpochReport>(Bytes{0}).empty());

  // Every strict prefix of a valid SetupMessage is rejected.
  SetupMessage setup;
  setup.items = {1, 2, 3};
  setup.slot_field = {0, 1};
  TableSpec spec;
  spec.name = "emb";
  spec.width = 8;
  setup.tables = {spec};
  const Bytes full = EncodeControl(setup);
  for (std::size_t size = 0; size < full.size(); ++size) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_FALSE(DecodeError<SetupMessage>(cut).empty()) << "prefix of " << size << " of " << full.size() << " bytes";
  }
}


// Local ranks share memory: every rank's area is the same memory from every
// rank, and a reply above the eager limit placed in it is in flight
// (SendsInFlight) until its owner has read it.
TEST(TransportTest, LocalAreasAreSharedAndPlacedRepliesAreInFlightUntilRead) {
  auto transports = MakeLocalTransports(3, std::size_t{1} << 16);
  Transport& owner = *transports[0];
  Transport& writer = *transports[2];
  ASSERT_EQ(owner.OwnArea().size, std::size_t{1} << 16);
  EXPECT_EQ(writer.PeerArea(0).data, owner.OwnArea().data);
  EXPECT_TRUE(writer.SharesNodeWith(0));
  std::size_t offset = 1;
  ASSERT_TRUE(owner.PlaceInArea(100, &offset));
  EXPECT_EQ(offset, 0u);
  std::memcpy(writer.PeerArea(0).data + offset, "placed", 7);
  EXPECT_FALSE(writer.SendsInFlight());
  // A reply within the eager limit is not waited for (as an eager message)...
  writer.PlacedInto(0, 100);
  EXPECT_FALSE(writer.SendsInFlight());
  // ... a larger one is, until the owner has read it, and every reply
  // placed before it.
  writer.PlacedInto(0, std::size_t{1} << 20);
  writer.PlacedInto(0, 100);
  EXPECT_TRUE(writer.SendsInFlight());
  EXPECT_STREQ(owner.OwnArea().data + offset, "placed");
  owner.AreaRead(2);
  EXPECT_TRUE(writer.SendsInFlight());  // the small one read, not the large one
  owner.AreaRead(2);
  EXPECT_FALSE(writer.SendsInFlight());
  owner.AreaRead(2);
  EXPECT_FALSE(writer.SendsInFlight());
  EXPECT_EQ(owner.AreaBlocksInUse(), 1u);
  owner.ReleaseInArea(offset);
  EXPECT_EQ(owner.AreaBlocksInUse(), 0u);
  // No areas: nothing to place, and nothing is ever in flight.
  auto none = MakeLocalTransports(2, 0);
  EXPECT_TRUE(none[0]->OwnArea().empty());
  EXPECT_FALSE(none[0]->PlaceInArea(8, &offset));
  none[1]->PlacedInto(0, std::size_t{1} << 20);
  EXPECT_FALSE(none[1]->SendsInFlight());
}

}  // namespace
}  // namespace recsys
