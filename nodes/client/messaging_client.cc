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
  if (config_.sync_all_types) {
    key_[std::string(kContactsType)] = 0;
    key_[std::string(kAccountType)] = 0;
  }
}

ProfileFields profile_fields(const account::Profile& p) {
  return ProfileFields{{"nickname", p.nickname()}, {"region", p.region()}};
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
  // Contacts: each change is the contact's latest state (increasing version).
  for (const msg::ContactChange& c : r->contacts()) {
    if (c.removed()) {
      contacts_.erase(c.contact_uid());
    } else {
      contacts_.insert(c.contact_uid());
    }
  }
  if (r->has_profile()) profile_ = profile_fields(r->profile());
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
  if (recorder_ == nullptr) return;
  FinalState f;
  f.messages = received_;
  f.key = key_;
  f.has_contacts = config_.sync_all_types;
  if (config_.sync_all_types) {
    f.contacts.assign(contacts_.begin(), contacts_.end());
    f.profile = profile_;
    if (!f.profile) f.profile = ProfileFields{};  // none synced (no account): empty
  }
  recorder_->final_state_full(config_.process, rt_.now().ns(), config_.uid, f);
}

// --- register, login, contacts, profile -------------------------------------------

namespace {
AccountOutcome from_login_code(login::LoginCode c, const std::string& error) {
  AccountOutcome out;
  out.error = std::string(login::LoginCode_Name(c)) + ": " + error;
  switch (c) {
    case login::LOGIN_OK: out.status = AccountStatus::ok; break;
    case login::LOGIN_DENIED: out.status = AccountStatus::denied; break;
    case login::LOGIN_TAKEN: out.status = AccountStatus::taken; break;
    case login::LOGIN_UNKNOWN: out.status = AccountStatus::unknown; break;
    default: out.status = AccountStatus::failed; break;
  }
  return out;
}

// The history's outcome of an account, contacts or profile operation.
Outcome recorded_outcome(AccountStatus status) {
  return status == AccountStatus::ok ? Outcome::ok : status == AccountStatus::unknown ? Outcome::info : Outcome::fail;
}
}  // namespace

Task<rpc::Result<access::ForwardReply>> MessagingClient::call_access_short(access::ForwardRequest req,
                                                                           rpc::CallOptions o) {
  req.set_uid(config_.uid);
  co_return co_await router_.call<access::ForwardReply>(std::string(access::kServiceName), access::kRequestMethod,
                                                        req, std::move(o));
}

template <typename Reply, typename Request, typename Wrap, typename Unwrap>
Task<std::optional<Reply>> MessagingClient::call_login_service(const rpc::MethodSpec& method, const Request& req,
                                                               Wrap wrap, Unwrap unwrap, std::string* error) {
  rpc::CallOptions o;
  o.timeout = config_.call_timeout;
  if (config_.path == ClientPath::direct) {
    rpc::Result<Reply> r = co_await router_.call<Reply>(std::string(login::kServiceName), method, req, o);
    if (r.ok()) co_return std::move(r.value());
    *error = r.status().to_string();
    co_return std::nullopt;
  }
  access::ForwardRequest f;
  wrap(f, req);
  rpc::Result<access::ForwardReply> r = co_await call_access_short(std::move(f), o);
  if (r.ok() && r->code() == access::ACCESS_OK) {
    if (const Reply* reply = unwrap(r.value())) co_return *reply;
  }
  *error = r.ok() ? std::string(access::AccessCode_Name(r->code())) + ": " + r->error() : r.status().to_string();
  co_return std::nullopt;
}

Task<AccountOutcome> MessagingClient::register_account(std::string account_id, std::string password,
                                                       account::Profile profile) {
  uint64_t nonce = 0;
  while (nonce == 0) nonce = rt_.rng().next_u64();
  login::RegisterRequest req;
  req.set_account_id(account_id);
  req.set_password(std::move(password));
  *req.mutable_profile() = std::move(profile);
  req.set_nonce(nonce);
  AccountOutcome out;
  for (int attempt = 0; attempt < config_.account_attempts_max; ++attempt) {
    if (attempt > 0) co_await rt_.sleep(config_.retry_pause);
    const uint64_t op = next_op();
    if (recorder_ != nullptr) {
      recorder_->invoke_register(config_.process, rt_.now().ns(), op, RegisterOp{account_id, nonce});
    }
    std::string error;
    const std::optional<login::RegisterReply> reply = co_await call_login_service<login::RegisterReply>(
        login::kRegisterMethod, req,
        [](access::ForwardRequest& f, const login::RegisterRequest& r) { *f.mutable_register_account() = r; },
        [](const access::ForwardReply& f) { return f.has_register_account() ? &f.register_account() : nullptr; },
        &error);
    OpResult done;
    if (!reply) {
      out.status = AccountStatus::unknown;
      out.error = error;
    } else {
      const int attempts = out.attempts;
      out = from_login_code(reply->code(), reply->error());
      out.attempts = attempts;
      out.uid = reply->uid();
    }
    ++out.attempts;
    done.error = out.error;
    done.outcome = recorded_outcome(out.status);
    if (out.status == AccountStatus::ok) {
      done.uid = out.uid;
      done.error.clear();
    }
    complete(op, OpKind::register_account, done);
    if (out.status != AccountStatus::unknown) break;
  }
  if (out.status == AccountStatus::ok && config_.uid == 0) config_.uid = out.uid;
  co_return out;
}

Task<AccountOutcome> MessagingClient::login(std::string account_id, std::string password) {
  login::LoginRequest req;
  req.set_account_id(std::move(account_id));
  req.set_password(std::move(password));
  AccountOutcome out;
  for (int attempt = 0; attempt < config_.account_attempts_max; ++attempt) {
    if (attempt > 0) co_await rt_.sleep(config_.retry_pause);
    const uint64_t op = next_op();
    if (recorder_ != nullptr) recorder_->invoke_login(config_.process, rt_.now().ns(), op, LoginOp{config_.uid, ""});
    std::string error;
    const std::optional<login::LoginReply> reply = co_await call_login_service<login::LoginReply>(
        login::kLoginMethod, req, [](access::ForwardRequest& f, const login::LoginRequest& r) { *f.mutable_login() = r; },
        [](const access::ForwardReply& f) { return f.has_login() ? &f.login() : nullptr; }, &error);
    OpResult done;
    if (!reply) {
      out.status = AccountStatus::unknown;
      out.error = error;
    } else {
      const int attempts = out.attempts;
      out = from_login_code(reply->code(), reply->error());
      out.attempts = attempts;
      out.uid = reply->uid();
      if (out.status == AccountStatus::ok) {
        config_.uid = reply->uid();
        config_.ticket = reply->ticket();
        if (link_ != nullptr) {
          link_->set_uid(config_.uid);
          link_->set_ticket(config_.ticket);
        }
      }
    }
    ++out.attempts;
    done.error = out.error;
    done.outcome = recorded_outcome(out.status);
    if (out.status == AccountStatus::ok) done.error.clear();
    complete(op, OpKind::login, done);
    if (out.status != AccountStatus::unknown) break;
  }
  co_return out;
}

template <typename Reply, typename Request, typename Wrap, typename Unwrap>
Task<rpc::Result<Reply>> MessagingClient::call_msg_method(const rpc::MethodSpec& method, const Request& req,
                                                          Wrap wrap, Unwrap unwrap, rpc::CallOptions o) {
  if (config_.path == ClientPath::direct) {
    co_return co_await router_.call<Reply>(std::string(msg::kServiceName), method, req, o);
  }
  access::ForwardRequest f;
  wrap(f, req);
  rpc::Result<access::ForwardReply> r = co_await call_access(std::move(f), std::move(o));
  if (!r.ok()) co_return r.status();
  if (r->code() == access::ACCESS_OK) {
    if (const Reply* reply = unwrap(r.value())) co_return *reply;
  }
  if (r->code() == access::ACCESS_UNAUTHENTICATED || r->code() == access::ACCESS_INVALID) {
    Reply refused;
    refused.set_code(r->code() == access::ACCESS_UNAUTHENTICATED ? msg::MSG_UNAUTHENTICATED : msg::MSG_INVALID);
    refused.set_error(r->error());
    co_return refused;
  }
  co_return rpc::Status{rpc::StatusCode::unavailable,
                        std::string(access::AccessCode_Name(r->code())) + ": " + r->error()};
}

Task<rpc::Result<msg::ContactChangeReply>> MessagingClient::call_contact_change(const msg::ContactChangeRequest& req,
                                                                                rpc::CallOptions o) {
  return call_msg_method<msg::ContactChangeReply>(
      msg::kContactChangeMethod, req,
      [](access::ForwardRequest& f, const msg::ContactChangeRequest& r) { *f.mutable_contact_change() = r; },
      [](const access::ForwardReply& f) { return f.has_contact_change() ? &f.contact_change() : nullptr; },
      std::move(o));
}

Task<rpc::Result<msg::SetProfileReply>> MessagingClient::call_set_profile(const msg::SetProfileRequest& req,
                                                                          rpc::CallOptions o) {
  return call_msg_method<msg::SetProfileReply>(
      msg::kSetProfileMethod, req,
      [](access::ForwardRequest& f, const msg::SetProfileRequest& r) { *f.mutable_set_profile() = r; },
      [](const access::ForwardReply& f) { return f.has_set_profile() ? &f.set_profile() : nullptr; }, std::move(o));
}

namespace {
// The msg service's answer to a contact change / profile set as an outcome.
template <typename Reply>
void settle(const rpc::Result<Reply>& r, AccountOutcome* out) {
  if (!r.ok()) {
    out->status = AccountStatus::unknown;
    out->error = r.status().to_string();
    return;
  }
  out->error = r->code() == msg::MSG_OK ? "" : std::string(msg::MsgCode_Name(r->code())) + ": " + r->error();
  if (r->code() == msg::MSG_OK) {
    out->status = AccountStatus::ok;
    out->version = r->version();
    out->changed = r->changed();
  } else if (r->code() == msg::MSG_UNKNOWN) {
    out->status = AccountStatus::unknown;
  } else {
    out->status = AccountStatus::failed;
  }
}
}  // namespace

Task<AccountOutcome> MessagingClient::change_contact(uint64_t contact, bool remove) {
  msg::ContactChangeRequest req;
  req.set_contact_uid(contact);
  req.set_remove(remove);
  AccountOutcome out;
  for (int attempt = 0; attempt < config_.account_attempts_max; ++attempt) {
    if (attempt > 0) co_await rt_.sleep(config_.retry_pause);
    const uint64_t op = next_op();
    if (recorder_ != nullptr) {
      recorder_->invoke_contacts(config_.process, rt_.now().ns(), op,
                                 ContactsOp{config_.uid, remove ? "remove" : "add", contact});
    }
    rpc::CallOptions o;
    o.timeout = config_.call_timeout;
    o.ticket = config_.ticket;
    settle(co_await call_contact_change(req, o), &out);
    ++out.attempts;
    OpResult done;
    done.error = out.error;
    done.outcome = recorded_outcome(out.status);
    done.has_version = out.status == AccountStatus::ok;
    done.version = out.version;
    done.changed = out.changed;
    complete(op, OpKind::contacts, done);
    if (out.status != AccountStatus::unknown) break;
  }
  co_return out;
}

Task<AccountOutcome> MessagingClient::set_profile(account::Profile profile) {
  msg::SetProfileRequest req;
  *req.mutable_profile() = std::move(profile);
  AccountOutcome out;
  for (int attempt = 0; attempt < config_.account_attempts_max; ++attempt) {
    if (attempt > 0) co_await rt_.sleep(config_.retry_pause);
    const uint64_t op = next_op();
    if (recorder_ != nullptr) {
      recorder_->invoke_contacts(config_.process, rt_.now().ns(), op, ContactsOp{config_.uid, "set_profile", 0});
    }
    rpc::CallOptions o;
    o.timeout = config_.call_timeout;
    o.ticket = config_.ticket;
    settle(co_await call_set_profile(req, o), &out);
    ++out.attempts;
    OpResult done;
    done.error = out.error;
    done.outcome = recorded_outcome(out.status);
    done.version = out.version;
    done.changed = out.changed;
    complete(op, OpKind::contacts, done);
    if (out.status != AccountStatus::unknown) break;
  }
  co_return out;
}

}  // namespace wx::client
