// The MPI backend. The only file that includes <mpi.h>.
#include <fcntl.h>
#include <mpi.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/transport.h"

namespace recsys {
namespace {

// Every MPI return code is checked; a failure is a bug or a broken job, and
// the caller's catch-all turns it into a job-wide abort.
#define RECSYS_MPI_CALL(call)                                                         \
  do {                                                                                \
    const int mpi_rc_ = (call);                                                       \
    if (mpi_rc_ != MPI_SUCCESS) {                                                     \
      char mpi_msg_[MPI_MAX_ERROR_STRING];                                            \
      int mpi_len_ = 0;                                                               \
      MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                 \
      throw InternalError(Concat(#call, " failed: ", std::string(mpi_msg_, mpi_len_))); \
    }                                                                                 \
  } while (0)

class MpiTransport final : public Transport {
 public:
  MpiTransport() {
    RECSYS_MPI_CALL(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    RECSYS_MPI_CALL(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    // Errors come back as codes (checked above) instead of killing the job
    // from inside MPI with a message that does not name our cause.
    RECSYS_MPI_CALL(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  }

  // Deliberately does not finalize MPI (see FinalizeMpi).
  ~MpiTransport() override {
    for (const Mapping& m : peer_maps_) {
      if (m.base != nullptr) munmap(m.base, m.bytes);
    }
    if (own_map_.base != nullptr) munmap(own_map_.base, own_map_.bytes);
    if (own_fd_ >= 0) close(own_fd_);
  }

  // Creates this rank's area (a memfd of `bytes`; none if 0 or on failure)
  // and tells the ranks of its node where to find it. Collective over
  // `node` (MPI_COMM_TYPE_SHARED); called once, right after MPI_Init.
  void SetUpAreas(MPI_Comm node, std::size_t bytes);

  SharedArea OwnArea() override { return own_; }
  SharedArea PeerArea(int peer) override;
  bool SharesNodeWith(int peer) const override {
    return !own_.empty() && peer >= 0 && peer < size_ && peers_[static_cast<std::size_t>(peer)].pid != 0;
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void Send(int dest, int tag, Bytes data) override {
    RECSYS_CHECK(data.size() < static_cast<std::size_t>(INT_MAX), "message of ", data.size(), " bytes");
    pending_.push_back(Pending{std::move(data), MPI_REQUEST_NULL});
    Pending& p = pending_.back();
    RECSYS_MPI_CALL(MPI_Isend(p.data.data(), static_cast<int>(p.data.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD,
                              &p.request));
    ReapSends();
  }

  bool TryRecv(int source, int tag, Message* out) override {
    ReapSends();
    int flag = 0;
    MPI_Message handle;
    MPI_Status status;
    const int from = source == kAnySource ? MPI_ANY_SOURCE : source;
    const int with = tag == kAnyTag ? MPI_ANY_TAG : tag;
    RECSYS_MPI_CALL(MPI_Improbe(from, with, MPI_COMM_WORLD, &flag, &handle, &status));
    if (!flag) {
      // Open MPI's MPI_Improbe (ob1) matches first and, finding nothing,
      // only then runs the progress engine, which takes what has come off
      // the shared-memory queue; that probe still answers "nothing". A rank
      // waking from a sleep missed what came meanwhile and slept once more
      // (up to 1.28 ms: the worker of a 100,000-row pull waited a whole
      // extra sleep for every reply). Probe again.
      RECSYS_MPI_CALL(MPI_Improbe(from, with, MPI_COMM_WORLD, &flag, &handle, &status));
    }
    if (!flag) return false;
    int count = 0;
    RECSYS_MPI_CALL(MPI_Get_count(&status, MPI_BYTE, &count));
    out->source = status.MPI_SOURCE;
    out->tag = status.MPI_TAG;
    out->data.resize(static_cast<std::size_t>(count));
    RECSYS_MPI_CALL(MPI_Mrecv(out->data.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE));
    return true;
  }

  [[noreturn]] void Abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }

  void FlushSends() override {
    Backoff backoff;
    while (ReapSends() > 0) backoff.Wait();
  }

  bool SendsInFlight() override {
    return ReapSends() > 0 || placed_.AnyUnread([this](int owner) { return ReadCount(owner); });
  }

  void PlacedInto(int owner, std::size_t bytes) override {
    if (owner < 0 || owner >= size_ || peer_state_[static_cast<std::size_t>(owner)] != 1) return;
    placed_.Placed(owner, bytes > eager_limit_, [this](int o) { return ReadCount(o); });
  }

  std::size_t EagerLimit() const override { return eager_limit_; }

  void AreaRead(int writer) override {
    if (own_map_.base == nullptr || writer < 0 || writer >= size_) return;
    std::uint64_t* count = Counter(own_map_.base, writer);
    // Release: the owner's reads of the reply happen before the writer sees
    // the count (and may then write there again, once offered).
    __atomic_store_n(count, __atomic_load_n(count, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
  }

  Bytes SpareBuffer() override {
    if (spare_.empty()) return Bytes();
    Bytes out = std::move(spare_.back());
    spare_.pop_back();
    out.clear();
    return out;
  }

 private:
  struct Pending {
    Bytes data;
    MPI_Request request;
  };

  // In an area's header: where the owner counts the replies of `writer` it
  // has read (one 8-byte counter per rank of the job, after the cookie).
  static std::uint64_t* Counter(char* base, int writer) {
    return reinterpret_cast<std::uint64_t*>(base + 64 + 8 * static_cast<std::size_t>(writer));
  }
  // The count `owner` has published of our replies it has read.
  std::uint64_t ReadCount(int owner) const {
    return __atomic_load_n(Counter(peer_maps_[static_cast<std::size_t>(owner)].base, rank_), __ATOMIC_ACQUIRE);
  }

  // Completes finished sends, oldest first; returns how many are left.
  std::size_t ReapSends() {
    // Sends complete roughly in order; test from the front and stop at the
    // first one still in flight, so this stays O(1) per call when idle.
    while (!pending_.empty()) {
      int done = 0;
      RECSYS_MPI_CALL(MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE));
      if (!done) break;
      if (spare_.size() < kMaxSpare && pending_.front().data.capacity() >= kMinSpareBytes) {
        spare_.push_back(std::move(pending_.front().data));
      }
      pending_.pop_front();
    }
    return pending_.size();
  }

  // Buffers of completed sends kept for SpareBuffer: enough for the frames
  // a worker or server has in flight at once (pipelined pulls and pushes to
  // a few servers); tiny buffers (acks, control) are not worth keeping.
  static constexpr std::size_t kMaxSpare = 16;
  static constexpr std::size_t kMinSpareBytes = 4096;

  // Where a rank of this node keeps its area: the peer maps
  // /proc/<pid>/fd/<fd> and checks that the area starts with `cookie` (so a
  // reused pid, or a pid of another namespace, is never taken for it).
  struct AreaInfo {
    std::int32_t pid = 0;  // 0: not on this node
    std::int32_t fd = -1;
    std::uint64_t cookie = 0;
    std::uint64_t bytes = 0;  // of the whole mapping, header included; 0: no area
  };
  struct Mapping {
    char* base = nullptr;
    std::size_t bytes = 0;
  };
  // An area starts with a header: the cookie, then the read counters
  // (Counter), in whole pages; the rest is the SharedArea.
  std::size_t AreaHeader() const { return (64 + 8 * static_cast<std::size_t>(size_) + 4095) / 4096 * 4096; }

  int rank_ = 0;
  int size_ = 0;
  int own_fd_ = -1;
  Mapping own_map_;
  SharedArea own_;
  std::vector<AreaInfo> peers_;  // per world rank
  std::vector<Mapping> peer_maps_;  // per world rank, once mapped
  std::vector<std::int8_t> peer_state_;  // per world rank: 0 not tried, 1 mapped, -1 cannot
  PlacedReplies placed_;                 // our replies in the areas of others
  std::size_t eager_limit_ = kDefaultEagerLimit;  // Open MPI's in force (SetUpAreas)
  std::vector<Bytes> spare_;
  // std::deque keeps element addresses stable as we push to the back, so the
  // buffers MPI is reading from never move.
  std::deque<Pending> pending_;
};

void MpiTransport::SetUpAreas(MPI_Comm node, std::size_t bytes) {
  peers_.assign(static_cast<std::size_t>(size_), AreaInfo());
  peer_maps_.assign(static_cast<std::size_t>(size_), Mapping());
  peer_state_.assign(static_cast<std::size_t>(size_), 0);
  placed_ = PlacedReplies(size_);
  // The eager limit in force (SetSharedMemoryDefaults, or the user's).
  if (const char* env = std::getenv("OMPI_MCA_btl_vader_eager_limit")) {
    eager_limit_ = static_cast<std::size_t>(std::strtoull(env, nullptr, 10));
  }
  const std::size_t header = AreaHeader();
  // Best effort: a rank without an area gets its replies as messages.
  AreaInfo mine;
  mine.pid = static_cast<std::int32_t>(getpid());  // on this node, area or not
  if (bytes > 2 * header) {
    own_fd_ = memfd_create("recsys-area", MFD_CLOEXEC);
    if (own_fd_ >= 0 && ftruncate(own_fd_, static_cast<off_t>(bytes)) == 0) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, own_fd_, 0);
      if (p != MAP_FAILED) {
        own_map_ = Mapping{static_cast<char*>(p), bytes};
        std::random_device random;
        mine.cookie = (std::uint64_t{random()} << 32) ^ random() ^ static_cast<std::uint64_t>(getpid());
        std::memcpy(own_map_.base, &mine.cookie, sizeof(mine.cookie));
        own_ = SharedArea{own_map_.base + header, bytes - header};
        mine.fd = own_fd_;
        mine.bytes = bytes;
      }
    }
  }
  // Every rank of the node learns every other's AreaInfo and world rank.
  int local = 0;
  RECSYS_MPI_CALL(MPI_Comm_size(node, &local));
  struct Entry {
    std::int32_t world = 0;
    std::int32_t unused = 0;  // explicit: no uninitialised padding on the wire
    AreaInfo info;
  };
  static_assert(sizeof(Entry) == 8 + sizeof(AreaInfo), "Entry has no hidden padding");
  Entry entry;
  entry.world = rank_;
  entry.info = mine;
  std::vector<Entry> all(static_cast<std::size_t>(local));
  MPI_Request request;
  RECSYS_MPI_CALL(MPI_Iallgather(&entry, static_cast<int>(sizeof(Entry)), MPI_BYTE, all.data(),
                                 static_cast<int>(sizeof(Entry)), MPI_BYTE, node, &request));
  Backoff backoff;  // a blocking collective would spin (SetNodeWaitPolicy)
  for (int done = 0;;) {
    RECSYS_MPI_CALL(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) break;
    backoff.Wait();
  }
  for (const Entry& e : all) {
    if (e.world >= 0 && e.world < size_ && e.world != rank_) peers_[static_cast<std::size_t>(e.world)] = e.info;
  }
}

SharedArea MpiTransport::PeerArea(int peer) {
  if (peer < 0 || peer >= size_ || peer == rank_) return peer == rank_ ? own_ : SharedArea();
  const std::size_t p = static_cast<std::size_t>(peer);
  if (peer_state_[p] == 0) {
    peer_state_[p] = -1;
    const AreaInfo& info = peers_[p];
    if (info.pid != 0 && info.bytes > 2 * AreaHeader()) {
      // The owner's memfd, reached through its /proc entry: no file is
      // ever created, so none is left behind by a job that dies.
      const std::string path = "/proc/" + std::to_string(info.pid) + "/fd/" + std::to_string(info.fd);
      const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
      struct stat st;
      if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) == info.bytes) {
        void* base = mmap(nullptr, info.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base != MAP_FAILED) {
          std::uint64_t cookie = 0;
          std::memcpy(&cookie, base, sizeof(cookie));
          if (cookie == info.cookie) {
            peer_maps_[p] = Mapping{static_cast<char*>(base), info.bytes};
            peer_state_[p] = 1;
          } else {
            munmap(base, info.bytes);
          }
        }
      }
      if (fd >= 0) close(fd);
    }
  }
  if (peer_state_[p] != 1) return SharedArea();
  return SharedArea{peer_maps_[p].base + AreaHeader(), peer_maps_[p].bytes - AreaHeader()};
}

// Open MPI's shared-memory transport (vader) sends messages above its 4 KiB
// eager limit by rendezvous: after the first fragment, the rest moves only
// while the *sender* is inside an MPI call. Our ranks sleep between polls, so
// a 60-140 KiB pull reply or push (batch 256) crawled one fragment per
// wake-up of a sleeping server. Raising the eager limit above a batch's
// messages makes each send a single copy into shared memory that completes
// at once; the larger fragments need a larger per-rank segment (4 MiB by
// default, 16 MiB here; backed by /dev/shm, touched only as used). Measured
// in README "Performance". Defaults only: a value the user set (mpirun --mca,
// OMPI_MCA_* in the environment) wins, as setenv does not overwrite it.
//
// Open MPI's mpi_yield_when_idle (on by default when a node is
// oversubscribed, as 3 ranks on 2 cores are) makes every MPI_Improbe or
// MPI_Test that finds nothing call sched_yield, ~1 us here: a worker polling
// between pipelined batches paid it on every poll. Our waits never block
// inside MPI and decide themselves when to yield (WaitPolicy), so it is off
// by default. (Open MPI 4.1, Debian 12's, takes this; Open MPI 5 forces the
// yield on for an oversubscribed node whatever the setting.) Session 5 found
// it off 1.3-2x faster for pipelined training but lone pulls at ~355 us: a
// worker that polled only 20 us before sleeping slept through replies, and
// both sides' backoff grew. WaitPolicy's longer spin fixed that (README
// "Performance", session 6).
void SetSharedMemoryDefaults() {
  const std::string eager = std::to_string(kDefaultEagerLimit);
  setenv("OMPI_MCA_btl_vader_eager_limit", eager.c_str(), 0);
  setenv("OMPI_MCA_btl_vader_max_send_size", eager.c_str(), 0);
  setenv("OMPI_MCA_btl_vader_segment_size", "16777216", 0);
  setenv("OMPI_MCA_mpi_yield_when_idle", "0", 0);
}

// The wait policy for this node: waits start with pausing polls unless the
// node has more busy ranks than cores. Busy ranks are all but the
// coordinator (rank 0), which sleeps while the others train (in
// recsys_recommend it computes too, so there the count may be one short);
// cores are the union of the CPUs the node's ranks may run on (so binding,
// taskset and cpusets count).
// RECSYS_PAUSE_SPIN_US and RECSYS_SPIN_US override, for measurements.
// Collective over `node`; called right after MPI_Init.
void SetNodeWaitPolicy(MPI_Comm node, int rank) {
  int local = 0;
  RECSYS_MPI_CALL(MPI_Comm_size(node, &local));
  // This rank's CPUs, then one byte saying whether it is rank 0, OR-ed over
  // the node.
  std::vector<unsigned char> mine(sizeof(cpu_set_t) + 1, 0), all(mine.size(), 0);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < std::max(1L, online) && c < CPU_SETSIZE; ++c) CPU_SET(static_cast<int>(c), &cpus);
  }
  std::memcpy(mine.data(), &cpus, sizeof(cpus));
  mine.back() = rank == 0 ? 1 : 0;
  // Non-blocking, polled with Backoff (the default policy, which yields
  // after 15 us): a blocking collective spins with the yield off. (The
  // node split is blocking, but the ranks come to it together, right
  // after MPI_Init's own synchronisation.)
  MPI_Request request;
  RECSYS_MPI_CALL(MPI_Iallreduce(mine.data(), all.data(), static_cast<int>(mine.size()), MPI_BYTE, MPI_BOR, node,
                                 &request));
  Backoff backoff;
  for (int done = 0;;) {
    RECSYS_MPI_CALL(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) break;
    backoff.Wait();
  }
  std::memcpy(&cpus, all.data(), sizeof(cpus));
  const int cores = std::max(1, CPU_COUNT(&cpus));
  const int busy = local - (all.back() != 0 ? 1 : 0);

  WaitPolicy policy;
  if (busy > cores) policy.pause_spin = std::chrono::microseconds(0);
  if (const char* env = std::getenv("RECSYS_PAUSE_SPIN_US")) {
    policy.pause_spin = std::chrono::microseconds(std::max(0, std::atoi(env)));
  }
  if (const char* env = std::getenv("RECSYS_SPIN_US")) policy.spin = std::chrono::microseconds(std::max(0, std::atoi(env)));
  SetWaitPolicy(policy);
}

}  // namespace

std::unique_ptr<Transport> MakeMpiTransport(int* argc, char*** argv) {
  // Waiting ranks poll and sleep with backoff from 20 us (Backoff). Linux
  // lets a sleep overrun by the thread's timer slack, 50 us by default, so a
  // "20 us" sleep took ~70 us and every pull reply or push that found its
  // receiver asleep waited that long. 1 us of slack keeps sleeps near their
  // nominal length; the cost is a few more timer interrupts on waiting ranks.
  // Best effort: a failure only leaves the default slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  // Before MPI_Init: a bad value stops every rank alike, with nothing started.
  const std::size_t area_bytes = SharedAreaBytesFromEnv();
  SetSharedMemoryDefaults();
  int provided = 0;
  RECSYS_MPI_CALL(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  if (provided < MPI_THREAD_FUNNELED) throw InternalError("MPI does not provide MPI_THREAD_FUNNELED");
  auto transport = std::make_unique<MpiTransport>();
  MPI_Comm node;
  RECSYS_MPI_CALL(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  SetNodeWaitPolicy(node, transport->rank());
  transport->SetUpAreas(node, area_bytes);
  RECSYS_MPI_CALL(MPI_Comm_free(&node));
  return transport;
}

void FinalizeMpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace recsys
