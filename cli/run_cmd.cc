// `wxsim run SCENARIO.yaml`: one scenario, one seed (docs/scenarios.md).
//
// Reads and validates the whole file first (a bad file: `file:line:column:
// what was expected` on stderr, exit 2). Then runs it in simulation, prints
// the human summary (phases, faults, availability and latency per phase, the
// expectations' verdicts, the trace hash) and, with --out DIR, writes
//   report.json   seed, trace hash, every expectation's verdict and evidence
//                 (deterministic: the same seed gives the same bytes);
//   trace.json    Chrome trace-event JSON for Perfetto: a track per node, an
//                 arrow per RPC (up to --trace-spans), fault markers;
//   metrics.csv   per-second counters per zone and service;
//   history.jsonl the recorded history the verdicts were computed from;
//   timing.json   wall-clock figures of this run (not deterministic).
// Exit 0: every expectation holds; 1: one failed (or the run failed);
// 2: bad input.
//
// --check: validate only. --check-determinism: run twice, compare the traces
// event by event, and name the first event where they diverge.
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "checkers/history_json.h"
#include "cli/commands.h"
#include "sim/scenario/run.h"
#include "sim/scenario/scenario.h"

namespace wx::cli {

namespace {

namespace sc = wx::scenario;

struct RunCmdOptions {
  std::string file;
  std::string seed;
  bool swarm = false;
  std::string out;
  bool quiet = false;
  bool check = false;
  bool check_determinism = false;
  std::string log_level = "warn";
  std::string trace_spans = "100000";
};

int bad(const std::string& what) {
  fmt::print(stderr, "wxsim run: {}\n", what);
  return 2;
}

std::optional<LogLevel> parse_level(const std::string& s) {
  if (s == "debug") return LogLevel::debug;
  if (s == "info") return LogLevel::info;
  if (s == "warn") return LogLevel::warn;
  if (s == "error") return LogLevel::error;
  if (s == "off") return LogLevel::off;
  return std::nullopt;
}

bool write_file(const std::filesystem::path& path, const std::string& bytes, std::string* why) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  f.close();
  if (!f) {
    *why = fmt::format("cannot write {}", path.string());
    return false;
  }
  return true;
}

// Runs twice and compares the traces record by record.
int check_determinism(const sc::Scenario& scenario, sc::RunOptions options) {
  constexpr size_t kRecords = 20'000'000;
  options.trace_records_max = kRecords;
  sc::ScenarioRun a(scenario, options);
  a.run();
  sc::ScenarioRun b(scenario, options);
  b.run();
  if (std::string d = sc::first_divergence(a.sim().kernel().trace(), b.sim().kernel().trace()); !d.empty()) {
    fmt::print("NOT DETERMINISTIC: {}\n", d);
    return 1;
  }
  if (a.report_json() != b.report_json()) {
    fmt::print("NOT DETERMINISTIC: same trace ({:016x}) but different reports\n", a.trace_hash());
    return 1;
  }
  fmt::print("deterministic: two runs of seed {} gave the same {} events (trace hash {:016x}) and the same report\n",
             a.seed(), a.events(), a.trace_hash());
  return a.passed() ? 0 : 1;
}

int run_scenario(const RunCmdOptions& opt) {
  auto loaded = sc::load_scenario(opt.file);
  if (const auto* err = std::get_if<sc::ScenarioError>(&loaded)) {
    fmt::print(stderr, "{}\n", err->text());
    return 2;
  }
  const sc::Scenario& scenario = std::get<sc::Scenario>(loaded);
  if (opt.check) {
    fmt::print("{}: scenario '{}' is valid ({} faults{})\n", opt.file, scenario.name, scenario.faults.size(),
               scenario.random_faults ? ", random fault phase" : "");
    return 0;
  }
  sc::RunOptions ro;
  ro.swarm = opt.swarm;
  if (!opt.seed.empty()) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(opt.seed.data(), opt.seed.data() + opt.seed.size(), v);
    if (ec != std::errc() || p != opt.seed.data() + opt.seed.size()) {
      return bad(fmt::format("--seed '{}': expected an unsigned 64-bit integer", opt.seed));
    }
    ro.seed = v;
  }
  const auto level = parse_level(opt.log_level);
  if (!level) return bad(fmt::format("--log-level '{}': expected debug, info, warn, error or off", opt.log_level));
  ro.log_level = *level;
  {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(opt.trace_spans.data(), opt.trace_spans.data() + opt.trace_spans.size(), v);
    if (ec != std::errc() || p != opt.trace_spans.data() + opt.trace_spans.size() || v > 10'000'000) {
      return bad(fmt::format("--trace-spans '{}': expected a whole number from 0 to 10000000", opt.trace_spans));
    }
    ro.trace_spans_max = v;
  }
  std::filesystem::path out;
  if (!opt.out.empty()) {
    ro.record_files = true;
    out = opt.out;
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec || !std::filesystem::is_directory(out)) {
      return bad(fmt::format("--out '{}': cannot create the directory ({})", opt.out, ec.message()));
    }
  }
  if (opt.check_determinism) return check_determinism(scenario, ro);

  const auto wall0 = std::chrono::steady_clock::now();
  std::unique_ptr<sc::ScenarioRun> run;
  try {
    run = std::make_unique<sc::ScenarioRun>(scenario, ro);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
  run->run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  if (!opt.quiet) {
    fmt::print("{}", run->summary());
    const double sim_s = static_cast<double>(run->simulated().ns()) / 1e9;
    fmt::print("wall {:.1f}s: {:.1f} simulated s per wall s, {:.0f} events/s\n", wall, sim_s / wall,
               static_cast<double>(run->events()) / wall);
    if (!run->passed()) {
      fmt::print("reproduce: {}\n", sc::reproduction_line("wxsim", opt.file, run->seed(), opt.swarm));
    }
  } else {
    fmt::print("{} seed {} trace {:016x}\n", run->passed() ? "PASS" : "FAIL", run->seed(), run->trace_hash());
  }
  if (!out.empty()) {
    std::string why;
    const double sim_s = static_cast<double>(run->simulated().ns()) / 1e9;
    const std::string timing =
        fmt::format("{{\"wall_seconds\": {:.3f}, \"simulated_per_wall\": {:.3f}, \"events_per_second\": {:.0f}}}\n",
                    wall, sim_s / wall, static_cast<double>(run->events()) / wall);
    if (!write_file(out / "report.json", run->report_json(), &why) || !write_file(out / "timing.json", timing, &why)) {
      fmt::print(stderr, "wxsim run: {}\n", why);
      return 1;
    }
    try {
      {
        std::ofstream t(out / "trace.json", std::ios::binary | std::ios::trunc);
        run->write_trace_json(t);
        std::ofstream m(out / "metrics.csv", std::ios::binary | std::ios::trunc);
        run->write_metrics_csv(m);
        if (!t || !m) throw std::runtime_error(fmt::format("cannot write trace.json / metrics.csv in {}", out.string()));
      }
      checkers::messaging::write_history_file((out / "history.jsonl").string(), run->outage().history());
    } catch (const std::exception& e) {
      fmt::print(stderr, "wxsim run: {}\n", e.what());
      return 1;
    }
  }
  return run->passed() ? 0 : 1;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<RunCmdOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run an outage scenario (YAML) in simulation and judge it");
  cmd->add_option("scenario", opt->file, "The scenario file (scenarios/*.yaml)")->required();
  cmd->add_option("--seed", opt->seed, "Root seed (default: the scenario's `seed`)");
  cmd->add_flag("--swarm", opt->swarm, "Draw the random fault phase's kinds, targets and rate from the seed");
  cmd->add_option("--out", opt->out,
                  "Write report.json, trace.json (Perfetto), metrics.csv, history.jsonl and timing.json into this "
                  "directory");
  cmd->add_option("--trace-spans", opt->trace_spans, "RPC calls drawn in trace.json (later ones are only counted)")
      ->capture_default_str();
  cmd->add_flag("--quiet", opt->quiet, "One line instead of the summary");
  cmd->add_flag("--check", opt->check, "Only validate the scenario file (exit 0 or 2)");
  cmd->add_flag("--check-determinism", opt->check_determinism,
                "Run twice and name the first event where the runs diverge (exit 1 if they do)");
  cmd->add_option("--log-level", opt->log_level, "debug, info, warn, error or off")->capture_default_str();
  cmd->callback([opt, &exit_code] { exit_code = run_scenario(*opt); });
}

}  // namespace wx::cli
