// MessagingClient: send with retries under one client message id, sync by
// key, and the history it records (see messaging_client.h).
#include "nodes/client/messaging_client.h"

#include <optional>
#include <utility>

namespace wx::client {

MessagingClient::MessagingClient(Runtime& rt, rpc::Router& router, MessagingClientConfig config,
                                 HistoryRecorder* recorder, AccessLink* link)
    : rt_(rt), router_(router), config_(std::move(config)), recorder_(recorder), link_(link), wake_(rt, 1) {
  key_[std::string(kMessagesType)] = 0;
}

uint64_t MessagingClient::last_seq() const {
  auto it = key_.find(std::string(kMessagesType));
  return it == key_.end() ? 0 : it->second;
}

void MessagingClient::complete(uint64_t op, OpKind kind, const OpResult& r) {
  if (recorder_ != nullptr) recorder_->complete(config_.process, rt_.now().ns(), op, kind, r);
}

Task<SendOutcome> MessagingClient::send(uint64_t to, std::string body) {
  std::string cmid = config_.process + "-" + std::to_string(next_cmid_++);
  co_return co_await send_with_id(to, std::move(cmid), std::move(body));
}

Task<SendOutcome> MessagingClient::send_with_id(uint64_t to, std::string client_msg_id, std::string body) {
  ++stats_.sends;
  SendOutcome out;
  out.client_msg_id = client_msg_id;
  const TimePoint give_up = rt_.now() + config_.send_give_up;
  msg::SendRequest req;
  req.set_to_uid(to);
  req.set_client_msg_id(client_msg_id);
  req.set_body(body);
  const SendOp recorded{config_.uid, to, client_msg_id, msg::body_hash(body)};
  while (out.attempts < config_.send_attempts_max && rt_.now() < give_up) {
    if (out.attempts > 0) co_await rt_.sleep(config_.retry_pause);
    ++out.attempts;
    ++stats_.send_attempts;
    const uint64_t op = next_op();
    if (recorder_ != nullptr) recorder_->invoke_send(config_.process, rt_.now().ns(), op, recorded);
    rpc::CallOptions o;
    o.timeout = config_.call_timeout;
    o.ticket = config_.ticket;
    rpc::Result<msg::SendReply> r = co_await call_send(req, o);
    OpResult done;
    if (!r.ok()) {
      out.error = r.status().to_string();
      done.outcome = Outcome::info;
      done.error = out.error;
      complete(op, OpKind::send, done);
      continue;
    }
    if (r->code() == msg::MSG_OK) {
      done.outcome = Outcome::ok;
      done.message_id = r->message_id();
      complete(op, OpKind::send, done);
      ++stats_.sends_ok;
      out.status = SendStatus::ok;
      out.message_id = r->message_id();
      out.seq = r->seq();
      out.error.clear();
      co_return out;
    }
    out.error = std::string(msg::MsgCode_Name(r->code())) + ": " + r->error();
    done.error = out.error;
    if (r->code() == msg::MSG_UNKNOWN) {
      done.outcome = Outcome::info;
      complete(op, OpKind::send, done);
      continue;
    }
    // A definite refusal: retrying the same request cannot change it.
    done.outcome = Outcome::fail;
    complete(op, OpKind::send, done);
    ++stats_.sends_failed;
    out.status = SendStatus::failed;
    co_return out;
  }
  ++stats_.sends_unknown;
  out.status = SendStatus::unknown;
  co_return out;
}

Task<SyncStatus> MessagingClient::sync_page(bool* more) {
  *more = false;
  if (syncing_) co_return SyncStatus::busy;
  syncing_ = true;
  msg::SyncRequest req;
  for (const auto& [type, version] : key_) {
    msg::SyncKeyEntry* e = req.add_key();
    e->set_type(type);
    e->set_version(version);
  }
  req.set_limit(config_.sync_page);
  const uint64_t op = next_op();
  if (recorder_ != nullptr) recorder_->invoke_sync(config_.process, rt_.now().ns(), op, SyncOp{config_.uid, key_});
  rpc::CallOptions o;
  o.timeout = config_.call_timeout;
  o.ticket = config_.ticket;
  rpc::Result<msg::SyncReply> r = co_await call_sync(req, o);
  syncing_ = false;
  OpResult done;
  if (!r.ok() || r->code() == msg::MSG_UNKNOWN) {
    done.outcome = Outcome::info;
    done.error = r.ok() ? r->error() : r.status().to_string();
    complete(op, OpKind::sync, done);
    ++stats_.sync_pages_failed;
    co_return SyncStatus::unknown;
  }
  if (r->code() != msg::MSG_OK) {
    done.outcome = Outcome::fail;
    done.error = std::string(msg::MsgCode_Name(r->code())) + ": " + r->error();
    complete(op, OpKind::sync, done);
    ++stats_.sync_pages_failed;
    co_return SyncStatus::failed;
  }
  OpResult& result = done;
  for (const msg::SyncKeyEntry& e : r->key()) result.key[e.type()] = e.version();
  for (const msg::SyncMessage& m : r->messages()) {
    msg::MessageRecord c;
    c.recipient = config_.uid;
    c.seq = m.seq();
    c.message_id = m.message_id();
    c.sender = m.sender();
    c.client_msg_id = m.client_msg_id();
    c.to_uid = m.to_uid();
    c.group_id = m.group_id();
    c.body_hash = msg::body_hash(m.body());
    result.messages.push_back(c);
    received_.push_back(std::move(c));
    ++stats_.messages_received;
  }
  // The client keeps what the server says; a key never moves backwards here
  // either (the checker judges the server's answer as recorded).
  for (const auto& [type, version] : result.key) {
    uint64_t& mine = key_[type];
    if (version > mine) mine = version;
  }
  done.outcome = Outcome::ok;
  complete(op, OpKind::sync, done);
  ++stats_.sync_pages_ok;
  *more = r->more();
  co_return SyncStatus::ok;
}

Task<SyncStatus> MessagingClient::sync() {
  ++stats_.syncs;
  for (int page = 0; page < config_.sync_pages_max; ++page) {
    bool more = false;
    SyncStatus s = co_await sync_page(&more);
    if (s != SyncStatus::ok || !more) co_return s;
  }
  co_return SyncStatus::ok;
}

Task<rpc::Result<access::ForwardReply>> MessagingClient::call_access(access::ForwardRequest req,
                                                                       rpc::CallOptions o) {
  if (config_.path == ClientPath::long_connection) {
    if (link_ == nullptr) co_return rpc::Status{rpc::StatusCode::internal, "long connection without a link"};
    co_return co_await link_->call(std::move(req), std::move(o));
  }
  req.set_uid(config_.uid);
  co_return co_await router_.call<access::ForwardReply>(std::string(access::kServiceName), access::kRequestMethod,
                                                        req, std::move(o));
}

namespace {
// The access layer's own refusals, as the msg service's codes (definite), or
// a transport-like failure (unknown outcome).
std::optional<msg::MsgCode> definite_code(access::AccessCode c) {
  if (c == access::ACCESS_UNAUTHENTICATED) return msg::MSG_UNAUTHENTICATED;
  if (c == access::ACCESS_INVALID) return msg::MSG_INVALID;
  return std::nullopt;
}
}  // namespace

Task<rpc::Result<msg::SendReply>> MessagingClient::call_send(const msg::SendRequest& req, rpc::CallOptions o) {
  if (config_.path == ClientPath::direct) {
    co_return co_await router_.call<msg::SendReply>(std::string(msg::kServiceName), msg::kSendMethod, req, o);
  }
  access::ForwardRequest f;
  *f.mutable_send() = req;
  rpc::Result<access::ForwardReply> r = co_await call_access(std::move(f), std::move(o));
  if (!r.ok()) co_return r.status();
  if (r->code() == access::ACCESS_OK && r->has_send()) co_return r->send();
  if (std::optional<msg::MsgCode> c = definite_code(r->code())) {
    msg::SendReply refused;
    refused.set_code(*c);
    refused.set_error(r->error());
    co_return refused;
  }
  co_return rpc::Status{rpc::StatusCode::unavailable,
                        std::string(access::AccessCode_Name(r->code())) + ": " + r->error()};
}

Task<rpc::Result<msg::SyncReply>> MessagingClient::call_sync(const msg::SyncRequest& req, rpc::CallOptions o) {
  if (config_.path == ClientPath::direct) {
    co_return co_await router_.call<msg::SyncReply>(std::string(msg::kServiceName), msg::kSyncMethod, req, o);
  }
  access::ForwardRequest f;
  *f.mutable_sync() = req;
  rpc::Result<access::ForwardReply> r = co_await call_access(std::move(f), std::move(o));
  if (!r.ok()) co_return r.status();
  if (r->code() == access::ACCESS_OK && r->has_sync()) co_return r->sync();
  if (std::optional<msg::MsgCode> c = definite_code(r->code())) {
    msg::SyncReply refused;
    refused.set_code(*c);
    refused.set_error(r->error());
    co_return refused;
  }
  co_return rpc::Status{rpc::StatusCode::unavailable,
                        std::string(access::AccessCode_Name(r->code())) + ": " + r->error()};
}

void MessagingClient::on_notify(uint64_t version) {
  ++stats_.notifies;
  if (version <= last_seq() || version <= notified_version_) {
    ++stats_.notifies_stale;  // already held or already due: nothing to do
    return;
  }
  notified_version_ = version;
  (void)wake_.push(true);  // full: a wake-up is already pending (coalesced)
}

void MessagingClient::request_sync() {
  sync_requested_ = true;
  (void)wake_.push(true);
}

Task<void> MessagingClient::notified_sync_loop() {
  for (;;) {
    (void)co_await wake_.pop();
    for (int round = 0; round < kNotifySyncRoundsMax && sync_due(); ++round) {
      if (syncing_) {
        co_await rt_.sleep(config_.notify_busy_pause);
        continue;
      }
      sync_requested_ = false;
      ++stats_.notify_syncs;
      if (co_await sync() != SyncStatus::ok) break;  // the periodic sync covers it
    }
  }
}

void MessagingClient::record_final() {
  if (recorder_ != nullptr) recorder_->final_state(config_.process, rt_.now().ns(), config_.uid, received_, key_);
}

}  // namespace wx::client
