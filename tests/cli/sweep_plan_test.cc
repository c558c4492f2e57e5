// The pure parts of `wxsim sweep` (cli/sweep_plan.h, cli/sweep_record.h),
// without processes: the shards of `--shard I/N` cover a seed range exactly
// once and nothing outside it, including ranges at the top of the 64-bit
// space; bad `--seeds` / `--shard` text is refused with a reason; the
// reproduction line is one shell command; sweep.json round-trips; merging
// shards' records reports missing and repeated seeds and refuses records of
// different sweeps.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cli/sweep_plan.h"
#include "cli/sweep_record.h"

namespace wx::cli::sweep {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Every seed of `seeds` in exactly one of the `n` shards, none outside, the
// slices contiguous and in shard order, sizes within one of each other.
void expect_exact_cover(SeedRange seeds, uint64_t n) {
  SCOPED_TRACE(::testing::Message() << "seeds " << to_string(seeds) << ", " << n << " shards");
  const u128 count = seeds.size();
  u128 covered = 0;
  std::optional<uint64_t> previous_last;
  u128 size_min = ~u128{0}, size_max = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const std::optional<SeedRange> s = shard_slice(seeds, Shard{i, n});
    const u128 size = s ? s->size() : 0;
    size_min = std::min(size_min, size);
    size_max = std::max(size_max, size);
    if (!s) continue;
    EXPECT_LE(s->first, s->last);
    EXPECT_TRUE(seeds.contains(s->first)) << "shard " << i << " starts outside the range";
    EXPECT_TRUE(seeds.contains(s->last)) << "shard " << i << " ends outside the range";
    if (previous_last) {
      ASSERT_LT(*previous_last, kMax);
      EXPECT_EQ(s->first, *previous_last + 1) << "shard " << i << " does not start where the previous one ended";
    } else {
      EXPECT_EQ(s->first, seeds.first) << "the first non-empty shard does not start at the range's first seed";
    }
    previous_last = s->last;
    covered += size;
  }
  ASSERT_TRUE(previous_last.has_value()) << "no shard holds any seed";
  EXPECT_EQ(*previous_last, seeds.last) << "the last non-empty shard does not end at the range's last seed";
  EXPECT_TRUE(covered == count) << "the shards hold " << static_cast<uint64_t>(covered) << " seeds, the range "
                                << static_cast<uint64_t>(count);
  EXPECT_LE(static_cast<uint64_t>(size_max - size_min), 1u) << "shard sizes differ by more than one";
}

TEST(SweepShards, EverySeedInExactlyOneShardSmallRanges) {
  // Seed by seed: for every small range and shard count, count how often each
  // seed (and its neighbours outside the range) is in a shard.
  for (uint64_t first : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{1000}}) {
    for (uint64_t count = 1; count <= 40; ++count) {
      const SeedRange seeds{first, first + count - 1};
      for (uint64_t n = 1; n <= 50; ++n) {
        std::vector<int> hits(count + 2, 0);  // index 0: first - 1, count + 1: last + 1
        for (uint64_t i = 0; i < n; ++i) {
          const std::optional<SeedRange> s = shard_slice(seeds, Shard{i, n});
          if (!s) continue;
          for (uint64_t seed = s->first; seed <= s->last; ++seed) {
            if (seed < first) {
              ++hits[0];
            } else if (seed - first >= count) {
              ++hits[count + 1];
            } else {
              ++hits[seed - first + 1];
            }
          }
        }
        EXPECT_EQ(hits[0], 0) << to_string(seeds) << " / " << n << ": a seed below the range";
        EXPECT_EQ(hits[count + 1], 0) << to_string(seeds) << " / " << n << ": a seed above the range";
        for (uint64_t k = 1; k <= count; ++k) {
          EXPECT_EQ(hits[k], 1) << "seed " << first + k - 1 << " of " << to_string(seeds) << " in " << hits[k]
                                << " of " << n << " shards";
        }
        expect_exact_cover(seeds, n);
      }
    }
  }
}

TEST(SweepShards, MoreShardsThanSeedsLeavesSomeEmpty) {
  const SeedRange one{5, 5};
  int holding = 0;
  for (uint64_t i = 0; i < 8; ++i) {
    if (const auto s = shard_slice(one, Shard{i, 8})) {
      ++holding;
      EXPECT_EQ(*s, one);
    }
  }
  EXPECT_EQ(holding, 1);
  expect_exact_cover({3, 5}, 1000);
  int nonempty = 0;
  for (uint64_t i = 0; i < 1000; ++i) nonempty += shard_slice({3, 5}, Shard{i, 1000}).has_value();
  EXPECT_EQ(nonempty, 3);
}

TEST(SweepShards, OneShardIsTheWholeRange) {
  for (SeedRange r : {SeedRange{0, 0}, SeedRange{1, 10}, SeedRange{0, kMax}, SeedRange{kMax, kMax}}) {
    EXPECT_EQ(shard_slice(r, Shard{0, 1}), std::optional<SeedRange>(r));
  }
}

TEST(SweepShards, WorkedExampleFromTheDocs) {
  // docs/sweeps.md: seeds 1..10 in 3 shards.
  EXPECT_EQ(shard_slice({1, 10}, {0, 3}), std::optional<SeedRange>(SeedRange{1, 3}));
  EXPECT_EQ(shard_slice({1, 10}, {1, 3}), std::optional<SeedRange>(SeedRange{4, 6}));
  EXPECT_EQ(shard_slice({1, 10}, {2, 3}), std::optional<SeedRange>(SeedRange{7, 10}));
}

TEST(SweepShards, HugeRangesNearTheTopOfTheSeedSpace) {
  // Ranges whose count or products overflow 64 bits: the whole space, the top
  // end, and shard counts up to 2^64 - 1.
  const std::vector<SeedRange> ranges = {{0, kMax}, {kMax - 9, kMax}, {kMax, kMax}, {1, kMax}, {kMax / 2, kMax},
                                         {0, kMax - 1}, {kMax - 1000000, kMax - 3}};
  for (SeedRange r : ranges) {
    for (uint64_t n : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{7}, uint64_t{10}, uint64_t{11}, uint64_t{64},
                       uint64_t{1000}}) {
      expect_exact_cover(r, n);
    }
  }
  // Shard counts too large to walk: check the boundaries between neighbouring shards.
  for (SeedRange r : ranges) {
    for (uint64_t n : {kMax, kMax - 1, kMax / 3, uint64_t{1} << 40}) {
      SCOPED_TRACE(::testing::Message() << to_string(r) << " in " << n << " shards");
      const auto first = shard_slice(r, {0, n});
      const auto last = shard_slice(r, {n - 1, n});
      ASSERT_TRUE(last.has_value()) << "the last shard is never empty";
      EXPECT_EQ(last->last, r.last);
      if (first) {
        EXPECT_EQ(first->first, r.first);
      }
      for (uint64_t i : {uint64_t{1}, n / 2, n - 2}) {
        if (i == 0 || i >= n) continue;
        const auto a = shard_slice(r, {i - 1, n});
        const auto b = shard_slice(r, {i, n});
        if (a && b) {
          EXPECT_EQ(a->last + 1, b->first) << "between shards " << i - 1 << " and " << i;
        }
      }
    }
  }
  // The whole 64-bit space in 2 shards: exactly halves.
  EXPECT_EQ(shard_slice({0, kMax}, {0, 2}), std::optional<SeedRange>(SeedRange{0, kMax / 2}));
  EXPECT_EQ(shard_slice({0, kMax}, {1, 2}), std::optional<SeedRange>(SeedRange{kMax / 2 + 1, kMax}));
}

TEST(SweepParse, SeedRanges) {
  EXPECT_EQ(*parse_seed_range("1..10"), (SeedRange{1, 10}));
  EXPECT_EQ(*parse_seed_range("42"), (SeedRange{42, 42}));
  EXPECT_EQ(*parse_seed_range("7..7"), (SeedRange{7, 7}));
  EXPECT_EQ(*parse_seed_range("0..18446744073709551615"), (SeedRange{0, kMax}));
  EXPECT_EQ(parse_seed_range("0..18446744073709551615")->size(), u128{1} << 64);
  EXPECT_EQ(to_string(SeedRange{1, 10}), "1..10");
  EXPECT_EQ(to_string(SeedRange{4, 4}), "4");
  EXPECT_EQ(count_text(SeedRange{0, kMax}.size()), "18446744073709551616");
  EXPECT_EQ(count_text(SeedRange{7, 16}.size()), "10");
  EXPECT_EQ(count_text(0), "0");
}

TEST(SweepParse, BadSeedRangesAreRefusedWithAReason) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "got nothing"},
      {"10..1", "after the last"},
      {"1..", "last seed"},
      {"..5", "first seed"},
      {"1...5", "last seed"},
      {"-1..5", "not an unsigned decimal"},
      {"1..-5", "not an unsigned decimal"},
      {"+3", "not an unsigned decimal"},
      {" 3", "not an unsigned decimal"},
      {"3 ", "not an unsigned decimal"},
      {"0x10", "not an unsigned decimal"},
      {"1e3", "not an unsigned decimal"},
      {"a..b", "not an unsigned decimal"},
      {"1-10", "not an unsigned decimal"},
      {"1..18446744073709551616", "larger than 18446744073709551615"},
      {"99999999999999999999999", "larger than"},
      {"1..2..3", "not an unsigned decimal"},
  };
  for (const auto& [text, reason] : bad) {
    const Parsed<SeedRange> p = parse_seed_range(text);
    EXPECT_FALSE(p) << "'" << text << "' was accepted";
    EXPECT_NE(p.error.find(reason), std::string::npos) << "'" << text << "': " << p.error;
  }
}

TEST(SweepParse, Shards) {
  EXPECT_EQ(*parse_shard("0/1"), (Shard{0, 1}));
  EXPECT_EQ(*parse_shard("3/4"), (Shard{3, 4}));
  EXPECT_EQ(*parse_shard("18446744073709551614/18446744073709551615"), (Shard{kMax - 1, kMax}));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "expected I/N"},       {"3", "expected I/N"},          {"4/4", "not below the shard count"},
      {"5/4", "not below"},       {"0/0", "N >= 1"},              {"-1/4", "not an unsigned decimal"},
      {"1/-4", "not an unsigned"}, {"1 / 4", "not an unsigned"},  {"/4", "shard index"},
      {"1/", "shard count"},      {"1/4/5", "not an unsigned"},   {"1/18446744073709551616", "larger than"},
      {"a/b", "not an unsigned"},
  };
  for (const auto& [text, reason] : bad) {
    const Parsed<Shard> p = parse_shard(text);
    EXPECT_FALSE(p) << "'" << text << "' was accepted";
    EXPECT_NE(p.error.find(reason), std::string::npos) << "'" << text << "': " << p.error;
  }
}

TEST(SweepReproduce, LineIsOneShellCommand) {
  EXPECT_EQ(reproduce_line("wxsim", "scenarios/outage.yaml", 17, false), "wxsim run scenarios/outage.yaml --seed 17");
  EXPECT_EQ(reproduce_line("build/cli/wxsim", "a.yaml", 18446744073709551615u, true),
            "build/cli/wxsim run a.yaml --seed 18446744073709551615 --swarm");
  EXPECT_EQ(reproduce_line("wxsim", "my scenario.yaml", 1, false), "wxsim run 'my scenario.yaml' --seed 1");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME/x"), "'$HOME/x'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a;b"), "'a;b'");
}

SweepRecord shard_record(SeedRange seeds, Shard shard, Status failing_status = Status::failed,
                         std::vector<uint64_t> failing = {}) {
  SweepRecord r;
  r.scenario = "tiny";
  r.file = "tests/scenarios/tiny.yaml";
  r.program = "wxsim";
  r.swarm = true;
  r.seeds = seeds;
  r.shard = shard;
  r.slice = shard_slice(seeds, shard);
  r.jobs = 2;
  r.wall_seconds = 1.5;
  if (!r.slice) return r;
  for (uint64_t s = r.slice->first;; ++s) {
    SeedResult res;
    res.seed = s;
    const bool fails = std::find(failing.begin(), failing.end(), s) != failing.end();
    res.status = fails ? failing_status : Status::passed;
    if (res.status == Status::crashed) {
      res.signal = "SIGSEGV";
    } else {
      res.exit_code = fails ? 1 : 0;
      res.trace_hash = fmt::format("{:016x}", s * 0x9e3779b97f4a7c15u);
    }
    if (fails && failing_status == Status::failed) res.failed_expectations = {"no_message_lost"};
    res.wall_seconds = 0.25;
    res.cpu_seconds = 0.2;
    r.results.push_back(res);
    if (s == r.slice->last) break;
  }
  return r;
}

TEST(SweepRecordJson, RoundTripsAndListsFailuresWithReproductionLines) {
  const SweepRecord r = shard_record({1, 10}, {1, 3}, Status::failed, {5});
  const nlohmann::ordered_json j = to_json(r);
  EXPECT_EQ(j["format"], kSweepFormat);
  EXPECT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["summary"]["run"], 3);
  EXPECT_EQ(j["summary"]["failed"], 1);
  ASSERT_EQ(j["failures"].size(), 1u);
  EXPECT_EQ(j["failures"][0]["seed"], 5);
  EXPECT_EQ(j["failures"][0]["reproduce"], "wxsim run tests/scenarios/tiny.yaml --seed 5 --swarm");
  const Parsed<SweepRecord> back = record_from_json(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error;
  EXPECT_EQ(back->results, r.results);
  EXPECT_EQ(back->shard, r.shard);
  EXPECT_EQ(back->slice, r.slice);
  EXPECT_EQ(back->seeds, r.seeds);
  EXPECT_EQ(back->scenario, r.scenario);
  // Seeds at the top of the range survive JSON exactly.
  const SweepRecord top = shard_record({kMax - 2, kMax}, {0, 1});
  const Parsed<SweepRecord> top_back = record_from_json(nlohmann::json::parse(to_json(top).dump()));
  ASSERT_TRUE(top_back) << top_back.error;
  EXPECT_EQ(top_back->results.back().seed, kMax);
}

TEST(SweepRecordJson, MalformedRecordsNameTheField) {
  nlohmann::json j = nlohmann::json::parse(to_json(shard_record({1, 10}, {0, 1})).dump());
  auto expect_error = [](nlohmann::json bad, const std::string& needle) {
    const Parsed<SweepRecord> p = record_from_json(bad);
    EXPECT_FALSE(p);
    EXPECT_NE(p.error.find(needle), std::string::npos) << p.error;
  };
  nlohmann::json a = j;
  a.erase("seeds");
  expect_error(a, "\"seeds\"");
  nlohmann::json b = j;
  b["results"][3]["seed"] = -4;
  expect_error(b, "results[3]");
  nlohmann::json c = j;
  c["format"] = "something-else";
  expect_error(c, "format");
  nlohmann::json d = j;
  d["results"][2]["status"] = "passed";
  d["results"][2]["passed"] = false;
  expect_error(d, "disagrees");
  nlohmann::json e = j;
  std::swap(e["results"][0], e["results"][1]);
  expect_error(e, "not sorted");
  expect_error(nlohmann::json::array(), "JSON object");
  nlohmann::json f = j;
  f["shard"] = {{"index", 3}, {"count", 3}};
  expect_error(f, "not a shard");
}

TEST(SweepCoverage, MissingRepeatedAndOutsideSeeds) {
  const Coverage exact = coverage({1, 5}, {1, 2, 3, 4, 5});
  EXPECT_TRUE(exact.exact());
  const Coverage c = coverage({1, 10}, {0, 1, 2, 2, 2, 3, 6, 7, 7, 8, 8, 11});
  EXPECT_EQ(c.missing, (std::vector<SeedRange>{{4, 5}, {9, 10}}));
  EXPECT_EQ(c.repeated, (std::vector<SeedRange>{{2, 2}, {7, 8}}));
  EXPECT_EQ(c.outside, (std::vector<uint64_t>{0, 11}));
  EXPECT_FALSE(c.exact());
  EXPECT_EQ(coverage({1, 10}, {}).missing, (std::vector<SeedRange>{{1, 10}}));
  const Coverage top = coverage({kMax - 3, kMax}, {kMax - 3, kMax - 1});
  EXPECT_EQ(top.missing, (std::vector<SeedRange>{{kMax - 2, kMax - 2}, {kMax, kMax}}));
  EXPECT_TRUE(coverage({kMax - 1, kMax}, {kMax - 1, kMax}).exact());
  EXPECT_EQ(coverage({0, kMax}, {kMax}).missing, (std::vector<SeedRange>{{0, kMax - 1}}));
}

TEST(SweepMerge, ThreeShardsMergeToEverySeedOnce) {
  std::vector<SweepRecord> shards;
  for (uint64_t i = 0; i < 3; ++i) shards.push_back(shard_record({1, 10}, {i, 3}, Status::failed, {5, 9}));
  const Merge m = merge(shards);
  ASSERT_EQ(m.error, "");
  EXPECT_TRUE(m.coverage.exact());
  EXPECT_TRUE(m.shards_absent.empty());
  EXPECT_TRUE(m.merged.complete);
  ASSERT_EQ(m.merged.results.size(), 10u);
  for (uint64_t s = 1; s <= 10; ++s) EXPECT_EQ(m.merged.results[s - 1].seed, s);
  const Tally t = tally(m.merged.results);
  EXPECT_EQ(t.passed, 8u);
  EXPECT_EQ(t.failed, 2u);
  // The merged record is a valid sweep.json itself.
  EXPECT_TRUE(record_from_json(nlohmann::json::parse(to_json(m.merged).dump())));
}

TEST(SweepMerge, AMissingShardAndARepeatedShardAreReported) {
  const Merge missing = merge({shard_record({1, 10}, {0, 3}), shard_record({1, 10}, {2, 3})});
  ASSERT_EQ(missing.error, "");
  EXPECT_EQ(missing.shards_absent, (std::vector<uint64_t>{1}));
  EXPECT_EQ(missing.coverage.missing, (std::vector<SeedRange>{{4, 6}}));
  EXPECT_FALSE(missing.merged.complete);

  const Merge twice = merge({shard_record({1, 10}, {0, 2}), shard_record({1, 10}, {0, 2}),
                             shard_record({1, 10}, {1, 2})});
  ASSERT_EQ(twice.error, "");
  EXPECT_EQ(twice.shards_repeated, (std::vector<uint64_t>{0}));
  EXPECT_EQ(twice.coverage.repeated, (std::vector<SeedRange>{{1, 5}}));
  EXPECT_EQ(twice.merged.results.size(), 10u);
}

TEST(SweepMerge, RecordsOfDifferentSweepsAreRefused) {
  const SweepRecord a = shard_record({1, 10}, {0, 2});
  SweepRecord other_range = shard_record({1, 11}, {1, 2});
  EXPECT_NE(merge({a, other_range}).error.find("seeds"), std::string::npos);
  SweepRecord no_swarm = shard_record({1, 10}, {1, 2});
  no_swarm.swarm = false;
  EXPECT_NE(merge({a, no_swarm}).error.find("--swarm"), std::string::npos);
  SweepRecord other_count = shard_record({1, 10}, {1, 3});
  EXPECT_NE(merge({a, other_count}).error.find("shard counts"), std::string::npos);
  SweepRecord other_scenario = shard_record({1, 10}, {1, 2});
  other_scenario.scenario = "another";
  EXPECT_NE(merge({a, other_scenario}).error.find("different scenarios"), std::string::npos);
  SweepRecord wrong_slice = shard_record({1, 10}, {1, 2});
  wrong_slice.slice = SeedRange{6, 9};
  EXPECT_NE(merge({a, wrong_slice}).error.find("slice"), std::string::npos);
  EXPECT_NE(merge({}).error, "");
}

TEST(SweepMerge, AnInterruptedShardMakesTheMergeIncomplete) {
  SweepRecord cut = shard_record({1, 10}, {1, 2});
  cut.results.resize(2);
  cut.complete = false;
  const Merge m = merge({shard_record({1, 10}, {0, 2}), cut});
  ASSERT_EQ(m.error, "");
  EXPECT_FALSE(m.merged.complete);
  EXPECT_EQ(m.coverage.missing, (std::vector<SeedRange>{{8, 10}}));
}

}  // namespace
}  // namespace wx::cli::sweep
