// The replicated key-value store (nodes/storage/kv/) in simulation: three
// KvReplica nodes, one per zone, and client nodes using KvClient. Basic
// operations, zone loss, disk loss, and linearizability under a seeded random
// fault schedule, checked with checkers/linearizability.h.
#include <gtest/gtest.h>

#include <algorithm>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nodes/storage/kv/kv_client.h"
#include "nodes/storage/kv/kv_replica.h"
#include "checkers/kv_history.h"
#include "checkers/linearizability.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "tests/support/seeds.h"

namespace wx::kv {
namespace {

using namespace time_literals;
using checkers::KvHistory;
using checkers::KvOp;
using checkers::KvOpKind;
using checkers::KvOutcome;

const char* const kZones[] = {"a", "b", "c"};

// A client node: its own endpoint and KvClient, running a scripted coroutine.
class KvTestClient final : public Node {
 public:
  using Script = std::function<Task<void>(KvTestClient&)>;
  KvTestClient(Runtime& rt, KvClientConfig cfg, Script script)
      : rt(rt), endpoint(rt), client(rt, endpoint, std::move(cfg)), script_(std::move(script)) {}
  void start() override {
    endpoint.start();
    rt.spawn(script_(*this), "script");
  }
  std::string_view kind() const override { return "kv-client"; }

  Runtime& rt;
  rpc::RpcEndpoint endpoint;
  KvClient client;

 private:
  Script script_;  // stored: the coroutine lambda's captures live here
};

// One KV group (three replicas, zones a, b, c of datacenter "dc"), started
// from a deployment description like every other cluster; test clients get
// the ids after it.
deploy::DeploymentSpec kv_only_spec(const paxos::Config& pc) {
  deploy::DeploymentSpec spec;
  spec.datacenters.push_back({"dc", {kZones[0], kZones[1], kZones[2]}});
  spec.templates.kv.paxos = pc;
  return spec;
}

struct KvCluster {
  sim::Simulation sim;
  sim::SimDeployment deployment;
  std::vector<NodeId> replicas;

  explicit KvCluster(uint64_t seed, paxos::Config pc = KvReplicaConfig::default_paxos())
      : sim(config(seed)),
        deployment(sim, std::make_shared<const deploy::Deployment>(kv_only_spec(pc))),
        replicas(deployment.nodes_of(deploy::Role::kv)) {}
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = LogLevel::off;
    return c;
  }
  // client_id only names the node: KvClient draws its request-id client id
  // per incarnation (a restarted client must never reuse one).
  NodeId add_client(const std::string& zone, uint64_t client_id, KvTestClient::Script script) {
    KvClientConfig cc;
    cc.replicas = replicas;
    return sim.add_node({"client-" + zone + std::to_string(client_id), sim::Placement{"dc", zone, ""},
                         [cc, script](Runtime& rt) { return std::make_unique<KvTestClient>(rt, cc, script); }});
  }
  void start_all() { deployment.start_all(); }
  KvReplica* replica(size_t i) { return sim.node_as<KvReplica>(replicas[i]); }
  int leaders() {
    int n = 0;
    for (size_t i = 0; i < 3; ++i) {
      if (replica(i) && replica(i)->replica().is_leader()) ++n;
    }
    return n;
  }
};

// --- basic -------------------------------------------------------------------

struct Step {
  std::string what;
  KvResult r;
};

Task<void> basic_script(KvTestClient& c, std::vector<Step>* out, std::vector<Item>* scan, bool* done) {
  {
    KvResult r = co_await c.client.get("user:1");
    out->push_back(Step{"get-absent", r});
  }
  {
    KvResult r = co_await c.client.put("user:1", "alice");
    out->push_back(Step{"put1", r});
  }
  {
    KvResult r = co_await c.client.put("user:1", "alicia");
    out->push_back(Step{"put2", r});
  }
  {
    KvResult r = co_await c.client.get("user:1");
    out->push_back(Step{"get", r});
  }
  {
    KvResult r = co_await c.client.cas("user:1", 2, "al");
    out->push_back(Step{"cas-ok", r});
  }
  {
    KvResult r = co_await c.client.cas("user:1", 2, "nope");
    out->push_back(Step{"cas-fail", r});
  }
  {
    KvResult r = co_await c.client.cas("user:2", 0, "bob");
    out->push_back(Step{"cas-create", r});
  }
  {
    KvResult r = co_await c.client.put("group:1", "g");
    out->push_back(Step{"put-other", r});
  }
  KvScanResult s = co_await c.client.scan("user:", "", "", 0);
  *scan = s.items;
  *done = true;
}

TEST(KvStore, BasicOperationsThroughTheClient) {
  KvCluster cl(1);
  std::vector<Step> steps;
  std::vector<Item> scan;
  bool done = false;
  cl.add_client("a", 7, [&](KvTestClient& c) { return basic_script(c, &steps, &scan, &done); });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return done; }, cl.sim.now() + 20_s)) << cl.sim.failure().value_or("");
  ASSERT_TRUE(done);
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[0].r.code, KvResultCode::ok);
  EXPECT_FALSE(steps[0].r.found);
  EXPECT_EQ(steps[0].r.version, 0u);
  EXPECT_EQ(steps[1].r.code, KvResultCode::ok);
  EXPECT_EQ(steps[1].r.version, 1u);
  EXPECT_EQ(steps[2].r.version, 2u);
  EXPECT_EQ(steps[3].r.code, KvResultCode::ok);
  EXPECT_TRUE(steps[3].r.found);
  EXPECT_EQ(steps[3].r.value, "alicia");
  EXPECT_EQ(steps[3].r.version, 2u);
  EXPECT_EQ(steps[4].r.code, KvResultCode::ok);
  EXPECT_EQ(steps[4].r.version, 3u);
  EXPECT_EQ(steps[5].r.code, KvResultCode::cas_failed);
  EXPECT_EQ(steps[5].r.version, 3u);
  EXPECT_EQ(steps[6].r.code, KvResultCode::ok);
  EXPECT_EQ(steps[6].r.version, 1u);
  ASSERT_EQ(scan.size(), 2u);
  EXPECT_EQ(scan[0].key(), "user:1");
  EXPECT_EQ(scan[0].value(), "al");
  EXPECT_EQ(scan[0].version(), 3u);
  EXPECT_EQ(scan[1].key(), "user:2");
  EXPECT_EQ(cl.leaders(), 1);
}

// --- zone loss and disk loss ---------------------------------------------------

struct Phase {
  int acked = 0;
  int failed = 0;
  bool done = false;
};

// Writes key:0..n-1 with value "v<i>", counting acknowledgements.
Task<void> write_keys(KvTestClient& c, int from, int n, Phase* out) {
  for (int i = from; i < from + n; ++i) {
    KvResult r = co_await c.client.put("key:" + std::to_string(i), "v" + std::to_string(i));
    if (r.code == KvResultCode::ok) ++out->acked;
    else ++out->failed;
  }
  out->done = true;
}

Task<void> read_keys(KvTestClient& c, int n, std::vector<KvResult>* out, bool* done) {
  for (int i = 0; i < n; ++i) {
    KvResult r = co_await c.client.get("key:" + std::to_string(i));
    out->push_back(r);
  }
  *done = true;
}

TEST(KvStore, ServesFromTwoZonesWhenOneIsKilledAndLosesNoAcknowledgedWrite) {
  for (size_t victim = 0; victim < 3; ++victim) {
    KvCluster cl(10 + victim);  // clients in zone x: the outage spares them
    Phase before, during;
    std::vector<KvResult> reads;
    bool read_done = false;
    bool go_during = false, go_read = false;
    cl.add_client("x", 1, [&](KvTestClient& c) -> Task<void> { return write_keys(c, 0, 20, &before); });
    cl.add_client("x", 2, [&](KvTestClient& c) -> Task<void> {
      return [](KvTestClient& c, bool* go, Phase* during) -> Task<void> {
        while (!*go) co_await c.rt.sleep(10_ms);
        co_await write_keys(c, 20, 20, during);
      }(c, &go_during, &during);
    });
    cl.add_client("x", 3, [&](KvTestClient& c) -> Task<void> {
      return [](KvTestClient& c, bool* go, std::vector<KvResult>* reads, bool* done) -> Task<void> {
        while (!*go) co_await c.rt.sleep(10_ms);
        co_await read_keys(c, 40, reads, done);
      }(c, &go_read, &reads, &read_done);
    });
    cl.start_all();
    ASSERT_TRUE(cl.sim.run_until([&] { return before.done; }, cl.sim.now() + 30_s));
    ASSERT_TRUE(before.done);
    EXPECT_EQ(before.acked, 20);
    cl.sim.faults().kill_zone(kZones[victim]);
    go_during = true;
    ASSERT_TRUE(cl.sim.run_until([&] { return during.done; }, cl.sim.now() + 60_s))
        << "victim " << victim << " acked " << during.acked << " failed " << during.failed << " "
        << cl.sim.failure().value_or("");
    ASSERT_TRUE(during.done);
    EXPECT_EQ(during.acked, 20) << "victim zone " << kZones[victim];
    ASSERT_TRUE(cl.sim.faults().restore_zone(kZones[victim]));
    ASSERT_TRUE(cl.sim.run_for(2_s));
    go_read = true;
    ASSERT_TRUE(cl.sim.run_until([&] { return read_done; }, cl.sim.now() + 60_s));
    ASSERT_TRUE(read_done);
    ASSERT_EQ(reads.size(), 40u);
    for (int i = 0; i < 40; ++i) {
      EXPECT_EQ(reads[i].code, KvResultCode::ok) << i;
      EXPECT_EQ(reads[i].value, "v" + std::to_string(i)) << i;
      EXPECT_EQ(reads[i].version, 1u) << i;
    }
    // The restored replica caught up with everything.
    ASSERT_TRUE(cl.sim.run_for(2_s));
    std::vector<Item> ref = cl.replica((victim + 1) % 3)->dump();
    EXPECT_EQ(ref.size(), 40u);
    std::vector<Item> got = cl.replica(victim)->dump();
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(got[i].SerializeAsString(), ref[i].SerializeAsString());
  }
}

// Regression (found by bench/kv_tcp_bench on a real cluster): kv.Put
// handlers hold their RPC worker until the write commits, and commits need
// the followers' paxos.Step calls. With Step queued behind the handlers, as
// many concurrent writes as workers (8 by default) froze the group: every
// put ended unknown. Step is now Dispatch::immediate.
TEST(KvStore, MoreConcurrentWritersThanRpcWorkersStillCommit) {
  KvCluster cl(77);
  ASSERT_EQ(KvReplicaConfig{}.server.workers, 8u) << "the case needs more writers than default workers";
  constexpr int kWriters = 16;
  std::vector<Phase> phases(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    Phase* ph = &phases[static_cast<size_t>(w)];
    cl.add_client(kZones[w % 3], static_cast<uint64_t>(w + 1),
                  [ph, w](KvTestClient& c) -> Task<void> { return write_keys(c, w * 5, 5, ph); });
  }
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until(
      [&] { return std::all_of(phases.begin(), phases.end(), [](const Phase& p) { return p.done; }); },
      cl.sim.now() + 60_s));
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(phases[static_cast<size_t>(w)].acked, 5) << "writer " << w;
}

TEST(KvStore, AReplicaWhoseDiskIsWipedRebuildsFromItsPeers) {
  KvCluster cl(21);
  Phase before, after;
  bool go_after = false;
  cl.add_client("a", 1, [&](KvTestClient& c) -> Task<void> { return write_keys(c, 0, 30, &before); });
  cl.add_client("b", 2, [&](KvTestClient& c) -> Task<void> {
    return [](KvTestClient& c, bool* go, Phase* p) -> Task<void> {
      while (!*go) co_await c.rt.sleep(10_ms);
      co_await write_keys(c, 30, 10, p);
    }(c, &go_after, &after);
  });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return before.done; }, cl.sim.now() + 30_s));
  EXPECT_EQ(before.acked, 30);
  for (size_t victim = 0; victim < 3; ++victim) {
    cl.sim.wipe(cl.replicas[victim]);
    ASSERT_TRUE(cl.sim.run_for(300_ms));
    cl.sim.start(cl.replicas[victim]);
    ASSERT_TRUE(cl.replica(victim)->recovering()) << "an empty disk in an existing group must recover";
    ASSERT_TRUE(cl.sim.run_until([&] { return !cl.replica(victim)->recovering(); }, cl.sim.now() + 10_s));
    ASSERT_FALSE(cl.replica(victim)->recovering());
    ASSERT_TRUE(cl.sim.run_for(2_s));
    std::vector<Item> ref = cl.replica((victim + 1) % 3)->dump();
    std::vector<Item> got = cl.replica(victim)->dump();
    EXPECT_EQ(ref.size(), 30u);
    ASSERT_EQ(got.size(), ref.size()) << "victim " << victim;
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(got[i].SerializeAsString(), ref[i].SerializeAsString());
    EXPECT_EQ(cl.replica(victim)->applied_index(), cl.replica((victim + 1) % 3)->applied_index());
  }
  go_after = true;
  ASSERT_TRUE(cl.sim.run_until([&] { return after.done; }, cl.sim.now() + 30_s));
  EXPECT_EQ(after.acked, 10);
}

// --- linearizability under faults --------------------------------------------------

// The history, recorded with the kernel's time (never a node's local clock).
struct Recorder {
  sim::Simulation* sim = nullptr;
  KvHistory history;
  size_t begin(KvOp op) {
    op.invoke_time = sim->now();
    history.push_back(std::move(op));
    return history.size() - 1;
  }
  void end(size_t i, const KvResult& r) {
    KvOp& op = history[i];
    if (r.code == KvResultCode::unknown) return;  // stays unknown, no completion
    op.outcome = r.code == KvResultCode::ok ? KvOutcome::ok : KvOutcome::cas_failed;
    op.version = r.version;
    if (op.kind == KvOpKind::get) {
      op.read_found = r.found;
      op.read_value = r.value;
    }
    op.complete_time = sim->now();
  }
};

constexpr int kKeys = 3;

struct WorkloadParams {
  Recorder* rec;
  uint64_t client_id;
  TimePoint stop_at;         // no new op after this (kernel time)
  TimePoint final_reads_at;  // >0: read every key once after this
};

Task<void> workload(KvTestClient& c, WorkloadParams p) {
  Rng& rng = c.rt.rng();
  std::vector<uint64_t> seen(kKeys, 0);
  uint64_t n = 0;
  while (p.rec->sim->now() < p.stop_at) {
    int k = static_cast<int>(rng.next_u64() % kKeys);
    std::string key = "k" + std::to_string(k);
    KvOp op;
    op.client_id = p.client_id;
    op.key = key;
    uint64_t dice = rng.next_u64() % 10;
    std::string value = "c" + std::to_string(p.client_id) + "-" + std::to_string(++n);
    KvResult r;
    if (dice < 4) {
      op.kind = KvOpKind::get;
      size_t i = p.rec->begin(op);
      r = co_await c.client.get(key);
      p.rec->end(i, r);
    } else if (dice < 7) {
      op.kind = KvOpKind::put;
      op.write_value = value;
      size_t i = p.rec->begin(op);
      r = co_await c.client.put(key, value);
      p.rec->end(i, r);
    } else {
      op.kind = KvOpKind::cas;
      op.write_value = value;
      op.expected_version = seen[k];
      size_t i = p.rec->begin(op);
      r = co_await c.client.cas(key, seen[k], value);
      p.rec->end(i, r);
    }
    if (r.code != KvResultCode::unknown) seen[k] = r.version;
    co_await c.rt.sleep(milliseconds(static_cast<int64_t>(rng.next_u64() % 20)));
  }
  if (p.final_reads_at == TimePoint::zero()) co_return;
  while (p.rec->sim->now() < p.final_reads_at) co_await c.rt.sleep(50_ms);
  for (int k = 0; k < kKeys; ++k) {
    KvOp op;
    op.client_id = p.client_id;
    op.kind = KvOpKind::get;
    op.key = "k" + std::to_string(k);
    size_t i = p.rec->begin(op);
    KvResult r = co_await c.client.get(op.key);
    EXPECT_EQ(r.code, KvResultCode::ok) << "final read after heal must succeed";
    p.rec->end(i, r);
  }
}

constexpr Duration kWorkload = seconds(6);
constexpr uint64_t kFaultLanes = 2;
constexpr Duration kQuiesce = seconds(3);

// A seeded random fault schedule over the replicas: one lane of faults, one
// at a time; run_seed starts kFaultLanes of them, so faults overlap.
// Faults applied, by kind (crash, isolate, clog, loss, zone outage, wipe).
struct FaultCounts {
  size_t by_kind[6] = {};
};

void schedule_faults(KvCluster& cl, uint64_t lane, TimePoint end, FaultCounts* counts) {
  Rng rng = cl.sim.derive_rng("kv.faults", lane);
  sim::Simulation* sim = &cl.sim;
  std::vector<NodeId> reps = cl.replicas;
  TimePoint t = TimePoint::zero() + milliseconds(300 + static_cast<int64_t>(rng.next_u64() % 300));
  while (t < end) {
    size_t r = rng.next_u64() % 3;
    NodeId id = reps[r];
    Duration d = milliseconds(100 + static_cast<int64_t>(rng.next_u64() % 700));
    int kind = static_cast<int>(rng.next_u64() % 6);
    TimePoint until = t + d;
    if (kind != 5) sim->at(t, [counts, kind] { ++counts->by_kind[kind]; });
    switch (kind) {
      case 0:  // crash, restart later
        sim->at(t, [sim, id] { sim->crash(id); });
        sim->at(until, [sim, id] { if (!sim->is_up(id)) sim->start(id); });
        break;
      case 1: {  // isolate one replica from the other two (clients still reach it)
        std::vector<NodeId> others;
        for (NodeId o : reps) if (o != id) others.push_back(o);
        sim->at(t, [sim, id, others, d] {
          sim->faults().partition_for({{sim::Selector(id)}, {sim::Selector(others[0]), sim::Selector(others[1])}}, d);
        });
        break;
      }
      case 2:  // clog
        sim->at(t, [sim, id, d] { sim->faults().clog(id, d); });
        break;
      case 3:  // lossy links to this replica
        sim->at(t, [sim, id, reps, d] {
          for (NodeId o : reps) {
            if (o == id) continue;
            sim::FaultId f = sim->faults().set_loss(sim::Selector(id), sim::Selector(o), 0.3);
            sim->faults().heal_after(f, d);
          }
        });
        break;
      case 4:  // the replica's zone goes dark
        sim->at(t, [sim, r] { sim->faults().kill_zone(kZones[r]); });
        sim->at(until, [sim, r] { sim->faults().restore_zone(kZones[r]); });
        break;
      case 5:  // disk loss, only when the other two are healthy
        sim->at(t, [sim, reps, id, until, counts] {
          for (NodeId o : reps) {
            if (!sim->is_up(o)) return;
            KvReplica* k = sim->node_as<KvReplica>(o);
            if (k == nullptr || k->recovering()) return;
          }
          ++counts->by_kind[5];
          sim->wipe(id);
          sim->at(until, [sim, id] { if (!sim->is_up(id)) sim->start(id); });
        });
        break;
    }
    t = until + milliseconds(50 + static_cast<int64_t>(rng.next_u64() % 300));
  }
}

void heal_everything_at(KvCluster& cl, TimePoint end) {
  sim::Simulation* sim = &cl.sim;
  std::vector<NodeId> reps = cl.replicas;
  sim->at(end, [sim, reps] {
    sim->faults().heal_all();
    for (const char* z : kZones) sim->faults().restore_zone(z);
    for (NodeId o : reps) if (!sim->is_up(o)) sim->start(o);
  });
}

struct SeedResult {
  bool sim_ok = true;
  std::string sim_failure;
  checkers::LinearizabilityReport report;
  KvHistory history;
  size_t ops = 0, unknown = 0, cas_failed = 0, leaderships = 0;
  uint64_t lease_reads = 0;  // reads served under a leader's lease (live replicas)
  FaultCounts faults;
};

SeedResult run_seed(uint64_t seed, bool unsafe) {
  paxos::Config pc = KvReplicaConfig::default_paxos();
  pc.unsafe_ack_before_majority = unsafe;
  KvCluster cl(seed, pc);
  Recorder rec;
  rec.sim = &cl.sim;
  TimePoint stop = TimePoint::zero() + kWorkload;
  TimePoint final_reads = stop + kQuiesce;
  for (uint64_t c = 1; c <= 3; ++c) {
    WorkloadParams p{&rec, c, stop, c == 1 ? final_reads : TimePoint::zero()};
    cl.add_client(kZones[c - 1], c, [p](KvTestClient& k) -> Task<void> { return workload(k, p); });
  }
  SeedResult out;
  cl.start_all();
  for (uint64_t lane = 0; lane < kFaultLanes; ++lane) schedule_faults(cl, lane, stop, &out.faults);
  heal_everything_at(cl, stop);
  out.sim_ok = cl.sim.run_until(final_reads + 5_s);
  if (!out.sim_ok) out.sim_failure = cl.sim.failure().value_or("");
  for (size_t i = 0; i < 3; ++i) {
    if (cl.replica(i)) out.leaderships += cl.replica(i)->replica().stats().leaderships_won;
    if (cl.replica(i)) out.lease_reads += cl.replica(i)->lease_reads();
  }
  out.report = checkers::check_linearizability(rec.history);
  out.ops = rec.history.size();
  for (const KvOp& op : rec.history) {
    out.unknown += op.outcome == KvOutcome::unknown;
    out.cas_failed += op.outcome == KvOutcome::cas_failed;
  }
  if (testing::verbose()) {
    std::printf("seed %llu: %zu ops, %zu unknown, %zu cas_failed, %zu leaderships won (live replicas)\n",
                static_cast<unsigned long long>(seed), out.ops, out.unknown, out.cas_failed, out.leaderships);
  }
  out.history = std::move(rec.history);
  return out;
}

// --- rolling disk loss under load ------------------------------------------------

// Each replica in turn loses its disk while three clients keep reading and
// writing: wiped, restarted empty, rebuilt from its peers, then the next one.
// After all three every replica has been rebuilt at least once, so every
// acknowledged write has survived being copied; the history must still be
// linearizable and the replicas identical.
struct RollingWipeResult {
  std::string failure;  // empty: passed
  size_t ops = 0, acked_writes = 0, writes_during_recovery = 0;
  std::string checker_report;
};

RollingWipeResult run_rolling_wipe(uint64_t seed) {
  RollingWipeResult out;
  KvCluster cl(seed);
  Recorder rec;
  rec.sim = &cl.sim;
  const TimePoint stop = TimePoint::zero() + 15_s;
  const TimePoint final_reads = stop + kQuiesce;
  for (uint64_t c = 1; c <= 3; ++c) {
    WorkloadParams p{&rec, c, stop, c == 1 ? final_reads : TimePoint::zero()};
    cl.add_client(kZones[c - 1], c, [p](KvTestClient& k) -> Task<void> { return workload(k, p); });
  }
  cl.start_all();
  Rng rng = cl.sim.derive_rng("kv.rolling-wipe", 0);
  if (!cl.sim.run_for(milliseconds(500 + static_cast<int64_t>(rng.uniform(1000))))) {
    out.failure = "run failed: " + cl.sim.failure().value_or("");
    return out;
  }
  for (size_t victim = 0; victim < 3; ++victim) {
    cl.sim.wipe(cl.replicas[victim]);
    if (!cl.sim.run_for(milliseconds(100 + static_cast<int64_t>(rng.uniform(400))))) break;
    cl.sim.start(cl.replicas[victim]);
    if (!cl.replica(victim)->recovering()) {
      out.failure = "replica " + std::to_string(victim) + " started on an empty disk without recovering";
      return out;
    }
    const size_t before = rec.history.size();
    if (!cl.sim.run_until([&] { return !cl.replica(victim)->recovering(); }, cl.sim.now() + 10_s)) {
      out.failure = "replica " + std::to_string(victim) + " did not finish recovering within 10 s under load";
      return out;
    }
    out.writes_during_recovery += rec.history.size() - before;
    // Let it catch up on what was written meanwhile before the next one goes.
    if (!cl.sim.run_for(milliseconds(300 + static_cast<int64_t>(rng.uniform(700))))) break;
  }
  if (cl.sim.failure()) {
    out.failure = "run failed: " + *cl.sim.failure();
    return out;
  }
  if (cl.sim.now() >= stop) {
    out.failure = "the three wipes outlasted the workload; the test no longer wipes under load";
    return out;
  }
  if (!cl.sim.run_until(final_reads + 5_s)) {
    out.failure = "run failed: " + cl.sim.failure().value_or("");
    return out;
  }
  out.ops = rec.history.size();
  for (const KvOp& op : rec.history) out.acked_writes += op.kind != KvOpKind::get && op.outcome == KvOutcome::ok;
  const checkers::LinearizabilityReport report = checkers::check_linearizability(rec.history);
  if (report.failed()) {
    out.failure = "history not linearizable";
    out.checker_report = checkers::format_report(rec.history, report);
    return out;
  }
  const std::vector<Item> ref = cl.replica(0)->dump();
  for (size_t i = 1; i < 3; ++i) {
    const std::vector<Item> got = cl.replica(i)->dump();
    bool same = got.size() == ref.size();
    for (size_t j = 0; same && j < ref.size(); ++j) same = got[j].SerializeAsString() == ref[j].SerializeAsString();
    if (!same) {
      out.failure = "replica " + std::to_string(i) + " differs from replica 0 after the rolling wipe";
      return out;
    }
  }
  return out;
}

TEST(KvStore, RollingDiskLossUnderLoadLosesNothing) {
  const testing::SeedRange seeds = testing::seed_range(10);
  size_t ops = 0, acked = 0, during = 0;
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    const RollingWipeResult r = run_rolling_wipe(s);
    ASSERT_EQ(r.failure, "") << "seed " << s << "\n"
                             << r.checker_report
                             << testing::rerun_hint(s, "build/tests/storage/kv_sim_test",
                                                    "KvStore.RollingDiskLossUnderLoadLosesNothing");
    EXPECT_GT(r.acked_writes, 100u) << "seed " << s << ": the load must really write";
    ops += r.ops;
    acked += r.acked_writes;
    during += r.writes_during_recovery;
  }
  // A rebuild can be quick enough that no operation lands inside it on one
  // seed; over the sweep, operations must run while replicas rebuild.
  EXPECT_GT(during, 0u) << "no operation ran while a replica rebuilt, on any seed";
  std::printf("rolling wipe: %llu seeds, %zu ops, %zu acknowledged writes, %zu ops while a replica rebuilt\n",
              static_cast<unsigned long long>(seeds.count), ops, acked, during);
}

// Seeds: WX_SEEDS=N (default 200), WX_SEED_FIRST, WX_SEED=S (tests/support/seeds.h);
// WX_VERBOSE=1 prints one line per seed.
TEST(KvStore, LinearizableUnderRandomFaults) {
  const testing::SeedRange seeds = testing::seed_range(200);
  auto t0 = std::chrono::steady_clock::now();
  size_t ops = 0, unknown = 0;
  uint64_t lease_reads = 0;
  FaultCounts faults;
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    SeedResult r = run_seed(s, false);
    ops += r.ops;
    lease_reads += r.lease_reads;
    unknown += r.unknown;
    for (int k = 0; k < 6; ++k) faults.by_kind[k] += r.faults.by_kind[k];
    const std::string hint =
        testing::rerun_hint(s, "build/tests/storage/kv_sim_test", "KvStore.LinearizableUnderRandomFaults") + "\n";
    ASSERT_TRUE(r.sim_ok) << "seed " << s << ": " << r.sim_failure << "\n" << hint;
    ASSERT_FALSE(r.report.failed()) << "seed " << s << "\n"
                                    << checkers::format_report(r.history, r.report) << hint;
    ASSERT_EQ(r.report.count(checkers::KeyVerdict::unknown_budget), 0u) << "seed " << s;
    ASSERT_TRUE(r.report.linearizable()) << "seed " << s;
  }
  // The histories judged include reads a leader served under its lease.
  EXPECT_GT(lease_reads, seeds.count) << "leaders served (almost) no lease reads";
  std::printf("kv linearizability: %llu reads served under a leader's lease (replicas live at the end)\n",
              static_cast<unsigned long long>(lease_reads));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "kv linearizability: %d seeds, %zu ops (%zu unknown), %.1f s; faults: %zu crash, %zu isolate, %zu clog, "
      "%zu loss, %zu zone outage, %zu disk wipe\n",
      static_cast<int>(seeds.count), ops, unknown, secs, faults.by_kind[0], faults.by_kind[1], faults.by_kind[2], faults.by_kind[3],
      faults.by_kind[4], faults.by_kind[5]);
}

// Teeth: a leader that acknowledges before a majority holds the entry loses
// acknowledged writes when it is cut off or crashes; the checker must see it.
// kUnsafeRegressionSeed is the first seed of 1.. to show it (kept as a
// regression test); the scan checks the schedule still finds it quickly.
// (Seed 2 was the first until leaders served reads under their lease, which
// changed every schedule's timing; seeds 5-9, 11, 13, 16, 19-23 and 28 of
// 1..30 catch it since.)
constexpr uint64_t kUnsafeRegressionSeed = 5;
constexpr uint64_t kUnsafeSeedsMax = 10;

TEST(KvStore, UnsafeAckBeforeMajorityIsCaughtOnTheRegressionSeed) {
  SeedResult r = run_seed(kUnsafeRegressionSeed, true);
  ASSERT_TRUE(r.sim_ok) << r.sim_failure;
  EXPECT_TRUE(r.report.failed()) << "unsafe_ack_before_majority went unnoticed on seed " << kUnsafeRegressionSeed;
}

TEST(KvStore, UnsafeAckBeforeMajorityIsCaughtWithinAFewSeeds) {
  int caught = 0;
  for (uint64_t s = 1; s <= kUnsafeSeedsMax; ++s) {
    SeedResult r = run_seed(s, true);
    ASSERT_TRUE(r.sim_ok) << "seed " << s << ": " << r.sim_failure;
    caught += r.report.failed();
  }
  std::printf("unsafe ack caught on %d of %llu seeds\n", caught, static_cast<unsigned long long>(kUnsafeSeedsMax));
  EXPECT_GT(caught, 0);
}

}  // namespace
}  // namespace wx::kv
