// The set-up the messaging simulation tests share (msg, access, workload):
// a simulation of one seed, a single-datacenter deployment with a msg
// instance per zone, a HistoryLog wired to the msg service's acks, and one
// ticket key ring held by the services and the test (which issues the users'
// tickets). `tweak` edits the deployment spec last (more roles, faults).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "checkers/messaging.h"
#include "nodes/deploy/deployment.h"
#include "nodes/logic/ticket/ticket.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/messaging_workload.h"
#include "tests/support/seeds.h"

namespace wx::testing {

// A key ring of one key (`id`), its secret bytes first, first + 3, ...
inline ticket::KeyRingConfig key_ring_config(ticket::KeyId id = 1, uint8_t first = 0x21) {
  ticket::KeyRingConfig c;
  std::string s;
  for (size_t i = 0; i < ticket::kTicketKeyBytes; ++i) s.push_back(static_cast<char>(first + 3 * i));
  c.keys.push_back({id, s});
  c.current_key_id = id;
  return c;
}

inline sim::SimConfig sim_config(uint64_t seed) {
  sim::SimConfig c;
  c.seed = seed;
  c.log_level = verbose() ? LogLevel::info : LogLevel::off;
  return c;
}

struct MessagingWorld {
  sim::Simulation sim;
  std::unique_ptr<sim::workload::HistoryLog> log;
  std::unique_ptr<sim::SimDeployment> deployment;
  ticket::KeyRing ring{key_ring_config()};

  explicit MessagingWorld(uint64_t seed, const std::function<void(deploy::DeploymentSpec&)>& tweak = {})
      : sim(sim_config(seed)) {
    log = std::make_unique<sim::workload::HistoryLog>(sim);
    deploy::DeploymentSpec spec = deploy::single_datacenter_spec();
    spec.instances_per_zone[deploy::Role::msg] = 1;
    spec.templates.msg.keys = key_ring_config();
    spec.templates.msg.ack_observer = log->ack_observer();
    spec.templates.access.keys = key_ring_config();
    if (tweak) tweak(spec);
    deployment = std::make_unique<sim::SimDeployment>(sim, std::make_shared<const deploy::Deployment>(spec));
  }
  std::string ticket_for(uint64_t uid, Duration ttl = minutes(120)) { return *ring.issue(uid, sim.now(), ttl); }
  const rpc::ServiceDirectory& directory() const { return deployment->deployment().directory(); }
};

// The messaging checker over `h`, violations naming the seed.
inline checkers::messaging::MessagingVerdict judge_messaging(const checkers::messaging::History& h, uint64_t seed,
                                                             bool require_client_final = true) {
  checkers::messaging::CheckOptions o;
  o.context = "seed " + std::to_string(seed);
  o.require_client_final_for_recipients = require_client_final;
  return checkers::messaging::check_messaging(h, o);
}

}  // namespace wx::testing
