// The scenario reader (sim/scenario/scenario.h): the canonical scenarios
// parse; each malformed file in tests/scenarios/malformed/ is refused with
// `file:line:column: what was expected` (the exact position and the words
// that say what is wrong); seeded random mutations of the canonical files
// never crash the reader.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "nodes/runtime/random.h"
#include "sim/scenario/scenario.h"
#include "tests/support/seeds.h"

namespace wx::scenario {
namespace {

const std::filesystem::path kSource = WX_SOURCE_DIR;

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::filesystem::path> canonical() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(kSource / "scenarios")) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ScenarioParse, EveryCanonicalScenarioParses) {
  const auto files = canonical();
  ASSERT_GE(files.size(), 10u);
  for (const auto& f : files) {
    auto r = load_scenario(f.string());
    const auto* err = std::get_if<ScenarioError>(&r);
    EXPECT_EQ(err, nullptr) << (err ? err->text() : "");
    if (err) continue;
    const Scenario& s = std::get<Scenario>(r);
    EXPECT_EQ(s.name, f.stem().string()) << "a canonical scenario is named after its file";
  }
}

TEST(ScenarioParse, ZoneOutageReadsAsWritten) {
  auto r = load_scenario((kSource / "scenarios/zone-outage.yaml").string());
  ASSERT_TRUE(std::holds_alternative<Scenario>(r)) << std::get<ScenarioError>(r).text();
  const Scenario& s = std::get<Scenario>(r);
  EXPECT_EQ(s.workload.users, 100u);
  EXPECT_EQ(s.workload.groups, 10u);
  EXPECT_DOUBLE_EQ(s.workload.rate_per_min, 2.0);
  EXPECT_EQ(s.workload.duration, minutes(3));
  ASSERT_EQ(s.faults.size(), 1u);
  EXPECT_EQ(s.faults[0].kind, FaultKind::kill_zone);
  EXPECT_EQ(s.faults[0].at, minutes(1));
  EXPECT_EQ(s.faults[0].duration, minutes(1));
  EXPECT_EQ(s.faults[0].targets.at(0).name, "b");
  EXPECT_DOUBLE_EQ(s.expect.availability_min.at(Phase::during), 0.9);
  EXPECT_EQ(s.expect.latency_p99_max.at(Phase::before), seconds(1));
}

TEST(ScenarioParse, UnitsAndSugar) {
  const std::string text = R"(name: units
workload:
  users: 10
  groups: 0
  total_rate: 5/s
  duration: 1m30s
faults:
  - {at: 250ms, until: 10s, delay: {from: zone:a, to: [zone:b, zone:c], extra: 1.5ms}}
  - {at: 20s, for: 5s, clock_skew: {targets: role:kv, offset: -500ms}}
  - at: 30s
    rolling_restart: {targets: [role:msg], down_for: 3s, gap: 1s}
expect:
  goodput: {before: 2/s}
)";
  auto r = parse_scenario(text, "units.yaml");
  ASSERT_TRUE(std::holds_alternative<Scenario>(r)) << std::get<ScenarioError>(r).text();
  const Scenario& s = std::get<Scenario>(r);
  EXPECT_DOUBLE_EQ(s.workload.rate_per_min, 30.0);  // 5/s over 10 users
  EXPECT_EQ(s.workload.duration, seconds(90));
  ASSERT_EQ(s.faults.size(), 5u);  // delay, skew, 3 msg restarts
  EXPECT_EQ(s.faults[0].at, milliseconds(250));
  EXPECT_EQ(s.faults[0].extra, microseconds(1500));
  EXPECT_EQ(s.faults[1].offset, Duration::zero() - milliseconds(500));
  EXPECT_EQ(s.faults[2].targets.at(0).name, "msg-dc1-a");
  EXPECT_EQ(s.faults[3].at, seconds(34));
  EXPECT_EQ(s.faults[4].targets.at(0).name, "msg-dc1-c");
  EXPECT_DOUBLE_EQ(s.expect.goodput_min.at(Phase::before), 2.0);
  EXPECT_EQ(parse_rate_per_min("3/min"), 3.0);
  EXPECT_EQ(parse_rate_per_min("10/h"), 10.0 / 60);
  EXPECT_FALSE(parse_rate_per_min("3"));
  EXPECT_FALSE(parse_rate_per_min("/s"));
  EXPECT_FALSE(parse_rate_per_min("3/fortnight"));
}

struct Bad {
  const char* file;
  int line, column;       // 0: no position
  const char* expected;   // words the message must contain
};

// Each malformed file, where the reader must point, and what it must say.
const Bad kBad[] = {
    {"bad_yaml_unclosed_flow.yaml", 3, 1, "not valid YAML: end of map flow not found"},
    {"bad_yaml_indentation.yaml", 2, 11, "not valid YAML: illegal map value"},
    {"not_a_mapping_list.yaml", 1, 1, "expected a mapping (key: value lines), got a list"},
    {"not_a_mapping_scalar.yaml", 1, 1, "expected a mapping (key: value lines), got 'just a sentence'"},
    {"empty.yaml", 1, 1, "the file is empty"},
    {"only_comment.yaml", 1, 1, "the file is empty"},
    {"unknown_key_workload.yaml", 4, 3, "workload: unknown key 'userz' (expected one of: users,"},
    {"unknown_key_top.yaml", 2, 1, "unknown key 'colour'"},
    {"wrong_type_users.yaml", 3, 10, "workload.users: expected a whole number from 2 to 10000, got 'many'"},
    {"wrong_type_list_for_number.yaml", 3, 10, "workload.users: expected a whole number from 2 to 10000, got a list"},
    {"unknown_zone.yaml", 5, 16, "faults[0].kill_zone: unknown zone 'd' (the deployment's zones: a, b, c)"},
    {"unknown_node.yaml", 5, 16, "faults[0].kill_node: no node named 'kv-dc1-s7-a'"},
    {"bad_target_kind.yaml", 5, 28, "faults[0].partition[1][0]: expected a target: zone:NAME"},
    {"bad_unit_duration.yaml", 3, 13, "workload.duration: expected a duration with a unit"},
    {"duration_without_unit.yaml", 3, 13, "got '180'"},
    {"bad_unit_rate.yaml", 3, 9, "workload.rate: expected a rate with a unit"},
    {"negative_duration.yaml", 3, 9, "faults[0].at: expected a duration of at least 0s, got a negative duration '-5s'"},
    {"negative_users.yaml", 3, 10, "got a negative number '-3'"},
    {"huge_users.yaml", 3, 10, "workload.users: expected a whole number from 2 to 10000, got 99999999999999999999999"},
    {"too_many_users.yaml", 3, 10, "got 10001"},
    {"seed_overflow.yaml", 2, 7, "seed: expected a whole number from 0 to 18446744073709551615"},
    {"fault_after_end.yaml", 5, 9, "the fault starts at 3m, not before the traffic ends (2m)"},
    {"fault_heals_after_end.yaml", 6, 10, "the fault ends at 2.5m, after the traffic ends (2m)"},
    {"overlapping_kills.yaml", 6, 5, "overlaps 'kill_zone a' at 30s on the same target zone:a (line 3)"},
    {"two_fault_kinds.yaml", 3, 5, "expected exactly one fault kind key"},
    {"no_fault_kind.yaml", 3, 5, "got none"},
    {"deep_nesting_flow.yaml", 2, 0, "the YAML nests too deeply"},
    {"deep_nesting_block.yaml", 0, 0, "the YAML nests too deeply"},
    {"binary_bytes.yaml", 2, 1, "byte 0x00 is not allowed in a YAML file"},
    {"invalid_utf8.yaml", 1, 7, "byte 0xff is not valid UTF-8"},
    {"fraction_above_one.yaml", 3, 26, "expect.availability.during: expected a fraction from 0 to 1"},
    {"two_zones.yaml", 3, 10, "deployment.zones: expected exactly 3 zones"},
    {"duplicate_key.yaml", 4, 3, "workload: key 'users' appears twice"},
    {"unknown_random_kind.yaml", 5, 22, "random_faults.kinds[1]: expected one of kill_zone"},
    {"loss_above_one.yaml", 5, 41, "faults[0].loss.p: expected a number from 0 to 0.99, got 1.5"},
    {"missing_name.yaml", 1, 1, "missing key 'name'"},
};

TEST(ScenarioParse, EveryMalformedFileIsRefusedPrecisely) {
  const auto dir = kSource / "tests/scenarios/malformed";
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.path().extension() == ".yaml" ? 1 : 0;
  ASSERT_GE(std::size(kBad), 20u);
  EXPECT_EQ(files, std::size(kBad)) << "every malformed file has its expectation here";
  for (const Bad& b : kBad) {
    const std::string path = (dir / b.file).string();
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    auto r = load_scenario(path);
    ASSERT_TRUE(std::holds_alternative<ScenarioError>(r)) << b.file << " was accepted";
    const ScenarioError& err = std::get<ScenarioError>(r);
    EXPECT_EQ(err.file, path);
    if (b.line > 0) {
      EXPECT_EQ(err.at.line, b.line) << err.text();
    }
    if (b.column > 0) {
      EXPECT_EQ(err.at.column, b.column) << err.text();
    }
    EXPECT_NE(err.message.find(b.expected), std::string::npos) << b.file << ": " << err.text();
    const std::string prefix = err.at.line > 0 ? path + ":" + std::to_string(err.at.line) + ":" : path + ": ";
    EXPECT_EQ(err.text().rfind(prefix, 0), 0u) << err.text();
  }
}

TEST(ScenarioParse, MissingAndOversizedFiles) {
  auto r = load_scenario("/nonexistent/scenario.yaml");
  ASSERT_TRUE(std::holds_alternative<ScenarioError>(r));
  EXPECT_EQ(std::get<ScenarioError>(r).text(), "/nonexistent/scenario.yaml: cannot open the file");
  std::string big = "name: big\ndescription: \"" + std::string(kFileBytesMax, 'x') + "\"\n";
  auto b = parse_scenario(big, "big.yaml");
  ASSERT_TRUE(std::holds_alternative<ScenarioError>(b));
  EXPECT_NE(std::get<ScenarioError>(b).message.find("a scenario is at most"), std::string::npos);
}

// Seeded mutations (3,000 by default) of every canonical file (bytes flipped, deleted,
// duplicated, lines swapped): each either parses or is refused with a
// position; none crashes (the sanitized run checks memory too).
TEST(ScenarioParse, MutatedScenariosNeverCrash) {
  // WX_SEEDS seeds (default 30; 3 in the sanitized run), 100 mutants each.
  const auto seeds = wx::testing::seed_range(30);
  const auto files = canonical();
  size_t refused = 0, accepted = 0;
  for (uint64_t mutant = seeds.first * 100; mutant < seeds.end() * 100; ++mutant) {
    Rng rng = Rng::derive(mutant, "scenario-mutation");
    std::string text = read(files[rng.uniform(files.size())]);
    const int edits = 1 + static_cast<int>(rng.uniform(4));
    for (int k = 0; k < edits && !text.empty(); ++k) {
      const size_t at = rng.uniform(text.size());
      switch (rng.uniform(5)) {
        case 0: text[at] = static_cast<char>(rng.uniform(256)); break;
        case 1: text.erase(at, 1 + rng.uniform(20)); break;
        case 2: text.insert(at, text.substr(at, 1 + rng.uniform(40))); break;
        case 3: text.insert(at, std::string(1 + rng.uniform(8), "[{:-'\"#&*!|>%@`"[rng.uniform(15)])); break;
        default: text[at] = "0123456789-. \n:"[rng.uniform(15)]; break;
      }
    }
    auto r = parse_scenario(text, "mutant.yaml");
    if (const auto* err = std::get_if<ScenarioError>(&r)) {
      ++refused;
      EXPECT_FALSE(err->message.empty());
      EXPECT_EQ(err->text().rfind("mutant.yaml:", 0), 0u);
    } else {
      ++accepted;
    }
  }
  EXPECT_GT(refused, 0u);
  std::printf("mutants: %zu refused, %zu accepted\n", refused, accepted);
}

}  // namespace
}  // namespace wx::scenario
