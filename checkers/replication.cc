// Acknowledged writes on enough zones (see replication.h).
#include "checkers/replication.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <variant>

namespace wx::checkers::messaging {

namespace {
std::string secs(int64_t ns) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(6);
  o << static_cast<double>(ns) / 1e9 << "s";
  return o.str();
}
}  // namespace

ReplicationVerdict check_acks_on_zones(const History& history, const std::vector<StoredCopy>& copies,
                                       size_t zones_min, size_t examples_max) {
  // (user, seq) → zone → the first time that zone held it.
  std::map<std::pair<UserId, Seq>, std::map<std::string, int64_t>> held;
  for (const StoredCopy& c : copies) {
    auto& first = held[{c.user, c.seq}];
    auto [it, fresh] = first.emplace(c.zone, c.t_ns);
    if (!fresh) it->second = std::min(it->second, c.t_ns);
  }
  ReplicationVerdict v;
  v.zones_min = zones_min;
  // Judge each (user, seq) at its FIRST acknowledgement (later acks of a
  // retried send only come later).
  std::map<std::pair<UserId, Seq>, std::pair<int64_t, std::string>> first_ack;  // → (time, message id)
  for (const Event& e : history) {
    const auto* ack = std::get_if<SendAck>(&e.body);
    if (ack == nullptr) continue;
    for (const RecipientSeq& r : ack->recipients) {
      auto [it, fresh] = first_ack.emplace(std::make_pair(r.user, r.seq), std::make_pair(e.t_ns, ack->message_id));
      if (!fresh && e.t_ns < it->second.first) it->second = {e.t_ns, ack->message_id};
    }
  }
  for (const auto& [key, ack] : first_ack) {
    ++v.acks_checked;
    std::vector<std::string> before, after;
    auto it = held.find(key);
    if (it != held.end()) {
      for (const auto& [zone, t] : it->second) (t <= ack.first ? before : after).push_back(zone);
    }
    if (before.size() >= zones_min) continue;
    ++v.violations;
    if (v.examples.size() >= examples_max) continue;
    auto list = [](const std::vector<std::string>& zs) {
      std::string out;
      for (const auto& z : zs) out += (out.empty() ? "" : ", ") + z;
      return out.empty() ? std::string("none") : out;
    };
    v.examples.push_back("message " + ack.second + " acknowledged to u" + std::to_string(key.first) + " at seq " +
                         std::to_string(key.second) + " at " + secs(ack.first) + " was on " +
                         std::to_string(before.size()) + " zone(s) (" + list(before) + ") when acknowledged, " +
                         std::to_string(zones_min) + " required; later on: " + list(after));
  }
  return v;
}

}  // namespace wx::checkers::messaging
