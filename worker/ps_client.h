// A worker's view of the parameter servers (as ps-lite's KVWorker):
// asynchronous Pull and Push return a ticket, Wait(ticket) blocks until that
// request is done, and WaitPushes(k) bounds the pushes in flight, which is
// how --staleness is enforced. One pull and one push message per server per
// batch, carrying flat arrays (wire.h).
#ifndef RECSYS_WORKER_PS_CLIENT_H_
#define RECSYS_WORKER_PS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/table_spec.h"
#include "common/topology.h"
#include "common/transport.h"
#include "common/wire.h"
#include "models/model.h"

namespace recsys {

// Parameters (or gradients) of one batch: one contiguous block per table,
// and the ParamView over them that models read.
struct ParamBuffers {
  std::vector<std::vector<Real>> storage;  // per table
  ParamView view;

  // Shapes the buffers for `num_keys` rows of every sparse table and all rows
  // of every dense block; keeps capacity across batches.
  void Shape(const std::vector<TableSpec>& tables, std::size_t num_keys);
  // Sets every value to zero (for gradients).
  void Zero();
};

class PsClient {
 public:
  using Ticket = std::uint64_t;

  // `transport` must outlive the client. With `send_empty` (--sync) every
  // pull and push goes to every server, even with nothing for it, so
  // lockstep servers hear from each worker at every step.
  PsClient(Transport* transport, const Topology& topology, std::vector<TableSpec> tables, bool send_empty);
  PsClient(const PsClient&) = delete;
  PsClient& operator=(const PsClient&) = delete;

  // Starts pulling, for `keys`, the rows of every sparse table, plus every
  // row of every dense block, into *rows (shaped here). `keys` and *rows must
  // stay alive and unchanged until Wait(ticket) returns. `eval` pulls are
  // read-only and served at once even by lockstep servers.
  Ticket Pull(const std::vector<Key>& keys, ParamBuffers* rows, bool eval = false);
  // Blocks until the pull `ticket` has all its rows.
  void Wait(Ticket ticket);

  // Sends the gradients `grads` (shaped like the pull of `keys`) to the
  // servers, as part of the job's global step `step` (Adam's bias
  // correction, ps/optimizer.h; 0: not known). The data is copied into the
  // messages (or, for a server on this node that has written a pull reply
  // into this rank's shared area, a push above kMinPlacedBytes into a block
  // of that area, which the server reads in place: kTagPushPlaced); the
  // caller may reuse it.
  void Push(const std::vector<Key>& keys, const ParamBuffers& grads, std::uint64_t step = 0);
  // Blocks until at most `max_in_flight` pushes are unacknowledged.
  void WaitPushes(int max_in_flight);
  int pushes_in_flight() const { return static_cast<int>(pushes_in_flight_.size()); }

  // The watchdog of the waits (--stall-timeout): once set, Wait and
  // WaitPushes throw StallError, naming this worker's rank and the server
  // ranks it still waits on, when no reply has come for `seconds` (0: never).
  // `while_waiting` (may be empty) runs at every backoff step of a wait, so
  // the worker can tell the coordinator's watchdog it is alive and watching
  // its servers (the coordinator cannot tell which server a worker waits on).
  void SetStallTimeout(double seconds, std::function<void()> while_waiting);

  // Work for the waits: while Wait or WaitPushes has no reply to handle, it
  // calls `work`, which should take a few microseconds and return true while
  // it has more to do; a wait does not sleep while it has. (The worker makes
  // the next epoch's examples this way.) Empty: none.
  void SetIdleWork(std::function<bool()> work) { idle_work_ = std::move(work); }

  // Bytes of pull replies received and push messages sent, since creation.
  std::uint64_t pulled_bytes() const { return pulled_bytes_; }
  std::uint64_t pushed_bytes() const { return pushed_bytes_; }
  // Pull replies that servers wrote into this rank's shared area.
  std::uint64_t placed_replies() const { return placed_replies_; }
  // Push frames written into this rank's shared area for a server to read.
  std::uint64_t placed_pushes() const { return placed_pushes_; }
  // Pull requests whose keys were written there for a server to read.
  std::uint64_t placed_requests() const { return placed_requests_; }

  // Pull replies, pushes and pull requests (their frames, the request's
  // 32-byte head included) larger than this, to and from a server on this
  // node, go through this rank's shared area when it has room; smaller ones
  // are messages. (Pushes and requests only to a server that has placed a
  // reply: it maps the area.) A placed reply is written once, by the server straight
  // into our area, instead of copied into Open MPI's shared memory and out
  // again; that copy was a third of an MF server's time (README
  // "Performance", session 12). Below a few KiB the copies cost less than
  // placing: bench_ps, 10-row pulls (1.3 KB) 3.5 us placed against 3.0 us as
  // messages, 50-row pulls (6.4 KB) 4.0 against 4.7 us. Only replies above
  // the eager limit are also polled for until read (Transport::PlacedInto).
  static constexpr std::size_t kMinPlacedBytes = 4096;

 private:
  // For one server: which rows of each table it holds, as indices into the
  // batch's keys (sparse) or the block's rows (dense). With one server every
  // row of a sparse table goes to it in order, and `all` says so instead of
  // listing 0..n-1 (the rows are then copied as one block).
  struct TableRoute {
    std::vector<std::int32_t> rows;  // empty when `all`
    bool all = false;
    std::size_t n = 0;  // rows routed: rows.size(), or the batch's keys when `all`
  };
  struct Route {
    std::vector<TableRoute> tables;  // per table
  };
  // A pull waiting for replies. Kept in a small pool and reused, so a pull
  // allocates nothing once the pool has warmed up (ticket 0 = free).
  struct PendingPull {
    Ticket ticket = 0;
    ParamBuffers* rows = nullptr;
    std::vector<Route> routes;  // per server
    // Per server: where its reply may be written in this rank's shared area
    // (bytes 0: by message).
    std::vector<ReplyPlace> places;
    // Per server: the block of this rank's shared area holding the
    // request's keys (kRequestPlaced; bytes 0: they went in the message),
    // freed at that server's reply.
    std::vector<ReplyPlace> request_places;
    int replies_left = 0;
  };
  struct PendingPush {
    Ticket ticket;
    int acks_left;
    // The blocks of this rank's shared area holding the push's frames, as
    // (server index, offset): each is freed when that server acks.
    std::vector<std::pair<int, std::size_t>> blocks;
  };

  // Fills routes (per server) for `keys`.
  void RouteKeys(const std::vector<Key>& keys, std::vector<Route>* routes) const;
  // The pending pull of `ticket`, or nullptr if it is done.
  PendingPull* FindPull(Ticket ticket);
  // Handles every ready reply or ack; returns true if it handled any.
  bool Poll();
  void HandlePullReply(const Message& m);
  void HandlePushAck(const Message& m);
  template <typename Done>
  void WaitUntil(Done done);
  // One request to the server of rank `source` is answered (watchdog).
  void Answered(int source);
  // Throws StallError if nothing has been heard for stall_timeout_ since
  // `since` (the start of the wait or the last reply).
  void CheckStall(std::chrono::steady_clock::time_point since) const;

  // Constant after construction.
  Transport* transport_;
  const Topology topology_;
  const std::vector<TableSpec> tables_;
  const bool send_empty_;
  std::vector<Key> dense_keys_;  // MakeKey(kFieldDense, r) for the largest block
  // Per server, per dense table: the block rows it holds (they never change).
  std::vector<std::vector<std::vector<std::int32_t>>> dense_routes_;

  std::chrono::steady_clock::duration stall_timeout_{0};  // zero: no watchdog
  std::function<void()> while_waiting_;
  std::function<bool()> idle_work_;

  std::uint64_t next_request_ = 1;
  std::vector<int> awaiting_;  // per server: requests sent and not yet answered (watchdog)
  std::vector<PendingPull> pulls_;          // pool; at most a few in use
  std::vector<PendingPush> pushes_in_flight_;  // oldest first
  std::uint64_t pulled_bytes_ = 0;
  std::uint64_t pushed_bytes_ = 0;
  std::uint64_t placed_replies_ = 0;
  std::uint64_t placed_pushes_ = 0;
  std::uint64_t placed_requests_ = 0;
  std::vector<bool> server_on_node_;  // per server: its replies may be placed in our area
  // Per server: it has written a reply into our area, so it maps it and can
  // read pushes placed there (until then, pushes go as messages: a server
  // that cannot map the area has no way to read them).
  std::vector<bool> server_reads_area_;
  std::vector<Route> push_routes_;  // scratch
  Message message_;                 // scratch for Poll
};

}  // namespace recsys

#endif  // RECSYS_WORKER_PS_CLIENT_H_
