// Simulated users, the final-state reader and the history log of the
// messaging workload (see messaging_workload.h).
#include "sim/workload/messaging_workload.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
#include "nodes/storage/account/account_service.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

cm::MessageCopy to_copy(const msg::MessageRecord& m) {
  cm::MessageCopy c;
  c.recipient = m.recipient;
  c.seq = m.seq;
  c.message_id = m.message_id;
  c.sender = m.sender;
  c.client_msg_id = m.client_msg_id;
  c.to = m.group_id != 0 ? cm::Conversation{cm::ConversationKind::group, m.group_id}
                        : cm::Conversation{cm::ConversationKind::user, m.to_uid};
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
  history_.push_back(
      cm::Event{sim_.now().ns(), process, cm::ClientFinal{user, to_copies(messages), key, std::nullopt, std::nullopt}});
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
    if (a.queued) {
      if (!remote_delivered_.count(a.message_id)) remote_pending_.insert(a.message_id);
    } else {
      ack.recipients.push_back(cm::RecipientSeq{a.recipient, a.seq});
      remote_delivered_.insert(a.message_id);
      remote_pending_.erase(a.message_id);
    }
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
                 client::MessagingClientConfig config, client::AccessLinkConfig link, SimUserPlan plan,
                 client::HistoryRecorder* recorder)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality), router_config(config)),
      link_(make_link(rt, endpoint_, directory, config, std::move(link))),
      client_(rt, router_, std::move(config), recorder, link_.get()),
      plan_(std::move(plan)) {}

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
  const bool churn = plan_.churn != nullptr && plan_.churn->enabled();
  if (plan_.registered) {
    ready_ = false;
    rt_.spawn(setup_loop(), "user-setup");  // register, log in, then traffic
  } else {
    start_traffic();
  }
  if (churn) rt_.spawn(churn_loop(), "user-churn");  // from the start (registration waits while offline)
}

void SimUser::start_traffic() {
  if (link_) {
    rt_.spawn(link_->run(), "user-link");
    rt_.spawn(client_.notified_sync_loop(), "user-notified-sync");
  }
  if (!plan_.contacts.empty()) rt_.spawn(send_loop(), "user-send");
  rt_.spawn(sync_loop(), "user-sync");
  if (plan_.registered && plan_.contact_change_mean > Duration::zero()) rt_.spawn(contacts_loop(), "user-contacts");
  if (plan_.registered && plan_.profile_change_mean > Duration::zero()) rt_.spawn(profile_loop(), "user-profile");
}

uint64_t SimUser::resolve(uint64_t contact) const {
  if (!plan_.registered) return contact;
  return contact < plan_.registered->uid.size() ? plan_.registered->uid[contact] : 0;
}

Task<void> SimUser::setup_loop() {
  setting_up_ = true;
  co_await rt_.sleep(plan_.register_after +
                     nanoseconds(static_cast<int64_t>(
                         rt_.rng().uniform(static_cast<uint64_t>(std::max<int64_t>(plan_.register_spread.ns(), 1))))));
  const std::string account_id = "wxuser" + std::to_string(plan_.index);
  const std::string password = "secret-" + std::to_string(plan_.index);
  account::Profile profile;
  profile.set_nickname("user " + std::to_string(plan_.index));
  profile.set_region("r" + std::to_string(plan_.index % 7));
  // Bounded: a registration that never settles leaves the user idle (it
  // records no final state: it has no uid). Offline (churn): no attempt
  // until it is back.
  for (int round = 0; round < kFinalSyncRoundsMax && !stopped_;) {
    if (offline_) {
      co_await rt_.sleep(milliseconds(500));
      continue;
    }
    ++round;
    if (client_.uid() == 0) {
      client::AccountOutcome r = co_await client_.register_account(account_id, password, profile);
      if (r.status != client::AccountStatus::ok) {
        co_await rt_.sleep(milliseconds(500));
        continue;
      }
      plan_.registered->uid[plan_.index] = r.uid;
    }
    client::AccountOutcome l = co_await client_.login(account_id, password);
    if (l.status != client::AccountStatus::ok) {
      co_await rt_.sleep(milliseconds(500));
      continue;
    }
    plan_.registered->ticket[plan_.index] = client_.ticket();
    ready_ = true;
    setting_up_ = false;
    start_traffic();  // after stop_traffic() the loops end at once; the link runs for the final sync
    co_return;
  }
  setting_up_ = false;
}

Task<void> SimUser::contacts_loop() {
  const RegisteredUsers& table = *plan_.registered;
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(plan_.contact_change_mean));
    if (stopped_) break;
    if (offline_ || table.uid.size() < 2) continue;
    size_t other = rt_.rng().uniform(table.uid.size() - 1);
    if (other >= plan_.index) ++other;  // anyone but oneself
    const uint64_t uid = table.uid[other];
    if (uid == 0) continue;  // not registered yet
    changing_ = true;
    (void)co_await client_.change_contact(uid, client_.contacts().count(uid) != 0);
    changing_ = false;
  }
}

Task<void> SimUser::profile_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(plan_.profile_change_mean));
    if (stopped_) break;
    if (offline_) continue;
    account::Profile p;
    p.set_nickname("user " + std::to_string(plan_.index) + " v" + std::to_string(++profile_changes_));
    p.set_region("r" + std::to_string(plan_.index % 7));
    changing_ = true;
    (void)co_await client_.set_profile(std::move(p));
    changing_ = false;
  }
}

Task<void> SimUser::send_loop() {
  // A daily shape: draw at the peak rate, keep a draw with probability
  // factor / peak (thinning), so the kept sends are exactly a Poisson
  // process whose rate follows the shape.
  const DailyShape* shape = plan_.shape != nullptr && !plan_.shape->flat() ? plan_.shape : nullptr;
  const double peak = shape != nullptr ? shape->peak() : 1.0;
  const Duration draw_mean =
      shape != nullptr ? nanoseconds(static_cast<int64_t>(static_cast<double>(plan_.send_mean.ns()) / peak))
                       : plan_.send_mean;
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(draw_mean));
    if (stopped_) break;
    if (shape != nullptr && !rt_.rng().bernoulli(shape->factor(rt_.now()) / peak)) continue;
    if (offline_) continue;
    if (returned_) ++churn_stats_.sends_after_return;
    const uint64_t to = resolve(plan_.contacts[rt_.rng().uniform(plan_.contacts.size())]);
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
  co_await rt_.sleep(
      nanoseconds(static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(plan_.sync_interval.ns())))));
  while (!stopped_) {
    if (!offline_) (void)co_await client_.sync();
    co_await rt_.sleep(plan_.sync_interval);
  }
}

Task<void> SimUser::churn_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(plan_.churn->online_mean));
    if (stopped_) break;
    set_offline(true);
    co_await rt_.sleep(rt_.rng().exponential(plan_.churn->offline_mean));
    if (stopped_) break;  // stop_traffic() brought it back
    set_offline(false);
    ++churn_stats_.returns;
    returned_ = true;
  }
}

void SimUser::set_offline(bool offline) {
  if (offline && !offline_) {
    ++churn_stats_.offline_periods;
    offline_since_ = rt_.now();
  } else if (!offline && offline_) {
    churn_stats_.offline_time += rt_.now() - offline_since_;
  }
  offline_ = offline;
  if (link_) link_->set_offline(offline);
}

void SimUser::stop_traffic() {
  stopped_ = true;
  if (offline_) set_offline(false);  // back online for the final sync
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

// --- MessagingWorkload ---------------------------------------------------------------

MessagingWorkload::MessagingWorkload(Simulation& sim, SimDeployment& deployment, MessagingWorkloadConfig config,
                                     HistoryLog& log)
    : sim_(sim), deployment_(deployment), config_(std::move(config)), log_(log) {
  if (config_.users == 0 || config_.users > kWorkloadUsersMax) {
    throw std::invalid_argument("workload: users must be 1.." + std::to_string(kWorkloadUsersMax));
  }
  for (size_t i = 0; i < config_.users; ++i) uids_.push_back(config_.uid_base + i);

  Rng rng = sim.derive_rng("msg-workload-contacts");
  graph_ = make_contact_graph(rng, config_.users, config_.contacts);
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  if (config_.path == UserPath::automatic) {
    config_.path = directory.instances(access::kServiceName).empty() ? UserPath::direct : UserPath::long_connection;
  }
  const client::ClientPath path = config_.path == UserPath::direct            ? client::ClientPath::direct
                                  : config_.path == UserPath::short_connection ? client::ClientPath::short_connection
                                                                               : client::ClientPath::long_connection;
  // Users homed in several datacenters (docs/multi-dc.md): each user's device
  // sits in its home datacenter's client zone and talks to that datacenter's
  // access nodes; otherwise every device is in client_datacenter.
  const shard::ShardMap& shards = *deployment.deployment().shard_map();
  const bool at_home = shards.multi_datacenter() && !config_.register_users;
  auto client_dc_of = [&](uint64_t uid) {
    return at_home ? shards.home_of(uid).value_or(config_.client_datacenter) : config_.client_datacenter;
  };
  std::map<std::string, std::vector<std::string>> zones_of;  // the access zones users prefer, round robin
  for (const deploy::DatacenterSpec& dc : deployment.deployment().spec().datacenters) zones_of[dc.name] = dc.zones;
  HistoryLog* recorder = &log;
  if (config_.register_users) {
    registered_ = std::make_shared<RegisteredUsers>();
    registered_->uid.assign(config_.users, 0);
    registered_->ticket.assign(config_.users, std::string());
  }
  for (size_t i = 0; i < config_.users; ++i) {
    client::MessagingClientConfig cc = config_.client;
    cc.uid = registered_ ? 0 : uids_[i];
    cc.process = registered_ ? "cwxuser" + std::to_string(i) : "c" + std::to_string(uids_[i]);
    cc.ticket = !registered_ && config_.ticket_for ? config_.ticket_for(uids_[i]) : std::string();
    cc.path = path;
    cc.sync_all_types = config_.sync_all_types;
    client::AccessLinkConfig lc = config_.access;
    lc.uid = cc.uid;
    lc.ticket = cc.ticket;
    const std::string dc = client_dc_of(uids_[i]);
    const std::vector<std::string>& zones = zones_of[dc];
    const rpc::Locality locality{dc, config_.client_zone};
    lc.datacenter = dc;
    lc.preferred_zone = zones.empty() ? std::string() : zones[i % zones.size()];
    preferred_zones_[cc.process] = lc.preferred_zone;
    SimUserPlan plan;
    for (size_t j : graph_[i]) plan.contacts.push_back(registered_ ? j : uids_[j]);
    plan.send_mean = config_.send_interval_mean;
    plan.sync_interval = config_.sync_interval;
    plan.shape = &config_.daily_shape;
    plan.churn = &config_.churn;
    if (registered_) {
      plan.registered = registered_;
      plan.index = i;
      plan.register_after = config_.register_after;
      plan.register_spread = config_.register_spread;
      plan.contact_change_mean = config_.contact_change_interval_mean;
      plan.profile_change_mean = config_.profile_change_interval_mean;
    }
    users_.push_back(sim.add_node({cc.process, Placement{dc, config_.client_zone, ""},
                                   [&directory, locality, cc, lc, plan, recorder](Runtime& rt) {
                                     return std::make_unique<SimUser>(rt, directory, locality, cc, lc, plan, recorder);
                                   }}));
  }
  reader_ = add_inbox_reader(sim, deployment, "reader", uids_, config_.ticket_for, log, config_.client_datacenter,
                             config_.client_zone, config_.sync_all_types, registered_);
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

EndPhase MessagingWorkload::end_phase() {
  EndPhase p;
  p.stop.push_back([this] { stop_traffic(); });
  p.idle.push_back([this] { return all_idle(); });
  if (deployment_.deployment().shard_map()->multi_datacenter()) {
    // 1:1 messages queued for users homed in another datacenter are stored.
    p.drained.push_back([this] { return log_.remote_pending() == 0; });
  }
  p.readers.push_back(reader_);
  p.final_start.push_back([this] {
    for (size_t i = 0; i < users_.size(); ++i) {
      if (SimUser* u = user(i)) u->final_sync();
    }
  });
  p.final_done.push_back([this] {
    for (size_t i = 0; i < users_.size(); ++i) {
      SimUser* u = user(i);
      if (u != nullptr && !u->final_done()) return false;
    }
    return true;
  });
  return p;
}

bool MessagingWorkload::finish(Duration settle, TimePoint limit, std::string* why) {
  return run_end_phase(sim_, end_phase(), settle, limit, why);
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

ChurnStats MessagingWorkload::churn_totals() {
  ChurnStats t;
  for (size_t i = 0; i < users_.size(); ++i) {
    SimUser* u = user(i);
    if (u == nullptr) continue;
    const ChurnStats& s = u->churn_stats();
    t.offline_periods += s.offline_periods;
    t.returns += s.returns;
    t.sends_after_return += s.sends_after_return;
    t.offline_time += s.offline_time;
  }
  return t;
}

}  // namespace wx::sim::workload
