// `wxsim sweep` and `wxsim sweep-merge` (docs/sweeps.md).
//
// sweep: one scenario over a range of seeds (or one shard of it), each seed a
// child process `wxsim run FILE --seed N [--swarm] --out DIR/seed-N --quiet`
// (this same executable, /proc/self/exe), at most --jobs at once. The scenario
// is validated once first (`wxsim run FILE --check`). A progress bar with an
// ETA is drawn only when stdout is a terminal; otherwise a line is printed
// per failing seed as it finishes. At the end: DIR/sweep.json
// (cli/sweep_record.h), a summary and every failing seed with the exact
// command that reproduces it. Exit 0: every seed passed; 1: a seed failed or
// crashed; 2: bad input (flags, scenario file, output directory). SIGINT or
// SIGTERM stops the children, writes the partial record (complete: false)
// and exits 128 + the signal.
//
// Children run in process groups of their own, so a Ctrl-C at the terminal
// reaches only the sweep, which then stops them; their stdout and stderr go
// to DIR/seed-N/run.log. The parent waits for SIGCHLD, SIGINT and SIGTERM
// with sigtimedwait (all three blocked; the children get an empty mask and
// default dispositions), so there are no signal handlers and no races.
//
// sweep-merge: several shards' sweep.json as one; checks they are shards of
// one sweep and that together they cover its range exactly once.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/sweep_plan.h"
#include "cli/sweep_record.h"

extern char** environ;

namespace wx::cli {

namespace {

namespace fs = std::filesystem;
using namespace wx::cli::sweep;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// How many failing seeds the summary lists (all are in sweep.json).
constexpr size_t kFailuresShownMax = 50;
// How long the scenario check (`wxsim run FILE --check`) may take.
constexpr auto kCheckTimeout = std::chrono::seconds(120);
// After SIGTERM, how long interrupted children get before SIGKILL.
constexpr auto kStopGrace = std::chrono::seconds(3);
// A report.json larger than this is not read (it is a summary, not a trace).
constexpr uintmax_t kReportBytesMax = 64u << 20;

struct SweepOptions {
  std::string file;
  std::string seeds;
  std::string jobs;
  std::string shard;
  std::string out;
  bool swarm = false;
  bool keep_passing = false;
};

int bad(const std::string& message) {
  fmt::print(stderr, "wxsim sweep: {}\n", message);
  return 2;
}

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signo);
}

std::string duration_text(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto s = static_cast<uint64_t>(seconds + 0.5);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
}

uint64_t cpus_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<uint64_t>(n);
  }
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<uint64_t>(n) : 1;
}

// Starts `program args...` in a process group of its own, stdin from
// /dev/null, stdout and stderr to `log_fd` (when >= 0) or to `log_path`
// (created, truncated), with an empty signal mask and default dispositions.
// Returns the pid, or nullopt with `error` set.
std::optional<pid_t> spawn_child(const std::string& program, const std::vector<std::string>& args, int log_fd,
                                 const std::string& log_path, std::string& error) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (log_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGHUP}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    error = fmt::format("cannot start {}: {}", program, std::strerror(rc));
    return std::nullopt;
  }
  return pid;
}

// The executable to run children with: this one.
std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : p.string();
}

// `wxsim run FILE --check`: nullopt when the scenario is valid; else the
// check's own output is copied to stderr and the message to print (exit 2)
// returned.
std::optional<std::string> check_scenario(const std::string& exe, const std::string& file) {
  std::FILE* out = std::tmpfile();
  if (!out) return fmt::format("cannot create a temporary file: {}", std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(out, &std::fclose);
  std::string error;
  const std::optional<pid_t> pid = spawn_child(exe, {"run", file, "--check"}, ::fileno(out), {}, error);
  if (!pid) return error;
  const auto deadline = Clock::now() + kCheckTimeout;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(*pid, &status, WNOHANG);
    if (r == *pid) break;
    if (r < 0 && errno != EINTR) return fmt::format("waiting for the scenario check: {}", std::strerror(errno));
    if (Clock::now() >= deadline) {
      ::kill(*pid, SIGKILL);
      ::waitpid(*pid, &status, 0);
      return fmt::format("checking '{}' (wxsim run {} --check) did not finish in {}s", file, shell_quote(file),
                         std::chrono::duration_cast<std::chrono::seconds>(kCheckTimeout).count());
    }
    ::usleep(10'000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::nullopt;
  std::string text;
  std::rewind(out);
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0 && text.size() < (1u << 20)) text.append(buf, n);
  if (!text.empty() && text.back() != '\n') text += '\n';
  // The check's own message (file:line:col: ...) first, as it wrote it.
  std::fwrite(text.data(), 1, text.size(), stderr);
  const std::string how = WIFEXITED(status) ? fmt::format("exited {}", WEXITSTATUS(status))
                                            : fmt::format("was killed by {}", signal_name(WTERMSIG(status)));
  return fmt::format("scenario '{}' is not valid: `wxsim run {} --check` {}", file, shell_quote(file), how);
}

// The seed's report.json, read into `r` (trace hash, failed expectations);
// empty on success, else what is wrong with it.
std::string read_report(const fs::path& path, uint64_t seed, SeedResult& r, bool& passed, std::string& scenario) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return "no report.json";
  if (size > kReportBytesMax) return fmt::format("report.json is larger than {} bytes", kReportBytesMax);
  std::ifstream in(path);
  json j;
  try {
    j = json::parse(in);
    if (j.at("seed").get<uint64_t>() != seed) {
      return fmt::format("report.json is of seed {}, not {}", j.at("seed").dump(), seed);
    }
    passed = j.at("passed").get<bool>();
    const std::string hash = j.at("trace_hash").get<std::string>();
    const bool hex16 = hash.size() == 16 && std::all_of(hash.begin(), hash.end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    if (!hex16) return fmt::format("report.json: trace_hash '{}' is not 16 hex digits", hash);
    r.trace_hash = hash;
    if (j.contains("scenario") && j["scenario"].is_string()) scenario = j["scenario"].get<std::string>();
    if (j.contains("expectations") && j["expectations"].is_array()) {
      for (const json& e : j["expectations"]) {
        if (e.is_object() && e.value("passed", true) == false) {
          r.failed_expectations.push_back(e.value("name", std::string("?")));
        }
      }
    }
  } catch (const json::exception& e) {
    return fmt::format("report.json unreadable: {}", e.what());
  }
  return {};
}

// "failed: expectations a, b" / "crashed: killed by SIGSEGV" ...
std::string describe(const SeedResult& r) {
  std::string d = to_string(r.status);
  if (r.signal) {
    d += ": killed by " + *r.signal;
  } else if (r.status == Status::crashed && r.exit_code) {
    d += fmt::format(": exit {}", *r.exit_code);
  }
  if (!r.failed_expectations.empty()) {
    d += r.failed_expectations.size() == 1 ? ": expectation " : ": expectations ";
    for (size_t i = 0; i < r.failed_expectations.size(); ++i) d += (i ? ", " : "") + r.failed_expectations[i];
  }
  if (!r.note.empty()) d += " (" + r.note + ")";
  return d;
}

bool write_json_file(const fs::path& path, const nlohmann::ordered_json& j, std::string& error) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << '\n';
    out.flush();
    if (!out) {
      error = fmt::format("cannot write {}", tmp.string());
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    error = fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
    return false;
  }
  return true;
}

void print_failures(const SweepRecord& record, const std::string& dir_hint) {
  size_t shown = 0, failing = 0;
  for (const SeedResult& r : record.results) failing += r.status != Status::passed;
  if (failing == 0) return;
  fmt::print("failing seeds{}:\n", dir_hint);
  for (const SeedResult& r : record.results) {
    if (r.status == Status::passed) continue;
    if (shown++ == kFailuresShownMax) {
      fmt::print("  ... and {} more (every one in sweep.json)\n", failing - kFailuresShownMax);
      break;
    }
    fmt::print("  seed {}: {}{}\n", r.seed, describe(r),
               r.trace_hash ? fmt::format(", trace hash {}", *r.trace_hash) : std::string());
    fmt::print("    reproduce: {}\n", reproduce_line(record.program, record.file, r.seed, record.swarm));
  }
}

void print_tally(const Tally& t, double wall_seconds) {
  fmt::print("{} seed{} run in {} wall: {} passed, {} failed ({} crashed)", t.run, t.run == 1 ? "" : "s",
             duration_text(wall_seconds), t.passed, t.failed, t.crashed);
  if (t.cpu_seconds > 0 && t.run > 0) {
    fmt::print("; {:.0f} seeds per CPU-hour", static_cast<double>(t.run) * 3600.0 / t.cpu_seconds);
  }
  fmt::print("\n");
}

// --- the sweep --------------------------------------------------------------------------------

struct Running {
  uint64_t seed;
  Clock::time_point started;
  fs::path dir;
};

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  void draw(uint64_t done, uint64_t total, uint64_t failed, uint64_t running, double elapsed_s) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = total == 0 ? kWidth : static_cast<int>(static_cast<double>(done) * kWidth / total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string eta = "--";
    if (done > 0 && done < total) eta = duration_text(elapsed_s * static_cast<double>(total - done) / done);
    if (done == total) eta = "0s";
    fmt::print("\r[{}] {}/{} seeds, {} failed, {} running, {} elapsed, ETA {}\x1b[K", bar, done, total, failed,
               running, duration_text(elapsed_s), eta);
    std::fflush(stdout);
  }
  // Clears the bar's line so that a normal line can be printed.
  void clear() {
    if (!enabled_) return;
    fmt::print("\r\x1b[K");
    std::fflush(stdout);
  }

 private:
  bool enabled_;
};

int run_sweep(const SweepOptions& o, const std::string& program) {
  // --- validation: every flag, then the output directory, then the scenario --------------
  if (o.file.empty()) return bad("SCENARIO: expected the scenario file (YAML) to sweep");
  if (o.seeds.empty()) return bad("--seeds: required, A..B (inclusive) or one seed N, such as --seeds 1..1000");
  const Parsed<SeedRange> seeds = parse_seed_range(o.seeds);
  if (!seeds) return bad(fmt::format("--seeds '{}': {}", o.seeds, seeds.error));
  Shard shard{0, 1};
  if (!o.shard.empty()) {
    const Parsed<Shard> s = parse_shard(o.shard);
    if (!s) return bad(fmt::format("--shard '{}': {}", o.shard, s.error));
    shard = *s;
  }
  uint64_t jobs = cpus_available();
  if (!o.jobs.empty()) {
    const Parsed<uint64_t> j = parse_seed(o.jobs);
    if (!j || *j < 1 || *j > kJobsMax) {
      return bad(fmt::format("--jobs '{}': expected 1 to {} child processes at once", o.jobs, kJobsMax));
    }
    jobs = *j;
  }
  const std::optional<SeedRange> slice = shard_slice(*seeds, shard);
  if (slice && slice->size() > kSeedsPerInvocationMax) {
    return bad(fmt::format("--seeds {}{}: {} seeds for one invocation, at most {}; split the sweep with --shard I/N",
                           to_string(*seeds), shard.count > 1 ? " --shard " + to_string(shard) : std::string(),
                           count_text(slice->size()), kSeedsPerInvocationMax));
  }
  const std::string stem = fs::path(o.file).stem().string();
  fs::path out = o.out;
  if (out.empty()) {
    out = shard.count == 1 ? fmt::format("sweep-{}", stem)
                           : fmt::format("sweep-{}-shard-{}-of-{}", stem, shard.index, shard.count);
  }
  {
    std::error_code ec;
    const fs::file_status st = fs::status(out, ec);
    if (fs::exists(st)) {
      if (!fs::is_directory(st)) return bad(fmt::format("--out '{}': exists and is not a directory", out.string()));
      if (!fs::is_empty(out, ec) || ec) {
        return bad(fmt::format("--out '{}': exists and is not empty; a sweep writes seed-N/ and sweep.json into a "
                               "directory of its own (remove it, or choose another with --out)",
                               out.string()));
      }
    }
  }
  const std::string exe = self_exe();
  if (std::optional<std::string> why = check_scenario(exe, o.file)) return bad(*why);
  // From here SIGINT and SIGTERM stay pending until the loop below takes
  // them (sigtimedwait), so an interrupt always ends in the partial summary.
  sigset_t waited, previous;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &waited, &previous);
  {
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) {
      ::sigprocmask(SIG_SETMASK, &previous, nullptr);
      return bad(fmt::format("--out '{}': cannot create: {}", out.string(), ec.message()));
    }
  }

  SweepRecord record;
  record.file = o.file;
  record.program = program;
  record.swarm = o.swarm;
  record.seeds = *seeds;
  record.shard = shard;
  record.slice = slice;
  record.jobs = jobs;
  const uint64_t total = slice ? static_cast<uint64_t>(slice->size()) : 0;

  fmt::print("wxsim sweep: {} seeds {}{}{}: {} to run, {} at a time, results in {}/\n", o.file, to_string(*seeds),
             shard.count > 1 ? fmt::format(" shard {} ({})", to_string(shard), slice ? to_string(*slice) : "none")
                             : std::string(),
             o.swarm ? " --swarm" : "", total, std::min(jobs, std::max<uint64_t>(total, 1)), out.string());
  std::fflush(stdout);

  // --- running ----------------------------------------------------------------------------
  ProgressBar bar(::isatty(STDOUT_FILENO) == 1);
  const auto t0 = Clock::now();
  std::map<pid_t, Running> running;
  uint64_t launched = 0, failed = 0;
  int interrupted_by = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  auto finish = [&](pid_t pid, int status, const rusage& ru) {
    auto it = running.find(pid);
    if (it == running.end()) return;  // not one of ours
    const Running run = it->second;
    running.erase(it);
    SeedResult r;
    r.seed = run.seed;
    r.wall_seconds = std::chrono::duration<double>(Clock::now() - run.started).count();
    r.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    bool report_passed = false;
    std::string scenario;
    if (WIFSIGNALED(status)) {
      r.status = Status::crashed;
      r.signal = signal_name(WTERMSIG(status));
    } else {
      const int code = WEXITSTATUS(status);
      r.exit_code = code;
      if (code == 0 || code == 1) {
        const std::string problem = read_report(run.dir / "report.json", run.seed, r, report_passed, scenario);
        if (code == 0) {
          r.status = problem.empty() && report_passed ? Status::passed : Status::crashed;
          if (!problem.empty()) {
            r.note = "exit 0 but " + problem;
          } else if (!report_passed) {
            r.note = "exit 0 but report.json says it did not pass";
          }
        } else {
          r.status = Status::failed;
          r.note = problem;
        }
      } else {
        r.status = Status::crashed;
        read_report(run.dir / "report.json", run.seed, r, report_passed, scenario);
      }
    }
    if (record.scenario.empty() && !scenario.empty()) record.scenario = scenario;
    if (r.status == Status::passed && !o.keep_passing) {
      std::error_code ec;
      fs::remove_all(run.dir, ec);
    }
    if (r.status != Status::passed) {
      ++failed;
      bar.clear();
      fmt::print("seed {} {} [{}]\n", r.seed, describe(r), (run.dir / "run.log").string());
      std::fflush(stdout);
    }
    record.results.push_back(std::move(r));
  };

  auto reap = [&] {
    for (;;) {
      int status = 0;
      rusage ru{};
      const pid_t pid = ::wait4(-1, &status, WNOHANG, &ru);
      if (pid <= 0) break;
      finish(pid, status, ru);
    }
  };

  std::string spawn_error;
  while (launched < total || !running.empty()) {
    while (launched < total && running.size() < jobs && spawn_error.empty()) {
      const uint64_t seed = slice->first + launched;
      const fs::path dir = out / fmt::format("seed-{}", seed);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) {
        spawn_error = fmt::format("cannot create {}: {}", dir.string(), ec.message());
        break;
      }
      std::vector<std::string> args = {"run", o.file, "--seed", fmt::format("{}", seed)};
      if (o.swarm) args.push_back("--swarm");
      for (const char* a : {"--out", dir.c_str(), "--quiet"}) args.emplace_back(a);
      const std::optional<pid_t> pid = spawn_child(exe, args, -1, (dir / "run.log").string(), spawn_error);
      if (!pid) {
        fs::remove_all(dir, ec);
        break;
      }
      running.emplace(*pid, Running{seed, Clock::now(), dir});
      ++launched;
    }
    if (!spawn_error.empty() && running.empty()) break;
    bar.draw(record.results.size(), total, failed, running.size(), elapsed());
    // Wait for a child to exit (SIGCHLD), an interrupt or the next redraw.
    // Every reap takes all exited children, so a child exiting after it
    // leaves SIGCHLD pending and the next wait returns at once; SIGINT and
    // SIGTERM are taken before SIGCHLD (lower numbers first), so finishing
    // seeds cannot delay an interrupt.
    const timespec timeout{0, bar.enabled() ? 250'000'000 : 999'999'999};
    siginfo_t info;
    const int signo = ::sigtimedwait(&waited, &info, &timeout);
    if (signo == SIGINT || signo == SIGTERM) {
      interrupted_by = signo;
      break;
    }
    reap();
  }

  if (interrupted_by != 0 || !spawn_error.empty()) {
    // Stop what still runs; its seeds are not recorded (they did not finish).
    for (const auto& [pid, run] : running) ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + kStopGrace;
    while (!running.empty() && Clock::now() < deadline) {
      for (;;) {
        int status = 0;
        rusage ru{};
        const pid_t pid = ::wait4(-1, &status, WNOHANG, &ru);
        if (pid <= 0) break;
        auto it = running.find(pid);
        if (it == running.end()) continue;
        std::error_code ec;
        fs::remove_all(it->second.dir, ec);
        running.erase(it);
      }
      if (!running.empty()) ::usleep(20'000);
    }
    for (const auto& [pid, run] : running) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      std::error_code ec;
      fs::remove_all(run.dir, ec);
    }
    running.clear();
    record.complete = false;
  }
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  bar.clear();

  std::sort(record.results.begin(), record.results.end(),
            [](const SeedResult& a, const SeedResult& b) { return a.seed < b.seed; });
  record.wall_seconds = elapsed();
  std::string write_error;
  const bool written = write_json_file(out / "sweep.json", to_json(record), write_error);

  // --- summary ----------------------------------------------------------------------------
  const Tally t = tally(record.results);
  if (!record.scenario.empty()) fmt::print("scenario '{}' ({})\n", record.scenario, o.file);
  if (!slice) {
    fmt::print("shard {} of seeds {} holds no seeds (more shards than seeds): nothing to run\n", to_string(shard),
               to_string(*seeds));
  }
  if (interrupted_by != 0) {
    fmt::print("INTERRUPTED by {}: {} of {} seeds finished; the unfinished ones are not recorded\n",
               signal_name(interrupted_by), t.run, total);
  }
  if (!spawn_error.empty()) fmt::print("STOPPED: {}; {} of {} seeds finished\n", spawn_error, t.run, total);
  print_tally(t, record.wall_seconds);
  print_failures(record, fmt::format(" (logs and reports in {}/seed-N/)", out.string()));
  if (written) {
    fmt::print("results: {}\n", (out / "sweep.json").string());
  } else {
    fmt::print(stderr, "wxsim sweep: {}\n", write_error);
  }
  std::fflush(stdout);
  if (interrupted_by != 0) return 128 + interrupted_by;
  if (!spawn_error.empty() || !written) return 1;
  return t.failed == 0 ? 0 : 1;
}

// --- the merge ----------------------------------------------------------------------------------

struct MergeOptions {
  std::vector<std::string> inputs;
  std::string out;
};

int bad_merge(const std::string& message) {
  fmt::print(stderr, "wxsim sweep-merge: {}\n", message);
  return 2;
}

std::string ranges_text(const std::vector<SeedRange>& ranges) {
  constexpr size_t kShown = 20;
  std::string s;
  for (size_t i = 0; i < ranges.size() && i < kShown; ++i) s += (i ? ", " : "") + to_string(ranges[i]);
  if (ranges.size() > kShown) s += fmt::format(" and {} more ranges", ranges.size() - kShown);
  return s;
}

int run_merge(const MergeOptions& o) {
  if (o.inputs.empty()) return bad_merge("expected one or more sweep directories (or sweep.json files)");
  std::vector<SweepRecord> records;
  for (const std::string& input : o.inputs) {
    fs::path path = input;
    std::error_code ec;
    if (fs::is_directory(path, ec)) path /= "sweep.json";
    std::ifstream in(path);
    if (!in) return bad_merge(fmt::format("'{}': cannot read {}", input, path.string()));
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      return bad_merge(fmt::format("'{}': not JSON: {}", path.string(), e.what()));
    }
    Parsed<SweepRecord> r = record_from_json(j);
    if (!r) return bad_merge(fmt::format("'{}': {}", path.string(), r.error));
    records.push_back(std::move(*r.value));
  }
  const Merge m = merge(records);
  if (!m.error.empty()) return bad_merge(m.error);
  const SweepRecord& r = m.merged;
  const uint64_t shards = records.front().shard->count;

  fmt::print("wxsim sweep-merge: {} record{} of {}{} seeds {}{}, {} shard{}\n", records.size(),
             records.size() == 1 ? "" : "s", r.file,
             r.scenario.empty() ? std::string() : fmt::format(" (scenario '{}')", r.scenario), to_string(r.seeds),
             r.swarm ? " --swarm" : "", shards, shards == 1 ? "" : "s");
  for (const std::string& note : m.notes) fmt::print("note: {}\n", note);
  bool incomplete = false;
  if (!m.shards_absent.empty()) {
    incomplete = true;
    std::string list;
    for (size_t i = 0; i < m.shards_absent.size(); ++i) {
      list += fmt::format("{}{}/{}", i ? ", " : "", m.shards_absent[i], shards);
    }
    fmt::print("INCOMPLETE: shard{} {} absent\n", m.shards_absent.size() == 1 ? "" : "s", list);
  }
  for (uint64_t index : m.shards_repeated) {
    incomplete = true;
    fmt::print("INCOMPLETE: shard {}/{} given more than once\n", index, shards);
  }
  for (const SweepRecord& rec : records) {
    if (!rec.complete) {
      incomplete = true;
      fmt::print("INCOMPLETE: shard {} was interrupted ({} of {} seeds recorded)\n", to_string(*rec.shard),
                 rec.results.size(), rec.slice ? static_cast<uint64_t>(rec.slice->size()) : 0);
    }
  }
  if (!m.coverage.missing.empty()) {
    incomplete = true;
    fmt::print("INCOMPLETE: seeds missing: {}\n", ranges_text(m.coverage.missing));
  }
  if (!m.coverage.repeated.empty()) {
    incomplete = true;
    fmt::print("INCOMPLETE: seeds covered more than once: {}\n", ranges_text(m.coverage.repeated));
  }
  if (!incomplete) fmt::print("coverage: every seed of {} exactly once\n", to_string(r.seeds));
  const Tally t = tally(r.results);
  print_tally(t, r.wall_seconds);
  print_failures(r, "");
  if (!o.out.empty()) {
    std::string error;
    if (!write_json_file(o.out, to_json(r), error)) return bad_merge(fmt::format("--out '{}': {}", o.out, error));
    fmt::print("merged: {}\n", o.out);
  }
  std::fflush(stdout);
  if (incomplete) {
    fmt::print(stderr, "wxsim sweep-merge: the records do not cover seeds {} exactly once (see above)\n",
               to_string(r.seeds));
    return 2;
  }
  return t.failed == 0 ? 0 : 1;
}

}  // namespace

void add_sweep_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<SweepOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "Run a scenario over many seeds in parallel processes; list the failing seeds with the command that "
               "reproduces each (docs/sweeps.md)");
  cmd->add_option("SCENARIO", opt->file, "The scenario file (YAML), as `wxsim run` takes it")->type_name("FILE");
  cmd->add_option("--seeds", opt->seeds, "Seeds to run: A..B (inclusive) or one seed N (unsigned 64-bit)")
      ->type_name("A..B");
  cmd->add_option("--jobs", opt->jobs, "Child processes at once (default: the CPUs this process may use)")
      ->type_name("N");
  cmd->add_flag("--swarm", opt->swarm, "Pass --swarm to every run: faults drawn per seed");
  cmd->add_option("--shard", opt->shard,
                  "Run only shard I of N (0-based) of the seeds: a contiguous slice; the N shards cover every seed "
                  "exactly once")
      ->type_name("I/N");
  cmd->add_option("--out", opt->out,
                  "Directory for sweep.json and seed-N/ (default sweep-<scenario stem>, "
                  "or sweep-<stem>-shard-I-of-N); must be new or empty")
      ->type_name("DIR");
  cmd->add_flag("--keep-passing", opt->keep_passing,
                "Keep the seed-N/ directories of passing seeds (by default only failing ones are kept)");
  cmd->callback([opt, &app, &exit_code] { exit_code = run_sweep(*opt, app.get_name()); });

  auto mopt = std::make_shared<MergeOptions>();
  CLI::App* merge_cmd = app.add_subcommand(
      "sweep-merge", "Merge the sweep.json of a sweep's shards: check every seed is covered exactly once, list the "
                     "failing seeds (docs/sweeps.md)");
  merge_cmd->add_option("SWEEP", mopt->inputs, "Shard output directories (or their sweep.json files)")
      ->type_name("DIR");
  merge_cmd->add_option("--out", mopt->out, "Write the merged record (sweep.json format) to this file")
      ->type_name("FILE");
  merge_cmd->callback([mopt, &exit_code] { exit_code = run_merge(*mopt); });
}

}  // namespace wx::cli
