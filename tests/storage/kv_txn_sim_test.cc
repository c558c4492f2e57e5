// Transactions of the replicated key-value store (kv.Txn, KvClient::txn;
// nodes/storage/kv/, docs/storage.md "Transactions") in simulation: three
// KvReplicas, one per zone, and client nodes.
//
//   * validate_txn: shapes and limits;
//   * basics: conditions hold → every write, else nothing, with the failing
//     conditions and the current versions; malformed and over-limit txns are
//     refused with INVALID by the client and by the server (never a crash);
//   * request ids: a retry of one request id answers the first outcome (also
//     a stored TXN_FAILED whose conditions would now hold), an older one is
//     STALE;
//   * a seeded fault sweep (crashes, isolation, clogging, loss, zone outages,
//     disk loss): every txn writes one value into two keys; every scan during
//     and after the faults sees the two keys equal, conditional txns also
//     record themselves under "h/<version>", so after the heal the whole
//     sequence of applied conditional txns is known: it must contain every
//     acknowledged txn at its acknowledged version, no txn that failed,
//     each unknown txn at most once (resolved: applied or not), and every
//     client's txns in the order it issued them (an older request id never
//     applies after a newer one). The three replicas must end identical
//     (seed 2607, a follower held back ~100 s by TCP back-off, is kept);
//   * the checker itself, on fabricated bad observations.
//
// Seeds: WX_SEEDS / WX_SEED_FIRST / WX_SEED (tests/support/seeds.h),
// WX_VERBOSE=1 prints one line per seed.
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
#include "sim/simulation.h"
#include "tests/support/seeds.h"

namespace wx::kv {
namespace {

using namespace time_literals;

const char* const kZones[] = {"a", "b", "c"};
using Conds = std::vector<KvTxnCondition>;
using Writes = std::vector<KvTxnWrite>;

// A client node: an endpoint, a KvClient and a scripted coroutine (stored in
// the node, so a coroutine lambda's captures live as long as the node).
class TxnTestClient final : public Node {
 public:
  using Script = std::function<Task<void>(TxnTestClient&)>;
  TxnTestClient(Runtime& rt, KvClientConfig cfg, Script script)
      : rt(rt), endpoint(rt), client(rt, endpoint, cfg), replicas(cfg.replicas), script_(std::move(script)) {}
  void start() override {
    endpoint.start();
    rt.spawn(script_(*this), "script");
  }
  std::string_view kind() const override { return "kv-txn-client"; }

  Runtime& rt;
  rpc::RpcEndpoint endpoint;
  KvClient client;
  std::vector<NodeId> replicas;

 private:
  Script script_;
};

struct Cluster {
  sim::Simulation sim;
  std::vector<NodeId> replicas;
  std::shared_ptr<bool> bootstrap = std::make_shared<bool>(true);

  explicit Cluster(uint64_t seed) : sim(config(seed)) {
    const std::vector<NodeId> members = {NodeId{1}, NodeId{2}, NodeId{3}};
    for (size_t i = 0; i < 3; ++i) {
      std::shared_ptr<bool> boot = bootstrap;
      NodeId id = sim.add_node({std::string("kv-") + kZones[i], sim::Placement{"dc", kZones[i], ""},
                                [members, i, boot](Runtime& rt) {
                                  KvReplicaConfig c;
                                  c.members = members;
                                  c.self_index = i;
                                  c.bootstrap = *boot;
                                  return std::make_unique<KvReplica>(rt, c);
                                }});
      EXPECT_EQ(id, members[i]);
      replicas.push_back(id);
    }
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = testing::verbose() ? LogLevel::warn : LogLevel::off;
    return c;
  }
  // Clients sit in zone "x": zone outages spare them.
  NodeId add_client(const std::string& name, TxnTestClient::Script script) {
    KvClientConfig cc;
    cc.replicas = replicas;
    return sim.add_node({name, sim::Placement{"dc", "x", ""},
                         [cc, script](Runtime& rt) { return std::make_unique<TxnTestClient>(rt, cc, script); }});
  }
  void start_all() {
    for (size_t i = 1; i <= sim.node_count(); ++i) sim.start(NodeId{static_cast<uint32_t>(i)});
    *bootstrap = false;
  }
  KvReplica* replica(size_t i) { return sim.node_as<KvReplica>(replicas[i]); }
};

Command txn_command(std::vector<std::pair<std::string, uint64_t>> conds,
                    std::vector<std::pair<std::string, std::string>> writes) {
  Command c;
  c.set_kind(Command::TXN);
  for (auto& [k, v] : conds) {
    TxnCondition* tc = c.add_conditions();
    tc->set_key(k);
    tc->set_expected_version(v);
  }
  for (auto& [k, v] : writes) {
    TxnWrite* tw = c.add_writes();
    tw->set_key(k);
    tw->set_value(v);
  }
  return c;
}

// --- validate_txn ----------------------------------------------------------------

TEST(KvTxn, ValidateTxnAcceptsTheLimitsAndRefusesEverythingBeyond) {
  EXPECT_EQ(validate_txn(txn_command({}, {{"a", "1"}})), "");
  EXPECT_EQ(validate_txn(txn_command({{"a", 0}, {"b", 3}}, {{"a", "1"}, {"c", ""}})), "");
  EXPECT_NE(validate_txn(txn_command({{"a", 0}}, {})), "") << "no write";

  std::vector<std::pair<std::string, uint64_t>> conds;
  std::vector<std::pair<std::string, std::string>> writes;
  for (size_t i = 0; i < kTxnConditionsMax; ++i) conds.emplace_back("c" + std::to_string(i), i);
  for (size_t i = 0; i < kTxnWritesMax; ++i) writes.emplace_back("w" + std::to_string(i), "v");
  EXPECT_EQ(validate_txn(txn_command(conds, writes)), "") << "exactly at both count limits";
  auto more_conds = conds;
  more_conds.emplace_back("c-extra", 0);
  EXPECT_NE(validate_txn(txn_command(more_conds, writes)), "");
  auto more_writes = writes;
  more_writes.emplace_back("w-extra", "v");
  EXPECT_NE(validate_txn(txn_command(conds, more_writes)), "");

  EXPECT_NE(validate_txn(txn_command({{"", 0}}, {{"a", "1"}})), "") << "empty condition key";
  EXPECT_NE(validate_txn(txn_command({}, {{"", "1"}})), "") << "empty write key";
  EXPECT_EQ(validate_txn(txn_command({}, {{std::string(kKeyBytesMax, 'k'), "1"}})), "");
  EXPECT_NE(validate_txn(txn_command({}, {{std::string(kKeyBytesMax + 1, 'k'), "1"}})), "");
  EXPECT_NE(validate_txn(txn_command({{std::string(kKeyBytesMax + 1, 'k'), 0}}, {{"a", "1"}})), "");
  EXPECT_NE(validate_txn(txn_command({}, {{"a", "1"}, {"b", "2"}, {"a", "3"}})), "") << "write key twice";
  EXPECT_NE(validate_txn(txn_command({{"a", 1}, {"a", 1}}, {{"b", "1"}})), "") << "condition key twice";
  EXPECT_EQ(validate_txn(txn_command({{"a", 1}}, {{"a", "1"}})), "") << "a key both checked and written";

  // Bytes: keys and values together, at most kTxnBytesMax.
  const std::string half(kTxnBytesMax / 2 - 1, 'v');
  EXPECT_EQ(validate_txn(txn_command({}, {{"a", half}, {"b", half}})), "");
  EXPECT_NE(validate_txn(txn_command({}, {{"a", half}, {"b", half + "vv"}})), "");
  EXPECT_NE(validate_txn(txn_command({}, {{"a", std::string(kTxnBytesMax, 'v')}})), "");
}

// --- basics -------------------------------------------------------------------

struct BasicsLog {
  std::vector<KvTxnResult> txns;
  std::vector<KvResult> reads;
  KvTxnResult client_invalid, client_too_big;
  std::vector<TxnReply> raw;
  std::vector<bool> raw_ok;
  std::vector<Item> scan;
  bool done = false;
};

// Sends a txn request to each replica in turn until one answers other than
// NOT_LEADER / RETRY (the raw RPC, bypassing KvClient's own checks).
Task<std::optional<TxnReply>> raw_txn(TxnTestClient& c, WriteRequest req) {
  for (int attempt = 0; attempt < 60; ++attempt) {
    rpc::CallOptions opts;
    opts.timeout = 500_ms;
    rpc::Result<TxnReply> r =
        co_await c.endpoint.call<TxnReply>(c.replicas[static_cast<size_t>(attempt) % c.replicas.size()],
                                           kTxnMethod, req, opts);
    if (r.ok() && r->code() != NOT_LEADER && r->code() != RETRY) co_return r.value();
    co_await c.rt.sleep(20_ms);
  }
  co_return std::nullopt;
}

Task<void> basics_script(TxnTestClient& c, BasicsLog* log) {
  co_await c.rt.sleep(1_s);  // a leader
  KvClient& kv = c.client;
  // (GCC: no braced lists inside a co_await expression, hence the locals.)
  // 0: no conditions.
  Conds c0 = {};
  Writes w0 = {{"a", "a1"}, {"b", "b1"}};
  log->txns.push_back(co_await kv.txn(c0, w0));
  // 1: conditions hold (one on an absent key) → both writes.
  Conds c1 = {{"a", 1}, {"c", 0}};
  Writes w1 = {{"a", "a2"}, {"c", "c1"}};
  log->txns.push_back(co_await kv.txn(c1, w1));
  // 2: the first condition is stale → nothing, not even the write to d.
  Conds c2 = {{"a", 1}, {"b", 1}, {"d", 0}};
  Writes w2 = {{"a", "x"}, {"b", "x"}, {"d", "x"}};
  log->txns.push_back(co_await kv.txn(c2, w2));
  // 3: "absent" expected of a present key → fails.
  Conds c3 = {{"b", 0}};
  Writes w3 = {{"e", "x"}};
  log->txns.push_back(co_await kv.txn(c3, w3));
  // 4: a put in between; a txn sees its version.
  (void)co_await kv.put("b", "b2");
  Conds c4 = {{"b", 2}, {"a", 2}};
  Writes w4 = {{"b", "b3"}};
  log->txns.push_back(co_await kv.txn(c4, w4));
  const std::vector<std::string> read_keys = {"a", "b", "c", "d", "e"};
  for (const std::string& k : read_keys) log->reads.push_back(co_await kv.get(k));

  // Refused by the client before sending.
  std::vector<KvTxnWrite> many;
  for (size_t i = 0; i <= kTxnWritesMax; ++i) many.push_back({"m" + std::to_string(i), "v"});
  log->client_invalid = co_await kv.txn(c0, many);
  Writes big = {{"big", std::string(kTxnBytesMax + 1, 'v')}};
  log->client_too_big = co_await kv.txn(c0, big);

  // Refused by the server (raw requests with their own client id).
  const uint64_t raw_client = 0xC0FFEE;
  auto request = [&](uint64_t seq, Command cmd) {
    cmd.set_client_id(raw_client);
    cmd.set_seq(seq);
    WriteRequest req;
    *req.mutable_command() = std::move(cmd);
    return req;
  };
  std::vector<WriteRequest> bad;
  {
    std::vector<std::pair<std::string, std::string>> w;
    for (size_t i = 0; i <= kTxnWritesMax; ++i) w.emplace_back("m" + std::to_string(i), "v");
    bad.push_back(request(1, txn_command({}, w)));
  }
  {
    std::vector<std::pair<std::string, uint64_t>> cs;
    for (size_t i = 0; i <= kTxnConditionsMax; ++i) cs.emplace_back("k" + std::to_string(i), 0);
    bad.push_back(request(2, txn_command(cs, {{"a", "v"}})));
  }
  bad.push_back(request(3, txn_command({}, {{"big", std::string(kTxnBytesMax + 1, 'v')}})));
  bad.push_back(request(4, txn_command({}, {})));
  bad.push_back(request(5, txn_command({}, {{"", "v"}})));
  bad.push_back(request(6, txn_command({}, {{"a", "1"}, {"a", "2"}})));
  bad.push_back(request(0, txn_command({}, {{"a", "v"}})));  // zero request seq
  for (WriteRequest& req : bad) {
    std::optional<TxnReply> r = co_await raw_txn(c, req);
    log->raw_ok.push_back(r.has_value());
    log->raw.push_back(r.value_or(TxnReply{}));
  }
  // Not a request at all: the RPC layer refuses it, the replica lives on.
  {
    rpc::CallOptions opts;
    opts.timeout = 500_ms;
    (void)co_await c.endpoint.call_raw(c.replicas[0], kTxnMethod, std::string("\xff\xff\xff\x0f garbage", 12),
                                       opts);
  }
  // And the store still works.
  Conds c5 = {{"a", 2}};
  Writes w5 = {{"a", "a3"}};
  log->txns.push_back(co_await kv.txn(c5, w5));
  KvScanResult s = co_await kv.scan("", "", "", 0);
  log->scan = s.items;
  log->done = true;
}

TEST(KvTxn, ConditionsHoldAndEveryWriteIsMadeOrNothingIsWritten) {
  Cluster cl(1);
  BasicsLog log;
  cl.add_client("client", [&log](TxnTestClient& c) { return basics_script(c, &log); });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return log.done; }, cl.sim.now() + 60_s)) << cl.sim.failure().value_or("");
  ASSERT_TRUE(log.done);
  ASSERT_EQ(log.txns.size(), 6u);
  const KvTxnResult& t0 = log.txns[0];
  EXPECT_EQ(t0.code, KvTxnCode::ok);
  EXPECT_EQ(t0.write_versions, (std::vector<uint64_t>{1, 1}));
  EXPECT_TRUE(t0.condition_versions.empty());

  const KvTxnResult& t1 = log.txns[1];
  EXPECT_EQ(t1.code, KvTxnCode::ok);
  EXPECT_EQ(t1.write_versions, (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(t1.condition_versions, (std::vector<uint64_t>{1, 0}));

  const KvTxnResult& t2 = log.txns[2];
  EXPECT_EQ(t2.code, KvTxnCode::conditions_failed);
  EXPECT_EQ(t2.failed_conditions, (std::vector<uint32_t>{0}));
  EXPECT_EQ(t2.condition_versions, (std::vector<uint64_t>{2, 1, 0}));
  EXPECT_TRUE(t2.write_versions.empty());

  const KvTxnResult& t3 = log.txns[3];
  EXPECT_EQ(t3.code, KvTxnCode::conditions_failed);
  EXPECT_EQ(t3.failed_conditions, (std::vector<uint32_t>{0}));
  EXPECT_EQ(t3.condition_versions, (std::vector<uint64_t>{1}));

  const KvTxnResult& t4 = log.txns[4];
  EXPECT_EQ(t4.code, KvTxnCode::ok);
  EXPECT_EQ(t4.write_versions, (std::vector<uint64_t>{3}));

  ASSERT_EQ(log.reads.size(), 5u);
  EXPECT_EQ(log.reads[0].value, "a2");
  EXPECT_EQ(log.reads[0].version, 2u);
  EXPECT_EQ(log.reads[1].value, "b3");
  EXPECT_EQ(log.reads[1].version, 3u);
  EXPECT_EQ(log.reads[2].value, "c1");
  EXPECT_EQ(log.reads[2].version, 1u);
  EXPECT_FALSE(log.reads[3].found) << "the failed txn wrote d";
  EXPECT_FALSE(log.reads[4].found) << "the failed txn wrote e";
  for (const KvResult& r : log.reads) EXPECT_EQ(r.code, KvResultCode::ok);

  EXPECT_EQ(log.client_invalid.code, KvTxnCode::invalid);
  EXPECT_NE(log.client_invalid.error, "");
  EXPECT_EQ(log.client_invalid.attempts, 0) << "refused before sending";
  EXPECT_EQ(log.client_too_big.code, KvTxnCode::invalid);

  ASSERT_EQ(log.raw.size(), 7u);
  for (size_t i = 0; i < log.raw.size(); ++i) {
    ASSERT_TRUE(log.raw_ok[i]) << "bad request " << i << " got no answer";
    EXPECT_EQ(log.raw[i].code(), INVALID) << "bad request " << i;
    EXPECT_NE(log.raw[i].error(), "") << "bad request " << i;
  }

  const KvTxnResult& t5 = log.txns[5];
  EXPECT_EQ(t5.code, KvTxnCode::ok) << "the store still works after the refusals";
  EXPECT_EQ(t5.write_versions, (std::vector<uint64_t>{3}));
  std::vector<std::string> keys;
  for (const Item& it : log.scan) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"})) << "no refused or failed txn wrote anything";
  EXPECT_FALSE(cl.sim.failure().has_value());
}

// --- request ids ------------------------------------------------------------------

struct DedupLog {
  std::vector<std::optional<TxnReply>> replies;
  bool done = false;
};

Task<void> dedup_script(TxnTestClient& c, DedupLog* log) {
  co_await c.rt.sleep(1_s);
  const uint64_t id = 0xABCDEF;
  auto request = [&](uint64_t seq, Command cmd) {
    cmd.set_client_id(id);
    cmd.set_seq(seq);
    WriteRequest req;
    *req.mutable_command() = std::move(cmd);
    return req;
  };
  const WriteRequest first = request(1, txn_command({{"k", 0}}, {{"k", "v1"}, {"j", "w1"}}));
  log->replies.push_back(co_await raw_txn(c, first));  // 0: ok, [1, 1]
  log->replies.push_back(co_await raw_txn(c, first));  // 1: the same answer, applied once
  const WriteRequest failing = request(2, txn_command({{"k", 0}}, {{"k", "v2"}}));
  log->replies.push_back(co_await raw_txn(c, failing));  // 2: TXN_FAILED, k at 1
  // Another client moves k on; a re-evaluation of `failing` would now see 2.
  (void)co_await c.client.put("k", "other");
  log->replies.push_back(co_await raw_txn(c, failing));  // 3: the stored TXN_FAILED (k at 1)
  log->replies.push_back(co_await raw_txn(c, first));    // 4: STALE: an older request id
  log->done = true;
}

TEST(KvTxn, ARetryOfOneRequestIdGetsTheFirstOutcomeAndAnOlderOneIsStale) {
  Cluster cl(2);
  DedupLog log;
  std::vector<Item> final_items;
  cl.add_client("client", [&log](TxnTestClient& c) { return dedup_script(c, &log); });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_until([&] { return log.done; }, cl.sim.now() + 60_s)) << cl.sim.failure().value_or("");
  ASSERT_EQ(log.replies.size(), 5u);
  for (const auto& r : log.replies) ASSERT_TRUE(r.has_value());
  EXPECT_EQ(log.replies[0]->code(), OK);
  EXPECT_EQ(std::vector<uint64_t>(log.replies[0]->outcome().write_versions().begin(),
                                  log.replies[0]->outcome().write_versions().end()),
            (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(log.replies[1]->SerializeAsString(), log.replies[0]->SerializeAsString());
  EXPECT_EQ(log.replies[2]->code(), TXN_FAILED);
  EXPECT_EQ(log.replies[2]->outcome().condition_versions(0), 1u);
  EXPECT_EQ(log.replies[2]->outcome().failed_conditions(0), 0u);
  EXPECT_EQ(log.replies[3]->SerializeAsString(), log.replies[2]->SerializeAsString())
      << "a retry answers the stored outcome, not a new evaluation";
  EXPECT_EQ(log.replies[4]->code(), STALE);
  ASSERT_TRUE(cl.sim.run_for(1_s));
  for (size_t i = 0; i < 3; ++i) {
    std::vector<Item> items = cl.replica(i)->dump();
    ASSERT_EQ(items.size(), 2u) << "replica " << i;
    EXPECT_EQ(items[0].key(), "j");
    EXPECT_EQ(items[0].version(), 1u) << "j written once";
    EXPECT_EQ(items[1].key(), "k");
    EXPECT_EQ(items[1].value(), "other");
    EXPECT_EQ(items[1].version(), 2u) << "k: the txn once, then the put";
  }
}

// --- atomicity under faults -------------------------------------------------------

// Keys: the conditional pair p/a, p/b with its history h/<version>; the
// unconditional pair u/a, u/b.
const std::string kPa = "p/a", kPb = "p/b", kUa = "u/a", kUb = "u/b";
constexpr int kHistDigits = 12;
std::string hist_key(uint64_t version) {
  std::string d = std::to_string(version);
  return "h/" + std::string(static_cast<size_t>(kHistDigits) - d.size(), '0') + d;
}

enum class Pair : uint8_t { p, u };
enum class Outcome : uint8_t { ok, failed, unknown };

struct TxnRecord {
  int client = 0;
  uint64_t n = 0;  // the client's n-th txn (issue order)
  Pair pair = Pair::p;
  std::string value;
  uint64_t expected = 0;  // p: expected version of p/a and p/b
  Outcome outcome = Outcome::unknown;
  std::vector<uint64_t> write_versions;
};

// Two keys read together (one scan: one read point).
struct PairRead {
  Pair pair = Pair::p;
  bool a_found = false, b_found = false;
  std::string a, b;
  uint64_t va = 0, vb = 0;
};

struct Observations {
  std::vector<TxnRecord> txns;
  std::vector<PairRead> reads;
  // Conditional txns that failed: the versions of p/a and p/b they saw.
  std::vector<std::pair<uint64_t, uint64_t>> failed_saw;
  // After the heal: the final pairs and the whole history.
  std::optional<PairRead> final_p, final_u;
  std::map<uint64_t, std::string> hist;
  bool final_ok = false;
};

// The checker: every complaint, one per line (empty: passed). Pure, so it is
// also tested on fabricated observations.
std::string check_observations(const Observations& o) {
  std::string bad;
  auto complain = [&bad](const std::string& s) {
    if (bad.size() < 4000) bad += s + "\n";
  };
  auto pair_name = [](Pair p) { return p == Pair::p ? std::string("p") : std::string("u"); };
  std::vector<PairRead> reads = o.reads;
  if (o.final_p) reads.push_back(*o.final_p);
  if (o.final_u) reads.push_back(*o.final_u);
  for (const PairRead& r : reads) {
    if (r.a_found != r.b_found || r.a != r.b || r.va != r.vb) {
      complain("half-applied " + pair_name(r.pair) + " pair seen: a=" + r.a + "@" + std::to_string(r.va) +
               " b=" + r.b + "@" + std::to_string(r.vb));
    }
  }
  for (const auto& [va, vb] : o.failed_saw) {
    if (va != vb) complain("a failed txn saw p/a@" + std::to_string(va) + " p/b@" + std::to_string(vb));
  }
  std::map<std::string, const TxnRecord*> by_value;
  for (const TxnRecord& t : o.txns) by_value[t.value] = &t;
  for (const TxnRecord& t : o.txns) {
    if (t.outcome != Outcome::ok) continue;
    const size_t writes = t.pair == Pair::p ? 3 : 2;
    if (t.write_versions.size() != writes) {
      complain("txn " + t.value + ": " + std::to_string(t.write_versions.size()) + " write versions");
      continue;
    }
    if (t.write_versions[0] != t.write_versions[1])
      complain("txn " + t.value + " made p/a and p/b at different versions");
    if (t.pair == Pair::p && (t.write_versions[0] != t.expected + 1 || t.write_versions[2] != 1))
      complain("txn " + t.value + " expected " + std::to_string(t.expected) + " but wrote version " +
               std::to_string(t.write_versions[0]));
  }
  if (!o.final_ok || !o.final_p || !o.final_u) {
    complain("no final read after the heal");
    return bad;
  }
  // The history of the conditional pair: versions 1..V, the last one the
  // final value, each an ok or unknown txn that expected version - 1, each
  // txn at most once, every ok txn at its version.
  const uint64_t v_final = o.final_p->a_found ? o.final_p->va : 0;
  if (o.hist.size() != v_final || (!o.hist.empty() && o.hist.rbegin()->first != v_final))
    complain("history has " + std::to_string(o.hist.size()) + " entries for final version " + std::to_string(v_final));
  if (v_final > 0) {
    auto last = o.hist.find(v_final);
    if (last == o.hist.end() || last->second != o.final_p->a)
      complain("final p/a " + o.final_p->a + " is not the last history entry");
  }
  std::set<std::string> applied;
  std::map<int, uint64_t> last_n;  // per client, in version order
  for (const auto& [version, value] : o.hist) {
    auto it = by_value.find(value);
    if (it == by_value.end()) {
      complain("history " + std::to_string(version) + " holds " + value + ", no txn of the workload");
      continue;
    }
    const TxnRecord& t = *it->second;
    if (!applied.insert(value).second) complain("txn " + value + " applied twice");
    if (t.pair != Pair::p || t.expected + 1 != version)
      complain("txn " + value + " (expected " + std::to_string(t.expected) + ") applied at version " +
               std::to_string(version));
    if (t.outcome == Outcome::failed) complain("txn " + value + " failed yet applied at " + std::to_string(version));
    if (t.outcome == Outcome::ok && t.write_versions.size() == 3 && t.write_versions[0] != version)
      complain("txn " + value + " acknowledged at " + std::to_string(t.write_versions[0]) + " but history has " +
               std::to_string(version));
    auto [ln, fresh] = last_n.emplace(t.client, t.n);
    if (!fresh) {
      if (t.n <= ln->second)
        complain("client " + std::to_string(t.client) + ": txn " + std::to_string(t.n) + " applied after txn " +
                 std::to_string(ln->second));
      ln->second = t.n;
    }
  }
  for (const TxnRecord& t : o.txns) {
    if (t.pair == Pair::p && t.outcome == Outcome::ok && !applied.count(t.value))
      complain("acknowledged txn " + t.value + " is not in the history (lost)");
  }
  // The unconditional pair: its final value is a txn that was not refused,
  // and its version counts applied txns: at least the acknowledged ones, at
  // most those plus the unknown ones.
  uint64_t u_ok = 0, u_unknown = 0;
  std::set<uint64_t> u_versions;
  for (const TxnRecord& t : o.txns) {
    if (t.pair != Pair::u) continue;
    if (t.outcome == Outcome::ok) {
      ++u_ok;
      if (!t.write_versions.empty() && !u_versions.insert(t.write_versions[0]).second)
        complain("two u txns acknowledged at version " + std::to_string(t.write_versions[0]));
    }
    u_unknown += t.outcome == Outcome::unknown;
  }
  const uint64_t vu = o.final_u->a_found ? o.final_u->va : 0;
  if (vu < u_ok || vu > u_ok + u_unknown)
    complain("u pair at version " + std::to_string(vu) + " after " + std::to_string(u_ok) + " acknowledged and " +
             std::to_string(u_unknown) + " unknown txns");
  if (!u_versions.empty() && *u_versions.rbegin() > vu) complain("an acknowledged u version above the final one");
  if (vu > 0) {
    auto it = by_value.find(o.final_u->a);
    if (it == by_value.end() || it->second->pair != Pair::u || it->second->outcome == Outcome::failed)
      complain("final u value " + o.final_u->a + " is not from an applied u txn");
  }
  return bad;
}

std::optional<PairRead> read_pair(const std::vector<Item>& items, Pair pair) {
  PairRead r;
  r.pair = pair;
  const std::string& ka = pair == Pair::p ? kPa : kUa;
  const std::string& kb = pair == Pair::p ? kPb : kUb;
  for (const Item& it : items) {
    if (it.key() == ka) {
      r.a_found = true;
      r.a = it.value();
      r.va = it.version();
    } else if (it.key() == kb) {
      r.b_found = true;
      r.b = it.value();
      r.vb = it.version();
    }
  }
  return r;
}

struct SweepParams {
  Observations* obs;
  sim::Simulation* sim;
  int client;
  TimePoint stop_at;
  TimePoint final_at;  // zero: no final reads
  bool* final_done;
};

Task<void> sweep_client(TxnTestClient& c, SweepParams p) {
  Rng& rng = c.rt.rng();
  KvClient& kv = c.client;
  uint64_t known = 0;  // this client's idea of p/a's (= p/b's) version
  uint64_t n = 0;
  while (p.sim->now() < p.stop_at) {
    const uint64_t dice = rng.next_u64() % 10;
    if (dice < 5) {
      TxnRecord t;
      t.client = p.client;
      t.n = ++n;
      t.pair = Pair::p;
      t.value = "c" + std::to_string(p.client) + "-" + std::to_string(t.n);
      t.expected = known;
      const size_t i = p.obs->txns.size();
      p.obs->txns.push_back(t);
      Conds conds = {{kPa, known}, {kPb, known}, {hist_key(known + 1), 0}};
      Writes writes = {{kPa, t.value}, {kPb, t.value}, {hist_key(known + 1), t.value}};
      KvTxnResult r = co_await kv.txn(conds, writes);
      TxnRecord& rec = p.obs->txns[i];
      if (r.code == KvTxnCode::ok) {
        rec.outcome = Outcome::ok;
        rec.write_versions = r.write_versions;
        known = known + 1;
      } else if (r.code == KvTxnCode::conditions_failed) {
        rec.outcome = Outcome::failed;
        if (r.condition_versions.size() == 3) {
          p.obs->failed_saw.emplace_back(r.condition_versions[0], r.condition_versions[1]);
          known = r.condition_versions[0];
        }
      } else {
        EXPECT_NE(r.code, KvTxnCode::invalid) << r.error;
      }
    } else if (dice < 7) {
      TxnRecord t;
      t.client = p.client;
      t.n = ++n;
      t.pair = Pair::u;
      t.value = "c" + std::to_string(p.client) + "-" + std::to_string(t.n);
      const size_t i = p.obs->txns.size();
      p.obs->txns.push_back(t);
      Conds conds;
      Writes writes = {{kUa, t.value}, {kUb, t.value}};
      KvTxnResult r = co_await kv.txn(conds, writes);
      if (r.code == KvTxnCode::ok) {
        p.obs->txns[i].outcome = Outcome::ok;
        p.obs->txns[i].write_versions = r.write_versions;
      } else {
        EXPECT_EQ(r.code, KvTxnCode::unknown) << "a txn without conditions cannot fail";
      }
    } else {
      // Both pairs, each from one scan: one read point each.
      for (int which = 0; which < 2; ++which) {
        const Pair pair = which == 0 ? Pair::p : Pair::u;
        KvScanResult s = co_await kv.scan(pair == Pair::p ? "p/" : "u/", "", "", 0);
        if (s.code != KvResultCode::ok) continue;
        std::optional<PairRead> r = read_pair(s.items, pair);
        p.obs->reads.push_back(*r);
        if (pair == Pair::p) known = r->va;
      }
    }
    co_await c.rt.sleep(milliseconds(static_cast<int64_t>(rng.next_u64() % 20)));
  }
  if (p.final_at == TimePoint::zero()) co_return;
  while (p.sim->now() < p.final_at) co_await c.rt.sleep(50_ms);
  KvScanResult sp = co_await kv.scan("p/", "", "", 0);
  KvScanResult su = co_await kv.scan("u/", "", "", 0);
  bool ok = sp.code == KvResultCode::ok && su.code == KvResultCode::ok;
  if (ok) {
    p.obs->final_p = read_pair(sp.items, Pair::p);
    p.obs->final_u = read_pair(su.items, Pair::u);
  }
  // The whole history, paged.
  std::string from = "h/";
  for (;;) {
    KvScanResult h = co_await kv.scan("", from, "h0", 0);  // '0' follows '/'
    if (h.code != KvResultCode::ok) {
      ok = false;
      break;
    }
    for (const Item& it : h.items) {
      uint64_t v = std::stoull(it.key().substr(2));
      p.obs->hist[v] = it.value();
    }
    if (h.items.size() < kScanItemsMax) break;
    from = h.items.back().key() + '\0';
  }
  p.obs->final_ok = ok;
  *p.final_done = true;
}

constexpr Duration kSweepWorkload = seconds(5);
constexpr Duration kSweepQuiesce = seconds(3);
constexpr int kSweepClients = 3;

struct FaultCounts {
  size_t by_kind[6] = {};  // crash, isolate, clog, loss, zone outage, disk wipe
};

// One lane of random faults over the replicas, one at a time; two lanes overlap.
void schedule_faults(Cluster& cl, uint64_t lane, TimePoint end, FaultCounts* counts) {
  Rng rng = cl.sim.derive_rng("kv-txn.faults", lane);
  sim::Simulation* sim = &cl.sim;
  const std::vector<NodeId> reps = cl.replicas;
  TimePoint t = TimePoint::zero() + milliseconds(300 + static_cast<int64_t>(rng.uniform(300)));
  while (t < end) {
    const size_t r = rng.uniform(3);
    const NodeId id = reps[r];
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
        std::vector<NodeId> others;
        for (NodeId o : reps)
          if (o != id) others.push_back(o);
        sim->at(t, [sim, id, others, d] {
          sim->faults().partition_for({{sim::Selector(id)}, {sim::Selector(others[0]), sim::Selector(others[1])}},
                                      d);
        });
        break;
      }
      case 2:
        sim->at(t, [sim, id, d] { sim->faults().clog(id, d); });
        break;
      case 3:
        sim->at(t, [sim, id, reps, d] {
          for (NodeId o : reps) {
            if (o == id) continue;
            sim::FaultId f = sim->faults().set_loss(sim::Selector(id), sim::Selector(o), 0.3);
            sim->faults().heal_after(f, d);
          }
        });
        break;
      case 4:
        sim->at(t, [sim, r] { sim->faults().kill_zone(kZones[r]); });
        sim->at(until, [sim, r] { sim->faults().restore_zone(kZones[r]); });
        break;
      case 5:  // disk loss, only while the other two are healthy
        sim->at(t, [sim, reps, id, until, counts] {
          for (NodeId o : reps) {
            if (!sim->is_up(o)) return;
            KvReplica* k = sim->node_as<KvReplica>(o);
            if (k == nullptr || k->recovering()) return;
          }
          ++counts->by_kind[5];
          sim->wipe(id);
          sim->at(until, [sim, id] {
            if (!sim->is_up(id)) sim->start(id);
          });
        });
        break;
    }
    t = until + milliseconds(50 + static_cast<int64_t>(rng.uniform(300)));
  }
}

struct SweepResult {
  std::string failure;  // empty: passed
  size_t ok = 0, failed = 0, unknown = 0, unknown_applied = 0, reads = 0;
  double converge_s = 0;  // virtual seconds from the final reads until the replicas agreed
  FaultCounts faults;
  uint64_t trace_hash = 0;
};

SweepResult run_sweep_seed(uint64_t seed) {
  SweepResult out;
  Cluster cl(seed);
  Observations obs;
  bool final_done = false;
  const TimePoint stop = TimePoint::zero() + kSweepWorkload;
  const TimePoint final_at = stop + kSweepQuiesce;
  for (int c = 1; c <= kSweepClients; ++c) {
    SweepParams p{&obs, &cl.sim, c, stop, c == 1 ? final_at : TimePoint::zero(), &final_done};
    cl.add_client("client-" + std::to_string(c),
                  [p](TxnTestClient& k) -> Task<void> { return sweep_client(k, p); });
  }
  cl.start_all();
  for (uint64_t lane = 0; lane < 2; ++lane) schedule_faults(cl, lane, stop, &out.faults);
  sim::Simulation* sim = &cl.sim;
  const std::vector<NodeId> reps = cl.replicas;
  sim->at(stop, [sim, reps] {
    sim->faults().heal_all();
    for (const char* z : kZones) sim->faults().restore_zone(z);
    for (NodeId o : reps)
      if (!sim->is_up(o)) sim->start(o);
  });
  if (!cl.sim.run_until([&] { return final_done; }, final_at + 10_s) || !final_done) {
    out.failure = "the final reads did not finish: " + cl.sim.failure().value_or("timeout");
    return out;
  }
  out.failure = check_observations(obs);
  // Replicas identical once caught up. A frame sent on a lossy link may wait
  // out a long retransmission back-off (computed when it is sent, as TCP's
  // timer runs on after the loss ends) and hold every later frame of its
  // connection: seed 2607 keeps a follower behind for ~100 s of virtual time
  // after the heal. Idle virtual time is cheap, so wait up to 600 s.
  auto caught_up = [&cl] {
    for (size_t i = 0; i < 3; ++i) {
      KvReplica* r = cl.replica(i);
      if (r == nullptr || r->recovering() || r->applied_index() != cl.replica(0)->applied_index()) return false;
    }
    return true;
  };
  if (out.failure.empty() && !cl.sim.run_until(caught_up, cl.sim.now() + 600_s)) {
    out.failure = "the replicas did not converge within 600 s of the final reads\n";
    for (size_t k = 0; k < 3; ++k) {
      if (cl.replica(k)) out.failure += "  " + cl.replica(k)->replica().describe() + "\n";
    }
  }
  out.converge_s = static_cast<double>((cl.sim.now() - final_at).ns()) / 1e9;
  if (out.failure.empty()) {
    const std::vector<Item> ref = cl.replica(0)->dump();
    for (size_t i = 1; i < 3; ++i) {
      const std::vector<Item> got = cl.replica(i)->dump();
      bool same = got.size() == ref.size();
      for (size_t j = 0; same && j < ref.size(); ++j) same = got[j].SerializeAsString() == ref[j].SerializeAsString();
      if (!same) {
        out.failure = "replica " + std::to_string(i) + " differs from replica 0 at the same applied index: " +
                      std::to_string(got.size()) + " keys vs " + std::to_string(ref.size()) + "\n";
        for (size_t j = 0; j < std::max(got.size(), ref.size()) && j < 400; ++j) {
          const std::string g = j < got.size() ? got[j].key() + "@" + std::to_string(got[j].version()) : "-";
          const std::string r = j < ref.size() ? ref[j].key() + "@" + std::to_string(ref[j].version()) : "-";
          if (g != r) {
            out.failure += "  first difference at " + std::to_string(j) + ": " + g + " vs " + r + "\n";
            break;
          }
        }
        for (size_t k = 0; k < 3; ++k) out.failure += "  " + cl.replica(k)->replica().describe() + "\n";
      }
    }
  }
  if (cl.sim.failure()) out.failure += "run failed: " + *cl.sim.failure();
  for (const TxnRecord& t : obs.txns) {
    out.ok += t.outcome == Outcome::ok;
    out.failed += t.outcome == Outcome::failed;
    if (t.outcome == Outcome::unknown) {
      ++out.unknown;
      if (t.pair == Pair::p) {
        for (const auto& [v, value] : obs.hist) out.unknown_applied += value == t.value;
      }
    }
  }
  out.reads = obs.reads.size();
  out.trace_hash = cl.sim.trace_hash();
  return out;
}

TEST(KvTxn, NeverHalfAppliedAndAcknowledgedTxnsSurviveRandomFaults) {
  const testing::SeedRange seeds = testing::seed_range(200);
  const auto t0 = std::chrono::steady_clock::now();
  SweepResult total;
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    SweepResult r = run_sweep_seed(s);
    ASSERT_EQ(r.failure, "") << "seed " << s << "\n"
                             << testing::rerun_hint(s, "build/tests/storage/kv_txn_sim_test",
                                                    "KvTxn.NeverHalfAppliedAndAcknowledgedTxnsSurviveRandomFaults");
    EXPECT_GT(r.ok, 20u) << "seed " << s << ": the workload must really commit txns";
    if (testing::verbose()) {
      std::printf("seed %llu: %zu ok, %zu failed, %zu unknown (%zu applied), %zu pair reads\n",
                  static_cast<unsigned long long>(s), r.ok, r.failed, r.unknown, r.unknown_applied, r.reads);
    }
    total.ok += r.ok;
    total.failed += r.failed;
    total.unknown += r.unknown;
    total.unknown_applied += r.unknown_applied;
    total.reads += r.reads;
    total.converge_s = std::max(total.converge_s, r.converge_s);
    for (int k = 0; k < 6; ++k) total.faults.by_kind[k] += r.faults.by_kind[k];
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "kv txn sweep: %llu seeds, %.1f s; txns %zu ok, %zu conditions failed, %zu unknown (%zu of them applied), "
      "%zu pair reads; replicas agreed at most %.1f virtual s after the final reads; faults: %zu crash, %zu isolate, %zu clog, %zu loss, %zu zone outage, %zu disk wipe\n",
      static_cast<unsigned long long>(seeds.count), secs, total.ok, total.failed, total.unknown,
      total.unknown_applied, total.reads, total.converge_s, total.faults.by_kind[0], total.faults.by_kind[1], total.faults.by_kind[2],
      total.faults.by_kind[3], total.faults.by_kind[4], total.faults.by_kind[5]);
  if (seeds.count >= 20) {
    EXPECT_GT(total.failed, 0u) << "conditional txns must sometimes lose";
    EXPECT_GT(total.unknown, 0u) << "the faults must leave some outcomes unknown";
  }
}

// Regression (first seen on seed 203 of the sweep): a follower's frames to
// the leader sat behind one in a long TCP retransmission back-off (sent while
// its link was lossy), so it was still ~100 virtual s behind after the heal,
// and an early version of this test compared the replicas after 2 s and
// failed. The sweep now waits for the replicas to agree on the applied index;
// this seed keeps that long case covered. Since KV leaders serve reads under
// their lease every schedule's timing differs: of seeds 1..3000 only 2607
// holds a follower back over 30 s (98.6 s; the next longest, 2032, 22 s).
constexpr uint64_t kSlowFollowerSeed = 2607;

TEST(KvTxn, AFollowerHeldBackByRetransmissionBackoffCatchesUpIdentical) {
  SweepResult r = run_sweep_seed(kSlowFollowerSeed);
  ASSERT_EQ(r.failure, "");
  std::printf("seed %llu: replicas agreed %.1f virtual s after the final reads\n",
              static_cast<unsigned long long>(kSlowFollowerSeed), r.converge_s);
  EXPECT_GT(r.converge_s, 30.0) << "seed " << kSlowFollowerSeed
                                << " no longer holds a follower back: pick another seed that does";
}

TEST(KvTxn, SameSeedSameTraceHash) {
  const uint64_t seed = testing::seed_range(1).first;
  SweepResult a = run_sweep_seed(seed);
  SweepResult b = run_sweep_seed(seed);
  ASSERT_EQ(a.failure, "");
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.unknown, b.unknown);
}

// The checker itself: each kind of wrong observation is reported.
TEST(KvTxn, TheCheckerReportsHalfAppliedLostDuplicatedAndReorderedTxns) {
  auto rec = [](int client, uint64_t n, Pair pair, uint64_t expected, Outcome o, std::vector<uint64_t> wv) {
    TxnRecord t;
    t.client = client;
    t.n = n;
    t.pair = pair;
    t.value = "c" + std::to_string(client) + "-" + std::to_string(n);
    t.expected = expected;
    t.outcome = o;
    t.write_versions = std::move(wv);
    return t;
  };
  auto pr = [](Pair pair, std::string a, uint64_t va, std::string b, uint64_t vb) {
    PairRead r;
    r.pair = pair;
    r.a_found = !a.empty();
    r.b_found = !b.empty();
    r.a = std::move(a);
    r.b = std::move(b);
    r.va = va;
    r.vb = vb;
    return r;
  };
  Observations good;
  good.txns = {rec(1, 1, Pair::p, 0, Outcome::ok, {1, 1, 1}), rec(2, 1, Pair::p, 0, Outcome::failed, {}),
               rec(2, 2, Pair::p, 1, Outcome::unknown, {}), rec(1, 2, Pair::u, 0, Outcome::ok, {1, 1}),
               rec(1, 3, Pair::p, 2, Outcome::ok, {3, 3, 1})};
  good.reads = {pr(Pair::p, "c1-1", 1, "c1-1", 1)};
  good.failed_saw = {{1, 1}};
  good.final_p = pr(Pair::p, "c1-3", 3, "c1-3", 3);
  good.final_u = pr(Pair::u, "c1-2", 1, "c1-2", 1);
  good.hist = {{1, "c1-1"}, {2, "c2-2"}, {3, "c1-3"}};
  good.final_ok = true;
  ASSERT_EQ(check_observations(good), "");

  Observations o = good;
  o.reads.push_back(pr(Pair::p, "c1-3", 3, "c1-1", 1));
  EXPECT_NE(check_observations(o), "") << "half-applied pair";
  o = good;
  o.final_u = pr(Pair::u, "c1-2", 1, "", 0);
  EXPECT_NE(check_observations(o), "") << "half-applied final pair";
  o = good;
  o.failed_saw.push_back({3, 2});
  EXPECT_NE(check_observations(o), "") << "a failed txn saw a half-applied pair";
  o = good;
  o.hist = {{1, "c1-1"}, {2, "c2-1"}, {3, "c1-3"}};
  EXPECT_NE(check_observations(o), "") << "a failed txn applied";
  o = good;
  o.hist = {{1, "c2-2"}, {2, "c2-2"}, {3, "c1-3"}};
  EXPECT_NE(check_observations(o), "") << "acknowledged txn lost, another applied twice";
  o = good;
  o.txns.push_back(rec(1, 4, Pair::p, 0, Outcome::unknown, {}));
  o.txns[0].outcome = Outcome::unknown;
  o.txns[0].write_versions.clear();
  o.hist = {{1, "c1-4"}, {2, "c2-2"}, {3, "c1-3"}};
  EXPECT_NE(check_observations(o), "") << "client 1's 4th txn applied before its 3rd";
  o = good;
  o.final_u = pr(Pair::u, "c1-2", 2, "c1-2", 2);
  EXPECT_NE(check_observations(o), "") << "more u txns applied than issued";
}

}  // namespace
}  // namespace wx::kv
