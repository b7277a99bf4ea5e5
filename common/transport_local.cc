// The in-process backend: ranks are threads, mailboxes are deques under one
// mutex. Used by tests of the server, client and worker logic.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/transport.h"

namespace recsys {
namespace {

class LocalHub {
 public:
  // Reserves an area of `area_bytes` per rank: address space only, pages
  // are backed as they are first written (as the MPI backend's memfd).
  // Each area has an inaccessible page after it, so that a read or write
  // just past an area faults (in tests and the fuzz target) instead of
  // landing unnoticed in the next rank's area.
  LocalHub(int n, std::size_t area_bytes)
      : boxes_(static_cast<std::size_t>(n)), read_counts_(static_cast<std::size_t>(n) * static_cast<std::size_t>(n)) {
    if (area_bytes == 0) return;
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    mapped_bytes_ = (area_bytes + 64 + page - 1) / page * page + page;
    for (int r = 0; r < n; ++r) {
      void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) break;  // no areas beyond this rank: replies go as messages
      char* guard = static_cast<char*>(p) + (mapped_bytes_ - page);
      if (mprotect(guard, page, PROT_NONE) != 0) {
        munmap(p, mapped_bytes_);
        break;
      }
      // The area ends where the guard page starts, or less than 64 bytes
      // before it: its start stays 64-byte aligned.
      const auto start = reinterpret_cast<std::uintptr_t>(guard - area_bytes) & ~std::uintptr_t{63};
      areas_.push_back(SharedArea{reinterpret_cast<char*>(start), area_bytes});
      mappings_.push_back(static_cast<char*>(p));
    }
  }
  LocalHub(const LocalHub&) = delete;
  LocalHub& operator=(const LocalHub&) = delete;
  ~LocalHub() {
    for (char* m : mappings_) munmap(m, mapped_bytes_);
  }

  // How many replies `writer` placed in `owner`'s area the owner has read.
  std::atomic<std::uint64_t>& ReadCount(int owner, int writer) {
    return read_counts_[static_cast<std::size_t>(owner) * boxes_.size() + static_cast<std::size_t>(writer)];
  }

  SharedArea Area(int rank) const {
    return static_cast<std::size_t>(rank) < areas_.size() ? areas_[static_cast<std::size_t>(rank)] : SharedArea();
  }

  void Deliver(int dest, Message message) {
    std::lock_guard<std::mutex> lock(mu_);
    CheckAborted();
    boxes_.at(static_cast<std::size_t>(dest)).push_back(std::move(message));
  }

  bool Take(int self, int source, int tag, Message* out) {
    std::lock_guard<std::mutex> lock(mu_);
    CheckAborted();
    auto& box = boxes_[static_cast<std::size_t>(self)];
    // The first match in arrival order: per-sender order is kept because a
    // sender's messages enter the deque in the order they were sent.
    for (auto it = box.begin(); it != box.end(); ++it) {
      if ((source == Transport::kAnySource || it->source == source) && (tag == Transport::kAnyTag || it->tag == tag)) {
        *out = std::move(*it);
        box.erase(it);
        return true;
      }
    }
    return false;
  }

  void SetAborted(int code) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!aborted_) {
      aborted_ = true;
      abort_code_ = code;
    }
  }

 private:
  void CheckAborted() const {
    if (aborted_) throw TransportAborted(abort_code_);
  }

  std::mutex mu_;
  // State below is protected by mu_.
  std::vector<std::deque<Message>> boxes_;
  std::vector<SharedArea> areas_;  // per rank; constant after construction
  std::vector<char*> mappings_;     // what was mapped for each area (area, then its guard page)
  std::size_t mapped_bytes_ = 0;
  std::vector<std::atomic<std::uint64_t>> read_counts_;  // (owner, writer), ReadCount
  bool aborted_ = false;
  int abort_code_ = 0;
};

class LocalTransport final : public Transport {
 public:
  LocalTransport(std::shared_ptr<LocalHub> hub, int rank, int size)
      : hub_(std::move(hub)), rank_(rank), size_(size), placed_(size) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void Send(int dest, int tag, Bytes data) override {
    RECSYS_CHECK(dest >= 0 && dest < size_, "dest=", dest);
    hub_->Deliver(dest, Message{rank_, tag, std::move(data)});
  }

  bool TryRecv(int source, int tag, Message* out) override { return hub_->Take(rank_, source, tag, out); }

  [[noreturn]] void Abort(int code) override {
    hub_->SetAborted(code);
    throw TransportAborted(code);
  }

  void FlushSends() override {}

  bool SendsInFlight() override {
    return placed_.AnyUnread([this](int owner) { return ReadCount(owner); });
  }

  // As the MPI backend, with Open MPI's default eager limit.
  void PlacedInto(int owner, std::size_t bytes) override {
    if (owner < 0 || owner >= size_ || hub_->Area(owner).empty()) return;
    placed_.Placed(owner, bytes > EagerLimit(), [this](int o) { return ReadCount(o); });
  }

  void AreaRead(int writer) override {
    if (writer < 0 || writer >= size_) return;
    hub_->ReadCount(rank_, writer).fetch_add(1, std::memory_order_release);
  }

  SharedArea OwnArea() override { return hub_->Area(rank_); }
  SharedArea PeerArea(int peer) override { return hub_->Area(peer); }
  bool SharesNodeWith(int peer) const override { return peer >= 0 && peer < size_; }

 private:
  // The count `owner` has published of our replies it has read.
  std::uint64_t ReadCount(int owner) const {
    return hub_->ReadCount(owner, rank_).load(std::memory_order_acquire);
  }

  std::shared_ptr<LocalHub> hub_;
  int rank_;
  int size_;
  PlacedReplies placed_;
};

}  // namespace

std::vector<std::unique_ptr<Transport>> MakeLocalTransports(int n, std::size_t area_bytes) {
  auto hub = std::make_shared<LocalHub>(n, area_bytes);
  std::vector<std::unique_ptr<Transport>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<LocalTransport>(hub, r, n));
  return out;
}

void RunLocalRanks(int n, const std::function<void(int rank, Transport& transport)>& fn, std::size_t area_bytes) {
  auto transports = MakeLocalTransports(n, area_bytes);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(r, *transports[static_cast<std::size_t>(r)]);
      } catch (const TransportAborted&) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
        // Like main(): one failing rank brings the others down.
        try {
          transports[static_cast<std::size_t>(r)]->Abort(1);
        } catch (const TransportAborted&) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Prefer the root cause over the TransportAborted it caused elsewhere.
  for (auto& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const TransportAborted&) {
    } catch (...) {
      throw;
    }
  }
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace recsys
