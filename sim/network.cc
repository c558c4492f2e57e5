#include "sim/network.h"

#include "sim/simulation.h"

namespace wx::sim {

Network::Network(Simulation& sim, LatencyConfig latency, Rng rng)
    : sim_(sim), latency_(latency), rng_(rng) {}

Duration Network::latency(NodeId from, NodeId to) {
  return sample_latency(latency_, proximity(sim_.placement(from), sim_.placement(to)), rng_);
}

void Network::schedule_reset(NodeId to, NodeId peer, Duration after) {
  const uint32_t inc = sim_.incarnation(to);
  ++stats_.resets;
  sim_.kernel().schedule_after(after, kKernelOwner, TraceTag{TraceKind::reset, to.value, peer.value},
                               [this, to, peer, inc] {
                                 (void)sim_.arrive(to, inc, Inbound{Inbound::Kind::reset, peer, {}});
                               });
}

void Network::break_connection(Connection& c, NodeId a, NodeId b, bool notify_a, bool notify_b) {
  c.open = false;
  ++c.epoch;
  if (notify_a && sim_.is_up(a)) schedule_reset(a, b, latency(b, a));
  if (notify_b && sim_.is_up(b)) schedule_reset(b, a, latency(a, b));
}

SendStatus Network::send(NodeId from, NodeId to, std::string frame) {
  ++stats_.frames_sent;
  Connection& c = connections_[key(from, to)];
  if (!sim_.is_up(to)) {
    // Connect refused (or an open connection just found dead): the frame is
    // lost and the sender hears of it one round trip later.
    ++stats_.frames_lost;
    ++stats_.refused;
    c.open = false;
    ++c.epoch;
    schedule_reset(from, to, latency(from, to) + latency(to, from));
    return SendStatus::ok;
  }
  if (!c.open) {
    c.open = true;
    ++c.epoch;
    const int d = from.value < to.value ? 0 : 1;
    c.last_arrival[d] = TimePoint::zero();
    c.last_arrival[1 - d] = TimePoint::zero();
  }
  const int dir = from.value < to.value ? 0 : 1;
  TimePoint arrival = sim_.now() + latency(from, to);
  if (arrival < c.last_arrival[dir]) arrival = c.last_arrival[dir];  // FIFO per direction
  c.last_arrival[dir] = arrival;
  const uint64_t epoch = c.epoch;
  const uint32_t inc = sim_.incarnation(to);
  const uint64_t detail = fnv1a64(frame) ^ (static_cast<uint64_t>(from.value) << 32);
  sim_.kernel().schedule_at(
      arrival, kKernelOwner, TraceTag{TraceKind::deliver, to.value, detail},
      [this, from, to, epoch, inc, frame = std::move(frame)]() mutable {
        Connection& conn = connections_[key(from, to)];
        if (conn.epoch != epoch || !conn.open) {
          ++stats_.frames_lost;
          return;
        }
        const size_t bytes = frame.size();
        switch (sim_.arrive(to, inc, Inbound{Inbound::Kind::frame, from, std::move(frame)})) {
          case Simulation::Arrival::delivered:
            ++stats_.frames_delivered;
            stats_.bytes_delivered += bytes;
            break;
          case Simulation::Arrival::node_gone:
            ++stats_.frames_lost;
            break;
          case Simulation::Arrival::inbox_full:
            // The receiver cannot keep up: the connection breaks, as a TCP
            // peer that stops reading eventually gets reset.
            ++stats_.frames_lost;
            ++stats_.overflows;
            break_connection(conn, from, to, /*notify_a=*/true, /*notify_b=*/true);
            break;
        }
      });
  return SendStatus::ok;
}

void Network::node_down(NodeId node) {
  for (auto& [k, c] : connections_) {
    if (!c.open) continue;
    if (k.first != node.value && k.second != node.value) continue;
    const NodeId peer{k.first == node.value ? k.second : k.first};
    break_connection(c, node, peer, /*notify_a=*/false, /*notify_b=*/true);
  }
}

}  // namespace wx::sim
