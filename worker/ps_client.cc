#include "worker/ps_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/keys.h"
#include "common/sharding.h"
#include "common/wire.h"
#include "ps/coordinator.h"  // StallError

namespace recsys {

void ParamBuffers::Shape(const std::vector<TableSpec>& tables, std::size_t num_keys) {
  storage.resize(tables.size());
  view.resize(tables.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const auto& spec = tables[t];
    const std::int64_t rows = spec.dense() ? spec.dense_rows() : static_cast<std::int64_t>(num_keys);
    storage[t].resize(static_cast<std::size_t>(rows) * spec.width);
    view[t] = TableView{storage[t].data(), rows, spec.width};
  }
}

void ParamBuffers::Zero() {
  for (auto& s : storage) std::fill(s.begin(), s.end(), 0.0f);
}

PsClient::PsClient(Transport* transport, const Topology& topology, std::vector<TableSpec> tables, bool send_empty)
    : transport_(transport), topology_(topology), tables_(std::move(tables)), send_empty_(send_empty) {
  std::int64_t max_rows = 0;
  for (const auto& t : tables_) max_rows = std::max(max_rows, t.dense_rows());
  for (std::int64_t r = 0; r < max_rows; ++r) dense_keys_.push_back(MakeKey(kFieldDense, static_cast<std::uint64_t>(r)));
  // Dense blocks are pulled whole at every step; their routes are fixed.
  const int servers = topology_.servers();
  awaiting_.assign(static_cast<std::size_t>(servers), 0);
  server_on_node_.assign(static_cast<std::size_t>(servers), false);
  server_reads_area_.assign(static_cast<std::size_t>(servers), false);
  for (int s = 0; s < servers; ++s) {
    server_on_node_[static_cast<std::size_t>(s)] = transport_->SharesNodeWith(topology_.ServerRank(s));
  }
  dense_routes_.assign(static_cast<std::size_t>(servers), std::vector<std::vector<std::int32_t>>(tables_.size()));
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    for (std::int64_t i = 0; i < tables_[t].dense_rows(); ++i) {
      const int s = ShardOf(static_cast<TableId>(t), dense_keys_[static_cast<std::size_t>(i)], servers);
      dense_routes_[static_cast<std::size_t>(s)][t].push_back(static_cast<std::int32_t>(i));
    }
  }
}

void PsClient::RouteKeys(const std::vector<Key>& keys, std::vector<Route>* routes) const {
  const int servers = topology_.servers();
  routes->resize(static_cast<std::size_t>(servers));
  for (auto& r : *routes) {
    r.tables.resize(tables_.size());
    for (auto& tr : r.tables) {
      tr.rows.clear();
      tr.all = false;
      tr.n = 0;
    }
  }
  // An empty batch touches nothing, not even the dense blocks: a zero
  // gradient would still advance their optimizer state.
  if (keys.empty()) return;
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    const auto& spec = tables_[t];
    const TableId id = static_cast<TableId>(t);
    if (spec.dense()) {
      for (int s = 0; s < servers; ++s) {
        TableRoute& tr = (*routes)[static_cast<std::size_t>(s)].tables[t];
        tr.rows = dense_routes_[static_cast<std::size_t>(s)][t];  // reuses capacity
        tr.n = tr.rows.size();
      }
    } else if (servers == 1) {
      TableRoute& tr = (*routes)[0].tables[t];
      tr.all = true;
      tr.n = keys.size();
    } else {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        (*routes)[static_cast<std::size_t>(ShardOf(id, keys[i], servers))].tables[t].rows.push_back(
            static_cast<std::int32_t>(i));
      }
      for (auto& r : *routes) r.tables[t].n = r.tables[t].rows.size();
    }
  }
}

PsClient::PendingPull* PsClient::FindPull(Ticket ticket) {
  for (auto& p : pulls_) {
    if (p.ticket == ticket) return &p;
  }
  return nullptr;
}

PsClient::Ticket PsClient::Pull(const std::vector<Key>& keys, ParamBuffers* rows, bool eval) {
  const Ticket ticket = next_request_++;
  rows->Shape(tables_, keys.size());
  PendingPull* pending = FindPull(0);  // a free slot of the pool
  if (pending == nullptr) pending = &pulls_.emplace_back();
  pending->rows = rows;
  pending->replies_left = 0;
  RouteKeys(keys, &pending->routes);
  pending->places.assign(static_cast<std::size_t>(topology_.servers()), ReplyPlace());
  pending->request_places.assign(static_cast<std::size_t>(topology_.servers()), ReplyPlace());
  for (int s = 0; s < topology_.servers(); ++s) {
    const Route& route = pending->routes[static_cast<std::size_t>(s)];
    FrameHeader header;
    header.request = ticket;
    std::size_t bytes = sizeof(FrameHeader) + sizeof(ReplyPlace);
    std::size_t reply_bytes = sizeof(FrameHeader);  // as the server sizes it
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const std::size_t n = route.tables[t].n;
      if (n == 0) continue;
      ++header.sections;
      bytes += sizeof(SectionHeader) + n * sizeof(Key);
      reply_bytes += PullReplySectionBytes(n, static_cast<std::size_t>(tables_[t].width));
    }
    if (header.sections == 0 && !send_empty_) continue;
    // A reply of more than kMinPlacedBytes from a server on this node is
    // written into this rank's shared area, if it has room; otherwise it
    // comes as a message. (Blocks in use: up to two per server for each
    // pull in flight, --prefetch + 1, its reply's and its keys', and one for
    // each push not yet acked, --staleness + 1: AreaAllocator's linear scan
    // stays short for the usual tens.)
    ReplyPlace& place = pending->places[static_cast<std::size_t>(s)];
    std::size_t offset = 0;
    if (server_on_node_[static_cast<std::size_t>(s)] && reply_bytes > kMinPlacedBytes &&
        transport_->PlaceInArea(reply_bytes, &offset)) {
      place.offset = offset;
      place.bytes = reply_bytes;
    }
    // A request of more than kMinPlacedBytes to a server that reads our
    // area has its sections (the keys) written there, as pushes are: one
    // copy, which the server reads in place, instead of a message that MPI
    // copies twice more and, above the eager limit, moves as a rendezvous
    // (only while this rank is inside MPI: the server waited in its receive
    // while we copied the previous reply, ~1 ms a 100,000-key pull). The
    // block is ours again when the server's reply has come.
    const std::size_t sections_bytes = bytes - sizeof(FrameHeader) - sizeof(ReplyPlace);
    ReplyPlace& request_place = pending->request_places[static_cast<std::size_t>(s)];
    std::size_t request_offset = 0;
    if (server_reads_area_[static_cast<std::size_t>(s)] && bytes > kMinPlacedBytes &&
        transport_->PlaceInArea(sections_bytes, &request_offset)) {
      request_place = ReplyPlace{request_offset, sections_bytes};
      header.step = kRequestPlaced;
    }
    Bytes frame = transport_->SpareBuffer();
    frame.reserve(request_place.bytes > 0 ? sizeof(FrameHeader) + 2 * sizeof(ReplyPlace) : bytes);
    FrameWriter out(&frame);
    out.Put(header);
    out.Put(place);
    FrameWriter in_area = request_place.bytes > 0
                              ? FrameWriter(transport_->OwnArea().data + request_offset, sections_bytes)
                              : FrameWriter(nullptr, 0);
    FrameWriter& sections = request_place.bytes > 0 ? in_area : out;
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const TableRoute& tr = route.tables[t];
      if (tr.n == 0) continue;
      sections.Put(SectionHeader{static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(tr.n)});
      Key* dst = sections.Extend<Key>(tr.n);
      if (tr.all) {
        std::memcpy(dst, keys.data(), tr.n * sizeof(Key));
      } else {
        const std::vector<Key>& src = tables_[t].dense() ? dense_keys_ : keys;
        for (std::size_t i = 0; i < tr.n; ++i) dst[i] = src[static_cast<std::size_t>(tr.rows[i])];
      }
    }
    if (request_place.bytes > 0) {
      RECSYS_CHECK(in_area.size() == sections_bytes, "pull sections of ", in_area.size(), " bytes, sized ",
                   sections_bytes);
      out.Put(request_place);
      ++placed_requests_;
      // The server reads the sections once the message has arrived (which
      // orders the writes before it; the fence states it, as for pushes).
      std::atomic_thread_fence(std::memory_order_release);
    }
    ++pending->replies_left;
    ++awaiting_[static_cast<std::size_t>(s)];
    transport_->Send(topology_.ServerRank(s), eval ? kTagEvalPull : kTagPull, std::move(frame));
  }
  // Nothing to pull: done at once (the slot stays free).
  if (pending->replies_left > 0) pending->ticket = ticket;
  return ticket;
}

void PsClient::Wait(Ticket ticket) {
  WaitUntil([&] { return FindPull(ticket) == nullptr; });
}

void PsClient::Push(const std::vector<Key>& keys, const ParamBuffers& grads, std::uint64_t step) {
  const Ticket ticket = next_request_++;
  RouteKeys(keys, &push_routes_);
  // Recorded first, so that the blocks placed are freed at the acks even if
  // a later send fails.
  pushes_in_flight_.push_back(PendingPush{ticket, 0, {}});
  for (int s = 0; s < topology_.servers(); ++s) {
    const Route& route = push_routes_[static_cast<std::size_t>(s)];
    FrameHeader header;
    header.request = ticket;
    header.step = static_cast<std::uint32_t>(std::min<std::uint64_t>(step, 0xffffffffULL));
    std::size_t bytes = sizeof(FrameHeader);
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const std::size_t n = route.tables[t].n;
      if (n == 0) continue;
      ++header.sections;
      bytes += sizeof(SectionHeader) + n * sizeof(Key) + ((n * tables_[t].width * sizeof(Real) + 7) & ~std::size_t{7});
    }
    if (header.sections == 0 && !send_empty_) continue;
    // A push of more than kMinPlacedBytes to a server that reads our area
    // is written there (one copy, which the server reads in place) instead
    // of into a message (which MPI copies twice more, and above the eager
    // limit, as a rendezvous message, keeps this rank in MPI until the
    // server takes it).
    std::size_t offset = 0;
    const bool placed = server_reads_area_[static_cast<std::size_t>(s)] && bytes > kMinPlacedBytes &&
                        transport_->PlaceInArea(bytes, &offset);
    Bytes frame;
    if (placed) {
      pushes_in_flight_.back().blocks.emplace_back(s, offset);  // freed at the server's ack
    } else {
      frame = transport_->SpareBuffer();
      frame.reserve(bytes);
    }
    FrameWriter out = placed ? FrameWriter(transport_->OwnArea().data + offset, bytes) : FrameWriter(&frame);
    out.Put(header);
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const TableRoute& tr = route.tables[t];
      if (tr.n == 0) continue;
      const std::size_t width = static_cast<std::size_t>(tables_[t].width);
      out.Put(SectionHeader{static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(tr.n)});
      Key* key_dst = out.Extend<Key>(tr.n);
      Real* grad_dst = out.Extend<Real>(tr.n * width);
      const Real* grad_src = grads.storage[t].data();
      if (tr.all) {
        std::memcpy(key_dst, keys.data(), tr.n * sizeof(Key));
        std::memcpy(grad_dst, grad_src, tr.n * width * sizeof(Real));
      } else {
        const std::vector<Key>& src = tables_[t].dense() ? dense_keys_ : keys;
        for (std::size_t i = 0; i < tr.n; ++i) {
          const auto r = static_cast<std::size_t>(tr.rows[i]);
          key_dst[i] = src[r];
          std::memcpy(grad_dst + i * width, grad_src + r * width, width * sizeof(Real));
        }
      }
    }
    RECSYS_CHECK(out.size() == bytes, "push frame of ", out.size(), " bytes, sized ", bytes);
    pushed_bytes_ += bytes;
    ++awaiting_[static_cast<std::size_t>(s)];
    ++pushes_in_flight_.back().acks_left;
    if (placed) {
      // The note says where; the server reads the frame once the note has
      // arrived (the message orders the writes before it; the fence states
      // it, as for pull replies).
      std::atomic_thread_fence(std::memory_order_release);
      Bytes note;
      FrameWriter note_out(&note);
      note_out.Put(ReplyPlace{offset, bytes});
      ++placed_pushes_;
      transport_->Send(topology_.ServerRank(s), kTagPushPlaced, std::move(note));
    } else {
      transport_->Send(topology_.ServerRank(s), kTagPush, std::move(frame));
    }
  }
  if (pushes_in_flight_.back().acks_left == 0) pushes_in_flight_.pop_back();  // nothing sent: done at once
}

void PsClient::WaitPushes(int max_in_flight) {
  WaitUntil([&] { return static_cast<int>(pushes_in_flight_.size()) <= max_in_flight; });
}

template <typename Done>
void PsClient::WaitUntil(Done done) {
  // Polls, doing idle work (SetIdleWork) between polls: it never delays a
  // handled reply by more than one of its steps. Without idle work, the wait
  // follows the process's WaitPolicy (Backoff): it spins or yields for a
  // while, as a reply is usually microseconds away, and then sleeps.
  if (done()) return;
  const auto idle = [this] { return idle_work_ && idle_work_(); };
  Backoff backoff;
  auto heard = std::chrono::steady_clock::now();  // start of the wait, then the last reply
  while (!done()) {
    if (Poll()) {
      backoff.Reset();
      heard = std::chrono::steady_clock::now();
    } else {
      if (while_waiting_) while_waiting_();
      if (stall_timeout_.count() > 0) CheckStall(heard);
      if (idle()) {
        backoff.Reset();
        continue;
      }
      // A large push still moving: keep it moving (poll, do not sleep).
      backoff.Wait(/*may_sleep=*/!transport_->SendsInFlight());
    }
  }
}

void PsClient::SetStallTimeout(double seconds, std::function<void()> while_waiting) {
  stall_timeout_ = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(0.0, seconds)));
  while_waiting_ = std::move(while_waiting);
}

void PsClient::CheckStall(std::chrono::steady_clock::time_point since) const {
  const auto silent = std::chrono::steady_clock::now() - since;
  if (silent <= stall_timeout_) return;
  std::string servers;
  for (std::size_t s = 0; s < awaiting_.size(); ++s) {
    if (awaiting_[s] <= 0) continue;
    const int rank = topology_.ServerRank(static_cast<int>(s));
    servers += Concat(servers.empty() ? "" : ", ", "rank ", rank, " (server ", s, ")");
  }
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.1f", std::chrono::duration<double>(silent).count());
  const int rank = transport_->rank();
  throw StallError(Concat("rank ", rank, " (worker ", topology_.WorkerIndex(rank), ") waited ", secs,
                          " s for a reply from ", servers.empty() ? std::string("the servers") : servers,
                          " (--stall-timeout ", std::chrono::duration<double>(stall_timeout_).count(),
                          "); aborting the job. That server is stuck or dead, or (--sync) waits for a stalled worker."));
}

bool PsClient::Poll() {
  bool any = false;
  while (transport_->TryRecv(Transport::kAnySource, kTagPullReply, &message_)) {
    HandlePullReply(message_);
    Answered(message_.source);
    any = true;
  }
  while (transport_->TryRecv(Transport::kAnySource, kTagPushAck, &message_)) {
    HandlePushAck(message_);
    Answered(message_.source);
    any = true;
  }
  return any;
}

void PsClient::Answered(int source) {
  const int s = topology_.ServerIndex(source);
  if (s >= 0 && s < topology_.servers() && awaiting_[static_cast<std::size_t>(s)] > 0) {
    --awaiting_[static_cast<std::size_t>(s)];
  }
}

void PsClient::HandlePullReply(const Message& m) {
  FrameReader note(m.data, "pull reply", m.source);
  auto header = note.Get<FrameHeader>();
  PendingPull* pending = header.request == 0 ? nullptr : FindPull(header.request);
  if (pending == nullptr) throw InputError(Concat("pull reply for unknown request ", header.request));
  const int server = topology_.ServerIndex(m.source);
  if (server < 0 || server >= topology_.servers()) throw InputError(Concat("pull reply from non-server rank ", m.source));
  const Route& route = pending->routes[static_cast<std::size_t>(server)];
  ReplyPlace& place = pending->places[static_cast<std::size_t>(server)];
  // The frame: the message, or (kReplyPlaced) what the server wrote at the
  // place this pull offered it.
  const char* frame = m.data.data();
  std::size_t frame_bytes = m.data.size();
  const bool in_area = header.step == kReplyPlaced;
  if (in_area) {
    const auto written = note.Get<std::uint64_t>();
    if (place.bytes == 0 || written > place.bytes || written < sizeof(FrameHeader)) {
      throw InputError(Concat("pull reply from rank ", m.source, " says it wrote ", written, " bytes into a place of ",
                              place.bytes));
    }
    std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the server's release
    frame = transport_->OwnArea().data + place.offset;
    frame_bytes = static_cast<std::size_t>(written);
    ++placed_replies_;
    server_reads_area_[static_cast<std::size_t>(server)] = true;
  }
  FrameReader in(frame, frame_bytes, "pull reply", m.source);
  header = in.Get<FrameHeader>();
  if (header.request != pending->ticket) {
    throw InputError(Concat("pull reply from rank ", m.source, " is for request ", header.request, ", not ",
                            pending->ticket));
  }
  for (std::uint32_t s = 0; s < header.sections; ++s) {
    const auto sec = in.Get<SectionHeader>();
    if (sec.table >= tables_.size() || sec.n != route.tables[sec.table].n) {
      throw InputError(Concat("pull reply from rank ", m.source, " does not match its request"));
    }
    const std::size_t width = static_cast<std::size_t>(tables_[sec.table].width);
    const Real* src = in.GetArray<Real>(std::size_t{sec.n} * width);
    Real* dst = pending->rows->storage[sec.table].data();
    const TableRoute& tr = route.tables[sec.table];
    if (tr.all) {
      std::memcpy(dst, src, tr.n * width * sizeof(Real));
    } else {
      for (std::size_t i = 0; i < tr.n; ++i) {
        std::memcpy(dst + static_cast<std::size_t>(tr.rows[i]) * width, src + i * width, width * sizeof(Real));
      }
    }
  }
  pulled_bytes_ += frame_bytes;
  if (in_area) transport_->AreaRead(m.source);  // the server may stop polling for it
  if (place.bytes > 0) {  // read (or not used: the server could not reach the area)
    // A reply that came as a message although a place was offered: the
    // server cannot map our area (another PID namespace, say). Offer it
    // none again.
    if (!in_area) server_on_node_[static_cast<std::size_t>(server)] = false;
    transport_->ReleaseInArea(static_cast<std::size_t>(place.offset));
    place = ReplyPlace();
  }
  // The server has read the request's keys before it replied (by message,
  // or with a note after its release fence; our acquire above).
  ReplyPlace& request_place = pending->request_places[static_cast<std::size_t>(server)];
  if (request_place.bytes > 0) {
    std::atomic_thread_fence(std::memory_order_acquire);
    transport_->ReleaseInArea(static_cast<std::size_t>(request_place.offset));
    request_place = ReplyPlace();
  }
  if (--pending->replies_left == 0) pending->ticket = 0;  // back to the pool
}

void PsClient::HandlePushAck(const Message& m) {
  FrameReader in(m.data, "push ack", m.source);
  const auto request = in.Get<std::uint64_t>();
  auto it = std::find_if(pushes_in_flight_.begin(), pushes_in_flight_.end(),
                         [&](const PendingPush& p) { return p.ticket == request; });
  if (it == pushes_in_flight_.end()) throw InputError(Concat("ack for unknown push ", request));
  const int server = topology_.ServerIndex(m.source);
  if (server < 0 || server >= topology_.servers()) throw InputError(Concat("push ack from non-server rank ", m.source));
  // The server has applied the push: a block it read it from is free again
  // (its reads came before its ack; the fence states the order).
  std::atomic_thread_fence(std::memory_order_acquire);
  for (auto b = it->blocks.begin(); b != it->blocks.end(); ++b) {
    if (b->first == server) {
      transport_->ReleaseInArea(b->second);
      it->blocks.erase(b);
      break;
    }
  }
  if (--it->acks_left == 0) pushes_in_flight_.erase(it);
}

}  // namespace recsys
