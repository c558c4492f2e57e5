#include "sim/network.h"

#include <algorithm>
#include <stdexcept>

#include "sim/simulation.h"

namespace wx::sim {

Network::Network(Simulation& sim, Topology& topology, Faults& faults, TcpConfig tcp,
                 Rng latency_rng, Rng loss_rng)
    : sim_(sim),
      topology_(topology),
      faults_(faults),
      tcp_(tcp),
      latency_rng_(latency_rng),
      loss_rng_(loss_rng) {
  if (tcp_.rto_initial <= Duration::zero() || tcp_.rto_max < tcp_.rto_initial) {
    throw std::invalid_argument("network: need 0 < rto_initial <= rto_max");
  }
  if (tcp_.in_flight_frames_max == 0)
    throw std::invalid_argument("network: in_flight_frames_max must be > 0");
}

Network::Connection& Network::connection_for(NodeId a, NodeId b) {
  const PairKey k = a.value < b.value ? PairKey{a.value, b.value} : PairKey{b.value, a.value};
  const uint64_t packed = (static_cast<uint64_t>(k.first) << 32) | k.second;  // exact: ids are 32-bit
  auto [slot, inserted] = connection_index_.try_emplace(packed, nullptr);
  if (!inserted) return *slot->second;
  Connection& c = connections_[k];
  c.lo = NodeId{k.first};
  c.hi = NodeId{k.second};
  slot->second = &c;
  return c;
}

const Network::Policy& Network::policy(Connection& c) {
  Policy& p = c.policy;
  if (p.topology_version == topology_.version() && p.faults_version == faults_.version()) return p;
  p.topology_version = topology_.version();
  p.faults_version = faults_.version();
  p.route = topology_.route(c.lo, c.hi);
  p.rules = faults_.rules_for(c.lo, c.hi);
  if (!p.route.reachable) p.rules.blocked[0] = p.rules.blocked[1] = true;
  p.rules.loss_p = 1 - (1 - p.rules.loss_p) * (1 - topology_.loss_p(p.route));
  return p;
}

Duration Network::one_way(const Policy& p) {
  return topology_.sample(p.route, latency_rng_) + p.rules.delay_extra;
}

Duration Network::retransmit_delay(double loss_p) {
  if (loss_p <= 0) return Duration::zero();
  Duration total, rto = tcp_.rto_initial;
  uint32_t tries_lost = 0;
  while (tries_lost < tcp_.retransmits_max && loss_rng_.bernoulli(loss_p)) {
    total += rto;
    rto = std::min(rto * 2, tcp_.rto_max);
    ++tries_lost;
  }
  if (tries_lost > 0) {
    ++stats_.frames_retransmitted;
    stats_.retransmits += tries_lost;
  }
  return total;
}

void Network::open(Connection& c) {
  c.open = true;
  ++c.epoch;
  ++stats_.connections_opened;
  for (Direction& d : c.dir) d.poisoned = false;
}

void Network::schedule_reset(Connection& c, NodeId to, Duration after) {
  const NodeId peer = to == c.lo ? c.hi : c.lo;
  const Policy& p = policy(c);
  if (p.rules.blocked[direction(peer, to)]) return;  // no RST crosses a block
  TimePoint at = sim_.now();
  if (p.rules.clog_until > at) at = p.rules.clog_until;
  const uint32_t inc = sim_.incarnation(to);
  ++stats_.resets;
  sim_.kernel().schedule_at(at + after, kKernelOwner,
                            TraceTag{TraceKind::reset, to.value, peer.value},
                            [this, to, peer, inc] {
                              (void)sim_.arrive(to, inc, Inbound{Inbound::Kind::reset, peer, {}});
                            });
}

void Network::break_connection(Connection& c, bool notify_lo, bool notify_hi) {
  for (Direction& d : c.dir) {
    stats_.frames_lost += d.queue.size();
    d.queue.clear();
    if (d.pump != 0) sim_.kernel().cancel(d.pump);
    d.pump = 0;
    d.poisoned = false;
  }
  c.open = false;
  ++c.epoch;
  if (notify_lo && sim_.is_up(c.lo)) schedule_reset(c, c.lo, one_way(policy(c)));
  if (notify_hi && sim_.is_up(c.hi)) schedule_reset(c, c.hi, one_way(policy(c)));
}

void Network::schedule_pump(Connection& c, int d, TimePoint at) {
  const NodeId to = d == 0 ? c.hi : c.lo;
  const InFlight& head = c.dir[d].queue.front();
  c.dir[d].pump_at = at;
  c.dir[d].pump =
      sim_.kernel().schedule_at(at, kKernelOwner, TraceTag{TraceKind::deliver, to.value, head.hash},
                                [this, &c, d] { pump(c, d); });
}

void Network::pump(Connection& c, int d) {
  Direction& dir = c.dir[d];
  dir.pump = 0;
  const TimePoint now = sim_.now();
  const Policy& p = policy(c);
  if (p.rules.clog_until > now) {
    // Held: the head and every frame queued behind it that would have
    // arrived before the clog ends.
    for (InFlight& f : dir.queue) {
      if (f.arrival >= p.rules.clog_until) break;
      if (!f.clogged) {
        f.clogged = true;
        ++stats_.frames_clogged;
      }
    }
    schedule_pump(c, d, p.rules.clog_until);
    return;
  }
  const NodeId from = d == 0 ? c.lo : c.hi;
  const NodeId to = d == 0 ? c.hi : c.lo;
  InFlight f = std::move(dir.queue.front());
  dir.queue.pop_front();
  const size_t bytes = f.frame.size();
  const Simulation::Arrival arrival =
      sim_.arrive(to, f.to_incarnation, Inbound{Inbound::Kind::frame, from, std::move(f.frame)});
  if (frame_observer_) {
    (void)frame_observer_(FrameEvent{arrival == Simulation::Arrival::delivered ? FrameEvent::Kind::delivered
                                                                                 : FrameEvent::Kind::lost,
                                     from, to, f.sent_at, now, bytes, {}, f.tag});
  }
  switch (arrival) {
    case Simulation::Arrival::delivered:
      ++stats_.frames_delivered;
      stats_.bytes_delivered += bytes;
      break;
    case Simulation::Arrival::node_gone:
      ++stats_.frames_lost;
      break;
    case Simulation::Arrival::inbox_full:
      // The receiver cannot keep up: the connection breaks, as a TCP peer
      // that stops reading eventually gets reset.
      ++stats_.frames_lost;
      ++stats_.overflows;
      break_connection(c, /*notify_lo=*/true, /*notify_hi=*/true);
      return;
  }
  if (!dir.queue.empty()) schedule_pump(c, d, std::max(dir.queue.front().arrival, now));
}

SendStatus Network::send(NodeId from, NodeId to, std::string frame) {
  ++stats_.frames_sent;
  uint64_t tag = 0;
  if (frame_observer_) {
    tag = frame_observer_(FrameEvent{FrameEvent::Kind::sent, from, to, sim_.now(), sim_.now(), frame.size(), frame, 0});
  }
  Connection& c = connection_for(from, to);
  const Policy& p = policy(c);
  const int d = direction(from, to);
  if (p.rules.blocked[d]) {
    // Silently into the void. An open connection now has a gap this way.
    ++stats_.frames_lost;
    ++stats_.frames_dropped_blocked;
    if (c.open) c.dir[d].poisoned = true;
    return SendStatus::ok;
  }
  if (!sim_.is_up(to)) {
    // Connect refused: the frame is lost and the sender hears of it one round
    // trip later (the peer's host answers the SYN with a RST).
    ++stats_.frames_lost;
    ++stats_.refused;
    if (c.open) break_connection(c, false, false);
    schedule_reset(c, from, one_way(p) + one_way(p));
    return SendStatus::ok;
  }
  // A poisoned stream cannot carry more: the sender's side gave up on it.
  if (c.open && c.dir[d].poisoned) break_connection(c, false, false);
  if (!c.open) open(c);
  if (c.dir[d].queue.size() >= tcp_.in_flight_frames_max) {
    ++stats_.frames_lost;
    ++stats_.overflows;
    break_connection(c, /*notify_lo=*/true, /*notify_hi=*/true);
    return SendStatus::ok;
  }
  const TimePoint arrival = sim_.now() + one_way(p) + retransmit_delay(p.rules.loss_p);
  Direction& dir = c.dir[d];
  const uint64_t hash = fnv1a64(frame) ^ (static_cast<uint64_t>(from.value) << 32);
  const bool clogged = p.rules.clog_until > arrival;  // will wait for the clog to end
  if (clogged) ++stats_.frames_clogged;
  dir.queue.push_back(InFlight{arrival, std::move(frame), hash, sim_.incarnation(to), clogged, sim_.now(), tag});
  if (dir.pump == 0) schedule_pump(c, d, arrival);
  return SendStatus::ok;
}

void Network::node_down(NodeId node) {
  for (auto& [k, c] : connections_) {
    if (!c.open || (k.first != node.value && k.second != node.value)) continue;
    break_connection(c, /*notify_lo=*/c.hi == node, /*notify_hi=*/c.lo == node);
  }
}

void Network::enforce_blocks() {
  for (auto& [k, c] : connections_) {
    if (!c.open) continue;
    const Policy& p = policy(c);
    if (!p.rules.blocked[0] && !p.rules.blocked[1]) continue;
    ++stats_.connections_broken_silently;
    break_connection(c, false, false);
  }
}

void Network::release_holds() {
  const TimePoint now = sim_.now();
  for (auto& [k, c] : connections_) {
    for (int d = 0; d < 2; ++d) {
      Direction& dir = c.dir[d];
      if (dir.pump == 0 || dir.queue.empty()) continue;
      const TimePoint due = std::max(dir.queue.front().arrival, now);
      if (dir.pump_at <= due) continue;  // not held
      sim_.kernel().cancel(dir.pump);
      schedule_pump(c, d, due);
    }
  }
}

Network::Path Network::path(NodeId a, NodeId b) {
  Connection& c = connection_for(a, b);
  const Policy& p = policy(c);
  const int d = direction(a, b);
  Path out;
  out.reachable = p.route.reachable;
  out.blocked[0] = p.rules.blocked[d];
  out.blocked[1] = p.rules.blocked[1 - d];
  out.links = p.route.links.size();
  const Duration extra = topology_.delay_extra(p.route) + p.rules.delay_extra;
  out.latency = LatencyBounds{p.route.latency.min + extra, p.route.latency.max + extra,
                              p.route.latency.mean + extra};
  out.loss_p = p.rules.loss_p;
  return out;
}

Network::ConnectionInfo Network::connection(NodeId a, NodeId b) const {
  const PairKey k = a.value < b.value ? PairKey{a.value, b.value} : PairKey{b.value, a.value};
  ConnectionInfo info;
  auto it = connections_.find(k);
  if (it == connections_.end()) return info;
  const Connection& c = it->second;
  const int d = direction(a, b);
  info.open = c.open;
  info.epoch = c.epoch;
  info.in_flight[0] = c.dir[d].queue.size();
  info.in_flight[1] = c.dir[1 - d].queue.size();
  return info;
}

}  // namespace wx::sim
