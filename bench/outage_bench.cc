// The messaging outage run (sim/workload/outage_run.h, what `wxsim demo`
// runs) measured in CPU time, phase by phase, for docs/performance.md:
// building the world, the simulation (traffic, outage, end phase), and the
// messaging checker over the recorded history. CPU time (getrusage), not wall
// time: the figures stay meaningful on a machine shared with other jobs.
//
//   build/bench/outage_bench --users 10000 --groups 1000 --rate 3
//       --duration-s 300 --outage-start-s 120 --outage-for-s 60
//       --sync-every-s 3 --heartbeat-every-s 1   (one line)
//
// OutageRun::run() runs the checker itself; the bench runs the checker once
// more on the same history and subtracts its time to split the two.
#include <sys/resource.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "checkers/messaging.h"
#include "sim/workload/outage_run.h"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;  // KiB on Linux
}

wx::Duration secs(double s) { return wx::nanoseconds(static_cast<int64_t>(s * 1e9)); }

}  // namespace

int main(int argc, char** argv) {
  namespace wl = wx::sim::workload;
  CLI::App app{"CPU time of the messaging outage run, by phase"};
  uint64_t seed = 42;
  size_t users = 10'000, groups = 1'000;
  double rate = 3, duration = 300, outage_start = 120, outage_for = 60, sync_every = 3, heartbeat_every = 1;
  app.add_option("--seed", seed);
  app.add_option("--users", users);
  app.add_option("--groups", groups);
  app.add_option("--rate", rate, "sends per user per minute");
  app.add_option("--duration-s", duration);
  app.add_option("--outage-start-s", outage_start);
  app.add_option("--outage-for-s", outage_for);
  app.add_option("--sync-every-s", sync_every);
  app.add_option("--heartbeat-every-s", heartbeat_every);
  CLI11_PARSE(app, argc, argv);

  wl::OutageRunConfig rc;
  rc.seed = seed;
  rc.users = users;
  rc.groups = groups;
  rc.rate_per_min = rate;
  rc.duration = secs(duration);
  rc.outage_start = secs(outage_start);
  rc.outage_for = secs(outage_for);
  rc.sync_interval = secs(sync_every);
  rc.heartbeat_interval = secs(heartbeat_every);
  if (std::string why = wl::validate(rc); !why.empty()) {
    std::fprintf(stderr, "outage_bench: %s\n", why.c_str());
    return 2;
  }

  const double c0 = cpu_seconds();
  wl::OutageRun run(rc);
  const double c1 = cpu_seconds();
  std::string why;
  const bool ok = run.run(&why);
  const double c2 = cpu_seconds();
  if (!ok) {
    std::fprintf(stderr, "outage_bench: the run did not finish: %s\n", why.c_str());
    return 1;
  }
  wx::checkers::messaging::CheckOptions co;
  const auto verdict = wx::checkers::messaging::check_messaging(run.history(), co);
  const double c3 = cpu_seconds();

  wx::sim::Simulation& sim = run.sim();
  const double sim_s = static_cast<double>((sim.now() - wx::TimePoint::zero()).ns()) / 1e9;
  const double build_cpu = c1 - c0, run_cpu = c2 - c1, check_cpu = c3 - c2;
  const double sim_cpu = run_cpu - check_cpu;
  const double total_cpu = c2 - c0;
  const uint64_t events = sim.kernel().events_executed();
  std::printf("users %zu, groups %zu, rate %.3g/user/min, traffic %.0f s, outage %.0f-%.0f s, sync every %.3g s, "
              "heartbeat every %.3g s, seed %llu\n",
              users, groups, rate, duration, outage_start, outage_start + outage_for, sync_every, heartbeat_every,
              static_cast<unsigned long long>(seed));
  std::printf("simulated %.1f s, %llu events, %zu history events, checker %s\n", sim_s,
              static_cast<unsigned long long>(events), run.history().size(), verdict.ok() ? "PASS" : "FAIL");
  std::printf("CPU s: build %.2f, simulation %.2f, checker %.2f (run = simulation + checker %.2f), total %.2f\n",
              build_cpu, sim_cpu, check_cpu, run_cpu, total_cpu);
  std::printf("simulated s per CPU s: %.2f (simulation alone), %.2f (build + run + checker)\n", sim_s / sim_cpu,
              sim_s / total_cpu);
  std::printf("events per CPU s (simulation alone): %.0f\n", static_cast<double>(events) / sim_cpu);
  std::printf("seeds per CPU-hour (build + run + checker): %.1f\n", 3600.0 / total_cpu);
  std::printf("peak RSS: %.0f MiB\n", static_cast<double>(peak_rss_kib()) / 1024.0);
  std::printf("trace hash: %016llx\n", static_cast<unsigned long long>(sim.trace_hash()));
  return 0;
}
