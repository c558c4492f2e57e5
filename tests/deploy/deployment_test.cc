// The deployment description: validation names the field at fault; the layout
// is dense, ordered and the same for the same spec; and a whole deployment
// built from it runs in simulation (every node made by deploy::make_node).
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

#include "nodes/deploy/deployment.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/seqsvr/alloc_server.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"

namespace wx::deploy {
namespace {

using namespace time_literals;

DeploymentSpec two_dc_spec() {
  DeploymentSpec spec;
  spec.datacenters.push_back({"sh", {"sh-a", "sh-b", "sh-c"}});
  spec.datacenters.push_back({"sz", {"sz-a", "sz-b", "sz-c"}});
  spec.kv_shards_per_datacenter = 2;
  spec.instances_per_zone = DeploymentSpec::full_set_per_zone();
  spec.instances_per_zone[Role::inbox] = 2;
  spec.home_datacenter = {{7, "sz"}};
  spec.default_datacenter = "sh";
  return spec;
}

TEST(Deployment, LayoutIsDenseOrderedAndNamed) {
  const Deployment d(two_dc_spec());
  // 2 dcs x 2 shards x 3 replicas, the global group (3 in sh + 2 in sz), then
  // per role per zone: seqsvr 1, account 1, contacts 1, inbox 2 over 6 zones.
  ASSERT_EQ(d.nodes().size(), 12u + 5u + 6u * 5u);
  for (size_t i = 0; i < d.nodes().size(); ++i) EXPECT_EQ(d.nodes()[i].id.value, i + 1);
  EXPECT_EQ(d.node(NodeId{1}).name, "kv-sh-s0-sh-a");
  EXPECT_EQ(d.node(NodeId{4}).name, "kv-sh-s1-sh-a");
  EXPECT_EQ(d.node(NodeId{7}).name, "kv-sz-s0-sz-a");
  EXPECT_EQ(d.node(NodeId{13}).name, "kv-global-sh-sh-a");
  EXPECT_EQ(d.node(NodeId{17}).name, "kv-global-sz-sz-b");
  EXPECT_EQ(d.node(NodeId{18}).name, "seqsvr-sh-sh-a");
  EXPECT_EQ(d.nodes().back().name, "inbox-sz-sz-c-1");
  std::set<std::string> names;
  for (const NodeDesc& n : d.nodes()) EXPECT_TRUE(names.insert(n.name).second) << n.name;
  EXPECT_EQ(d.nodes_of(Role::kv).size(), 17u);
  EXPECT_EQ(d.nodes_of(Role::inbox, "sz").size(), 6u);
  EXPECT_EQ(d.directory().instances("inbox").size(), 12u);
  EXPECT_EQ(d.directory().instances(service_in("inbox", "sz")).size(), 6u);
  for (const rpc::Instance& i : d.directory().instances(service_in("inbox", "sz"))) EXPECT_EQ(i.datacenter, "sz");
  EXPECT_EQ(d.directory().instances("kv").size(), 0u) << "KV groups are reached through the shard map";
  // The shard map: four groups, replicas one per zone, users at home.
  ASSERT_EQ(d.shard_map()->group_count(), 4u);
  EXPECT_TRUE(d.shard_map()->multi_datacenter());
  EXPECT_EQ(*d.shard_map()->home_of(7), "sz");
  EXPECT_EQ(*d.shard_map()->home_of(8), "sh");
  for (size_t g = 0; g < 4; ++g) {
    std::set<std::string> zones;
    for (NodeId r : d.shard_map()->group(g).replicas) zones.insert(d.node(r).zone);
    EXPECT_EQ(zones.size(), 3u) << "group " << g << " must span three zones";
  }
  // The global group (account IDs): a majority in the first datacenter, the
  // rest in the second; seqsvr's group is each datacenter's own shard 0.
  const shard::ShardGroup& global = d.global_group();
  ASSERT_EQ(global.replicas.size(), 5u);
  size_t in_sh = 0;
  for (NodeId r : global.replicas) {
    EXPECT_TRUE(d.node(r).global);
    EXPECT_EQ(d.group_members(d.node(r)), global.replicas);
    in_sh += d.node(r).datacenter == "sh" ? 1 : 0;
  }
  EXPECT_EQ(in_sh, 3u);
  EXPECT_EQ(d.seqsvr_group("sh").datacenter, "sh");
  EXPECT_EQ(d.seqsvr_group("sz").datacenter, "sz");
  EXPECT_EQ(d.seqsvr_group("sz").shard, 0u);
  EXPECT_THROW((void)d.seqsvr_group("nowhere"), std::out_of_range);
  EXPECT_EQ(d.find(NodeId{0}), nullptr);
  EXPECT_EQ(d.find(NodeId{48}), nullptr);
  EXPECT_THROW(d.node(NodeId{48}), std::out_of_range);
}

TEST(Deployment, OneDatacenterKeepsItsLayoutWithoutAGlobalGroup) {
  const Deployment d(single_datacenter_spec());
  EXPECT_FALSE(d.shard_map()->multi_datacenter());
  EXPECT_EQ(d.global_group().replicas, d.shard_map()->group(0).replicas);
  EXPECT_EQ(d.seqsvr_group("dc1").replicas, d.shard_map()->group(0).replicas);
  for (const NodeDesc& n : d.nodes()) EXPECT_FALSE(n.global) << n.name;
  EXPECT_EQ(d.nodes_of(Role::kv).size(), 3u);
}

TEST(Deployment, TheSameSpecGivesTheSameLayout) {
  const Deployment a(two_dc_spec()), b(two_dc_spec());
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    EXPECT_EQ(a.nodes()[i].name, b.nodes()[i].name);
    EXPECT_EQ(a.nodes()[i].zone, b.nodes()[i].zone);
  }
}

TEST(Deployment, ValidationNamesTheFieldAtFault) {
  struct Case {
    std::string what;
    std::function<void(DeploymentSpec&)> spoil;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"no datacenter", [](DeploymentSpec& s) { s.datacenters.clear(); }, "datacenters: expected at least one"},
      {"two zones", [](DeploymentSpec& s) { s.datacenters[1].zones.pop_back(); }, "datacenters[1].zones: expected exactly 3"},
      {"zone twice", [](DeploymentSpec& s) { s.datacenters[0].zones[2] = "sh-a"; }, "datacenters[0].zones: zone 'sh-a' appears twice"},
      {"dc twice", [](DeploymentSpec& s) { s.datacenters[1].name = "sh"; }, "datacenters[1].name: datacenter 'sh' appears twice"},
      {"bad name", [](DeploymentSpec& s) { s.datacenters[0].name = "a b"; }, "datacenters[0].name: expected 1-64 characters"},
      {"no shards", [](DeploymentSpec& s) { s.kv_shards_per_datacenter = 0; }, "kv_shards_per_datacenter: expected 1 to 256, got 0"},
      {"too many", [](DeploymentSpec& s) { s.instances_per_zone[Role::inbox] = 65; }, "instances_per_zone.inbox: expected at most 64"},
      {"kv per zone", [](DeploymentSpec& s) { s.instances_per_zone[Role::kv] = 1; }, "instances_per_zone: kv replicas"},
      {"unknown home", [](DeploymentSpec& s) { s.home_datacenter[9] = "bj"; }, "home_datacenter[9]: no datacenter 'bj'"},
      {"uid 0", [](DeploymentSpec& s) { s.home_datacenter[0] = "sh"; }, "home_datacenter: uid 0"},
      {"bad default", [](DeploymentSpec& s) { s.default_datacenter = "bj"; }, "default_datacenter: no datacenter 'bj'"},
      {"login without keys", [](DeploymentSpec& s) { s.instances_per_zone[Role::login] = 1; }, "templates.login.keys: "},
  };
  EXPECT_EQ(Deployment::validate(two_dc_spec()), "");
  for (const Case& c : cases) {
    DeploymentSpec spec = two_dc_spec();
    c.spoil(spec);
    const std::string err = Deployment::validate(spec);
    EXPECT_EQ(err.rfind(c.expected, 0), 0u) << c.what << ": got '" << err << "'";
    EXPECT_THROW(Deployment{spec}, std::invalid_argument) << c.what;
  }
}

TEST(Deployment, LoginRoleComesLastAndMovesNoExistingId) {
  ticket::KeyRingConfig keys;
  keys.keys.push_back({1, std::string(ticket::kTicketKeyBytes, '\x5a')});
  keys.current_key_id = 1;
  DeploymentSpec without = two_dc_spec();
  without.instances_per_zone[Role::msg] = 1;
  without.instances_per_zone[Role::access] = 1;
  without.templates.msg.keys = keys;
  without.templates.access.keys = keys;
  DeploymentSpec with = without;
  with.instances_per_zone[Role::login] = 1;
  with.templates.login.keys = keys;
  const Deployment a(without), b(with);
  ASSERT_EQ(b.nodes().size(), a.nodes().size() + 6);  // one per zone, two datacenters
  for (size_t i = 0; i < a.nodes().size(); ++i) EXPECT_EQ(a.nodes()[i].name, b.nodes()[i].name);
  EXPECT_EQ(b.nodes().back().name, "login-sz-sz-c");
  EXPECT_EQ(b.directory().instances("login").size(), 6u);
  // Not part of the storage set: only an explicit opt-in runs it.
  EXPECT_EQ(DeploymentSpec::full_set_per_zone().count(Role::login), 0u);
  // Its own checks: iterations and ticket lifetime.
  DeploymentSpec bad = with;
  bad.templates.login.pbkdf2_iterations = 0;
  EXPECT_EQ(Deployment::validate(bad).rfind("templates.login.pbkdf2_iterations", 0), 0u) << Deployment::validate(bad);
  bad = with;
  bad.templates.login.ticket_ttl = bad.templates.login.keys.ttl_max + seconds(1);
  EXPECT_EQ(Deployment::validate(bad).rfind("templates.login.ticket_ttl", 0), 0u) << Deployment::validate(bad);
}

TEST(Deployment, RolesParseAndPrint) {
  for (Role r : {Role::kv, Role::seqsvr, Role::account, Role::contacts, Role::inbox, Role::msg, Role::access,
                 Role::group, Role::fanout, Role::login}) {
    EXPECT_EQ(parse_role(to_string(r)), r);
  }
  EXPECT_EQ(parse_role("nope"), std::nullopt);
}

// The whole single-datacenter deployment, every node made by make_node, comes
// up in simulation: each KV group elects a leader and seqsvr serves sections.
TEST(SimDeployment, AFullSingleDatacenterDeploymentComesUp) {
  sim::SimConfig cfg;
  cfg.seed = 3;
  cfg.log_level = LogLevel::off;
  sim::Simulation s(cfg);
  DeploymentSpec spec = single_datacenter_spec();
  spec.templates.seqsvr.sections = 4;
  sim::SimDeployment d(s, std::make_shared<const Deployment>(spec));
  EXPECT_EQ(s.node_count(), 3u + 3u * 4u);
  d.start_all();
  ASSERT_TRUE(s.run_for(5_s)) << s.failure().value_or("");
  int leaders = 0;
  for (NodeId id : d.nodes_of(Role::kv)) {
    ASSERT_NE(d.node_as<kv::KvReplica>(id), nullptr);
    leaders += d.node_as<kv::KvReplica>(id)->replica().is_leader();
  }
  EXPECT_EQ(leaders, 1);
  size_t served = 0;
  for (NodeId id : d.nodes_of(Role::seqsvr)) served += d.node_as<seqsvr::AllocSvr>(id)->serving().size();
  EXPECT_EQ(served, 4u) << "every section served by exactly one allocator";
  // A deployment must be added to an empty simulation (ids must match).
  EXPECT_THROW(sim::SimDeployment(s, std::make_shared<const Deployment>(spec)), std::logic_error);
}

}  // namespace
}  // namespace wx::deploy
