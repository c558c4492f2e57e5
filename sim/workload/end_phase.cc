// The shared end phase: inbox reader and run_end_phase (see end_phase.h).
#include "sim/workload/end_phase.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
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

Task<void> InboxReader::read_loop() {
  for (uint64_t uid : uids_) {
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
      if (ticket_for_) o.ticket = ticket_for_(uid);
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
    log_->server_final(process_, uid, inbox, client::SyncKey{{std::string(cm::kMessagesType), after}});
  }
  done_ = true;
}

NodeId add_inbox_reader(Simulation& sim, SimDeployment& deployment, const std::string& name,
                        std::vector<uint64_t> uids, std::function<std::string(uint64_t uid)> ticket_for,
                        HistoryLog& log, const std::string& datacenter, const std::string& zone) {
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  const rpc::Locality locality{datacenter, zone};
  HistoryLog* l = &log;
  return sim.add_node({name, Placement{datacenter, zone, ""},
                       [&directory, locality, name, uids = std::move(uids), tf = std::move(ticket_for), l](Runtime& rt) {
                         return std::make_unique<InboxReader>(rt, directory, locality, name, uids, tf, l);
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
