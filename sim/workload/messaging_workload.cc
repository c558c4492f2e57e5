// Simulated users, the final-state reader and the history log of the
// messaging workload (see messaging_workload.h).
#include "sim/workload/messaging_workload.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
#include "nodes/storage/account/account_service.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

cm::MessageCopy to_copy(const msg::MessageRecord& m) {
  cm::MessageCopy c;
  c.recipient = m.recipient;
  c.seq = m.seq;
  c.message_id = m.message_id;
  c.sender = m.sender;
  c.client_msg_id = m.client_msg_id;
  c.to = cm::Conversation{cm::ConversationKind::user, m.to_uid};
  c.body_hash = m.body_hash;
  return c;
}

namespace {
std::vector<cm::MessageCopy> to_copies(const std::vector<msg::MessageRecord>& v) {
  std::vector<cm::MessageCopy> out;
  out.reserve(v.size());
  for (const msg::MessageRecord& m : v) out.push_back(to_copy(m));
  return out;
}
}  // namespace

// The kernel's time, not the client's: one clock for the whole history.
void HistoryLog::invoke_send(const std::string& process, int64_t, uint64_t op_id, const client::SendOp& op) {
  history_.push_back(cm::Event{
      sim_.now().ns(), process,
      cm::Invoke{op_id, cm::SendRequest{op.user, cm::Conversation{cm::ConversationKind::user, op.to},
                                        op.client_msg_id, op.body_hash}}});
}

void HistoryLog::invoke_sync(const std::string& process, int64_t, uint64_t op_id, const client::SyncOp& op) {
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::Invoke{op_id, cm::SyncRequest{op.user, op.key}}});
}

void HistoryLog::complete(const std::string& process, int64_t, uint64_t op_id, client::OpKind kind,
                          const client::OpResult& r) {
  cm::Completion c;
  c.op_id = op_id;
  switch (kind) {
    case client::OpKind::send: c.op = cm::OpKind::send; break;
    case client::OpKind::sync: c.op = cm::OpKind::sync; break;
    case client::OpKind::login: c.op = cm::OpKind::login; break;
    case client::OpKind::contacts: c.op = cm::OpKind::contacts; break;
    case client::OpKind::register_account: c.op = cm::OpKind::register_account; break;
  }
  switch (r.outcome) {
    case client::Outcome::ok:
      c.outcome = cm::Outcome::ok;
      switch (kind) {
        case client::OpKind::send: c.result = cm::Result{cm::SendResult{r.message_id}}; break;
        case client::OpKind::sync: c.result = cm::Result{cm::SyncResult{r.key, to_copies(r.messages)}}; break;
        case client::OpKind::login: c.result = cm::Result{cm::LoginResult{}}; break;
        case client::OpKind::contacts: {
          cm::ContactsResult cr;
          if (r.has_version) {
            cr.version = r.version;
            cr.changed = r.changed;
          }
          c.result = cm::Result{cr};
          break;
        }
        case client::OpKind::register_account: c.result = cm::Result{cm::RegisterResult{r.uid}}; break;
      }
      break;
    case client::Outcome::fail:
      c.outcome = cm::Outcome::fail;
      c.error = r.error;
      break;
    case client::Outcome::info:
      c.outcome = cm::Outcome::info;
      c.error = r.error;
      break;
  }
  history_.push_back(cm::Event{sim_.now().ns(), process, std::move(c)});
}

void HistoryLog::final_state(const std::string& process, int64_t, uint64_t user,
                             const std::vector<msg::MessageRecord>& messages, const client::SyncKey& key) {
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::ClientFinal{user, to_copies(messages), key, std::nullopt, std::nullopt}});
}

void HistoryLog::invoke_login(const std::string& process, int64_t, uint64_t op_id, const client::LoginOp& op) {
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::Invoke{op_id, cm::LoginRequest{op.user, op.device}}});
}

void HistoryLog::invoke_contacts(const std::string& process, int64_t, uint64_t op_id, const client::ContactsOp& op) {
  cm::ContactsRequest r{op.user, op.action, std::nullopt};
  if (op.contact != 0) r.contact = op.contact;
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::Invoke{op_id, std::move(r)}});
}

void HistoryLog::invoke_register(const std::string& process, int64_t, uint64_t op_id, const client::RegisterOp& op) {
  history_.push_back(
      cm::Event{sim_.now().ns(), process, cm::Invoke{op_id, cm::RegisterRequest{op.account_id, op.nonce}}});
}

void HistoryLog::final_state_full(const std::string& process, int64_t, uint64_t user,
                                  const client::FinalState& state) {
  cm::ClientFinal f{user, to_copies(state.messages), state.key, std::nullopt, std::nullopt};
  if (state.has_contacts) {
    f.contacts = state.contacts;
    f.profile = state.profile;
  }
  history_.push_back(cm::Event{sim_.now().ns(), process, std::move(f)});
}

void HistoryLog::server_final(const std::string& process, uint64_t user,
                              const std::vector<msg::MessageRecord>& inbox, const client::SyncKey& versions,
                              std::optional<std::vector<uint64_t>> contacts,
                              std::optional<client::ProfileFields> profile) {
  history_.push_back(cm::Event{sim_.now().ns(), process,
                               cm::ServerFinal{user, to_copies(inbox), versions, std::move(contacts),
                                               std::move(profile)}});
}

std::function<void(NodeId, const msg::AckRecord&)> HistoryLog::ack_observer() {
  return [this](NodeId server, const msg::AckRecord& a) {
    cm::SendAck ack;
    ack.message_id = a.message_id;
    ack.sender = a.sender;
    ack.client_msg_id = a.client_msg_id;
    ack.to = cm::Conversation{cm::ConversationKind::user, a.to_uid};
    ack.recipients.push_back(cm::RecipientSeq{a.recipient, a.seq});
    history_.push_back(cm::Event{sim_.now().ns(), "msg-" + std::to_string(server.value), std::move(ack)});
  };
}

// --- SimUser --------------------------------------------------------------------

namespace {
std::unique_ptr<client::AccessLink> make_link(Runtime& rt, rpc::RpcEndpoint& endpoint,
                                              const rpc::ServiceDirectory& directory,
                                              const client::MessagingClientConfig& config,
                                              client::AccessLinkConfig link) {
  if (config.path != client::ClientPath::long_connection) return nullptr;
  return std::make_unique<client::AccessLink>(rt, endpoint, directory, std::move(link));
}
// Short connections: one attempt per access.Request. The access node's own
// router already fails over between msg instances inside the budget; a
// second split of the budget at the client would leave each msg attempt too
// little time. The client retries sends itself (same client message id).
rpc::RouterConfig router_config(const client::MessagingClientConfig& config) {
  rpc::RouterConfig rc;
  if (config.path == client::ClientPath::short_connection) rc.attempts_max = 1;
  return rc;
}
}  // namespace

SimUser::SimUser(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
                 client::MessagingClientConfig config, client::AccessLinkConfig link,
                 std::vector<uint64_t> contacts, Duration send_mean, Duration sync_interval,
                 client::HistoryRecorder* recorder)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality), router_config(config)),
      link_(make_link(rt, endpoint_, directory, config, std::move(link))),
      client_(rt, router_, std::move(config), recorder, link_.get()),
      contacts_(std::move(contacts)),
      send_mean_(send_mean),
      sync_interval_(sync_interval) {}

void SimUser::start() {
  if (link_) {
    // After stop_traffic() no new notify-driven sync starts (the final
    // phase's syncs must be the last operations).
    link_->set_on_notify([this](uint64_t version) {
      if (!stopped_) client_.on_notify(version);
    });
    link_->set_on_connected([this] {
      if (!stopped_) client_.request_sync();
    });
  }
  endpoint_.start();
  if (table_) {
    ready_ = false;
    rt_.spawn(setup_loop(), "user-setup");  // register, log in, then traffic
    return;
  }
  start_traffic();
}

void SimUser::start_traffic() {
  if (link_) {
    rt_.spawn(link_->run(), "user-link");
    rt_.spawn(client_.notified_sync_loop(), "user-notified-sync");
  }
  if (!contacts_.empty()) rt_.spawn(send_loop(), "user-send");
  rt_.spawn(sync_loop(), "user-sync");
  if (table_ && contact_change_mean_ > Duration::zero()) rt_.spawn(contacts_loop(), "user-contacts");
  if (table_ && profile_change_mean_ > Duration::zero()) rt_.spawn(profile_loop(), "user-profile");
}

Task<void> SimUser::profile_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(profile_change_mean_));
    if (stopped_) break;
    if (offline_) continue;
    account::Profile p;
    p.set_nickname("user " + std::to_string(index_) + " v" + std::to_string(++profile_changes_));
    p.set_region("r" + std::to_string(index_ % 7));
    changing_ = true;
    (void)co_await client_.set_profile(std::move(p));
    changing_ = false;
  }
}

void SimUser::set_registration(std::shared_ptr<RegisteredUsers> table, size_t index, Duration contact_change_mean,
                               Duration register_after, Duration register_spread, Duration profile_change_mean) {
  profile_change_mean_ = profile_change_mean;
  table_ = std::move(table);
  index_ = index;
  contact_change_mean_ = contact_change_mean;
  register_after_ = register_after;
  register_spread_ = register_spread;
}

uint64_t SimUser::resolve(uint64_t contact) const {
  if (!table_) return contact;
  return contact < table_->uid.size() ? table_->uid[contact] : 0;
}

Task<void> SimUser::setup_loop() {
  setting_up_ = true;
  co_await rt_.sleep(register_after_ + nanoseconds(static_cast<int64_t>(rt_.rng().uniform(
                                           static_cast<uint64_t>(std::max<int64_t>(register_spread_.ns(), 1))))));
  const std::string account_id = "wxuser" + std::to_string(index_);
  const std::string password = "secret-" + std::to_string(index_);
  account::Profile profile;
  profile.set_nickname("user " + std::to_string(index_));
  profile.set_region("r" + std::to_string(index_ % 7));
  // Bounded: a registration that never settles leaves the user idle (it
  // records no final state: it has no uid).
  for (int round = 0; round < kFinalSyncRoundsMax && !stopped_; ++round) {
    if (client_.uid() == 0) {
      client::AccountOutcome r = co_await client_.register_account(account_id, password, profile);
      if (r.status != client::AccountStatus::ok) {
        co_await rt_.sleep(milliseconds(500));
        continue;
      }
      table_->uid[index_] = r.uid;
    }
    client::AccountOutcome l = co_await client_.login(account_id, password);
    if (l.status != client::AccountStatus::ok) {
      co_await rt_.sleep(milliseconds(500));
      continue;
    }
    table_->ticket[index_] = client_.ticket();
    ready_ = true;
    setting_up_ = false;
    start_traffic();
    co_return;
  }
  setting_up_ = false;
}

Task<void> SimUser::contacts_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(contact_change_mean_));
    if (stopped_) break;
    if (offline_ || table_->uid.size() < 2) continue;
    size_t other = rt_.rng().uniform(table_->uid.size() - 1);
    if (other >= index_) ++other;  // anyone but oneself
    const uint64_t uid = table_->uid[other];
    if (uid == 0) continue;  // not registered yet
    changing_ = true;
    (void)co_await client_.change_contact(uid, client_.contacts().count(uid) != 0);
    changing_ = false;
  }
}

Task<void> SimUser::send_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(send_mean_));
    if (stopped_) break;
    if (offline_) continue;
    const uint64_t to = resolve(contacts_[rt_.rng().uniform(contacts_.size())]);
    if (to == 0) continue;  // the peer has not registered yet
    std::string body = "hello " + std::to_string(to) + " #" + std::to_string(++body_counter_) + " from " +
                       std::to_string(client_.uid());
    sending_ = true;
    (void)co_await client_.send(to, std::move(body));
    sending_ = false;
  }
}

Task<void> SimUser::sync_loop() {
  // Spread the users' syncs over the interval.
  co_await rt_.sleep(nanoseconds(static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(sync_interval_.ns())))));
  while (!stopped_) {
    if (!offline_) (void)co_await client_.sync();
    co_await rt_.sleep(sync_interval_);
  }
}

void SimUser::set_offline(bool offline) {
  offline_ = offline;
  if (link_) link_->set_offline(offline);
}

void SimUser::final_sync() {
  if (!ready_) {  // never registered / logged in: nothing to sync
    final_done_ = true;
    return;
  }
  rt_.spawn(final_loop(), "user-final");
}

Task<void> SimUser::final_loop() {
  while (client_.syncing()) co_await rt_.sleep(milliseconds(50));
  // Sync until a whole sync succeeds and brings nothing new.
  for (int round = 0; round < kFinalSyncRoundsMax; ++round) {
    const size_t before = client_.received().size();
    client::SyncStatus s = co_await client_.sync();
    if (s == client::SyncStatus::ok && client_.received().size() == before) break;
    if (s != client::SyncStatus::ok) co_await rt_.sleep(milliseconds(500));
  }
  if (client_.uid() != 0) client_.record_final();  // a user that never registered holds nothing
  final_done_ = true;
}

// --- ServerReader ------------------------------------------------------------------

ServerReader::ServerReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
                           std::vector<uint64_t> uids, HistoryLog* recorder,
                           std::function<std::string(uint64_t uid)> ticket_for)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      uids_(std::move(uids)),
      recorder_(recorder),
      ticket_for_(std::move(ticket_for)) {}

void ServerReader::start() { endpoint_.start(); }

void ServerReader::set_all_types(bool all_types, std::shared_ptr<RegisteredUsers> table) {
  all_types_ = all_types;
  table_ = std::move(table);
}

void ServerReader::read_all() { rt_.spawn(read_loop(), "reader"); }

Task<void> ServerReader::read_loop() {
  std::map<uint64_t, std::string> table_tickets;  // register_users: the users' own tickets
  if (table_) {
    uids_.clear();
    for (size_t i = 0; i < table_->uid.size(); ++i) {
      if (table_->uid[i] == 0 || table_->ticket[i].empty()) continue;
      uids_.push_back(table_->uid[i]);
      table_tickets[table_->uid[i]] = table_->ticket[i];
    }
  }
  auto ticket = [&](uint64_t uid) -> std::string {
    if (table_) return table_tickets[uid];
    return ticket_for_ ? ticket_for_(uid) : std::string();
  };
  for (uint64_t uid : uids_) {
    std::vector<msg::MessageRecord> inbox;
    uint64_t after = 0;
    int pages = 0;
    int failures = 0;
    while (pages < kReaderPagesMax) {
      inbox::RangeRequest req;
      req.set_uid(uid);
      req.set_after_seq(after);
      req.set_limit(inbox::kRangeMessagesMax);
      rpc::CallOptions o;
      o.timeout = seconds(3);
      o.ticket = ticket(uid);
      rpc::Result<inbox::RangeReply> r =
          co_await router_.call<inbox::RangeReply>("inbox", inbox::kRangeMethod, req, o);
      if (!r.ok() || r->code() != inbox::INBOX_OK) {
        if (++failures > 100) {
          failed_ = true;
          done_ = true;
          co_return;
        }
        co_await rt_.sleep(milliseconds(200));
        continue;
      }
      ++pages;
      for (const inbox::InboxMessage& m : r->messages()) {
        std::optional<msg::MessageRecord> c = msg::decode_stored(uid, m.seq(), m.message());
        if (!c) {
          rt_.error("reader: inbox {} seq {} does not parse", uid, m.seq());
          failed_ = true;
          continue;
        }
        inbox.push_back(std::move(*c));
        after = std::max(after, m.seq());
      }
      if (r->messages_size() < static_cast<int>(inbox::kRangeMessagesMax)) break;
    }
    // What a fully synced client's key says: the last seq delivered.
    client::SyncKey versions{{std::string(cm::kMessagesType), after}};
    if (!all_types_) {
      recorder_->server_final("reader", uid, inbox, versions);
      continue;
    }
    // The contacts (a snapshot with its version) and the profile.
    std::optional<contacts::ListContactsReply> list;
    std::optional<account::ProfileReply> prof;
    for (int attempt = 0; attempt < 100 && (!list || !prof); ++attempt) {
      if (attempt > 0) co_await rt_.sleep(milliseconds(200));
      rpc::CallOptions o;
      o.timeout = seconds(3);
      o.ticket = ticket(uid);
      if (!list) {
        contacts::ListContactsRequest lr;
        lr.set_uid(uid);
        rpc::Result<contacts::ListContactsReply> r =
            co_await router_.call<contacts::ListContactsReply>("contacts", contacts::kListContactsMethod, lr, o);
        if (r.ok() && r->code() == contacts::CONTACTS_OK) list = std::move(r.value());
      }
      if (!prof) {
        account::GetProfileRequest pr;
        pr.set_uid(uid);
        rpc::Result<account::ProfileReply> r =
            co_await router_.call<account::ProfileReply>("account", account::kGetProfileMethod, pr, o);
        if (r.ok() && (r->code() == account::PROFILE_OK || r->code() == account::PROFILE_NOT_FOUND)) {
          prof = std::move(r.value());
        }
      }
    }
    if (!list || !prof) {
      failed_ = true;
      done_ = true;
      co_return;
    }
    versions[std::string(client::kContactsType)] = list->version();
    versions[std::string(client::kAccountType)] = prof->code() == account::PROFILE_OK ? prof->version() : 0;
    client::ProfileFields fields;
    if (prof->code() == account::PROFILE_OK) fields = client::profile_fields(prof->profile());
    recorder_->server_final("reader", uid, inbox, versions,
                            std::vector<uint64_t>(list->contact_uids().begin(), list->contact_uids().end()),
                            std::move(fields));
  }
  done_ = true;
}

// --- MessagingWorkload ---------------------------------------------------------------

MessagingWorkload::MessagingWorkload(Simulation& sim, SimDeployment& deployment, MessagingWorkloadConfig config,
                                     HistoryLog& log)
    : sim_(sim), deployment_(deployment), config_(std::move(config)) {
  if (config_.users == 0 || config_.users > kWorkloadUsersMax) {
    throw std::invalid_argument("workload: users must be 1.." + std::to_string(kWorkloadUsersMax));
  }
  const size_t contacts_n = std::min({config_.contacts_per_user, config_.users - 1, kContactsPerUserMax});
  for (size_t i = 0; i < config_.users; ++i) uids_.push_back(config_.uid_base + i);

  Rng rng = sim.derive_rng("msg-workload-contacts");
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  if (config_.path == UserPath::automatic) {
    config_.path = directory.instances(access::kServiceName).empty() ? UserPath::direct : UserPath::long_connection;
  }
  const client::ClientPath path = config_.path == UserPath::direct            ? client::ClientPath::direct
                                  : config_.path == UserPath::short_connection ? client::ClientPath::short_connection
                                                                               : client::ClientPath::long_connection;
  std::vector<std::string> zones;  // the access zones users prefer, round robin
  for (const deploy::DatacenterSpec& dc : deployment.deployment().spec().datacenters) {
    if (dc.name == config_.client_datacenter) zones = dc.zones;
  }
  const rpc::Locality locality{config_.client_datacenter, config_.client_zone};
  HistoryLog* recorder = &log;
  if (config_.register_users) {
    table_ = std::make_shared<RegisteredUsers>();
    table_->uid.assign(config_.users, 0);
    table_->ticket.assign(config_.users, std::string());
  }
  for (size_t i = 0; i < config_.users; ++i) {
    std::set<uint64_t> picked;  // uids, or user indexes when users register
    while (picked.size() < contacts_n) {
      const size_t j = rng.uniform(config_.users);
      if (j != i) picked.insert(table_ ? j : uids_[j]);
    }
    client::MessagingClientConfig cc = config_.client;
    cc.uid = table_ ? 0 : uids_[i];
    cc.process = table_ ? "cwxuser" + std::to_string(i) : "c" + std::to_string(uids_[i]);
    cc.ticket = !table_ && config_.ticket_for ? config_.ticket_for(uids_[i]) : std::string();
    cc.path = path;
    cc.sync_all_types = config_.sync_all_types;
    client::AccessLinkConfig lc = config_.access;
    lc.uid = cc.uid;
    lc.ticket = cc.ticket;
    lc.datacenter = config_.client_datacenter;
    lc.preferred_zone = zones.empty() ? std::string() : zones[i % zones.size()];
    std::vector<uint64_t> contacts(picked.begin(), picked.end());
    const Duration send_mean = config_.send_interval_mean;
    const Duration sync_interval = config_.sync_interval;
    std::shared_ptr<RegisteredUsers> table = table_;
    const Duration change_mean = config_.contact_change_interval_mean;
    const Duration reg_after = config_.register_after, reg_spread = config_.register_spread;
    const Duration profile_mean = config_.profile_change_interval_mean;
    users_.push_back(sim.add_node(
        {cc.process, Placement{config_.client_datacenter, config_.client_zone, ""},
         [&directory, locality, cc, lc, contacts, send_mean, sync_interval, recorder, table, i, change_mean,
          reg_after, reg_spread, profile_mean](Runtime& rt) {
           auto u = std::make_unique<SimUser>(rt, directory, locality, cc, lc, contacts, send_mean, sync_interval,
                                              recorder);
           if (table) u->set_registration(table, i, change_mean, reg_after, reg_spread, profile_mean);
           return u;
         }}));
  }
  std::vector<uint64_t> uids = uids_;
  reader_ = sim.add_node({"reader", Placement{config_.client_datacenter, config_.client_zone, ""},
                          [&directory, locality, uids, recorder, tf = config_.ticket_for,
                           all = config_.sync_all_types, table = table_](Runtime& rt) {
                            auto r = std::make_unique<ServerReader>(rt, directory, locality, uids, recorder, tf);
                            r->set_all_types(all, table);
                            return r;
                          }});
}

void MessagingWorkload::stop_traffic() {
  for (size_t i = 0; i < users_.size(); ++i) {
    if (SimUser* u = user(i)) u->stop_traffic();
  }
}

bool MessagingWorkload::all_idle() {
  for (size_t i = 0; i < users_.size(); ++i) {
    SimUser* u = user(i);
    if (u != nullptr && !u->idle()) return false;
  }
  return true;
}

bool MessagingWorkload::finish(Duration settle, TimePoint limit, std::string* why) {
  stop_traffic();
  if (!sim_.run_until([this] { return all_idle(); }, limit) || !all_idle()) {
    *why = "users still busy at the limit";
    return false;
  }
  sim_.run_for(settle);  // in-flight server work ends (request budgets)
  ServerReader* reader = sim_.node_as<ServerReader>(reader_);
  if (reader == nullptr) {
    *why = "the reader is down";
    return false;
  }
  reader->read_all();
  if (!sim_.run_until([reader] { return reader->done(); }, limit) || !reader->done() || reader->failed()) {
    *why = "the server reader did not read every inbox";
    return false;
  }
  for (size_t i = 0; i < users_.size(); ++i) {
    if (SimUser* u = user(i)) u->final_sync();
  }
  auto all_final = [this] {
    for (size_t i = 0; i < users_.size(); ++i) {
      SimUser* u = user(i);
      if (u != nullptr && !u->final_done()) return false;
    }
    return true;
  };
  if (!sim_.run_until(all_final, limit) || !all_final()) {
    *why = "final syncs did not finish";
    return false;
  }
  return true;
}

client::MessagingClient::Stats MessagingWorkload::totals() {
  client::MessagingClient::Stats t;
  for (size_t i = 0; i < users_.size(); ++i) {
    SimUser* u = user(i);
    if (u == nullptr) continue;
    const auto& s = u->client().stats();
    t.sends += s.sends;
    t.sends_ok += s.sends_ok;
    t.sends_failed += s.sends_failed;
    t.sends_unknown += s.sends_unknown;
    t.send_attempts += s.send_attempts;
    t.syncs += s.syncs;
    t.sync_pages_ok += s.sync_pages_ok;
    t.sync_pages_failed += s.sync_pages_failed;
    t.messages_received += s.messages_received;
    t.notifies += s.notifies;
    t.notifies_stale += s.notifies_stale;
    t.notify_syncs += s.notify_syncs;
  }
  return t;
}

}  // namespace wx::sim::workload
