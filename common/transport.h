// The one small transport between ranks: tagged byte messages, a
// non-blocking receive, and abort. Two backends: MpiTransport (the real job,
// transport_mpi.cc, the only file that includes <mpi.h>) and LocalTransport
// (ranks as threads in one process, for tests). Collectives are written once,
// on top of Send/TryRecv, in this class's non-virtual methods.
#ifndef RECSYS_COMMON_TRANSPORT_H_
#define RECSYS_COMMON_TRANSPORT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/area_allocator.h"

namespace recsys {

// std::allocator, except that resize() leaves new elements default-initialised
// (for char: not written) instead of zeroing them. A message buffer is always
// overwritten after it grows (MPI receives into it, frames are written into
// it), so the zeroing was a wasted pass over every pull reply and push: up to
// 140 KiB a batch at batch 256.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <typename U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using Bytes = std::vector<char, DefaultInitAllocator<char>>;

// Memory shared between the ranks of a node (Transport::OwnArea).
struct SharedArea {
  char* data = nullptr;
  std::size_t size = 0;
  bool empty() const { return size == 0; }
};

// Open MPI's shared-memory eager limit as MakeMpiTransport sets it (unless
// the user sets another): messages up to it are one copy into shared memory
// and one out, and their sends complete at once.
constexpr std::size_t kDefaultEagerLimit = 262144;

// The writer's side of Transport::PlacedInto, for the backends: the owners
// that have not yet read every reply above the eager limit placed in their
// areas. read_count(owner) is the backend's: the count `owner` has
// published of this rank's replies it has read (AreaRead). An owner reads
// one writer's replies in the order they were placed.
class PlacedReplies {
 public:
  explicit PlacedReplies(int ranks = 0)
      : placed_(static_cast<std::size_t>(ranks), 0), must_read_(static_cast<std::size_t>(ranks), 0) {}

  // A reply placed in `owner`'s area; waited for (AnyUnread) when
  // `wait_for_read`.
  template <typename ReadCount>
  void Placed(int owner, bool wait_for_read, ReadCount read_count) {
    const std::size_t o = static_cast<std::size_t>(owner);
    ++placed_[o];
    if (!wait_for_read) return;
    if (must_read_[o] <= read_count(owner)) unread_owners_.push_back(owner);  // not listed yet
    must_read_[o] = placed_[o];
  }

  // Whether an owner has not yet read a reply placed to be waited for.
  template <typename ReadCount>
  bool AnyUnread(ReadCount read_count) {
    for (std::size_t i = 0; i < unread_owners_.size();) {
      const int owner = unread_owners_[i];
      if (read_count(owner) >= must_read_[static_cast<std::size_t>(owner)]) {
        unread_owners_[i] = unread_owners_.back();
        unread_owners_.pop_back();
      } else {
        ++i;
      }
    }
    return !unread_owners_.empty();
  }

 private:
  std::vector<std::uint64_t> placed_;     // per rank: replies placed in its area
  std::vector<std::uint64_t> must_read_;  // per rank: placed_ at our last reply to wait for
  std::vector<int> unread_owners_;        // ranks that have not read up to must_read_
};

// The size of a rank's shared area, unless RECSYS_SHARED_AREA_MB says
// otherwise (0: no areas, every reply is a message). Address space only:
// pages are backed as blocks are first written, and a worker reuses the
// lowest free blocks, so what is resident is the peak of replies in flight.
constexpr std::size_t kDefaultSharedAreaBytes = std::size_t{64} << 20;
// kDefaultSharedAreaBytes or RECSYS_SHARED_AREA_MB's value, in bytes.
std::size_t SharedAreaBytesFromEnv();

struct Message {
  int source = -1;
  int tag = -1;
  Bytes data;
};

class Transport {
 public:
  static constexpr int kAnySource = -1;
  static constexpr int kAnyTag = -1;

  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Queues `data` for `dest` under `tag` (0 <= tag < 32768) and returns at
  // once; the transport owns the bytes until they are delivered. Messages
  // from one sender to one receiver arrive in the order they were sent.
  virtual void Send(int dest, int tag, Bytes data) = 0;

  // Receives the oldest ready message matching (source, tag), either of
  // which may be kAnySource / kAnyTag. Returns false at once if none is ready.
  // Also drives the progress of queued sends.
  virtual bool TryRecv(int source, int tag, Message* out) = 0;

  // Brings the whole job down: every rank exits with `code`. Never returns.
  [[noreturn]] virtual void Abort(int code) = 0;

  // Blocks until every queued Send has been handed to the receiver's side.
  virtual void FlushSends() = 0;

  // An empty buffer for the next Send, with the capacity of a buffer whose
  // send has completed when there is one (the MPI backend keeps a few), so
  // a steady stream of pulls and pushes reuses its buffers instead of
  // allocating (and, above malloc's mmap threshold, page-faulting) each one.
  virtual Bytes SpareBuffer() { return Bytes(); }

  // Whether a Send has not yet been handed over (or a large placed reply
  // not yet read, PlacedInto). A message above the shared-memory eager
  // limit (256 KiB by default, MakeMpiTransport) moves in fragments only
  // while the sender is inside MPI calls, so a waiting rank with sends in
  // flight should keep polling (Backoff::Wait with may_sleep false): its
  // receiver is usually waiting for exactly that message.
  virtual bool SendsInFlight() { return false; }

  // ---- Shared areas: node-local memory for replies, pushes, requests ----
  //
  // A rank may own an area: memory that the ranks on its node can map,
  // write and read. A worker lends blocks of its area to servers on its
  // node for their pull replies (worker/ps_client.cc, ps/server_loop.cc):
  // the server writes the reply where the worker reads it and sends only a
  // short message, instead of a reply that MPI copies into shared memory
  // and out again. A worker also writes a push into a block of its
  // area and sends a short note; the server reads the push there and acks,
  // and the worker frees the block at the ack. So too the keys of a large
  // pull, freed at the reply. Writes into an area become
  // visible to the other side through the message sent after them: MPI's
  // (or the local hub's) own synchronisation of that message orders them;
  // the release and acquire fences at either end only state the intent.

  // This rank's area; empty when it has none (disabled, or the backend
  // cannot share memory).
  virtual SharedArea OwnArea() { return SharedArea(); }
  // The area of `peer`, mapped into this process on the first call; empty
  // when the peer has none or it cannot be mapped from here (another node,
  // the mapping refused). The same for every call.
  virtual SharedArea PeerArea(int /*peer*/) { return SharedArea(); }
  // Whether `peer` is on this rank's node, so that it may be able to write
  // this rank's area (PeerArea on its side tells for sure).
  virtual bool SharesNodeWith(int /*peer*/) const { return false; }
  // A reply of `bytes` that this rank wrote into `owner`'s area. One larger
  // than the eager limit is, until the owner has read it (AreaRead), in
  // flight like the message it replaces: SendsInFlight is true, so a
  // waiting writer keeps polling instead of sleeping. (A server that slept
  // as soon as its short note was sent slept through its worker's next
  // request, the worker then through the next reply, and both sides'
  // backoff grew: 10,000-row pulls one at a time took ~4.8 ms instead of
  // ~0.2.) Smaller ones, like eager messages, are not: a worker with its
  // next batch's reply in hand computes for milliseconds before reading
  // it, and the server should sleep meanwhile. PlacedInto is called before
  // the Send that tells the owner; AreaRead once the owner has read a reply
  // `writer` placed (every one, in the order they came).
  virtual void PlacedInto(int /*owner*/, std::size_t /*bytes*/) {}
  virtual void AreaRead(int /*writer*/) {}
  // The eager limit in force (kDefaultEagerLimit unless the user set
  // another): placed replies above it are in flight until read (PlacedInto).
  virtual std::size_t EagerLimit() const { return kDefaultEagerLimit; }
  // Blocks of this rank's area in use (PlaceInArea, not yet released).
  std::size_t AreaBlocksInUse() const { return area_blocks_.blocks(); }
  // Blocks of OwnArea() for replies this rank asks peers to write there, or
  // pushes it writes for them to read (first fit, AreaAllocator). Place
  // returns false when the area has no room (or there is none); Release
  // frees a placed block once read.
  bool PlaceInArea(std::size_t bytes, std::size_t* offset);
  void ReleaseInArea(std::size_t offset);

  // Blocking receive: polls TryRecv with Backoff (briefly, then sleeping
  // with exponential backoff), so a waiting rank does not burn a core that
  // busy ranks need (a blocking MPI_Recv spins at 100% even with
  // mpi_yield_when_idle).
  Message Recv(int source, int tag);

  // Like Recv, but gives up after `timeout_seconds` (< 0: never), checked
  // once the wait has started sleeping (after WaitPolicy::spin). Returns
  // false on timeout.
  bool RecvWhile(int source, int tag, Message* out, double timeout_seconds);

  // Collectives built on Send/Recv; every rank must call them in the same
  // order. Rank 0 is the root.
  void Barrier();
  // Rank 0's `data` is copied to every rank.
  void Broadcast(Bytes* data);

  // Counts of idle polls and sleeps, for measuring how waiting ranks behave.
  std::uint64_t idle_sleeps() const { return idle_sleeps_; }
  double idle_seconds() const { return idle_seconds_; }

 protected:
  // Reserved tags used by the collectives above.
  static constexpr int kTagBarrier = 32000;
  static constexpr int kTagBroadcast = 32001;

 private:
  std::uint64_t idle_sleeps_ = 0;
  double idle_seconds_ = 0.0;
  bool area_sized_ = false;  // area_blocks_ covers OwnArea() once set
  AreaAllocator area_blocks_;
};

// How a waiting rank spends the time between polls (Backoff). A reply or a
// request is usually microseconds away, while a sleep costs far more than
// asked (here a 20 us sleep takes ~65 us: timer granularity in a VM), and a
// rank that sleeps through a message makes its peer wait and back off too.
// So waits poll for a while after the last progress, and only then sleep,
// with exponential backoff. Measured in README "Performance", session 6.
struct WaitPolicy {
  // How long to poll without sleeping after the last progress. A server
  // polling 25 us between requests made --sync MF 0.65x as fast as 200 us;
  // asynchronous training was the same with either.
  std::chrono::microseconds spin{200};
  // For the first `pause_spin` of that, poll with only a CPU pause between
  // polls; after it, yield the core between polls (sched_yield, ~1 us here).
  // Yielding polls trained faster than pausing ones (MF 1.5x, NeuMF 1.3x),
  // but pausing catches a reply due in microseconds sooner (a lone 500-row
  // pull: 13 us against 20-29 us). Zero when the node has more busy ranks
  // than cores: a rank that does not yield holds up a co-scheduled one.
  std::chrono::microseconds pause_spin{15};
};
// The process's policy; set once at start-up (MakeMpiTransport does, from
// the node's ranks and cores), before any rank waits.
void SetWaitPolicy(const WaitPolicy& policy);
const WaitPolicy& GetWaitPolicy();

// Paces a polling loop: Wait() between polls that found nothing, Reset()
// after progress. Polls for the policy's spin time, then sleeps from 20 us,
// doubling up to ~1.3 ms (RECSYS_MAX_SLEEP_US).
class Backoff {
 public:
  // Returns the seconds slept (0 while it only paused or yielded). With
  // may_sleep false (e.g. a large send of ours still moving, which needs us
  // in MPI), it yields where it would sleep.
  double Wait(bool may_sleep = true);
  void Reset() { started_ = false; }

 private:
  bool started_ = false;  // since the last Reset
  int sleeps_ = 0;        // at most 10: the sleep doubles up to its cap
  std::chrono::steady_clock::time_point since_;
};

// ---- MPI backend (transport_mpi.cc) ----

// Initialises MPI (MPI_THREAD_FUNNELED: one thread per rank talks to MPI)
// and returns the world transport. Call once, from main.
std::unique_ptr<Transport> MakeMpiTransport(int* argc, char*** argv);
// Finalises MPI. Only on the success path: a rank that finalizes while
// others still wait would hang them; on failure, Abort instead. Where ranks
// may get here at different times, call transport.Barrier() first: it
// sleeps, while MPI_Finalize's own wait spins (mpi_yield_when_idle is off).
void FinalizeMpi();

// ---- Local backend (transport_local.cc) ----

// Creates `n` connected transports, one per rank, for threads of one process.
// Abort() throws TransportAborted in the calling thread and makes every
// other rank's next TryRecv throw it too, so tests see a job-wide failure.
// Each rank has a shared area of `area_bytes` (0: none), which every other
// rank can write (PeerArea): the threads share one address space.
std::vector<std::unique_ptr<Transport>> MakeLocalTransports(int n, std::size_t area_bytes = kDefaultSharedAreaBytes);

class TransportAborted : public std::runtime_error {
 public:
  explicit TransportAborted(int code) : std::runtime_error("transport aborted"), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// Runs fn(rank, transport) on n threads over local transports and rethrows
// the first exception any of them raised (after all have stopped).
void RunLocalRanks(int n, const std::function<void(int rank, Transport& transport)>& fn,
                   std::size_t area_bytes = kDefaultSharedAreaBytes);

}  // namespace recsys

#endif  // RECSYS_COMMON_TRANSPORT_H_
