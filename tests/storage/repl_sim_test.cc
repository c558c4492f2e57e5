// Multi-datacenter asynchronous replication (docs/storage.md, "Change stream
// and replication"): the KV change stream (kv.Changes), the REPLICATE
// command, shard::user_of_key, and the Replicator in simulation.
//
// The replication world: two datacenters × three zones × two shards of KV
// replicas from one deploy::DeploymentSpec, a Replicator per zone and
// datacenter (added after the deployment's nodes), and a writer per
// datacenter (zone "w") doing puts, get+cas and txns of user records (inbox,
// inbox head, contacts, contacts version, sent and delivery records) of users
// homed there, plus non-user keys (queue/, acct/) that must never travel.
// Convergence: for every shard and every pair of datacenters, the user
// records of the source datacenter's users in the source group (its most
// advanced replica) equal, value and version, those in the other
// datacenter's group, every acknowledged write's version is there, and no
// non-user key crossed. Scenarios: plain, a partition between the
// datacenters, a datacenter lost and back (stream catch-up; with a small
// retention: full copy), replicator crashes and a zone outage in the
// consuming datacenter, and a seeded sweep of random faults with the
// same-seed trace-hash check. WX_SEEDS / WX_SEED_FIRST / WX_SEED
// (tests/support/seeds.h); WX_VERBOSE=1 prints one line per seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nodes/storage/kv/kv_client.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/repl/replicator.h"
#include "nodes/storage/shard/shard_map.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"

namespace wx::repl {
namespace {

using namespace time_literals;
using Caller = wx::testing::ScriptCaller;

const char* const kDcs[] = {"dc1", "dc2"};
constexpr size_t kDcCount = 2;
const char* const kZones[] = {"a", "b", "c"};
constexpr size_t kZoneCount = 3;
constexpr uint32_t kShards = 2;
constexpr uint64_t kUidBase[] = {100, 200};
constexpr uint64_t kUsersPerDc = 8;

// --- user_of_key ------------------------------------------------------------------

TEST(UserOfKey, RecognisesEveryPerUserPrefixAndNothingElse) {
  using shard::user_of_key;
  EXPECT_EQ(user_of_key("inbox/42/00000000000000000001"), 42u);
  EXPECT_EQ(user_of_key("inboxhead/42"), 42u);
  EXPECT_EQ(user_of_key("c/7/99"), 7u);
  EXPECT_EQ(user_of_key("cv/7"), 7u);
  EXPECT_EQ(user_of_key("msgsent/18446744073709551615/cmid-1"), 18446744073709551615ull);
  EXPECT_EQ(user_of_key("msgdlv/0/x"), 0u);
  EXPECT_EQ(user_of_key("c/5/"), 5u);  // a nested prefix needs the slash, not more
  for (const char* k : {"", "inbox/", "inbox/42", "inbox//1", "inboxhead/", "inboxhead/42/1", "inboxhead/4x",
                        "cv/", "cv/7/", "c/7", "c/x/1", "c/07/1", "c/-7/1", "c/+7/1",
                        "msgsent/18446744073709551616/x", "queue/1/lease", "fanout/1", "acct/7", "acctname/bob",
                        "seqsvr/max/1", "repl/cursor/dc1/0", "repl/lease/dc1/0", "C/7/1", "cv7", "inbox42/1"}) {
    EXPECT_FALSE(user_of_key(k).has_value()) << "'" << k << "'";
  }
}

// --- kv.Changes and REPLICATE on one group ------------------------------------------

// One datacenter, one shard: a single KV group from a deployment description.
struct OneGroup {
  sim::Simulation sim;
  sim::SimDeployment deployment;
  std::vector<NodeId> replicas;

  OneGroup(uint64_t seed, uint64_t retention)
      : sim(config(seed)), deployment(sim, std::make_shared<const deploy::Deployment>(spec(retention))) {
    replicas = deployment.deployment().shard_map()->group(0).replicas;
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = testing::verbose() ? LogLevel::info : LogLevel::off;
    return c;
  }
  static deploy::DeploymentSpec spec(uint64_t retention) {
    deploy::DeploymentSpec s;
    s.datacenters.push_back({"dc1", {"a", "b", "c"}});
    s.default_datacenter = "dc1";
    s.templates.kv.change_retention = retention;
    return s;
  }
  void run_script(Caller::Script script, bool* done) {
    sim.add_node({"caller", sim::Placement{"dc1", "x", ""},
                  [script](Runtime& rt) { return std::make_unique<Caller>(rt, script); }});
    deployment.start_all();
    ASSERT_TRUE(sim.run_until([done] { return *done; }, sim.now() + seconds(120)) && *done)
        << sim.failure().value_or("script did not finish");
  }
};

Task<std::optional<kv::ChangesReply>> changes(Caller& c, NodeId replica, uint64_t after, uint32_t max_entries) {
  kv::ChangesRequest req;
  req.set_after(after);
  req.set_max_entries(max_entries);
  rpc::CallOptions opts;
  opts.timeout = seconds(1);
  for (int attempt = 0; attempt < 50; ++attempt) {
    rpc::Result<kv::ChangesReply> r = co_await c.endpoint.call<kv::ChangesReply>(replica, kv::kChangesMethod, req, opts);
    if (r.ok() && r->code() != kv::RETRY) co_return r.value();
    co_await c.rt.sleep(milliseconds(100));
  }
  co_return std::nullopt;
}

TEST(KvChanges, OrderedOnEveryReplicaWithHighPagingAndNoReplicatedWrites) {
  OneGroup w(1, 1'000'000);
  bool done = false;
  std::vector<std::string> failures;
  auto fail = [&failures](std::string s) { failures.push_back(std::move(s)); };
  w.run_script(
      [&](Caller& c) -> Task<void> {
        kv::KvClientConfig kc;
        kc.replicas = w.replicas;
        kv::KvClient kv(c.rt, c.endpoint, kc);
        co_await c.rt.sleep(seconds(2));
        // 20 puts of 4 keys, a failing cas, a txn of two keys, a replicate.
        for (int i = 0; i < 20; ++i) {
          kv::KvResult r = co_await kv.put("k" + std::to_string(i % 4), "v" + std::to_string(i));
          if (r.code != kv::KvResultCode::ok) fail("put failed");
        }
        kv::KvResult cf = co_await kv.cas("k0", 99, "nope");
        if (cf.code != kv::KvResultCode::cas_failed) fail("cas should fail");
        std::vector<kv::KvTxnWrite> tw(2);
        tw[0] = {"t1", "x"};
        tw[1] = {"t2", "y"};
        kv::KvTxnResult t = co_await kv.txn({}, tw);
        if (t.code != kv::KvTxnCode::ok) fail("txn failed");
        std::vector<kv::VersionedWrite> rw(1);
        rw[0].set_key("r1");
        rw[0].set_value("copied");
        rw[0].set_version(7);
        kv::KvReplicateResult rr = co_await kv.replicate(rw, "cur", 5);
        if (rr.code != kv::KvReplicateCode::ok || rr.applied_writes != 1) fail("replicate failed");
        kv::KvResult last = co_await kv.put("k9", "last");  // a barrier after everything
        if (last.code != kv::KvResultCode::ok) fail("last put failed");
        co_await c.rt.sleep(seconds(1));  // followers apply too

        std::vector<std::vector<std::string>> seen;  // per replica: "idx key value version"
        for (NodeId r : w.replicas) {
          std::optional<kv::ChangesReply> rep = co_await changes(c, r, 0, 0);
          if (!rep || rep->code() != kv::OK) {
            fail("changes failed on a replica");
            continue;
          }
          std::vector<std::string> lines;
          uint64_t prev = 0;
          for (const kv::ChangeEntry& e : rep->entries()) {
            if (e.idx() <= prev) fail("entries not in increasing idx order");
            if (e.idx() > rep->high()) fail("entry above high");
            prev = e.idx();
            for (const kv::VersionedWrite& vw : e.writes()) {
              lines.push_back(std::to_string(e.idx()) + " " + vw.key() + " " + vw.value() + " " +
                              std::to_string(vw.version()));
              if (vw.key() == "r1" || vw.key() == "cur") fail("a REPLICATE write is in the change stream");
            }
          }
          if (rep->more()) fail("unexpected more");
          if (rep->floor() != 0) fail("floor should be 0");
          seen.push_back(lines);
        }
        if (seen.size() != 3) co_return;
        for (size_t i = 1; i < seen.size(); ++i) {
          if (seen[i] != seen[0]) fail("replicas serve different streams");
        }
        // 20 puts + 2 txn writes + the last put, the puts' versions per key in order.
        if (seen[0].size() != 23) fail("expected 23 changes, got " + std::to_string(seen[0].size()));
        if (seen[0].size() >= 2 && seen[0][0].find(" k0 v0 1") == std::string::npos) fail("first change: " + seen[0][0]);
        if (seen[0].size() >= 20 && seen[0][19].find(" k3 v19 5") == std::string::npos) fail("20th: " + seen[0][19]);
        // The txn's two writes share one idx.
        if (seen[0].size() >= 22) {
          std::string a = seen[0][20].substr(0, seen[0][20].find(' '));
          std::string b = seen[0][21].substr(0, seen[0][21].find(' '));
          if (a != b) fail("the txn's writes should share one entry");
        }
        // Paging: 5 entries at a time, more set, resuming after the last idx.
        uint64_t after = 0;
        size_t total = 0;
        for (int page = 0; page < 20; ++page) {
          std::optional<kv::ChangesReply> rep = co_await changes(c, w.replicas[0], after, 5);
          if (!rep || rep->code() != kv::OK) {
            fail("paging failed");
            break;
          }
          for (const kv::ChangeEntry& e : rep->entries()) total += static_cast<size_t>(e.writes_size());
          if (rep->entries_size() > 5) fail("more entries than asked");
          if (rep->entries_size() == 0) break;
          if (rep->more() && rep->entries_size() != 5) fail("more set on a page that was not cut");
          after = rep->entries(rep->entries_size() - 1).idx();
          if (!rep->more()) break;
        }
        if (total != 23) fail("paging saw " + std::to_string(total) + " changes");
        // Asking after high: nothing, OK.
        std::optional<kv::ChangesReply> tail = co_await changes(c, w.replicas[1], 1'000'000, 0);
        if (!tail || tail->code() != kv::OK || tail->entries_size() != 0) fail("after high should be empty");
        done = true;
      },
      &done);
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

TEST(KvChanges, RetentionTrimsTheStreamAndOlderCursorsAreTruncated) {
  constexpr uint64_t kRetention = 16;
  OneGroup w(2, kRetention);
  bool done = false;
  std::vector<std::string> failures;
  auto fail = [&failures](std::string s) { failures.push_back(std::move(s)); };
  w.run_script(
      [&](Caller& c) -> Task<void> {
        kv::KvClientConfig kc;
        kc.replicas = w.replicas;
        kv::KvClient kv(c.rt, c.endpoint, kc);
        co_await c.rt.sleep(seconds(2));
        for (int i = 0; i < 100; ++i) {
          if ((co_await kv.put("k" + std::to_string(i), "v")).code != kv::KvResultCode::ok) fail("put failed");
        }
        co_await c.rt.sleep(seconds(1));
        for (NodeId r : w.replicas) {
          std::optional<kv::ChangesReply> rep = co_await changes(c, r, 0, 0);
          if (!rep) {
            fail("no answer");
            continue;
          }
          if (rep->code() != kv::TRUNCATED) fail("after 0 should be TRUNCATED");
          if (rep->floor() == 0 || rep->floor() + kRetention > rep->high() || rep->high() < 100)
            fail("floor " + std::to_string(rep->floor()) + " high " + std::to_string(rep->high()));
          // After the floor: OK, complete, at least `retention` indexes kept.
          std::optional<kv::ChangesReply> ok = co_await changes(c, r, rep->floor(), 0);
          if (!ok || ok->code() != kv::OK) {
            fail("after floor should be OK");
            continue;
          }
          if (ok->entries_size() < static_cast<int>(kRetention) - 2) fail("too few entries kept");
          if (ok->entries_size() > 0 && ok->entries(0).idx() <= rep->floor()) fail("entry at or below floor");
        }
        done = true;
      },
      &done);
  for (const std::string& f : failures) ADD_FAILURE() << f;
  for (NodeId r : w.replicas) {
    kv::KvReplica* rep = w.sim.node_as<kv::KvReplica>(r);
    ASSERT_NE(rep, nullptr);
    EXPECT_GT(rep->change_floor(), 0u);
  }
}

TEST(KvReplicate, OlderAndDuplicateVersionsAreIgnoredAndTheCursorOnlyGrows) {
  OneGroup w(3, 1'000'000);
  bool done = false;
  std::vector<std::string> failures;
  auto fail = [&failures](std::string s) { failures.push_back(std::move(s)); };
  auto vw = [](std::string k, std::string v, uint64_t ver) {
    kv::VersionedWrite x;
    x.set_key(std::move(k));
    x.set_value(std::move(v));
    x.set_version(ver);
    return x;
  };
  w.run_script(
      [&](Caller& c) -> Task<void> {
        kv::KvClientConfig kc;
        kc.replicas = w.replicas;
        kv::KvClient kv(c.rt, c.endpoint, kc);
        co_await c.rt.sleep(seconds(2));
        auto expect = [&](const std::string& key, const std::string& value, uint64_t version) -> Task<void> {
          kv::KvResult g = co_await kv.get(key);
          if (g.code != kv::KvResultCode::ok || !g.found || g.value != value || g.version != version) {
            fail(key + ": got '" + g.value + "' v" + std::to_string(g.version) + ", want '" + value + "' v" +
                 std::to_string(version));
          }
        };
        std::vector<kv::VersionedWrite> first;
        first.push_back(vw("a", "five", 5));
        first.push_back(vw("b", "two", 2));
        kv::KvReplicateResult r = co_await kv.replicate(first, "cur", 10);
        if (r.code != kv::KvReplicateCode::ok || r.applied_writes != 2) fail("first replicate");
        co_await expect("a", "five", 5);
        co_await expect("b", "two", 2);
        co_await expect("cur", "10", 1);
        // Older and duplicate versions: no effect; the cursor does not go back.
        std::vector<kv::VersionedWrite> old;
        old.push_back(vw("a", "three", 3));
        old.push_back(vw("b", "two-again", 2));
        r = co_await kv.replicate(old, "cur", 7);
        if (r.code != kv::KvReplicateCode::ok || r.applied_writes != 0) fail("old replicate applied something");
        co_await expect("a", "five", 5);
        co_await expect("b", "two", 2);
        co_await expect("cur", "10", 1);
        // Newer: applied; the cursor grows.
        std::vector<kv::VersionedWrite> newer;
        newer.push_back(vw("a", "six", 6));
        r = co_await kv.replicate(newer, "cur", 12);
        if (r.code != kv::KvReplicateCode::ok || r.applied_writes != 1) fail("newer replicate");
        co_await expect("a", "six", 6);
        co_await expect("cur", "12", 2);
        // Cursor only.
        r = co_await kv.replicate(std::vector<kv::VersionedWrite>(), "cur", 20);
        if (r.code != kv::KvReplicateCode::ok) fail("cursor-only replicate");
        co_await expect("cur", "20", 3);
        // A local put after a replicated version continues from it.
        kv::KvResult p = co_await kv.put("a", "local");
        if (p.code != kv::KvResultCode::ok || p.version != 7) fail("put after replicate");
        // Invalid: repeated key, version 0, the cursor key among the writes, nothing at all.
        std::vector<std::vector<kv::VersionedWrite>> bads(4);
        bads[0].push_back(vw("x", "1", 1));
        bads[0].push_back(vw("x", "2", 2));
        bads[1].push_back(vw("y", "1", 0));
        bads[2].push_back(vw("cur", "1", 9));
        for (const std::vector<kv::VersionedWrite>& bad : bads) {
          std::string ck = bad.empty() ? "" : "cur";
          kv::KvReplicateResult b = co_await kv.replicate(bad, ck, 1);
          if (b.code != kv::KvReplicateCode::invalid) fail("invalid replicate accepted");
        }
        std::vector<kv::VersionedWrite> many;
        for (size_t i = 0; i <= kv::kReplicateWritesMax; ++i) many.push_back(vw("m" + std::to_string(i), "v", 1));
        if ((co_await kv.replicate(many, "", 0)).code != kv::KvReplicateCode::invalid) fail("too many writes accepted");
        // Raw, bypassing the client's check: the replica refuses it too.
        kv::WriteRequest raw;
        kv::Command* cmd = raw.mutable_command();
        cmd->set_client_id(77);
        cmd->set_seq(1);
        *cmd->add_replicated() = vw("z", "1", 1);
        *cmd->add_replicated() = vw("z", "2", 2);
        bool refused = false;
        for (NodeId rid : w.replicas) {
          rpc::CallOptions opts;
          opts.timeout = seconds(1);
          rpc::Result<kv::WriteReply> wr = co_await c.endpoint.call<kv::WriteReply>(rid, kv::kReplicateMethod, raw, opts);
          if (wr.ok() && wr->code() == kv::INVALID) refused = true;
        }
        if (!refused) fail("raw invalid replicate not refused");
        kv::KvResult z = co_await kv.get("z");
        if (z.code != kv::KvResultCode::ok || z.found) fail("invalid replicate wrote something");
        // A retry of one request id answers the stored result without applying again.
        kv::WriteRequest again;
        kv::Command* c2 = again.mutable_command();
        c2->set_client_id(78);
        c2->set_seq(1);
        *c2->add_replicated() = vw("d", "dup", 4);
        for (int i = 0; i < 2; ++i) {
          bool ok = false;
          for (int attempt = 0; attempt < 10 && !ok; ++attempt) {
            for (NodeId rid : w.replicas) {
              rpc::CallOptions opts;
              opts.timeout = seconds(1);
              rpc::Result<kv::WriteReply> wr =
                  co_await c.endpoint.call<kv::WriteReply>(rid, kv::kReplicateMethod, again, opts);
              if (wr.ok() && wr->code() == kv::OK) {
                ok = true;
                if (wr->version() != 1) fail("a retry must answer the first result (1 write applied)");
                break;
              }
            }
          }
          if (!ok) fail("dedup replicate not answered");
        }
        co_await expect("d", "dup", 4);
        done = true;
      },
      &done);
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

// --- the replication world -----------------------------------------------------------

struct Shared {
  TimePoint stop_at;
  std::map<std::string, uint64_t> acked;  // key → highest acknowledged version
  uint64_t acked_ops[kDcCount] = {0, 0};
  TimePoint window_from, window_to;  // writes acknowledged inside, per dc
  uint64_t acked_in_window[kDcCount] = {0, 0};
  uint64_t lag_samples = 0, full_copy_samples = 0;
  Duration lag_max;
};

struct WorldOptions {
  uint64_t seed = 1;
  uint64_t retention = 1'000'000;
  Duration write_for = seconds(6);
};

std::string pad20(uint64_t v) {
  std::string d = std::to_string(v);
  return std::string(20 - d.size(), '0') + d;
}

struct World {
  WorldOptions opts;
  sim::Simulation sim;
  sim::SimDeployment deployment;
  std::shared_ptr<const shard::ShardMap> map;
  std::vector<std::vector<size_t>> group_at;     // [dc][shard] → group index
  std::vector<std::vector<NodeId>> replicators;  // [dc][zone]
  std::vector<NodeId> writers;                   // [dc]
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();

  explicit World(WorldOptions o)
      : opts(o), sim(config(o.seed)), deployment(sim, std::make_shared<const deploy::Deployment>(spec(o))),
        map(deployment.deployment().shard_map()) {
    group_at.assign(kDcCount, std::vector<size_t>(kShards, 0));
    for (size_t g = 0; g < map->group_count(); ++g) {
      group_at[dc_index(map->group(g).datacenter)][map->group(g).shard] = g;
    }
    shared->stop_at = TimePoint::zero() + seconds(2) + opts.write_for;
    for (size_t dc = 0; dc < kDcCount; ++dc) {
      replicators.emplace_back();
      for (size_t z = 0; z < kZoneCount; ++z) {
        ReplicatorConfig rc;
        rc.datacenter = kDcs[dc];
        rc.shards = map;
        rc.index = static_cast<uint32_t>(z);
        rc.consumers = kZoneCount;
        for (size_t src = 0; src < kDcCount; ++src) {
          if (src == dc) continue;
          for (uint32_t s = 0; s < kShards; ++s) {
            rc.streams.push_back({kDcs[src], s, map->group(group_at[src][s]).replicas,
                                  map->group(group_at[dc][s]).replicas});
          }
        }
        std::shared_ptr<Shared> sh = shared;
        rc.lag_observer = [sh](NodeId, const LagSample& l) {
          ++sh->lag_samples;
          if (l.full_copy) ++sh->full_copy_samples;
          sh->lag_max = std::max(sh->lag_max, l.lag);
        };
        replicators[dc].push_back(sim.add_node(
            {std::string("repl-") + kDcs[dc] + "-" + kZones[z], sim::Placement{kDcs[dc], kZones[z], ""},
             [rc](Runtime& rt) { return std::make_unique<Replicator>(rt, rc); }}));
      }
    }
    for (size_t dc = 0; dc < kDcCount; ++dc) {
      std::shared_ptr<Shared> sh = shared;
      std::shared_ptr<const shard::ShardMap> m = map;
      std::vector<std::vector<NodeId>> groups;
      for (uint32_t s = 0; s < kShards; ++s) groups.push_back(m->group(group_at[dc][s]).replicas);
      Caller::Script script = [sh, m, groups, dc](Caller& c) -> Task<void> { return write_loop(c, sh, m, groups, dc); };
      writers.push_back(sim.add_node({std::string("writer-") + kDcs[dc], sim::Placement{kDcs[dc], "w", ""},
                                      [script](Runtime& rt) { return std::make_unique<Caller>(rt, script); }}));
    }
  }

  static size_t dc_index(const std::string& dc) { return dc == kDcs[0] ? 0 : 1; }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = testing::verbose() ? LogLevel::info : LogLevel::off;
    return c;
  }
  static deploy::DeploymentSpec spec(const WorldOptions& o) {
    deploy::DeploymentSpec s;
    for (const char* dc : kDcs) s.datacenters.push_back({dc, {kZones[0], kZones[1], kZones[2]}});
    s.kv_shards_per_datacenter = kShards;
    for (size_t dc = 0; dc < kDcCount; ++dc) {
      for (uint64_t i = 0; i < kUsersPerDc; ++i) s.home_datacenter[kUidBase[dc] + i] = kDcs[dc];
    }
    s.templates.kv.change_retention = o.retention;
    return s;
  }

  // The writer of datacenter `dc`: random writes of its users' records until
  // stop_at (absolute, so a restarted writer stops on time too).
  static Task<void> write_loop(Caller& c, std::shared_ptr<Shared> sh, std::shared_ptr<const shard::ShardMap> m,
                               std::vector<std::vector<NodeId>> groups, size_t dc) {
    std::vector<std::unique_ptr<kv::KvClient>> clients;
    for (const std::vector<NodeId>& g : groups) {
      kv::KvClientConfig kc;
      kc.replicas = g;
      clients.push_back(std::make_unique<kv::KvClient>(c.rt, c.endpoint, kc));
    }
    Rng& rng = c.rt.rng();
    const std::string tag = std::string(kDcs[dc]) + "#" + std::to_string(c.rt.rng().next_u64() % 100000);
    uint64_t n = 0;
    auto ack = [&](const std::string& key, uint64_t version) {
      uint64_t& v = sh->acked[key];
      v = std::max(v, version);
      ++sh->acked_ops[dc];
      if (c.rt.now() >= sh->window_from && c.rt.now() < sh->window_to) ++sh->acked_in_window[dc];
    };
    while (c.rt.now() < sh->stop_at) {
      co_await c.rt.sleep(milliseconds(10 + static_cast<int64_t>(rng.uniform(30))));
      if (c.rt.now() >= sh->stop_at) break;
      const uint64_t uid = kUidBase[dc] + rng.uniform(kUsersPerDc);
      kv::KvClient& kc = *clients[m->shard_of(uid)];
      const std::string u = std::to_string(uid);
      const std::string value = tag + "/" + std::to_string(++n);
      switch (rng.uniform(6)) {
        case 0: {
          const std::string key = "c/" + u + "/" + std::to_string(5000 + rng.uniform(4));
          kv::KvResult r = co_await kc.put(key, value);
          if (r.code == kv::KvResultCode::ok) ack(key, r.version);
          break;
        }
        case 1: {
          const std::string key = "cv/" + u;
          kv::KvResult g = co_await kc.get(key);
          if (g.code != kv::KvResultCode::ok) break;
          kv::KvResult r = co_await kc.cas(key, g.version, value);
          if (r.code == kv::KvResultCode::ok) ack(key, r.version);
          break;
        }
        case 2: {
          const std::string key = "inbox/" + u + "/" + pad20(n);
          std::vector<kv::KvTxnWrite> tw(2);
          tw[0] = {key, value};
          tw[1] = {"inboxhead/" + u, std::to_string(n)};
          kv::KvTxnResult r = co_await kc.txn({}, tw);
          if (r.code == kv::KvTxnCode::ok) {
            ack(key, r.write_versions[0]);
            ack("inboxhead/" + u, r.write_versions[1]);
          }
          break;
        }
        case 3: {
          const std::string key = "msgsent/" + u + "/m" + std::to_string(rng.uniform(10));
          kv::KvResult r = co_await kc.put(key, value);
          if (r.code == kv::KvResultCode::ok) ack(key, r.version);
          break;
        }
        case 4: {
          const std::string key = "msgdlv/" + u + "/" + std::to_string(rng.uniform(5));
          kv::KvResult r = co_await kc.put(key, value);
          if (r.code == kv::KvResultCode::ok) ack(key, r.version);
          break;
        }
        default: {
          // Not user records: must stay home.
          const std::string key =
              (rng.bernoulli(0.5) ? "queue/" : "acct/") + std::string(kDcs[dc]) + "/" + std::to_string(rng.uniform(5));
          (void)co_await kc.put(key, value);
          break;
        }
      }
    }
  }

  void start() { deployment.start_all(); }

  // The state machine of the most advanced live replica of group g.
  std::optional<std::vector<kv::Item>> best_dump(size_t g) {
    kv::KvReplica* best = nullptr;
    for (NodeId id : map->group(g).replicas) {
      kv::KvReplica* r = sim.node_as<kv::KvReplica>(id);
      if (r == nullptr || r->recovering()) continue;
      if (best == nullptr || r->applied_index() > best->applied_index()) best = r;
    }
    if (best == nullptr) return std::nullopt;
    return best->dump();
  }

  // "" when every copy equals its source; else the first difference.
  std::string divergence() {
    for (uint32_t s = 0; s < kShards; ++s) {
      std::vector<std::map<std::string, std::pair<std::string, uint64_t>>> user_recs(kDcCount);  // [dc] by key
      std::vector<std::vector<kv::Item>> dumps;
      for (size_t dc = 0; dc < kDcCount; ++dc) {
        std::optional<std::vector<kv::Item>> d = best_dump(group_at[dc][s]);
        if (!d) return std::string("no live replica in ") + kDcs[dc] + " shard " + std::to_string(s);
        dumps.push_back(*d);
      }
      for (size_t src = 0; src < kDcCount; ++src) {
        std::map<std::string, std::pair<std::string, uint64_t>> truth;
        for (const kv::Item& it : dumps[src]) {
          std::optional<uint64_t> uid = shard::user_of_key(it.key());
          if (uid && map->home_of(*uid) == kDcs[src]) truth[it.key()] = {it.value(), it.version()};
        }
        for (size_t dst = 0; dst < kDcCount; ++dst) {
          if (dst == src) continue;
          std::map<std::string, std::pair<std::string, uint64_t>> copy;
          for (const kv::Item& it : dumps[dst]) {
            std::optional<uint64_t> uid = shard::user_of_key(it.key());
            if (uid && map->home_of(*uid) == kDcs[src]) copy[it.key()] = {it.value(), it.version()};
            const std::string foreign_queue = std::string("queue/") + kDcs[src] + "/";
            const std::string foreign_acct = std::string("acct/") + kDcs[src] + "/";
            if (it.key().rfind(foreign_queue, 0) == 0 || it.key().rfind(foreign_acct, 0) == 0)
              return "non-user key " + it.key() + " crossed to " + kDcs[dst];
          }
          if (copy != truth) {
            for (const auto& [k, v] : truth) {
              auto it = copy.find(k);
              if (it == copy.end()) return std::string("missing in ") + kDcs[dst] + ": " + k;
              if (it->second != v)
                return std::string("differs in ") + kDcs[dst] + ": " + k + " v" + std::to_string(it->second.second) +
                       " vs source v" + std::to_string(v.second);
            }
            return std::string("extra user record in ") + kDcs[dst];
          }
        }
      }
    }
    return "";
  }

  // Acknowledged writes: each in its home group at its version or later.
  std::string lost_acknowledged() {
    std::vector<std::map<std::string, uint64_t>> versions(map->group_count());
    for (size_t g = 0; g < map->group_count(); ++g) {
      std::optional<std::vector<kv::Item>> d = best_dump(g);
      if (!d) return "no live replica in group " + std::to_string(g);
      for (const kv::Item& it : *d) versions[g][it.key()] = it.version();
    }
    for (const auto& [key, v] : shared->acked) {
      std::optional<uint64_t> uid = shard::user_of_key(key);
      if (!uid) continue;
      const size_t home = *map->group_of(*uid);
      if (versions[home][key] < v) return "acknowledged " + key + " v" + std::to_string(v) + " lost at home";
      for (size_t dc = 0; dc < kDcCount; ++dc) {
        const size_t g = group_at[dc][map->shard_of(*uid)];
        if (versions[g][key] < v) return "acknowledged " + key + " v" + std::to_string(v) + " missing in " + kDcs[dc];
      }
    }
    return "";
  }

  // Runs past the writers' stop until the copies converge (checked every
  // 250 ms of virtual time); "" or the last difference at the limit.
  std::string converge(Duration limit = seconds(120)) {
    sim.run_until(shared->stop_at + seconds(1));
    const TimePoint end = sim.now() + limit;
    std::string d;
    while (sim.now() < end) {
      if (sim.failure()) return *sim.failure();
      d = divergence();
      if (d.empty()) return lost_acknowledged();
      sim.run_for(milliseconds(250));
    }
    return "no convergence: " + d;
  }

  ReplicatorStats total_stats(std::optional<size_t> dc = std::nullopt) {
    ReplicatorStats t;
    for (size_t d = 0; d < kDcCount; ++d) {
      if (dc && *dc != d) continue;
      for (NodeId id : replicators[d]) {
        Replicator* r = sim.node_as<Replicator>(id);
        if (r == nullptr) continue;
        const ReplicatorStats& s = r->stats();
        t.entries_applied += s.entries_applied;
        t.writes_applied += s.writes_applied;
        t.full_copies += s.full_copies;
        t.truncated += s.truncated;
        t.lease_claims += s.lease_claims;
        t.lease_takeovers += s.lease_takeovers;
        t.pages_applied += s.pages_applied;
        t.writes_filtered += s.writes_filtered;
        t.cursor_writes += s.cursor_writes;
      }
    }
    return t;
  }
  // The replicators of dc holding some stream's lease now.
  std::vector<NodeId> holders(size_t dc) {
    std::vector<NodeId> out;
    for (NodeId id : replicators[dc]) {
      Replicator* r = sim.node_as<Replicator>(id);
      if (r == nullptr) continue;
      for (size_t s = 0; s < r->stats().streams.size(); ++s) {
        if (r->holds(s)) {
          out.push_back(id);
          break;
        }
      }
    }
    return out;
  }
};

TEST(Replication, CopiesConvergeBothWaysAndNothingTravelsBack) {
  World w({.seed = 11});
  w.start();
  const std::string err = w.converge();
  ASSERT_EQ(err, "");
  ReplicatorStats t = w.total_stats();
  EXPECT_GT(w.shared->acked_ops[0], 50u);
  EXPECT_GT(w.shared->acked_ops[1], 50u);
  EXPECT_GT(t.entries_applied, 0u);
  EXPECT_GT(t.writes_filtered, 0u) << "non-user keys and leases are in the streams and must be filtered";
  EXPECT_EQ(t.full_copies, 0u);
  EXPECT_GT(w.shared->lag_samples, 0u);
  // No copy travels back: dc1's stream holds no dc2 user's record and vice versa.
  bool done = false;
  std::vector<std::string> failures;
  std::vector<std::pair<size_t, NodeId>> sources;
  for (size_t dc = 0; dc < kDcCount; ++dc) {
    for (uint32_t s = 0; s < kShards; ++s) sources.push_back({dc, w.map->group(w.group_at[dc][s]).replicas[0]});
  }
  std::shared_ptr<const shard::ShardMap> map = w.map;
  Caller::Script probe = [&, map](Caller& c) -> Task<void> {
    for (const auto& [dc, replica] : sources) {
      uint64_t after = 0;
      for (int page = 0; page < 1000; ++page) {
        std::optional<kv::ChangesReply> rep = co_await changes(c, replica, after, 0);
        if (!rep || rep->code() != kv::OK) {
          failures.push_back("probe failed");
          break;
        }
        for (const kv::ChangeEntry& e : rep->entries()) {
          for (const kv::VersionedWrite& x : e.writes()) {
            std::optional<uint64_t> uid = shard::user_of_key(x.key());
            if (uid && map->home_of(*uid) != kDcs[dc])
              failures.push_back(std::string("stream of ") + kDcs[dc] + " carries " + x.key());
          }
          after = e.idx();
        }
        if (!rep->more()) break;
      }
    }
    done = true;
  };
  NodeId p = w.sim.add_node({"probe", sim::Placement{"dc1", "x", ""},
                             [probe](Runtime& rt) { return std::make_unique<Caller>(rt, probe); }});
  w.sim.start(p);
  ASSERT_TRUE(w.sim.run_until([&done] { return done; }, w.sim.now() + seconds(60)));
  EXPECT_TRUE(failures.empty()) << failures.front();
  std::printf("plain: %llu+%llu writes acknowledged, %llu stream entries applied, %llu writes shipped, lag max %.1f ms\n",
              static_cast<unsigned long long>(w.shared->acked_ops[0]),
              static_cast<unsigned long long>(w.shared->acked_ops[1]),
              static_cast<unsigned long long>(t.entries_applied), static_cast<unsigned long long>(t.writes_applied),
              static_cast<double>(w.shared->lag_max.ns()) / 1e6);
}

sim::Selectors dc_sel(size_t dc) { return {sim::Selector::datacenter(kDcs[dc])}; }

void print_stats(const char* what, World& w, const ReplicatorStats& t) {
  std::printf("%s: %llu+%llu writes acknowledged, %llu stream entries, %llu writes shipped, %llu full copies, "
              "%llu lease takeovers, lag max %.1f ms\n",
              what, static_cast<unsigned long long>(w.shared->acked_ops[0]),
              static_cast<unsigned long long>(w.shared->acked_ops[1]),
              static_cast<unsigned long long>(t.entries_applied), static_cast<unsigned long long>(t.writes_applied),
              static_cast<unsigned long long>(t.full_copies), static_cast<unsigned long long>(t.lease_takeovers),
              static_cast<double>(w.shared->lag_max.ns()) / 1e6);
}

TEST(Replication, BothSidesKeepWritingThroughAPartitionAndConvergeAfterTheHeal) {
  World w({.seed = 12, .write_for = seconds(8)});
  w.shared->window_from = TimePoint::zero() + seconds(3);
  w.shared->window_to = TimePoint::zero() + seconds(7);
  w.sim.at(TimePoint::zero() + seconds(3), [&w] { w.sim.faults().partition_for({dc_sel(0), dc_sel(1)}, seconds(4)); });
  w.start();
  // In the middle of the partition the other side's copy is behind.
  w.sim.run_until(TimePoint::zero() + seconds(6));
  EXPECT_NE(w.divergence(), "") << "the partition should hold copies back";
  ASSERT_EQ(w.converge(), "");
  EXPECT_GT(w.shared->acked_in_window[0], 20u) << "dc1 must keep its own writes during the partition";
  EXPECT_GT(w.shared->acked_in_window[1], 20u) << "dc2 must keep its own writes during the partition";
  print_stats("partition", w, w.total_stats());
}

// A datacenter lost (every node crashed, disks intact) for `down`, then back.
struct LossResult {
  std::string error;
  ReplicatorStats returning;  // dc2's replicators after the return
  ReplicatorStats all;
  uint64_t full_copy_samples = 0;
};

LossResult lose_dc2(uint64_t seed, uint64_t retention, Duration down) {
  World w({.seed = seed, .retention = retention, .write_for = seconds(4) + down});
  w.sim.at(TimePoint::zero() + seconds(3), [&w] { w.sim.faults().kill_datacenter(kDcs[1]); });
  w.sim.at(TimePoint::zero() + seconds(3) + down, [&w] { w.sim.faults().restore_datacenter(kDcs[1]); });
  w.start();
  LossResult r;
  r.error = w.converge();
  r.returning = w.total_stats(1);
  r.all = w.total_stats();
  r.full_copy_samples = w.shared->full_copy_samples;
  print_stats("dc lost", w, r.all);
  return r;
}

TEST(Replication, AReturningDatacenterCatchesUpFromTheStream) {
  LossResult r = lose_dc2(13, 1'000'000, seconds(5));
  ASSERT_EQ(r.error, "");
  EXPECT_GT(r.returning.entries_applied, 0u) << "dc2 must catch up from dc1's stream";
  EXPECT_GT(r.returning.writes_applied, 0u);
  EXPECT_EQ(r.all.full_copies, 0u) << "the retention covers the outage: no full copy";
  EXPECT_EQ(r.full_copy_samples, 0u);
}

TEST(Replication, AReturningDatacenterBeyondTheRetentionCatchesUpByAFullCopy) {
  LossResult r = lose_dc2(14, 40, seconds(6));
  ASSERT_EQ(r.error, "");
  EXPECT_GE(r.returning.full_copies, 1u) << "what dc2 missed is truncated: it needs a full copy";
  EXPECT_GE(r.returning.truncated, 1u);
  EXPECT_GT(r.full_copy_samples, 0u);
}

TEST(Replication, AnotherInstanceTakesOverFromCrashedReplicatorsAndAZoneOutage) {
  World w({.seed = 15, .write_for = seconds(12)});
  std::vector<NodeId> crashed;
  // dc2's stream holders crash for good at 3 s; at 8 s zone c of dc2 (the
  // last replicator, one replica per group) goes dark for 3 s.
  w.sim.at(TimePoint::zero() + seconds(3), [&w, &crashed] {
    crashed = w.holders(1);
    for (NodeId id : crashed) w.sim.crash(id);
  });
  w.sim.at(TimePoint::zero() + seconds(8), [&w] { w.sim.faults().kill_zone("c", kDcs[1]); });
  w.sim.at(TimePoint::zero() + seconds(11), [&w] { w.sim.faults().restore_zone("c", kDcs[1]); });
  w.start();
  w.sim.run_until(TimePoint::zero() + seconds(7));
  ReplicatorStats mid = w.total_stats(1);
  ASSERT_FALSE(crashed.empty());
  EXPECT_GE(mid.lease_takeovers, 1u) << "a surviving instance must take the streams over";
  EXPECT_FALSE(w.holders(1).empty());
  ASSERT_EQ(w.converge(), "");
  for (NodeId id : crashed) EXPECT_FALSE(w.sim.is_up(id));
  print_stats("takeover", w, w.total_stats());
}

// --- the seeded sweep ----------------------------------------------------------------

struct SweepResult {
  std::string failure;
  uint64_t trace_hash = 0;
  uint64_t faults = 0, full_copies = 0, entries = 0;
};

SweepResult run_sweep_seed(uint64_t seed) {
  World w({.seed = seed, .retention = seed % 3 == 0 ? uint64_t{60} : uint64_t{1'000'000}, .write_for = seconds(8)});
  Rng rng = w.sim.derive_rng("repl-sweep-faults", 0);
  SweepResult out;
  std::vector<NodeId> crashed;
  // Faults in [2.5 s, 9 s): crashes of replicators and KV replicas (restarted
  // after a while), partitions between the datacenters, zone and datacenter
  // outages (one outage at a time).
  auto outage_active = std::make_shared<bool>(false);
  TimePoint t = TimePoint::zero() + milliseconds(2500);
  const TimePoint faults_end = TimePoint::zero() + seconds(9);
  while (true) {
    t = t + milliseconds(200 + static_cast<int64_t>(rng.uniform(1200)));
    if (t >= faults_end) break;
    const Duration len = milliseconds(500 + static_cast<int64_t>(rng.uniform(3500)));
    const uint64_t kind = rng.uniform(5);
    const size_t dc = rng.uniform(kDcCount);
    ++out.faults;
    switch (kind) {
      case 0: {  // a replicator crashes and comes back
        NodeId id = w.replicators[dc][rng.uniform(kZoneCount)];
        w.sim.at(t, [&w, id] { if (w.sim.is_up(id)) w.sim.crash(id); });
        w.sim.at(t + len, [&w, id] { if (!w.sim.is_up(id)) w.sim.start(id); });
        break;
      }
      case 1: {  // a KV replica crashes and comes back
        const size_t g = w.group_at[dc][rng.uniform(kShards)];
        NodeId id = w.map->group(g).replicas[rng.uniform(kZoneCount)];
        w.sim.at(t, [&w, id] { if (w.sim.is_up(id)) w.sim.crash(id); });
        w.sim.at(t + len, [&w, id] { if (!w.sim.is_up(id)) w.sim.start(id); });
        break;
      }
      case 2:  // the datacenters cannot talk
        w.sim.at(t, [&w, len] { w.sim.faults().partition_for({dc_sel(0), dc_sel(1)}, len); });
        break;
      case 3: {  // a zone outage
        const std::string zone = kZones[rng.uniform(kZoneCount)];
        w.sim.at(t, [&w, zone, dc, len, outage_active] {
          if (*outage_active) return;
          *outage_active = true;
          w.sim.faults().kill_zone(zone, kDcs[dc]);
          w.sim.at(w.sim.now() + len, [&w, zone, dc, outage_active] {
            w.sim.faults().restore_zone(zone, kDcs[dc]);
            *outage_active = false;
          });
        });
        break;
      }
      default:  // a datacenter outage
        w.sim.at(t, [&w, dc, len, outage_active] {
          if (*outage_active) return;
          *outage_active = true;
          w.sim.faults().kill_datacenter(kDcs[dc]);
          w.sim.at(w.sim.now() + len, [&w, dc, outage_active] {
            w.sim.faults().restore_datacenter(kDcs[dc]);
            *outage_active = false;
          });
        });
        break;
    }
  }
  // The heal: every rule healed and every node up (outages end by themselves
  // within 4 s of the last fault; this catches anything left).
  w.sim.at(faults_end + seconds(5), [&w] {
    w.sim.faults().heal_all();
    for (NodeId id{1}; id.value <= w.sim.node_count(); ++id.value) {
      if (!w.sim.is_up(id)) w.sim.start(id);
    }
  });
  w.start();
  w.sim.run_until(faults_end + seconds(5) + milliseconds(1));
  out.failure = w.converge(seconds(180));
  ReplicatorStats t2 = w.total_stats();
  out.full_copies = t2.full_copies;
  out.entries = t2.entries_applied;
  out.trace_hash = w.sim.trace_hash();
  return out;
}

TEST(Replication, ConvergesAfterRandomFaults) {
  const testing::SeedRange seeds = testing::seed_range(200);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t faults = 0, copies = 0;
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    SweepResult r = run_sweep_seed(s);
    ASSERT_EQ(r.failure, "") << "seed " << s << "\n"
                             << testing::rerun_hint(s, "build/tests/storage/repl_sim_test",
                                                    "Replication.ConvergesAfterRandomFaults");
    if (testing::verbose()) {
      std::printf("seed %llu: %llu faults, %llu stream entries, %llu full copies, hash %016llx\n",
                  static_cast<unsigned long long>(s), static_cast<unsigned long long>(r.faults),
                  static_cast<unsigned long long>(r.entries), static_cast<unsigned long long>(r.full_copies),
                  static_cast<unsigned long long>(r.trace_hash));
    }
    faults += r.faults;
    copies += r.full_copies;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("repl sweep: %llu seeds, %.1f s, %llu faults, %llu full copies\n",
              static_cast<unsigned long long>(seeds.count), secs, static_cast<unsigned long long>(faults),
              static_cast<unsigned long long>(copies));
}

TEST(Replication, SameSeedSameTraceHash) {
  const uint64_t seed = testing::seed_range(1).first;
  SweepResult a = run_sweep_seed(seed);
  SweepResult b = run_sweep_seed(seed);
  ASSERT_EQ(a.failure, "");
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.entries, b.entries);
  SweepResult c = run_sweep_seed(seed + 1);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

}  // namespace
}  // namespace wx::repl
