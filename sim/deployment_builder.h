// Starts a whole deployment (nodes/deploy/deployment.h) inside a Simulation:
// every node of the description added with its place (datacenter, zone) and a
// factory that calls deploy::make_node, so the simulated nodes are exactly the
// ones production runs. Other nodes (test clients, simulated users) are added
// after it and get the ids that follow.
//
// Bootstrap: a KV replica must create its group only on the very first start
// of a brand-new deployment; every later start (restart, start after a wipe)
// recovers. `start_all` starts every deployment node with bootstrap on, then
// turns it off for good.
#pragma once

#include <memory>
#include <vector>

#include "nodes/deploy/deployment.h"
#include "sim/simulation.h"

namespace wx::sim {

class SimDeployment {
 public:
  // Adds every node of `deployment` to `sim`, which must have no nodes yet
  // (so that node ids equal the description's). Throws std::logic_error
  // otherwise.
  SimDeployment(Simulation& sim, std::shared_ptr<const deploy::Deployment> deployment);

  const deploy::Deployment& deployment() const { return *deployment_; }
  std::shared_ptr<const deploy::Deployment> shared() const { return deployment_; }
  // Starts every node of the simulation that is down, in id order: the
  // deployment's (the first time with bootstrap on) and any added after it
  // (test clients, simulated users). Bootstrap is off from then on.
  void start_all();
  // The node's object while it is up (nullptr when down or of another type).
  template <class T>
  T* node_as(NodeId id) const { return sim_.node_as<T>(id); }
  // Nodes of a role (all datacenters, or one).
  std::vector<NodeId> nodes_of(deploy::Role role, std::string_view datacenter = {}) const {
    return deployment_->nodes_of(role, datacenter);
  }

 private:
  Simulation& sim_;
  std::shared_ptr<const deploy::Deployment> deployment_;
  std::shared_ptr<bool> bootstrap_ = std::make_shared<bool>(true);
};

}  // namespace wx::sim
