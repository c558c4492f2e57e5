// RpcEndpoint: a node's RPC server and client over its Transport.
//
// One endpoint per node owns the node's receive loop: requests go to the
// server half, responses to pending calls, and a connection reset fails every
// call pending on that peer with `unavailable`. The same code runs in
// simulation and in production; only the Runtime differs.
//
// Server half — the Svrkit shape. Handlers are registered by method name.
// A request that arrives is queued; `workers` coroutines take requests in
// arrival order, charge the method's service cost (Runtime::compute) and run
// the handler. Queueing time — arrival until a worker starts the request — is
// measured for every request: it is the overload signal.
//
// FastReject (on by default): a request is rejected with `overloaded` at once,
// without using a worker, when it arrives while the oldest queued request has
// already waited longer than `fast_reject_queue_time_max`, or when a worker
// picks it up after waiting that long; and a request whose caller's deadline
// has already passed is dropped instead of served. Serving work whose caller
// has given up is how an overloaded server's goodput collapses. With it off
// the server is a plain FIFO and serves everything it queued.
//
// Client half. `call` sends one request and completes with the response, or
// `timeout` at the deadline, or `unavailable` when the connection breaks.
// It never retries: retries and fail-over belong to Router (router.h), which
// only retries idempotent methods. A call never hangs: every pending call has
// a deadline timer, at most kCallTimeoutMax (method.h) away whatever its
// options say. A server serves any positive time budget from the wire (capped
// at kCallTimeoutMax) and drops a zero or negative one unanswered.
//
// Limits: queue_len_max requests queued; pending_calls_max calls in flight.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "nodes/rpc/method.h"
#include "nodes/rpc/status.h"
#include "nodes/runtime/channel.h"
#include "nodes/runtime/runtime.h"
#include "nodes/runtime/transport.h"

namespace wx::rpc {

struct ServerConfig {
  size_t workers = 8;
  size_t queue_len_max = 100'000;
  bool fast_reject = true;
  Duration fast_reject_queue_time_max = milliseconds(20);
  // The overload signal's window: it closes after this long or this many
  // requests, whichever comes first (DAGOR's parameters).
  Duration overload_window = seconds(1);
  size_t overload_window_requests = 2'000;
  // Requests of Dispatch::immediate methods running at once; beyond it they
  // are answered overloaded.
  size_t immediate_in_flight_max = 4'096;
};

struct ClientConfig {
  size_t pending_calls_max = 100'000;
};

// Raw handler: payload bytes in, payload bytes (or a status) out.
using RawHandler = std::function<Task<Result<std::string>>(CallContext ctx, std::string payload)>;

class RpcEndpoint {
 public:
  RpcEndpoint(Runtime& rt, ServerConfig server = {}, ClientConfig client = {});
  RpcEndpoint(const RpcEndpoint&) = delete;
  RpcEndpoint& operator=(const RpcEndpoint&) = delete;
  ~RpcEndpoint();

  // Registers before start(). Throws std::logic_error on a duplicate name.
  void register_raw(const MethodSpec& spec, RawHandler handler);

  // Typed handler: Req and Resp are protobuf messages. A request payload that
  // does not parse is answered with invalid_argument without running `fn`.
  template <class Req, class Resp, class Fn>
  void register_method(const MethodSpec& spec, Fn fn) {
    register_raw(spec, [fn = std::move(fn)](CallContext ctx, std::string payload) -> Task<Result<std::string>> {
      return typed_call<Req, Resp>(fn, std::move(ctx), std::move(payload));
    });
  }

  // Spawns the receive loop and the workers. Call once, from Node::start().
  void start();

  // One call to `target`; see the header comment. Never retries.
  Task<Result<std::string>> call_raw(NodeId target, const MethodSpec& spec, std::string payload,
                                     CallOptions options);

  template <class Resp, class Req>
  Task<Result<Resp>> call(NodeId target, const MethodSpec& spec, const Req& request, CallOptions options) {
    return typed_client_call<Resp>(*this, target, spec, request.SerializeAsString(), std::move(options));
  }

  struct ServerStats {
    uint64_t received = 0, served_ok = 0, served_error = 0;
    uint64_t rejected_on_arrival = 0, rejected_after_queueing = 0, dropped_expired = 0;
    uint64_t rejected_queue_full = 0, unknown_method = 0, malformed = 0;
    uint64_t immediate = 0, rejected_immediate_full = 0;
  };
  struct ClientStats {
    uint64_t calls = 0, ok = 0, timeouts = 0, unavailable = 0, overloaded = 0, other_errors = 0;
    uint64_t late_responses = 0;
  };
  const ServerStats& server_stats() const { return server_stats_; }
  const ClientStats& client_stats() const { return client_stats_; }
  size_t queue_len() const { return queue_.size(); }
  size_t pending_calls() const { return pending_.size(); }
  // Mean queueing time over the last closed window (the overload signal).
  Duration overload_signal() const { return last_window_mean_; }
  const ServerConfig& server_config() const { return server_cfg_; }

 private:
  struct Method {
    MethodSpec spec;
    RawHandler handler;
  };
  struct Queued {
    NodeId peer;
    uint64_t call_id;
    const Method* method;
    TimePoint arrived_at;
    TimePoint deadline;
    uint32_t business_priority, user_priority;
    std::string ticket;
    uint64_t trace_id;
    std::string payload;
  };
  struct Pending {
    NodeId peer;
    TimerId deadline_timer = 0;
    TimerId wake_timer = 0;
    std::coroutine_handle<> waiter;
    std::optional<Result<std::string>> result;
  };
  class CallAwaiter;

  Task<void> receive_loop();
  Task<void> worker_loop();
  // Runs one request (service cost, handler, reply). Shared by the workers
  // and by immediate dispatch.
  Task<void> serve(Queued q, Duration queue_time);
  Task<void> serve_immediate(Queued q);
  void handle_frame(NodeId peer, std::string bytes);
  void reply(NodeId peer, uint64_t call_id, const Result<std::string>& result, Duration queue_time);
  void resolve(uint64_t call_id, Result<std::string> result);
  void fail_pending_to(NodeId peer);
  void record_queue_time(Duration q);
  void count_client_result(const Result<std::string>& r);

  template <class Req, class Resp, class Fn>
  static Task<Result<std::string>> typed_call(const Fn& fn, CallContext ctx, std::string payload) {
    Req req;
    if (!req.ParseFromString(payload)) co_return Status{StatusCode::invalid_argument, "request does not parse"};
    Result<Resp> r = co_await fn(std::move(ctx), std::move(req));
    if (!r.ok()) co_return r.status();
    co_return r.value().SerializeAsString();
  }
  template <class Resp>
  static Task<Result<Resp>> typed_client_call(RpcEndpoint& ep, NodeId target, const MethodSpec& spec,
                                              std::string payload, CallOptions options) {
    Result<std::string> raw = co_await ep.call_raw(target, spec, std::move(payload), std::move(options));
    if (!raw.ok()) co_return raw.status();
    Resp resp;
    if (!resp.ParseFromString(raw.value())) co_return Status{StatusCode::internal, "response does not parse"};
    co_return resp;
  }

  Runtime& rt_;
  ServerConfig server_cfg_;
  ClientConfig client_cfg_;
  std::map<std::string, Method, std::less<>> methods_;
  bool started_ = false;

  // Server queue, FIFO; workers wait on `work_ready_` when it is empty.
  std::deque<Queued> queue_;
  Channel<bool> work_ready_;
  size_t idle_workers_ = 0;
  size_t immediate_in_flight_ = 0;

  // Overload signal window.
  TimePoint window_start_;
  size_t window_count_ = 0;
  int64_t window_sum_ns_ = 0;
  Duration last_window_mean_ = Duration::zero();

  uint64_t next_call_id_ = 1;
  // Calls in flight by call id. Hashed (found three times and erased once
  // per call); never iterated where order could matter: fail_pending_to
  // sorts the ids it resolves.
  std::unordered_map<uint64_t, Pending> pending_;

  ServerStats server_stats_;
  ClientStats client_stats_;
};

}  // namespace wx::rpc
