// What the run recorder costs (sim/report/, docs/run-files.md): the messaging
// outage run of `wxsim demo` (default flags) without a recorder, with one,
// and with one plus writing trace.json and metrics.csv to memory; the
// process's CPU time (less disturbed than wall time on a shared machine),
// kernel events per CPU second and the files' sizes, best of `--repeat` runs
// each (interleaved). The trace hash is printed for each mode: it must be the
// same.
//
//   build/bench/report_bench [--users 200] [--groups 10] [--repeat 3]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>

#include "sim/report/run_files.h"
#include "sim/report/run_recorder.h"
#include "sim/workload/outage_run.h"

namespace {

using namespace wx;

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

struct Result {
  double cpu_s = 0;
  uint64_t events = 0;
  uint64_t hash = 0;
  size_t trace_bytes = 0, csv_bytes = 0;
  uint64_t calls = 0, calls_recorded = 0;
  double write_s = 0;
};

enum class Mode { plain, recorded, written };

Result run_once(const sim::workload::OutageRunConfig& config, Mode mode) {
  sim::workload::OutageRun run(config);
  std::optional<sim::report::RunRecorder> rec;
  const double t0 = cpu_seconds();
  if (mode != Mode::plain) rec.emplace(run.sim(), run.deployment());
  std::string why;
  if (!run.run(&why)) {
    std::fprintf(stderr, "run failed: %s\n", why.c_str());
    std::exit(1);
  }
  const double t1 = cpu_seconds();
  Result r;
  r.cpu_s = t1 - t0;
  r.events = run.sim().kernel().events_executed();
  r.hash = run.sim().trace_hash();
  if (mode == Mode::written) {
    std::ostringstream t, m;
    sim::report::write_trace_json(t, *rec);
    sim::report::write_metrics_csv(m, *rec);
    r.trace_bytes = t.str().size();
    r.calls = rec->rpc_stats().calls;
    r.calls_recorded = rec->rpc_stats().recorded;
    r.csv_bytes = m.str().size();
    r.write_s = cpu_seconds() - t1;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  sim::workload::OutageRunConfig config;  // wxsim demo's defaults
  config.log_level = LogLevel::off;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--users") == 0) {
      config.users = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--groups") == 0) {
      config.groups = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--repeat") == 0) {
      repeat = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: report_bench [--users N] [--groups N] [--repeat N]\n");
      return 2;
    }
  }
  Result best[3];
  for (int k = 0; k < repeat; ++k) {
    for (Mode m : {Mode::plain, Mode::recorded, Mode::written}) {
      const Result r = run_once(config, m);
      Result& b = best[static_cast<int>(m)];
      if (k == 0 || r.cpu_s < b.cpu_s) b = r;
    }
  }
  static const char* kNames[] = {"no recorder", "recorder", "recorder + files"};
  for (int m = 0; m < 3; ++m) {
    const Result& r = best[m];
    std::printf("%-17s  run %6.2f s CPU  %9.0f events/s  %+5.1f %%  trace hash %016llx", kNames[m], r.cpu_s,
                static_cast<double>(r.events) / r.cpu_s, 100.0 * (r.cpu_s / best[0].cpu_s - 1),
                static_cast<unsigned long long>(r.hash));
    if (m == 2) {
      std::printf("  write %.2f s: trace.json %.1f MB (%llu of %llu calls), metrics.csv %.1f MB", r.write_s,
                  r.trace_bytes / 1e6, static_cast<unsigned long long>(r.calls_recorded),
                  static_cast<unsigned long long>(r.calls), r.csv_bytes / 1e6);
    }
    std::printf("\n");
  }
  return best[0].hash == best[1].hash && best[1].hash == best[2].hash ? 0 : 1;
}
