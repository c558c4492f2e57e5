// seqsvr (nodes/storage/seqsvr/) in simulation: three KV replicas and three
// AllocSvr nodes, one of each per zone, and client nodes using SeqClient.
// Fault-free numbers and figures (store writes per allocation, latency), and
// the safety property under a seeded random fault schedule: per user, numbers
// are never handed out twice and increase in real-time order.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/seqsvr/alloc_server.h"
#include "nodes/storage/seqsvr/seq_client.h"
#include "sim/simulation.h"

namespace wx::seqsvr {
namespace {

using namespace time_literals;

const char* const kZones[] = {"a", "b", "c"};
constexpr size_t kReplicas = 3;
constexpr size_t kAllocators = 3;

// A client node: its own endpoint and SeqClient, running a scripted coroutine.
class SeqTestClient final : public Node {
 public:
  using Script = std::function<Task<void>(SeqTestClient&)>;
  SeqTestClient(Runtime& rt, SeqClientConfig cfg, Script script)
      : rt(rt), endpoint(rt), client(rt, endpoint, std::move(cfg)), script_(std::move(script)) {}
  void start() override {
    endpoint.start();
    rt.spawn(script_(*this), "script");
  }
  std::string_view kind() const override { return "seq-client"; }

  Runtime& rt;
  rpc::RpcEndpoint endpoint;
  SeqClient client;

 private:
  Script script_;
};

struct SeqCluster {
  sim::Simulation sim;
  std::vector<NodeId> replicas, allocators;
  std::shared_ptr<bool> bootstrap = std::make_shared<bool>(true);
  AllocSvrConfig alloc_cfg;

  SeqCluster(uint64_t seed, AllocSvrConfig base) : sim(config(seed)) {
    std::vector<NodeId> members;
    for (uint32_t i = 1; i <= kReplicas; ++i) members.push_back(NodeId{i});
    for (uint32_t i = 0; i < kAllocators; ++i) allocators.push_back(NodeId{static_cast<uint32_t>(kReplicas + 1 + i)});
    for (size_t i = 0; i < kReplicas; ++i) {
      std::shared_ptr<bool> boot = bootstrap;
      replicas.push_back(sim.add_node({std::string("kv-") + kZones[i], sim::Placement{"dc", kZones[i], ""},
                                       [members, i, boot](Runtime& rt) {
                                         kv::KvReplicaConfig c;
                                         c.members = members;
                                         c.self_index = i;
                                         c.bootstrap = *boot;
                                         return std::make_unique<kv::KvReplica>(rt, c);
                                       }}));
    }
    alloc_cfg = base;
    alloc_cfg.kv_replicas = members;
    alloc_cfg.allocators = allocators;
    for (size_t i = 0; i < kAllocators; ++i) {
      AllocSvrConfig c = alloc_cfg;
      NodeId id = sim.add_node({std::string("alloc-") + kZones[i], sim::Placement{"dc", kZones[i], ""},
                                [c](Runtime& rt) { return std::make_unique<AllocSvr>(rt, c); }});
      EXPECT_EQ(id, allocators[i]);
    }
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = LogLevel::off;
    return c;
  }
  NodeId add_client(const std::string& zone, int n, SeqTestClient::Script script) {
    SeqClientConfig cc;
    cc.allocators = allocators;
    cc.section_size = alloc_cfg.section_size;
    return sim.add_node({"client-" + zone + std::to_string(n), sim::Placement{"dc", zone, ""},
                         [cc, script](Runtime& rt) { return std::make_unique<SeqTestClient>(rt, cc, script); }});
  }
  void start_all() {
    for (size_t i = 1; i <= sim.node_count(); ++i) sim.start(NodeId{static_cast<uint32_t>(i)});
    *bootstrap = false;
  }
  AllocSvr* alloc(size_t i) { return sim.node_as<AllocSvr>(allocators[i]); }
  size_t sections_served() {
    std::set<uint64_t> s;
    for (size_t i = 0; i < kAllocators; ++i) {
      if (alloc(i)) for (uint64_t x : alloc(i)->serving()) s.insert(x);
    }
    return s.size();
  }
  uint64_t max_seq_writes() {
    uint64_t n = 0;
    for (size_t i = 0; i < kAllocators; ++i) n += alloc(i) ? alloc(i)->stats().max_seq_writes : 0;
    return n;
  }
};

// One successful allocation, with kernel times (never a node's local clock).
struct Alloc {
  int client = 0;
  uint64_t uid = 0;
  uint64_t seq = 0;
  TimePoint invoked, completed;
};

struct Recorder {
  explicit Recorder(sim::Simulation* s) : sim(s) {}
  sim::Simulation* sim = nullptr;
  std::vector<Alloc> allocs;
  uint64_t failed = 0;
};

// --- checks -------------------------------------------------------------------

// Empty if fine, else the first violation found.
std::string check_history(const std::vector<Alloc>& all) {
  std::map<uint64_t, std::vector<Alloc>> by_user;
  for (const Alloc& a : all) by_user[a.uid].push_back(a);
  for (auto& [uid, ops] : by_user) {
    // Never twice.
    std::map<uint64_t, const Alloc*> seen;
    for (const Alloc& a : ops) {
      auto [it, fresh] = seen.emplace(a.seq, &a);
      if (!fresh) {
        return "uid " + std::to_string(uid) + ": seq " + std::to_string(a.seq) + " handed out twice (clients " +
               std::to_string(it->second->client) + " and " + std::to_string(a.client) + ")";
      }
    }
    // Per client, strictly increasing in completion order.
    std::map<int, uint64_t> last;
    std::vector<Alloc> by_completion = ops;
    std::stable_sort(by_completion.begin(), by_completion.end(),
                     [](const Alloc& x, const Alloc& y) { return x.completed < y.completed; });
    for (const Alloc& a : by_completion) {
      auto it = last.find(a.client);
      if (it != last.end() && a.seq <= it->second) {
        return "uid " + std::to_string(uid) + " client " + std::to_string(a.client) + ": seq " + std::to_string(a.seq) +
               " completed after " + std::to_string(it->second);
      }
      last[a.client] = a.seq;
    }
    // Across clients, real-time order: an allocation that completed before
    // another was invoked got the smaller number.
    std::vector<Alloc> by_invoke = ops;
    std::stable_sort(by_invoke.begin(), by_invoke.end(),
                     [](const Alloc& x, const Alloc& y) { return x.invoked < y.invoked; });
    size_t done = 0;
    uint64_t max_done = 0;
    const Alloc* max_op = nullptr;
    for (const Alloc& b : by_invoke) {
      while (done < by_completion.size() && by_completion[done].completed < b.invoked) {
        if (!max_op || by_completion[done].seq > max_done) {
          max_done = by_completion[done].seq;
          max_op = &by_completion[done];
        }
        ++done;
      }
      if (max_op && b.seq <= max_done) {
        return "uid " + std::to_string(uid) + ": seq " + std::to_string(b.seq) + " (client " +
               std::to_string(b.client) + ", invoked " + std::to_string(b.invoked.ns()) + " ns) after seq " +
               std::to_string(max_done) + " (client " + std::to_string(max_op->client) + ", completed " +
               std::to_string(max_op->completed.ns()) + " ns)";
      }
    }
  }
  return "";
}

TEST(SeqSvrCheck, TheHistoryCheckCatchesDuplicatesAndReordering) {
  auto at = [](int64_t ms) { return TimePoint::zero() + milliseconds(ms); };
  EXPECT_EQ(check_history({{1, 7, 1, at(0), at(1)}, {2, 7, 2, at(2), at(3)}}), "");
  EXPECT_NE(check_history({{1, 7, 1, at(0), at(1)}, {2, 7, 1, at(2), at(3)}}), "");
  EXPECT_NE(check_history({{1, 7, 5, at(0), at(1)}, {2, 7, 3, at(2), at(3)}}), "");
  EXPECT_NE(check_history({{1, 7, 5, at(0), at(3)}, {1, 7, 3, at(2), at(4)}}), "");
  // Concurrent allocations may complete in either order.
  EXPECT_EQ(check_history({{1, 7, 5, at(0), at(3)}, {2, 7, 3, at(1), at(2)}}), "");
}

// --- fault-free ---------------------------------------------------------------

Task<void> alloc_loop(SeqTestClient& c, Recorder* rec, int client, std::vector<uint64_t> uids, int n,
                      bool* go, int* done) {
  while (!*go) co_await c.rt.sleep(10_ms);
  for (int i = 0; i < n; ++i) {
    uint64_t uid = uids[static_cast<size_t>(i) % uids.size()];
    Alloc a{client, uid, 0, rec->sim->now(), TimePoint::zero()};
    SeqResult r = co_await c.client.alloc(uid);
    if (!r.ok) {
      ++rec->failed;
      continue;
    }
    a.seq = r.seq;
    a.completed = rec->sim->now();
    rec->allocs.push_back(a);
  }
  ++*done;
}

TEST(SeqSvr, HandsOutOneTwoThreeToAFreshUser) {
  SeqCluster cl(1, AllocSvrConfig{});
  Recorder rec{&cl.sim};
  bool go = true;
  int done = 0;
  cl.add_client("a", 1, [&](SeqTestClient& c) { return alloc_loop(c, &rec, 1, {42}, 50, &go, &done); });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return done == 1; }, cl.sim.now() + 30_s)) << cl.sim.failure().value_or("");
  ASSERT_EQ(rec.allocs.size(), 50u);
  for (size_t i = 0; i < rec.allocs.size(); ++i) EXPECT_EQ(rec.allocs[i].seq, i + 1);
}

// Fault-free, default topology and parameters: max_seq writes vs allocations,
// and allocation latency (kernel time, client-side, after every section is
// served). WX_SEQ_ALLOCS overrides the number of allocations per client.
TEST(SeqSvr, WritesTheStoreOncePerStepAndReportsLatency) {
  AllocSvrConfig base;  // section_size 100,000, step 10,000
  base.sections = 4;
  SeqCluster cl(2, base);
  Recorder rec{&cl.sim};
  bool go = false;
  int done = 0;
  constexpr int kClients = 4;
  int per_client = 25'000;
  if (const char* e = std::getenv("WX_SEQ_ALLOCS")) per_client = std::atoi(e);
  for (int c = 0; c < kClients; ++c) {
    // Client c: one user of section c. max_seq covers every user of its
    // section, so the busiest user drives the writes; one user per section
    // makes writes = allocations / step + sections (the first write of each
    // section happens at its first allocation).
    std::vector<uint64_t> uids = {static_cast<uint64_t>(c) * base.section_size + 1};
    cl.add_client(kZones[c % 3], c, [&, c, uids](SeqTestClient& k) {
      return alloc_loop(k, &rec, c, uids, per_client, &go, &done);
    });
  }
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return cl.sections_served() == base.sections; }, cl.sim.now() + 10_s));
  const uint64_t writes_before = cl.max_seq_writes();
  EXPECT_EQ(writes_before, 0u) << "no max_seq write before the first allocation";
  go = true;
  ASSERT_TRUE(cl.sim.run_until([&] { return done == kClients; }, cl.sim.now() + 600_s))
      << cl.sim.failure().value_or("");
  const uint64_t allocations = rec.allocs.size();
  ASSERT_EQ(allocations, static_cast<uint64_t>(kClients) * per_client);
  EXPECT_EQ(rec.failed, 0u);
  EXPECT_EQ(check_history(rec.allocs), "");
  const uint64_t writes = cl.max_seq_writes();
  // Section c hands out 1..per_client: ceil(per_client / step) writes.
  const uint64_t per_section = (static_cast<uint64_t>(per_client) + base.step - 1) / base.step;
  EXPECT_EQ(writes, per_section * base.sections);
  EXPECT_LE(writes, allocations / base.step + base.sections);
  std::vector<int64_t> lat;
  for (const Alloc& a : rec.allocs) lat.push_back((a.completed - a.invoked).ns());
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return static_cast<double>(lat[static_cast<size_t>(p * (lat.size() - 1))]) / 1e6; };
  std::printf(
      "seqsvr fault-free: %llu allocations, %llu max_seq writes (allocations/step + sections = %llu); latency ms "
      "p50 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
      static_cast<unsigned long long>(allocations), static_cast<unsigned long long>(writes),
      static_cast<unsigned long long>(allocations / base.step + base.sections), pct(0.5), pct(0.99), pct(0.999),
      pct(1.0));
}

// --- random faults --------------------------------------------------------------

constexpr Duration kWorkload = seconds(10);
constexpr Duration kRecovery = seconds(7);  // after the heal: leases move, then every client must succeed
constexpr uint64_t kFaultLanes = 2;
constexpr int kFaultKinds = 6;
constexpr int kClients = 3;
constexpr uint64_t kSectionSize = 10;
constexpr uint64_t kSections = 4;
constexpr uint64_t kSmallStep = 16;  // many max_seq writes under faults
const uint64_t kUsers[] = {1, 3, 12, 25, 38};

struct FaultCounts {
  size_t by_kind[kFaultKinds] = {};
};

void schedule_faults(SeqCluster& cl, uint64_t lane, TimePoint end, FaultCounts* counts) {
  Rng rng = cl.sim.derive_rng("seqsvr.faults", lane);
  sim::Simulation* sim = &cl.sim;
  std::vector<NodeId> reps = cl.replicas, allocs = cl.allocators;
  TimePoint t = TimePoint::zero() + milliseconds(500 + static_cast<int64_t>(rng.next_u64() % 1000));
  while (t < end) {
    int kind = static_cast<int>(rng.next_u64() % kFaultKinds);
    NodeId a = allocs[rng.next_u64() % allocs.size()];
    NodeId r = reps[rng.next_u64() % reps.size()];
    // Up to 6 s: often longer than a lease plus the takeover wait, so leases
    // lapse and move.
    Duration d = milliseconds(100 + static_cast<int64_t>(rng.next_u64() % 5900));
    TimePoint until = t + d;
    sim->at(t, [counts, kind] { ++counts->by_kind[kind]; });
    switch (kind) {
      case 0:  // allocator crash, restart later
        sim->at(t, [sim, a] { sim->crash(a); });
        sim->at(until, [sim, a] { if (!sim->is_up(a)) sim->start(a); });
        break;
      case 1:  // allocator cut off from everybody
        sim->at(t, [sim, a, d] {
          std::vector<sim::Selector> rest;
          for (size_t i = 1; i <= sim->node_count(); ++i) {
            NodeId o{static_cast<uint32_t>(i)};
            if (o != a) rest.push_back(sim::Selector(o));
          }
          sim->faults().partition_for({{sim::Selector(a)}, rest}, d);
        });
        break;
      case 2:  // allocator cut off from the store only: clients still reach it
        sim->at(t, [sim, a, reps, d] {
          sim->faults().partition_for(
              {{sim::Selector(a)}, {sim::Selector(reps[0]), sim::Selector(reps[1]), sim::Selector(reps[2])}}, d);
        });
        break;
      case 3:  // allocator clogged
        sim->at(t, [sim, a, d] { sim->faults().clog(a, d); });
        break;
      case 4:  // KV replica crash
        sim->at(t, [sim, r] { sim->crash(r); });
        sim->at(until, [sim, r] { if (!sim->is_up(r)) sim->start(r); });
        break;
      case 5: {  // KV replica isolated from its peers
        std::vector<sim::Selector> others;
        for (NodeId o : reps) if (o != r) others.push_back(sim::Selector(o));
        sim->at(t, [sim, r, others, d] { sim->faults().partition_for({{sim::Selector(r)}, others}, d); });
        break;
      }
    }
    t = until + milliseconds(100 + static_cast<int64_t>(rng.next_u64() % 500));
  }
}

struct SeedResult {
  bool sim_ok = true;
  std::string failure;  // sim failure or history violation
  bool recovered = true;
  size_t allocs = 0, failed = 0;
  uint64_t takeovers = 0, writes = 0, epochs = 0;
  FaultCounts faults;
};

Task<void> fault_workload(SeqTestClient& c, Recorder* rec, int client, TimePoint stop, TimePoint final_at,
                          int* final_ok) {
  Rng& rng = c.rt.rng();
  // Client c allocates for users c, c+1, c+2 (mod 5): every user is shared.
  std::vector<uint64_t> mine;
  for (int k = 0; k < 3; ++k) mine.push_back(kUsers[static_cast<size_t>(client + k) % std::size(kUsers)]);
  auto one = [](SeqTestClient& c, Recorder* rec, int client, uint64_t uid) -> Task<bool> {
    Alloc a{client, uid, 0, rec->sim->now(), TimePoint::zero()};
    SeqResult r = co_await c.client.alloc(uid);
    if (!r.ok) {
      ++rec->failed;
      co_return false;
    }
    a.seq = r.seq;
    a.completed = rec->sim->now();
    rec->allocs.push_back(a);
    co_return true;
  };
  while (rec->sim->now() < stop) {
    co_await one(c, rec, client, mine[rng.next_u64() % mine.size()]);
    co_await c.rt.sleep(milliseconds(static_cast<int64_t>(rng.next_u64() % 10)));
  }
  while (rec->sim->now() < final_at) co_await c.rt.sleep(50_ms);
  for (uint64_t uid : mine) *final_ok += co_await one(c, rec, client, uid);
}

enum class Mutation { none, skip_persist, no_takeover_wait };

SeedResult run_seed(uint64_t seed, Mutation mutation) {
  AllocSvrConfig base;
  base.section_size = kSectionSize;
  base.sections = kSections;
  base.step = kSmallStep;
  base.unsafe_skip_persist = mutation == Mutation::skip_persist;
  base.unsafe_no_takeover_wait = mutation == Mutation::no_takeover_wait;
  SeqCluster cl(seed, base);
  Recorder rec{&cl.sim};
  TimePoint stop = TimePoint::zero() + kWorkload;
  TimePoint final_at = stop + kRecovery;
  int final_ok = 0;
  for (int c = 0; c < kClients; ++c) {
    cl.add_client(kZones[c % 3], c, [&rec, c, stop, final_at, &final_ok](SeqTestClient& k) {
      return fault_workload(k, &rec, c, stop, final_at, &final_ok);
    });
  }
  SeedResult out;
  cl.start_all();
  for (uint64_t lane = 0; lane < kFaultLanes; ++lane) schedule_faults(cl, lane, stop, &out.faults);
  sim::Simulation* sim = &cl.sim;
  std::vector<NodeId> all;
  for (NodeId n : cl.replicas) all.push_back(n);
  for (NodeId n : cl.allocators) all.push_back(n);
  sim->at(stop, [sim, all] {
    sim->faults().heal_all();
    for (NodeId n : all) if (!sim->is_up(n)) sim->start(n);
  });
  out.sim_ok = cl.sim.run_until(final_at + 20_s);
  if (!out.sim_ok) out.failure = cl.sim.failure().value_or("");
  if (out.sim_ok) out.failure = check_history(rec.allocs);
  out.recovered = final_ok == kClients * 3;
  out.allocs = rec.allocs.size();
  out.failed = rec.failed;
  for (size_t i = 0; i < kAllocators; ++i) {
    if (cl.alloc(i)) out.takeovers += cl.alloc(i)->stats().takeovers;
  }
  out.writes = cl.max_seq_writes();
  // Holder changes: the sum of the lease epochs left in the store.
  if (kv::KvReplica* k = cl.sim.node_as<kv::KvReplica>(cl.replicas[0])) {
    for (const kv::Item& item : k->dump()) {
      LeaseRecord lr;
      if (item.key().rfind(kLeasePrefix, 0) == 0 && lr.ParseFromString(item.value())) out.epochs += lr.epoch();
    }
  }
  if (std::getenv("WX_SEQ_VERBOSE")) {
    std::printf("seed %llu: %zu allocations, %zu failed, %llu lease epochs, %s\n",
                static_cast<unsigned long long>(seed), out.allocs, out.failed,
                static_cast<unsigned long long>(out.epochs), out.failure.empty() ? "ok" : out.failure.c_str());
  }
  return out;
}

// WX_SEQ_SEEDS=N runs seeds 1..N (default 200); WX_SEQ_SEED=S runs only seed
// S; WX_SEQ_VERBOSE=1 prints one line per seed.
TEST(SeqSvr, StrictlyIncreasingUnderRandomFaults) {
  int first = 1, last = 200;
  if (const char* e = std::getenv("WX_SEQ_SEEDS")) last = std::atoi(e);
  if (const char* one = std::getenv("WX_SEQ_SEED")) first = last = std::atoi(one);
  auto t0 = std::chrono::steady_clock::now();
  size_t allocs = 0, failed = 0;
  uint64_t epochs = 0;
  FaultCounts faults;
  for (int s = first; s <= last; ++s) {
    SeedResult r = run_seed(static_cast<uint64_t>(s), Mutation::none);
    epochs += r.epochs;
    allocs += r.allocs;
    failed += r.failed;
    for (int k = 0; k < kFaultKinds; ++k) faults.by_kind[k] += r.faults.by_kind[k];
    std::string hint = "reproduce: WX_SEQ_SEED=" + std::to_string(s) +
                       " WX_SEQ_VERBOSE=1 ./tests/storage/seqsvr_sim_test "
                       "--gtest_filter=SeqSvr.StrictlyIncreasingUnderRandomFaults\n";
    ASSERT_TRUE(r.sim_ok) << "seed " << s << ": " << r.failure << "\n" << hint;
    ASSERT_EQ(r.failure, "") << "seed " << s << "\n" << hint;
    ASSERT_TRUE(r.recovered) << "seed " << s << ": an allocation failed after the heal\n" << hint;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "seqsvr under faults: %d seeds, %zu allocations (%zu failed), %llu lease epochs (holder changes incl. first "
      "claims), %.1f s; faults: %zu alloc crash, %zu alloc isolated, %zu alloc cut from store, %zu alloc clog, "
      "%zu kv crash, %zu kv isolated\n",
      last - first + 1, allocs, failed, static_cast<unsigned long long>(epochs), secs, faults.by_kind[0], faults.by_kind[1], faults.by_kind[2],
      faults.by_kind[3], faults.by_kind[4], faults.by_kind[5]);
}

// Teeth: each unsafe mutation of AllocSvr must be caught within a few seeds.
constexpr uint64_t kUnsafeSeedsMax = 10;

int caught_within(Mutation m) {
  int caught = 0;
  for (uint64_t s = 1; s <= kUnsafeSeedsMax; ++s) {
    SeedResult r = run_seed(s, m);
    EXPECT_TRUE(r.sim_ok) << "seed " << s << ": " << r.failure;
    caught += !r.failure.empty();
  }
  return caught;
}

TEST(SeqSvr, ReplyingWithoutPersistingMaxSeqIsCaught) {
  int caught = caught_within(Mutation::skip_persist);
  std::printf("skip_persist caught on %d of %llu seeds\n", caught, static_cast<unsigned long long>(kUnsafeSeedsMax));
  EXPECT_GT(caught, 0);
}

TEST(SeqSvr, TakingOverWithoutWaitingForTheLeaseIsCaught) {
  int caught = caught_within(Mutation::no_takeover_wait);
  std::printf("no_takeover_wait caught on %d of %llu seeds\n", caught,
              static_cast<unsigned long long>(kUnsafeSeedsMax));
  EXPECT_GT(caught, 0);
}

}  // namespace
}  // namespace wx::seqsvr
