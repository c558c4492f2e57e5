// Tickets at the storage hop (docs/tickets.md, "Every hop"): the inbox and
// contacts data-access services, given ticket keys, refuse every request
// whose ticket is missing, forged, expired or another user's — before
// reading or writing anything — and serve a valid one. inbox.Append acts for
// `sender_uid`: the ticket must be the sender's and the stored message must
// name that sender. Also: the deployment gives the data services the logic
// layer's keys (check on) and a storage-only deployment checks nothing.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/deploy/deployment.h"
#include "nodes/logic/group/group_service.h"
#include "nodes/logic/msg/fanout_worker.h"
#include "nodes/logic/msg/msg.pb.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/logic/queue/kv_pool.h"
#include "nodes/logic/queue/queue_store.h"
#include "nodes/rpc/router.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "tests/support/script_caller.h"

namespace wx {
namespace {

using namespace time_literals;
using Caller = wx::testing::ScriptCaller;

constexpr uint64_t kAlice = 11, kBob = 12, kCarol = 13;
constexpr uint64_t kContact = 5000;
constexpr Duration kLimit = seconds(120);
constexpr Duration kTicketTtl = minutes(60);

ticket::KeyRingConfig ring_config(char base) {
  ticket::KeyRingConfig c;
  std::string s;
  for (size_t i = 0; i < ticket::kTicketKeyBytes; ++i) s.push_back(static_cast<char>(base + 3 * i));
  c.keys.push_back({1, s});
  c.current_key_id = 1;
  return c;
}
// The deployment's ring, and another one with the same key id but another
// secret: its tickets look right but are forged.
ticket::KeyRingConfig real_keys() { return ring_config(0x21); }
ticket::KeyRingConfig forger_keys() { return ring_config(0x45); }

sim::SimConfig sim_config(uint64_t seed) {
  sim::SimConfig c;
  c.seed = seed;
  c.log_level = LogLevel::off;
  return c;
}

enum class KeysFrom { data_template, msg_template, none, group_chat };

struct World {
  sim::Simulation sim;
  std::unique_ptr<sim::SimDeployment> deployment;

  World(uint64_t seed, KeysFrom keys) : sim(sim_config(seed)) {
    deploy::DeploymentSpec spec = deploy::single_datacenter_spec();
    if (keys == KeysFrom::data_template) spec.templates.data.keys = real_keys();
    if (keys == KeysFrom::msg_template) {
      spec.instances_per_zone[deploy::Role::msg] = 1;
      spec.templates.msg.keys = real_keys();
    }
    if (keys == KeysFrom::group_chat) {  // msg, group and fan-out; keys only in msg's and group's templates
      spec.instances_per_zone[deploy::Role::msg] = 1;
      spec.instances_per_zone[deploy::Role::group] = 1;
      spec.instances_per_zone[deploy::Role::fanout] = 1;
      spec.templates.msg.keys = real_keys();
      spec.templates.group.keys = real_keys();
    }
    deployment = std::make_unique<sim::SimDeployment>(sim, std::make_shared<const deploy::Deployment>(spec));
  }
  std::vector<NodeId> nodes(deploy::Role r) const { return deployment->deployment().nodes_of(r); }
  inbox::InboxServiceStats inbox_stats() const {
    inbox::InboxServiceStats s;
    for (NodeId id : nodes(deploy::Role::inbox)) {
      const inbox::InboxServiceStats& t = deployment->node_as<inbox::InboxService>(id)->stats();
      s.unauthenticated += t.unauthenticated;
      s.forbidden += t.forbidden;
      s.appended += t.appended;
    }
    return s;
  }
  uint64_t contacts_unauthenticated() const {
    uint64_t n = 0;
    for (NodeId id : nodes(deploy::Role::contacts))
      n += deployment->node_as<contacts::ContactsService>(id)->stats().unauthenticated;
    return n;
  }
};

// Calls `node` until an answer whose code is not `unknown_code` (the store
// may still be electing); nullopt after a while.
template <class Reply, class Req>
Task<std::optional<Reply>> call(Caller& c, NodeId node, rpc::MethodSpec spec, Req req, std::string ticket,
                                int unknown_code) {
  for (int i = 0; i < 40; ++i) {
    rpc::CallOptions o;
    o.timeout = 4_s;
    o.ticket = ticket;
    rpc::Result<Reply> r = co_await c.endpoint.call<Reply>(node, spec, req, o);
    if (r.ok() && static_cast<int>(r->code()) != unknown_code) co_return r.value();
    co_await c.rt.sleep(200_ms);
  }
  co_return std::nullopt;
}

std::string stored_message(uint64_t sender, uint64_t to, const std::string& id) {
  msg::StoredMessage m;
  m.set_message_id(id);
  m.set_sender(sender);
  m.set_client_msg_id(id);
  m.set_to_uid(to);
  m.set_body("hello " + id);
  return m.SerializeAsString();
}

// What the script saw; checked after the run.
struct Seen {
  bool done = false;
  // Per bad ticket (none, forged, expired, bob's), in that order.
  std::vector<int> append, range, head, add, remove, list;
  int append_other_sender = -1;   // alice's ticket, sender_uid bob
  int append_forbidden = -1;      // alice's ticket, message naming carol
  int append_ok = -1;
  uint64_t bob_head_before = 99, bob_head_after = 0;
  int range_ok = -1;
  size_t range_messages = 99;
  int add_ok = -1;
  uint64_t list_version_before = 99;
  size_t list_size_before = 99;
  std::vector<uint64_t> list_after;
  uint64_t list_version_after = 0;
};

TEST(StorageTicketSim, BadTicketsRefusedAtInboxAndContacts) {
  World w(1, KeysFrom::data_template);
  ticket::KeyRing ring(real_keys());
  ticket::KeyRing forger(forger_keys());
  const NodeId inbox_node = w.nodes(deploy::Role::inbox).front();
  const NodeId contacts_node = w.nodes(deploy::Role::contacts).back();
  Seen seen;
  w.sim.add_node({"caller", sim::Placement{"dc1", "a", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      // An expired ticket: issued now with one second to live, used later.
      const std::string expired = *ring.issue(kAlice, c.rt.now(), 1_s);
      co_await c.rt.sleep(3_s);
      const std::string good = *ring.issue(kAlice, c.rt.now(), kTicketTtl);
      const std::string bobs = *ring.issue(kBob, c.rt.now(), kTicketTtl);
      const std::string forged = *forger.issue(kAlice, c.rt.now(), kTicketTtl);
      const std::vector<std::string> bad = {std::string(), forged, expired, bobs};
      auto code = [](const auto& r) { return r ? static_cast<int>(r->code()) : -1; };

      // inbox.Append into bob's inbox on alice's behalf.
      inbox::AppendRequest ap;
      ap.set_uid(kBob);
      ap.set_seq(1);
      ap.set_sender_uid(kAlice);
      ap.set_message(stored_message(kAlice, kBob, "m1"));
      for (const std::string& t : bad) {
        seen.append.push_back(
            code(co_await call<inbox::AppendReply>(c, inbox_node, inbox::kAppendMethod, ap, t, inbox::INBOX_UNKNOWN)));
      }
      inbox::AppendRequest other = ap;  // alice's ticket, claiming to be bob
      other.set_sender_uid(kBob);
      other.set_message(stored_message(kBob, kBob, "m1"));
      seen.append_other_sender =
          code(co_await call<inbox::AppendReply>(c, inbox_node, inbox::kAppendMethod, other, good, inbox::INBOX_UNKNOWN));
      inbox::AppendRequest lie = ap;  // alice's ticket and sender_uid, a message naming carol
      lie.set_message(stored_message(kCarol, kBob, "m1"));
      seen.append_forbidden =
          code(co_await call<inbox::AppendReply>(c, inbox_node, inbox::kAppendMethod, lie, good, inbox::INBOX_UNKNOWN));
      // Nothing reached bob's inbox (read with bob's own ticket).
      inbox::HeadRequest bh;
      bh.set_uid(kBob);
      auto h0 = co_await call<inbox::HeadReply>(c, inbox_node, inbox::kHeadMethod, bh, bobs, inbox::INBOX_UNKNOWN);
      if (h0 && h0->code() == inbox::INBOX_OK) seen.bob_head_before = h0->last_seq();
      seen.append_ok =
          code(co_await call<inbox::AppendReply>(c, inbox_node, inbox::kAppendMethod, ap, good, inbox::INBOX_UNKNOWN));
      auto h1 = co_await call<inbox::HeadReply>(c, inbox_node, inbox::kHeadMethod, bh, bobs, inbox::INBOX_UNKNOWN);
      if (h1 && h1->code() == inbox::INBOX_OK) seen.bob_head_after = h1->last_seq();

      // inbox.Range / Head of bob's inbox: only bob's ticket (alice's is
      // "another user's" here, so try the bad ones with uid alice -> bob swap).
      inbox::RangeRequest rr;
      rr.set_uid(kAlice);
      inbox::HeadRequest ah;
      ah.set_uid(kAlice);
      for (const std::string& t : bad) {
        seen.range.push_back(
            code(co_await call<inbox::RangeReply>(c, inbox_node, inbox::kRangeMethod, rr, t, inbox::INBOX_UNKNOWN)));
        seen.head.push_back(
            code(co_await call<inbox::HeadReply>(c, inbox_node, inbox::kHeadMethod, ah, t, inbox::INBOX_UNKNOWN)));
      }
      rr.set_uid(kBob);
      auto r = co_await call<inbox::RangeReply>(c, inbox_node, inbox::kRangeMethod, rr, bobs, inbox::INBOX_UNKNOWN);
      seen.range_ok = code(r);
      if (r) seen.range_messages = static_cast<size_t>(r->messages_size());

      // contacts: change / list alice's contacts.
      contacts::ChangeContactRequest ch;
      ch.set_uid(kAlice);
      ch.set_contact_uid(kContact);
      contacts::ListContactsRequest lr;
      lr.set_uid(kAlice);
      for (const std::string& t : bad) {
        seen.add.push_back(code(co_await call<contacts::ChangeContactReply>(
            c, contacts_node, contacts::kAddContactMethod, ch, t, contacts::CONTACTS_UNKNOWN)));
        seen.list.push_back(code(co_await call<contacts::ListContactsReply>(
            c, contacts_node, contacts::kListContactsMethod, lr, t, contacts::CONTACTS_UNKNOWN)));
      }
      auto l0 = co_await call<contacts::ListContactsReply>(c, contacts_node, contacts::kListContactsMethod, lr, good,
                                                           contacts::CONTACTS_UNKNOWN);
      if (l0 && l0->code() == contacts::CONTACTS_OK) {
        seen.list_version_before = l0->version();
        seen.list_size_before = static_cast<size_t>(l0->contact_uids_size());
      }
      seen.add_ok = code(co_await call<contacts::ChangeContactReply>(c, contacts_node, contacts::kAddContactMethod, ch,
                                                                     good, contacts::CONTACTS_UNKNOWN));
      for (const std::string& t : bad) {
        seen.remove.push_back(code(co_await call<contacts::ChangeContactReply>(
            c, contacts_node, contacts::kRemoveContactMethod, ch, t, contacts::CONTACTS_UNKNOWN)));
      }
      auto l1 = co_await call<contacts::ListContactsReply>(c, contacts_node, contacts::kListContactsMethod, lr, good,
                                                           contacts::CONTACTS_UNKNOWN);
      if (l1 && l1->code() == contacts::CONTACTS_OK) {
        seen.list_version_after = l1->version();
        seen.list_after.assign(l1->contact_uids().begin(), l1->contact_uids().end());
      }
      seen.done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return seen.done; }, w.sim.now() + kLimit));

  const std::vector<int> inbox_refused(4, inbox::INBOX_UNAUTHENTICATED);
  const std::vector<int> contacts_refused(4, contacts::CONTACTS_UNAUTHENTICATED);
  EXPECT_EQ(seen.append, inbox_refused) << "none, forged, expired, another user's";
  EXPECT_EQ(seen.append_other_sender, inbox::INBOX_UNAUTHENTICATED);
  EXPECT_EQ(seen.append_forbidden, inbox::INBOX_FORBIDDEN);
  EXPECT_EQ(seen.bob_head_before, 0u) << "a refused append wrote nothing";
  EXPECT_EQ(seen.append_ok, inbox::INBOX_OK);
  EXPECT_EQ(seen.bob_head_after, 1u);
  EXPECT_EQ(seen.range, inbox_refused);
  EXPECT_EQ(seen.head, inbox_refused);
  EXPECT_EQ(seen.range_ok, inbox::INBOX_OK);
  EXPECT_EQ(seen.range_messages, 1u);
  EXPECT_EQ(seen.add, contacts_refused);
  EXPECT_EQ(seen.list, contacts_refused);
  EXPECT_EQ(seen.remove, contacts_refused);
  EXPECT_EQ(seen.list_version_before, 0u) << "a refused add changed nothing";
  EXPECT_EQ(seen.list_size_before, 0u);
  EXPECT_EQ(seen.add_ok, contacts::CONTACTS_OK);
  EXPECT_EQ(seen.list_version_after, 1u) << "a refused remove changed nothing";
  EXPECT_EQ(seen.list_after, std::vector<uint64_t>{kContact});

  const inbox::InboxServiceStats s = w.inbox_stats();
  EXPECT_EQ(s.unauthenticated, 4u + 1u + 4u + 4u);
  EXPECT_EQ(s.forbidden, 1u);
  EXPECT_EQ(s.appended, 1u);
  EXPECT_EQ(w.contacts_unauthenticated(), 12u);
}

// make_node: a deployment running msg with keys gives the same keys to the
// data services (check on); a storage-only deployment checks nothing.
void range_without_ticket(KeysFrom keys, int want_missing, int want_good) {
  World w(2, keys);
  ticket::KeyRing ring(real_keys());
  const NodeId inbox_node = w.nodes(deploy::Role::inbox).front();
  const NodeId contacts_node = w.nodes(deploy::Role::contacts).front();
  bool done = false;
  int missing = -2, good_code = -2, list_missing = -2;
  w.sim.add_node({"caller", sim::Placement{"dc1", "b", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      co_await c.rt.sleep(3_s);
      inbox::RangeRequest rr;
      rr.set_uid(kAlice);
      auto a = co_await call<inbox::RangeReply>(c, inbox_node, inbox::kRangeMethod, rr, "", inbox::INBOX_UNKNOWN);
      missing = a ? static_cast<int>(a->code()) : -1;
      auto b = co_await call<inbox::RangeReply>(c, inbox_node, inbox::kRangeMethod, rr,
                                                *ring.issue(kAlice, c.rt.now(), kTicketTtl), inbox::INBOX_UNKNOWN);
      good_code = b ? static_cast<int>(b->code()) : -1;
      contacts::ListContactsRequest lr;
      lr.set_uid(kAlice);
      auto l = co_await call<contacts::ListContactsReply>(c, contacts_node, contacts::kListContactsMethod, lr, "",
                                                          contacts::CONTACTS_UNKNOWN);
      list_missing = l ? static_cast<int>(l->code()) : -1;
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kLimit));
  EXPECT_EQ(missing, want_missing);
  EXPECT_EQ(good_code, want_good);
  EXPECT_EQ(list_missing, want_missing == inbox::INBOX_OK ? static_cast<int>(contacts::CONTACTS_OK)
                                                         : static_cast<int>(contacts::CONTACTS_UNAUTHENTICATED));
}

TEST(StorageTicketSim, DeploymentWithMsgKeysTurnsTheCheckOn) {
  range_without_ticket(KeysFrom::msg_template, inbox::INBOX_UNAUTHENTICATED, inbox::INBOX_OK);
}

TEST(StorageTicketSim, StorageOnlyDeploymentChecksNothing) {
  range_without_ticket(KeysFrom::none, inbox::INBOX_OK, inbox::INBOX_OK);
}

TEST(StorageTicketSim, DeploymentRefusesBadDataKeys) {
  deploy::DeploymentSpec spec = deploy::single_datacenter_spec();
  spec.templates.data.keys = real_keys();
  spec.templates.data.keys.current_key_id = 7;  // not held
  EXPECT_NE(deploy::Deployment::validate(spec).find("templates.data.keys"), std::string::npos);
}

// Group fan-out acts for the sender with the ticket carried in the queue
// item; an item that outlived its ticket (every worker down until it
// expired) is still delivered with a ticket the worker issues for the same
// sender; an item carrying a forged ticket is never delivered.
TEST(StorageTicketSim, FanoutReissuesExpiredTicketAndRefusesForged) {
  World w(3, KeysFrom::group_chat);
  ticket::KeyRing ring(real_keys());
  ticket::KeyRing forger(forger_keys());
  auto fanout = [&] {
    msg::FanoutStats s;
    for (NodeId id : w.nodes(deploy::Role::fanout)) {
      const msg::FanoutStats& t = w.deployment->node_as<msg::FanoutWorker>(id)->stats();
      s.tickets_reissued += t.tickets_reissued;
      s.items_refused += t.items_refused;
      s.appends_ok += t.appends_ok;
    }
    return s;
  };
  bool done = false, stage1 = false, go2 = false, stage2 = false, go3 = false;
  int create = -1, send_long = -1, send_short = -1;
  uint64_t reissued_after_long = 99, refused_after_long = 99;
  std::vector<std::string> bob_ids;  // message ids in bob's inbox, in seq order
  w.sim.add_node({"caller", sim::Placement{"dc1", "a", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      rpc::Router router(c.rt, c.endpoint, w.deployment->deployment().directory(), rpc::Locality{"dc1", "a"});
      co_await c.rt.sleep(3_s);
      const std::string alice = *ring.issue(kAlice, c.rt.now(), kTicketTtl);
      const std::string bob = *ring.issue(kBob, c.rt.now(), kTicketTtl);
      rpc::CallOptions o;
      o.timeout = 3_s;
      o.ticket = alice;
      group::CreateRequest cr;
      cr.set_group_id(7);
      cr.set_creator(kAlice);
      cr.add_members(kAlice);
      cr.add_members(kBob);
      rpc::Result<group::GroupReply> g = co_await router.call<group::GroupReply>("group", group::kCreateMethod, cr, o);
      create = g.ok() ? static_cast<int>(g->code()) : -1;
      auto gsend = [&](std::string cmid, std::string ticket) -> Task<int> {
        msg::GroupSendRequest s;
        s.set_group_id(7);
        s.set_client_msg_id(std::move(cmid));
        s.set_body("to the group");
        rpc::CallOptions so;
        so.timeout = 3_s;
        so.ticket = std::move(ticket);
        rpc::Result<msg::GroupSendReply> r = co_await router.call<msg::GroupSendReply>("msg", msg::kGroupSendMethod, s, so);
        co_return r.ok() ? static_cast<int>(r->code()) : -1;
      };
      // 1. A ticket with an hour to live: carried and used as it is.
      send_long = co_await gsend("long", alice);
      co_await c.rt.sleep(3_s);
      reissued_after_long = fanout().tickets_reissued;
      refused_after_long = fanout().items_refused;
      stage1 = true;  // the test crashes every fan-out worker now
      while (!go2) co_await c.rt.sleep(50_ms);
      // 2. A ticket with two seconds to live: valid at GroupSend, expired (or
      //    about to) within the item's budget when the worker delivers it.
      send_short = co_await gsend("short", *ring.issue(kAlice, c.rt.now(), 2_s));
      // 3. An item in the queue with a forged ticket of alice (as if written
      //    into the queue's KV group by someone without the ring).
      {
        queue::KvPool pool(c.rt, c.endpoint, w.deployment->deployment().shard_map());
        queue::QueueConfig qc;  // = templates.msg.queue
        queue::QueueStore store(c.rt, pool, qc);
        msg::GroupQueueItem item;
        item.set_message_id("forged-1");
        item.set_sender(kAlice);
        item.set_client_msg_id("forged-1");
        item.set_group_id(7);
        item.set_body("not from alice");
        item.add_members(kAlice);
        item.add_members(kBob);
        item.set_sender_ticket(*forger.issue(kAlice, c.rt.now(), kTicketTtl));
        (void)co_await store.enqueue(queue::queue_for(7, qc.queues), "forged-1", item.SerializeAsString(),
                                     c.rt.now() + 5_s);
      }
      co_await c.rt.sleep(3_s);  // the short ticket expires while no worker runs
      stage2 = true;             // the test restarts the workers now
      while (!go3) co_await c.rt.sleep(50_ms);
      co_await c.rt.sleep(8_s);
      inbox::RangeRequest rr;
      rr.set_uid(kBob);
      rpc::CallOptions ro;
      ro.timeout = 3_s;
      ro.ticket = bob;
      rpc::Result<inbox::RangeReply> r = co_await router.call<inbox::RangeReply>("inbox", inbox::kRangeMethod, rr, ro);
      if (r.ok()) {
        for (const inbox::InboxMessage& m : r->messages()) {
          msg::StoredMessage sm;
          if (sm.ParseFromString(m.message())) bob_ids.push_back(sm.message_id());
        }
      }
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return stage1; }, w.sim.now() + kLimit));
  for (NodeId id : w.nodes(deploy::Role::fanout)) w.sim.crash(id);
  go2 = true;
  ASSERT_TRUE(w.sim.run_until([&] { return stage2; }, w.sim.now() + kLimit));
  for (NodeId id : w.nodes(deploy::Role::fanout)) w.sim.restart(id);
  go3 = true;
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kLimit));
  EXPECT_EQ(create, group::GROUP_OK);
  EXPECT_EQ(send_long, msg::MSG_OK);
  EXPECT_EQ(send_short, msg::MSG_OK);
  EXPECT_EQ(reissued_after_long, 0u) << "a ticket with life left is used as it is";
  EXPECT_EQ(refused_after_long, 0u);
  const msg::FanoutStats s = fanout();
  EXPECT_GE(s.tickets_reissued, 1u) << "the short ticket's item got a fresh ticket";
  EXPECT_GE(s.items_refused, 1u) << "the forged item (counted again if its batch is redelivered)";
  EXPECT_EQ(bob_ids, (std::vector<std::string>{msg::message_id_for(kAlice, "long"), msg::message_id_for(kAlice, "short")}));
}

}  // namespace
}  // namespace wx
