#include "sim/deployment_builder.h"

#include <stdexcept>

#include "nodes/deploy/node_factory.h"

namespace wx::sim {

SimDeployment::SimDeployment(Simulation& sim, std::shared_ptr<const deploy::Deployment> deployment)
    : sim_(sim), deployment_(std::move(deployment)) {
  if (sim_.node_count() != 0) {
    throw std::logic_error("sim deployment: the simulation already has nodes; add the deployment first");
  }
  for (const deploy::NodeDesc& n : deployment_->nodes()) {
    std::shared_ptr<const deploy::Deployment> d = deployment_;
    std::shared_ptr<bool> boot = bootstrap_;
    const NodeId id = n.id;
    const NodeId added = sim_.add_node(NodeSpec{n.name, Placement{n.datacenter, n.zone, ""},
                                                [d, boot, id](Runtime& rt) {
                                                  return deploy::make_node(rt, *d, id,
                                                                           deploy::StartOptions{*boot});
                                                }});
    if (added != id) throw std::logic_error("sim deployment: node ids diverged from the description");
  }
}

void SimDeployment::start_all() {
  for (size_t i = 1; i <= sim_.node_count(); ++i) {
    const NodeId id{static_cast<uint32_t>(i)};
    if (!sim_.is_up(id)) sim_.start(id);
  }
  *bootstrap_ = false;
}

}  // namespace wx::sim
