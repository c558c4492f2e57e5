// Two datacenters, no faults (docs/multi-dc.md), for docs/performance.md:
// replication lag and the 1:1 message latency of users homed in the same
// datacenter beside users homed in different ones, plus the run's wall time.
//
// The workload is scenarios/two-datacenters.yaml's (200 users homed in dc1 and
// dc2 in turn, 1:1 chats only, 2 sends per user per minute, 6 minutes of
// traffic) without its partition; the WAN link is LatencyConfig's default
// (25 ms + up to 10 ms of jitter one way) unless --wan-ms / --wan-jitter-ms
// say otherwise.
//
//   build/bench/multidc_bench --users 200 --minutes 6 --seeds 3
//
// Figures:
//   * replication lag: every page a replicator applied that shipped user
//     records (LagSample::writes > 0, full copies left out: their lag is 0 by
//     definition) — apply time here − apply time at the source of the page's
//     oldest entry;
//   * message latency from the recorded history, per 1:1 message (sender,
//     client_msg_id): t0 = the first send invoke, t1 = the first SendAck that
//     lists the recipient with a seq (stored in the recipient's inbox), t2 =
//     the first ok sync completion of the recipient whose result lists the
//     message (the recipient's client holds it); split by whether sender and
//     recipient share a home datacenter;
//   * wall time (steady clock) of building and running the world (the run
//     includes the end phase, the messaging checker, the wait for the
//     replicators and the replica-convergence check), simulated time, and the
//     real-time factor (simulated s / wall s).
// The percentiles are nearest-rank over the samples of every seed together.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>

#include "checkers/history.h"
#include "nodes/storage/repl/replicator.h"
#include "sim/workload/outage_run.h"

namespace {

namespace cm = wx::checkers::messaging;
namespace wl = wx::sim::workload;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Nearest rank, in milliseconds; 0 when empty.
double pct_ms(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return static_cast<double>(v[rank - 1]) / 1e6;
}

double max_ms(const std::vector<int64_t>& v) {
  return v.empty() ? 0 : static_cast<double>(*std::max_element(v.begin(), v.end())) / 1e6;
}

struct Latencies {
  std::vector<int64_t> stored, held;  // t1 - t0, t2 - t0
  size_t messages = 0, not_stored = 0, not_held = 0;
  std::vector<double> slow_sent_s;  // send times (s after traffic start) of messages held > 1 s after sending
};

struct MsgTimes {
  int64_t sent = -1, stored = -1, held = -1;
  uint64_t recipient = 0;
};

using MsgKey = std::pair<uint64_t, std::string>;  // (sender, client_msg_id)

void first(int64_t& slot, int64_t t) {
  if (slot < 0 || t < slot) slot = t;
}

// The 1:1 messages of one run, split by same / different home datacenter.
void collect(wl::OutageRun& run, Latencies& same, Latencies& cross) {
  std::map<MsgKey, MsgTimes> msgs;
  const cm::History& h = run.history();
  for (const cm::Event& e : h) {
    if (const auto* inv = std::get_if<cm::Invoke>(&e.body)) {
      if (const auto* s = std::get_if<cm::SendRequest>(&inv->request)) {
        if (s->to.kind != cm::ConversationKind::user) continue;
        MsgTimes& m = msgs[{s->user, s->client_msg_id}];
        m.recipient = s->to.id;
        first(m.sent, e.t_ns);
      }
    }
  }
  for (const cm::Event& e : h) {
    if (const auto* ack = std::get_if<cm::SendAck>(&e.body)) {
      if (ack->to.kind != cm::ConversationKind::user) continue;
      auto it = msgs.find({ack->sender, ack->client_msg_id});
      if (it == msgs.end()) continue;
      for (const cm::RecipientSeq& r : ack->recipients) {
        if (r.user == it->second.recipient && r.seq != 0) first(it->second.stored, e.t_ns);
      }
    } else if (const auto* c = std::get_if<cm::Completion>(&e.body)) {
      if (c->outcome != cm::Outcome::ok || !c->result) continue;
      const auto* sr = std::get_if<cm::SyncResult>(&*c->result);
      if (sr == nullptr) continue;
      for (const cm::MessageCopy& m : sr->messages) {
        if (m.to.kind != cm::ConversationKind::user) continue;
        auto it = msgs.find({m.sender, m.client_msg_id});
        if (it == msgs.end() || m.recipient != it->second.recipient) continue;
        first(it->second.held, e.t_ns);
      }
    }
  }
  const auto& shards = run.deployment().shard_map();
  for (const auto& [key, m] : msgs) {
    const auto hs = shards->home_of(key.first), hr = shards->home_of(m.recipient);
    Latencies& l = (hs && hr && *hs == *hr) ? same : cross;
    ++l.messages;
    if (m.stored < 0) {
      ++l.not_stored;
    } else {
      l.stored.push_back(m.stored - m.sent);
    }
    if (m.held < 0) {
      ++l.not_held;
    } else {
      l.held.push_back(m.held - m.sent);
      if (m.held - m.sent > 1'000'000'000) {
        l.slow_sent_s.push_back(static_cast<double>(m.sent - run.traffic_start().ns()) / 1e9);
      }
    }
  }
}

size_t over_1s(const std::vector<int64_t>& v) {
  return static_cast<size_t>(std::count_if(v.begin(), v.end(), [](int64_t d) { return d > 1'000'000'000; }));
}

void print_latency(const char* name, Latencies& l) {
  std::printf("%-9s %8zu msgs  stored p50 %7.1f  p99 %7.1f  max %8.1f ms (%zu over 1 s, %zu never stored)  |  "
              "client holds p50 %7.1f  p99 %7.1f  max %8.1f ms (%zu over 1 s, %zu never held)\n",
              name, l.messages, pct_ms(l.stored, 50), pct_ms(l.stored, 99), max_ms(l.stored), over_1s(l.stored),
              l.not_stored, pct_ms(l.held, 50), pct_ms(l.held, 99), max_ms(l.held), over_1s(l.held), l.not_held);
  if (!l.slow_sent_s.empty()) {
    std::printf("          held > 1 s after sending: sent at");
    for (size_t i = 0; i < l.slow_sent_s.size() && i < 12; ++i) std::printf(" %.1f", l.slow_sent_s[i]);
    std::printf("%s s after the traffic started\n", l.slow_sent_s.size() > 12 ? " ..." : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Two datacenters without faults: replication lag and same- vs cross-datacenter message latency"};
  uint64_t seed = 1;
  size_t seeds = 1, users = 200;
  double rate = 2, minutes = 6, wan_ms = 25, wan_jitter_ms = 10;
  app.add_option("--seed", seed, "first seed");
  app.add_option("--seeds", seeds, "seeds seed, seed+1, ...");
  app.add_option("--users", users);
  app.add_option("--rate", rate, "sends per user per minute");
  app.add_option("--minutes", minutes, "traffic, simulated minutes");
  app.add_option("--wan-ms", wan_ms, "WAN link one-way base latency");
  app.add_option("--wan-jitter-ms", wan_jitter_ms, "WAN link one-way jitter (uniform, added)");
  CLI11_PARSE(app, argc, argv);

  std::vector<int64_t> lag;
  size_t lag_pages_all = 0, full_copies = 0;
  Latencies same, cross;
  double build_wall = 0, run_wall = 0, sim_total = 0, traffic_total = 0;
  uint64_t events = 0;
  size_t checker_fail = 0, replicas_fail = 0;

  for (uint64_t s = seed; s < seed + seeds; ++s) {
    wx::deploy::DeploymentSpec spec;
    spec.datacenters = {{"dc1", {"a", "b", "c"}}, {"dc2", {"a", "b", "c"}}};
    spec.default_datacenter = "dc1";
    spec.instances_per_zone = wx::deploy::DeploymentSpec::full_set_per_zone();
    for (wx::deploy::Role r :
         {wx::deploy::Role::msg, wx::deploy::Role::access, wx::deploy::Role::group, wx::deploy::Role::fanout}) {
      spec.instances_per_zone[r] = 1;
    }
    spec.templates.repl.lag_observer = [&](wx::NodeId, const wx::repl::LagSample& ls) {
      ++lag_pages_all;
      if (ls.full_copy) {
        ++full_copies;
        return;
      }
      if (ls.writes > 0) lag.push_back(ls.lag.ns());
    };

    wl::OutageRunConfig rc;
    rc.seed = s;
    rc.users = users;
    rc.groups = 0;
    rc.rate_per_min = rate;
    rc.duration = wx::nanoseconds(static_cast<int64_t>(minutes * 60e9));
    rc.zone = "";
    rc.latency.wan_link.base = wx::nanoseconds(static_cast<int64_t>(wan_ms * 1e6));
    rc.latency.wan_link.jitter = wx::nanoseconds(static_cast<int64_t>(wan_jitter_ms * 1e6));
    rc.spec = spec;
    if (std::string why = wl::validate(rc); !why.empty()) {
      std::fprintf(stderr, "multidc_bench: %s\n", why.c_str());
      return 2;
    }

    const double w0 = wall_seconds();
    wl::OutageRun run(rc);
    const double w1 = wall_seconds();
    std::string why;
    if (!run.run(&why)) {
      std::fprintf(stderr, "multidc_bench: seed %llu: the run did not finish: %s\n",
                   static_cast<unsigned long long>(s), why.c_str());
      return 1;
    }
    const double w2 = wall_seconds();
    build_wall += w1 - w0;
    run_wall += w2 - w1;
    const double sim_s = static_cast<double>((run.sim().now() - wx::TimePoint::zero()).ns()) / 1e9;
    sim_total += sim_s;
    traffic_total += static_cast<double>((run.traffic_end() - run.traffic_start()).ns()) / 1e9;
    events += run.sim().kernel().events_executed();
    if (!run.verdict().ok()) ++checker_fail;
    if (!run.replica_verdict() || !run.replica_verdict()->ok()) ++replicas_fail;
    collect(run, same, cross);
    std::printf("seed %llu: simulated %.1f s, wall %.2f s (build %.2f), %llu events, checker %s, replicas %s\n",
                static_cast<unsigned long long>(s), sim_s, w2 - w0, w1 - w0,
                static_cast<unsigned long long>(run.sim().kernel().events_executed()),
                run.verdict().ok() ? "PASS" : "FAIL",
                run.replica_verdict() && run.replica_verdict()->ok() ? "converge" : "DIVERGE");
    std::fflush(stdout);
  }

  std::printf("\nusers %zu (dc1/dc2 in turn), groups 0, rate %.3g/user/min, traffic %.3g min, WAN %.3g ms + %.3g ms "
              "jitter one way, no faults, seeds %llu..%llu\n",
              users, rate, minutes, wan_ms, wan_jitter_ms, static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed + seeds - 1));
  std::printf("replication lag (pages with writes > 0): %zu samples  p50 %.1f  p99 %.1f  max %.1f ms  "
              "(%zu pages applied in all, %zu full-copy batches left out)\n",
              lag.size(), pct_ms(lag, 50), pct_ms(lag, 99), max_ms(lag), lag_pages_all, full_copies);
  std::printf("1:1 message latency from the first send invoke (stored = first SendAck listing the recipient; "
              "client holds = first sync of the recipient listing it):\n");
  print_latency("same-DC", same);
  print_latency("cross-DC", cross);
  std::printf("wall: build %.2f s, run %.2f s; simulated %.1f s (traffic %.1f s); %llu events; real-time factor "
              "%.1fx (simulated s / wall s, build + run)\n",
              build_wall, run_wall, sim_total, traffic_total, static_cast<unsigned long long>(events),
              sim_total / (build_wall + run_wall));
  std::printf("checker failures %zu, replica divergences %zu (of %zu seeds)\n", checker_fail, replicas_fail, seeds);
  return checker_fail == 0 && replicas_fail == 0 ? 0 : 1;
}
