// `wxsim demo`: the echo service in simulation across three zones of one
// datacenter, with an outage timeline, printing a report.
//
// This is the main job until YAML scenarios exist (`wxsim run`, a later
// issue): one echo server and one pinger per zone; every pinger pings every
// echo server. At 30 % of the run the echo server of zone b crashes and comes
// back at 50 % (same disk); at 70 % the echo server of zone c loses its disk
// and restarts empty at 75 %.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "nodes/echo/echo_node.h"
#include "sim/simulation.h"

namespace wx::cli {

namespace {

struct DemoOptions {
  uint64_t seed = 42;
  std::string duration = "10s";
  std::string interval = "20ms";
  std::string trace_out;
  std::string log_level = "warn";
};

int64_t percentile_ns(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

std::optional<LogLevel> parse_level(const std::string& s) {
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (s == to_string(l)) return l;
  }
  return std::nullopt;
}

int run_demo(const DemoOptions& opt) {
  auto duration = parse_duration(opt.duration);
  auto interval = parse_duration(opt.interval);
  auto level = parse_level(opt.log_level);
  if (!duration || *duration <= Duration::zero()) {
    std::fprintf(stderr, "wxsim demo: --duration '%s': expected a positive duration such as 10s or 1m30s\n",
                 opt.duration.c_str());
    return 2;
  }
  if (!interval || *interval <= Duration::zero()) {
    std::fprintf(stderr, "wxsim demo: --interval '%s': expected a positive duration such as 20ms\n",
                 opt.interval.c_str());
    return 2;
  }
  if (!level) {
    std::fprintf(stderr, "wxsim demo: --log-level '%s': expected debug, info, warn, error or off\n",
                 opt.log_level.c_str());
    return 2;
  }

  sim::SimConfig cfg;
  cfg.seed = opt.seed;
  cfg.log_level = *level;
  cfg.trace_records_max = opt.trace_out.empty() ? 0 : size_t{1} << 22;
  sim::Simulation sim(cfg);

  const std::vector<std::string> zones = {"sh-a", "sh-b", "sh-c"};
  std::vector<NodeId> echoes, pingers;
  for (const std::string& z : zones) {
    echoes.push_back(sim.add_node({"echo-" + z, sim::Placement{"sh", z, ""},
                                   [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }}));
  }
  for (size_t i = 0; i < zones.size(); ++i) {
    echo::PingerConfig pc;
    pc.targets = echoes;
    pc.interval = *interval;
    pc.timeout = milliseconds(500);
    pc.start_delay = microseconds(137 * static_cast<int64_t>(i));  // stagger the zones
    pingers.push_back(sim.add_node({"ping-" + zones[i], sim::Placement{"sh", zones[i], ""},
                                    [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }}));
  }
  for (NodeId id : echoes) sim.start(id);
  for (NodeId id : pingers) sim.start(id);

  const TimePoint t0 = sim.now();
  const Duration d = *duration;
  struct Event {
    TimePoint at;
    std::string what;
  };
  std::vector<Event> timeline;
  uint64_t served_before_crash = 0, served_after_restart = 0, served_before_wipe = 0, served_after_wipe = 0;
  const NodeId b = echoes[1], c = echoes[2];
  sim.at(t0 + d * 3 / 10, [&] {
    served_before_crash = sim.node_as<echo::EchoServer>(b)->served_total();
    sim.crash(b);
    timeline.push_back({sim.now(), "crash echo-sh-b"});
  });
  sim.at(t0 + d * 5 / 10, [&] {
    sim.start(b);
    served_after_restart = sim.node_as<echo::EchoServer>(b)->served_total();
    timeline.push_back({sim.now(), "restart echo-sh-b (disk kept)"});
  });
  sim.at(t0 + d * 7 / 10, [&] {
    served_before_wipe = sim.node_as<echo::EchoServer>(c)->served_total();
    sim.wipe(c);
    timeline.push_back({sim.now(), "wipe echo-sh-c (disk lost)"});
  });
  sim.at(t0 + d * 75 / 100, [&] {
    sim.start(c);
    served_after_wipe = sim.node_as<echo::EchoServer>(c)->served_total();
    timeline.push_back({sim.now(), "restart echo-sh-c (empty disk)"});
  });

  if (!sim.run_until(t0 + d)) {
    std::fprintf(stderr, "wxsim demo: run failed at %s: %s\nreproduce: wxsim demo --seed %llu --duration %s\n",
                 to_string(sim.now()).c_str(), sim.failure()->c_str(),
                 static_cast<unsigned long long>(opt.seed), opt.duration.c_str());
    return 1;
  }

  // --- report ---------------------------------------------------------------
  std::printf("wxsim demo — echo service, 3 zones (datacenter sh), seed %llu, %s simulated\n\n",
              static_cast<unsigned long long>(opt.seed), to_string(d).c_str());
  std::printf("timeline:\n");
  for (const Event& e : timeline) std::printf("  %12s  %s\n", to_string(e.at).c_str(), e.what.c_str());

  // Per (pinger zone, echo zone): outcomes and RTT.
  std::printf("\n%-8s %-8s %7s %7s %8s %7s %10s %10s\n", "from", "to", "sent", "ok", "timeout", "reset",
              "p50", "p99");
  std::map<uint32_t, std::vector<int64_t>> by_target_rtts;
  // Availability per second of simulated time, over all pings.
  const int64_t windows = std::max<int64_t>(1, d.ns() / seconds(1).ns());
  std::vector<uint64_t> win_ok(static_cast<size_t>(windows)), win_all(static_cast<size_t>(windows));
  uint64_t total_sent = 0, total_ok = 0;
  for (size_t i = 0; i < pingers.size(); ++i) {
    const echo::Pinger* p = sim.node_as<echo::Pinger>(pingers[i]);
    for (size_t j = 0; j < echoes.size(); ++j) {
      uint64_t sent = 0, ok = 0, timeouts = 0, resets = 0;
      std::vector<int64_t> rtts;
      for (const echo::PingOutcome& o : p->outcomes()) {
        if (o.target != echoes[j]) continue;
        ++sent;
        switch (o.result) {
          case echo::PingOutcome::Result::ok: ++ok; rtts.push_back(o.rtt.ns()); break;
          case echo::PingOutcome::Result::timeout: ++timeouts; break;
          case echo::PingOutcome::Result::reset: ++resets; break;
          case echo::PingOutcome::Result::send_failed: break;
        }
        const int64_t w = (o.sent_at - t0).ns() / seconds(1).ns();
        if (w >= 0 && w < windows) {
          ++win_all[static_cast<size_t>(w)];
          if (o.result == echo::PingOutcome::Result::ok) ++win_ok[static_cast<size_t>(w)];
        }
      }
      total_sent += sent;
      total_ok += ok;
      std::printf("%-8s %-8s %7llu %7llu %8llu %7llu %10s %10s\n", zones[i].c_str(), zones[j].c_str(),
                  static_cast<unsigned long long>(sent), static_cast<unsigned long long>(ok),
                  static_cast<unsigned long long>(timeouts), static_cast<unsigned long long>(resets),
                  to_string(nanoseconds(percentile_ns(rtts, 0.50))).c_str(),
                  to_string(nanoseconds(percentile_ns(rtts, 0.99))).c_str());
    }
  }
  std::printf("\navailability per second (ok / pings sent in that second):\n ");
  for (int64_t w = 0; w < windows; ++w) {
    const double a = win_all[static_cast<size_t>(w)]
                         ? static_cast<double>(win_ok[static_cast<size_t>(w)]) / static_cast<double>(win_all[static_cast<size_t>(w)])
                         : 1.0;
    std::printf(" %5.3f", a);
    if (w % 10 == 9 && w + 1 < windows) std::printf("\n ");
  }
  std::printf("\n  overall %.4f (%llu of %llu)\n", total_sent ? static_cast<double>(total_ok) / static_cast<double>(total_sent) : 1.0,
              static_cast<unsigned long long>(total_ok), static_cast<unsigned long long>(total_sent));

  std::printf("\ndisks:\n");
  std::printf("  echo-sh-b served %llu before its crash and resumed at %llu after restart (%s)\n",
              static_cast<unsigned long long>(served_before_crash),
              static_cast<unsigned long long>(served_after_restart),
              served_after_restart == served_before_crash ? "disk kept" : "MISMATCH");
  std::printf("  echo-sh-c served %llu before its wipe and restarted at %llu (%s)\n",
              static_cast<unsigned long long>(served_before_wipe),
              static_cast<unsigned long long>(served_after_wipe),
              served_after_wipe == 0 ? "disk lost" : "MISMATCH");
  for (size_t j = 0; j < echoes.size(); ++j) {
    std::printf("  echo-%s served_total now %llu\n", zones[j].c_str(),
                static_cast<unsigned long long>(sim.node_as<echo::EchoServer>(echoes[j])->served_total()));
  }

  const auto& ns = sim.network().stats();
  std::printf("\nnetwork: %llu frames sent, %llu delivered, %llu lost, %llu resets (%llu refused connects)\n",
              static_cast<unsigned long long>(ns.frames_sent), static_cast<unsigned long long>(ns.frames_delivered),
              static_cast<unsigned long long>(ns.frames_lost), static_cast<unsigned long long>(ns.resets),
              static_cast<unsigned long long>(ns.refused));
  std::printf("kernel:  %llu events, %llu stale events dropped\n",
              static_cast<unsigned long long>(sim.kernel().events_executed()),
              static_cast<unsigned long long>(sim.kernel().stale_dropped()));
  std::printf("trace hash: %016llx\n", static_cast<unsigned long long>(sim.trace_hash()));
  std::printf("reproduce:  wxsim demo --seed %llu --duration %s --interval %s\n",
              static_cast<unsigned long long>(opt.seed), opt.duration.c_str(), opt.interval.c_str());

  if (!opt.trace_out.empty()) {
    std::ofstream out(opt.trace_out);
    if (!out) {
      std::fprintf(stderr, "wxsim demo: --trace-out '%s': cannot open for writing\n", opt.trace_out.c_str());
      return 2;
    }
    sim.kernel().trace().write_text(out);
    std::printf("trace:      %zu records written to %s\n", sim.kernel().trace().records().size(),
                opt.trace_out.c_str());
  }
  const bool disks_ok = served_after_restart == served_before_crash && served_after_wipe == 0;
  return disks_ok ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the echo service in simulation across three zones with a crash, restart and wipe; print a report");
  cmd->add_option("--seed", opt->seed, "Root seed of the run")->capture_default_str();
  cmd->add_option("--duration", opt->duration, "Simulated time to run (e.g. 10s, 1m30s)")->capture_default_str();
  cmd->add_option("--interval", opt->interval, "Ping interval of each pinger")->capture_default_str();
  cmd->add_option("--trace-out", opt->trace_out, "Write the event trace (text) to this file");
  cmd->add_option("--log-level", opt->log_level, "debug, info, warn, error or off")->capture_default_str();
  cmd->callback([opt, &exit_code] { exit_code = run_demo(*opt); });
}

}  // namespace wx::cli
