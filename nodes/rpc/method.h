// What describes one RPC method and one call.
//
// MethodSpec is shared by client and server: the name on the wire, whether
// the method is idempotent (only idempotent methods are ever retried or
// failed over), and its service cost — the CPU time a worker spends on it,
// simulated with Runtime::compute. Declare each spec once, next to the
// service's messages, e.g.
//   inline const MethodSpec kEchoMethod{"echo.Echo", Idempotent::yes, microseconds(200)};
//
// CallOptions travel with a call; CallContext is what a handler sees of the
// request. `CallOptions::downstream(ctx)` makes a call from inside a handler
// inherit the caller's deadline, priorities, ticket and trace id — deadlines
// propagate: a downstream call never outlives its upstream caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "nodes/runtime/node.h"
#include "nodes/runtime/time.h"

namespace wx::rpc {

enum class Idempotent : bool { no = false, yes = true };

// How a server runs a method's requests.
//   queued:    through the worker pool, FIFO, with FastReject (the default).
//   immediate: as its own task at arrival, outside the pool and its queue.
//              For short protocol messages that other handlers wait on
//              (e.g. Paxos steps while kv.Put handlers hold every worker
//              until their write commits): queueing them behind those
//              handlers would deadlock. Bounded by
//              ServerConfig::immediate_in_flight_max.
enum class Dispatch : uint8_t { queued, immediate };

struct MethodSpec {
  std::string name;
  Idempotent idempotent = Idempotent::no;
  Duration cost = Duration::zero();  // service cost per request
  Dispatch dispatch = Dispatch::queued;
};

struct CallContext {
  NodeId peer;
  std::string method;
  TimePoint arrived_at;  // local time
  TimePoint deadline;    // local time; arrived_at + the caller's remaining budget
  Duration queue_time;   // arrival until a worker started it
  uint32_t business_priority = 0;
  uint32_t user_priority = 0;
  std::string ticket;
  uint64_t trace_id = 0;
};

// The longest a call may wait for its response, whatever its options say, and
// the largest budget a server accepts from the wire. A bound on every call is
// what makes "a call never hangs" true: the caller always arms a timer.
inline constexpr Duration kCallTimeoutMax = minutes(10);

struct CallOptions {
  Duration timeout = seconds(1);
  // If set, the call's deadline is the earlier of now + timeout and this.
  std::optional<TimePoint> deadline;
  uint32_t business_priority = 0;
  uint32_t user_priority = 0;
  std::string ticket;
  uint64_t trace_id = 0;

  // Options for a call made while serving `ctx`: inherits its deadline,
  // priorities, ticket and trace id. `timeout` may shorten, never extend.
  static CallOptions downstream(const CallContext& ctx, Duration timeout = Duration::max()) {
    CallOptions o;
    o.timeout = timeout;
    o.deadline = ctx.deadline;
    o.business_priority = ctx.business_priority;
    o.user_priority = ctx.user_priority;
    o.ticket = ctx.ticket;
    o.trace_id = ctx.trace_id;
    return o;
  }

  // The absolute local deadline for a call starting at `now`: the earliest of
  // now + timeout, `deadline`, and now + kCallTimeoutMax. Always finite.
  TimePoint deadline_from(TimePoint now) const {
    TimePoint d = now + std::min(timeout, kCallTimeoutMax);
    if (deadline && *deadline < d) d = *deadline;
    return d;
  }
};

}  // namespace wx::rpc
