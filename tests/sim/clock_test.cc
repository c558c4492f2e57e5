// Clocks in the simulator: per-node skew (offset steps) and drift (rate in
// parts per million), sim/sim_runtime.h (LocalClock) and Simulation /
// Faults::set_clock_rate. Local time must advance at the set rate, stay
// continuous and monotonic across rate changes, and timers set by local time
// must fire at the global time the local clock reaches their deadline —
// never early, never late — under fast and slow clocks and across changes.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nodes/runtime/random.h"
#include "sim/simulation.h"
#include "tests/sim/recorder_node.h"

namespace wx::sim {
namespace {

using namespace time_literals;

TimePoint at(Duration d) { return TimePoint::zero() + d; }
constexpr int64_t kMaxNs = std::numeric_limits<int64_t>::max();

SimConfig make_config(uint64_t seed = 1) {
  SimConfig c;
  c.seed = seed;
  c.log_level = LogLevel::off;
  return c;
}

// --- LocalClock: the arithmetic -------------------------------------------------

TEST(LocalClock, DefaultReadsGlobalTimeExactly) {
  const LocalClock c;
  for (int64_t g : {int64_t{0}, int64_t{1}, int64_t{999'999'999}, int64_t{123'456'789'012}}) {
    EXPECT_EQ(c.local_at(TimePoint::from_ns(g)).ns(), g);
    EXPECT_EQ(c.global_at(TimePoint::from_ns(g)).ns(), g);
  }
}

TEST(LocalClock, RunsAtOnePlusPpmAndInvertsRoundingUp) {
  const LocalClock fast(at(1_s), at(1_s), 50'000);  // +5 %
  EXPECT_EQ(fast.local_at(at(11_s)), at(11500_ms));
  EXPECT_EQ(fast.global_at(at(11500_ms)), at(11_s));
  const LocalClock slow(at(1_s), at(1_s), -50'000);  // -5 %
  EXPECT_EQ(slow.local_at(at(11_s)), at(10500_ms));
  EXPECT_EQ(slow.global_at(at(10500_ms)), at(11_s));
  // 1 ns of global time is 0.95 ns of local time: floor. The inverse is the
  // earliest global time at which the clock reads at least the deadline.
  EXPECT_EQ(slow.local_at(at(1_s) + 1_ns), at(1_s));
  EXPECT_EQ(slow.global_at(at(1_s) + 1_ns), at(1_s) + 2_ns);  // 2 ns -> 1.9 -> 1
  // 1 ns of local time at +100 %: reached after 0.5 ns, i.e. at 1 ns.
  const LocalClock twice(TimePoint::zero(), TimePoint::zero(), LocalClock::kPpmMax);
  EXPECT_EQ(twice.global_at(TimePoint::zero() + 1_ns), TimePoint::zero() + 1_ns);
  EXPECT_EQ(twice.local_at(TimePoint::zero() + 1_ns), TimePoint::zero() + 2_ns);
}

TEST(LocalClock, GlobalAtIsTheExactInverseForRandomClocks) {
  Rng rng(20240611);
  for (int i = 0; i < 20'000; ++i) {
    const int64_t ppm = rng.uniform_int(LocalClock::kPpmMin, LocalClock::kPpmMax);
    const TimePoint g0 = TimePoint::from_ns(rng.uniform_int(0, int64_t{1} << 50));
    const TimePoint l0 = TimePoint::from_ns(rng.uniform_int(-(int64_t{1} << 50), int64_t{1} << 50));
    const LocalClock c(g0, l0, ppm);
    const TimePoint local = l0 + Duration::from_ns(rng.uniform_int(-(int64_t{1} << 40), int64_t{1} << 40));
    const TimePoint g = c.global_at(local);
    ASSERT_GE(c.local_at(g), local) << "fires early: ppm " << ppm << " i " << i;
    ASSERT_LT(c.local_at(g - 1_ns), local) << "fires late: ppm " << ppm << " i " << i;
    // Monotonic.
    const TimePoint g2 = g + Duration::from_ns(rng.uniform_int(0, 1'000'000));
    ASSERT_GE(c.local_at(g2), c.local_at(g));
  }
}

TEST(LocalClock, RateChangesAreContinuousAndStepsExact) {
  const LocalClock c(at(0_s), at(0_s), 30'000);
  const LocalClock d = c.with_rate(at(7_s), -20'000);
  EXPECT_EQ(d.local_at(at(7_s)), c.local_at(at(7_s)));
  EXPECT_EQ(d.local_at(at(7_s)), at(7210_ms));
  EXPECT_EQ(d.local_at(at(17_s)), at(7210_ms) + 9800_ms);
  EXPECT_EQ(d.rate_ppm(), -20'000);
  const LocalClock e = d.stepped(at(17_s), -3_s);
  EXPECT_EQ(e.local_at(at(17_s)), at(14_s));
  EXPECT_EQ(e.offset_at(at(17_s)), -3_s);
  EXPECT_EQ(e.rate_ppm(), -20'000);
}

TEST(LocalClock, SaturatesAndRejectsRatesThatStopOrReverseTime) {
  const LocalClock slowest(TimePoint::zero(), TimePoint::zero(), LocalClock::kPpmMin);
  EXPECT_EQ(slowest.global_at(TimePoint::from_ns(kMaxNs)).ns(), kMaxNs);
  EXPECT_EQ(slowest.global_at(TimePoint::zero() + 1_s), TimePoint::zero() + 1'000'000_s);
  const LocalClock fastest(TimePoint::zero(), TimePoint::zero(), LocalClock::kPpmMax);
  EXPECT_EQ(fastest.local_at(TimePoint::from_ns(kMaxNs)).ns(), kMaxNs);
  // At rate 1 too (the path without 128-bit arithmetic falls back to it).
  const LocalClock ahead(TimePoint::zero(), TimePoint::from_ns(kMaxNs - 5), 0);
  EXPECT_EQ(ahead.local_at(TimePoint::zero() + 10_ns).ns(), kMaxNs);
  EXPECT_EQ(ahead.local_at(TimePoint::zero() + 3_ns).ns(), kMaxNs - 2);
  const LocalClock behind(TimePoint::from_ns(kMaxNs - 5), TimePoint::zero(), 0);
  EXPECT_EQ(behind.global_at(TimePoint::zero() + 10_ns).ns(), kMaxNs);
  EXPECT_THROW(LocalClock(TimePoint::zero(), TimePoint::zero(), -1'000'000), std::invalid_argument);
  EXPECT_THROW(LocalClock(TimePoint::zero(), TimePoint::zero(), 1'000'001), std::invalid_argument);
}

// --- a node's clock in the simulation ----------------------------------------------

// Samples its local clock every `period` of local time and sets timers by
// local time, recording the global time each fired and what it read then.
class ClockNode final : public Node {
 public:
  struct Fired {
    TimePoint deadline, global, local;
    TimePoint local_1ns_before;  // the clock in force, read 1 ns before the fire
  };
  struct Seen {
    std::vector<std::pair<TimePoint, TimePoint>> samples;  // (global, local)
    std::vector<Fired> fired;
  };
  ClockNode(Runtime& rt, Simulation& sim, Seen* seen, Duration period)
      : rt_(rt), sim_(sim), seen_(seen), period_(period) {}
  std::string_view kind() const override { return "clock"; }
  void start() override {
    if (period_ > Duration::zero()) rt_.spawn(sample(), "sample");
  }
  TimerId timer_at(TimePoint local) {
    return rt_.call_at(local, [this, local] { record(local); });
  }
  void sleep_for(Duration d) { rt_.spawn(sleeper(d), "sleeper"); }

 private:
  Task<void> sample() {
    for (;;) {
      seen_->samples.push_back({sim_.now(), rt_.now()});
      co_await rt_.sleep(period_);
    }
  }
  Task<void> sleeper(Duration d) {
    const TimePoint deadline = rt_.now() + d;
    co_await rt_.sleep(d);
    record(deadline);
  }
  void record(TimePoint deadline) {
    const TimePoint g = sim_.now();
    seen_->fired.push_back({deadline, g, rt_.now(), sim_.clock(rt_.node_id()).local_at(g - 1_ns)});
  }
  Runtime& rt_;
  Simulation& sim_;
  Seen* seen_;
  Duration period_;
};

struct ClockRig {
  Simulation sim;
  ClockNode::Seen seen;
  NodeId id;
  explicit ClockRig(Duration period = Duration::zero(), uint64_t seed = 1) : sim(make_config(seed)) {
    id = sim.add_node(NodeSpec{"clock", Placement{"dc", "a", ""}, [this, period](Runtime& rt) {
                                 return std::make_unique<ClockNode>(rt, sim, &seen, period);
                               }});
    sim.start(id);
  }
  ClockNode& node() { return *sim.node_as<ClockNode>(id); }
  TimePoint local() { return sim.runtime(id)->now(); }
  // Every fired timer: not early (local >= deadline) and not late (one
  // nanosecond earlier the clock, as set then, had not reached it).
  void expect_exact_fires() {
    for (const ClockNode::Fired& f : seen.fired) {
      EXPECT_GE(f.local, f.deadline) << "fired early at global " << to_string(f.global);
      EXPECT_LT(f.local_1ns_before, f.deadline)
          << "fired late at global " << to_string(f.global);
    }
  }
};

TEST(ClockDrift, LocalTimeAdvancesAtTheSetRate) {
  for (int64_t ppm : {int64_t{50'000}, int64_t{-50'000}, int64_t{1}, int64_t{-1}, int64_t{250}}) {
    ClockRig r;
    ASSERT_TRUE(r.sim.run_until(at(1_s)));
    r.sim.set_clock_rate(r.id, ppm);
    EXPECT_EQ(r.sim.clock_rate_ppm(r.id), ppm);
    EXPECT_EQ(r.local(), at(1_s));  // no step
    ASSERT_TRUE(r.sim.run_until(at(101_s)));
    // 100 s of global time: 100 s + ppm * 100 us of local time, exactly.
    EXPECT_EQ(r.local(), at(101_s) + microseconds(ppm * 100)) << ppm << " ppm";
    EXPECT_EQ(r.sim.clock_offset(r.id), microseconds(ppm * 100));
  }
}

TEST(ClockDrift, RateChangesKeepLocalTimeContinuousAndMonotonic) {
  ClockRig r(1_ms);
  std::vector<std::pair<TimePoint, TimePoint>> around;  // local just before / just after each change
  const int64_t rates[] = {40'000, -45'000, 1'000'000, -999'999, 0, -30'000, 50'000};
  Duration g = 500_ms;
  for (int64_t ppm : rates) {
    r.sim.at(at(g), [&r, &around, ppm] {
      const TimePoint before = r.local();
      r.sim.set_clock_rate(r.id, ppm);
      around.push_back({before, r.local()});
    });
    g += 777_ms;
  }
  ASSERT_TRUE(r.sim.run_until(at(g + 1_s)));
  ASSERT_EQ(around.size(), std::size(rates));
  for (const auto& [before, after] : around) EXPECT_EQ(before, after);
  ASSERT_GT(r.seen.samples.size(), 3000u);
  for (size_t i = 1; i < r.seen.samples.size(); ++i) {
    ASSERT_GE(r.seen.samples[i].second, r.seen.samples[i - 1].second) << "went back at sample " << i;
    // The node's own 1 ms sleeps end 1 ms of local time apart: the timer
    // fires at the first nanosecond the clock reads its deadline, which at
    // twice the global rate may overshoot it by 1 ns.
    const Duration step = r.seen.samples[i].second - r.seen.samples[i - 1].second;
    ASSERT_TRUE(step >= 1_ms && step <= 1_ms + 1_ns) << "sample " << i << ": " << to_string(step);
  }
  // Local time is the integral of the rates: 500 ms at rate 1, then 777 ms
  // at each rate but the last, which lasts 1777 ms (exact in nanoseconds).
  TimePoint expect = at(500_ms);
  for (size_t i = 0; i + 1 < std::size(rates); ++i) expect += Duration::from_ns(777 * (1'000'000 + rates[i]));
  expect += Duration::from_ns(1777 * (1'000'000 + rates[std::size(rates) - 1]));
  EXPECT_EQ(r.local(), expect) << "local " << to_string(r.local()) << " expected " << to_string(expect);
}

TEST(ClockDrift, TimersFireWhenTheLocalClockReachesThemFastOrSlow) {
  struct Case {
    int64_t ppm;
    TimePoint fires;
  };
  // A timer for local 10 s; the rate is set at global 0.
  for (const Case& c : {Case{250'000, at(8_s)}, Case{-200'000, at(12500_ms)}, Case{0, at(10_s)},
                        Case{50'000, TimePoint::from_ns(9'523'809'524)},     // 10 / 1.05, rounded up
                        Case{-50'000, TimePoint::from_ns(10'526'315'790)}}) {  // 10 / 0.95, rounded up
    ClockRig r;
    r.sim.set_clock_rate(r.id, c.ppm);
    r.node().timer_at(at(10_s));
    r.node().sleep_for(10_s);  // the same through Runtime::sleep
    ASSERT_TRUE(r.sim.run_until(at(20_s)));
    ASSERT_EQ(r.seen.fired.size(), 2u) << c.ppm;
    EXPECT_EQ(r.seen.fired[0].global, c.fires) << c.ppm << " ppm";
    EXPECT_EQ(r.seen.fired[1].global, c.fires) << c.ppm << " ppm";
    r.expect_exact_fires();
  }
}

TEST(ClockDrift, PendingTimersAreRetimedWhenTheRateChanges) {
  // Timers for local 10 s and 20 s set at global 0 (rate 1: due at 10 s and
  // 20 s). At global 4 s (local 4 s) the clock doubles its rate: 6 s of local
  // time remain, 3 s of global time: due at 7 s. At global 7.5 s (local
  // 11 s) it drops to half rate: 9 s of local time remain, 18 s global: the
  // second fires at 25.5 s, not at the 12 s it was re-timed to.
  ClockRig r;
  r.node().timer_at(at(10_s));
  r.node().timer_at(at(20_s));
  r.sim.at(at(4_s), [&] { r.sim.set_clock_rate(r.id, 1'000'000); });
  r.sim.at(at(7500_ms), [&] { r.sim.set_clock_rate(r.id, -500'000); });
  ASSERT_TRUE(r.sim.run_until(at(12_s) + 1_ms));
  ASSERT_EQ(r.seen.fired.size(), 1u) << "the second timer fired early (before its local deadline)";
  EXPECT_EQ(r.seen.fired[0].global, at(7_s));
  EXPECT_EQ(r.seen.fired[0].local, at(10_s));
  EXPECT_EQ(r.sim.runtime(r.id)->pending_timers(), 1u);
  ASSERT_TRUE(r.sim.run_until(at(30_s)));
  ASSERT_EQ(r.seen.fired.size(), 2u);
  EXPECT_EQ(r.seen.fired[1].global, at(25500_ms));
  EXPECT_EQ(r.seen.fired[1].local, at(20_s));
  r.expect_exact_fires();
}

TEST(ClockDrift, ManyRandomRateChangesNeverFireATimerEarlyOrLate) {
  ClockRig r;
  Rng rng(7);
  // 200 timers at random local deadlines, 300 random rate changes between them.
  for (int i = 0; i < 200; ++i) r.node().timer_at(at(Duration::from_ns(rng.uniform_int(1, 60'000'000'000))));
  for (int i = 0; i < 300; ++i) {
    const int64_t ppm = rng.uniform_int(-50'000, 50'000);
    r.sim.at(at(Duration::from_ns(rng.uniform_int(0, 60'000'000'000))), [&r, ppm] { r.sim.set_clock_rate(r.id, ppm); });
  }
  ASSERT_TRUE(r.sim.run_until(at(120_s)));
  ASSERT_EQ(r.seen.fired.size(), 200u);
  for (size_t i = 1; i < r.seen.fired.size(); ++i) {
    EXPECT_LE(r.seen.fired[i - 1].deadline, r.seen.fired[i].deadline) << "fired out of local order";
  }
  r.expect_exact_fires();
}

TEST(ClockDrift, OffsetStepsStillWorkUnderDriftAndLocalTimeNeverGoesBack) {
  ClockRig r(1_ms);
  r.sim.set_clock_rate(r.id, 100'000);  // +10 %
  r.node().timer_at(at(20_s));
  // At global 5 s the clock reads 5.5 s; step it back to global - 1 s (4 s):
  // local time stalls at 5.5 s until the clock, from 4 s at +10 %, reaches it
  // at global 5 + 1.5 / 1.1 s. Then the timer for local 20 s fires when
  // 4 s + 1.1 (g - 5 s) = 20 s: g = 5 + 16 / 1.1 s.
  std::pair<TimePoint, TimePoint> step;
  r.sim.at(at(5_s), [&] {
    const TimePoint before = r.local();
    r.sim.set_clock_offset(r.id, -1_s);
    step = {before, r.local()};
  });
  ASSERT_TRUE(r.sim.run_until(at(25_s)));
  EXPECT_EQ(step.first, at(5500_ms));
  EXPECT_EQ(step.second, at(5500_ms)) << "stalls, never goes back";
  EXPECT_EQ(r.sim.clock_offset(r.id), r.sim.clock(r.id).local_at(at(25_s)) - at(25_s));
  ASSERT_EQ(r.seen.fired.size(), 1u);
  EXPECT_EQ(r.seen.fired[0].global, TimePoint::from_ns(5'000'000'000 + (16'000'000'000 * 10 + 10) / 11));
  r.expect_exact_fires();
  for (size_t i = 1; i < r.seen.samples.size(); ++i) {
    ASSERT_GE(r.seen.samples[i].second, r.seen.samples[i - 1].second);
  }
  // No sample was taken during the stall (the sampler sleeps by local time).
  const TimePoint stall_end = r.sim.clock(r.id).global_at(at(5500_ms));
  for (const auto& [g, l] : r.seen.samples) EXPECT_FALSE(g > at(5_s) && g < stall_end) << to_string(g);
}

TEST(ClockDrift, TheDriftSurvivesARestartButTheStallDoesNot) {
  ClockRig r;
  r.sim.set_clock_rate(r.id, -40'000);
  ASSERT_TRUE(r.sim.run_until(at(10_s)));
  EXPECT_EQ(r.local(), at(9600_ms));
  r.sim.restart(r.id);
  EXPECT_EQ(r.local(), at(9600_ms)) << "the host clock, not a fresh one";
  ASSERT_TRUE(r.sim.run_until(at(20_s)));
  EXPECT_EQ(r.local(), at(19200_ms));
  // A stall belongs to the incarnation: a restarted process reads the host clock.
  r.sim.set_clock_offset(r.id, -5_s);
  EXPECT_EQ(r.local(), at(19200_ms));
  r.sim.restart(r.id);
  EXPECT_EQ(r.local(), at(15_s));
  EXPECT_EQ(r.sim.clock_rate_ppm(r.id), -40'000);
}

TEST(ClockDrift, FaultsSetRatesBySelectorAndRejectBadRates) {
  Simulation sim(make_config());
  std::vector<NodeId> ids;
  for (const char* zone : {"a", "b", "a"}) {
    ids.push_back(sim.add_node(NodeSpec{std::string("n") + zone, Placement{"dc", zone, ""}, [](Runtime& rt) {
                                          return std::make_unique<testing::Recorder>(rt, nullptr);
                                        }}));
  }
  const uint64_t hash0 = sim.trace_hash();
  EXPECT_EQ(sim.faults().set_clock_rate({Selector::zone("a")}, 20'000), 2u);
  EXPECT_NE(sim.trace_hash(), hash0) << "noted in the trace";
  EXPECT_EQ(sim.clock_rate_ppm(ids[0]), 20'000);
  EXPECT_EQ(sim.clock_rate_ppm(ids[1]), 0);
  EXPECT_EQ(sim.clock_rate_ppm(ids[2]), 20'000);
  sim.faults().set_clock_rate(ids[1], -7);
  EXPECT_EQ(sim.clock_rate_ppm(ids[1]), -7);
  EXPECT_EQ(sim.faults().set_clock_offset({Selector::zone("b")}, 3_s), 1u);
  EXPECT_EQ(sim.clock_offset(ids[1]), 3_s);
  const uint64_t hash1 = sim.trace_hash();
  EXPECT_THROW(sim.faults().set_clock_rate({Selector::zone("a")}, -1'000'000), std::invalid_argument);
  EXPECT_THROW(sim.set_clock_rate(ids[0], 2'000'000), std::invalid_argument);
  EXPECT_EQ(sim.clock_rate_ppm(ids[0]), 20'000) << "a rejected rate changes nothing";
  EXPECT_EQ(sim.trace_hash(), hash1);
}

// --- determinism ---------------------------------------------------------------------

// Two nodes ping each other every few milliseconds of their own (drifting)
// clocks; their rates change at random times.
class Pinger final : public Node {
 public:
  Pinger(Runtime& rt, NodeId peer, Duration every, uint64_t* received)
      : rt_(rt), peer_(peer), every_(every), received_(received) {}
  std::string_view kind() const override { return "pinger"; }
  void start() override {
    rt_.spawn(send_loop(), "send");
    rt_.spawn(recv_loop(), "recv");
  }

 private:
  Task<void> send_loop() {
    for (uint64_t i = 0;; ++i) {
      (void)rt_.transport().send(peer_, std::to_string(i) + "@" + std::to_string(rt_.now().ns()));
      co_await rt_.sleep(every_ + Duration::from_ns(static_cast<int64_t>(rt_.rng().uniform(1'000'000))));
    }
  }
  Task<void> recv_loop() {
    for (;;) {
      Inbound in = co_await rt_.transport().receive();
      if (in.kind == Inbound::Kind::frame) ++*received_;
    }
  }
  Runtime& rt_;
  NodeId peer_;
  Duration every_;
  uint64_t* received_;
};

struct DriftRun {
  uint64_t hash = 0;
  uint64_t received = 0;
  std::vector<TimePoint> locals;
};

DriftRun run_drift(uint64_t seed, uint64_t drift_seed) {
  Simulation sim(make_config(seed));
  DriftRun out;
  const NodeId a{1}, b{2};
  sim.add_node(NodeSpec{"a", Placement{"dc", "a", ""}, [&](Runtime& rt) {
                          return std::make_unique<Pinger>(rt, b, 3_ms, &out.received);
                        }});
  sim.add_node(NodeSpec{"b", Placement{"dc", "b", ""}, [&](Runtime& rt) {
                          return std::make_unique<Pinger>(rt, a, 5_ms, &out.received);
                        }});
  sim.start(a);
  sim.start(b);
  Rng rng = Rng::derive(drift_seed, "clock-test.drift");
  for (int i = 0; i < 40; ++i) {
    const NodeId n = rng.bernoulli(0.5) ? a : b;
    const int64_t ppm = rng.uniform_int(-50'000, 50'000);
    sim.at(at(Duration::from_ns(rng.uniform_int(0, 2'000'000'000))), [&sim, n, ppm] { sim.set_clock_rate(n, ppm); });
  }
  EXPECT_TRUE(sim.run_until(at(2_s)));
  out.hash = sim.trace_hash();
  out.locals = {sim.runtime(a)->now(), sim.runtime(b)->now()};
  return out;
}

TEST(ClockDrift, SameSeedSameTraceHashWithDrift) {
  const DriftRun x = run_drift(11, 5), y = run_drift(11, 5);
  EXPECT_EQ(x.hash, y.hash);
  EXPECT_EQ(x.received, y.received);
  EXPECT_EQ(x.locals, y.locals);
  EXPECT_GT(x.received, 500u);
  // Another drift schedule (same network seed) is another run, and so is
  // another seed with the same drift.
  const DriftRun z = run_drift(11, 6);
  EXPECT_NE(x.hash, z.hash);
  EXPECT_NE(x.locals, z.locals);
  EXPECT_NE(run_drift(12, 5).hash, x.hash);
}

}  // namespace
}  // namespace wx::sim
