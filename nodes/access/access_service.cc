// AccessService: sessions, heartbeats, forwarding and pushes (see
// access_service.h and docs/messaging.md, "Access layer").
#include "nodes/access/access_service.h"

#include <algorithm>
#include <utility>

#include "nodes/logic/login/login_service.h"
#include "nodes/logic/msg/msg_service.h"

namespace wx::access {

AccessService::AccessService(Runtime& rt, AccessServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys),
      endpoint_(rt, config_.server),
      router_(rt, endpoint_, config_.directory, config_.locality, config_.router) {}

AccessService::~AccessService() = default;

void AccessService::start() {
  endpoint_.register_method<ConnectRequest, ConnectReply>(
      kConnectMethod, [this](rpc::CallContext ctx, ConnectRequest req) -> Task<rpc::Result<ConnectReply>> {
        return serve_connect(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<HeartbeatRequest, HeartbeatReply>(
      kHeartbeatMethod, [this](rpc::CallContext ctx, HeartbeatRequest req) -> Task<rpc::Result<HeartbeatReply>> {
        return serve_heartbeat(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ForwardRequest, ForwardReply>(
      kCallMethod, [this](rpc::CallContext ctx, ForwardRequest req) -> Task<rpc::Result<ForwardReply>> {
        return serve_call(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ForwardRequest, ForwardReply>(
      kRequestMethod, [this](rpc::CallContext ctx, ForwardRequest req) -> Task<rpc::Result<ForwardReply>> {
        return serve_request(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<NotifyRequest, NotifyReply>(
      kNotifyMethod, [this](rpc::CallContext ctx, NotifyRequest req) -> Task<rpc::Result<NotifyReply>> {
        return serve_notify(std::move(ctx), std::move(req));
      });
  endpoint_.start();
  rt_.spawn(sweep_loop(), "access-sweep");
}

size_t AccessService::sessions_of(uint64_t uid) const {
  auto it = by_user_.find(uid);
  return it == by_user_.end() ? 0 : it->second.size();
}

bool AccessService::authenticate(const rpc::CallContext& ctx, uint64_t uid, std::string* why) {
  ticket::TicketCheck c = keys_.verify_for_user(ctx.ticket, rt_.now(), uid);
  if (c.ok()) return true;
  ++stats_.unauthenticated;
  *why = "ticket refused at access: " + std::string(ticket::to_string(c.status));
  return false;
}

void AccessService::drop_session(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto u = by_user_.find(it->second.uid);
  if (u != by_user_.end()) {
    std::erase(u->second, id);
    if (u->second.empty()) by_user_.erase(u);
  }
  sessions_.erase(it);
}

Task<rpc::Result<ConnectReply>> AccessService::serve_connect(rpc::CallContext ctx, ConnectRequest req) {
  ConnectReply reply;
  ++stats_.connects;
  std::string why;
  if (req.uid() == 0) {
    ++stats_.connects_refused;
    reply.set_code(ACCESS_INVALID);
    reply.set_error("uid 0");
    co_return reply;
  }
  if (!authenticate(ctx, req.uid(), &why)) {
    ++stats_.connects_refused;
    reply.set_code(ACCESS_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  // One session per (uid, peer): a reconnecting client replaces its old one
  // (so it is never pushed to twice). Past the per-user limit the oldest goes.
  if (auto u = by_user_.find(req.uid()); u != by_user_.end()) {
    const std::vector<uint64_t> ids = u->second;  // oldest first
    size_t left = ids.size();
    for (uint64_t id : ids) {
      if (sessions_.at(id).peer == ctx.peer || left >= kSessionsPerUserMax) {
        ++stats_.sessions_replaced;
        drop_session(id);
        --left;
      }
    }
  }
  if (sessions_.size() >= kSessionsMax) {
    ++stats_.connects_refused;
    reply.set_code(ACCESS_FULL);
    reply.set_error("session table full");
    co_return reply;
  }
  uint64_t id = 0;
  while (id == 0 || sessions_.count(id)) id = rt_.rng().next_u64();
  sessions_[id] = Session{req.uid(), ctx.peer, rt_.now()};
  by_user_[req.uid()].push_back(id);
  reply.set_code(ACCESS_OK);
  reply.set_session_id(id);
  co_return reply;
}

Task<rpc::Result<HeartbeatReply>> AccessService::serve_heartbeat(rpc::CallContext ctx, HeartbeatRequest req) {
  HeartbeatReply reply;
  ++stats_.heartbeats;
  auto it = sessions_.find(req.session_id());
  if (it == sessions_.end() || it->second.peer != ctx.peer) {
    ++stats_.no_session;
    reply.set_code(ACCESS_NO_SESSION);
    co_return reply;
  }
  it->second.last_heard = rt_.now();
  reply.set_code(ACCESS_OK);
  co_return reply;
}

Task<rpc::Result<ForwardReply>> AccessService::serve_call(rpc::CallContext ctx, ForwardRequest req) {
  ForwardReply reply;
  ++stats_.calls;
  auto it = sessions_.find(req.session_id());
  if (it == sessions_.end() || it->second.peer != ctx.peer) {
    ++stats_.no_session;
    reply.set_code(ACCESS_NO_SESSION);
    reply.set_error("no such session here");
    co_return reply;
  }
  // The session's user, not a field of the request: a ticket of another
  // user is refused even over a valid session.
  const uint64_t uid = it->second.uid;
  std::string why;
  if (!authenticate(ctx, uid, &why)) {
    reply.set_code(ACCESS_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  it->second.last_heard = rt_.now();
  co_return co_await forward(std::move(ctx), std::move(req));
}

Task<rpc::Result<ForwardReply>> AccessService::serve_request(rpc::CallContext ctx, ForwardRequest req) {
  ForwardReply reply;
  ++stats_.requests;
  // Register and login are how a user GETS a ticket: the one kind of request
  // forwarded without one (to the login service, which asks for none).
  if (req.has_register_account() || req.has_login()) co_return co_await forward(std::move(ctx), std::move(req));
  if (req.uid() == 0) {
    reply.set_code(ACCESS_INVALID);
    reply.set_error("uid 0");
    co_return reply;
  }
  std::string why;
  if (!authenticate(ctx, req.uid(), &why)) {
    reply.set_code(ACCESS_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  co_return co_await forward(std::move(ctx), std::move(req));
}

Task<ForwardReply> AccessService::forward(rpc::CallContext ctx, ForwardRequest req) {
  ForwardReply reply;
  // Deadline: the caller's, less a margin for our reply; the ticket goes
  // along unchanged so the msg service checks it again.
  rpc::CallOptions o = rpc::CallOptions::downstream(ctx, config_.forward_timeout);
  o.deadline = ctx.deadline - config_.reply_margin;
  std::string service(kMsgServiceName);
  if (config_.shards && config_.shards->multi_datacenter() && req.uid() != 0) {
    if (std::optional<std::string> home = config_.shards->home_of(req.uid())) {
      service += '@';
      service += *home;
    }
  }
  if (req.has_send()) {
    ++stats_.forwarded;
    rpc::Result<msg::SendReply> r = co_await router_.call<msg::SendReply>(service, msg::kSendMethod, req.send(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("msg.Send: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_send() = std::move(r.value());
    co_return reply;
  }
  if (req.has_sync()) {
    ++stats_.forwarded;
    rpc::Result<msg::SyncReply> r = co_await router_.call<msg::SyncReply>(service, msg::kSyncMethod, req.sync(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("msg.Sync: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_sync() = std::move(r.value());
    co_return reply;
  }
  if (req.has_contact_change()) {
    ++stats_.forwarded;
    rpc::Result<msg::ContactChangeReply> r =
        co_await router_.call<msg::ContactChangeReply>(service, msg::kContactChangeMethod, req.contact_change(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("msg.ContactChange: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_contact_change() = std::move(r.value());
    co_return reply;
  }
  if (req.has_set_profile()) {
    ++stats_.forwarded;
    rpc::Result<msg::SetProfileReply> r =
        co_await router_.call<msg::SetProfileReply>(service, msg::kSetProfileMethod, req.set_profile(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("msg.SetProfile: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_set_profile() = std::move(r.value());
    co_return reply;
  }
  const std::string login_service(kLoginServiceName);
  if (req.has_register_account()) {
    ++stats_.forwarded;
    rpc::Result<login::RegisterReply> r = co_await router_.call<login::RegisterReply>(
        login_service, login::kRegisterMethod, req.register_account(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("login.Register: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_register_account() = std::move(r.value());
    co_return reply;
  }
  if (req.has_login()) {
    ++stats_.forwarded;
    rpc::Result<login::LoginReply> r =
        co_await router_.call<login::LoginReply>(login_service, login::kLoginMethod, req.login(), o);
    if (!r.ok()) {
      ++stats_.forward_failed;
      reply.set_code(ACCESS_UNAVAILABLE);
      reply.set_error("login.Login: " + r.status().to_string());
      co_return reply;
    }
    reply.set_code(ACCESS_OK);
    *reply.mutable_login() = std::move(r.value());
    co_return reply;
  }
  reply.set_code(ACCESS_INVALID);
  reply.set_error("no inner request");
  co_return reply;
}

Task<rpc::Result<NotifyReply>> AccessService::serve_notify(rpc::CallContext, NotifyRequest req) {
  NotifyReply reply;
  ++stats_.notifies;
  auto u = by_user_.find(req.uid());
  if (u == by_user_.end()) co_return reply;
  uint32_t n = 0;
  const std::vector<uint64_t> ids = u->second;  // a push may drop a session
  for (uint64_t id : ids) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    const NodeId peer = it->second.peer;
    ++n;
    if (config_.test_drop_push_p > 0 && rt_.rng().bernoulli(config_.test_drop_push_p)) {
      ++stats_.pushes_dropped;
      continue;
    }
    int copies = 1;
    if (config_.test_duplicate_push_p > 0 && rt_.rng().bernoulli(config_.test_duplicate_push_p)) {
      ++stats_.pushes_duplicated;
      copies = 2;
    }
    for (int c = 0; c < copies; ++c) {
      if (config_.on_push) config_.on_push(rt_.node_id(), req.uid(), req.version());
      rt_.spawn(push(id, peer, req.uid(), req.version()), "access-push");
    }
  }
  reply.set_sessions(n);
  co_return reply;
}

Task<void> AccessService::push(uint64_t session_id, NodeId peer, uint64_t uid, uint64_t version) {
  PushRequest req;
  req.set_session_id(session_id);
  req.set_uid(uid);
  req.set_version(version);
  rpc::CallOptions o;
  o.timeout = config_.push_timeout;
  ++stats_.pushes;
  rpc::Result<PushReply> r = co_await endpoint_.call<PushReply>(peer, kPushMethod, req, o);
  if (r.ok()) co_return;
  ++stats_.pushes_failed;
  // The connection to the client broke: the client is gone (it reconnects
  // and syncs if it comes back). A timeout proves nothing; heartbeats decide.
  if (r.status().code == rpc::StatusCode::unavailable) drop_session(session_id);
}

Task<void> AccessService::sweep_loop() {
  for (;;) {
    co_await rt_.sleep(config_.sweep_interval);
    const TimePoint now = rt_.now();
    std::vector<uint64_t> expired;
    for (const auto& [id, s] : sessions_) {
      if (now - s.last_heard > config_.session_timeout) expired.push_back(id);
    }
    for (uint64_t id : expired) {
      ++stats_.sessions_expired;
      drop_session(id);
    }
  }
}

}  // namespace wx::access
