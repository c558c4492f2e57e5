// What a sweep records (DIR/sweep.json, docs/sweeps.md "sweep.json") and how
// several shards' records merge (`wxsim sweep-merge`). Pure: JSON in and
// out, no files or processes, so tests/cli/sweep_plan_test.cc checks the
// format and the merge's coverage rules directly.
//
// A seed's status: `passed` (the run exited 0 with a report that passed),
// `failed` (exited 1: an expectation failed or the run failed) or `crashed`
// (killed by a signal, any other exit code, or a run that broke its contract,
// such as exit 0 without a passing report.json). `failed` in the tallies
// counts every seed that did not pass, crashed ones included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/sweep_plan.h"

namespace wx::cli::sweep {

// Identifies the format of sweep.json (and of a merged file).
inline constexpr const char* kSweepFormat = "wxsim-sweep/1";

enum class Status { passed, failed, crashed };
const char* to_string(Status status);
std::optional<Status> parse_status(std::string_view text);

struct SeedResult {
  uint64_t seed = 0;
  Status status = Status::crashed;
  std::optional<int> exit_code;          // when the child exited
  std::optional<std::string> signal;     // "SIGSEGV", when a signal killed it
  std::optional<std::string> trace_hash; // from the seed's report.json (16 hex digits)
  std::vector<std::string> failed_expectations;  // names, from report.json
  std::string note;                      // why a run counts as crashed, or a missing report
  double wall_seconds = 0;
  double cpu_seconds = 0;                // user + system of the child
  friend bool operator==(const SeedResult&, const SeedResult&) = default;
};

struct Tally {
  uint64_t run = 0, passed = 0, failed = 0, crashed = 0;  // failed includes crashed
  double cpu_seconds = 0;
};
Tally tally(const std::vector<SeedResult>& results);

// One sweep.json: a shard's record, or (after sweep-merge) the whole range's.
struct SweepRecord {
  std::string scenario;    // the scenario's name from its reports; empty when no run wrote one
  std::string file;        // the scenario file as given on the command line
  std::string program;     // argv[0] of the sweep, for reproduction lines
  bool swarm = false;
  SeedRange seeds;         // the whole range (--seeds)
  std::optional<Shard> shard;       // --shard; nullopt in a merged record
  std::optional<SeedRange> slice;   // the seeds this record is responsible for; nullopt: none
  bool complete = true;    // false: interrupted before every seed of the slice ran
  uint64_t jobs = 0;
  double wall_seconds = 0;
  std::vector<SeedResult> results;  // sorted by seed
};

// The JSON of a record, with its derived "summary" and "failures" (each
// failure with its reproduction line); keys in a fixed, readable order
// (format and identity first, the per-seed results last).
nlohmann::ordered_json to_json(const SweepRecord& record);
// A record from JSON; an error names the field that is missing or wrong.
Parsed<SweepRecord> record_from_json(const nlohmann::json& j);

// Which seeds of `range` a sorted list of seeds misses or holds more than
// once, as ranges; `outside` are the seeds not in `range` at all.
struct Coverage {
  std::vector<SeedRange> missing;
  std::vector<SeedRange> repeated;
  std::vector<uint64_t> outside;
  bool exact() const { return missing.empty() && repeated.empty() && outside.empty(); }
};
Coverage coverage(SeedRange range, const std::vector<uint64_t>& sorted_seeds);

// Several shards' records as one. `error` (bad input) when they are not of
// one sweep: different scenario, seed range, swarm or shard count. Otherwise
// `merged` holds every result sorted by seed (shard and slice unset, slice
// the whole range), and `coverage` and `shards_absent` say what is missing
// or run twice.
struct Merge {
  std::string error;
  SweepRecord merged;
  Coverage coverage;
  std::vector<uint64_t> shards_absent;    // shard indices no input record is
  std::vector<uint64_t> shards_repeated;  // shard indices more than one input record is
  std::vector<std::string> notes;         // e.g. the scenario file was given by different paths
};
Merge merge(const std::vector<SweepRecord>& records);

}  // namespace wx::cli::sweep
