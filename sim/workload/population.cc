// The simulated population: contact graph, groups, daily shape (see
// population.h).
#include "sim/workload/population.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace wx::sim::workload {

size_t SizeDistribution::sample(Rng& rng) const {
  if (max <= min) return min;
  if (alpha <= 0) return min + rng.uniform(max - min + 1);
  // Inverse CDF over the (small) support; k = 0 weighs as k = 1.
  double total = 0;
  for (size_t k = min; k <= max; ++k) total += std::pow(static_cast<double>(std::max<size_t>(k, 1)), -alpha);
  double u = rng.uniform01() * total;
  for (size_t k = min; k <= max; ++k) {
    u -= std::pow(static_cast<double>(std::max<size_t>(k, 1)), -alpha);
    if (u < 0) return k;
  }
  return max;
}

double SizeDistribution::mean() const {
  if (max <= min) return static_cast<double>(min);
  if (alpha <= 0) return (static_cast<double>(min) + static_cast<double>(max)) / 2;
  double total = 0, weighted = 0;
  for (size_t k = min; k <= max; ++k) {
    const double w = std::pow(static_cast<double>(std::max<size_t>(k, 1)), -alpha);
    total += w;
    weighted += w * static_cast<double>(k);
  }
  return weighted / total;
}

ContactGraph make_contact_graph(Rng& rng, size_t users, const ContactGraphConfig& config) {
  ContactGraph g(users);
  if (users < 2) return g;
  const size_t cap = std::min({config.degree.max, users - 1, kContactsPerUserMax});
  std::vector<size_t> target(users);
  for (size_t i = 0; i < users; ++i) target[i] = std::min(config.degree.sample(rng), cap);
  auto linked = [&g](size_t a, size_t b) { return std::binary_search(g[a].begin(), g[a].end(), b); };
  auto link = [&g](size_t a, size_t b) {
    g[a].insert(std::upper_bound(g[a].begin(), g[a].end(), b), b);
    g[b].insert(std::upper_bound(g[b].begin(), g[b].end(), a), a);
  };
  const size_t window = std::clamp<size_t>(config.locality_window, 1, std::max<size_t>(1, (users - 1) / 2));
  for (size_t i = 0; i < users; ++i) {
    if (g[i].size() >= target[i]) continue;
    const size_t need = target[i] - g[i].size();
    size_t failures = 0;
    while (g[i].size() < target[i] && failures < 16 * need) {
      size_t j;
      if (config.locality > 0 && rng.bernoulli(config.locality)) {
        const size_t d = 1 + rng.uniform(window);
        j = rng.bernoulli(0.5) ? (i + d) % users : (i + users - d) % users;
      } else {
        j = rng.uniform(users);
      }
      // First a partner with room below its own target; after 8 × need
      // failures any partner below the cap.
      const size_t room = failures < 8 * need ? target[j] : cap;
      if (j == i || g[j].size() >= room || linked(i, j)) {
        ++failures;
        continue;
      }
      link(i, j);
    }
  }
  // The users the random draws left short pair up among themselves, in
  // index order (few: the last users find few partners with room).
  std::vector<size_t> short_of;
  for (size_t i = 0; i < users; ++i) {
    if (g[i].size() < target[i]) short_of.push_back(i);
  }
  for (size_t a = 0; a < short_of.size(); ++a) {
    const size_t i = short_of[a];
    for (size_t b = a + 1; b < short_of.size() && g[i].size() < target[i]; ++b) {
      const size_t j = short_of[b];
      if (g[j].size() < target[j] && !linked(i, j)) link(i, j);
    }
  }
  return g;
}

std::vector<GroupSpec> make_groups(Rng& rng, const std::vector<uint64_t>& uids, const ContactGraph& graph,
                                   const GroupShapeConfig& config) {
  std::vector<GroupSpec> out;
  if (uids.empty()) return out;
  for (size_t k = 0; k < config.groups; ++k) {
    GroupSpec s;
    s.group_id = config.first_group_id + k;
    const size_t size = std::clamp<size_t>(config.size.sample(rng), 1, std::min(uids.size(), kGroupSizeMax));
    const size_t creator = rng.uniform(uids.size());
    std::vector<size_t> members{creator};  // graph indices, in draw order
    std::vector<bool> in(uids.size(), false);
    in[creator] = true;
    std::vector<size_t> pool;  // the creator's contacts not yet drawn
    if (creator < graph.size()) pool = graph[creator];
    size_t attempts = 0;
    while (members.size() < size && attempts < 64 * size) {
      ++attempts;
      size_t m;
      if (!pool.empty() && rng.bernoulli(config.from_contacts_p)) {
        const size_t at = rng.uniform(pool.size());
        m = pool[at];
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(at));
      } else {
        m = rng.uniform(uids.size());
      }
      if (in[m]) continue;
      in[m] = true;
      members.push_back(m);
    }
    for (size_t m : members) s.members.push_back(uids[m]);
    for (size_t i = 0; i < config.senders_max && i < s.members.size(); ++i) s.senders.push_back(s.members[i]);
    out.push_back(std::move(s));
  }
  return out;
}

DailyShape::DailyShape(std::vector<std::pair<double, double>> points, double start_hour, Duration day)
    : points_(std::move(points)), start_hour_(start_hour), day_ns_(day.ns()) {
  if (points_.empty()) throw std::invalid_argument("daily shape: no points");
  if (day_ns_ <= 0) throw std::invalid_argument("daily shape: the day must be positive");
  peak_ = 0;
  for (const auto& [hour, f] : points_) {
    if (!(hour >= 0 && hour < 24)) throw std::invalid_argument("daily shape: an hour outside [0, 24)");
    if (!(f >= 0) || !std::isfinite(f)) throw std::invalid_argument("daily shape: a negative factor");
    peak_ = std::max(peak_, f);
  }
  if (!(peak_ > 0)) throw std::invalid_argument("daily shape: every factor is 0");
  std::stable_sort(points_.begin(), points_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

double DailyShape::factor(TimePoint t) const {
  if (points_.empty()) return 1;
  if (points_.size() == 1) return points_.front().second;
  const int64_t in_day = ((t.ns() % day_ns_) + day_ns_) % day_ns_;
  double hour = start_hour_ + 24.0 * static_cast<double>(in_day) / static_cast<double>(day_ns_);
  hour = std::fmod(hour, 24.0);
  // The points before and after `hour`, wrapping around midnight.
  size_t next = 0;
  while (next < points_.size() && points_[next].first <= hour) ++next;
  const auto& a = next == 0 ? points_.back() : points_[next - 1];
  const auto& b = next == points_.size() ? points_.front() : points_[next];
  double span = b.first - a.first;
  double off = hour - a.first;
  if (span <= 0) span += 24;
  if (off < 0) off += 24;
  return a.second + (b.second - a.second) * (off / span);
}

}  // namespace wx::sim::workload
