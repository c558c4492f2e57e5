// Where nodes live and how far apart they are.
//
// A placement names a node's datacenter, zone and host. The latency between
// two nodes depends on the closest level they share (host, zone, datacenter,
// none), drawn from that level's range with the network's seeded stream.
//
// This is the first, tiered form of the topology. The datacenter network
// with explicit links, Boost.Graph shortest paths and link faults replaces
// `latency()` behind the same call (issue B); placements stay as they are.
#pragma once

#include "sim/sim_only.h"

#include <string>

#include "nodes/runtime/random.h"
#include "nodes/runtime/time.h"

namespace wx::sim {

struct Placement {
  std::string datacenter = "dc1";
  std::string zone = "zone-a";
  std::string host;  // empty: a host of its own
};

// One-way latency ranges [min, max] per level shared by the two endpoints.
struct LatencyConfig {
  Duration same_host_min = microseconds(10), same_host_max = microseconds(30);
  Duration intra_zone_min = microseconds(150), intra_zone_max = microseconds(300);
  Duration inter_zone_min = microseconds(800), inter_zone_max = microseconds(1500);
  Duration inter_dc_min = milliseconds(25), inter_dc_max = milliseconds(40);
};

enum class Proximity { same_host, same_zone, same_datacenter, remote };

Proximity proximity(const Placement& a, const Placement& b);
Duration sample_latency(const LatencyConfig& config, Proximity p, Rng& rng);

}  // namespace wx::sim
