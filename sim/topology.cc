#include "sim/topology.h"

namespace wx::sim {

Proximity proximity(const Placement& a, const Placement& b) {
  if (a.datacenter != b.datacenter) return Proximity::remote;
  if (a.zone != b.zone) return Proximity::same_datacenter;
  if (!a.host.empty() && a.host == b.host) return Proximity::same_host;
  return Proximity::same_zone;
}

Duration sample_latency(const LatencyConfig& c, Proximity p, Rng& rng) {
  switch (p) {
    case Proximity::same_host: return rng.uniform(c.same_host_min, c.same_host_max);
    case Proximity::same_zone: return rng.uniform(c.intra_zone_min, c.intra_zone_max);
    case Proximity::same_datacenter: return rng.uniform(c.inter_zone_min, c.inter_zone_max);
    case Proximity::remote: return rng.uniform(c.inter_dc_min, c.inter_dc_max);
  }
  return c.inter_dc_max;
}

}  // namespace wx::sim
