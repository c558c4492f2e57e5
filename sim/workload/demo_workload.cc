#include "sim/workload/demo_workload.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "nodes/logic/msg/msg_service.h"
#include "nodes/storage/inbox/inbox_service.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

DemoReader::DemoReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
                       std::vector<DemoReaderUser> users, HistoryLog* log, GroupRecorder* groups)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      users_(std::move(users)),
      log_(log),
      groups_(groups) {}

Task<void> DemoReader::read_loop() {
  for (const DemoReaderUser& u : users_) {
    std::vector<msg::MessageRecord> inbox;
    uint64_t after = 0;
    int pages = 0, failures = 0;
    while (pages < kDemoReaderPagesMax) {
      inbox::RangeRequest req;
      req.set_uid(u.uid);
      req.set_after_seq(after);
      req.set_limit(inbox::kRangeMessagesMax);
      rpc::CallOptions o;
      o.timeout = seconds(3);
      o.ticket = u.ticket;
      rpc::Result<inbox::RangeReply> r = co_await router_.call<inbox::RangeReply>("inbox", inbox::kRangeMethod, req, o);
      if (!r.ok() || r->code() != inbox::INBOX_OK) {
        if (++failures > kDemoReaderFailuresMax) {
          rt_.error("demo-reader: inbox.Range of {} kept failing", u.uid);
          failed_ = done_ = true;
          co_return;
        }
        co_await rt_.sleep(milliseconds(200));
        continue;
      }
      ++pages;
      for (const inbox::InboxMessage& m : r->messages()) {
        std::optional<msg::MessageRecord> c = msg::decode_stored(u.uid, m.seq(), m.message());
        if (!c) {
          rt_.error("demo-reader: inbox {} seq {} does not parse", u.uid, m.seq());
          failed_ = true;
          continue;
        }
        inbox.push_back(std::move(*c));
        after = std::max(after, m.seq());
      }
      if (r->messages_size() < static_cast<int>(inbox::kRangeMessagesMax)) break;
    }
    if (u.group_only) {
      groups_->record_server_final(u.uid, inbox, after);
    } else {
      log_->server_final("demo-reader", u.uid, inbox, client::SyncKey{{std::string(cm::kMessagesType), after}});
    }
  }
  done_ = true;
}

NodeId add_demo_reader(Simulation& sim, SimDeployment& deployment, std::vector<DemoReaderUser> users,
                       HistoryLog& log, GroupRecorder& groups, const std::string& datacenter,
                       const std::string& zone) {
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  const rpc::Locality locality{datacenter, zone};
  HistoryLog* l = &log;
  GroupRecorder* g = &groups;
  return sim.add_node({"demo-reader", Placement{datacenter, zone, ""},
                       [&directory, locality, users = std::move(users), l, g](Runtime& rt) {
                         return std::make_unique<DemoReader>(rt, directory, locality, users, l, g);
                       }});
}

bool finish_demo(Simulation& sim, MessagingWorkload& one_to_one, GroupWorkload* groups, GroupRecorder& recorder,
                 NodeId reader_id, Duration settle, TimePoint limit, std::string* why) {
  one_to_one.stop_traffic();
  if (groups) groups->stop_traffic();
  auto idle = [&] { return one_to_one.all_idle() && (!groups || groups->all_idle()); };
  if (!sim.run_until(idle, limit) || !idle()) {
    *why = "users still busy at the limit";
    return false;
  }
  if (!sim.run_until([&] { return recorder.drained(); }, limit) || !recorder.drained()) {
    *why = "the group fan-out did not drain";
    return false;
  }
  sim.run_for(settle);  // in-flight server work ends (request budgets)
  DemoReader* reader = sim.node_as<DemoReader>(reader_id);
  if (reader == nullptr) {
    *why = "the reader is down";
    return false;
  }
  reader->read_all();
  if (!sim.run_until([reader] { return reader->done(); }, limit) || !reader->done() || reader->failed()) {
    *why = "the reader did not read every inbox";
    return false;
  }
  const size_t n = one_to_one.uids().size();
  for (size_t i = 0; i < n; ++i) {
    if (SimUser* u = one_to_one.user(i)) u->final_sync();
  }
  auto all_final = [&] {
    for (size_t i = 0; i < n; ++i) {
      SimUser* u = one_to_one.user(i);
      if (u != nullptr && !u->final_done()) return false;
    }
    return true;
  };
  if (!sim.run_until(all_final, limit) || !all_final()) {
    *why = "final syncs did not finish";
    return false;
  }
  return true;
}

}  // namespace wx::sim::workload
