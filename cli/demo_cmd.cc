// `wxsim demo`: the default outage scenario, built in until YAML scenarios
// exist (`wxsim run`, a later issue).
//
// One datacenter "sh" with three zones. In each zone: an RPC echo server
// (4 workers, 200 us of service cost per call) and an open-loop client
// calling the echo service through the zone-aware router (own zone first,
// fail-over for this idempotent method, 200 ms deadline). The timeline, as
// fractions of the run:
//   20 %  zone sh-b loses power (servers and clients in it, silently)
//   40 %  zone sh-b comes back
//   50 %  the echo server of sh-c crashes (a process crash: peers get resets)
//   60 %  it restarts
//   70 %  the echo server of sh-a is partitioned from everything else
//   85 %  the partition heals
// The report shows each client's availability per second of simulated
// time, latencies, retries and fail-overs, and the trace hash that a rerun
// with the same seed reproduces.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "nodes/echo/echo.pb.h"
#include "nodes/echo/rpc_echo.h"
#include "nodes/rpc/load_client.h"
#include "sim/faults.h"
#include "sim/simulation.h"

namespace wx::cli {

namespace {

struct DemoOptions {
  uint64_t seed = 42;
  std::string duration = "10s";
  double rate = 200;
  int attempts = 3;
  std::string trace_out;
  std::string log_level = "warn";
};

std::optional<LogLevel> parse_level(const std::string& s) {
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (s == to_string(l)) return l;
  }
  return std::nullopt;
}

Duration percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return Duration::zero();
  std::sort(v.begin(), v.end());
  const size_t idx = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return nanoseconds(v[idx]);
}

int run_demo(const DemoOptions& opt) {
  const auto duration = parse_duration(opt.duration);
  const auto level = parse_level(opt.log_level);
  if (!duration || *duration < seconds(1)) {
    std::fprintf(stderr, "wxsim demo: --duration '%s': expected a duration of at least 1s, such as 10s or 1m30s\n",
                 opt.duration.c_str());
    return 2;
  }
  if (!(opt.rate > 0 && opt.rate <= 100'000)) {
    fmt::print(stderr, "wxsim demo: --rate {}: expected calls per second per client in (0, 100000]\n", opt.rate);
    return 2;
  }
  if (opt.attempts < 1 || opt.attempts > 10) {
    std::fprintf(stderr, "wxsim demo: --attempts %d: expected 1 to 10 attempts per call\n", opt.attempts);
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

  const std::string dc = "sh";
  const std::vector<std::string> zones = {"sh-a", "sh-b", "sh-c"};
  rpc::ServiceDirectory dir;
  std::vector<NodeId> servers, clients;
  for (const std::string& z : zones) {
    echo::RpcEchoConfig sc;
    sc.server.workers = 4;
    sc.cost = microseconds(200);
    sc.zone = z;
    NodeId id = sim.add_node({"echo-" + z, sim::Placement{dc, z, ""},
                              [sc](Runtime& rt) { return std::make_unique<echo::RpcEchoServer>(rt, sc); }});
    servers.push_back(id);
    dir.add(echo::kEchoService, rpc::Instance{id, dc, z});
  }
  // Outcomes per client zone, kept here so that they survive the clients.
  std::map<std::string, std::vector<rpc::CallRecord>> outcomes;
  echo::EchoRequest req;
  req.set_payload(std::string(256, 'x'));
  for (const std::string& z : zones) {
    rpc::LoadConfig lc;
    lc.service = echo::kEchoService;
    lc.method = echo::kEchoMethod;
    lc.request = req.SerializeAsString();
    lc.rate_per_s = opt.rate;
    lc.duration = *duration;
    lc.options.timeout = milliseconds(200);
    lc.directory = dir;
    lc.self = rpc::Locality{dc, z};
    lc.router.attempts_max = opt.attempts;
    lc.records_max = 0;
    std::vector<rpc::CallRecord>* sink = &outcomes[z];
    lc.on_record = [sink](const rpc::CallRecord& r) { sink->push_back(r); };
    clients.push_back(sim.add_node({"client-" + z, sim::Placement{dc, z, ""},
                                    [lc](Runtime& rt) { return std::make_unique<rpc::LoadClient>(rt, lc); }}));
  }
  for (NodeId id : servers) sim.start(id);
  for (NodeId id : clients) sim.start(id);

  const TimePoint t0 = sim.now();
  const Duration d = *duration;
  struct Mark {
    TimePoint at;
    std::string what;
  };
  std::vector<Mark> timeline;
  auto at = [&](int percent, std::string what, std::function<void()> action) {
    sim.at(t0 + d * percent / 100, [&sim, &timeline, what = std::move(what), action = std::move(action)] {
      action();
      timeline.push_back({sim.now(), what});
    });
  };
  sim::FaultId partition = 0;
  at(20, "zone sh-b loses power (2 nodes, silently)", [&] { sim.faults().kill_zone("sh-b", dc); });
  at(40, "zone sh-b restored", [&] { sim.faults().restore_zone("sh-b", dc); });
  at(50, "echo-sh-c crashes (process crash: peers get resets)", [&] { sim.crash(servers[2]); });
  at(60, "echo-sh-c restarts", [&] { sim.start(servers[2]); });
  at(70, "echo-sh-a partitioned from everything else", [&] {
    partition = sim.faults().partition({{sim::Selector(servers[0])}, {sim::Selector::datacenter(dc)}});
  });
  at(85, "partition healed", [&] { sim.faults().heal(partition); });

  // Let calls issued just before the end complete or time out.
  if (!sim.run_until(t0 + d + seconds(1))) {
    std::fprintf(stderr, "wxsim demo: run failed at %s: %s\nreproduce: wxsim demo --seed %llu --duration %s\n",
                 to_string(sim.now()).c_str(), sim.failure()->c_str(), static_cast<unsigned long long>(opt.seed),
                 opt.duration.c_str());
    return 1;
  }

  // --- report ---------------------------------------------------------------
  std::printf("wxsim demo: zone outage, crash and partition; echo service over RPC in 3 zones\n");
  fmt::print("seed {}, {} simulated, {} calls/s per client, 200 ms deadline, up to {} attempts per call{}\n\n",
             opt.seed, to_string(d), opt.rate, opt.attempts, opt.attempts == 1 ? " (no fail-over)" : "");
  std::printf("timeline:\n");
  for (const Mark& m : timeline) std::printf("  %10s  %s\n", to_string(m.at).c_str(), m.what.c_str());

  const int64_t windows = d / seconds(1);
  std::printf("\navailability per second (ok / calls issued in that second; '-' = client down):\n");
  std::printf("  %-8s", "client");
  for (int64_t w = 0; w < windows; ++w) std::printf(" %5llds", static_cast<long long>(w));
  std::printf("\n");
  uint64_t total = 0, total_ok = 0;
  for (const std::string& z : zones) {
    std::vector<uint64_t> ok(static_cast<size_t>(windows)), all(static_cast<size_t>(windows));
    for (const rpc::CallRecord& r : outcomes[z]) {
      const int64_t w = (r.sent_at - t0) / seconds(1);
      if (w < 0 || w >= windows) continue;
      ++all[static_cast<size_t>(w)];
      if (r.code == rpc::StatusCode::ok) ++ok[static_cast<size_t>(w)];
    }
    std::printf("  %-8s", z.c_str());
    for (int64_t w = 0; w < windows; ++w) {
      const auto i = static_cast<size_t>(w);
      if (all[i] == 0) {
        std::printf(" %6s", "-");
      } else {
        fmt::print(" {:6.3f}", static_cast<double>(ok[i]) / static_cast<double>(all[i]));
      }
      total += all[i];
      total_ok += ok[i];
    }
    std::printf("\n");
  }
  fmt::print("  overall {:.4f} ({} of {} calls ok)\n",
             total ? static_cast<double>(total_ok) / static_cast<double>(total) : 1.0, total_ok, total);

  std::printf("\n%-8s %7s %7s %8s %11s %10s %9s %9s\n", "client", "calls", "ok", "timeout", "unavailable",
              "overloaded", "p50", "p99");
  for (const std::string& z : zones) {
    uint64_t n = 0, ok = 0, to = 0, un = 0, ov = 0;
    std::vector<int64_t> lat;
    for (const rpc::CallRecord& r : outcomes[z]) {
      ++n;
      switch (r.code) {
        case rpc::StatusCode::ok: ++ok; lat.push_back(r.latency.ns()); break;
        case rpc::StatusCode::timeout: ++to; break;
        case rpc::StatusCode::unavailable: ++un; break;
        case rpc::StatusCode::overloaded: ++ov; break;
        default: break;
      }
    }
    std::printf("%-8s %7llu %7llu %8llu %11llu %10llu %9s %9s\n", z.c_str(), static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(ok), static_cast<unsigned long long>(to),
                static_cast<unsigned long long>(un), static_cast<unsigned long long>(ov),
                to_string(percentile(lat, 0.50)).c_str(), to_string(percentile(lat, 0.99)).c_str());
  }

  std::printf("\nrouting (each client's current incarnation):\n");
  for (size_t i = 0; i < clients.size(); ++i) {
    const rpc::LoadClient* c = sim.node_as<rpc::LoadClient>(clients[i]);
    if (!c) continue;
    const rpc::Router::Stats& st = c->router().stats();
    std::printf("  client-%s: %llu calls, %llu attempts, %llu retries, %llu fail-overs to another zone\n",
                zones[i].c_str(), static_cast<unsigned long long>(st.calls), static_cast<unsigned long long>(st.attempts),
                static_cast<unsigned long long>(st.retries), static_cast<unsigned long long>(st.failovers));
  }
  std::printf("servers (current incarnation):\n");
  for (size_t i = 0; i < servers.size(); ++i) {
    echo::RpcEchoServer* s = sim.node_as<echo::RpcEchoServer>(servers[i]);
    if (!s) continue;
    const auto& st = s->endpoint().server_stats();
    std::printf("  echo-%s (incarnation %u): %llu served, %llu rejected, queueing signal %s\n", zones[i].c_str(),
                sim.incarnation(servers[i]), static_cast<unsigned long long>(st.served_ok),
                static_cast<unsigned long long>(st.rejected_on_arrival + st.rejected_after_queueing),
                to_string(s->endpoint().overload_signal()).c_str());
  }
  const auto& ns = sim.network().stats();
  std::printf("\nnetwork: %llu frames sent, %llu delivered, %llu lost (%llu to blocks), %llu resets\n",
              static_cast<unsigned long long>(ns.frames_sent), static_cast<unsigned long long>(ns.frames_delivered),
              static_cast<unsigned long long>(ns.frames_lost), static_cast<unsigned long long>(ns.frames_dropped_blocked),
              static_cast<unsigned long long>(ns.resets));
  std::printf("kernel:  %llu events\n", static_cast<unsigned long long>(sim.kernel().events_executed()));
  std::printf("trace hash: %016llx\n", static_cast<unsigned long long>(sim.trace_hash()));
  fmt::print("reproduce:  wxsim demo --seed {} --duration {} --rate {} --attempts {}\n", opt.seed, opt.duration,
             opt.rate, opt.attempts);

  if (!opt.trace_out.empty()) {
    std::ofstream out(opt.trace_out);
    if (!out) {
      std::fprintf(stderr, "wxsim demo: --trace-out '%s': cannot open for writing\n", opt.trace_out.c_str());
      return 2;
    }
    sim.kernel().trace().write_text(out);
    std::printf("trace:      %zu records written to %s\n", sim.kernel().trace().records().size(), opt.trace_out.c_str());
  }
  return 0;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the default outage scenario in simulation (zone outage, crash, partition) and print its report");
  cmd->add_option("--seed", opt->seed, "Root seed of the run")->capture_default_str();
  cmd->add_option("--duration", opt->duration, "Simulated time to run (e.g. 10s, 1m30s)")->capture_default_str();
  cmd->add_option("--rate", opt->rate, "Calls per second issued by each client")->capture_default_str();
  cmd->add_option("--attempts", opt->attempts, "Attempts per call (1 turns retries and fail-over off)")
      ->capture_default_str();
  cmd->add_option("--trace-out", opt->trace_out, "Write the event trace (text) to this file");
  cmd->add_option("--log-level", opt->log_level, "debug, info, warn, error or off")->capture_default_str();
  cmd->callback([opt, &exit_code] { exit_code = run_demo(*opt); });
}

}  // namespace wx::cli
