#include "worker/ps_client.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "common/keys.h"
#include "common/sharding.h"
#include "common/wire.h"

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
}

void PsClient::RouteKeys(const std::vector<Key>& keys, std::vector<Route>* routes) const {
  const int servers = topology_.servers();
  routes->resize(static_cast<std::size_t>(servers));
  for (auto& r : *routes) {
    r.rows.resize(tables_.size());
    for (auto& v : r.rows) v.clear();
  }
  // An empty batch touches nothing, not even the dense blocks: a zero
  // gradient would still advance their optimizer state.
  if (keys.empty()) return;
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    const auto& spec = tables_[t];
    const TableId id = static_cast<TableId>(t);
    if (spec.dense()) {
      for (std::int64_t i = 0; i < spec.dense_rows(); ++i) {
        (*routes)[static_cast<std::size_t>(ShardOf(id, dense_keys_[static_cast<std::size_t>(i)], servers))]
            .rows[t]
            .push_back(static_cast<std::int32_t>(i));
      }
    } else {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        (*routes)[static_cast<std::size_t>(ShardOf(id, keys[i], servers))].rows[t].push_back(static_cast<std::int32_t>(i));
      }
    }
  }
}

PsClient::Ticket PsClient::Pull(const std::vector<Key>& keys, ParamBuffers* rows, bool eval) {
  const Ticket ticket = next_request_++;
  rows->Shape(tables_, keys.size());
  PendingPull& pending = pulls_[ticket];
  pending.rows = rows;
  RouteKeys(keys, &pending.routes);
  for (int s = 0; s < topology_.servers(); ++s) {
    const Route& route = pending.routes[static_cast<std::size_t>(s)];
    FrameHeader header;
    header.request = ticket;
    for (std::size_t t = 0; t < tables_.size(); ++t) header.sections += route.rows[t].empty() ? 0 : 1;
    if (header.sections == 0 && !send_empty_) continue;
    Bytes frame;
    FrameWriter out(&frame);
    out.Put(header);
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const auto& idx = route.rows[t];
      if (idx.empty()) continue;
      out.Put(SectionHeader{static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(idx.size())});
      Key* dst = out.Extend<Key>(idx.size());
      const std::vector<Key>& src = tables_[t].dense() ? dense_keys_ : keys;
      for (std::size_t i = 0; i < idx.size(); ++i) dst[i] = src[static_cast<std::size_t>(idx[i])];
    }
    ++pending.replies_left;
    transport_->Send(topology_.ServerRank(s), eval ? kTagEvalPull : kTagPull, std::move(frame));
  }
  if (pending.replies_left == 0) pulls_.erase(ticket);  // nothing to pull: done at once
  return ticket;
}

void PsClient::Wait(Ticket ticket) {
  WaitUntil([&] { return pulls_.find(ticket) == pulls_.end(); });
}

void PsClient::Push(const std::vector<Key>& keys, const ParamBuffers& grads) {
  const Ticket ticket = next_request_++;
  RouteKeys(keys, &push_routes_);
  int messages = 0;
  for (int s = 0; s < topology_.servers(); ++s) {
    const Route& route = push_routes_[static_cast<std::size_t>(s)];
    FrameHeader header;
    header.request = ticket;
    std::size_t bytes = sizeof(FrameHeader);
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const std::size_t n = route.rows[t].size();
      if (n == 0) continue;
      ++header.sections;
      bytes += sizeof(SectionHeader) + n * sizeof(Key) + ((n * tables_[t].width * sizeof(Real) + 7) & ~std::size_t{7});
    }
    if (header.sections == 0 && !send_empty_) continue;
    Bytes frame;
    frame.reserve(bytes);
    FrameWriter out(&frame);
    out.Put(header);
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const auto& idx = route.rows[t];
      if (idx.empty()) continue;
      const int width = tables_[t].width;
      out.Put(SectionHeader{static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(idx.size())});
      Key* key_dst = out.Extend<Key>(idx.size());
      const std::vector<Key>& src = tables_[t].dense() ? dense_keys_ : keys;
      for (std::size_t i = 0; i < idx.size(); ++i) key_dst[i] = src[static_cast<std::size_t>(idx[i])];
      Real* grad_dst = out.Extend<Real>(idx.size() * width);
      const Real* grad_src = grads.storage[t].data();
      for (std::size_t i = 0; i < idx.size(); ++i) {
        std::memcpy(grad_dst + i * width, grad_src + static_cast<std::size_t>(idx[i]) * width, width * sizeof(Real));
      }
    }
    pushed_bytes_ += frame.size();
    ++messages;
    transport_->Send(topology_.ServerRank(s), kTagPush, std::move(frame));
  }
  if (messages > 0) pushes_in_flight_[ticket] = messages;
}

void PsClient::WaitPushes(int max_in_flight) {
  WaitUntil([&] { return static_cast<int>(pushes_in_flight_.size()) <= max_in_flight; });
}

void PsClient::WaitUntil(const std::function<bool()>& done) {
  Backoff backoff;
  while (!done()) {
    if (Poll()) {
      backoff.Reset();
    } else {
      backoff.Wait();
    }
  }
}

bool PsClient::Poll() {
  bool any = false;
  Message m;
  while (transport_->TryRecv(Transport::kAnySource, kTagPullReply, &m)) {
    HandlePullReply(m);
    any = true;
  }
  while (transport_->TryRecv(Transport::kAnySource, kTagPushAck, &m)) {
    HandlePushAck(m);
    any = true;
  }
  return any;
}

void PsClient::HandlePullReply(const Message& m) {
  FrameReader in(m.data, Concat("pull reply from rank ", m.source));
  const auto header = in.Get<FrameHeader>();
  auto it = pulls_.find(header.request);
  if (it == pulls_.end()) throw InputError(Concat("pull reply for unknown request ", header.request));
  PendingPull& pending = it->second;
  const int server = topology_.ServerIndex(m.source);
  if (server < 0 || server >= topology_.servers()) throw InputError(Concat("pull reply from non-server rank ", m.source));
  const Route& route = pending.routes[static_cast<std::size_t>(server)];
  for (std::uint32_t s = 0; s < header.sections; ++s) {
    const auto sec = in.Get<SectionHeader>();
    if (sec.table >= tables_.size() || sec.n != route.rows[sec.table].size()) {
      throw InputError(Concat("pull reply from rank ", m.source, " does not match its request"));
    }
    const int width = tables_[sec.table].width;
    const Real* src = in.GetArray<Real>(std::size_t{sec.n} * width);
    Real* dst = pending.rows->storage[sec.table].data();
    const auto& idx = route.rows[sec.table];
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::memcpy(dst + static_cast<std::size_t>(idx[i]) * width, src + i * width, width * sizeof(Real));
    }
  }
  pulled_bytes_ += m.data.size();
  if (--pending.replies_left == 0) pulls_.erase(it);
}

void PsClient::HandlePushAck(const Message& m) {
  FrameReader in(m.data, Concat("push ack from rank ", m.source));
  const auto request = in.Get<std::uint64_t>();
  auto it = pushes_in_flight_.find(request);
  if (it == pushes_in_flight_.end()) throw InputError(Concat("ack for unknown push ", request));
  if (--it->second == 0) pushes_in_flight_.erase(it);
}

}  // namespace recsys
