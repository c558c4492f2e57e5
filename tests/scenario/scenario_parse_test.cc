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

#include "nodes/logic/ticket/ticket.h"
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

// The deployment the parser lays out, with a placeholder ticket ring (the
// run's business) so that it validates.
deploy::Deployment laid_out(const Scenario& s) {
  deploy::DeploymentSpec spec = s.deployment_spec();
  ticket::KeyRingConfig ring;
  ring.keys.push_back({1, std::string(ticket::kTicketKeyBytes, 'k')});
  ring.current_key_id = 1;
  spec.templates.msg.keys = spec.templates.access.keys = spec.templates.group.keys = ring;
  return deploy::Deployment(spec);
}

std::string error_of(const std::string& text) {
  auto r = parse_scenario(text, "t.yaml");
  if (std::holds_alternative<Scenario>(r)) return "(accepted)";
  return std::get<ScenarioError>(r).text();
}

Scenario parsed(const std::string& text) {
  auto r = parse_scenario(text, "t.yaml");
  if (auto* err = std::get_if<ScenarioError>(&r)) {
    ADD_FAILURE() << err->text();
    return {};
  }
  return std::get<Scenario>(r);
}

TEST(ScenarioParse, TwoDatacentersReadsAsWritten) {
  auto r = load_scenario((kSource / "scenarios/two-datacenters.yaml").string());
  ASSERT_TRUE(std::holds_alternative<Scenario>(r)) << std::get<ScenarioError>(r).text();
  const Scenario& s = std::get<Scenario>(r);
  const DeploymentSection& d = s.deployment;
  ASSERT_EQ(d.datacenters.size(), 2u);
  EXPECT_EQ(d.datacenters[0].name, "dc1");
  EXPECT_EQ(d.datacenters[1].name, "dc2");
  EXPECT_EQ(d.datacenters[1].zones, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(d.datacenter, "dc1") << "the first datacenter";
  EXPECT_EQ(d.zones, d.datacenters[0].zones);
  EXPECT_EQ(d.wan_latency, milliseconds(30));
  EXPECT_EQ(d.wan_jitter, milliseconds(10));
  EXPECT_EQ(d.instances.at(deploy::Role::repl), 1u);
  EXPECT_EQ(s.workload.users, 200u);
  EXPECT_EQ(s.workload.groups, 0u);
  EXPECT_DOUBLE_EQ(s.workload.rate_per_min, 2.0);
  EXPECT_EQ(s.workload.duration, minutes(6));
  ASSERT_EQ(s.faults.size(), 1u);
  const FaultSpec& f = s.faults[0];
  EXPECT_EQ(f.kind, FaultKind::partition);
  EXPECT_EQ(f.at, minutes(2));
  EXPECT_EQ(f.duration, minutes(2));
  ASSERT_EQ(f.groups.size(), 2u);
  EXPECT_EQ(f.groups[0], (std::vector<Target>{Target{Target::Kind::datacenter, "dc1", {}}}));
  EXPECT_EQ(f.groups[1], (std::vector<Target>{Target{Target::Kind::datacenter, "dc2", {}}}));
  EXPECT_TRUE(s.expect.replicas_converge);
  EXPECT_DOUBLE_EQ(s.expect.availability_by_datacenter.at("dc1").at(Phase::during), 0.99);
  EXPECT_DOUBLE_EQ(s.expect.availability_by_datacenter.at("dc2").at(Phase::during), 0.99);
  EXPECT_EQ(s.expect.availability_by_datacenter.size(), 2u);
  EXPECT_EQ(s.expect.availability_by_datacenter.at("dc1").size(), 1u);
  EXPECT_DOUBLE_EQ(s.expect.sync_availability_min.at(Phase::during), 0.99);
  EXPECT_TRUE(s.expect.availability_min.empty());
  EXPECT_EQ(s.expect.converge_within, minutes(5));

  // The deployment description: both datacenters, the storage roles and the
  // listed services (repl included) in every zone of each, dc1 the default,
  // no user homed yet (the run assigns them in turn).
  const deploy::DeploymentSpec spec = s.deployment_spec();
  ASSERT_EQ(spec.datacenters.size(), 2u);
  EXPECT_EQ(spec.datacenters[0].name, "dc1");
  EXPECT_EQ(spec.datacenters[1].name, "dc2");
  EXPECT_EQ(spec.datacenters[1].zones, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(spec.default_datacenter, "dc1");
  EXPECT_TRUE(spec.home_datacenter.empty());
  EXPECT_EQ(spec.kv_shards_per_datacenter, 1u);
  std::map<deploy::Role, uint32_t> want = deploy::DeploymentSpec::full_set_per_zone();
  for (deploy::Role role : {deploy::Role::msg, deploy::Role::access, deploy::Role::group, deploy::Role::fanout,
                            deploy::Role::repl}) {
    want[role] = 1;
  }
  EXPECT_EQ(spec.instances_per_zone, want);
  const deploy::Deployment dep = laid_out(s);
  for (const char* dc : {"dc1", "dc2"}) {
    EXPECT_EQ(dep.nodes_of(deploy::Role::repl, dc).size(), 3u) << dc;
    EXPECT_EQ(dep.nodes_of(deploy::Role::msg, dc).size(), 3u) << dc;
    EXPECT_EQ(dep.nodes_of(deploy::Role::seqsvr, dc).size(), 3u) << dc;
  }
  size_t global = 0, kv_dc2 = 0;
  for (const deploy::NodeDesc& n : dep.nodes()) {
    global += n.global ? 1 : 0;
    kv_dc2 += n.role == deploy::Role::kv && !n.global && n.datacenter == "dc2" ? 1 : 0;
  }
  EXPECT_EQ(global, 5u) << "the cross-datacenter group: 3 replicas in dc1, 2 in dc2";
  EXPECT_EQ(kv_dc2, 3u);
}

TEST(ScenarioParse, DatacentersDefaultsAndSpec) {
  // The single-datacenter form still gives one datacenter and no replicators.
  const Scenario one = parsed("name: one\ndeployment: {datacenter: east, zones: [x, y, z]}\n");
  ASSERT_EQ(one.deployment.datacenters.size(), 1u);
  EXPECT_EQ(one.deployment.datacenters[0].name, "east");
  EXPECT_EQ(one.deployment.datacenters[0].zones, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_FALSE(one.deployment.wan_latency);
  const deploy::DeploymentSpec one_spec = one.deployment_spec();
  ASSERT_EQ(one_spec.datacenters.size(), 1u);
  EXPECT_EQ(one_spec.default_datacenter, "east");
  EXPECT_EQ(one_spec.instances_per_zone.count(deploy::Role::repl), 0u);
  const Scenario none = parsed("name: none\n");
  ASSERT_EQ(none.deployment.datacenters.size(), 1u);
  EXPECT_EQ(none.deployment.datacenters[0].name, "dc1");
  EXPECT_EQ(none.deployment_spec().datacenters.size(), 1u);

  // Several: repl defaults to one per zone, can be turned off or raised;
  // shards are per datacenter; zone names differ here.
  const std::string three = R"(name: three
deployment:
  datacenters:
    - {name: dc1, zones: [a, b, c]}
    - {name: dc2, zones: [d, e, f]}
    - {name: dc3, zones: [a, b, c]}
  shards: 2
  services: {msg: 2, repl: 0}
  wan: {jitter: 0s}
workload: {groups: 0}
)";
  const Scenario s = parsed(three);
  ASSERT_EQ(s.deployment.datacenters.size(), 3u);
  EXPECT_EQ(s.deployment.instances.at(deploy::Role::repl), 0u);
  EXPECT_FALSE(s.deployment.wan_latency);
  EXPECT_EQ(s.deployment.wan_jitter, Duration::zero());
  const deploy::DeploymentSpec spec = s.deployment_spec();
  ASSERT_EQ(spec.datacenters.size(), 3u);
  EXPECT_EQ(spec.datacenters[1].zones, (std::vector<std::string>{"d", "e", "f"}));
  EXPECT_EQ(spec.kv_shards_per_datacenter, 2u);
  EXPECT_EQ(spec.instances_per_zone.count(deploy::Role::repl), 0u);
  EXPECT_EQ(spec.instances_per_zone.at(deploy::Role::msg), 2u);
  const deploy::Deployment dep = laid_out(s);
  EXPECT_EQ(dep.nodes_of(deploy::Role::msg, "dc3").size(), 6u);
  EXPECT_EQ(dep.nodes_of(deploy::Role::kv, "dc2").size(), 8u) << "2 shards x 3 zones + 2 replicas of the global group";
  const Scenario more = parsed("name: r\ndeployment:\n  datacenters: [{name: p, zones: [a, b, c]}, {name: q, zones: [a, b, c]}]\n"
                               "  services: {repl: 3}\n");
  EXPECT_EQ(more.deployment_spec().instances_per_zone.at(deploy::Role::repl), 3u);

  // Replicators and a WAN need several datacenters.
  EXPECT_EQ(error_of("name: x\ndeployment:\n  services: {repl: 1}\n"),
            "t.yaml:3:20: deployment.services.repl: replicators ship records between datacenters; this deployment "
            "has one (list several under 'datacenters')");
  EXPECT_EQ(error_of("name: x\ndeployment:\n  wan: {latency: 30ms}\n"),
            "t.yaml:3:3: deployment.wan: a WAN links datacenters; this deployment has one (list several under "
            "'datacenters')");
  const std::string two = "name: x\ndeployment:\n  datacenters: [{name: dc1, zones: [a, b, c]}, {name: dc2, zones: [a, b, c]}]\n";
  EXPECT_EQ(error_of(two + "  wan: {latency: 500us}\n"),
            "t.yaml:4:18: deployment.wan.latency: expected a duration from 1ms to 1s, got 500us");
  EXPECT_EQ(error_of(two + "  wan: {latency: 30ms, jitter: 2s}\n"),
            "t.yaml:4:32: deployment.wan.jitter: expected a duration from 0s to 1s, got 2s");
  EXPECT_NE(error_of(two + "  wan: {}\n").find("deployment.wan: expected 'latency' and/or 'jitter'"), std::string::npos);
  EXPECT_NE(error_of(two + "  wan: {latncy: 3ms}\n").find("deployment.wan: unknown key 'latncy'"), std::string::npos);
  EXPECT_EQ(error_of(two + "  zones: [a, b, c]\n"),
            "t.yaml:3:3: deployment: give 'datacenter' and 'zones' (one datacenter) or 'datacenters' (several), not "
            "both; got 'datacenters' and 'zones'");
  EXPECT_EQ(error_of("name: x\ndeployment:\n  datacenters: [{name: dc1, zones: [a, b, c]}, {name: dc/2, zones: [a, b, c]}]\n"),
            "t.yaml:3:55: deployment.datacenters[1].name: expected a name without ':', '/' or spaces, got 'dc/2'");
  EXPECT_EQ(error_of("name: x\ndeployment:\n  datacenters: [{name: dc1, zones: [a, b, c]}, {name: dc2, zones: [a, b]}]\n"),
            "t.yaml:3:67: deployment.datacenters[1].zones: expected exactly 3 zones (one KV replica per zone), got 2");
  EXPECT_EQ(error_of("name: x\ndeployment:\n  datacenters: [{name: dc1, zones: [a, b, c]}, {zones: [a, b, c]}]\n"),
            "t.yaml:3:48: deployment.datacenters[1]: missing key 'name' (the datacenter's name, e.g. dc1)");
  EXPECT_NE(error_of("name: x\ndeployment:\n  datacenters: dc1\n").find("deployment.datacenters: expected a list of datacenters"),
            std::string::npos);
  std::string seventeen = "name: x\ndeployment:\n  datacenters:\n";
  for (int i = 0; i < 17; ++i) seventeen += "    - {name: d" + std::to_string(i) + ", zones: [a, b, c]}\n";
  EXPECT_EQ(error_of(seventeen), "t.yaml:4:5: deployment.datacenters: expected at most 16 entries, got 17");
}

TEST(ScenarioParse, QualifiedZonesAndDatacenterTargets) {
  const std::string deployment = R"(name: q
deployment:
  datacenters:
    - {name: dc1, zones: [a, b, c]}
    - {name: dc2, zones: [b, d, e]}
workload: {groups: 0, duration: 5m}
)";
  const Scenario s = parsed(deployment + R"(faults:
  - {at: 10s, for: 10s, kill_zone: dc2/b}
  - {at: 30s, for: 10s, kill_zone: d}
  - {at: 50s, for: 10s, kill_datacenter: dc2}
  - {at: 70s, for: 10s, clog: [zone:dc1/b, zone:e, node:msg-dc2-d]}
  - {at: 90s, for: 10s, block: {from: [dc:dc1], to: [dc:dc2]}}
  - {at: 110s, for: 10s, loss: {from: dc:dc2, to: dc:dc1, p: 0.3}}
  - {at: 130s, for: 10s, delay: {from: [dc:dc1], to: [zone:dc2/b], extra: 100ms}}
  - {at: 150s, for: 10s, partition: [[zone:dc1/a, zone:dc1/b], [zone:c], [dc:dc2]]}
random_faults: {from: 3m, until: 4m, kinds: [kill_zone], targets: [zone:dc2/d, dc:dc1]}
)");
  ASSERT_EQ(s.faults.size(), 8u);
  // A zone target of a multi-datacenter scenario is always DATACENTER/ZONE.
  EXPECT_EQ(s.faults[0].targets.at(0).name, "dc2/b");
  EXPECT_EQ(s.faults[0].describe(), "kill_zone dc2/b");
  EXPECT_EQ(s.faults[1].targets.at(0).name, "dc2/d") << "a bare zone in one datacenter resolves to it";
  EXPECT_EQ(s.faults[2].kind, FaultKind::kill_datacenter);
  EXPECT_EQ(s.faults[2].targets.at(0).name, "dc2");
  EXPECT_EQ(s.faults[3].targets.at(0).text(), "zone:dc1/b");
  EXPECT_EQ(s.faults[3].targets.at(1).text(), "zone:dc2/e");
  EXPECT_EQ(s.faults[4].kind, FaultKind::block);
  EXPECT_EQ(s.faults[4].describe(), "block [dc:dc1] -> [dc:dc2]");
  EXPECT_EQ(s.faults[5].describe(), "loss [dc:dc2] <-> [dc:dc1] p=0.3");
  EXPECT_EQ(s.faults[6].to.at(0).name, "dc2/b");
  EXPECT_EQ(s.faults[7].describe(), "partition [zone:dc1/a, zone:dc1/b] | [zone:dc1/c] | [dc:dc2]");
  ASSERT_TRUE(s.random_faults);
  EXPECT_EQ(s.random_faults->targets.at(0).name, "dc2/d");

  const Target& dc2b = s.faults[0].targets.at(0);
  EXPECT_EQ(dc2b.zone_name(), "b");
  EXPECT_EQ(dc2b.zone_datacenter(), "dc2");
  deploy::NodeDesc n;
  n.datacenter = "dc2";
  n.zone = "b";
  EXPECT_TRUE(dc2b.matches(n));
  EXPECT_TRUE((Target{Target::Kind::zone, "b", {}}).matches(n)) << "a bare zone: any datacenter's";
  n.datacenter = "dc1";
  EXPECT_FALSE(dc2b.matches(n));
  n.zone = "a";
  EXPECT_FALSE(dc2b.matches(n));
  EXPECT_EQ((Target{Target::Kind::zone, "b", {}}).zone_datacenter(), "");
  // Against the laid-out deployment: exactly dc2's zone b servers.
  const deploy::Deployment dep = laid_out(s);
  size_t hit = 0;
  for (const deploy::NodeDesc& nd : dep.nodes()) {
    if (!dc2b.matches(nd)) continue;
    ++hit;
    EXPECT_EQ(nd.datacenter, "dc2") << nd.name;
    EXPECT_EQ(nd.zone, "b") << nd.name;
  }
  EXPECT_GT(hit, 5u);

  // A rolling restart expands qualified zones to that datacenter's nodes only.
  const Scenario rr = parsed(deployment + "faults:\n  - at: 10s\n    rolling_restart: {targets: [zone:dc2/d], down_for: 1s, gap: 1s}\n");
  ASSERT_FALSE(rr.faults.empty());
  for (const FaultSpec& f : rr.faults) {
    const std::string& name = f.targets.at(0).name;
    EXPECT_NE(name.find("-dc2-"), std::string::npos) << name;
    EXPECT_EQ(name.substr(name.size() - 2), "-d") << name;
  }

  // The bare and the qualified names of one zone are one target.
  EXPECT_NE(error_of(deployment + "faults:\n  - {at: 10s, for: 1m, kill_zone: d}\n  - {at: 20s, for: 10s, kill_zone: dc2/d}\n")
                .find("overlaps 'kill_zone dc2/d' at 10s on the same target zone:dc2/d (line 8)"),
            std::string::npos);

  // Errors.
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, clog: [zone:b]}\n"),
            "t.yaml:8:32: faults[0].clog[0]: zone 'b' is ambiguous: 2 datacenters have one; name it with its "
            "datacenter: dc1/b, dc2/b");
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, kill_zone: dc3/b}\n"),
            "t.yaml:8:36: faults[0].kill_zone: unknown datacenter 'dc3' in zone 'dc3/b' (the deployment's "
            "datacenters: dc1, dc2)");
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, clog: zone:dc1/d}\n"),
            "t.yaml:8:31: faults[0].clog: unknown zone 'dc1/d' (datacenter dc1 has zones: a, b, c)");
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, kill_zone: q}\n"),
            "t.yaml:8:36: faults[0].kill_zone: unknown zone 'q' (the deployment's zones: dc1/a, dc1/b, dc1/c, dc2/b, "
            "dc2/d, dc2/e)");
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, kill_datacenter: dc3}\n"),
            "t.yaml:8:42: faults[0].kill_datacenter: unknown datacenter 'dc3' (the deployment's datacenters: dc1, dc2)");
  EXPECT_EQ(error_of(deployment + "faults:\n  - {at: 10s, for: 10s, block: {from: dc:dc1, to: dc:dc4}}\n"),
            "t.yaml:8:51: faults[0].block.to: unknown datacenter 'dc4' (the deployment's datacenters: dc1, dc2)");

  // One datacenter: the qualified form names its zones too (held bare, as
  // before); the existing messages are unchanged.
  const Scenario one = parsed("name: one\nfaults:\n  - {at: 10s, for: 10s, kill_zone: dc1/b}\n"
                              "  - {at: 30s, for: 10s, clog: [zone:dc1/c, zone:a]}\n");
  EXPECT_EQ(one.faults.at(0).targets.at(0).name, "b");
  EXPECT_EQ(one.faults.at(1).targets.at(0).name, "c");
  EXPECT_EQ(one.faults.at(1).targets.at(1).name, "a");
  EXPECT_EQ(error_of("name: one\nfaults:\n  - {at: 10s, for: 10s, clog: [dc:dc2]}\n"),
            "t.yaml:3:32: faults[0].clog[0]: unknown datacenter 'dc2' (the deployment's datacenter: dc1)");
  EXPECT_EQ(error_of("name: one\nfaults:\n  - {at: 10s, for: 10s, kill_datacenter: dc2}\n"),
            "t.yaml:3:42: faults[0].kill_datacenter: unknown datacenter 'dc2' (the deployment's: dc1)");
  EXPECT_EQ(error_of("name: one\nfaults:\n  - {at: 10s, for: 10s, clog: [zone:dc2/b]}\n"),
            "t.yaml:3:32: faults[0].clog[0]: unknown datacenter 'dc2' in zone 'dc2/b' (the deployment's datacenters: "
            "dc1)");
}

TEST(ScenarioParse, MultiDatacenterExpectations) {
  const std::string two = "name: x\ndeployment:\n  datacenters: [{name: dc1, zones: [a, b, c]}, {name: dc2, zones: [a, b, c]}]\n";
  const Scenario s = parsed(two + R"(expect:
  replicas_converge: false
  availability: {during: 0.9}
  availability_by_datacenter: {dc2: {before: 99%, after: 0.95}}
  sync_availability: {before: 0.5, during: 90%}
)");
  EXPECT_FALSE(s.expect.replicas_converge);
  EXPECT_DOUBLE_EQ(s.expect.availability_min.at(Phase::during), 0.9);
  ASSERT_EQ(s.expect.availability_by_datacenter.size(), 1u);
  const auto& dc2 = s.expect.availability_by_datacenter.at("dc2");
  EXPECT_EQ(dc2.size(), 2u);
  EXPECT_DOUBLE_EQ(dc2.at(Phase::before), 0.99);
  EXPECT_DOUBLE_EQ(dc2.at(Phase::after), 0.95);
  EXPECT_EQ(s.expect.sync_availability_min.size(), 2u);
  EXPECT_DOUBLE_EQ(s.expect.sync_availability_min.at(Phase::before), 0.5);
  EXPECT_DOUBLE_EQ(s.expect.sync_availability_min.at(Phase::during), 0.9);
  // Defaults.
  const Scenario d = parsed(two);
  EXPECT_TRUE(d.expect.replicas_converge);
  EXPECT_TRUE(d.expect.availability_by_datacenter.empty());
  EXPECT_TRUE(d.expect.sync_availability_min.empty());
  // One datacenter: replicas_converge is accepted (and meaningless); its
  // datacenter may be named.
  const Scenario one = parsed("name: one\nexpect: {replicas_converge: true, availability_by_datacenter: {dc1: {during: 1}}}\n");
  EXPECT_DOUBLE_EQ(one.expect.availability_by_datacenter.at("dc1").at(Phase::during), 1.0);
  // Errors.
  EXPECT_EQ(error_of("name: one\nexpect: {availability_by_datacenter: {dc2: {during: 1}}}\n"),
            "t.yaml:2:39: expect.availability_by_datacenter: unknown datacenter 'dc2' (the deployment's datacenter: dc1)");
  EXPECT_EQ(error_of(two + "expect:\n  availability_by_datacenter: {dc1: {durin: 1}}\n"),
            "t.yaml:5:38: expect.availability_by_datacenter.dc1: unknown key 'durin' (expected one of: before, during, "
            "after)");
  EXPECT_NE(error_of(two + "expect:\n  availability_by_datacenter: {dc1: {during: 1.5}}\n")
                .find("t.yaml:5:46: expect.availability_by_datacenter.dc1.during: expected a fraction from 0 to 1"),
            std::string::npos);
  EXPECT_NE(error_of(two + "expect:\n  sync_availability: {after: 101%}\n")
                .find("t.yaml:5:30: expect.sync_availability.after: expected a fraction from 0 to 1"),
            std::string::npos);
  EXPECT_EQ(error_of(two + "expect:\n  replicas_converge: maybe\n"),
            "t.yaml:5:22: expect.replicas_converge: expected true or false, got 'maybe'");
  EXPECT_NE(error_of(two + "expect:\n  availability_by_datacenter: [dc1]\n")
                .find("expect.availability_by_datacenter: expected a mapping (key: value lines), got a list"),
            std::string::npos);
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
    // Several datacenters.
    {"both_datacenter_forms.yaml", 4, 3,
     "deployment: give 'datacenter' and 'zones' (one datacenter) or 'datacenters' (several), not both; got "
     "'datacenters' and 'datacenter'"},
    {"one_datacenter_in_list.yaml", 4, 5,
     "deployment.datacenters: expected 2 to 16 datacenters, got 1 (for one, give 'datacenter' and 'zones')"},
    {"duplicate_datacenter.yaml", 6, 14, "deployment.datacenters[2].name: datacenter 'dc1' twice"},
    {"unknown_dc_target.yaml", 7, 47,
     "faults[0].partition[1][0]: unknown datacenter 'dc3' (the deployment's datacenters: dc1, dc2)"},
    {"ambiguous_zone.yaml", 9, 16,
     "faults[0].kill_zone: zone 'b' is ambiguous: 2 datacenters have one; name it with its datacenter: dc1/b, dc2/b"},
    {"bad_wan_latency.yaml", 6, 18, "deployment.wan.latency: expected a duration from 1ms to 1s, got 5s"},
    {"unknown_availability_datacenter.yaml", 9, 5,
     "expect.availability_by_datacenter: unknown datacenter 'dc9' (the deployment's datacenters: dc1, dc2)"},
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
