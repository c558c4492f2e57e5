// The logic layer's notify hook: "uid has new data, version X" → every
// access node of the uid's home datacenter (docs/messaging.md, "Access
// layer", notify routing). Header-only on purpose: any logic service (the
// msg service's Send; the group fan-out) includes it and needs no extra
// library — only wx_rpc and wx_proto, which every service links.
//
//   access::notify_user(rt, endpoint, directory, datacenter, uid, version)
//     spawns one background task per access node that calls access.Notify(uid, version) on
//     every instance of service "access" in `datacenter` (all of them when
//     `datacenter` is empty), at most kNotifyFanoutMax, each with
//     kNotifyCallTimeout, no retries. Returns at once; never throws.
//
// Why broadcast and not a uid → access-node registry: a registry is a write
// per connect on the replicated store, is stale after every access crash,
// and is one more thing to be down. A broadcast costs one small RPC per
// access node of one datacenter (bounded), each node answers from its
// in-memory session table, and nothing can be stale. A notify is only a
// hint: a lost one delays delivery until the client's periodic sync (or its
// sync on reconnect), a duplicated one costs at most one empty sync.
//
// The spawned task uses `endpoint` after the caller returns: call this only
// from a node that owns `endpoint` (its tasks die with it on a crash).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/access/access.pb.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/runtime.h"

namespace wx::access {

inline constexpr std::string_view kServiceName = "access";
// Logic → access: the notify hook. Idempotent (a hint); immediate dispatch so
// a busy worker pool never delays a push.
inline const rpc::MethodSpec kNotifyMethod{"access.Notify", rpc::Idempotent::yes, microseconds(10),
                                           rpc::Dispatch::immediate};
// Access nodes notified per call at most (bounds the broadcast).
inline constexpr size_t kNotifyFanoutMax = 64;
inline constexpr Duration kNotifyCallTimeout = milliseconds(500);

namespace detail {
// One access node; no retry (a lost notify is covered by sync).
inline Task<void> notify_one(rpc::RpcEndpoint& endpoint, NodeId target, uint64_t uid, uint64_t version) {
  NotifyRequest req;
  req.set_uid(uid);
  req.set_version(version);
  rpc::CallOptions o;
  o.timeout = kNotifyCallTimeout;
  (void)co_await endpoint.call<NotifyReply>(target, kNotifyMethod, req, o);
}
}  // namespace detail

// The access instances a notify for a user of `datacenter` goes to.
inline std::vector<NodeId> notify_targets(const rpc::ServiceDirectory& directory, std::string_view datacenter) {
  std::vector<NodeId> out;
  for (const rpc::Instance& i : directory.instances(kServiceName)) {
    if (out.size() >= kNotifyFanoutMax) break;
    if (datacenter.empty() || i.datacenter == datacenter) out.push_back(i.node);
  }
  return out;
}

// Fire-and-forget: see the header comment.
inline void notify_user(Runtime& rt, rpc::RpcEndpoint& endpoint, const rpc::ServiceDirectory& directory,
                        std::string_view datacenter, uint64_t uid, uint64_t version) {
  if (uid == 0) return;
  // One task per access node, in parallel: a dead node costs its own
  // timeout, not the others' latency.
  for (NodeId t : notify_targets(directory, datacenter)) {
    rt.spawn(detail::notify_one(endpoint, t, uid, version), "access-notify");
  }
}

}  // namespace wx::access
