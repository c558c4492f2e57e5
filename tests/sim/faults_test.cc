// Network faults as nodes observe them: partitions (calls across time out,
// no reset arrives, heal brings new connections), one-way blocks, clogging,
// TCP-like loss, extra delay, zone and datacenter outages, clock skew — and
// the same seed giving the same trace with all of them mixed.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nodes/echo/echo_node.h"
#include "nodes/runtime/transport.h"
#include "sim/simulation.h"
#include "tests/sim/recorder_node.h"

namespace wx::sim {
namespace {

using namespace time_literals;

using testing::Arrival;
using testing::Recorder;

// Answers every request frame with the same bytes.
class Server final : public Node {
 public:
  explicit Server(Runtime& rt) : rt_(rt) {}
  std::string_view kind() const override { return "server"; }
  void start() override { rt_.spawn(loop(), "serve"); }

 private:
  Task<void> loop() {
    for (;;) {
      Inbound in = co_await rt_.transport().receive();
      if (in.kind == Inbound::Kind::frame) (void)rt_.transport().send(in.peer, std::move(in.data));
    }
  }
  Runtime& rt_;
};

// Request/response with its own timeout: a call ends ok (answer), timeout
// (nothing within `timeout`) or reset (the connection to the server broke).
class Caller final : public Node {
 public:
  enum class Result { pending, ok, timeout, reset };
  Caller(Runtime& rt, Duration timeout) : rt_(rt), timeout_(timeout) {}
  std::string_view kind() const override { return "caller"; }
  void start() override { rt_.spawn(loop(), "recv"); }

  uint64_t call(NodeId server) {
    const uint64_t id = next_id_++;
    calls_[id] = Call{server, Result::pending, 0};
    (void)rt_.transport().send(server, std::to_string(id));
    calls_[id].timer = rt_.call_after(timeout_, [this, id] { finish(id, Result::timeout); });
    return id;
  }
  Result result(uint64_t id) const { return calls_.at(id).result; }
  uint64_t resets_seen() const { return resets_seen_; }

 private:
  struct Call {
    NodeId server;
    Result result;
    TimerId timer;
  };
  void finish(uint64_t id, Result r) {
    Call& c = calls_.at(id);
    if (c.result != Result::pending) return;
    c.result = r;
    if (r != Result::timeout) rt_.cancel(c.timer);
  }
  Task<void> loop() {
    for (;;) {
      Inbound in = co_await rt_.transport().receive();
      if (in.kind == Inbound::Kind::reset) {
        ++resets_seen_;
        for (auto& [id, c] : calls_) {
          if (c.server == in.peer) finish(id, Result::reset);
        }
        continue;
      }
      finish(std::stoull(in.data), Result::ok);
    }
  }
  Runtime& rt_;
  Duration timeout_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Call> calls_;
  uint64_t resets_seen_ = 0;
};

// A node that keeps sampling its local clock and sets timers by local time.
class ClockProbe final : public Node {
 public:
  struct Seen {
    std::vector<std::pair<TimePoint, TimePoint>> samples;  // (global, local)
    std::vector<TimePoint> timer_fired_global;
  };
  ClockProbe(Runtime& rt, Simulation& sim, Seen* seen) : rt_(rt), sim_(sim), seen_(seen) {}
  std::string_view kind() const override { return "clock"; }
  void start() override {
    rt_.spawn(sample(), "sample");
    rt_.call_at(TimePoint::zero() + 10_s,
                [this] { seen_->timer_fired_global.push_back(sim_.now()); });
  }
  // Sleeps `d` of local time from now, then records when that was globally.
  void sleep_then_record(Duration d) { rt_.spawn(sleeper(d), "sleeper"); }

 private:
  Task<void> sample() {
    for (;;) {
      seen_->samples.push_back({sim_.now(), rt_.now()});
      co_await rt_.sleep(1_ms);
    }
  }
  Task<void> sleeper(Duration d) {
    co_await rt_.sleep(d);
    seen_->timer_fired_global.push_back(sim_.now());
  }
  Runtime& rt_;
  Simulation& sim_;
  Seen* seen_;
};

// --- fixture --------------------------------------------------------------------

struct Net {
  Simulation sim;
  std::map<uint32_t, std::vector<Arrival>> logs;

  explicit Net(uint64_t seed = 1) : sim(make_config(seed)) {}
  static SimConfig make_config(uint64_t seed) {
    SimConfig c;
    c.seed = seed;
    c.log_level = LogLevel::off;
    c.trace_records_max = 1u << 20;
    return c;
  }
  NodeId recorder(Placement p) {
    const uint32_t id = static_cast<uint32_t>(sim.node_count() + 1);
    std::vector<Arrival>* log = &logs[id];
    NodeId n = sim.add_node(NodeSpec{"rec" + std::to_string(id), std::move(p), [log](Runtime& rt) {
                                       return std::make_unique<Recorder>(rt, log);
                                     }});
    sim.start(n);
    return n;
  }
  NodeId server(Placement p) {
    NodeId n = sim.add_node(
        NodeSpec{"server", std::move(p), [](Runtime& rt) { return std::make_unique<Server>(rt); }});
    sim.start(n);
    return n;
  }
  NodeId caller(Placement p, Duration timeout) {
    NodeId n = sim.add_node(NodeSpec{"caller", std::move(p), [timeout](Runtime& rt) {
                                       return std::make_unique<Caller>(rt, timeout);
                                     }});
    sim.start(n);
    return n;
  }
  void send(NodeId from, NodeId to, std::string data) {
    ASSERT_EQ(sim.runtime(from)->transport().send(to, std::move(data)), SendStatus::ok);
  }
  std::vector<std::string> frames(NodeId at, NodeId from) {
    std::vector<std::string> out;
    for (const Arrival& a : logs[at.value]) {
      if (a.kind == Inbound::Kind::frame && a.peer == from.value) out.push_back(a.data);
    }
    return out;
  }
  std::vector<TimePoint> frame_times(NodeId at, NodeId from) {
    std::vector<TimePoint> out;
    for (const Arrival& a : logs[at.value]) {
      if (a.kind == Inbound::Kind::frame && a.peer == from.value) out.push_back(a.at);
    }
    return out;
  }
  size_t resets(NodeId at) {
    return static_cast<size_t>(
        std::count_if(logs[at.value].begin(), logs[at.value].end(),
                      [](const Arrival& a) { return a.kind == Inbound::Kind::reset; }));
  }
  Caller& caller_node(NodeId id) { return *sim.node_as<Caller>(id); }
  size_t fault_notes() {
    const auto& r = sim.kernel().trace().records();
    return static_cast<size_t>(std::count_if(
        r.begin(), r.end(), [](const TraceRecord& x) { return x.tag.kind == TraceKind::fault; }));
  }
};

std::vector<std::string> numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TimePoint at(Duration d) {
  return TimePoint::zero() + d;
}

// --- selectors --------------------------------------------------------------------

TEST(Selector, MatchesByPlacementAndParsesItsTextForm) {
  const Placement p{"sh", "sh-a", "h1"};
  EXPECT_TRUE(Selector::zone("sh-a").matches(NodeId{5}, p));
  EXPECT_TRUE(Selector::zone("sh-a", "sh").matches(NodeId{5}, p));
  EXPECT_FALSE(Selector::zone("sh-a", "sz").matches(NodeId{5}, p));
  EXPECT_TRUE(Selector::datacenter("sh").matches(NodeId{5}, p));
  EXPECT_TRUE(Selector::host("h1").matches(NodeId{5}, p));
  EXPECT_FALSE(Selector::host("").matches(NodeId{5}, Placement{"sh", "sh-a", ""}));
  EXPECT_TRUE(Selector(NodeId{5}).matches(NodeId{5}, p));
  EXPECT_FALSE(Selector(NodeId{6}).matches(NodeId{5}, p));
  for (const char* text : {"n3", "host:h1", "zone:sh-a", "zone:sh/sh-a", "dc:sh"}) {
    auto s = Selector::parse(text);
    ASSERT_TRUE(s.has_value()) << text;
    EXPECT_EQ(s->describe(), text);
  }
  for (const char* bad : {"", "n", "n0", "n3x", "zone:", "zone:/a", "rack:1", "dc:"}) {
    EXPECT_FALSE(Selector::parse(bad).has_value()) << bad;
  }
}

// --- partitions -------------------------------------------------------------------

struct PartitionRun {
  uint64_t hash;
  std::vector<Caller::Result> results;
  bool operator==(const PartitionRun&) const = default;
};

// Zones za | zb zc partitioned; zd in no group. A server and a caller per zone.
PartitionRun run_partition(uint64_t seed) {
  using R = Caller::Result;
  Net n(seed);
  const char* zones[] = {"za", "zb", "zc", "zd"};
  std::vector<NodeId> servers, callers;
  for (const char* z : zones) servers.push_back(n.server({"dc", z, ""}));
  for (const char* z : zones) callers.push_back(n.caller({"dc", z, ""}, 500_ms));
  Network& net = n.sim.network();
  Faults& f = n.sim.faults();
  PartitionRun run{};
  auto call_all = [&](std::vector<std::vector<uint64_t>>* ids) {
    ids->assign(4, std::vector<uint64_t>(4));
    for (size_t c = 0; c < 4; ++c)
      for (size_t s = 0; s < 4; ++s) (*ids)[c][s] = n.caller_node(callers[c]).call(servers[s]);
  };
  auto results = [&](const std::vector<std::vector<uint64_t>>& ids) {
    std::vector<std::vector<R>> out(4, std::vector<R>(4));
    for (size_t c = 0; c < 4; ++c)
      for (size_t s = 0; s < 4; ++s) {
        out[c][s] = n.caller_node(callers[c]).result(ids[c][s]);
        run.results.push_back(out[c][s]);
      }
    return out;
  };

  // Before: everything answers, connections are open.
  std::vector<std::vector<uint64_t>> before, during, after;
  n.sim.at(at(100_ms), [&] { call_all(&before); });
  EXPECT_TRUE(n.sim.run_until(at(1_s) - 300_us));
  for (const auto& row : results(before))
    for (R r : row) EXPECT_EQ(r, R::ok);
  const Network::ConnectionInfo open_before = net.connection(callers[0], servers[1]);
  EXPECT_TRUE(open_before.open);

  // A request in flight when the partition starts (inter-zone latency is
  // well above 300 µs) is lost with its connection.
  const uint64_t in_flight = n.caller_node(callers[0]).call(servers[1]);
  EXPECT_TRUE(n.sim.run_until(at(1_s)));
  EXPECT_EQ(net.connection(callers[0], servers[1]).in_flight[0], 1u);
  const FaultId p =
      f.partition({{Selector::zone("za")}, {Selector::zone("zb"), Selector::zone("zc")}});
  EXPECT_EQ(f.describe(p), "partition#1 [zone:za] | [zone:zb, zone:zc]");
  const Network::ConnectionInfo broken = net.connection(callers[0], servers[1]);
  EXPECT_FALSE(broken.open) << "the partition breaks connections crossing it";
  EXPECT_EQ(broken.epoch, open_before.epoch + 1);
  EXPECT_EQ(broken.in_flight[0], 0u);
  EXPECT_TRUE(net.connection(callers[1], servers[2]).open) << "connections inside one side stay";
  EXPECT_TRUE(net.connection(callers[0], servers[3]).open) << "zd is in no group";

  n.sim.at(at(1100_ms), [&] { call_all(&during); });
  EXPECT_TRUE(n.sim.run_until(at(2_s)));
  EXPECT_EQ(n.caller_node(callers[0]).result(in_flight), R::timeout);
  run.results.push_back(n.caller_node(callers[0]).result(in_flight));
  const auto d = results(during);
  // Rows: caller in za, zb, zc, zd; columns: server in za, zb, zc, zd.
  const std::vector<std::vector<R>> expected = {{R::ok, R::timeout, R::timeout, R::ok},
                                                {R::timeout, R::ok, R::ok, R::ok},
                                                {R::timeout, R::ok, R::ok, R::ok},
                                                {R::ok, R::ok, R::ok, R::ok}};
  EXPECT_EQ(d, expected);
  for (NodeId c : callers)
    EXPECT_EQ(n.caller_node(c).resets_seen(), 0u) << "no reset crosses a partition";
  EXPECT_EQ(net.stats().resets, 0u);
  EXPECT_FALSE(net.connection(callers[0], servers[1]).open) << "blocked sends open nothing";
  EXPECT_GT(net.stats().frames_dropped_blocked, 0u);

  // Heal: new connections, everything answers again.
  EXPECT_TRUE(f.heal(p));
  EXPECT_FALSE(f.heal(p)) << "healing twice is a no-op";
  n.sim.at(at(2100_ms), [&] { call_all(&after); });
  EXPECT_TRUE(n.sim.run_until(at(3_s)));
  for (const auto& row : results(after))
    for (R r : row) EXPECT_EQ(r, R::ok);
  const Network::ConnectionInfo reopened = net.connection(callers[0], servers[1]);
  EXPECT_TRUE(reopened.open);
  EXPECT_EQ(reopened.epoch, broken.epoch + 1) << "a new connection";
  EXPECT_EQ(n.fault_notes(), 2u) << "the partition and its heal are in the trace";
  run.hash = n.sim.trace_hash();
  return run;
}

TEST(Faults, PartitionTimesOutCallsAcrossItWithoutResetsAndHealRestoresThem) {
  const PartitionRun a = run_partition(7);
  const PartitionRun b = run_partition(7);
  EXPECT_EQ(a, b) << "same seed, same run";
  EXPECT_NE(run_partition(8).hash, a.hash);
}

TEST(Faults, PartitionForHealsItselfAndFaultNotesAreDeterministic) {
  Net n;
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""});
  const FaultId p = n.sim.faults().partition_for({{a}, {b}}, 100_ms);
  const std::string what = n.sim.faults().describe(p);
  EXPECT_EQ(what, "partition#1 [n1] | [n2]");
  n.send(a, b, "lost");
  EXPECT_TRUE(n.sim.run_for(99_ms));
  EXPECT_TRUE(n.sim.faults().is_active(p));
  EXPECT_TRUE(n.sim.run_for(2_ms));
  EXPECT_FALSE(n.sim.faults().is_active(p));
  n.send(a, b, "through");
  EXPECT_TRUE(n.sim.run_for(10_ms));
  EXPECT_EQ(n.frames(b, a), std::vector<std::string>{"through"});
  std::vector<uint64_t> details;
  for (const TraceRecord& r : n.sim.kernel().trace().records()) {
    if (r.tag.kind == TraceKind::fault) details.push_back(r.tag.detail);
  }
  EXPECT_EQ(details, (std::vector<uint64_t>{fnv1a64(what), fnv1a64("heal " + what)}));
  EXPECT_THROW(n.sim.faults().partition({{a}}), std::invalid_argument);
  EXPECT_THROW(n.sim.faults().partition({{a}, {}}), std::invalid_argument);
}

TEST(Faults, OneWayBlockLosesOneDirectionOnly) {
  Net n;
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""});
  Network& net = n.sim.network();
  // A frame in flight when the block starts is lost with its connection.
  n.send(a, b, "pre");
  EXPECT_TRUE(n.sim.run_for(100_us));
  const FaultId blk = n.sim.faults().block({a}, {b});
  EXPECT_FALSE(net.connection(a, b).open);
  for (const std::string& s : numbered("ab", 10)) n.send(a, b, s);
  for (const std::string& s : numbered("ba", 10)) n.send(b, a, s);
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_TRUE(n.frames(b, a).empty()) << "a → b is blocked";
  EXPECT_EQ(n.frames(a, b), numbered("ba", 10)) << "b → a flows";
  EXPECT_EQ(n.resets(a) + n.resets(b), 0u);
  EXPECT_EQ(net.stats().frames_dropped_blocked, 10u);
  // b's sends opened a connection; a's drops poisoned its a → b direction.
  const Network::ConnectionInfo during = net.connection(a, b);
  EXPECT_TRUE(during.open);
  n.send(a, b, "still-blocked");
  n.send(b, a, "still-flows");
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(n.frames(a, b).back(), "still-flows");

  EXPECT_TRUE(n.sim.faults().heal(blk));
  for (const std::string& s : numbered("after", 5)) n.send(a, b, s);
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(n.frames(b, a), numbered("after", 5)) << "nothing sent during the block shows up later";
  EXPECT_EQ(net.connection(a, b).epoch, during.epoch + 2)
      << "the gapped connection was replaced (break, open)";
  n.send(b, a, "both-ways");
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(n.frames(a, b).back(), "both-ways");
  EXPECT_EQ(net.stats().frames_sent, net.stats().frames_delivered + net.stats().frames_lost)
      << "every frame accounted for";
}

// --- clogging -----------------------------------------------------------------------

TEST(Faults, ClogHoldsTrafficToAndFromTheNodeAndDeliversAllInOrderAfterwards) {
  Net n;
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""}),
               c = n.recorder({"dc", "zc", ""});
  Network& net = n.sim.network();
  n.send(a, b, "early");  // in flight when the clog starts: held too
  EXPECT_TRUE(n.sim.run_for(100_us));
  const TimePoint until = n.sim.now() + 200_ms;
  n.sim.faults().clog(b, until);
  const TimePoint t0 = n.sim.now();
  std::vector<std::string> to_b = {"early"};
  for (int i = 0; i < 100; ++i) {
    to_b.push_back("m" + std::to_string(i));
    n.sim.at(t0 + 1_ms * i, [&n, a, b, i] { n.send(a, b, "m" + std::to_string(i)); });
  }
  for (const std::string& s : numbered("b2c", 5)) n.send(b, c, s);
  for (const std::string& s : numbered("c2a", 5)) n.send(c, a, s);

  EXPECT_TRUE(n.sim.run_until(until - 1_us));
  EXPECT_TRUE(n.frames(b, a).empty()) << "nothing reaches b during the clog";
  EXPECT_TRUE(n.frames(c, b).empty()) << "nothing leaves b during the clog";
  EXPECT_EQ(n.frames(a, c), numbered("c2a", 5)) << "traffic not touching b flows";

  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(n.frames(b, a), to_b) << "all delivered, in order";
  EXPECT_EQ(n.frames(c, b), numbered("b2c", 5));
  for (TimePoint t : n.frame_times(b, a)) EXPECT_GE(t, until);
  for (TimePoint t : n.frame_times(c, b)) EXPECT_GE(t, until);
  EXPECT_EQ(net.stats().frames_lost, 0u);
  EXPECT_GE(net.stats().frames_clogged, 101u + 5u);
  EXPECT_FALSE(n.sim.faults().is_active(1)) << "a clog ends by itself";
}

TEST(Faults, ClogPairHoldsOnlyThatPairAndAnEarlyHealReleasesIt) {
  Net n;
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""}),
               c = n.recorder({"dc", "zc", ""});
  const FaultId clog = n.sim.faults().clog_pair(a, b, 10_s);
  for (const std::string& s : numbered("x", 20)) {
    n.send(a, b, s);
    n.send(a, c, s);
  }
  EXPECT_TRUE(n.sim.run_for(50_ms));
  EXPECT_TRUE(n.frames(b, a).empty());
  EXPECT_EQ(n.frames(c, a), numbered("x", 20));
  EXPECT_TRUE(n.sim.faults().heal(clog));
  const TimePoint healed = n.sim.now();
  EXPECT_TRUE(n.sim.run_for(10_ms));
  EXPECT_EQ(n.frames(b, a), numbered("x", 20)) << "released at the heal, not at the planned end";
  for (TimePoint t : n.frame_times(b, a)) EXPECT_EQ(t, healed);
}

TEST(Faults, AConnectionWithTooManyFramesInFlightBreaksWithResets) {
  SimConfig cfg = Net::make_config(1);
  cfg.tcp.in_flight_frames_max = 100;
  Simulation sim(cfg);
  std::vector<Arrival> log_a, log_b;
  const NodeId a = sim.add_node(
      {"a", {"dc", "za", ""}, [&](Runtime& rt) { return std::make_unique<Recorder>(rt, &log_a); }});
  const NodeId b = sim.add_node(
      {"b", {"dc", "zb", ""}, [&](Runtime& rt) { return std::make_unique<Recorder>(rt, &log_b); }});
  sim.start(a);
  sim.start(b);
  sim.faults().clog(b, 1_s);
  for (int i = 0; i < 150; ++i)
    ASSERT_EQ(sim.runtime(a)->transport().send(b, "f" + std::to_string(i)), SendStatus::ok);
  EXPECT_EQ(sim.network().stats().overflows, 1u);
  EXPECT_EQ(sim.network().stats().frames_lost, 101u) << "the 100 held and the one that did not fit";
  EXPECT_EQ(sim.network().connection(a, b).in_flight[0], 49u) << "later sends use a new connection";
  ASSERT_TRUE(sim.run_for(2_s));
  auto count = [](const std::vector<Arrival>& log, Inbound::Kind k) {
    return std::count_if(log.begin(), log.end(), [k](const Arrival& x) { return x.kind == k; });
  };
  EXPECT_EQ(count(log_a, Inbound::Kind::reset), 1);
  EXPECT_EQ(count(log_b, Inbound::Kind::reset), 1);
  EXPECT_EQ(count(log_b, Inbound::Kind::frame), 49);
  EXPECT_EQ(log_b.front().data, "f101");
}

// --- loss and delay -------------------------------------------------------------------

TEST(Faults, LossDelaysFramesByRetransmissionTimeoutsButNeverDropsOrReorders) {
  Net n(3);
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""});
  Network& net = n.sim.network();
  const double loss_p = 0.2;
  const FaultId loss = n.sim.faults().set_loss(Selector::zone("za"), Selector::zone("zb"), loss_p);
  EXPECT_NEAR(net.path(a, b).loss_p, loss_p, 1e-12);
  constexpr int kFrames = 2000;
  std::vector<TimePoint> sent_at;
  for (int i = 0; i < kFrames; ++i) {
    sent_at.push_back(n.sim.now() + 1_ms * i);
    n.sim.at(sent_at.back(), [&n, a, b, i] {
      n.send(a, b, "f" + std::to_string(i));
      if (i % 4 == 0) n.send(b, a, "g" + std::to_string(i / 4));
    });
  }
  EXPECT_TRUE(n.sim.run_for(1_s * 2 + 1_ms * kFrames + 60_s));
  EXPECT_EQ(n.frames(b, a), numbered("f", kFrames)) << "every frame, in order";
  EXPECT_EQ(n.frames(a, b), numbered("g", kFrames / 4));
  EXPECT_EQ(net.stats().frames_lost, 0u);
  const uint64_t retransmitted = net.stats().frames_retransmitted;
  EXPECT_GT(retransmitted, static_cast<uint64_t>(kFrames * 1.25 * loss_p * 0.7));
  EXPECT_LT(retransmitted, static_cast<uint64_t>(kFrames * 1.25 * loss_p * 1.3));
  EXPECT_GE(net.stats().retransmits, retransmitted);

  // Delays: never below the path; the lossy ones by at least one RTO; and
  // frames behind a retransmitted one wait for it (head-of-line blocking).
  const std::vector<TimePoint> got = n.frame_times(b, a);
  const LatencyBounds path = net.path(a, b).latency;
  int delayed = 0;
  for (int i = 0; i < kFrames; ++i) {
    const Duration d = got[i] - sent_at[i];
    EXPECT_GE(d, path.min);
    if (d > path.max) {
      ++delayed;
      // Late only if it was retransmitted itself, or it waited behind one and
      // went out right after it.
      EXPECT_TRUE(d >= net.tcp().rto_initial + path.min || (i > 0 && got[i] == got[i - 1]))
          << "frame " << i;
    }
    if (i > 0) {
      EXPECT_GE(got[i], got[i - 1]);
    }
  }
  EXPECT_GT(delayed, static_cast<int>(retransmitted)) << "frames behind a lost one wait too";
  Duration max_delay;
  for (int i = 0; i < kFrames; ++i) max_delay = std::max(max_delay, got[i] - sent_at[i]);
  EXPECT_GE(max_delay, net.tcp().rto_initial);

  EXPECT_TRUE(n.sim.faults().heal(loss));
  for (const std::string& s : numbered("clean", 200)) n.send(a, b, s);
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(net.stats().frames_retransmitted, retransmitted) << "no loss after the heal";
  EXPECT_THROW(n.sim.faults().set_loss(a, b, 1.0), std::invalid_argument);
}

TEST(Faults, LinkLossAppliesToEveryRouteOverTheLink) {
  Net n(5);
  const NodeId a = n.recorder({"dc1", "za", ""}), b = n.recorder({"dc2", "zb", ""}),
               a2 = n.recorder({"dc1", "za", ""});
  n.sim.faults().set_link_loss(Selector::datacenter("dc1"), Selector::datacenter("dc2"), 0.3);
  EXPECT_NEAR(n.sim.network().path(a, b).loss_p, 0.3, 1e-12);
  EXPECT_EQ(n.sim.network().path(a, a2).loss_p, 0.0);
  for (const std::string& s : numbered("w", 300)) n.send(a, b, s);
  for (const std::string& s : numbered("l", 300)) n.send(a, a2, s);
  EXPECT_TRUE(n.sim.run_for(120_s));
  EXPECT_EQ(n.frames(b, a), numbered("w", 300));
  EXPECT_EQ(n.frames(a2, a), numbered("l", 300));
  EXPECT_GT(n.sim.network().stats().frames_retransmitted, 50u);
  EXPECT_LT(n.sim.network().stats().frames_retransmitted, 130u);
}

TEST(Faults, ExtraDelayAddsToEveryFrameUntilRemoved) {
  Net n;
  const NodeId a = n.recorder({"dc", "za", ""}), b = n.recorder({"dc", "zb", ""});
  const LatencyBounds base = n.sim.network().path(a, b).latency;
  const FaultId d = n.sim.faults().add_delay(Selector::zone("za"), b, 50_ms);
  EXPECT_EQ(n.sim.network().path(b, a).latency.min, base.min + 50_ms);
  TimePoint t0 = n.sim.now();
  n.send(a, b, "slow");
  n.send(b, a, "slow-back");
  EXPECT_TRUE(n.sim.run_for(1_s));
  ASSERT_EQ(n.frame_times(b, a).size(), 1u);
  EXPECT_GE(n.frame_times(b, a)[0] - t0, base.min + 50_ms);
  EXPECT_LE(n.frame_times(b, a)[0] - t0, base.max + 50_ms);
  EXPECT_GE(n.frame_times(a, b)[0] - t0, base.min + 50_ms) << "both directions";
  n.sim.faults().set_link_delay(Selector::zone("zb"), Selector::datacenter("dc"), 7_ms);
  EXPECT_EQ(n.sim.network().path(a, b).latency.max, base.max + 57_ms)
      << "link delay adds up with rule delay";
  n.sim.faults().heal_all();
  EXPECT_FALSE(n.sim.faults().is_active(d));
  EXPECT_EQ(n.sim.network().path(a, b).latency.max, base.max);
  t0 = n.sim.now();
  n.send(a, b, "fast");
  EXPECT_TRUE(n.sim.run_for(1_s));
  ASSERT_EQ(n.frame_times(b, a).size(), 2u);
  EXPECT_LE(n.frame_times(b, a)[1] - t0, base.max);
}

// --- outages ------------------------------------------------------------------------------

TEST(Faults, KillZoneCrashesExactlyTheZoneSilentlyAndRestoreRestartsThoseItKilled) {
  Net n;
  const NodeId a1 = n.recorder({"dc1", "a", ""}), a2 = n.recorder({"dc1", "a", ""});
  const NodeId b1 = n.recorder({"dc1", "b", ""}), b2 = n.recorder({"dc1", "b", "hb"}),
               b3 = n.recorder({"dc1", "b", ""});
  const NodeId c1 = n.recorder({"dc1", "c", ""});
  const NodeId other_b = n.recorder({"dc2", "b", ""});  // a zone "b" of another datacenter
  const std::vector<NodeId> all = {a1, a2, b1, b2, b3, c1, other_b};
  n.sim.crash(b3);  // already down: the outage must not bring it back
  n.send(a1, b1, "hello");
  EXPECT_TRUE(n.sim.run_for(10_ms));
  ASSERT_TRUE(n.sim.network().connection(a1, b1).open);

  n.sim.faults().kill_zone("b", "dc1");
  EXPECT_EQ(n.sim.faults().killed_by_zone("b", "dc1"), (std::vector<NodeId>{b1, b2}));
  for (NodeId id : all) {
    const bool in_zone = id == b1 || id == b2 || id == b3;
    EXPECT_EQ(n.sim.is_up(id), !in_zone) << to_string(id);
    EXPECT_EQ(n.sim.incarnation(id), 1u) << to_string(id);
  }
  // A zone without power sends no reset and refuses no connect: silence.
  n.send(a1, b1, "anyone?");
  n.send(c1, b2, "anyone?");
  EXPECT_TRUE(n.sim.run_for(1_s));
  EXPECT_EQ(n.resets(a1) + n.resets(c1), 0u);
  EXPECT_EQ(n.sim.network().stats().refused, 0u);
  n.sim.faults().kill_zone("b", "dc1");  // already dark: nothing happens

  EXPECT_TRUE(n.sim.faults().restore_zone("b", "dc1"));
  EXPECT_FALSE(n.sim.faults().restore_zone("b", "dc1"));
  EXPECT_TRUE(n.sim.is_up(b1) && n.sim.is_up(b2));
  EXPECT_EQ(n.sim.incarnation(b1), 2u);
  EXPECT_EQ(n.sim.incarnation(a1), 1u);
  EXPECT_FALSE(n.sim.is_up(b3)) << "down before the outage, still down";
  n.send(a1, b1, "back");
  EXPECT_TRUE(n.sim.run_for(10_ms));
  EXPECT_EQ(n.frames(b1, a1).back(), "back");

  n.sim.faults().kill_datacenter("dc2");
  EXPECT_FALSE(n.sim.is_up(other_b));
  EXPECT_TRUE(n.sim.is_up(b1));
  EXPECT_TRUE(n.sim.faults().restore_datacenter("dc2"));
  EXPECT_TRUE(n.sim.is_up(other_b));
  EXPECT_THROW(n.sim.faults().kill_zone("nope"), std::invalid_argument);
  EXPECT_THROW(n.sim.faults().kill_datacenter("nope"), std::invalid_argument);
}

TEST(Faults, KillZoneWithoutADatacenterTakesEveryZoneOfThatName) {
  Net n;
  const NodeId x = n.recorder({"dc1", "b", ""}), y = n.recorder({"dc2", "b", ""}),
               z = n.recorder({"dc1", "a", ""});
  n.sim.faults().kill_zone("b");
  EXPECT_FALSE(n.sim.is_up(x));
  EXPECT_FALSE(n.sim.is_up(y));
  EXPECT_TRUE(n.sim.is_up(z));
  EXPECT_TRUE(n.sim.faults().restore_zone("b"));
  EXPECT_TRUE(n.sim.is_up(x) && n.sim.is_up(y));
}

// --- clock skew ---------------------------------------------------------------------------

TEST(Faults, ClockSkewTakesEffectOnARunningNodeAndLocalTimeNeverGoesBack) {
  Net n;
  ClockProbe::Seen seen;
  Simulation& sim = n.sim;
  const NodeId id = sim.add_node(NodeSpec{"clock", Placement{}, [&](Runtime& rt) {
                                            return std::make_unique<ClockProbe>(rt, sim, &seen);
                                          }});
  sim.start(id);
  std::vector<std::pair<TimePoint, TimePoint>> probes;  // (global, local) seen from outside
  auto probe = [&] { probes.push_back({sim.now(), sim.runtime(id)->now()}); };

  // +5 s at global 1 s: local time jumps to 6 s at once, and the timer set
  // for local 10 s fires at global 5 s instead of 10 s.
  sim.at(at(1_s), [&] {
    sim.set_clock_offset(id, 5_s);
    probe();
  });
  // Back to 0 at global 6 s (local 11 s): local time stalls at 11 s until
  // global time reaches it. A 1 s sleep begun in the stall ends at local 12 s.
  sim.at(at(6_s), [&] {
    sim.set_clock_offset(id, Duration::zero());
    probe();
  });
  for (Duration g : {6500_ms, 8_s, 10999_ms, 11_s, 11500_ms}) sim.at(at(g), probe);
  sim.at(at(7_s), [&] { sim.node_as<ClockProbe>(id)->sleep_then_record(1_s); });
  ASSERT_TRUE(sim.run_until(at(13_s)));

  using P = std::pair<TimePoint, TimePoint>;
  EXPECT_EQ(probes, (std::vector<P>{{at(1_s), at(6_s)},
                                    {at(6_s), at(11_s)},
                                    {at(6500_ms), at(11_s)},
                                    {at(8_s), at(11_s)},
                                    {at(10999_ms), at(11_s)},
                                    {at(11_s), at(11_s)},
                                    {at(11500_ms), at(11500_ms)}}));
  EXPECT_EQ(seen.timer_fired_global, (std::vector<TimePoint>{at(5_s), at(12_s)}));
  ASSERT_GT(seen.samples.size(), 5000u);
  for (size_t i = 1; i < seen.samples.size(); ++i) {
    ASSERT_GE(seen.samples[i].second, seen.samples[i - 1].second)
        << "local time went backwards at sample " << i;
  }
  // The node's own 1 ms sampling loop saw the jump: no sample with local time
  // in (1 s, 6 s), none taken during the stall.
  for (const P& s : seen.samples) {
    EXPECT_FALSE(s.second > at(1001_ms) && s.second < at(6_s));
    EXPECT_FALSE(s.first > at(6_s) && s.first < at(11_s));
  }
  // A restart keeps the offset; a negative offset makes the clock run behind.
  sim.set_clock_offset(id, -2_s);
  sim.restart(id);
  EXPECT_EQ(sim.runtime(id)->now(), sim.now() - 2_s);
  EXPECT_EQ(sim.clock_offset(id), -2_s);
}

TEST(Faults, TimerIdsStayExactAcrossSlotReuseAndClockChanges) {
  Net n;
  const NodeId id = n.recorder({"dc", "za", ""});
  SimNodeRuntime& rt = *n.sim.runtime(id);
  std::vector<std::string> fired;
  const TimerId a = rt.call_after(10_ms, [&] { fired.push_back("a"); });
  EXPECT_TRUE(rt.cancel(a));
  EXPECT_FALSE(rt.cancel(a));
  const TimerId b = rt.call_after(10_ms, [&] { fired.push_back("b"); });  // reuses a's slot
  EXPECT_FALSE(rt.cancel(a)) << "a stale id must not cancel the slot's new timer";
  const TimerId now1 = rt.call_at(rt.now(), [&] { fired.push_back("now1"); });
  const TimerId now2 = rt.call_at(rt.now(), [&] { fired.push_back("now2"); });
  EXPECT_NE(now1, now2);
  EXPECT_TRUE(rt.cancel(now2));
  const TimerId c = rt.call_after(20_ms, [&] { fired.push_back("c"); });
  const TimerId d = rt.call_after(20_ms, [&] { fired.push_back("d"); });
  n.sim.set_clock_offset(id, 5_ms);  // b due at global 5 ms, c and d at 15 ms, in call order
  EXPECT_EQ(rt.pending_timers(), 3u);
  ASSERT_TRUE(n.sim.run_for(6_ms));
  EXPECT_EQ(fired, (std::vector<std::string>{"now1", "b"}));
  EXPECT_FALSE(rt.cancel(b)) << "fired";
  EXPECT_FALSE(rt.cancel(now1)) << "fired";
  ASSERT_TRUE(n.sim.run_for(10_ms));
  EXPECT_EQ(fired, (std::vector<std::string>{"now1", "b", "c", "d"}));
  EXPECT_FALSE(rt.cancel(c) || rt.cancel(d));
  EXPECT_EQ(rt.pending_timers(), 0u);
}

// --- determinism with every fault ------------------------------------------------------------

struct MixRun {
  uint64_t hash;
  uint64_t pings_ok, timeouts;
  Network::Stats stats;
  size_t fault_notes;
};

MixRun run_mix(uint64_t seed) {
  SimConfig cfg = Net::make_config(seed);
  Simulation sim(cfg);
  const std::vector<Placement> places = {{"sh", "sh-a", ""},
                                         {"sh", "sh-b", ""},
                                         {"sh", "sh-c", ""},
                                         {"sz", "sz-a", ""},
                                         {"hk", "hk-a", ""}};
  std::vector<NodeId> echoes, pingers;
  for (const Placement& p : places) {
    echoes.push_back(sim.add_node(
        {"echo", p, [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }}));
  }
  for (const Placement& p : places) {
    echo::PingerConfig pc;
    pc.targets = echoes;
    pc.interval = 2_ms;
    pc.timeout = 300_ms;
    pingers.push_back(sim.add_node(
        {"ping", p, [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }}));
  }
  for (NodeId e : echoes) sim.start(e);
  for (NodeId p : pingers) sim.start(p);
  Faults& f = sim.faults();

  // A scripted timeline with every kind of fault…
  sim.at(at(1_s), [&] {
    f.partition_for({{Selector::zone("sh-a")}, {Selector::zone("sh-b"), Selector::zone("sh-c")}},
                    1_s);
  });
  sim.at(at(2500_ms), [&] {
    f.heal_after(f.block({Selector::datacenter("sz")}, {Selector::datacenter("hk")}), 1_s);
  });
  sim.at(at(3_s), [&] {
    f.heal_after(f.set_loss(Selector::zone("sh-b"), Selector::datacenter("sz"), 0.1), 2_s);
  });
  sim.at(at(3500_ms),
         [&] { f.heal_after(f.add_delay(echoes[4], Selector::datacenter("sh"), 20_ms), 1_s); });
  sim.at(at(4_s), [&] { f.clog(echoes[1], 300_ms); });
  sim.at(at(4500_ms), [&] { f.clog_pair(pingers[0], echoes[2], 200_ms); });
  sim.at(at(5_s),
         [&] { f.set_link_up(Selector::datacenter("sh"), Selector::datacenter("sz"), false); });
  sim.at(at(6_s),
         [&] { f.set_link_up(Selector::datacenter("sh"), Selector::datacenter("hk"), false); });
  sim.at(at(6500_ms),
         [&] { f.set_link_loss(Selector::zone("sh-c"), Selector::datacenter("sh"), 0.05); });
  sim.at(at(7_s), [&] { f.heal_all(); });
  sim.at(at(7500_ms), [&] { f.kill_zone("sh-b"); });
  sim.at(at(8500_ms), [&] { f.restore_zone("sh-b"); });
  sim.at(at(9_s), [&] { f.kill_datacenter("hk"); });
  sim.at(at(9500_ms), [&] { f.restore_datacenter("hk"); });
  sim.at(at(9700_ms), [&] { sim.set_clock_offset(pingers[2], 250_ms); });
  sim.at(at(10_s), [&] { sim.set_clock_offset(pingers[2], -100_ms); });
  // …and a seeded swarm of short faults after it.
  Rng rng = sim.derive_rng("faults");
  for (TimePoint t = at(11_s); t < at(18_s); t += rng.exponential(200_ms)) {
    const NodeId x = echoes[rng.uniform(echoes.size())], y = pingers[rng.uniform(pingers.size())];
    const uint64_t kind = rng.uniform(5);
    const Duration len = rng.uniform(50_ms, 400_ms);
    sim.at(t, [&f, &sim, x, y, kind, len] {
      switch (kind) {
        case 0:
          f.heal_after(f.partition({{x}, {y}}), len);
          break;
        case 1:
          f.heal_after(f.block({y}, {x}), len);
          break;
        case 2:
          f.heal_after(f.set_loss(x, y, 0.3), len);
          break;
        case 3:
          f.clog(x, len);
          break;
        case 4:
          if (sim.is_up(x)) sim.crash(x);
          sim.at(sim.now() + len, [&sim, x] {
            if (!sim.is_up(x)) sim.start(x);
          });
          break;
      }
    });
  }
  EXPECT_TRUE(sim.run_until(at(20_s))) << sim.failure().value_or("");
  MixRun r{sim.trace_hash(), 0, 0, sim.network().stats(), 0};
  for (NodeId p : pingers) {
    r.pings_ok += sim.node_as<echo::Pinger>(p)->stats().ok;
    r.timeouts += sim.node_as<echo::Pinger>(p)->stats().timeouts;
  }
  for (const TraceRecord& x : sim.kernel().trace().records())
    r.fault_notes += x.tag.kind == TraceKind::fault;
  return r;
}

TEST(Faults, SameSeedSameTraceWithEveryKindOfFaultDifferentSeedDifferentTrace) {
  const MixRun a = run_mix(11), b = run_mix(11), c = run_mix(12);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.pings_ok, b.pings_ok);
  EXPECT_EQ(a.stats.frames_delivered, b.stats.frames_delivered);
  EXPECT_EQ(a.fault_notes, b.fault_notes);
  EXPECT_NE(a.hash, c.hash);
  // The faults bit: the run is not a quiet one that would pass trivially.
  EXPECT_GT(a.pings_ok, 20'000u);
  EXPECT_GT(a.timeouts, 100u);
  EXPECT_GT(a.stats.frames_dropped_blocked, 0u);
  EXPECT_GT(a.stats.frames_retransmitted, 0u);
  EXPECT_GT(a.stats.frames_clogged, 0u);
  EXPECT_GT(a.stats.connections_broken_silently, 0u);
  EXPECT_GT(a.fault_notes, 40u);
}

}  // namespace
}  // namespace wx::sim
