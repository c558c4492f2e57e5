#include "nodes/rpc/endpoint.h"

#include <algorithm>
#include <stdexcept>

#include "nodes/rpc/rpc.pb.h"

namespace wx::rpc {

namespace {

wire::StatusCode to_wire(StatusCode c) { return static_cast<wire::StatusCode>(static_cast<int>(c)); }

StatusCode from_wire(int c) {
  if (c < 0 || c > static_cast<int>(kStatusCodeMax)) return StatusCode::internal;
  return static_cast<StatusCode>(c);
}

}  // namespace

// Suspends the caller until its Pending entry is resolved. If the caller's
// frame is destroyed first (its node crashed, or an enclosing task was
// dropped), the destructor removes the entry and cancels its timers.
class RpcEndpoint::CallAwaiter {
 public:
  CallAwaiter(RpcEndpoint& ep, uint64_t id) : ep_(ep), id_(id) {}
  CallAwaiter(const CallAwaiter&) = delete;
  CallAwaiter& operator=(const CallAwaiter&) = delete;
  ~CallAwaiter() {
    auto it = ep_.pending_.find(id_);
    if (it == ep_.pending_.end()) return;
    ep_.rt_.cancel(it->second.deadline_timer);
    ep_.rt_.cancel(it->second.wake_timer);
    ep_.pending_.erase(it);
  }
  bool await_ready() const { return ep_.pending_.at(id_).result.has_value(); }
  void await_suspend(std::coroutine_handle<> h) { ep_.pending_.at(id_).waiter = h; }
  Result<std::string> await_resume() {
    auto it = ep_.pending_.find(id_);
    Result<std::string> r = std::move(*it->second.result);
    ep_.rt_.cancel(it->second.deadline_timer);
    ep_.pending_.erase(it);
    return r;
  }

 private:
  RpcEndpoint& ep_;
  uint64_t id_;
};

RpcEndpoint::RpcEndpoint(Runtime& rt, ServerConfig server, ClientConfig client)
    : rt_(rt), server_cfg_(server), client_cfg_(client), work_ready_(rt, server.workers + 1) {
  if (server_cfg_.workers == 0) throw std::invalid_argument("rpc: ServerConfig.workers must be >= 1");
}

RpcEndpoint::~RpcEndpoint() {
  // Coroutines that used this endpoint are destroyed before it (runtime.h);
  // what is left are timers of resolved-but-unconsumed calls.
  for (auto& [id, p] : pending_) {
    rt_.cancel(p.deadline_timer);
    rt_.cancel(p.wake_timer);
  }
}

void RpcEndpoint::register_raw(const MethodSpec& spec, RawHandler handler) {
  if (started_) throw std::logic_error("rpc: register " + spec.name + " after start()");
  if (!methods_.emplace(spec.name, Method{spec, std::move(handler)}).second) {
    throw std::logic_error("rpc: method " + spec.name + " registered twice");
  }
}

void RpcEndpoint::start() {
  if (started_) throw std::logic_error("rpc: start() called twice");
  started_ = true;
  window_start_ = rt_.now();
  rt_.spawn(receive_loop(), "rpc.receive");
  if (!methods_.empty()) {
    for (size_t i = 0; i < server_cfg_.workers; ++i) rt_.spawn(worker_loop(), "rpc.worker");
  }
}

Task<void> RpcEndpoint::receive_loop() {
  Transport& net = rt_.transport();
  for (;;) {
    Inbound in = co_await net.receive();
    if (in.kind == Inbound::Kind::reset) {
      fail_pending_to(in.peer);
      continue;
    }
    handle_frame(in.peer, std::move(in.data));
  }
}

void RpcEndpoint::handle_frame(NodeId peer, std::string bytes) {
  wire::Frame frame;
  if (!frame.ParseFromString(bytes)) {
    ++server_stats_.malformed;
    rt_.warn("rpc: malformed frame ({} bytes) from {}", bytes.size(), to_string(peer));
    return;
  }
  if (frame.has_response()) {
    wire::Response* resp = frame.mutable_response();
    const StatusCode code = from_wire(resp->status());
    if (code == StatusCode::ok) {
      resolve(resp->call_id(), Result<std::string>(std::move(*resp->mutable_payload())));
    } else {
      resolve(resp->call_id(), Status{code, resp->message()});
    }
    return;
  }
  if (!frame.has_request()) {
    ++server_stats_.malformed;
    rt_.warn("rpc: empty frame from {}", to_string(peer));
    return;
  }
  wire::Request* req = frame.mutable_request();
  ++server_stats_.received;
  const TimePoint now = rt_.now();
  auto m = methods_.find(req->method());
  if (m == methods_.end()) {
    ++server_stats_.unknown_method;
    reply(peer, req->call_id(), Status{StatusCode::not_found, "no method " + req->method()}, Duration::zero());
    return;
  }
  if (req->timeout_ns() <= 0) {
    ++server_stats_.dropped_expired;
    return;  // the caller has already given up
  }
  // Any positive budget from the wire is served, at most kCallTimeoutMax of it
  // (no caller of ours waits longer), so the deadline is always finite.
  const TimePoint deadline = now + std::min(nanoseconds(req->timeout_ns()), kCallTimeoutMax);
  if (m->second.spec.dispatch == Dispatch::immediate) {
    if (immediate_in_flight_ >= server_cfg_.immediate_in_flight_max) {
      ++server_stats_.rejected_immediate_full;
      reply(peer, req->call_id(), Status{StatusCode::overloaded, "too many immediate requests"}, Duration::zero());
      return;
    }
    ++server_stats_.immediate;
    ++immediate_in_flight_;
    rt_.spawn(serve_immediate(Queued{peer, req->call_id(), &m->second, now, deadline,
                                     req->business_priority(), req->user_priority(),
                                     std::move(*req->mutable_ticket()), req->trace_id(),
                                     std::move(*req->mutable_payload())}),
              "rpc.immediate");
    return;
  }
  if (server_cfg_.fast_reject && !queue_.empty() &&
      now - queue_.front().arrived_at > server_cfg_.fast_reject_queue_time_max) {
    ++server_stats_.rejected_on_arrival;
    reply(peer, req->call_id(), Status{StatusCode::overloaded, "queueing time over limit"}, Duration::zero());
    return;
  }
  if (queue_.size() >= server_cfg_.queue_len_max) {
    ++server_stats_.rejected_queue_full;
    reply(peer, req->call_id(), Status{StatusCode::overloaded, "queue full"}, Duration::zero());
    return;
  }
  queue_.push_back(Queued{peer, req->call_id(), &m->second, now, deadline,
                          req->business_priority(), req->user_priority(), std::move(*req->mutable_ticket()),
                          req->trace_id(), std::move(*req->mutable_payload())});
  if (idle_workers_ > 0) {
    --idle_workers_;
    (void)work_ready_.push(true);
  }
}

Task<void> RpcEndpoint::worker_loop() {
  for (;;) {
    while (queue_.empty()) {
      ++idle_workers_;
      co_await work_ready_.pop();
    }
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    const TimePoint started = rt_.now();
    const Duration queue_time = started - q.arrived_at;
    record_queue_time(queue_time);
    if (server_cfg_.fast_reject) {
      if (started >= q.deadline) {
        ++server_stats_.dropped_expired;
        continue;
      }
      if (queue_time > server_cfg_.fast_reject_queue_time_max) {
        ++server_stats_.rejected_after_queueing;
        reply(q.peer, q.call_id, Status{StatusCode::overloaded, "queueing time over limit"}, queue_time);
        continue;
      }
    }
    co_await serve(std::move(q), queue_time);
  }
}

Task<void> RpcEndpoint::serve_immediate(Queued q) {
  co_await serve(std::move(q), Duration::zero());
  --immediate_in_flight_;
}

Task<void> RpcEndpoint::serve(Queued q, Duration queue_time) {
  CallContext ctx{q.peer,          q.method->spec.name, q.arrived_at, q.deadline, queue_time, q.business_priority,
                  q.user_priority, std::move(q.ticket), q.trace_id};
  if (q.method->spec.cost > Duration::zero()) co_await rt_.compute(q.method->spec.cost);
  Result<std::string> r = Status{StatusCode::internal, "handler did not run"};
  try {
    r = co_await q.method->handler(std::move(ctx), std::move(q.payload));
  } catch (const std::exception& e) {
    rt_.error("rpc: handler {} threw: {}", q.method->spec.name, e.what());
    r = Status{StatusCode::internal, std::string("handler threw: ") + e.what()};
  }
  if (r.ok()) ++server_stats_.served_ok; else ++server_stats_.served_error;
  reply(q.peer, q.call_id, r, queue_time);
}

void RpcEndpoint::record_queue_time(Duration q) {
  window_sum_ns_ += q.ns();
  ++window_count_;
  const TimePoint now = rt_.now();
  if (window_count_ >= server_cfg_.overload_window_requests || now - window_start_ >= server_cfg_.overload_window) {
    last_window_mean_ = nanoseconds(window_sum_ns_ / static_cast<int64_t>(window_count_));
    window_sum_ns_ = 0;
    window_count_ = 0;
    window_start_ = now;
  }
}

void RpcEndpoint::reply(NodeId peer, uint64_t call_id, const Result<std::string>& result, Duration queue_time) {
  wire::Frame frame;
  wire::Response* resp = frame.mutable_response();
  resp->set_call_id(call_id);
  resp->set_queue_ns(queue_time.ns());
  if (result.ok()) {
    resp->set_status(wire::OK);
    resp->set_payload(result.value());
  } else {
    resp->set_status(to_wire(result.code()));
    resp->set_message(result.status().message);
  }
  SendStatus st = rt_.transport().send(peer, frame.SerializeAsString());
  if (st != SendStatus::ok) rt_.warn("rpc: response to {} not sent: {}", to_string(peer), to_string(st));
}

Task<Result<std::string>> RpcEndpoint::call_raw(NodeId target, const MethodSpec& spec, std::string payload,
                                                CallOptions options) {
  ++client_stats_.calls;
  const TimePoint now = rt_.now();
  const TimePoint deadline = options.deadline_from(now);
  if (deadline <= now) {
    ++client_stats_.timeouts;
    co_return Status{StatusCode::timeout, "deadline already passed"};
  }
  if (pending_.size() >= client_cfg_.pending_calls_max) {
    ++client_stats_.other_errors;
    co_return Status{StatusCode::overloaded, "too many calls in flight on this client"};
  }
  const uint64_t id = next_call_id_++;
  wire::Frame frame;
  wire::Request* req = frame.mutable_request();
  req->set_call_id(id);
  req->set_method(spec.name);
  req->set_timeout_ns((deadline - now).ns());
  req->set_ticket(std::move(options.ticket));
  req->set_business_priority(options.business_priority);
  req->set_user_priority(options.user_priority);
  req->set_trace_id(options.trace_id);
  req->set_payload(std::move(payload));

  Pending& p = pending_[id];
  p.peer = target;
  const SendStatus st = rt_.transport().send(target, frame.SerializeAsString());
  if (st != SendStatus::ok) {
    p.result.emplace(Status{st == SendStatus::frame_too_large ? StatusCode::invalid_argument : StatusCode::unavailable,
                            std::string("send failed: ") + std::string(to_string(st))});
  } else {
    p.deadline_timer = rt_.call_at(deadline, [this, id] {
      auto it = pending_.find(id);
      if (it != pending_.end()) it->second.deadline_timer = 0;  // firing now
      resolve(id, Status{StatusCode::timeout, "deadline exceeded"});
    });
  }
  Result<std::string> r = co_await CallAwaiter(*this, id);
  count_client_result(r);
  co_return r;
}

void RpcEndpoint::count_client_result(const Result<std::string>& r) {
  switch (r.code()) {
    case StatusCode::ok: ++client_stats_.ok; break;
    case StatusCode::timeout: ++client_stats_.timeouts; break;
    case StatusCode::unavailable: ++client_stats_.unavailable; break;
    case StatusCode::overloaded: ++client_stats_.overloaded; break;
    default: ++client_stats_.other_errors; break;
  }
}

void RpcEndpoint::resolve(uint64_t call_id, Result<std::string> result) {
  auto it = pending_.find(call_id);
  if (it == pending_.end() || it->second.result) {
    ++client_stats_.late_responses;  // timed out already, or a duplicate
    return;
  }
  Pending& p = it->second;
  p.result.emplace(std::move(result));
  rt_.cancel(p.deadline_timer);
  p.deadline_timer = 0;
  if (p.waiter) {
    std::coroutine_handle<> h = p.waiter;
    p.wake_timer = rt_.call_at(rt_.now(), [h] { h.resume(); });
  }
}

void RpcEndpoint::fail_pending_to(NodeId peer) {
  std::vector<uint64_t> ids;
  for (const auto& [id, p] : pending_) {
    if (p.peer == peer && !p.result) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());  // call order: each resolve schedules a wake-up
  for (uint64_t id : ids) resolve(id, Status{StatusCode::unavailable, "connection to " + to_string(peer) + " reset"});
}

}  // namespace wx::rpc
