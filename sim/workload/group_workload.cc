// The group-chat workload: users, recorder and reader (see group_workload.h).
#include "sim/workload/group_workload.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "nodes/logic/group/group_service.h"
#include "nodes/storage/inbox/inbox_service.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

cm::MessageCopy to_group_copy(const msg::MessageRecord& m) {
  cm::MessageCopy c = to_copy(m);
  if (m.group_id != 0) c.to = cm::Conversation{cm::ConversationKind::group, m.group_id};
  return c;
}

// --- GroupRecorder ----------------------------------------------------------------

msg::GroupMembersObserver GroupRecorder::members_observer() {
  return [this](NodeId server, const msg::GroupMembersRecord& r) {
    cm::GroupMembers f;
    f.group = r.group_id;
    f.sender = r.sender;
    f.client_msg_id = r.client_msg_id;
    f.message_id = r.message_id;
    f.members = r.members;
    log_.history().push_back(cm::Event{sim_.now().ns(), "srv-" + std::to_string(server.value), std::move(f)});
    Progress& p = progress_[r.message_id];
    if (p.expected.empty()) {
      for (uint64_t m : r.members) {
        if (m != r.sender) p.expected.insert(m);
      }
    }
    update_pending(r.message_id, p);
  };
}

msg::GroupAckObserver GroupRecorder::ack_observer() {
  return [this](NodeId server, const msg::GroupAckRecord& a) {
    cm::SendAck ack;
    ack.message_id = a.message_id;
    ack.sender = a.sender;
    ack.client_msg_id = a.client_msg_id;
    ack.to = cm::Conversation{cm::ConversationKind::group, a.group_id};
    for (const auto& [member, seq] : a.recipients) ack.recipients.push_back(cm::RecipientSeq{member, seq});
    log_.history().push_back(cm::Event{sim_.now().ns(), "srv-" + std::to_string(server.value), std::move(ack)});
    Progress& p = progress_[a.message_id];
    const bool was_done = !p.expected.empty() && p.stored.size() >= p.expected.size();
    for (const auto& [member, seq] : a.recipients) p.stored.insert(member);
    update_pending(a.message_id, p);
    if (!was_done && !p.expected.empty() && p.stored.size() >= p.expected.size()) {
      completed_at_[a.message_id] = sim_.now();
    }
  };
}

void GroupRecorder::update_pending(const std::string& message_id, const Progress& p) {
  bool missing = false;
  for (uint64_t m : p.expected) {
    if (!p.stored.count(m)) {
      missing = true;
      break;
    }
  }
  if (missing) {
    pending_.insert(message_id);
  } else {
    pending_.erase(message_id);
  }
}

bool GroupRecorder::drained() const { return pending_.empty(); }

void GroupRecorder::record_invoke(const std::string& process, uint64_t op_id, uint64_t user, uint64_t group,
                                  const std::string& cmid, uint64_t body_hash) {
  log_.history().push_back(cm::Event{
      sim_.now().ns(), process,
      cm::Invoke{op_id, cm::SendRequest{user, cm::Conversation{cm::ConversationKind::group, group}, cmid, body_hash}}});
}

void GroupRecorder::record_completion(const std::string& process, uint64_t op_id, cm::Outcome outcome,
                                      const std::string& message_id, const std::string& error) {
  cm::Completion c;
  c.op_id = op_id;
  c.op = cm::OpKind::send;
  c.outcome = outcome;
  if (outcome == cm::Outcome::ok) {
    c.result = cm::Result{cm::SendResult{message_id}};
  } else {
    c.error = error;
  }
  log_.history().push_back(cm::Event{sim_.now().ns(), process, std::move(c)});
}

void GroupRecorder::record_server_final(uint64_t user, const std::vector<msg::MessageRecord>& inbox,
                                        uint64_t last_seq) {
  std::vector<cm::MessageCopy> copies;
  for (const msg::MessageRecord& m : inbox) copies.push_back(to_group_copy(m));
  log_.history().push_back(cm::Event{sim_.now().ns(), "reader",
                                     cm::ServerFinal{user, std::move(copies),
                                                     cm::SyncKey{{std::string(cm::kMessagesType), last_seq}}}});
}

// --- GroupUser --------------------------------------------------------------------

GroupUser::GroupUser(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality, uint64_t uid,
                     std::string ticket, std::vector<GroupSpec> to_create, std::vector<uint64_t> send_groups,
                     const GroupWorkloadConfig* config, GroupRecorder* recorder)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      uid_(uid),
      ticket_(std::move(ticket)),
      process_("c" + std::to_string(uid)),
      to_create_(std::move(to_create)),
      send_groups_(std::move(send_groups)),
      config_(config),
      recorder_(recorder) {}

void GroupUser::start() {
  endpoint_.start();
  rt_.spawn(create_loop(), "group-create");
}

void GroupUser::start_traffic() {
  if (traffic_ || send_groups_.empty()) return;
  traffic_ = true;
  rt_.spawn(send_loop(), "group-send");
}

Task<void> GroupUser::create_loop() {
  for (const GroupSpec& g : to_create_) {
    for (;;) {
      group::CreateRequest req;
      req.set_group_id(g.group_id);
      req.set_creator(uid_);
      for (uint64_t m : g.members) req.add_members(m);
      rpc::CallOptions o;
      o.ticket = ticket_;
      o.timeout = config_->call_timeout;
      rpc::Result<group::GroupReply> r =
          co_await router_.call<group::GroupReply>(std::string(group::kServiceName), group::kCreateMethod, req, o);
      if (r.ok() && r->code() == group::GROUP_OK) break;
      if (r.ok() && r->code() != group::GROUP_UNKNOWN) {
        rt_.error("group create {} refused: {}", g.group_id, r->error());
        break;
      }
      co_await rt_.sleep(config_->retry_pause);
    }
  }
  created_ = true;
}

Task<msg::MsgCode> GroupUser::send_once(uint64_t group, std::string body, std::string* message_id) {
  const std::string cmid = process_ + "-g" + std::to_string(next_cmid_++);
  const uint64_t hash = msg::body_hash(body);
  msg::MsgCode last = msg::MSG_UNKNOWN;
  for (int attempt = 0; attempt < config_->attempts_max; ++attempt) {
    msg::GroupSendRequest req;
    req.set_group_id(group);
    req.set_client_msg_id(cmid);
    req.set_body(body);
    rpc::CallOptions o;
    o.ticket = ticket_;
    o.timeout = config_->call_timeout;
    const uint64_t op = next_op_++;
    recorder_->record_invoke(process_, op, uid_, group, cmid, hash);
    rpc::Result<msg::GroupSendReply> r =
        co_await router_.call<msg::GroupSendReply>("msg", msg::kGroupSendMethod, req, o);
    if (!r.ok() || r->code() == msg::MSG_UNKNOWN) {
      recorder_->record_completion(process_, op, cm::Outcome::info, "", r.ok() ? r->error() : "rpc failed");
      co_await rt_.sleep(config_->retry_pause);
      continue;
    }
    last = r->code();
    if (r->code() == msg::MSG_OK) {
      recorder_->record_completion(process_, op, cm::Outcome::ok, r->message_id(), "");
      if (message_id != nullptr) *message_id = r->message_id();
      ++sends_ok_;
    } else {
      recorder_->record_completion(process_, op, cm::Outcome::fail, "", r->error());
    }
    break;
  }
  co_return last;
}

Task<void> GroupUser::send_loop() {
  uint64_t n = 0;
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(config_->send_interval_mean));
    if (stopped_) break;
    const uint64_t g = send_groups_[rt_.rng().uniform(send_groups_.size())];
    sending_ = true;
    (void)co_await send_once(g, "to g" + std::to_string(g) + " #" + std::to_string(++n) + " from " +
                                    std::to_string(uid_), nullptr);
    sending_ = false;
  }
}

// --- GroupReader ------------------------------------------------------------------

GroupReader::GroupReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
                         std::vector<uint64_t> uids, GroupRecorder* recorder,
                         std::function<std::string(uint64_t uid)> ticket_for)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      uids_(std::move(uids)),
      recorder_(recorder),
      ticket_for_(std::move(ticket_for)) {}

Task<void> GroupReader::read_loop() {
  for (uint64_t uid : uids_) {
    std::vector<msg::MessageRecord> inbox;
    uint64_t after = 0;
    int pages = 0, failures = 0;
    while (pages < kGroupReaderPagesMax) {
      inbox::RangeRequest req;
      req.set_uid(uid);
      req.set_after_seq(after);
      req.set_limit(inbox::kRangeMessagesMax);
      rpc::CallOptions o;
      o.timeout = seconds(3);
      if (ticket_for_) o.ticket = ticket_for_(uid);
      rpc::Result<inbox::RangeReply> r = co_await router_.call<inbox::RangeReply>("inbox", inbox::kRangeMethod, req, o);
      if (!r.ok() || r->code() != inbox::INBOX_OK) {
        if (++failures > 100) {
          failed_ = done_ = true;
          co_return;
        }
        co_await rt_.sleep(milliseconds(200));
        continue;
      }
      ++pages;
      for (const inbox::InboxMessage& m : r->messages()) {
        std::optional<msg::MessageRecord> c = msg::decode_stored(uid, m.seq(), m.message());
        if (!c) {
          failed_ = true;
          continue;
        }
        inbox.push_back(std::move(*c));
        after = std::max(after, m.seq());
      }
      if (r->messages_size() < static_cast<int>(inbox::kRangeMessagesMax)) break;
    }
    recorder_->record_server_final(uid, inbox, after);
  }
  done_ = true;
}

// --- GroupWorkload ----------------------------------------------------------------

GroupWorkload::GroupWorkload(Simulation& sim, SimDeployment& deployment, GroupWorkloadConfig config,
                             GroupRecorder& recorder)
    : sim_(sim), config_(std::move(config)), recorder_(recorder) {
  std::set<uint64_t> all;
  std::map<uint64_t, std::vector<GroupSpec>> creates;
  std::map<uint64_t, std::vector<uint64_t>> sends;
  for (const GroupSpec& g : config_.groups) {
    if (g.members.empty()) throw std::invalid_argument("group workload: a group without members");
    all.insert(g.members.begin(), g.members.end());
    creates[g.members.front()].push_back(g);
    for (uint64_t s : g.senders) sends[s].push_back(g.group_id);
  }
  if (all.size() > kGroupWorkloadUsersMax) throw std::invalid_argument("group workload: too many users");
  uids_.assign(all.begin(), all.end());
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  const rpc::Locality locality{config_.client_datacenter, config_.client_zone};
  const GroupWorkloadConfig* cfg = &config_;
  GroupRecorder* rec = &recorder_;
  for (uint64_t uid : uids_) {
    const std::string ticket = config_.ticket_for ? config_.ticket_for(uid) : std::string();
    std::vector<GroupSpec> c = creates[uid];
    std::vector<uint64_t> s = sends[uid];
    users_[uid] = sim.add_node({"c" + std::to_string(uid), Placement{config_.client_datacenter, config_.client_zone, ""},
                                [&directory, locality, uid, ticket, c, s, cfg, rec](Runtime& rt) {
                                  return std::make_unique<GroupUser>(rt, directory, locality, uid, ticket, c, s, cfg,
                                                                     rec);
                                }});
  }
  std::vector<uint64_t> uids = uids_;
  reader_ = sim.add_node({"group-reader", Placement{config_.client_datacenter, config_.client_zone, ""},
                          [&directory, locality, uids, rec, tf = config_.ticket_for](Runtime& rt) {
                            return std::make_unique<GroupReader>(rt, directory, locality, uids, rec, tf);
                          }});
}

GroupUser* GroupWorkload::user(uint64_t uid) { return sim_.node_as<GroupUser>(users_.at(uid)); }

bool GroupWorkload::all_created() {
  for (const auto& [uid, id] : users_) {
    GroupUser* u = sim_.node_as<GroupUser>(id);
    if (u == nullptr || !u->created()) return false;
  }
  return true;
}

void GroupWorkload::start_traffic() {
  for (const auto& [uid, id] : users_) {
    if (GroupUser* u = sim_.node_as<GroupUser>(id)) u->start_traffic();
  }
}

void GroupWorkload::stop_traffic() {
  for (const auto& [uid, id] : users_) {
    if (GroupUser* u = sim_.node_as<GroupUser>(id)) u->stop_traffic();
  }
}

bool GroupWorkload::all_idle() {
  for (const auto& [uid, id] : users_) {
    GroupUser* u = sim_.node_as<GroupUser>(id);
    if (u != nullptr && !u->idle()) return false;
  }
  return true;
}

bool GroupWorkload::finish(Duration settle, TimePoint limit, std::string* why) {
  stop_traffic();
  if (!sim_.run_until([this] { return all_idle(); }, limit) || !all_idle()) {
    *why = "users still busy at the limit";
    return false;
  }
  if (!sim_.run_until([this] { return recorder_.drained(); }, limit) || !recorder_.drained()) {
    *why = "the fan-out did not drain";
    return false;
  }
  sim_.run_for(settle);
  GroupReader* reader = sim_.node_as<GroupReader>(reader_);
  if (reader == nullptr) {
    *why = "the reader is down";
    return false;
  }
  reader->read_all();
  if (!sim_.run_until([reader] { return reader->done(); }, limit) || !reader->done() || reader->failed()) {
    *why = "the reader did not read every inbox";
    return false;
  }
  return true;
}

}  // namespace wx::sim::workload
