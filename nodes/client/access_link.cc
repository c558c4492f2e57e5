// AccessLink: connect, heartbeat, reconnect, pushes (see access_link.h).
#include "nodes/client/access_link.h"

#include <utility>

namespace wx::client {

AccessLink::AccessLink(Runtime& rt, rpc::RpcEndpoint& endpoint, const rpc::ServiceDirectory& directory,
                       AccessLinkConfig config)
    : rt_(rt), endpoint_(endpoint), directory_(directory), config_(std::move(config)) {
  endpoint_.register_raw(access::kPushMethod, [this](rpc::CallContext ctx, std::string payload) {
    return serve_push(std::move(ctx), std::move(payload));
  });
}

std::vector<NodeId> AccessLink::candidates() const {
  std::vector<NodeId> own, others, suspect;
  const TimePoint now = rt_.now();
  for (const rpc::Instance& i : directory_.instances(access::kServiceName)) {
    if (!config_.datacenter.empty() && i.datacenter != config_.datacenter) continue;
    auto s = suspect_until_.find(i.node);
    if (s != suspect_until_.end() && now < s->second) {
      suspect.push_back(i.node);
    } else if (i.zone == config_.preferred_zone) {
      own.push_back(i.node);
    } else {
      others.push_back(i.node);
    }
  }
  own.insert(own.end(), others.begin(), others.end());
  own.insert(own.end(), suspect.begin(), suspect.end());
  return own;
}

void AccessLink::set_offline(bool offline) {
  offline_ = offline;
  if (offline) {
    session_ = 0;
    node_ = NodeId{0};
  }
}

void AccessLink::drop(bool suspect) {
  if (session_ == 0) return;
  ++stats_.drops;
  if (suspect) suspect_until_[node_] = rt_.now() + config_.suspect_for;
  session_ = 0;
  misses_ = 0;
}

Task<bool> AccessLink::connect_once() {
  for (NodeId target : candidates()) {
    if (stopped_ || offline_) co_return false;
    access::ConnectRequest req;
    req.set_uid(config_.uid);
    rpc::CallOptions o;
    o.timeout = config_.connect_timeout;
    o.ticket = config_.ticket;
    rpc::Result<access::ConnectReply> r = co_await endpoint_.call<access::ConnectReply>(target, access::kConnectMethod, req, o);
    if (stopped_ || offline_) co_return false;
    if (!r.ok()) {
      ++stats_.connect_failures;
      suspect_until_[target] = rt_.now() + config_.suspect_for;
      continue;
    }
    if (r->code() != access::ACCESS_OK) {
      // A refused ticket is refused everywhere; anything else: next node.
      ++stats_.refused;
      if (r->code() == access::ACCESS_UNAUTHENTICATED) co_return false;
      continue;
    }
    node_ = target;
    session_ = r->session_id();
    misses_ = 0;
    ++stats_.connects;
    co_return true;
  }
  co_return false;
}

Task<void> AccessLink::run() {
  while (!stopped_) {
    if (offline_) {
      co_await rt_.sleep(config_.heartbeat_interval);
      continue;
    }
    if (session_ == 0) {
      if (!co_await connect_once()) {
        co_await rt_.sleep(config_.reconnect_pause);
        continue;
      }
      if (on_connected_) on_connected_();
    }
    co_await rt_.sleep(config_.heartbeat_interval);
    if (session_ == 0 || offline_ || stopped_) continue;
    const uint64_t session = session_;
    access::HeartbeatRequest req;
    req.set_session_id(session);
    rpc::CallOptions o;
    o.timeout = config_.heartbeat_timeout;
    o.ticket = config_.ticket;
    ++stats_.heartbeats;
    rpc::Result<access::HeartbeatReply> r =
        co_await endpoint_.call<access::HeartbeatReply>(node_, access::kHeartbeatMethod, req, o);
    if (session_ != session) continue;  // dropped or replaced meanwhile
    if (r.ok() && r->code() == access::ACCESS_OK) {
      misses_ = 0;
    } else if (r.ok()) {
      drop(false);  // the node is alive but lost our session: connect again
    } else if (r.status().code == rpc::StatusCode::unavailable) {
      drop(true);  // the connection broke: the node crashed
    } else {
      ++stats_.heartbeats_missed;
      if (++misses_ >= config_.heartbeat_misses_max) drop(true);
    }
  }
}

Task<rpc::Result<access::ForwardReply>> AccessLink::call(access::ForwardRequest req, rpc::CallOptions options) {
  const TimePoint deadline = options.deadline_from(rt_.now());
  while (session_ == 0) {
    if (stopped_ || offline_ || rt_.now() + config_.wait_poll >= deadline) {
      co_return rpc::Status{rpc::StatusCode::unavailable, "no access session"};
    }
    co_await rt_.sleep(config_.wait_poll);
  }
  const uint64_t session = session_;
  const NodeId node = node_;
  req.set_session_id(session);
  options.deadline = deadline;
  options.ticket = config_.ticket;
  rpc::Result<access::ForwardReply> r =
      co_await endpoint_.call<access::ForwardReply>(node, access::kCallMethod, req, options);
  if (session_ == session) {
    if (!r.ok() && r.status().code == rpc::StatusCode::unavailable) drop(true);
    if (r.ok() && r->code() == access::ACCESS_NO_SESSION) drop(false);
  }
  co_return r;
}

Task<rpc::Result<std::string>> AccessLink::serve_push(rpc::CallContext, std::string payload) {
  access::PushRequest req;
  if (!req.ParseFromString(payload)) co_return rpc::Status{rpc::StatusCode::invalid_argument, "bad push"};
  if (offline_ || req.uid() != config_.uid) {
    ++stats_.pushes_ignored;
  } else {
    // Accepted from any session of ours (a stale one's hint is still true).
    ++stats_.pushes;
    if (on_notify_) on_notify_(req.version());
  }
  co_return access::PushReply().SerializeAsString();
}

}  // namespace wx::client
