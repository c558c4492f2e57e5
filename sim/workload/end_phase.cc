// The shared end phase: inbox reader and run_end_phase (see end_phase.h).
#include "sim/workload/end_phase.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
#include "nodes/storage/account/account_service.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "sim/workload/messaging_workload.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

InboxReader::InboxReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
                         std::string process, std::vector<uint64_t> uids,
                         std::function<std::string(uint64_t uid)> ticket_for, HistoryLog* log)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      process_(std::move(process)),
      uids_(std::move(uids)),
      ticket_for_(std::move(ticket_for)),
      log_(log) {}

void InboxReader::set_all_types(bool all_types, std::shared_ptr<RegisteredUsers> registered) {
  all_types_ = all_types;
  registered_ = std::move(registered);
}

Task<void> InboxReader::read_loop() {
  // register_users: the registered users (index order) and their own tickets.
  std::vector<std::string> tickets;
  if (registered_) {
    uids_.clear();
    for (size_t i = 0; i < registered_->uid.size() && i < registered_->ticket.size(); ++i) {
      if (registered_->uid[i] == 0 || registered_->ticket[i].empty()) continue;
      uids_.push_back(registered_->uid[i]);
      tickets.push_back(registered_->ticket[i]);
    }
  }
  for (size_t u = 0; u < uids_.size(); ++u) {
    const uint64_t uid = uids_[u];
    // Each call carries the user's ticket: its own from login, or one issued
    // now by ticket_for.
    auto ticket = [&]() -> std::string {
      if (registered_) return tickets[u];
      return ticket_for_ ? ticket_for_(uid) : std::string();
    };
    std::vector<msg::MessageRecord> inbox;
    uint64_t after = 0;
    int pages = 0, failures = 0;
    while (pages < kReaderPagesMax) {
      inbox::RangeRequest req;
      req.set_uid(uid);
      req.set_after_seq(after);
      req.set_limit(inbox::kRangeMessagesMax);
      rpc::CallOptions o;
      o.timeout = seconds(3);
      o.ticket = ticket();
      rpc::Result<inbox::RangeReply> r = co_await router_.call<inbox::RangeReply>("inbox", inbox::kRangeMethod, req, o);
      if (!r.ok() || r->code() != inbox::INBOX_OK) {
        if (++failures > kReaderFailuresMax) {
          rt_.error("{}: inbox.Range of {} kept failing", process_, uid);
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
          rt_.error("{}: inbox {} seq {} does not parse", process_, uid, m.seq());
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
      log_->server_final(process_, uid, inbox, versions);
      continue;
    }
    // The contacts (a snapshot with its version) and the profile.
    std::optional<contacts::ListContactsReply> list;
    std::optional<account::ProfileReply> prof;
    for (int attempt = 0; attempt <= kReaderFailuresMax && (!list || !prof); ++attempt) {
      if (attempt > 0) co_await rt_.sleep(milliseconds(200));
      rpc::CallOptions o;
      o.timeout = seconds(3);
      o.ticket = ticket();
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
      rt_.error("{}: contacts / profile of {} kept failing", process_, uid);
      failed_ = done_ = true;
      co_return;
    }
    versions[std::string(client::kContactsType)] = list->version();
    versions[std::string(client::kAccountType)] = prof->code() == account::PROFILE_OK ? prof->version() : 0;
    client::ProfileFields fields;
    if (prof->code() == account::PROFILE_OK) fields = client::profile_fields(prof->profile());
    log_->server_final(process_, uid, inbox, versions,
                       std::vector<uint64_t>(list->contact_uids().begin(), list->contact_uids().end()),
                       std::move(fields));
  }
  done_ = true;
}

NodeId add_inbox_reader(Simulation& sim, SimDeployment& deployment, const std::string& name,
                        std::vector<uint64_t> uids, std::function<std::string(uint64_t uid)> ticket_for,
                        HistoryLog& log, const std::string& datacenter, const std::string& zone, bool all_types,
                        std::shared_ptr<RegisteredUsers> registered) {
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  const rpc::Locality locality{datacenter, zone};
  HistoryLog* l = &log;
  return sim.add_node({name, Placement{datacenter, zone, ""},
                       [&directory, locality, name, uids = std::move(uids), tf = std::move(ticket_for), l, all_types,
                        registered = std::move(registered)](Runtime& rt) {
                         auto r = std::make_unique<InboxReader>(rt, directory, locality, name, uids, tf, l);
                         r->set_all_types(all_types, registered);
                         return r;
                       }});
}

EndPhase& EndPhase::operator+=(const EndPhase& o) {
  stop.insert(stop.end(), o.stop.begin(), o.stop.end());
  idle.insert(idle.end(), o.idle.begin(), o.idle.end());
  drained.insert(drained.end(), o.drained.begin(), o.drained.end());
  readers.insert(readers.end(), o.readers.begin(), o.readers.end());
  final_start.insert(final_start.end(), o.final_start.begin(), o.final_start.end());
  final_done.insert(final_done.end(), o.final_done.begin(), o.final_done.end());
  return *this;
}

namespace {
bool all_of(const std::vector<std::function<bool()>>& v) {
  return std::all_of(v.begin(), v.end(), [](const std::function<bool()>& f) { return f(); });
}
}  // namespace

bool run_end_phase(Simulation& sim, const EndPhase& p, Duration settle, TimePoint limit, std::string* why) {
  for (const auto& f : p.stop) f();
  auto idle = [&p] { return all_of(p.idle); };
  if (!sim.run_until(idle, limit) || !idle()) {
    *why = "users still busy at the limit";
    return false;
  }
  auto drained = [&p] { return all_of(p.drained); };
  if (!sim.run_until(drained, limit) || !drained()) {
    *why = "the group fan-out did not drain";
    return false;
  }
  sim.run_for(settle);  // in-flight server work ends (request budgets)
  std::vector<InboxReader*> readers;
  for (NodeId id : p.readers) {
    InboxReader* r = sim.node_as<InboxReader>(id);
    if (r == nullptr) {
      *why = "the reader is down";
      return false;
    }
    r->read_all();
    readers.push_back(r);
  }
  auto read = [&readers] {
    return std::all_of(readers.begin(), readers.end(), [](InboxReader* r) { return r->done(); });
  };
  if (!sim.run_until(read, limit) || !read() ||
      std::any_of(readers.begin(), readers.end(), [](InboxReader* r) { return r->failed(); })) {
    *why = "the reader did not read every inbox";
    return false;
  }
  for (const auto& f : p.final_start) f();
  auto finals = [&p] { return all_of(p.final_done); };
  if (!sim.run_until(finals, limit) || !finals()) {
    *why = "final syncs did not finish";
    return false;
  }
  return true;
}

}  // namespace wx::sim::workload
