// Simulated users, the final-state reader and the history log of the
// messaging workload (see messaging_workload.h).
#include "sim/workload/messaging_workload.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
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
  c.op = kind == client::OpKind::send ? cm::OpKind::send : cm::OpKind::sync;
  switch (r.outcome) {
    case client::Outcome::ok:
      c.outcome = cm::Outcome::ok;
      if (kind == client::OpKind::send) {
        c.result = cm::Result{cm::SendResult{r.message_id}};
      } else {
        c.result = cm::Result{cm::SyncResult{r.key, to_copies(r.messages)}};
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
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::ClientFinal{user, to_copies(messages), key}});
}

void HistoryLog::server_final(const std::string& process, uint64_t user,
                              const std::vector<msg::MessageRecord>& inbox, const client::SyncKey& versions) {
  history_.push_back(cm::Event{sim_.now().ns(), process, cm::ServerFinal{user, to_copies(inbox), versions}});
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
  if (link_) {
    rt_.spawn(link_->run(), "user-link");
    rt_.spawn(client_.notified_sync_loop(), "user-notified-sync");
  }
  if (!contacts_.empty()) rt_.spawn(send_loop(), "user-send");
  rt_.spawn(sync_loop(), "user-sync");
}

Task<void> SimUser::send_loop() {
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(send_mean_));
    if (stopped_) break;
    if (offline_) continue;
    const uint64_t to = contacts_[rt_.rng().uniform(contacts_.size())];
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

void SimUser::final_sync() { rt_.spawn(final_loop(), "user-final"); }

Task<void> SimUser::final_loop() {
  while (client_.syncing()) co_await rt_.sleep(milliseconds(50));
  // Sync until a whole sync succeeds and brings nothing new.
  for (int round = 0; round < kFinalSyncRoundsMax; ++round) {
    const size_t before = client_.received().size();
    client::SyncStatus s = co_await client_.sync();
    if (s == client::SyncStatus::ok && client_.received().size() == before) break;
    if (s != client::SyncStatus::ok) co_await rt_.sleep(milliseconds(500));
  }
  client_.record_final();
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

void ServerReader::read_all() { rt_.spawn(read_loop(), "reader"); }

Task<void> ServerReader::read_loop() {
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
      if (ticket_for_) o.ticket = ticket_for_(uid);
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
    recorder_->server_final("reader", uid, inbox, client::SyncKey{{std::string(cm::kMessagesType), after}});
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
  for (size_t i = 0; i < config_.users; ++i) {
    std::set<uint64_t> picked;
    while (picked.size() < contacts_n) {
      const size_t j = rng.uniform(config_.users);
      if (j != i) picked.insert(uids_[j]);
    }
    client::MessagingClientConfig cc = config_.client;
    cc.uid = uids_[i];
    cc.process = "c" + std::to_string(uids_[i]);
    cc.ticket = config_.ticket_for ? config_.ticket_for(uids_[i]) : std::string();
    cc.path = path;
    client::AccessLinkConfig lc = config_.access;
    lc.uid = cc.uid;
    lc.ticket = cc.ticket;
    lc.datacenter = config_.client_datacenter;
    lc.preferred_zone = zones.empty() ? std::string() : zones[i % zones.size()];
    std::vector<uint64_t> contacts(picked.begin(), picked.end());
    const Duration send_mean = config_.send_interval_mean;
    const Duration sync_interval = config_.sync_interval;
    users_.push_back(sim.add_node(
        {cc.process, Placement{config_.client_datacenter, config_.client_zone, ""},
         [&directory, locality, cc, lc, contacts, send_mean, sync_interval, recorder](Runtime& rt) {
           return std::make_unique<SimUser>(rt, directory, locality, cc, lc, contacts, send_mean, sync_interval,
                                            recorder);
         }}));
  }
  std::vector<uint64_t> uids = uids_;
  reader_ = sim.add_node({"reader", Placement{config_.client_datacenter, config_.client_zone, ""},
                          [&directory, locality, uids, recorder, tf = config_.ticket_for](Runtime& rt) {
                            return std::make_unique<ServerReader>(rt, directory, locality, uids, recorder, tf);
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
