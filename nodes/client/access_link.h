// AccessLink: the client's long connection to the access layer
// (nodes/access/; docs/messaging.md, "Access layer"). Node code.
//
//   * picks an access node of its datacenter, its own (preferred) zone first,
//     then the other zones; a node that failed is suspect for `suspect_for`
//     and tried after the others;
//   * access.Connect with the user's ticket → a session id;
//   * heartbeats every `heartbeat_interval`; a reset connection drops the
//     session at once, `heartbeat_misses_max` missed beats (timeouts) drop it
//     too, ACCESS_NO_SESSION (the node restarted or expired us) drops it; the
//     run loop then connects again — to another zone when ours is dead;
//   * serves the push `client.Notify` on the node's endpoint and hands the
//     version to `on_notify` (payload-less: only "new data, version X");
//   * call(): a send or sync over the session (access.Call).
// `on_connected` runs after every successful connect (the client syncs then:
// whatever was pushed while it had no session is caught up).
// Bounded: one session at a time, one call per request, loops paced by
// heartbeat_interval / reconnect_pause.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nodes/access/access.pb.h"
#include "nodes/access/access_service.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/runtime.h"

namespace wx::client {

struct AccessLinkConfig {
  uint64_t uid = 0;
  std::string ticket;
  std::string datacenter;      // access nodes of this datacenter (empty: any)
  std::string preferred_zone;  // the client's own zone: tried first
  Duration heartbeat_interval = seconds(1);
  Duration heartbeat_timeout = milliseconds(800);
  int heartbeat_misses_max = 3;
  Duration connect_timeout = seconds(1);
  Duration reconnect_pause = milliseconds(200);
  Duration suspect_for = seconds(10);
  // call(): how often it re-checks for a session while waiting for one.
  Duration wait_poll = milliseconds(50);
};

class AccessLink {
 public:
  // Registers client.Notify on `endpoint`: construct before endpoint.start().
  // `directory` and `endpoint` must outlive the link.
  AccessLink(Runtime& rt, rpc::RpcEndpoint& endpoint, const rpc::ServiceDirectory& directory,
             AccessLinkConfig config);

  void set_on_notify(std::function<void(uint64_t version)> f) { on_notify_ = std::move(f); }
  void set_on_connected(std::function<void()> f) { on_connected_ = std::move(f); }
  void set_ticket(std::string t) { config_.ticket = std::move(t); }
  // The user (a client that registered learns its uid then): before run().
  void set_uid(uint64_t uid) { config_.uid = uid; }

  // Keeps the connection until stop(). Spawn once.
  Task<void> run();
  void stop() { stopped_ = true; }
  // Offline (the app in the background, no network): no session, no
  // heartbeats, pushes ignored. Back online: connects again.
  void set_offline(bool offline);
  bool offline() const { return offline_; }

  bool connected() const { return session_ != 0; }
  NodeId node() const { return node_; }
  uint64_t session() const { return session_; }

  // A send or sync over the session; waits (≤ the call's budget) for a
  // session if there is none. A transport error or ACCESS_NO_SESSION drops
  // the session (the run loop reconnects).
  Task<rpc::Result<access::ForwardReply>> call(access::ForwardRequest req, rpc::CallOptions options);

  struct Stats {
    uint64_t connects = 0, connect_failures = 0, refused = 0, drops = 0, heartbeats = 0, heartbeats_missed = 0;
    uint64_t pushes = 0, pushes_ignored = 0;
  };
  const Stats& stats() const { return stats_; }
  // The access nodes in the order they would be tried now.
  std::vector<NodeId> candidates() const;

 private:
  Task<bool> connect_once();
  void drop(bool suspect);
  Task<rpc::Result<std::string>> serve_push(rpc::CallContext ctx, std::string payload);

  Runtime& rt_;
  rpc::RpcEndpoint& endpoint_;
  const rpc::ServiceDirectory& directory_;
  AccessLinkConfig config_;
  std::function<void(uint64_t)> on_notify_;
  std::function<void()> on_connected_;
  NodeId node_{0};
  uint64_t session_ = 0;
  int misses_ = 0;
  bool stopped_ = false;
  bool offline_ = false;
  std::map<NodeId, TimePoint> suspect_until_;
  Stats stats_;
};

}  // namespace wx::client
