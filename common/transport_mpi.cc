// The MPI backend. The only file that includes <mpi.h>.
#include <mpi.h>
#include <sys/prctl.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <utility>

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
  ~MpiTransport() override = default;

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
    RECSYS_MPI_CALL(MPI_Improbe(source == kAnySource ? MPI_ANY_SOURCE : source, tag == kAnyTag ? MPI_ANY_TAG : tag,
                                MPI_COMM_WORLD, &flag, &handle, &status));
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

  bool SendsInFlight() override { return ReapSends() > 0; }

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

  int rank_ = 0;
  int size_ = 0;
  std::vector<Bytes> spare_;
  // std::deque keeps element addresses stable as we push to the back, so the
  // buffers MPI is reading from never move.
  std::deque<Pending> pending_;
};

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
// (Session 5 tried turning off Open MPI's mpi_yield_when_idle, which it turns
// on for oversubscribed nodes: pipelined asynchronous MF ran 1.3x faster,
// but a single pull's round trip went from 21 to ~370 us and --sync MF ran
// at 0.62x, for a cause not found. It is left to Open MPI; README
// "Performance", session 5.)
void SetSharedMemoryDefaults() {
  setenv("OMPI_MCA_btl_vader_eager_limit", "262144", 0);
  setenv("OMPI_MCA_btl_vader_max_send_size", "262144", 0);
  setenv("OMPI_MCA_btl_vader_segment_size", "16777216", 0);
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
  SetSharedMemoryDefaults();
  int provided = 0;
  RECSYS_MPI_CALL(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  if (provided < MPI_THREAD_FUNNELED) throw InternalError("MPI does not provide MPI_THREAD_FUNNELED");
  return std::make_unique<MpiTransport>();
}

void FinalizeMpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace recsys
