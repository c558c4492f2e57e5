#include "cli/sweep_record.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace wx::cli::sweep {

using nlohmann::json;

const char* to_string(Status status) {
  switch (status) {
    case Status::passed: return "passed";
    case Status::failed: return "failed";
    case Status::crashed: return "crashed";
  }
  return "crashed";
}

std::optional<Status> parse_status(std::string_view text) {
  for (Status s : {Status::passed, Status::failed, Status::crashed}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

Tally tally(const std::vector<SeedResult>& results) {
  Tally t;
  for (const SeedResult& r : results) {
    ++t.run;
    if (r.status == Status::passed) ++t.passed;
    if (r.status != Status::passed) ++t.failed;
    if (r.status == Status::crashed) ++t.crashed;
    t.cpu_seconds += r.cpu_seconds;
  }
  return t;
}

namespace {

using ojson = nlohmann::ordered_json;

ojson range_json(const std::optional<SeedRange>& r) {
  if (!r) return nullptr;
  return ojson{{"first", r->first}, {"last", r->last}};
}

ojson result_json(const SeedResult& r) {
  ojson j;
  j["seed"] = r.seed;
  j["status"] = to_string(r.status);
  j["passed"] = r.status == Status::passed;
  j["exit"] = r.exit_code ? ojson(*r.exit_code) : ojson(nullptr);
  j["signal"] = r.signal ? ojson(*r.signal) : ojson(nullptr);
  j["trace_hash"] = r.trace_hash ? ojson(*r.trace_hash) : ojson(nullptr);
  j["failed_expectations"] = r.failed_expectations;
  j["note"] = r.note;
  j["wall_seconds"] = r.wall_seconds;
  j["cpu_seconds"] = r.cpu_seconds;
  return j;
}

// Reading: every field checked, an error names it. Thrown as BadField and
// turned into Parsed::error at the top.
struct BadField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& field(const json& j, const char* name, const char* where) {
  if (!j.is_object()) throw BadField(fmt::format("{}: expected a JSON object", where));
  auto it = j.find(name);
  if (it == j.end()) throw BadField(fmt::format("{}: no \"{}\"", where, name));
  return *it;
}

uint64_t u64_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  // Parsed text gives unsigned for every non-negative integer; a json built
  // in code may hold a non-negative signed one.
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  throw BadField(fmt::format("{}: \"{}\" must be an unsigned 64-bit integer", where, name));
}

std::string string_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (!v.is_string()) throw BadField(fmt::format("{}: \"{}\" must be a string", where, name));
  return v.get<std::string>();
}

bool bool_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (!v.is_boolean()) throw BadField(fmt::format("{}: \"{}\" must be true or false", where, name));
  return v.get<bool>();
}

double number_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (!v.is_number()) throw BadField(fmt::format("{}: \"{}\" must be a number", where, name));
  return v.get<double>();
}

std::optional<SeedRange> range_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (v.is_null()) return std::nullopt;
  const std::string sub = fmt::format("{}.{}", where, name);
  SeedRange r{u64_field(v, "first", sub.c_str()), u64_field(v, "last", sub.c_str())};
  if (r.first > r.last) throw BadField(fmt::format("{}: first {} is after last {}", sub, r.first, r.last));
  return r;
}

SeedResult result_from(const json& j, size_t index) {
  const std::string where_s = fmt::format("results[{}]", index);
  const char* where = where_s.c_str();
  SeedResult r;
  r.seed = u64_field(j, "seed", where);
  const std::string status = string_field(j, "status", where);
  const std::optional<Status> st = parse_status(status);
  if (!st) throw BadField(fmt::format("{}: \"status\" '{}' is not passed, failed or crashed", where, status));
  r.status = *st;
  if (bool_field(j, "passed", where) != (r.status == Status::passed)) {
    throw BadField(fmt::format("{}: \"passed\" disagrees with \"status\" '{}'", where, status));
  }
  const json& exit = field(j, "exit", where);
  if (exit.is_number_integer()) {
    r.exit_code = exit.get<int>();
  } else if (!exit.is_null()) {
    throw BadField(fmt::format("{}: \"exit\" must be an integer or null", where));
  }
  const json& signal = field(j, "signal", where);
  if (signal.is_string()) {
    r.signal = signal.get<std::string>();
  } else if (!signal.is_null()) {
    throw BadField(fmt::format("{}: \"signal\" must be a string or null", where));
  }
  const json& hash = field(j, "trace_hash", where);
  if (hash.is_string()) {
    r.trace_hash = hash.get<std::string>();
  } else if (!hash.is_null()) {
    throw BadField(fmt::format("{}: \"trace_hash\" must be a string or null", where));
  }
  const json& failed = field(j, "failed_expectations", where);
  if (!failed.is_array()) throw BadField(fmt::format("{}: \"failed_expectations\" must be an array", where));
  for (const json& name : failed) {
    if (!name.is_string()) throw BadField(fmt::format("{}: \"failed_expectations\" must hold strings", where));
    r.failed_expectations.push_back(name.get<std::string>());
  }
  r.note = string_field(j, "note", where);
  r.wall_seconds = number_field(j, "wall_seconds", where);
  r.cpu_seconds = number_field(j, "cpu_seconds", where);
  return r;
}

}  // namespace

ojson to_json(const SweepRecord& record) {
  const Tally t = tally(record.results);
  ojson j;
  j["format"] = kSweepFormat;
  j["scenario"] = record.scenario;
  j["file"] = record.file;
  j["program"] = record.program;
  j["swarm"] = record.swarm;
  j["seeds"] = range_json(record.seeds);
  j["shard"] = record.shard ? ojson{{"index", record.shard->index}, {"count", record.shard->count}} : ojson(nullptr);
  j["slice"] = range_json(record.slice);
  j["complete"] = record.complete;
  j["jobs"] = record.jobs;
  j["wall_seconds"] = record.wall_seconds;
  j["summary"] = ojson{{"run", t.run},       {"passed", t.passed},          {"failed", t.failed},
                       {"crashed", t.crashed}, {"cpu_seconds", t.cpu_seconds}};
  ojson results = ojson::array(), failures = ojson::array();
  for (const SeedResult& r : record.results) {
    results.push_back(result_json(r));
    if (r.status == Status::passed) continue;
    ojson f = result_json(r);
    f["reproduce"] = reproduce_line(record.program, record.file, r.seed, record.swarm);
    failures.push_back(std::move(f));
  }
  j["failures"] = std::move(failures);
  j["results"] = std::move(results);
  return j;
}

Parsed<SweepRecord> record_from_json(const json& j) {
  try {
    const char* where = "sweep.json";
    const std::string format = string_field(j, "format", where);
    if (format != kSweepFormat) {
      throw BadField(fmt::format("{}: \"format\" is '{}', expected '{}'", where, format, kSweepFormat));
    }
    SweepRecord r;
    r.scenario = string_field(j, "scenario", where);
    r.file = string_field(j, "file", where);
    r.program = string_field(j, "program", where);
    r.swarm = bool_field(j, "swarm", where);
    const std::optional<SeedRange> seeds = range_field(j, "seeds", where);
    if (!seeds) throw BadField("sweep.json: \"seeds\" must not be null");
    r.seeds = *seeds;
    const json& shard = field(j, "shard", where);
    if (!shard.is_null()) {
      Shard s{u64_field(shard, "index", "sweep.json.shard"), u64_field(shard, "count", "sweep.json.shard")};
      if (s.count == 0 || s.index >= s.count) {
        throw BadField(fmt::format("sweep.json.shard: {}/{} is not a shard (0 <= index < count)", s.index, s.count));
      }
      r.shard = s;
    }
    r.slice = range_field(j, "slice", where);
    r.complete = bool_field(j, "complete", where);
    r.jobs = u64_field(j, "jobs", where);
    r.wall_seconds = number_field(j, "wall_seconds", where);
    const json& results = field(j, "results", where);
    if (!results.is_array()) throw BadField("sweep.json: \"results\" must be an array");
    for (size_t i = 0; i < results.size(); ++i) r.results.push_back(result_from(results[i], i));
    for (size_t i = 1; i < r.results.size(); ++i) {
      if (r.results[i - 1].seed >= r.results[i].seed) {
        throw BadField(fmt::format("sweep.json: \"results\" not sorted by seed, or seed {} twice", r.results[i].seed));
      }
    }
    for (const SeedResult& res : r.results) {
      if (!r.slice || !r.slice->contains(res.seed)) {
        throw BadField(fmt::format("sweep.json: seed {} is outside the record's slice", res.seed));
      }
    }
    return {std::move(r), {}};
  } catch (const BadField& e) {
    return {std::nullopt, e.what()};
  } catch (const nlohmann::json::exception& e) {
    return {std::nullopt, fmt::format("sweep.json: {}", e.what())};
  }
}

Coverage coverage(SeedRange range, const std::vector<uint64_t>& sorted_seeds) {
  Coverage c;
  // `next`: the lowest seed of the range not yet seen; `done` once `range.last` was seen.
  uint64_t next = range.first;
  bool done = false;
  auto add_repeat = [&](uint64_t s) {
    if (!c.repeated.empty() && c.repeated.back().last + 1 == s) {
      c.repeated.back().last = s;
    } else if (c.repeated.empty() || c.repeated.back().last != s) {
      c.repeated.push_back({s, s});
    }
  };
  for (size_t i = 0; i < sorted_seeds.size(); ++i) {
    const uint64_t s = sorted_seeds[i];
    if (!range.contains(s)) {
      if (c.outside.empty() || c.outside.back() != s) c.outside.push_back(s);
      continue;
    }
    if (i > 0 && sorted_seeds[i - 1] == s) {
      add_repeat(s);
      continue;
    }
    if (done) continue;  // cannot happen for sorted input: s <= last was already seen
    if (s > next) c.missing.push_back({next, s - 1});
    if (s == range.last) {
      done = true;
    } else {
      next = s + 1;
    }
  }
  if (!done) c.missing.push_back({next, range.last});
  return c;
}

Merge merge(const std::vector<SweepRecord>& records) {
  Merge m;
  if (records.empty()) {
    m.error = "no sweep records to merge";
    return m;
  }
  const SweepRecord& first = records.front();
  for (size_t i = 0; i < records.size(); ++i) {
    const SweepRecord& r = records[i];
    if (!r.shard) {
      m.error = fmt::format("input {} is already a merged record (no shard)", i + 1);
      return m;
    }
    if (r.seeds != first.seeds) {
      m.error = fmt::format("input {} is a sweep of seeds {}, input 1 of seeds {}", i + 1, to_string(r.seeds),
                            to_string(first.seeds));
      return m;
    }
    if (r.swarm != first.swarm) {
      m.error = fmt::format("input {} was run {} --swarm, input 1 {}", i + 1, r.swarm ? "with" : "without",
                            first.swarm ? "with" : "without");
      return m;
    }
    if (r.shard->count != first.shard->count) {
      m.error = fmt::format("input {} is shard {}, input 1 shard {}: different shard counts", i + 1,
                            to_string(*r.shard), to_string(*first.shard));
      return m;
    }
    if (r.slice != shard_slice(r.seeds, *r.shard)) {
      m.error = fmt::format("input {} (shard {}) does not hold that shard's slice of {}", i + 1,
                            to_string(*r.shard), to_string(r.seeds));
      return m;
    }
  }
  // The scenario's name comes from the runs' reports; a record whose runs all
  // crashed may not know it.
  std::string scenario;
  for (const SweepRecord& r : records) {
    if (r.scenario.empty()) continue;
    if (scenario.empty()) scenario = r.scenario;
    if (r.scenario != scenario) {
      m.error = fmt::format("the inputs are sweeps of different scenarios: '{}' and '{}'", scenario, r.scenario);
      return m;
    }
  }
  std::set<std::string> files;
  for (const SweepRecord& r : records) files.insert(r.file);
  if (files.size() > 1) {
    std::string list;
    for (const std::string& f : files) list += (list.empty() ? "" : ", ") + f;
    m.notes.push_back(fmt::format("the scenario file was given by different paths: {}", list));
  }

  std::map<uint64_t, int> shard_seen;
  for (const SweepRecord& r : records) ++shard_seen[r.shard->index];
  const uint64_t shards = first.shard->count;
  // Absent shards are listed only while that is short; coverage says the rest.
  constexpr size_t kShardsListedMax = 1000;
  for (uint64_t i = 0; i < shards && m.shards_absent.size() < kShardsListedMax; ++i) {
    if (!shard_seen.count(i)) m.shards_absent.push_back(i);
  }
  for (const auto& [index, n] : shard_seen) {
    if (n > 1) m.shards_repeated.push_back(index);
  }

  SweepRecord& out = m.merged;
  out.scenario = scenario;
  out.file = first.file;
  out.program = first.program;
  out.swarm = first.swarm;
  out.seeds = first.seeds;
  out.shard = std::nullopt;
  out.slice = first.seeds;
  out.complete = true;
  for (const SweepRecord& r : records) {
    out.complete = out.complete && r.complete;
    out.jobs = std::max(out.jobs, r.jobs);
    out.wall_seconds = std::max(out.wall_seconds, r.wall_seconds);
    out.results.insert(out.results.end(), r.results.begin(), r.results.end());
  }
  std::stable_sort(out.results.begin(), out.results.end(),
                   [](const SeedResult& a, const SeedResult& b) { return a.seed < b.seed; });
  std::vector<uint64_t> seeds;
  seeds.reserve(out.results.size());
  for (const SeedResult& r : out.results) seeds.push_back(r.seed);
  m.coverage = coverage(out.seeds, seeds);
  out.complete = out.complete && m.coverage.exact();
  // A seed run twice stays in the results once (the first record's).
  out.results.erase(std::unique(out.results.begin(), out.results.end(),
                                [](const SeedResult& a, const SeedResult& b) { return a.seed == b.seed; }),
                    out.results.end());
  return m;
}

}  // namespace wx::cli::sweep
