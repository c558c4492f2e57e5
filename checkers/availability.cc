// Availability and latency over a history (see availability.h).
#include "checkers/availability.h"

#include <algorithm>
#include <map>
#include <utility>
#include <variant>

namespace wx::checkers::messaging {

double WindowStats::goodput_per_s() const {
  const int64_t len = window.until_ns - window.from_ns;
  return len <= 0 ? 0.0 : static_cast<double>(ok) * 1e9 / static_cast<double>(len);
}

int64_t WindowStats::latency_ns(double p) const {
  if (latencies_ns.empty()) return 0;
  const double rank = p * static_cast<double>(latencies_ns.size());
  size_t idx = rank <= 1 ? 0 : static_cast<size_t>(rank + 0.999999) - 1;
  return latencies_ns[std::min(idx, latencies_ns.size() - 1)];
}

std::vector<WindowStats> send_stats(const History& history, const std::vector<Window>& windows,
                                    const std::function<bool(const std::string& process)>& include) {
  struct Track {
    int64_t first_invoke = -1;
    int64_t ok_at = -1;
    bool group = false;
  };
  std::map<std::pair<std::string, uint64_t>, std::string> op_cmid;  // (process, op id) → client msg id
  std::map<std::pair<std::string, std::string>, Track> sends;        // (process, client msg id)
  for (const Event& e : history) {
    if (const auto* inv = std::get_if<Invoke>(&e.body)) {
      if (include && !include(e.process)) continue;
      if (const auto* s = std::get_if<SendRequest>(&inv->request)) {
        op_cmid[{e.process, inv->op_id}] = s->client_msg_id;
        Track& t = sends[{e.process, s->client_msg_id}];
        if (t.first_invoke < 0 || e.t_ns < t.first_invoke) t.first_invoke = e.t_ns;
        t.group = s->to.kind == ConversationKind::group;
      }
    }
  }
  for (const Event& e : history) {
    const auto* c = std::get_if<Completion>(&e.body);
    if (c == nullptr || c->op != OpKind::send || c->outcome != Outcome::ok) continue;
    auto it = op_cmid.find({e.process, c->op_id});
    if (it == op_cmid.end()) continue;
    Track& t = sends[{e.process, it->second}];
    if (t.ok_at < 0 || e.t_ns < t.ok_at) t.ok_at = e.t_ns;
  }
  std::vector<WindowStats> out;
  for (const Window& w : windows) {
    WindowStats s;
    s.window = w;
    for (const auto& [key, t] : sends) {
      if (t.first_invoke < w.from_ns || t.first_invoke >= w.until_ns) continue;
      ++s.attempted;
      ++(t.group ? s.group : s.one_to_one);
      if (t.ok_at < 0) continue;
      ++s.ok;
      s.latencies_ns.push_back(t.ok_at - t.first_invoke);
    }
    std::sort(s.latencies_ns.begin(), s.latencies_ns.end());
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<WindowStats> sync_stats(const History& history, const std::vector<Window>& windows,
                                    const std::function<bool(const std::string& process)>& include) {
  struct Track {
    int64_t invoke = -1;
    int64_t ok_at = -1;
  };
  std::map<std::pair<std::string, uint64_t>, Track> syncs;  // (process, op id)
  for (const Event& e : history) {
    if (const auto* inv = std::get_if<Invoke>(&e.body)) {
      if (!std::holds_alternative<SyncRequest>(inv->request)) continue;
      if (include && !include(e.process)) continue;
      syncs[{e.process, inv->op_id}].invoke = e.t_ns;
    } else if (const auto* c = std::get_if<Completion>(&e.body)) {
      if (c->op != OpKind::sync || c->outcome != Outcome::ok) continue;
      auto it = syncs.find({e.process, c->op_id});
      if (it != syncs.end() && it->second.ok_at < 0) it->second.ok_at = e.t_ns;
    }
  }
  std::vector<WindowStats> out;
  for (const Window& w : windows) {
    WindowStats s;
    s.window = w;
    for (const auto& [key, t] : syncs) {
      if (t.invoke < w.from_ns || t.invoke >= w.until_ns) continue;
      ++s.attempted;
      if (t.ok_at < 0) continue;
      ++s.ok;
      s.latencies_ns.push_back(t.ok_at - t.invoke);
    }
    std::sort(s.latencies_ns.begin(), s.latencies_ns.end());
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace wx::checkers::messaging
