// AccessService: the access layer (ARCHITECTURE §4; docs/messaging.md,
// "Access layer"). A stateless role (`access`, one or more per zone) between
// clients and the logic layer. Every method checks the ticket (the RPC
// envelope's, KeyRing::verify_for_user) BEFORE anything is forwarded.
//
//   Long connection:
//     access.Connect(uid)        ticket must be uid's → a session {uid, peer
//                                node, last heard}; one per (uid, peer): a
//                                reconnect replaces the old one.
//     access.Heartbeat(session)  refreshes the session; the reply is the
//                                server's beat. A session not heard from for
//                                `session_timeout` is dropped by the sweeper.
//     access.Call(session, send|sync)  the ticket must be the session user's;
//                                forwarded to the msg service (zone-aware
//                                rpc::Router, ticket carried downstream so
//                                logic checks it again).
//     push client.Notify(session, uid, version) to the session's peer — no
//                                payload, only "new data, version X".
//   Short connection:
//     access.Request(uid, send|sync|contact_change|set_profile)  one request,
//                                one response, no session; ticket must be
//                                uid's; forwarded likewise (to msg).
//     access.Request(register_account|login)  NO ticket (this is how a user
//                                gets one), uid may be 0; forwarded to the
//                                login service. (access.Call forwards them
//                                too, but a session already needs a ticket.)
//   Logic → access:
//     access.Notify(uid, version) (nodes/access/notify.h): pushes to every
//                                session of uid held HERE (none: a no-op).
//
// Every method is Dispatch::immediate (a proxy waits on logic; it must not
// hold a worker pool hostage) and bounded: kSessionsMax sessions,
// kSessionsPerUserMax per user, the RPC layer's immediate_in_flight_max.
// Sessions live in memory only: a crash drops them all, clients notice by
// heartbeat (reset or timeout) and reconnect, then sync.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/access/access.pb.h"
#include "nodes/access/notify.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/storage/shard/shard_map.h"
#include "nodes/runtime/node.h"

namespace wx::access {

inline const rpc::MethodSpec kConnectMethod{"access.Connect", rpc::Idempotent::no, microseconds(20),
                                            rpc::Dispatch::immediate};
inline const rpc::MethodSpec kHeartbeatMethod{"access.Heartbeat", rpc::Idempotent::yes, microseconds(5),
                                              rpc::Dispatch::immediate};
inline const rpc::MethodSpec kCallMethod{"access.Call", rpc::Idempotent::yes, microseconds(20),
                                         rpc::Dispatch::immediate};
inline const rpc::MethodSpec kRequestMethod{"access.Request", rpc::Idempotent::yes, microseconds(20),
                                            rpc::Dispatch::immediate};
// Served by the CLIENT (nodes/client/access_link.h): the push.
inline const rpc::MethodSpec kPushMethod{"client.Notify", rpc::Idempotent::yes, microseconds(5),
                                         rpc::Dispatch::immediate};

inline constexpr size_t kSessionsMax = 100'000;
inline constexpr size_t kSessionsPerUserMax = 8;  // devices of one user on one node
inline constexpr std::string_view kMsgServiceName = "msg";
inline constexpr std::string_view kLoginServiceName = "login";

struct AccessServiceConfig {
  rpc::ServiceDirectory directory;  // filled by make_node (msg instances)
  rpc::Locality locality;           // filled by make_node
  // Filled by make_node. With users homed in several datacenters, a user's
  // requests go to the msg instances of the user's HOME datacenter
  // ("msg@<dc>", docs/multi-dc.md "Forwarding"); null or one datacenter:
  // any msg instance, nearest first.
  std::shared_ptr<const shard::ShardMap> shards;
  ticket::KeyRingConfig keys;       // the ticket keys (from the template)
  rpc::ServerConfig server;
  rpc::RouterConfig router;
  // A session not heard from (heartbeat or call) for this long is dropped.
  Duration session_timeout = seconds(4);
  Duration sweep_interval = milliseconds(250);
  // A forwarded call's budget: the caller's deadline minus reply_margin,
  // at most forward_timeout.
  Duration forward_timeout = seconds(3);
  Duration reply_margin = milliseconds(30);
  Duration push_timeout = milliseconds(500);

  // TEST ONLY — faults on the push path, drawn from the node's rng: a push
  // is dropped (never sent) with test_drop_push_p, sent twice with
  // test_duplicate_push_p. on_push is called just before each push is sent
  // (a test crashes the node "mid-push" from it).
  double test_drop_push_p = 0.0;
  double test_duplicate_push_p = 0.0;
  std::function<void(NodeId self, uint64_t uid, uint64_t version)> on_push;
};

struct AccessServiceStats {
  uint64_t connects = 0, connects_refused = 0, heartbeats = 0, no_session = 0;
  uint64_t sessions_expired = 0, sessions_replaced = 0;
  uint64_t calls = 0, requests = 0, forwarded = 0, forward_failed = 0, unauthenticated = 0;
  uint64_t notifies = 0, pushes = 0, pushes_failed = 0, pushes_dropped = 0, pushes_duplicated = 0;
};

class AccessService final : public Node {
 public:
  AccessService(Runtime& rt, AccessServiceConfig config);
  ~AccessService() override;
  void start() override;
  std::string_view kind() const override { return "access"; }

  const AccessServiceStats& stats() const { return stats_; }
  size_t sessions() const { return sessions_.size(); }
  // Sessions held for `uid` on this node.
  size_t sessions_of(uint64_t uid) const;

 private:
  struct Session {
    uint64_t uid = 0;
    NodeId peer;
    TimePoint last_heard;
  };
  // The ticket's check for `uid`; counts and explains a refusal.
  bool authenticate(const rpc::CallContext& ctx, uint64_t uid, std::string* why);
  void drop_session(uint64_t id);
  Task<rpc::Result<ConnectReply>> serve_connect(rpc::CallContext ctx, ConnectRequest req);
  Task<rpc::Result<HeartbeatReply>> serve_heartbeat(rpc::CallContext ctx, HeartbeatRequest req);
  Task<rpc::Result<ForwardReply>> serve_call(rpc::CallContext ctx, ForwardRequest req);
  Task<rpc::Result<ForwardReply>> serve_request(rpc::CallContext ctx, ForwardRequest req);
  Task<rpc::Result<NotifyReply>> serve_notify(rpc::CallContext ctx, NotifyRequest req);
  Task<ForwardReply> forward(rpc::CallContext ctx, ForwardRequest req);
  Task<void> push(uint64_t session_id, NodeId peer, uint64_t uid, uint64_t version);
  Task<void> sweep_loop();

  Runtime& rt_;
  AccessServiceConfig config_;
  ticket::KeyRing keys_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  std::map<uint64_t, Session> sessions_;                // session id → session
  std::map<uint64_t, std::vector<uint64_t>> by_user_;  // uid → session ids, oldest first
  AccessServiceStats stats_;
};

}  // namespace wx::access
