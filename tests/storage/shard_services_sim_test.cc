// Sharding (nodes/storage/shard/) and the contacts and inbox data-access
// services (nodes/storage/contacts/, nodes/storage/inbox/) in simulation:
// two datacenters, each with two shard groups of three KV replicas (one per
// zone), one contacts and one inbox service per zone and datacenter, users
// homed in both datacenters. Checks: keys land in their user's home-DC group
// and spread over all four groups; contacts add/remove/list round trip with
// the per-user version growing by one per change, also under concurrent
// changes through three instances; inbox append/range in seq order with
// idempotent appends; with one zone killed in both datacenters (each zone in
// turn) every service keeps working and after the restore nothing
// acknowledged is lost. WX_SEED_FIRST=S shifts every seed by S - 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/shard/shard_map.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"

namespace wx::shard {
namespace {

using namespace time_literals;

const char* const kDatacenters[] = {"dc1", "dc2"};
constexpr size_t kDatacenterCount = 2;
const char* const kZones[] = {"a", "b", "c"};
constexpr size_t kZoneCount = 3;
constexpr uint32_t kShardsPerDatacenter = 2;
constexpr size_t kGroupCount = kDatacenterCount * kShardsPerDatacenter;
// Users: kUsersPerDatacenter homed in each datacenter, uids dc_base + i.
constexpr uint64_t kUidBase[] = {100, 200};
constexpr uint64_t kUsersPerDatacenter = 8;
// Contact uids used by the tests (contacts need not be users of the map).
constexpr uint64_t kContactUidBase = 5000;

constexpr Duration kCallerTimeout = seconds(4);  // > the services' request budget
constexpr Duration kCallerRetryPause = milliseconds(50);
constexpr Duration kCallerGiveUp = seconds(30);
constexpr Duration kElectionSettle = seconds(2);  // every group has a leader by then
constexpr Duration kScenarioLimit = seconds(120);
constexpr Duration kCatchUp = seconds(2);  // a restored replica catches up

using Caller = wx::testing::ScriptCaller;

// Calls the services in turn (moving on after every inconclusive answer)
// until a reply whose code is not `unknown_code`; nullopt on giving up.
template <class Reply, class Req>
Task<std::optional<Reply>> call_definite(Caller& c, std::vector<NodeId> services,
                                         rpc::MethodSpec spec, Req req, int unknown_code) {
  TimePoint give_up = c.rt.now() + kCallerGiveUp;
  size_t i = 0;
  while (c.rt.now() < give_up) {
    rpc::CallOptions opts;
    opts.timeout = kCallerTimeout;
    rpc::Result<Reply> r =
        co_await c.endpoint.call<Reply>(services[i % services.size()], spec, req, opts);
    if (r.ok() && static_cast<int>(r->code()) != unknown_code) co_return r.value();
    ++i;
    co_await c.rt.sleep(kCallerRetryPause);
  }
  co_return std::nullopt;
}

uint64_t user_uid(size_t dc, uint64_t i) {
  return kUidBase[dc] + i;
}

deploy::DeploymentSpec world_spec() {
  deploy::DeploymentSpec spec;
  for (const char* dc : kDatacenters) spec.datacenters.push_back({dc, {kZones[0], kZones[1], kZones[2]}});
  spec.kv_shards_per_datacenter = kShardsPerDatacenter;
  spec.instances_per_zone = {{deploy::Role::contacts, 1}, {deploy::Role::inbox, 1}};
  for (size_t dc = 0; dc < kDatacenterCount; ++dc) {
    for (uint64_t i = 0; i < kUsersPerDatacenter; ++i) spec.home_datacenter[user_uid(dc, i)] = kDatacenters[dc];
  }
  return spec;
}

// Two datacenters, each with kShardsPerDatacenter KV groups and a contacts
// and an inbox service per zone, started from one deployment description.
struct World {
  sim::Simulation sim;
  sim::SimDeployment deployment;
  std::shared_ptr<const ShardMap> map;
  std::vector<std::vector<NodeId>> groups;        // KV nodes per group
  std::vector<std::vector<NodeId>> contacts_svc;  // [dc][zone]
  std::vector<std::vector<NodeId>> inbox_svc;     // [dc][zone]

  explicit World(uint64_t seed)
      : sim(config(seed)), deployment(sim, std::make_shared<const deploy::Deployment>(world_spec())),
        map(deployment.deployment().shard_map()) {
    for (size_t g = 0; g < map->group_count(); ++g) groups.push_back(map->group(g).replicas);
    for (const char* dc : kDatacenters) {
      contacts_svc.push_back(deployment.nodes_of(deploy::Role::contacts, dc));
      inbox_svc.push_back(deployment.nodes_of(deploy::Role::inbox, dc));
    }
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    // WX_SEED_FIRST=S (or WX_SEED=S) runs every scenario with its seed + S - 1.
    c.seed = seed + testing::seed_range(1).first - 1;
    // WX_VERBOSE=1: log at info level (debugging).
    c.log_level = testing::verbose() ? LogLevel::info : LogLevel::off;
    return c;
  }
  // The caller sits in zone "x" of dc1 (outside every outage).
  void add_caller(Caller::Script script, const std::string& name = "caller") {
    sim.add_node({name, sim::Placement{"dc1", "x", ""},
                  [script](Runtime& rt) { return std::make_unique<Caller>(rt, script); }});
  }
  void start_all() { deployment.start_all(); }
  size_t home_dc(uint64_t uid) const { return *map->home_of(uid) == kDatacenters[0] ? 0 : 1; }
  // Services of the uid's home datacenter, starting with zone `first_zone`.
  std::vector<NodeId> contacts_for(uint64_t uid, size_t first_zone = 0) const {
    return rotate(contacts_svc[home_dc(uid)], first_zone);
  }
  std::vector<NodeId> inbox_for(uint64_t uid, size_t first_zone = 0) const {
    return rotate(inbox_svc[home_dc(uid)], first_zone);
  }
  static std::vector<NodeId> rotate(const std::vector<NodeId>& v, size_t first) {
    std::vector<NodeId> out;
    for (size_t k = 0; k < v.size(); ++k) out.push_back(v[(first + k) % v.size()]);
    return out;
  }
  // The state machine of a live replica of group g.
  std::optional<std::vector<kv::Item>> dump(size_t g) {
    for (NodeId id : groups[g]) {
      kv::KvReplica* r = sim.node_as<kv::KvReplica>(id);
      if (r != nullptr && !r->recovering()) return r->dump();
    }
    return std::nullopt;
  }
  bool run(const bool* done) {
    return sim.run_until([done] { return *done; }, sim.now() + kScenarioLimit) && *done;
  }
};

// --- client-side helpers -------------------------------------------------------

Task<std::optional<contacts::ChangeContactReply>> change_contact(Caller& c,
                                                                 std::vector<NodeId> services,
                                                                 uint64_t uid, uint64_t contact,
                                                                 bool remove) {
  contacts::ChangeContactRequest req;
  req.set_uid(uid);
  req.set_contact_uid(contact);
  return call_definite<contacts::ChangeContactReply>(
      c, std::move(services), remove ? contacts::kRemoveContactMethod : contacts::kAddContactMethod,
      req, contacts::CONTACTS_UNKNOWN);
}

Task<std::optional<contacts::ListContactsReply>> list_contacts(Caller& c,
                                                               std::vector<NodeId> services,
                                                               uint64_t uid) {
  contacts::ListContactsRequest req;
  req.set_uid(uid);
  return call_definite<contacts::ListContactsReply>(
      c, std::move(services), contacts::kListContactsMethod, req, contacts::CONTACTS_UNKNOWN);
}

Task<std::optional<inbox::AppendReply>> append(Caller& c, std::vector<NodeId> services,
                                               uint64_t uid, uint64_t seq, std::string body) {
  inbox::AppendRequest req;
  req.set_uid(uid);
  req.set_seq(seq);
  req.set_message(std::move(body));
  return call_definite<inbox::AppendReply>(c, std::move(services), inbox::kAppendMethod, req,
                                           inbox::INBOX_UNKNOWN);
}

Task<std::optional<inbox::RangeReply>> range(Caller& c, std::vector<NodeId> services, uint64_t uid,
                                             uint64_t after_seq, uint32_t limit) {
  inbox::RangeRequest req;
  req.set_uid(uid);
  req.set_after_seq(after_seq);
  req.set_limit(limit);
  return call_definite<inbox::RangeReply>(c, std::move(services), inbox::kRangeMethod, req,
                                          inbox::INBOX_UNKNOWN);
}

std::string body_of(uint64_t uid, uint64_t seq) {
  return "msg " + std::to_string(uid) + "#" + std::to_string(seq);
}

// The uid of a key of the services ("inbox/<uid>/..", "c/<uid>/..", "cv/<uid>").
std::optional<uint64_t> uid_of_key(const std::string& key) {
  size_t a = key.find('/');
  if (a == std::string::npos) return std::nullopt;
  size_t b = key.find('/', a + 1);
  std::string digits = key.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoull(digits);
}

// --- ShardMap alone ------------------------------------------------------------

TEST(ShardMap, RoutesEveryUserToAGroupOfItsHomeDatacenterAndRejectsBadMaps) {
  World w(1);
  std::set<GroupIndex> used;
  for (size_t dc = 0; dc < kDatacenterCount; ++dc) {
    for (uint64_t i = 0; i < kUsersPerDatacenter; ++i) {
      uint64_t uid = user_uid(dc, i);
      std::optional<GroupIndex> g = w.map->group_of(uid);
      ASSERT_TRUE(g.has_value());
      EXPECT_EQ(w.map->group(*g).datacenter, kDatacenters[dc]);
      EXPECT_EQ(w.map->group(*g).shard, w.map->shard_of(uid));
      EXPECT_EQ(w.map->shard_of(uid), fnv1a64(std::to_string(uid)) % kShardsPerDatacenter);
      used.insert(*g);
    }
  }
  EXPECT_EQ(used.size(), kGroupCount);
  EXPECT_FALSE(w.map->group_of(999'999).has_value()) << "not in the directory, no default";

  ShardMapConfig bad;
  bad.shards_per_datacenter = 2;
  bad.groups.push_back(ShardGroup{"dc1", 0, {NodeId{1}}});
  EXPECT_NE(ShardMap::validate(bad), "") << "shard 1 missing";
  bad.groups.push_back(ShardGroup{"dc1", 1, {NodeId{2}}});
  EXPECT_EQ(ShardMap::validate(bad), "");
  bad.home_datacenter[7] = "dc9";
  EXPECT_NE(ShardMap::validate(bad), "") << "unknown home";
  EXPECT_THROW(ShardMap{bad}, std::invalid_argument);
}

// --- placement -------------------------------------------------------------------

struct PlacementState {
  int acked = 0, failed = 0;
  bool done = false;
};

Task<void> write_every_user(Caller& c, World* w, PlacementState* st) {
  co_await c.rt.sleep(kElectionSettle);
  for (size_t dc = 0; dc < kDatacenterCount; ++dc) {
    for (uint64_t i = 0; i < kUsersPerDatacenter; ++i) {
      uint64_t uid = user_uid(dc, i);
      std::optional<inbox::AppendReply> a =
          co_await append(c, w->inbox_for(uid), uid, 1, body_of(uid, 1));
      std::optional<contacts::ChangeContactReply> ch =
          co_await change_contact(c, w->contacts_for(uid), uid, kContactUidBase + i, false);
      bool ok = a && a->code() == inbox::INBOX_OK && ch && ch->code() == contacts::CONTACTS_OK;
      ++(ok ? st->acked : st->failed);
    }
  }
  st->done = true;
}

TEST(ShardServices, KeysLandInTheirUsersHomeDatacenterGroupsAndSpreadOverAllGroups) {
  World w(2);
  PlacementState st;
  World* wp = &w;
  w.add_caller([wp, &st](Caller& c) { return write_every_user(c, wp, &st); });
  w.start_all();
  ASSERT_TRUE(w.run(&st.done));
  EXPECT_EQ(st.acked, static_cast<int>(kDatacenterCount * kUsersPerDatacenter));
  EXPECT_EQ(st.failed, 0);
  ASSERT_TRUE(w.sim.run_for(kCatchUp));
  std::set<uint64_t> seen_users;
  size_t nonempty = 0;
  for (size_t g = 0; g < kGroupCount; ++g) {
    std::optional<std::vector<kv::Item>> items = w.dump(g);
    ASSERT_TRUE(items.has_value());
    if (!items->empty()) ++nonempty;
    for (const kv::Item& it : *items) {
      std::optional<uint64_t> uid = uid_of_key(it.key());
      ASSERT_TRUE(uid.has_value()) << it.key();
      EXPECT_EQ(w.map->group_of(*uid), g) << it.key() << " in group " << g;
      EXPECT_EQ(w.map->group(g).datacenter, *w.map->home_of(*uid)) << it.key();
      seen_users.insert(*uid);
    }
  }
  EXPECT_EQ(nonempty, kGroupCount);
  EXPECT_EQ(seen_users.size(), kDatacenterCount * kUsersPerDatacenter);
}

// --- contacts round trip -----------------------------------------------------------

struct ContactsLog {
  std::vector<std::optional<contacts::ChangeContactReply>> changes;
  std::vector<std::optional<contacts::ListContactsReply>> lists;
  bool done = false;
};

Task<void> contacts_round_trip(Caller& c, World* w, uint64_t uid, ContactsLog* log) {
  co_await c.rt.sleep(kElectionSettle);
  std::vector<NodeId> svc = w->contacts_for(uid);
  const uint64_t x = kContactUidBase + 1, y = kContactUidBase + 2, z = kContactUidBase + 3;
  log->lists.push_back(co_await list_contacts(c, svc, uid));               // empty, version 0
  log->changes.push_back(co_await change_contact(c, svc, uid, x, false));  // v1
  log->changes.push_back(co_await change_contact(c, svc, uid, y, false));  // v2
  log->changes.push_back(co_await change_contact(c, svc, uid, z, false));  // v3
  log->changes.push_back(co_await change_contact(c, svc, uid, y, false));  // no-op, v3
  log->lists.push_back(co_await list_contacts(c, svc, uid));               // {x, y, z} v3
  log->changes.push_back(co_await change_contact(c, svc, uid, y, true));   // v4
  log->changes.push_back(co_await change_contact(c, svc, uid, y, true));   // no-op, v4
  log->changes.push_back(
      co_await change_contact(c, svc, uid, kContactUidBase + 9, true));  // absent: no-op
  // Through another zone's instance.
  log->lists.push_back(co_await list_contacts(c, World::rotate(svc, 1), uid));  // {x, z} v4
  log->changes.push_back(co_await change_contact(c, svc, uid, y, false));       // v5: re-added
  log->lists.push_back(co_await list_contacts(c, svc, uid));                    // {x, y, z} v5
  // Invalid: self contact.
  log->changes.push_back(co_await change_contact(c, svc, uid, uid, false));
  log->done = true;
}

std::vector<uint64_t> uids_of(const contacts::ListContactsReply& r) {
  return std::vector<uint64_t>(r.contact_uids().begin(), r.contact_uids().end());
}

TEST(ShardServices, ContactsAddRemoveListRoundTripWithOneVersionPerChange) {
  World w(3);
  ContactsLog log;
  World* wp = &w;
  const uint64_t uid = user_uid(1, 3);  // homed in dc2
  w.add_caller([wp, uid, &log](Caller& c) { return contacts_round_trip(c, wp, uid, &log); });
  w.start_all();
  ASSERT_TRUE(w.run(&log.done));
  const uint64_t x = kContactUidBase + 1, y = kContactUidBase + 2, z = kContactUidBase + 3;
  struct Want {
    uint64_t version;
    bool changed;
  };
  const std::vector<Want> want = {{1, true}, {2, true},  {3, true},  {3, false},
                                  {4, true}, {4, false}, {4, false}, {5, true}};
  ASSERT_EQ(log.changes.size(), want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(log.changes[i].has_value()) << i;
    EXPECT_EQ(log.changes[i]->code(), contacts::CONTACTS_OK) << i;
    EXPECT_EQ(log.changes[i]->version(), want[i].version) << i;
    EXPECT_EQ(log.changes[i]->changed(), want[i].changed) << i;
  }
  ASSERT_TRUE(log.changes.back().has_value());
  EXPECT_EQ(log.changes.back()->code(), contacts::CONTACTS_INVALID);
  ASSERT_EQ(log.lists.size(), 4u);
  for (const auto& l : log.lists) {
    ASSERT_TRUE(l.has_value());
    EXPECT_EQ(l->code(), contacts::CONTACTS_OK);
  }
  EXPECT_EQ(log.lists[0]->version(), 0u);
  EXPECT_TRUE(log.lists[0]->contact_uids().empty());
  EXPECT_EQ(log.lists[1]->version(), 3u);
  EXPECT_EQ(uids_of(*log.lists[1]), (std::vector<uint64_t>{x, y, z}));
  EXPECT_EQ(log.lists[2]->version(), 4u);
  EXPECT_EQ(uids_of(*log.lists[2]), (std::vector<uint64_t>{x, z}));
  EXPECT_EQ(log.lists[3]->version(), 5u);
  EXPECT_EQ(uids_of(*log.lists[3]), (std::vector<uint64_t>{x, y, z}));
}

// --- concurrent changes of one user's contacts --------------------------------------------

constexpr size_t kConcurrentCallers = 3;
constexpr uint64_t kContactsPerCaller = 5;

struct ConcurrentLog {
  std::vector<std::optional<contacts::ChangeContactReply>> changes;
  std::optional<contacts::ListContactsReply> list;
  size_t finished = 0;
};

// Caller k adds its own contacts through zone k's instance.
Task<void> add_concurrently(Caller& c, World* w, uint64_t uid, size_t k, ConcurrentLog* log) {
  co_await c.rt.sleep(kElectionSettle);
  for (uint64_t i = 0; i < kContactsPerCaller; ++i) {
    log->changes.push_back(co_await change_contact(
        c, w->contacts_for(uid, k), uid, kContactUidBase + k * kContactsPerCaller + i, false));
  }
  if (++log->finished == kConcurrentCallers)
    log->list = co_await list_contacts(c, w->contacts_for(uid), uid);
}

TEST(ShardServices, ConcurrentChangesOfOneUserGetDistinctConsecutiveVersions) {
  World w(8);
  ConcurrentLog log;
  World* wp = &w;
  const uint64_t uid = user_uid(0, 2);
  for (size_t k = 0; k < kConcurrentCallers; ++k) {
    w.add_caller([wp, uid, k, &log](Caller& c) { return add_concurrently(c, wp, uid, k, &log); },
                 "caller-" + std::to_string(k));
  }
  w.start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return log.list.has_value(); }, w.sim.now() + kScenarioLimit));
  const uint64_t total = kConcurrentCallers * kContactsPerCaller;
  ASSERT_EQ(log.changes.size(), total);
  std::set<uint64_t> versions;
  for (const auto& r : log.changes) {
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->code(), contacts::CONTACTS_OK);
    EXPECT_TRUE(r->changed());
    versions.insert(r->version());
  }
  EXPECT_EQ(versions.size(), total) << "every change has its own version";
  EXPECT_EQ(*versions.begin(), 1u);
  EXPECT_EQ(*versions.rbegin(), total);
  EXPECT_EQ(log.list->version(), total);
  EXPECT_EQ(static_cast<uint64_t>(log.list->contact_uids_size()), total);
}

// --- inbox ------------------------------------------------------------------------------

struct InboxLog {
  std::vector<std::optional<inbox::AppendReply>> appends;
  std::optional<inbox::RangeReply> all, middle, tail, none;
  std::optional<inbox::AppendReply> conflict, stale;
  std::optional<inbox::HeadReply> head;
  bool done = false;
};

// Seqs appended, in increasing order with gaps (an inbox only grows in seq
// order: a lower seq after a higher one is INBOX_STALE_SEQ).
const std::vector<uint64_t> kInboxSeqs = {1, 2, 3, 7, 8, 10, 1'000'000'000'000ULL};

Task<void> inbox_round_trip(Caller& c, World* w, uint64_t uid, InboxLog* log) {
  co_await c.rt.sleep(kElectionSettle);
  std::vector<NodeId> svc = w->inbox_for(uid);
  for (uint64_t seq : kInboxSeqs)
    log->appends.push_back(co_await append(c, svc, uid, seq, body_of(uid, seq)));
  // The same (uid, seq) again, through another instance: stored once.
  log->appends.push_back(co_await append(c, World::rotate(svc, 2), uid, 7, body_of(uid, 7)));
  log->conflict = co_await append(c, svc, uid, 7, "other bytes");
  log->stale = co_await append(c, svc, uid, 5, body_of(uid, 5));  // below the head, never stored
  {
    inbox::HeadRequest req;
    req.set_uid(uid);
    log->head = co_await call_definite<inbox::HeadReply>(c, svc, inbox::kHeadMethod, req, inbox::INBOX_UNKNOWN);
  }
  log->all = co_await range(c, svc, uid, 0, 0);
  log->middle = co_await range(c, svc, uid, 2, 3);  // 3, 7, 8
  log->tail = co_await range(c, svc, uid, 10, 0);   // 10^12
  log->none = co_await range(c, svc, uid, 1'000'000'000'000ULL, 0);
  log->done = true;
}

std::vector<uint64_t> seqs_of(const inbox::RangeReply& r) {
  std::vector<uint64_t> out;
  for (const auto& m : r.messages()) out.push_back(m.seq());
  return out;
}

TEST(ShardServices, InboxAppendThenRangeReturnsExactlyTheMessagesInSeqOrder) {
  World w(4);
  InboxLog log;
  World* wp = &w;
  const uint64_t uid = user_uid(0, 5);
  w.add_caller([wp, uid, &log](Caller& c) { return inbox_round_trip(c, wp, uid, &log); });
  w.start_all();
  ASSERT_TRUE(w.run(&log.done));
  ASSERT_EQ(log.appends.size(), kInboxSeqs.size() + 1);
  for (size_t i = 0; i < log.appends.size(); ++i) {
    ASSERT_TRUE(log.appends[i].has_value()) << i;
    EXPECT_EQ(log.appends[i]->code(), inbox::INBOX_OK) << i;
    EXPECT_EQ(log.appends[i]->duplicate(), i == kInboxSeqs.size()) << i;
  }
  ASSERT_TRUE(log.conflict.has_value());
  EXPECT_EQ(log.conflict->code(), inbox::INBOX_CONFLICT);
  ASSERT_TRUE(log.stale.has_value());
  EXPECT_EQ(log.stale->code(), inbox::INBOX_STALE_SEQ);
  EXPECT_EQ(log.stale->last_seq(), 1'000'000'000'000ULL);
  ASSERT_TRUE(log.head.has_value());
  EXPECT_EQ(log.head->code(), inbox::INBOX_OK);
  EXPECT_EQ(log.head->last_seq(), 1'000'000'000'000ULL);
  ASSERT_TRUE(log.all && log.middle && log.tail && log.none);
  std::vector<uint64_t> sorted = kInboxSeqs;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(seqs_of(*log.all), sorted);
  for (const auto& m : log.all->messages()) EXPECT_EQ(m.message(), body_of(uid, m.seq()));
  EXPECT_EQ(seqs_of(*log.middle), (std::vector<uint64_t>{3, 7, 8}));
  EXPECT_EQ(seqs_of(*log.tail), (std::vector<uint64_t>{1'000'000'000'000ULL}));
  EXPECT_TRUE(log.none->messages().empty());
  // Stored once: exactly the distinct seqs in the user's group.
  ASSERT_TRUE(w.sim.run_for(kCatchUp));
  std::optional<std::vector<kv::Item>> items = w.dump(*w.map->group_of(uid));
  ASSERT_TRUE(items.has_value());
  size_t stored = 0;
  for (const kv::Item& it : *items)
    stored += it.key().rfind(inbox::inbox_prefix(uid), 0) == 0 ? 1 : 0;
  EXPECT_EQ(stored, kInboxSeqs.size());
}

// --- a zone outage -----------------------------------------------------------------------

// Per user: contacts added before / during the outage, messages appended.
constexpr uint64_t kOutageUsers = 4;  // per datacenter
constexpr uint64_t kContactsPerPhase = 2;
constexpr uint64_t kMessagesPerPhase = 3;

struct OutageState {
  int acked = 0, failed = 0;
  bool before_done = false, go_during = false, during_done = false, go_read = false,
       read_done = false;
  // Read back after the restore, per uid.
  std::map<uint64_t, std::optional<contacts::ListContactsReply>> lists;
  std::map<uint64_t, std::optional<inbox::RangeReply>> ranges;
  std::map<uint64_t, uint64_t> last_version;  // from the change replies
  int version_steps_wrong = 0;
};

std::vector<uint64_t> outage_uids() {
  std::vector<uint64_t> out;
  for (size_t dc = 0; dc < kDatacenterCount; ++dc) {
    for (uint64_t i = 0; i < kOutageUsers; ++i) out.push_back(user_uid(dc, i));
  }
  return out;
}

// The first user's calls start at zone `first_zone_first_user`'s instances,
// the others' at `first_zone_rest`'s (a caller that saw zone a fail moves on).
Task<void> outage_phase(Caller& c, World* w, OutageState* st, uint64_t phase,
                        size_t first_zone_first_user, size_t first_zone_rest) {
  bool first_user = true;
  for (uint64_t uid : outage_uids()) {
    const size_t first_zone = first_user ? first_zone_first_user : first_zone_rest;
    first_user = false;
    for (uint64_t k = 0; k < kContactsPerPhase; ++k) {
      std::optional<contacts::ChangeContactReply> r =
          co_await change_contact(c, w->contacts_for(uid, first_zone), uid,
                                  kContactUidBase + phase * kContactsPerPhase + k, false);
      if (r && r->code() == contacts::CONTACTS_OK && r->changed()) {
        ++st->acked;
        if (r->version() != st->last_version[uid] + 1) ++st->version_steps_wrong;
        st->last_version[uid] = r->version();
      } else {
        ++st->failed;
      }
    }
    for (uint64_t k = 0; k < kMessagesPerPhase; ++k) {
      uint64_t seq = phase * kMessagesPerPhase + k + 1;
      std::optional<inbox::AppendReply> r =
          co_await append(c, w->inbox_for(uid, first_zone), uid, seq, body_of(uid, seq));
      ++((r && r->code() == inbox::INBOX_OK) ? st->acked : st->failed);
    }
  }
}

Task<void> outage_script(Caller& c, World* w, OutageState* st, size_t victim) {
  co_await c.rt.sleep(kElectionSettle);
  co_await outage_phase(c, w, st, 0, victim, victim);
  st->before_done = true;
  while (!st->go_during) co_await c.rt.sleep(10_ms);
  // The victim zone is dark: the first user's calls start with its instances
  // anyway (they time out and the caller moves on), the others' with the
  // next zone's.
  co_await outage_phase(c, w, st, 1, victim, (victim + 1) % kZoneCount);
  st->during_done = true;
  while (!st->go_read) co_await c.rt.sleep(10_ms);
  // Read back through the restored zone's instances.
  for (uint64_t uid : outage_uids()) {
    st->lists[uid] = co_await list_contacts(c, w->contacts_for(uid, victim), uid);
    st->ranges[uid] = co_await range(c, w->inbox_for(uid, victim), uid, 0, 0);
  }
  st->read_done = true;
}

std::string up_map(World& w) {
  std::string s;
  for (size_t i = 1; i <= w.sim.node_count(); ++i)
    s += w.sim.is_up(NodeId{static_cast<uint32_t>(i)}) ? '1' : '0';
  return s;
}

TEST(ShardServices, EveryServiceKeepsWorkingWithAZoneKilledAndLosesNothingAcknowledged) {
  for (size_t victim = 0; victim < kZoneCount; ++victim) {
    SCOPED_TRACE(std::string("victim zone ") + kZones[victim]);
    World w(5 + victim);
    OutageState st;
    World* wp = &w;
    w.add_caller([wp, &st, victim](Caller& c) { return outage_script(c, wp, &st, victim); });
    w.start_all();
    ASSERT_TRUE(w.sim.run_until([&] { return st.before_done; }, w.sim.now() + kScenarioLimit));
    // In both datacenters: one replica of every group, one instance of every
    // service.
    w.sim.faults().kill_zone(kZones[victim]);
    st.go_during = true;
    ASSERT_TRUE(w.sim.run_until([&] { return st.during_done; }, w.sim.now() + kScenarioLimit))
        << w.sim.failure().value_or("") << " acked " << st.acked << " failed " << st.failed
        << " up " << up_map(w);
    ASSERT_TRUE(w.sim.faults().restore_zone(kZones[victim]));
    ASSERT_TRUE(w.sim.run_for(kCatchUp));
    st.go_read = true;
    ASSERT_TRUE(w.run(&st.read_done));
    const uint64_t per_user = 2 * (kContactsPerPhase + kMessagesPerPhase);
    EXPECT_EQ(st.acked, static_cast<int>(per_user * outage_uids().size()));
    EXPECT_EQ(st.failed, 0);
    EXPECT_EQ(st.version_steps_wrong, 0);
    for (uint64_t uid : outage_uids()) {
      const auto& l = st.lists[uid];
      ASSERT_TRUE(l.has_value()) << uid;
      EXPECT_EQ(l->code(), contacts::CONTACTS_OK);
      EXPECT_EQ(l->version(), 2 * kContactsPerPhase) << uid;
      std::vector<uint64_t> want;
      for (uint64_t k = 0; k < 2 * kContactsPerPhase; ++k) want.push_back(kContactUidBase + k);
      EXPECT_EQ(uids_of(*l), want) << uid;
      const auto& r = st.ranges[uid];
      ASSERT_TRUE(r.has_value()) << uid;
      std::vector<uint64_t> seqs;
      for (uint64_t q = 1; q <= 2 * kMessagesPerPhase; ++q) seqs.push_back(q);
      EXPECT_EQ(seqs_of(*r), seqs) << uid;
      for (const auto& m : r->messages()) EXPECT_EQ(m.message(), body_of(uid, m.seq()));
    }
    // The restored replicas caught up: every group's victim-zone replica
    // holds what its peers hold.
    ASSERT_TRUE(w.sim.run_for(kCatchUp));
    for (size_t g = 0; g < kGroupCount; ++g) {
      kv::KvReplica* a = w.sim.node_as<kv::KvReplica>(w.groups[g][victim]);
      kv::KvReplica* b = w.sim.node_as<kv::KvReplica>(w.groups[g][(victim + 1) % kZoneCount]);
      ASSERT_TRUE(a != nullptr && b != nullptr);
      std::vector<kv::Item> da = a->dump(), db = b->dump();
      ASSERT_EQ(da.size(), db.size()) << "group " << g;
      for (size_t i = 0; i < da.size(); ++i)
        EXPECT_EQ(da[i].SerializeAsString(), db[i].SerializeAsString());
    }
  }
}

}  // namespace
}  // namespace wx::shard
