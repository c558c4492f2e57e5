// The ordered inbox append (nodes/storage/inbox/, docs/storage.md "Inbox")
// in simulation: one shard group of three KV replicas and one inbox service
// per zone; several appenders send to ONE user at once, each allocating its
// seqs from one shared, strictly increasing counter (what seqsvr gives the
// send path) and allocating again when told INBOX_STALE_SEQ; a reader pages
// through the inbox with its own after_seq cursor (as a sync would), all
// while replicas and services crash, restart, lose their disks, get
// isolated, clogged, lossy, and zones go dark.
//
// The check, after the heal: the reader has seen every message stored —
// exactly the final contents of the inbox, once each, in strictly increasing
// seq order — so no message was stored below a seq the reader had already
// passed; every acknowledged append is there at its seq; nothing is stored
// under a seq its appender was told is stale; the head is the last seq.
//
// The old unordered Append (InboxServiceConfig::unordered_append_for_tests)
// fails this check: the test shows it is caught within a few seeds and keeps
// the first catching seed as a regression test.
//
// Seeds: WX_SEEDS / WX_SEED_FIRST / WX_SEED (tests/support/seeds.h);
// WX_VERBOSE=1 prints one line per seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/shard/shard_map.h"
#include "sim/simulation.h"
#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"

namespace wx::inbox {
namespace {

using namespace time_literals;
using Caller = wx::testing::ScriptCaller;

const char* const kZones[] = {"a", "b", "c"};
constexpr uint64_t kUid = 4242;
constexpr int kAppenders = 6;
constexpr Duration kSettle = seconds(1);           // a leader by then
constexpr Duration kWorkload = seconds(5);         // appenders start messages until then (after kSettle)
constexpr Duration kCallerTimeout = seconds(4);    // > the service's request budget
constexpr Duration kCallerPause = milliseconds(50);
constexpr Duration kGiveUp = seconds(30);          // after the workload: an append still unresolved
constexpr Duration kScenarioLimit = seconds(120);

// What the appenders were told, per message.
enum class Told : uint8_t { ok, stale, conflict, invalid };
struct AppendRecord {
  int appender = 0;
  std::string body;
  std::vector<std::pair<uint64_t, Told>> tries;  // definite answers, in order
  uint64_t acked_seq = 0;                        // 0: not acknowledged
  uint64_t last_seq = 0;                         // the last seq tried
};

struct Message {
  uint64_t seq = 0;
  std::string body;
  bool operator==(const Message& o) const { return seq == o.seq && body == o.body; }
};

struct OrderState {
  bool unordered = false;
  uint64_t next_seq = 0;  // the shared allocator
  std::vector<AppendRecord> appends;
  int appenders_done = 0;
  size_t unknown_replies = 0, rpc_failures = 0, duplicates = 0;
  // The reader.
  std::vector<Message> seen;
  std::vector<std::string> reader_errors;
  size_t ranges = 0;
  std::vector<Message> stored;  // one full read after the heal
  std::optional<uint64_t> head;
  bool reader_done = false;
};

struct World {
  sim::Simulation sim;
  std::shared_ptr<const shard::ShardMap> map;
  std::vector<NodeId> replicas, services;
  std::shared_ptr<bool> bootstrap = std::make_shared<bool>(true);

  World(uint64_t seed, bool unordered) : sim(config(seed)) {
    shard::ShardMapConfig mc;
    mc.shards_per_datacenter = 1;
    shard::ShardGroup g;
    g.datacenter = "dc1";
    g.shard = 0;
    g.replicas = {NodeId{1}, NodeId{2}, NodeId{3}};
    mc.groups.push_back(g);
    mc.home_datacenter[kUid] = "dc1";
    map = std::make_shared<const shard::ShardMap>(mc);
    for (size_t z = 0; z < 3; ++z) {
      std::shared_ptr<bool> boot = bootstrap;
      std::vector<NodeId> members = g.replicas;
      replicas.push_back(sim.add_node({std::string("kv-") + kZones[z], sim::Placement{"dc1", kZones[z], ""},
                                       [members, z, boot](Runtime& rt) {
                                         kv::KvReplicaConfig c;
                                         c.members = members;
                                         c.self_index = z;
                                         c.bootstrap = *boot;
                                         return std::make_unique<kv::KvReplica>(rt, c);
                                       }}));
    }
    EXPECT_EQ(replicas, g.replicas);
    std::shared_ptr<const shard::ShardMap> m = map;
    for (size_t z = 0; z < 3; ++z) {
      std::string zone = kZones[z];
      services.push_back(sim.add_node({"inbox-" + zone, sim::Placement{"dc1", zone, ""},
                                       [m, zone, unordered](Runtime& rt) {
                                         InboxServiceConfig c;
                                         c.shards = m;
                                         c.zone = zone;
                                         c.unordered_append_for_tests = unordered;
                                         return std::make_unique<InboxService>(rt, c);
                                       }}));
    }
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = testing::verbose() ? LogLevel::warn : LogLevel::off;
    return c;
  }
  // Callers sit in zone "x": outside every outage.
  void add_caller(const std::string& name, Caller::Script script) {
    sim.add_node({name, sim::Placement{"dc1", "x", ""},
                  [script](Runtime& rt) { return std::make_unique<Caller>(rt, script); }});
  }
  void start_all() {
    for (size_t i = 1; i <= sim.node_count(); ++i) sim.start(NodeId{static_cast<uint32_t>(i)});
    *bootstrap = false;
  }
};

// --- the appenders and the reader -----------------------------------------------------

struct AppenderParams {
  OrderState* st;
  std::vector<NodeId> services;
  int k;
  TimePoint stop_at;
};

Task<void> appender(Caller& c, AppenderParams p) {
  Rng& rng = c.rt.rng();
  co_await c.rt.sleep(kSettle);
  size_t svc = static_cast<size_t>(p.k);
  int i = 0;
  const TimePoint give_up = p.stop_at + kGiveUp;
  while (c.rt.now() < p.stop_at) {
    const size_t idx = p.st->appends.size();
    p.st->appends.push_back(AppendRecord{p.k, "m" + std::to_string(p.k) + "-" + std::to_string(++i), {}, 0, 0});
    uint64_t seq = ++p.st->next_seq;
    // The send path does other work between allocating and appending.
    co_await c.rt.sleep(milliseconds(static_cast<int64_t>(rng.uniform(6))));
    for (;;) {
      AppendRecord& rec = p.st->appends[idx];
      rec.last_seq = seq;
      AppendRequest req;
      req.set_uid(kUid);
      req.set_seq(seq);
      req.set_message(rec.body);
      rpc::CallOptions opts;
      opts.timeout = kCallerTimeout;
      rpc::Result<AppendReply> r =
          co_await c.endpoint.call<AppendReply>(p.services[svc % p.services.size()], kAppendMethod, req, opts);
      AppendRecord& after = p.st->appends[idx];  // the vector may have grown meanwhile
      if (r.ok() && r->code() == INBOX_OK) {
        after.tries.emplace_back(seq, Told::ok);
        after.acked_seq = seq;
        p.st->duplicates += r->duplicate();
        break;
      }
      if (r.ok() && r->code() == INBOX_STALE_SEQ) {
        after.tries.emplace_back(seq, Told::stale);
        EXPECT_GE(r->last_seq(), seq) << "a stale seq is at or below the head";
        seq = ++p.st->next_seq;  // allocate again: above everything allocated so far
        continue;
      }
      if (r.ok() && (r->code() == INBOX_CONFLICT || r->code() == INBOX_INVALID)) {
        after.tries.emplace_back(seq, r->code() == INBOX_CONFLICT ? Told::conflict : Told::invalid);
        break;
      }
      // Unknown or no answer: the same seq again, through the next instance.
      ++(r.ok() ? p.st->unknown_replies : p.st->rpc_failures);
      if (c.rt.now() >= give_up) break;
      ++svc;
      co_await c.rt.sleep(kCallerPause);
    }
    co_await c.rt.sleep(milliseconds(static_cast<int64_t>(rng.uniform(30))));
  }
  ++p.st->appenders_done;
}

struct ReaderParams {
  OrderState* st;
  std::vector<NodeId> services;
};

// One inbox.Range through the services in turn until a definite answer.
Task<std::optional<RangeReply>> range(Caller& c, const std::vector<NodeId>& services, size_t* svc, uint64_t after,
                                      uint32_t limit) {
  const TimePoint give_up = c.rt.now() + kScenarioLimit;
  while (c.rt.now() < give_up) {
    RangeRequest req;
    req.set_uid(kUid);
    req.set_after_seq(after);
    req.set_limit(limit);
    rpc::CallOptions opts;
    opts.timeout = kCallerTimeout;
    rpc::Result<RangeReply> r = co_await c.endpoint.call<RangeReply>(services[*svc % services.size()], kRangeMethod,
                                                                     req, opts);
    if (r.ok() && r->code() == INBOX_OK) co_return r.value();
    ++*svc;
    co_await c.rt.sleep(kCallerPause);
  }
  co_return std::nullopt;
}

Task<void> reader(Caller& c, ReaderParams p) {
  Rng& rng = c.rt.rng();
  co_await c.rt.sleep(kSettle);
  size_t svc = 0;
  uint64_t cursor = 0;
  for (;;) {
    // Once every appender is done (after the heal), an empty page means caught up.
    const bool finishing = p.st->appenders_done == kAppenders;
    const uint32_t limit = rng.uniform(4) == 0 ? 1 + static_cast<uint32_t>(rng.uniform(3)) : 0;
    std::optional<RangeReply> r = co_await range(c, p.services, &svc, cursor, limit);
    if (!r) {
      p.st->reader_errors.push_back("a range found no service for " + std::to_string(kScenarioLimit.ns() / 1'000'000'000) +
                                    " s");
      break;
    }
    ++p.st->ranges;
    for (const InboxMessage& m : r->messages()) {
      if (m.seq() <= cursor) {
        p.st->reader_errors.push_back("range after " + std::to_string(cursor) + " returned seq " +
                                      std::to_string(m.seq()));
      }
      p.st->seen.push_back(Message{m.seq(), m.message()});
      cursor = std::max(cursor, m.seq());
    }
    if (finishing && r->messages().empty()) break;
    co_await c.rt.sleep(milliseconds(5 + static_cast<int64_t>(rng.uniform(10))));
  }
  // The whole inbox, from the start.
  uint64_t after = 0;
  for (;;) {
    std::optional<RangeReply> r = co_await range(c, p.services, &svc, after, 0);
    if (!r) {
      p.st->reader_errors.push_back("the final read found no service");
      break;
    }
    if (r->messages().empty()) break;
    for (const InboxMessage& m : r->messages()) {
      p.st->stored.push_back(Message{m.seq(), m.message()});
      after = m.seq();
    }
  }
  // The head.
  for (int attempt = 0; attempt < 30 && !p.st->head; ++attempt) {
    HeadRequest req;
    req.set_uid(kUid);
    rpc::CallOptions opts;
    opts.timeout = kCallerTimeout;
    rpc::Result<HeadReply> h =
        co_await c.endpoint.call<HeadReply>(p.services[svc % p.services.size()], kHeadMethod, req, opts);
    if (h.ok() && h->code() == INBOX_OK) {
      p.st->head = h->last_seq();
    } else {
      ++svc;
      co_await c.rt.sleep(kCallerPause);
    }
  }
  p.st->reader_done = true;
}

// --- the checker ---------------------------------------------------------------------

// Every complaint, one per line (empty: passed).
std::string check_order(const OrderState& st) {
  std::string bad;
  auto complain = [&bad](const std::string& s) {
    if (bad.size() < 4000) bad += s + "\n";
  };
  for (const std::string& e : st.reader_errors) complain("reader: " + e);
  for (size_t i = 1; i < st.seen.size(); ++i) {
    if (st.seen[i].seq <= st.seen[i - 1].seq)
      complain("the reader saw seq " + std::to_string(st.seen[i].seq) + " after " + std::to_string(st.seen[i - 1].seq));
  }
  // Everything stored was seen by the reader, in the same order: nothing
  // appeared below a seq it had already passed.
  std::map<uint64_t, std::string> seen_by_seq;
  for (const Message& m : st.seen) seen_by_seq[m.seq] = m.body;
  for (const Message& m : st.stored) {
    auto it = seen_by_seq.find(m.seq);
    if (it == seen_by_seq.end()) {
      complain("seq " + std::to_string(m.seq) + " (" + m.body + ") is stored but the reader never saw it");
    } else if (it->second != m.body) {
      complain("seq " + std::to_string(m.seq) + ": the reader saw " + it->second + ", stored is " + m.body);
    }
  }
  if (st.seen.size() != st.stored.size() || !(st.seen == st.stored))
    complain("the reader saw " + std::to_string(st.seen.size()) + " messages, the inbox holds " +
             std::to_string(st.stored.size()));
  // Each message once; at a seq its appender tried and was not told is stale;
  // every acknowledged one at its seq.
  std::map<std::string, const AppendRecord*> by_body;
  for (const AppendRecord& a : st.appends) by_body[a.body] = &a;
  std::map<std::string, uint64_t> stored_at;
  for (const Message& m : st.stored) {
    if (!stored_at.emplace(m.body, m.seq).second) {
      complain(m.body + " stored twice");
      continue;
    }
    auto it = by_body.find(m.body);
    if (it == by_body.end()) {
      complain("seq " + std::to_string(m.seq) + " holds " + m.body + ", which nobody appended");
      continue;
    }
    const AppendRecord& a = *it->second;
    bool tried = a.last_seq == m.seq;
    for (const auto& [seq, told] : a.tries) {
      tried = tried || seq == m.seq;
      if (seq == m.seq && told == Told::stale)
        complain(m.body + " stored at seq " + std::to_string(m.seq) + ", which its appender was told is stale");
    }
    if (!tried) complain(m.body + " stored at seq " + std::to_string(m.seq) + ", never tried");
  }
  for (const AppendRecord& a : st.appends) {
    for (const auto& [seq, told] : a.tries) {
      if (told == Told::conflict || told == Told::invalid)
        complain(a.body + " at seq " + std::to_string(seq) + ": unexpected conflict/invalid");
    }
    if (a.acked_seq == 0) continue;
    auto it = stored_at.find(a.body);
    if (it == stored_at.end()) {
      complain("acknowledged " + a.body + " at seq " + std::to_string(a.acked_seq) + " is lost");
    } else if (it->second != a.acked_seq) {
      complain("acknowledged " + a.body + " at seq " + std::to_string(a.acked_seq) + " is stored at " +
               std::to_string(it->second));
    }
  }
  if (!st.unordered) {
    const uint64_t last = st.stored.empty() ? 0 : st.stored.back().seq;
    if (!st.head) {
      complain("no head read");
    } else if (*st.head != last) {
      complain("head " + std::to_string(*st.head) + " but the last stored seq is " + std::to_string(last));
    }
  }
  return bad;
}

// --- faults ------------------------------------------------------------------------

// One lane of random faults, one at a time (two lanes overlap): a KV replica
// or an inbox instance crashes; a replica is isolated from its peers; a node
// is clogged; a replica's links get lossy; a zone goes dark (a replica and an
// instance); a replica loses its disk (only while the other two are healthy).
struct FaultCounts {
  size_t by_kind[6] = {};
};

void schedule_faults(World& w, uint64_t lane, TimePoint end, FaultCounts* counts) {
  Rng rng = w.sim.derive_rng("inbox-order.faults", lane);
  sim::Simulation* sim = &w.sim;
  const std::vector<NodeId> reps = w.replicas, svcs = w.services;
  TimePoint t = TimePoint::zero() + kSettle + milliseconds(static_cast<int64_t>(rng.uniform(300)));
  while (t < end) {
    const size_t z = rng.uniform(3);
    const bool on_service = rng.uniform(3) == 0;
    const NodeId id = on_service ? svcs[z] : reps[z];
    const Duration d = milliseconds(100 + static_cast<int64_t>(rng.uniform(700)));
    const int kind = static_cast<int>(rng.uniform(6));
    const TimePoint until = t + d;
    if (kind != 5) sim->at(t, [counts, kind] { ++counts->by_kind[kind]; });
    switch (kind) {
      case 0:
        sim->at(t, [sim, id] { sim->crash(id); });
        sim->at(until, [sim, id] {
          if (!sim->is_up(id)) sim->start(id);
        });
        break;
      case 1: {
        const NodeId r = reps[z];
        std::vector<NodeId> others;
        for (NodeId o : reps)
          if (o != r) others.push_back(o);
        sim->at(t, [sim, r, others, d] {
          sim->faults().partition_for({{sim::Selector(r)}, {sim::Selector(others[0]), sim::Selector(others[1])}}, d);
        });
        break;
      }
      case 2:
        sim->at(t, [sim, id, d] { sim->faults().clog(id, d); });
        break;
      case 3: {
        const NodeId r = reps[z];
        sim->at(t, [sim, r, reps, d] {
          for (NodeId o : reps) {
            if (o == r) continue;
            sim::FaultId f = sim->faults().set_loss(sim::Selector(r), sim::Selector(o), 0.3);
            sim->faults().heal_after(f, d);
          }
        });
        break;
      }
      case 4:
        sim->at(t, [sim, z] { sim->faults().kill_zone(kZones[z]); });
        sim->at(until, [sim, z] { sim->faults().restore_zone(kZones[z]); });
        break;
      case 5: {
        const NodeId r = reps[z];
        sim->at(t, [sim, reps, r, until, counts] {
          for (NodeId o : reps) {
            if (!sim->is_up(o)) return;
            kv::KvReplica* k = sim->node_as<kv::KvReplica>(o);
            if (k == nullptr || k->recovering()) return;
          }
          ++counts->by_kind[5];
          sim->wipe(r);
          sim->at(until, [sim, r] {
            if (!sim->is_up(r)) sim->start(r);
          });
        });
        break;
      }
    }
    t = until + milliseconds(50 + static_cast<int64_t>(rng.uniform(300)));
  }
}

struct SeedResult {
  std::string failure;  // empty: passed
  size_t appends = 0, acked = 0, stale = 0, seen = 0, unknown = 0, duplicates = 0, ranges = 0;
  FaultCounts faults;
  uint64_t trace_hash = 0;
};

SeedResult run_seed(uint64_t seed, bool unordered) {
  SeedResult out;
  World w(seed, unordered);
  OrderState st;
  st.unordered = unordered;
  const TimePoint stop = TimePoint::zero() + kSettle + kWorkload;
  for (int k = 0; k < kAppenders; ++k) {
    AppenderParams p{&st, w.services, k, stop};
    w.add_caller("appender-" + std::to_string(k), [p](Caller& c) { return appender(c, p); });
  }
  ReaderParams rp{&st, w.services};
  w.add_caller("reader", [rp](Caller& c) { return reader(c, rp); });
  w.start_all();
  for (uint64_t lane = 0; lane < 2; ++lane) schedule_faults(w, lane, stop, &out.faults);
  sim::Simulation* sim = &w.sim;
  std::vector<NodeId> all = w.replicas;
  all.insert(all.end(), w.services.begin(), w.services.end());
  sim->at(stop, [sim, all] {
    sim->faults().heal_all();
    for (const char* z : kZones) sim->faults().restore_zone(z);
    for (NodeId o : all)
      if (!sim->is_up(o)) sim->start(o);
  });
  if (!w.sim.run_until([&] { return st.reader_done; }, stop + kScenarioLimit) || !st.reader_done) {
    out.failure = "the reader did not finish: " + w.sim.failure().value_or("timeout");
    return out;
  }
  out.failure = check_order(st);
  if (w.sim.failure()) out.failure += "run failed: " + *w.sim.failure();
  out.appends = st.appends.size();
  for (const AppendRecord& a : st.appends) {
    out.acked += a.acked_seq != 0;
    for (const auto& [seq, told] : a.tries) out.stale += told == Told::stale;
  }
  out.seen = st.seen.size();
  out.unknown = st.unknown_replies + st.rpc_failures;
  out.duplicates = st.duplicates;
  out.ranges = st.ranges;
  out.trace_hash = w.sim.trace_hash();
  return out;
}

void print_seed(uint64_t s, const SeedResult& r) {
  std::printf("seed %llu: %zu messages, %zu acked, %zu stale answers, %zu unknown/failed calls, %zu duplicates, "
              "%zu seen in %zu ranges%s\n",
              static_cast<unsigned long long>(s), r.appends, r.acked, r.stale, r.unknown, r.duplicates, r.seen,
              r.ranges, r.failure.empty() ? "" : " — CAUGHT");
}

TEST(InboxOrder, ConcurrentAppendersUnderFaultsAReaderSeesEveryMessageOnceInSeqOrder) {
  const testing::SeedRange seeds = testing::seed_range(100);
  const auto t0 = std::chrono::steady_clock::now();
  SeedResult total;
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    SeedResult r = run_seed(s, false);
    if (testing::verbose()) print_seed(s, r);
    ASSERT_EQ(r.failure, "") << "seed " << s << "\n"
                             << testing::rerun_hint(s, "build/tests/storage/inbox_order_sim_test",
                                                    "InboxOrder.ConcurrentAppendersUnderFaultsAReaderSeesEveryMessageOnceInSeqOrder");
    EXPECT_GT(r.acked, 20u) << "seed " << s << ": the appenders must really append";
    total.appends += r.appends;
    total.acked += r.acked;
    total.stale += r.stale;
    total.unknown += r.unknown;
    total.duplicates += r.duplicates;
    total.seen += r.seen;
    for (int k = 0; k < 6; ++k) total.faults.by_kind[k] += r.faults.by_kind[k];
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("inbox order: %llu seeds, %.1f s; %zu messages, %zu acknowledged, %zu stale-seq answers, "
              "%zu unknown/failed calls, %zu duplicates; faults: %zu crash, %zu isolate, %zu clog, %zu loss, "
              "%zu zone outage, %zu disk wipe\n",
              static_cast<unsigned long long>(seeds.count), secs, total.appends, total.acked, total.stale,
              total.unknown, total.duplicates, total.faults.by_kind[0], total.faults.by_kind[1],
              total.faults.by_kind[2], total.faults.by_kind[3], total.faults.by_kind[4], total.faults.by_kind[5]);
  if (seeds.count >= 10) {
    EXPECT_GT(total.stale, 0u) << "concurrent appenders must sometimes hit a stale seq";
  }
}

TEST(InboxOrder, SameSeedSameTraceHash) {
  const uint64_t seed = testing::seed_range(1).first;
  SeedResult a = run_seed(seed, false);
  SeedResult b = run_seed(seed, false);
  ASSERT_EQ(a.failure, "");
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.acked, b.acked);
}

// Teeth: the old Append (a CAS of the entry, no head) lets a lower seq be
// stored after a reader passed it — the message is never synced. The first
// seed of 1.. that showed it is kept as a regression test; the scan checks
// the workload still finds it quickly.
constexpr uint64_t kUnorderedRegressionSeed = 1;
constexpr uint64_t kUnorderedSeedsMax = 5;

TEST(InboxOrder, TheUnorderedAppendIsCaughtOnTheRegressionSeed) {
  SeedResult r = run_seed(kUnorderedRegressionSeed, true);
  if (testing::verbose()) print_seed(kUnorderedRegressionSeed, r);
  EXPECT_NE(r.failure, "") << "unordered_append_for_tests went unnoticed on seed " << kUnorderedRegressionSeed;
  if (testing::verbose()) std::printf("%s", r.failure.c_str());
}

TEST(InboxOrder, TheUnorderedAppendIsCaughtWithinAFewSeeds) {
  uint64_t caught = 0;
  for (uint64_t s = 1; s <= kUnorderedSeedsMax; ++s) {
    SeedResult r = run_seed(s, true);
    if (testing::verbose()) print_seed(s, r);
    caught += !r.failure.empty();
  }
  std::printf("unordered append caught on %llu of %llu seeds\n", static_cast<unsigned long long>(caught),
              static_cast<unsigned long long>(kUnorderedSeedsMax));
  EXPECT_GT(caught, 0u);
}

}  // namespace
}  // namespace wx::inbox
