// Randomized, seeded simulation of one Paxos group (three replicas) under
// faults, with its own tiny event loop (independent of sim/ on purpose: the
// consensus core is tested alone).
//
// Faulty phase: seeded message delay (so reordering), loss and duplication;
// tick clocks that drift (each replica ticks by its own clock, whose rate
// differs from true time by up to a few percent and changes during the run);
// crashes (a crashed replica keeps only what its driver persisted, sometimes
// crashing between persisting a Ready and sending it), disk wipes, symmetric
// and one-way partitions; a client proposes commands and issues read-index
// and lease reads against whoever it believes leads. Liveness phase: heal
// everything and run until the group is quiescent.
//
// Checked after every event: no two replicas ever apply different commands
// at one index (hence applied sequences are prefixes of each other); each
// replica applies in order; every read returns an index at or above every
// write acknowledged before it was issued; check_invariants() on every live
// replica; lease exclusivity (no replica leads under a higher ballot while
// another may serve lease reads). After the liveness phase: every replica
// applied the same sequence and every acknowledged command is in it at its
// index.
//
// Seeds follow tests/support/seeds.h: WX_SEEDS=N / WX_SEED_FIRST=S widen or
// move the sweep, WX_SEED=S runs one seed (and prints its details); every
// failure prints the line that re-runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "nodes/runtime/random.h"
#include "nodes/storage/paxos/codec.h"
#include "nodes/storage/paxos/replica.h"
#include "tests/support/seeds.h"

namespace wx::paxos {
namespace {

constexpr ReplicaId kReplicas = 3;
// Harness time: units, each of kSubUnits sub-units (the event queue's
// resolution, fine enough for clock drift in ppm). Constants are in units.
constexpr int64_t kSubUnits = 1000;
constexpr int64_t sub(int64_t units) { return units * kSubUnits; }
constexpr int64_t kTickTime = 10;  // harness time units per replica tick (on its own clock)
constexpr int64_t kFaultPhaseTime = 16'000;
constexpr int64_t kLivenessTimeMax = 20'000;  // rebuilding a long log one entry per chunk is slow
// Workload and fault parameters (harness time units; a tick is kTickTime).
constexpr int64_t kProposeGapTimeMin = 3, kProposeGapTimeMax = 25;
constexpr int64_t kReadGapTimeMin = 20, kReadGapTimeMax = 80;
constexpr int64_t kFaultGapTimeMin = 100, kFaultGapTimeMax = 500;
constexpr int64_t kDownTimeMin = 20, kDownTimeMax = 800;
constexpr int64_t kPartitionTimeMin = 50, kPartitionTimeMax = 1'500;
constexpr int64_t kOneWayTimeMin = 50, kOneWayTimeMax = 1'000;
constexpr int64_t kDelayTimeMin = 1, kDelayTimeMax = 12;  // ~ one tick round trip
constexpr int64_t kReorderExtraTimeMax = 80;              // a delayed message overtaken by many
constexpr double kLossPMax = 0.15, kDupPMax = 0.1, kReorderPMax = 0.2;  // drawn per seed
constexpr double kStateMachineLostP = 0.5;  // at restart: rebuild the state machine by replay
constexpr double kClientRetargetP = 0.05;   // client forgets its leader guess
constexpr double kReadAnyReplicaP = 0.3;    // read at a random replica, maybe a deposed leader
constexpr uint64_t kSweepSeedsDefault = 1000;
constexpr double kCrashMidReadyP = 0.002;             // per Ready, in the faulty phase
constexpr double kCrashMidReadyBrokenDriverP = 0.02;  // per Ready, send_before_persist only
// Found by PaxosSim.UnsafeAckIsCaught; kept as a regression test.
constexpr uint64_t kUnsafeRegressionSeed = 3;
constexpr uint64_t kUnsafeSearchSeedsMax = 200;
constexpr const char* kBinary = "./tests/storage/paxos_sim_test";  // from the build directory

// --- clock drift ----------------------------------------------------------------
//
// Each replica ticks every kTickTime of its own clock: local time as a
// piecewise-linear function of harness time, at rate 1 + ppm * 1e-6, re-
// anchored (continuous) at every change of rate. Integer arithmetic only.
constexpr int64_t kPpm = 1'000'000;
// The sweep's drift: every rate within +-4.5 % of true time, so two clocks
// differ by at most 1.045 / 0.955 = 1.094 — within the 10 % the default
// Config::clock_drift_ppm allows for (set_timing sizes the lease for it).
constexpr int64_t kDriftPpmWithinMargin = 45'000;
constexpr int64_t kDefaultClockDriftPpm = Config{}.clock_drift_ppm;
static_assert((kPpm + kDriftPpmWithinMargin) * kPpm <= (kPpm - kDriftPpmWithinMargin) * (kPpm + kDefaultClockDriftPpm),
              "the sweep's drift must stay within the lease's drift margin");
// The mutation: no drift margin (clock_drift_ppm 0, lease_ticks =
// election_ticks_min - 1, the longest lease that allows) under drift of +-20 %.
constexpr int64_t kDriftPpmBeyondMargin = 200'000;
constexpr int64_t kDriftGapTimeMin = 30, kDriftGapTimeMax = 400;  // between rate changes
// When a fault isolates a replica: the chance it gets the slowest clock and
// the others the fastest.
constexpr double kRaceClocksP = 0.5;
// With drift, lease races (lease_race) every so often, each cutting the
// leader off for a while (longer than the longest election timeout).
constexpr int64_t kRaceGapTimeMin = 500, kRaceGapTimeMax = 2'000;
constexpr int64_t kRaceRetryTime = 20;
// With drift, the client moves on after this long without an acknowledgement
// (so writes reach a newly elected leader while the old one may still hold a lease).
constexpr int64_t kClientTimeout = 100;

struct TickClock {
  int64_t g0 = 0, l0 = 0, ppm = 0;  // anchor (harness sub-units, local sub-units), rate

  static __int128 floor_div(__int128 a, __int128 b) { return a / b - ((a % b != 0 && a < 0) ? 1 : 0); }
  static __int128 ceil_div(__int128 a, __int128 b) { return a / b + ((a % b != 0 && a > 0) ? 1 : 0); }
  int64_t local_at(int64_t g) const {
    return static_cast<int64_t>(l0 + floor_div(static_cast<__int128>(g - g0) * (kPpm + ppm), kPpm));
  }
  // The earliest harness time at which local_at() >= l.
  int64_t global_at(int64_t l) const {
    return static_cast<int64_t>(g0 + ceil_div(static_cast<__int128>(l - l0) * kPpm, kPpm + ppm));
  }
  TickClock with_rate(int64_t g, int64_t new_ppm) const { return TickClock{g, local_at(g), new_ppm}; }
};

int64_t draw_ppm(Rng& rng, int64_t ppm_max) {
  if (rng.bernoulli(0.5)) return rng.bernoulli(0.5) ? ppm_max : -ppm_max;  // extremes are common
  return rng.uniform_int(-ppm_max, ppm_max);
}

// Limits are small and vary by seed, so pipelining, flow control and chunked
// transfers hit their edges (one entry in flight, one entry per chunk, ...).
struct SimLimits {
  size_t batch_entries_max;
  size_t inflight_entries_max;
  size_t transfer_entries_max;
  size_t committed_entries_max;
};

SimLimits draw_limits(uint64_t seed) {
  Rng rng = Rng::derive(seed, "paxos-sim-limits");
  SimLimits l;
  l.batch_entries_max = 1 + rng.uniform(8);
  l.inflight_entries_max = l.batch_entries_max * (1 + rng.uniform(4));
  l.transfer_entries_max = 1 + rng.uniform(16);
  l.committed_entries_max = 1 + rng.uniform(16);
  return l;
}

struct SimOptions {
  uint64_t seed = 1;
  bool unsafe = false;
  bool wipes = true;
  // TEST ONLY: a broken driver that sends a Ready's messages before persisting
  // its state (and crashes in between more often), to show the rule matters.
  bool send_before_persist = false;
  // Tick clocks drift by up to this much (0: every replica ticks at true rate).
  int64_t drift_ppm_max = 0;
  // The lease's timing: Config::lease_ticks and its drift margin.
  int64_t lease_ticks = 8;
  int64_t clock_drift_ppm = kDefaultClockDriftPpm;
  int64_t election_ticks_min = 10;
  int64_t election_ticks_max = 20;
  // The harness's own lease-exclusivity check (check_all). Off, only what a
  // client observes (a stale read) can catch a broken lease.
  bool check_lease_exclusivity = true;
  // Harness units after which the client gives up on a target that leaves
  // its proposals unacknowledged (0: never; it then moves only on a
  // not_leader answer or at random).
  int64_t client_timeout = 0;
};

Config sim_config(ReplicaId self, const SimOptions& options, const SimLimits& limits) {
  Config c;
  c.self = self;
  c.members = {1, 2, 3};
  c.election_ticks_min = options.election_ticks_min;
  c.election_ticks_max = options.election_ticks_max;
  c.heartbeat_ticks = 2;
  c.lease_ticks = options.lease_ticks;
  c.clock_drift_ppm = options.clock_drift_ppm;
  c.batch_entries_max = limits.batch_entries_max;
  c.inflight_entries_max = limits.inflight_entries_max;
  c.uncommitted_entries_max = 64;
  c.transfer_entries_max = limits.transfer_entries_max;
  c.committed_entries_max = limits.committed_entries_max;
  c.reads_pending_max = 64;
  c.unsafe_ack_before_majority = options.unsafe;
  return c;
}

struct SimResult {
  bool ok = true;
  std::string failure;  // the first violation
  uint64_t trace_hash = 0;
  uint64_t events = 0;
  uint64_t acked = 0;
  uint64_t applied = 0;
  uint64_t crashes = 0;
  uint64_t crashes_mid_ready = 0;
  uint64_t wipes = 0;
  uint64_t partitions = 0;
  uint64_t leaderships = 0;
  uint64_t values_recovered = 0;
  uint64_t noops_filled = 0;
  uint64_t entries_resent = 0;
  uint64_t reads_ok = 0;
  uint64_t lease_reads_ok = 0;
  uint64_t rate_changes = 0;
  uint64_t lease_races = 0;
};

struct Disk {
  HardState hard_state;
  std::map<uint64_t, Entry> log;
};

struct SimNode {
  std::unique_ptr<Replica> replica;
  Disk disk;
  bool needs_recovery = false;             // disk lost; cleared once state is persisted again
  std::vector<std::string> state_machine;  // applied commands
  uint64_t incarnation = 0;
  uint64_t wipe_epoch = 0;
  bool restart_scheduled = false;
};

enum class EventKind : uint8_t {
  tick,
  deliver,
  propose,
  read,
  fault,
  restart,
  heal_link,
  end_faults,
  drift,
  race
};

struct Event {
  int64_t time = 0;  // harness sub-units
  uint64_t seq = 0;
  EventKind kind = EventKind::tick;
  ReplicaId node = 0;
  ReplicaId peer = 0;
  // deliver: sender's wipe epoch at send; heal_link: partition generation;
  // tick: the replica's tick generation (stale after a rate change); drift: the new rate
  uint64_t epoch = 0;
  std::string bytes;

  bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

class Violation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PaxosSim {
 public:
  explicit PaxosSim(SimOptions options)
      : options_(options),
        rng_(Rng::derive(options.seed, "paxos-sim")),
        loss_p_(rng_.uniform_real(0.0, kLossPMax)),
        dup_p_(rng_.uniform_real(0.0, kDupPMax)),
        reorder_p_(rng_.uniform_real(0.0, kReorderPMax)),
        limits_(draw_limits(options.seed)),
        drift_rng_(Rng::derive(options.seed, "paxos-sim-drift")) {}

  SimResult run() {
    try {
      // Drift draws come from their own stream: without drift, the run is
      // event for event the one the seed gave before clocks could drift.
      if (options_.drift_ppm_max > 0) {
        for (ReplicaId id = 1; id <= kReplicas; ++id) {
          clocks_[id].ppm = draw_ppm(drift_rng_, options_.drift_ppm_max);
        }
        for (int64_t t = drift_rng_.uniform_int(kDriftGapTimeMin, kDriftGapTimeMax); t < kFaultPhaseTime;
             t += drift_rng_.uniform_int(kDriftGapTimeMin, kDriftGapTimeMax)) {
          const ReplicaId id = static_cast<ReplicaId>(1 + drift_rng_.uniform(kReplicas));
          schedule(sub(t), EventKind::drift, id, 0,
                   static_cast<uint64_t>(draw_ppm(drift_rng_, options_.drift_ppm_max)));
        }
        for (int64_t t = drift_rng_.uniform_int(kRaceGapTimeMin, kRaceGapTimeMax); t < kFaultPhaseTime;
             t += drift_rng_.uniform_int(kRaceGapTimeMin, kRaceGapTimeMax)) {
          // Longer than the longest election timeout: a successor is elected.
          const int64_t emax = options_.election_ticks_max * kTickTime;
          schedule(sub(t), EventKind::race, 0, 0,
                   static_cast<uint64_t>(drift_rng_.uniform_int(emax + emax / 4, 3 * emax)));
        }
      }
      for (ReplicaId id = 1; id <= kReplicas; ++id) {
        start(id);
        next_tick_local_[id] = sub(rng_.uniform_int(1, kTickTime));
        schedule_tick(id);
      }
      schedule(sub(rng_.uniform_int(1, kProposeGapTimeMax)), EventKind::propose, 0);
      schedule(sub(rng_.uniform_int(1, kReadGapTimeMax)), EventKind::read, 0);
      schedule(sub(rng_.uniform_int(kFaultGapTimeMin, kFaultGapTimeMax)), EventKind::fault, 0);
      schedule(sub(kFaultPhaseTime), EventKind::end_faults, 0);
      run_until(sub(kFaultPhaseTime + kLivenessTimeMax));
      if (!quiescent())
        throw Violation("liveness: not quiescent " + std::to_string(kLivenessTimeMax) +
                        " after healing; " + describe());
      final_checks();
    } catch (const Violation& v) {
      result_.ok = false;
      result_.failure = v.what();
    } catch (const InvariantViolation& v) {
      result_.ok = false;
      result_.failure = std::string("invariant: ") + v.what();
    } catch (const std::exception& e) {  // e.g. a restart refusing what was persisted
      result_.ok = false;
      result_.failure = std::string("exception: ") + e.what();
    }
    result_.trace_hash = hash_;
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      result_.applied = std::max<uint64_t>(result_.applied, nodes_[id].state_machine.size());
    }
    return result_;
  }

 private:
  // ---- event loop -------------------------------------------------------
  void schedule(int64_t time, EventKind kind, ReplicaId node, ReplicaId peer = 0,
                uint64_t epoch = 0, std::string bytes = {}) {
    queue_.push(Event{time, next_seq_++, kind, node, peer, epoch, std::move(bytes)});
  }

  void run_until(int64_t end) {
    while (!queue_.empty() && queue_.top().time <= end) {
      Event e = queue_.top();
      queue_.pop();
      now_ = e.time;
      ++result_.events;
      fold(static_cast<uint64_t>(e.time));
      fold(static_cast<uint64_t>(e.kind) << 32 | e.node);
      handle(e);
      check_all();
      if (liveness_ && quiescent()) return;
    }
  }

  void fold(uint64_t x) { hash_ = mix64(hash_ ^ x); }

  // The replica's next tick, at the harness time its clock reaches it.
  void schedule_tick(ReplicaId id) {
    schedule(clocks_[id].global_at(next_tick_local_[id]), EventKind::tick, id, 0, tick_generation_[id]);
  }

  // From now on `id`'s clock runs at `ppm`; its pending tick is re-timed.
  void set_rate(ReplicaId id, int64_t ppm) {
    if (clocks_[id].ppm == ppm) return;
    clocks_[id] = clocks_[id].with_rate(now_, ppm);
    ++tick_generation_[id];
    schedule_tick(id);
    ++result_.rate_changes;
    fold(0xd71f7000 + id);
    fold(static_cast<uint64_t>(ppm));
  }

  void handle(Event& e) {
    switch (e.kind) {
      case EventKind::tick:
        if (e.epoch != tick_generation_[e.node]) break;  // re-timed by a rate change
        next_tick_local_[e.node] += sub(kTickTime);
        schedule_tick(e.node);
        if (up(e.node)) {
          node(e.node).replica->tick();
          drain(e.node);
        }
        break;
      case EventKind::deliver:
        deliver(e);
        break;
      case EventKind::propose:
        client_propose();
        if (!liveness_)
          schedule(now_ + sub(rng_.uniform_int(kProposeGapTimeMin, kProposeGapTimeMax)),
                   EventKind::propose, 0);
        break;
      case EventKind::read:
        client_read();
        if (!liveness_)
          schedule(now_ + sub(rng_.uniform_int(kReadGapTimeMin, kReadGapTimeMax)), EventKind::read, 0);
        break;
      case EventKind::fault:
        if (liveness_) break;
        inject_fault();
        schedule(now_ + sub(rng_.uniform_int(kFaultGapTimeMin, kFaultGapTimeMax)), EventKind::fault, 0);
        break;
      case EventKind::restart:
        node(e.node).restart_scheduled = false;
        if (!up(e.node)) start(e.node);
        break;
      case EventKind::heal_link:
        if (e.epoch == partition_generation_ && blocked_[e.node][e.peer] > 0)
          --blocked_[e.node][e.peer];
        break;
      case EventKind::end_faults:
        begin_liveness();
        break;
      case EventKind::drift:
        set_rate(e.node, static_cast<int64_t>(e.epoch));
        break;
      case EventKind::race:
        if (!liveness_) lease_race(static_cast<int64_t>(e.epoch));
        break;
    }
  }

  // ---- replicas -----------------------------------------------------------
  SimNode& node(ReplicaId id) { return nodes_[id]; }
  bool up(ReplicaId id) { return nodes_[id].replica != nullptr; }

  void start(ReplicaId id) {
    SimNode& n = node(id);
    Config c = sim_config(id, options_, limits_);
    c.recovering = n.needs_recovery;
    // The state machine is sometimes durable, sometimes rebuilt by replay.
    if (rng_.bernoulli(kStateMachineLostP)) n.state_machine.clear();
    c.applied_index = n.state_machine.size();
    std::vector<Entry> log;
    for (const auto& [i, e] : n.disk.log) log.push_back(e);
    ++n.incarnation;
    n.replica = std::make_unique<Replica>(
        c, n.disk.hard_state, std::move(log),
        Rng::derive_seed(options_.seed, "replica", uint64_t{id} << 32 | n.incarnation));
    fold(0xa11ce000 + id);
    drain(id);
  }

  void crash(ReplicaId id) {
    SimNode& n = node(id);
    if (!n.replica) return;
    collect_stats(*n.replica);
    n.replica.reset();
    ++result_.crashes;
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) { return p.node == id; }),
                   pending_.end());
    schedule_restart(id, rng_.uniform_int(kDownTimeMin, kDownTimeMax));
  }

  void schedule_restart(ReplicaId id, int64_t after) {
    if (node(id).restart_scheduled) return;
    node(id).restart_scheduled = true;
    schedule(now_ + sub(after), EventKind::restart, id);
  }

  void drain(ReplicaId id) {
    while (up(id) && node(id).replica->has_ready()) {
      SimNode& n = node(id);
      Replica& r = *n.replica;
      Ready rd = r.ready();
      if (options_.send_before_persist) {
        for (const Message& m : rd.messages) send(m, n.wipe_epoch);
        if (!liveness_ && rng_.bernoulli(kCrashMidReadyBrokenDriverP)) {
          ++result_.crashes_mid_ready;
          crash(id);
          return;
        }
        rd.messages.clear();
      }
      const int crash_point =
          !liveness_ && rng_.bernoulli(kCrashMidReadyP) ? 1 + static_cast<int>(rng_.uniform(2)) : 0;
      if (crash_point == 1) {  // before anything was persisted: the Ready is lost
        ++result_.crashes_mid_ready;
        crash(id);
        return;
      }
      for (const Entry& e : rd.entries_to_persist) n.disk.log[e.index] = e;
      if (rd.hard_state) {
        n.disk.hard_state = *rd.hard_state;
        if (!r.recovering()) n.needs_recovery = false;
      }
      if (crash_point == 2) {  // persisted, nothing sent or applied
        ++result_.crashes_mid_ready;
        crash(id);
        return;
      }
      for (const Message& m : rd.messages) send(m, n.wipe_epoch);
      for (const Entry& e : rd.committed) apply(id, e);
      for (const ReadState& rs : rd.reads) read_done(id, rs);
      r.advance();
    }
  }

  void send(const Message& m, uint64_t sender_epoch) {
    std::string bytes = encode_message(m);
    fold(fnv1a64(bytes));
    if (blocked_[m.from][m.to] > 0 || rng_.bernoulli(loss_p_)) return;
    const int copies = rng_.bernoulli(dup_p_) ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      int64_t delay = rng_.uniform_int(kDelayTimeMin, kDelayTimeMax);
      if (rng_.bernoulli(reorder_p_)) delay += rng_.uniform_int(0, kReorderExtraTimeMax);
      schedule(now_ + sub(delay), EventKind::deliver, m.to, m.from, sender_epoch, bytes);
    }
  }

  void deliver(const Event& e) {
    // A wiped replica's old incarnation is gone with its connections: its
    // frames in flight do not arrive (the assumption docs/storage.md states).
    if (e.epoch != node(e.peer).wipe_epoch) return;
    if (!up(e.node) || blocked_[e.peer][e.node] > 0) return;
    DecodeResult d = decode_message(e.bytes);
    if (!d.ok()) throw Violation("a replica sent an undecodable message: " + d.error);
    if (node(e.node).replica->step(*d.message) != StepOutcome::processed) {
      throw Violation("a well-formed message from a member was dropped");
    }
    drain(e.node);
  }

  void apply(ReplicaId id, const Entry& e) {
    SimNode& n = node(id);
    if (e.index != n.state_machine.size() + 1) {
      throw Violation("replica " + std::to_string(id) + " applied index " +
                      std::to_string(e.index) + " after " + std::to_string(n.state_machine.size()));
    }
    auto [it, fresh] = chosen_.emplace(e.index, e.command);
    if (it->second != e.command) {
      throw Violation("divergence at index " + std::to_string(e.index) + ": replica " +
                      std::to_string(id) + " applied '" + e.command + "', another applied '" +
                      it->second + "'");
    }
    n.state_machine.push_back(e.command);
    // Acknowledge the client's proposal if this is it.
    for (size_t i = 0; i < pending_.size(); ++i) {
      const Pending& p = pending_[i];
      if (p.node != id || p.incarnation != n.incarnation || p.index != e.index) continue;
      if (p.command == e.command) {
        auto [a, ok] = acked_.emplace(e.index, e.command);
        if (a->second != e.command) throw Violation("two commands acknowledged at one index");
        ack_floor_ = std::max(ack_floor_, e.index);
        ++result_.acked;
      }
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }

  // ---- client ---------------------------------------------------------------
  struct Pending {
    ReplicaId node;
    uint64_t incarnation;
    uint64_t index;
    std::string command;
    int64_t at = 0;  // when proposed
  };
  struct PendingRead {
    ReplicaId node;
    uint64_t incarnation;
    uint64_t floor;  // highest index acknowledged before the read was issued
  };

  ReplicaId client_target() {
    if (target_ == kNoReplica || rng_.bernoulli(kClientRetargetP)) {
      target_ = static_cast<ReplicaId>(1 + rng_.uniform(kReplicas));
    }
    return target_;
  }

  void follow_hint(ReplicaId hint) {
    target_ = hint != kNoReplica ? hint : static_cast<ReplicaId>(1 + rng_.uniform(kReplicas));
  }

  void client_propose() {
    // A client with a request timeout: when its target has left a proposal
    // unacknowledged that long (a deposed or cut-off leader), it tries
    // another replica.
    if (options_.client_timeout > 0 && target_ != kNoReplica) {
      for (const Pending& p : pending_) {
        if (p.node == target_ && now_ - p.at > sub(options_.client_timeout)) {
          target_ = static_cast<ReplicaId>(1 + (target_ + rng_.uniform(kReplicas - 1)) % kReplicas);
          break;
        }
      }
    }
    const ReplicaId id = client_target();
    if (!up(id)) {
      follow_hint(kNoReplica);
      return;
    }
    std::string command =
        "s" + std::to_string(options_.seed) + "-c" + std::to_string(next_command_++);
    ProposeResult p = node(id).replica->propose(command);
    if (p.ok()) {
      pending_.push_back(Pending{id, node(id).incarnation, p.index, std::move(command), now_});
    } else if (p.status == ProposeStatus::not_leader) {
      follow_hint(p.leader_hint);
    }
    drain(id);
  }

  void client_read() {
    // Sometimes ask a replica at random: a deposed leader that does not know
    // it yet is exactly who must not answer with a stale index.
    const ReplicaId id = rng_.bernoulli(kReadAnyReplicaP)
                             ? static_cast<ReplicaId>(1 + rng_.uniform(kReplicas))
                             : client_target();
    if (!up(id)) return;
    Replica& r = *node(id).replica;
    ReadResult lease = r.lease_read();
    if (lease.status == ReadStatus::ok) {
      if (lease.index < ack_floor_) {
        throw Violation("stale lease read on " + std::to_string(id) + ": index " +
                        std::to_string(lease.index) + " < acknowledged " +
                        std::to_string(ack_floor_));
      }
      ++result_.lease_reads_ok;
    }
    const uint64_t request = next_read_++;
    ReadResult rr = r.read_index(request);
    if (rr.status == ReadStatus::pending) {
      reads_[request] = PendingRead{id, node(id).incarnation, ack_floor_};
    } else if (rr.status == ReadStatus::not_leader && id == target_) {
      follow_hint(rr.leader_hint);
    }
    drain(id);
  }

  void read_done(ReplicaId id, const ReadState& rs) {
    auto it = reads_.find(rs.request_id);
    if (it == reads_.end() || it->second.node != id) throw Violation("unknown read answered");
    if (rs.ok) {
      if (rs.index < it->second.floor) {
        throw Violation("stale read-index read on " + std::to_string(id) + ": index " +
                        std::to_string(rs.index) + " < acknowledged " +
                        std::to_string(it->second.floor));
      }
      if (rs.index > node(id).replica->commit_index()) throw Violation("read index above commit");
      ++result_.reads_ok;
    }
    reads_.erase(it);
  }

  // ---- faults ---------------------------------------------------------------
  // Cuts replica `id` off from the others (both ways) for `units`.
  void isolate(ReplicaId id, int64_t units) {
    for (ReplicaId o = 1; o <= kReplicas; ++o) {
      if (o == id) continue;
      ++blocked_[id][o];
      ++blocked_[o][id];
      const int64_t heal_at = now_ + sub(units);
      schedule(heal_at, EventKind::heal_link, id, o, partition_generation_);
      schedule(heal_at, EventKind::heal_link, o, id, partition_generation_);
    }
    ++result_.partitions;
  }

  // A lease race: the leader holding a lease is cut off, its clock set as
  // slow as allowed and the others' as fast, so that its lease lasts as long
  // as it can while the others' election timeouts run out as soon as they
  // can. The others elect a successor and commit; a lease read at the old
  // leader must not be served past that.
  // Nobody holding a lease (an election in progress, a crash): retried a
  // little later.
  void lease_race(int64_t units) {
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (!up(id) || node(id).replica->lease_read().status != ReadStatus::ok) continue;
      for (ReplicaId o = 1; o <= kReplicas; ++o) {
        set_rate(o, o == id ? -options_.drift_ppm_max : options_.drift_ppm_max);
      }
      isolate(id, units);
      ++result_.lease_races;
      return;
    }
    schedule(now_ + sub(kRaceRetryTime), EventKind::race, 0, 0, static_cast<uint64_t>(units));
  }

  void inject_fault() {
    const ReplicaId id = static_cast<ReplicaId>(1 + rng_.uniform(kReplicas));
    const uint64_t kind = rng_.uniform(10);
    if (kind < 4) {
      crash(id);
    } else if (kind < 5 && options_.wipes) {
      for (ReplicaId o = 1; o <= kReplicas; ++o) {
        if (node(o).needs_recovery)
          return;  // two lost disks of three lose data: not a fault we test
      }
      crash(id);
      SimNode& n = node(id);
      n.disk = Disk{};
      n.state_machine.clear();
      n.needs_recovery = true;
      ++n.wipe_epoch;
      ++result_.wipes;
      pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                    [&](const Pending& p) { return p.node == id; }),
                     pending_.end());
    } else if (kind < 8) {
      for (ReplicaId o = 1; o <= kReplicas; ++o) {
        if (o == id) continue;
        ++blocked_[id][o];
        ++blocked_[o][id];
        const int64_t heal_at = now_ + sub(rng_.uniform_int(kPartitionTimeMin, kPartitionTimeMax));
        schedule(heal_at, EventKind::heal_link, id, o, partition_generation_);
        schedule(heal_at, EventKind::heal_link, o, id, partition_generation_);
      }
      // The adversarial clocks for a lease: if the isolated replica leads, its
      // lease lasts longest on a slow clock, and the others' election timeouts
      // run out soonest on fast ones.
      if (options_.drift_ppm_max > 0 && drift_rng_.bernoulli(kRaceClocksP)) {
        for (ReplicaId o = 1; o <= kReplicas; ++o) {
          set_rate(o, o == id ? -options_.drift_ppm_max : options_.drift_ppm_max);
        }
      }
      ++result_.partitions;
    } else {
      ReplicaId to = static_cast<ReplicaId>(1 + rng_.uniform(kReplicas));
      if (to == id) return;
      ++blocked_[id][to];  // one-way
      schedule(now_ + sub(rng_.uniform_int(kOneWayTimeMin, kOneWayTimeMax)), EventKind::heal_link, id,
               to, partition_generation_);
      ++result_.partitions;
    }
  }

  void begin_liveness() {
    liveness_ = true;
    loss_p_ = 0;
    dup_p_ = 0;
    ++partition_generation_;
    for (auto& [from, row] : blocked_) row.clear();
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (!up(id)) schedule_restart(id, 1);
    }
  }

  // ---- checks ----------------------------------------------------------------
  void check_all() {
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (up(id)) node(id).replica->check_invariants();
    }
    // Lease exclusivity: while a leader may serve lease reads, no replica
    // leads under a higher ballot (it could commit writes the lease holder
    // does not see). Holds while the clocks drift within the margin
    // Config::clock_drift_ppm assumes — the timing assumption leases rest on.
    // A lease read issued now at any replica (a client anywhere, whatever
    // replica it believes leads) must see every write acknowledged before.
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (!up(id)) continue;
      const ReadResult lease = node(id).replica->lease_read();
      if (lease.status == ReadStatus::ok && lease.index < ack_floor_) {
        throw Violation("stale lease read on " + std::to_string(id) + ": index " + std::to_string(lease.index) +
                        " < acknowledged " + std::to_string(ack_floor_) + " (at " +
                        std::to_string(now_ / kSubUnits) + ")");
      }
    }
    if (!options_.check_lease_exclusivity) return;
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (!up(id) || node(id).replica->lease_read().status != ReadStatus::ok) continue;
      const Ballot held = node(id).replica->leader_ballot();
      for (ReplicaId o = 1; o <= kReplicas; ++o) {
        if (o != id && up(o) && node(o).replica->is_leader() &&
            node(o).replica->leader_ballot() > held) {
          throw Violation("replica " + std::to_string(o) + " leads under " +
                          node(o).replica->leader_ballot().to_string() + " while replica " +
                          std::to_string(id) + " holds a lease under " + held.to_string());
        }
      }
    }
  }

  bool quiescent() {
    std::optional<ReplicaId> leader;
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (!up(id) || node(id).replica->recovering()) return false;
      if (node(id).replica->is_leader()) {
        if (leader) return false;
        leader = id;
      }
    }
    if (!leader) return false;
    const Replica& l = *node(*leader).replica;
    if (l.commit_index() != l.last_index()) return false;
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      if (node(id).state_machine.size() != l.commit_index()) return false;
    }
    return true;
  }

  std::string describe() {
    std::string s;
    for (ReplicaId id = 1; id <= kReplicas; ++id) {
      s += up(id) ? node(id).replica->describe() : "replica " + std::to_string(id) + " down";
      s += "; ";
    }
    return s;
  }

  void final_checks() {
    const std::vector<std::string>& first = node(1).state_machine;
    for (ReplicaId id = 2; id <= kReplicas; ++id) {
      if (node(id).state_machine != first) throw Violation("replicas applied different sequences");
    }
    for (const auto& [index, command] : acked_) {
      if (index > first.size() || first[index - 1] != command) {
        throw Violation("acknowledged command '" + command + "' at index " + std::to_string(index) +
                        " lost");
      }
    }
    for (ReplicaId id = 1; id <= kReplicas; ++id) collect_stats(*node(id).replica);
  }

  void collect_stats(const Replica& r) {
    const ReplicaStats& s = r.stats();
    result_.leaderships += s.leaderships_won;
    result_.values_recovered += s.values_recovered;
    result_.noops_filled += s.noops_filled;
    result_.entries_resent += s.entries_resent;
  }

  SimOptions options_;
  Rng rng_;
  double loss_p_;
  double dup_p_;
  double reorder_p_;
  SimLimits limits_;
  Rng drift_rng_;
  std::map<ReplicaId, TickClock> clocks_;
  std::map<ReplicaId, int64_t> next_tick_local_;  // local sub-units of each replica's next tick
  std::map<ReplicaId, uint64_t> tick_generation_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  uint64_t next_seq_ = 0;
  int64_t now_ = 0;
  bool liveness_ = false;
  uint64_t hash_ = 0;
  std::map<ReplicaId, SimNode> nodes_;
  std::map<ReplicaId, std::map<ReplicaId, int>> blocked_;
  uint64_t partition_generation_ = 0;
  std::map<uint64_t, std::string> chosen_;  // first command applied at each index, by anyone
  std::map<uint64_t, std::string> acked_;   // commands acknowledged to the client
  uint64_t ack_floor_ = 0;
  std::vector<Pending> pending_;
  std::map<uint64_t, PendingRead> reads_;
  ReplicaId target_ = kNoReplica;
  uint64_t next_command_ = 0;
  uint64_t next_read_ = 0;
  SimResult result_;
};

// The longest lease Config::validate accepts: lease_ticks * (1 + drift)
// <= election_ticks_min - 1.
int64_t longest_lease(int64_t election_ticks_min, int64_t clock_drift_ppm) {
  return (election_ticks_min - 1) * kPpm / (kPpm + clock_drift_ppm);
}

// Election timing: short (timeouts of 10-20 ticks, as the runs without drift
// use) or long with tight timeouts (30-36 ticks). The lease is always the
// longest the drift margin allows (8 and 26 ticks with the default 10 %).
// The long profile is where the drift margin is the lease's only protection:
// a successor needs a few message delays to be elected (~3 ticks here), a
// cushion that a lease of 9 ticks mostly covers even with no margin, one of
// 29 ticks no longer.
void set_timing(SimOptions& o, bool long_timeouts) {
  o.election_ticks_min = long_timeouts ? 30 : 10;
  o.election_ticks_max = long_timeouts ? 36 : 20;
  o.lease_ticks = longest_lease(o.election_ticks_min, o.clock_drift_ppm);
}

// The sweep's options: drift within the margin, lease races, a client with a
// timeout; the timing profile drawn per seed.
SimOptions drift_options(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.drift_ppm_max = kDriftPpmWithinMargin;
  o.client_timeout = kClientTimeout;
  set_timing(o, Rng::derive(seed, "paxos-sim-timing").bernoulli(0.5));
  return o;
}

// The mutation: the lease without its drift margin (clock_drift_ppm 0, so
// the longest lease is election_ticks_min - 1) while clocks drift +-20 %, on
// the long timing profile. Only what a client observes (a stale read) can
// catch it, unless `exclusivity`.
SimOptions no_margin_options(uint64_t seed, bool exclusivity) {
  SimOptions o = drift_options(seed);
  o.drift_ppm_max = kDriftPpmBeyondMargin;
  o.clock_drift_ppm = 0;
  set_timing(o, true);
  o.check_lease_exclusivity = exclusivity;
  return o;
}

// The same seed and timing as no_margin_options, with the margin and the
// drift within it: the regression seed's clean counterpart.
SimOptions long_timing_options(uint64_t seed) {
  SimOptions o = drift_options(seed);
  set_timing(o, true);
  return o;
}

SimResult run_seed(uint64_t seed, bool unsafe = false) {
  SimOptions o;
  o.seed = seed;
  o.unsafe = unsafe;
  return PaxosSim(o).run();
}

// "reproduce: …" for a test that runs fixed seeds (WX_SEED does not apply).
std::string rerun_test(const std::string& filter) {
  return std::string("reproduce: ") + kBinary + " --gtest_filter=" + filter;
}

constexpr const char* kSweepTest = "PaxosSim.SafetyAndLivenessAcrossSeedsWithDrift";

TEST(PaxosSim, SafetyAndLivenessAcrossSeedsWithDrift) {
  const wx::testing::SeedRange seeds = wx::testing::seed_range(kSweepSeedsDefault);
  const auto started = std::chrono::steady_clock::now();
  SimResult total;
  uint64_t failures = 0;
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    const SimResult r = PaxosSim(drift_options(seed)).run();
    if (!r.ok) {
      ++failures;
      ADD_FAILURE() << "seed " << seed << ": " << r.failure << "\n  "
                    << wx::testing::rerun_hint(seed, kBinary, kSweepTest);
      if (failures >= 5) break;
    }
    if (seeds.count == 1) {
      std::printf("seed %llu: %llu events, %llu acknowledged, %llu applied, %llu rate changes, trace %016llx\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.events),
                  static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.applied),
                  static_cast<unsigned long long>(r.rate_changes), static_cast<unsigned long long>(r.trace_hash));
    }
    total.events += r.events;
    total.acked += r.acked;
    total.applied += r.applied;
    total.crashes += r.crashes;
    total.crashes_mid_ready += r.crashes_mid_ready;
    total.wipes += r.wipes;
    total.partitions += r.partitions;
    total.leaderships += r.leaderships;
    total.values_recovered += r.values_recovered;
    total.noops_filled += r.noops_filled;
    total.entries_resent += r.entries_resent;
    total.reads_ok += r.reads_ok;
    total.lease_reads_ok += r.lease_reads_ok;
    total.rate_changes += r.rate_changes;
    total.lease_races += r.lease_races;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "paxos sim (drift +-%lld ppm): %llu seeds in %.1f s: %llu events, %llu commands acknowledged, "
      "%llu applied, %llu crashes (%llu mid-Ready), %llu wipes, %llu partitions, %llu leaderships, "
      "%llu values recovered, %llu no-ops, %llu entries re-sent, %llu read-index and %llu lease "
      "reads, %llu clock rate changes, %llu lease races\n",
      static_cast<long long>(kDriftPpmWithinMargin), static_cast<unsigned long long>(seeds.count), seconds,
      static_cast<unsigned long long>(total.events), static_cast<unsigned long long>(total.acked),
      static_cast<unsigned long long>(total.applied),
      static_cast<unsigned long long>(total.crashes),
      static_cast<unsigned long long>(total.crashes_mid_ready),
      static_cast<unsigned long long>(total.wipes),
      static_cast<unsigned long long>(total.partitions),
      static_cast<unsigned long long>(total.leaderships),
      static_cast<unsigned long long>(total.values_recovered),
      static_cast<unsigned long long>(total.noops_filled),
      static_cast<unsigned long long>(total.entries_resent),
      static_cast<unsigned long long>(total.reads_ok),
      static_cast<unsigned long long>(total.lease_reads_ok),
      static_cast<unsigned long long>(total.rate_changes),
      static_cast<unsigned long long>(total.lease_races));
  // The harness must actually exercise what it claims to (over a sweep; one
  // seed alone need not hit every case).
  if (seeds.count >= 100) {
    EXPECT_GT(total.acked, seeds.count * 50);
    EXPECT_GT(total.crashes_mid_ready, 0u);
    EXPECT_GT(total.wipes, 0u);
    EXPECT_GT(total.values_recovered, 0u);
    EXPECT_GT(total.noops_filled, 0u);
    EXPECT_GT(total.entries_resent, 0u);
    EXPECT_GT(total.reads_ok, 0u);
    EXPECT_GT(total.lease_reads_ok, seeds.count);
    EXPECT_GT(total.rate_changes, seeds.count * 20);
    EXPECT_GT(total.lease_races, seeds.count * 5);
  }
}

TEST(PaxosSim, SameSeedSameRun) {
  for (uint64_t seed : {7u, 42u}) {
    for (bool drift : {false, true}) {
      SimOptions o = drift ? drift_options(seed) : SimOptions{};
      o.seed = seed;
      const SimResult a = PaxosSim(o).run();
      const SimResult b = PaxosSim(o).run();
      EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed << " drift " << drift;
      EXPECT_EQ(a.events, b.events);
      EXPECT_EQ(a.acked, b.acked);
      EXPECT_EQ(a.rate_changes, b.rate_changes);
      EXPECT_EQ(a.rate_changes > 0, drift);
    }
  }
  EXPECT_NE(run_seed(7).trace_hash, run_seed(8).trace_hash);
  // Drift changes the run (ticks move), and so does another seed with drift.
  EXPECT_NE(PaxosSim(drift_options(7)).run().trace_hash, run_seed(7).trace_hash);
  EXPECT_NE(PaxosSim(drift_options(7)).run().trace_hash, PaxosSim(drift_options(8)).run().trace_hash);
}

// The margin is what Config::validate enforces: lease_ticks * (1 + drift)
// <= election_ticks_min - 1 (sim_config: election_ticks_min 10).
TEST(PaxosSim, TheDriftMarginBoundsTheLease) {
  const SimLimits limits = draw_limits(1);
  SimOptions o;
  EXPECT_NO_THROW(sim_config(1, o, limits).validate());  // 8 * 1.1 = 8.8 <= 9
  o.lease_ticks = 9;
  EXPECT_THROW(sim_config(1, o, limits).validate(), std::invalid_argument);  // 9.9 > 9
  o.clock_drift_ppm = 0;
  EXPECT_NO_THROW(sim_config(1, o, limits).validate());  // no margin: 9 <= 9
  o.lease_ticks = 8;
  o.clock_drift_ppm = 125'000;
  EXPECT_NO_THROW(sim_config(1, o, limits).validate());  // 8 * 1.125 = 9 exactly
  o.clock_drift_ppm = 125'001;
  EXPECT_THROW(sim_config(1, o, limits).validate(), std::invalid_argument);
  o.clock_drift_ppm = -1;
  EXPECT_THROW(sim_config(1, o, limits).validate(), std::invalid_argument);
  // The leases the sweep and the mutation use.
  EXPECT_EQ(longest_lease(10, kDefaultClockDriftPpm), 8);
  EXPECT_EQ(longest_lease(30, kDefaultClockDriftPpm), 26);
  EXPECT_EQ(longest_lease(30, 0), 29);
  // And the library default: 40 * 1.1 = 44 <= 49.
  Config d;
  d.self = 1;
  d.members = {1, 2, 3};
  EXPECT_NO_THROW(d.validate());
}

// The harness has teeth: with the leader acknowledging after its own accept
// alone, some seed loses an acknowledged command or makes replicas diverge.
TEST(PaxosSim, UnsafeAckIsCaught) {
  uint64_t found = 0;
  std::string failure;
  for (uint64_t seed = 1; seed <= kUnsafeSearchSeedsMax && found == 0; ++seed) {
    const SimResult r = run_seed(seed, /*unsafe=*/true);
    if (!r.ok) {
      found = seed;
      failure = r.failure;
    }
  }
  ASSERT_NE(found, 0u) << "no seed in 1.." << kUnsafeSearchSeedsMax
                       << " caught the broken protocol\n"
                       << rerun_test("PaxosSim.UnsafeAckIsCaught");
  std::printf("unsafe ack caught first at seed %llu: %s\n", static_cast<unsigned long long>(found),
              failure.c_str());
}

// The durability rule has teeth too: a driver that sends before persisting
// lets a crash take back a promise or an accept that was already counted.
TEST(PaxosSim, SendBeforePersistIsCaught) {
  uint64_t found = 0;
  std::string failure;
  for (uint64_t seed = 1; seed <= kUnsafeSearchSeedsMax && found == 0; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.send_before_persist = true;
    const SimResult r = PaxosSim(o).run();
    if (!r.ok) {
      found = seed;
      failure = r.failure;
    }
  }
  ASSERT_NE(found, 0u) << "no seed in 1.." << kUnsafeSearchSeedsMax << " caught the broken driver\n"
                       << rerun_test("PaxosSim.SendBeforePersistIsCaught");
  std::printf("send-before-persist caught first at seed %llu: %s\n",
              static_cast<unsigned long long>(found), failure.c_str());
}

TEST(PaxosSim, UnsafeAckRegressionSeed) {
  const SimResult r = run_seed(kUnsafeRegressionSeed, /*unsafe=*/true);
  EXPECT_FALSE(r.ok) << "seed " << kUnsafeRegressionSeed
                     << " no longer catches the broken protocol\n"
                     << rerun_test("PaxosSim.UnsafeAckRegressionSeed");
  std::printf("seed %llu (unsafe): %s\n", static_cast<unsigned long long>(kUnsafeRegressionSeed),
              r.failure.c_str());
  // The same seed with the real protocol is fine.
  const SimResult safe = run_seed(kUnsafeRegressionSeed);
  EXPECT_TRUE(safe.ok) << safe.failure << "\n" << rerun_test("PaxosSim.UnsafeAckRegressionSeed");
}

// The drift margin has teeth: without it, drift lets a deposed leader (slow
// clock) keep its lease after followers (fast clocks) elected a successor
// that committed writes — a client's lease read there is stale.
constexpr uint64_t kDriftSearchSeedsMax = 50;

TEST(PaxosSim, LeaseWithoutDriftMarginServesAStaleRead) {
  uint64_t found = 0;
  std::string failure;
  for (uint64_t seed = 1; seed <= kDriftSearchSeedsMax && found == 0; ++seed) {
    const SimResult r = PaxosSim(no_margin_options(seed, /*exclusivity=*/false)).run();
    if (!r.ok) {
      found = seed;
      failure = r.failure;
    }
  }
  ASSERT_NE(found, 0u) << "no seed in 1.." << kDriftSearchSeedsMax
                       << " caught a lease without drift margin\n"
                       << rerun_test("PaxosSim.LeaseWithoutDriftMarginServesAStaleRead");
  EXPECT_NE(failure.find("stale lease read"), std::string::npos) << "seed " << found << ": " << failure;
  std::printf("no drift margin: stale read caught first at seed %llu: %s\n",
              static_cast<unsigned long long>(found), failure.c_str());
}

// The harness's own lease-exclusivity check sees the same broken lease.
TEST(PaxosSim, LeaseWithoutDriftMarginBreaksExclusivity) {
  uint64_t found = 0;
  std::string failure;
  for (uint64_t seed = 1; seed <= kDriftSearchSeedsMax && found == 0; ++seed) {
    const SimResult r = PaxosSim(no_margin_options(seed, /*exclusivity=*/true)).run();
    if (!r.ok) {
      found = seed;
      failure = r.failure;
    }
  }
  ASSERT_NE(found, 0u) << "no seed in 1.." << kDriftSearchSeedsMax << " broke lease exclusivity\n"
                       << rerun_test("PaxosSim.LeaseWithoutDriftMarginBreaksExclusivity");
  std::printf("no drift margin: exclusivity broken first at seed %llu: %s\n",
              static_cast<unsigned long long>(found), failure.c_str());
}

// Found by LeaseWithoutDriftMarginServesAStaleRead; kept as a regression
// test: a stale lease read without the margin, a clean run with it.
constexpr uint64_t kNoDriftMarginRegressionSeed = 1;

TEST(PaxosSim, NoDriftMarginRegressionSeed) {
  const std::string hint = rerun_test("PaxosSim.NoDriftMarginRegressionSeed");
  const SimResult r = PaxosSim(no_margin_options(kNoDriftMarginRegressionSeed, false)).run();
  EXPECT_FALSE(r.ok) << "seed " << kNoDriftMarginRegressionSeed
                     << " no longer catches a lease without drift margin\n"
                     << hint;
  EXPECT_NE(r.failure.find("stale lease read"), std::string::npos) << r.failure << "\n" << hint;
  std::printf("seed %llu (no drift margin): %s\n", static_cast<unsigned long long>(kNoDriftMarginRegressionSeed),
              r.failure.c_str());
  const SimResult safe = PaxosSim(long_timing_options(kNoDriftMarginRegressionSeed)).run();
  EXPECT_TRUE(safe.ok) << safe.failure << "\n" << hint;
}

}  // namespace
}  // namespace wx::paxos

