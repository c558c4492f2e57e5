// `wxsim sweep` and `wxsim sweep-merge` as processes, for what needs no
// scenario run: bad flags exit 2 naming the flag before anything runs or is
// written; sweep-merge reads shards' sweep.json files (written here with
// cli/sweep_record.h), reports a missing shard and seeds covered twice,
// prints the failures with their reproduction lines, and exits 0 / 1 / 2 as
// documented (docs/sweeps.md). The sweeps that run scenarios are in
// sweep_run_test.cc.
#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cli/sweep_record.h"
#include "tests/cli/sweep_test_support.h"

namespace wx::cli::sweep_test {
namespace {

using namespace wx::cli::sweep;

TEST(SweepCli, BadFlagsExit2NamingTheFlagBeforeAnythingRuns) {
  ScratchDir dir("sweep-cli-flags");
  const std::string scenario = dir / "s.yaml";
  write_file(scenario, "name: s\n");
  const std::string out = dir / "out";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"sweep", scenario, "--seeds", "10..1", "--out", out}, "--seeds"},
      {{"sweep", scenario, "--seeds", "x", "--out", out}, "--seeds"},
      {{"sweep", scenario, "--seeds", "-3..4", "--out", out}, "--seeds"},
      {{"sweep", scenario, "--seeds", "1..99999999999999999999", "--out", out}, "--seeds"},
      {{"sweep", scenario, "--out", out}, "--seeds"},
      {{"sweep", scenario, "--seeds", "1..10", "--shard", "3/3", "--out", out}, "--shard"},
      {{"sweep", scenario, "--seeds", "1..10", "--shard", "0/0", "--out", out}, "--shard"},
      {{"sweep", scenario, "--seeds", "1..10", "--shard", "1", "--out", out}, "--shard"},
      {{"sweep", scenario, "--seeds", "1..10", "--jobs", "0", "--out", out}, "--jobs"},
      {{"sweep", scenario, "--seeds", "1..10", "--jobs", "many", "--out", out}, "--jobs"},
      {{"sweep", scenario, "--seeds", "0..18446744073709551615", "--out", out}, "--shard"},
      {{"sweep", "--seeds", "1..3", "--out", out}, "SCENARIO"},
      {{"sweep", scenario, "--seeds", "1..3", "--frobnicate"}, "--frobnicate"},
  };
  for (const auto& [args, flag] : cases) {
    const Result r = wxsim(args, std::chrono::seconds(60));
    std::string cmd;
    for (const std::string& a : args) cmd += a + " ";
    EXPECT_EQ(r.exit, 2) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << cmd << ": the error does not name " << flag << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << cmd << ": created the output directory despite bad input";
  }
}

TEST(SweepCli, ANonEmptyOutputDirectoryIsRefused) {
  ScratchDir dir("sweep-cli-out");
  const std::string scenario = dir / "s.yaml";
  write_file(scenario, "name: s\n");
  fs::create_directories(dir.path() / "used");
  write_file(dir.path() / "used" / "sweep.json", "{}");
  const Result r = wxsim({"sweep", scenario, "--seeds", "1..3", "--out", dir / "used"}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  write_file(dir.path() / "a-file", "x");
  const Result f = wxsim({"sweep", scenario, "--seeds", "1..3", "--out", dir / "a-file"}, std::chrono::seconds(60));
  EXPECT_EQ(f.exit, 2) << f.err;
  EXPECT_NE(f.err.find("not a directory"), std::string::npos) << f.err;
}

// A shard's record as `wxsim sweep` writes it, seeds in `failing` failed.
SweepRecord shard_record(SeedRange seeds, Shard shard, const std::vector<uint64_t>& failing = {}) {
  SweepRecord r;
  r.scenario = "tiny";
  r.file = "tests/scenarios/my tiny.yaml";
  r.program = "wxsim";
  r.swarm = true;
  r.seeds = seeds;
  r.shard = shard;
  r.slice = shard_slice(seeds, shard);
  r.jobs = 2;
  if (!r.slice) return r;
  for (uint64_t s = r.slice->first; s <= r.slice->last; ++s) {
    SeedResult res;
    res.seed = s;
    const bool fails = std::find(failing.begin(), failing.end(), s) != failing.end();
    res.status = fails ? Status::failed : Status::passed;
    res.exit_code = fails ? 1 : 0;
    res.trace_hash = fmt::format("{:016x}", s * 0x9e3779b97f4a7c15u);
    if (fails) res.failed_expectations = {"no_loss"};
    r.results.push_back(res);
  }
  return r;
}

std::string write_shard(const ScratchDir& dir, const SweepRecord& r, const std::string& name) {
  fs::create_directories(dir.path() / name);
  write_file(dir.path() / name / "sweep.json", to_json(r).dump(2));
  return dir / name;
}

TEST(SweepMergeCli, CompleteShardsMergeAndFailuresPrintReproductionLines) {
  ScratchDir dir("sweep-merge-complete");
  std::vector<std::string> args = {"sweep-merge"};
  for (uint64_t i = 0; i < 3; ++i) {
    args.push_back(write_shard(dir, shard_record({1, 10}, {i, 3}, {5, 9}), fmt::format("shard-{}", i)));
  }
  args.push_back("--out");
  args.push_back(dir / "merged.json");
  const Result r = wxsim(args, std::chrono::seconds(60));
  EXPECT_EQ(r.exit, 1) << "failures present: exit 1\n" << r.out << r.err;
  EXPECT_NE(r.out.find("every seed of 1..10 exactly once"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10 seeds run"), std::string::npos) << r.out;
  const std::vector<std::string> repro = lines_after(r.out, "reproduce: ");
  EXPECT_EQ(repro, (std::vector<std::string>{"wxsim run 'tests/scenarios/my tiny.yaml' --seed 5 --swarm",
                                             "wxsim run 'tests/scenarios/my tiny.yaml' --seed 9 --swarm"}))
      << r.out;
  const nlohmann::json merged = read_json(dir.path() / "merged.json");
  ASSERT_TRUE(merged.is_object());
  ASSERT_EQ(merged["results"].size(), 10u);
  for (uint64_t s = 1; s <= 10; ++s) EXPECT_EQ(merged["results"][s - 1]["seed"], s);
  EXPECT_EQ(merged["complete"], true);
  EXPECT_EQ(merged["failures"].size(), 2u);

  // Without failures: exit 0.
  ScratchDir ok("sweep-merge-ok");
  const Result all = wxsim({"sweep-merge", write_shard(ok, shard_record({1, 10}, {0, 2}), "a"),
                            write_shard(ok, shard_record({1, 10}, {1, 2}), "b")},
                           std::chrono::seconds(60));
  EXPECT_EQ(all.exit, 0) << all.out << all.err;
  EXPECT_TRUE(lines_after(all.out, "reproduce: ").empty()) << all.out;
}

TEST(SweepMergeCli, AMissingShardIsIncompleteExit2NamingItAndItsSeeds) {
  ScratchDir dir("sweep-merge-missing");
  const Result r = wxsim({"sweep-merge", write_shard(dir, shard_record({1, 10}, {0, 3}), "s0"),
                          write_shard(dir, shard_record({1, 10}, {2, 3}), "s2")},
                         std::chrono::seconds(60));
  EXPECT_EQ(r.exit, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("shard 1/3 absent"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seeds missing: 4..6"), std::string::npos) << r.out;

  const Result twice = wxsim({"sweep-merge", dir / "s0", dir / "s0/sweep.json", dir / "s2"}, std::chrono::seconds(60));
  EXPECT_EQ(twice.exit, 2) << twice.out << twice.err;
  EXPECT_NE(twice.out.find("shard 0/3 given more than once"), std::string::npos) << twice.out;
  EXPECT_NE(twice.out.find("covered more than once: 1..3"), std::string::npos) << twice.out;
}

TEST(SweepMergeCli, BadInputExits2) {
  ScratchDir dir("sweep-merge-bad");
  const std::string a = write_shard(dir, shard_record({1, 10}, {0, 2}), "a");
  SweepRecord other = shard_record({1, 12}, {1, 2});
  const std::string b = write_shard(dir, other, "b");
  fs::create_directories(dir.path() / "junk");
  write_file(dir.path() / "junk" / "sweep.json", "{ not json");
  fs::create_directories(dir.path() / "wrong");
  write_file(dir.path() / "wrong" / "sweep.json", R"({"format": "wxsim-sweep/1"})");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"sweep-merge"}, "expected one or more"},
      {{"sweep-merge", dir / "nothing-here"}, "cannot read"},
      {{"sweep-merge", dir / "junk"}, "not JSON"},
      {{"sweep-merge", dir / "wrong"}, "\"scenario\""},
      {{"sweep-merge", a, b}, "seeds 1..12"},
  };
  for (const auto& [args, needle] : cases) {
    const Result r = wxsim(args, std::chrono::seconds(60));
    EXPECT_EQ(r.exit, 2) << args.back() << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args.back() << ": " << r.err;
  }
}

}  // namespace
}  // namespace wx::cli::sweep_test
