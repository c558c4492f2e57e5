// The simulated population (docs/messaging.md "Workload"): who knows whom,
// which groups exist, and how the send rate varies over a simulated day.
// Plain functions of a caller-given Rng (a stream the simulation derives by
// label), so the same seed gives the same graph and groups.
//
//   * SizeDistribution — an integer in [min, max], uniform (alpha 0) or a
//     truncated power law P(k) ∝ k^-alpha; used for contact degrees and
//     group sizes.
//   * make_contact_graph — a symmetric graph over users 0..n-1: every user
//     draws a target degree; users are visited in index order and each adds
//     edges to partners with room (degree below their own target), picked
//     with probability `locality` among the `locality_window` nearest
//     indices on either side (a ring: small-world-ish clusters), else
//     uniformly. After 8 × need failed draws a partner below degree_max is
//     accepted, then the user gives up; last, the users left short pair up
//     among themselves in index order. So degrees follow the distribution
//     approximately (never above degree_max); edges are symmetric and
//     neighbour lists sorted.
//   * make_groups — groups of sizes from a SizeDistribution: a uniform
//     creator, then members drawn from the creator's contacts with
//     probability `from_contacts_p` (while any is left), else uniformly; the
//     creator and the next senders_max - 1 members send.
//   * DailyShape — a piecewise-linear rate multiplier over the hour of the
//     simulated day (points hour → factor, wrapping at 24 h); senders draw
//     at the peak rate and keep a draw with probability factor / peak
//     (thinning: an exact non-homogeneous Poisson process).
// Bounded: degrees ≤ kContactsPerUserMax, attempts per edge and member.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nodes/runtime/random.h"
#include "nodes/runtime/time.h"

namespace wx::sim::workload {

inline constexpr size_t kContactsPerUserMax = 64;
inline constexpr size_t kGroupSizeMax = 10'000;

struct SizeDistribution {
  size_t min = 0, max = 0;
  double alpha = 0;  // 0: uniform over [min, max]; > 0: P(k) ∝ k^-alpha (k ≥ 1)
  static SizeDistribution fixed(size_t n) { return {n, n, 0}; }
  size_t sample(Rng& rng) const;
  double mean() const;
};

struct ContactGraphConfig {
  SizeDistribution degree = SizeDistribution::fixed(4);
  double locality = 0;          // probability a partner is drawn near the user (ring distance)
  size_t locality_window = 8;   // "near": at most this far on either side
  static ContactGraphConfig fixed(size_t degree) { return {SizeDistribution::fixed(degree), 0, 8}; }
};

// neighbours[i]: sorted indices of user i's contacts (symmetric).
using ContactGraph = std::vector<std::vector<size_t>>;
ContactGraph make_contact_graph(Rng& rng, size_t users, const ContactGraphConfig& config);

struct GroupSpec {
  uint64_t group_id = 0;
  std::vector<uint64_t> members;  // members[0] creates it
  std::vector<uint64_t> senders;  // members that send to it
};

struct GroupShapeConfig {
  size_t groups = 0;
  uint64_t first_group_id = 1;
  SizeDistribution size{3, 30, 0};
  double from_contacts_p = 0.8;
  size_t senders_max = 3;
};

// Groups over `uids` (uids[i] is graph node i); sizes are capped at
// uids.size().
std::vector<GroupSpec> make_groups(Rng& rng, const std::vector<uint64_t>& uids, const ContactGraph& graph,
                                   const GroupShapeConfig& config);

class DailyShape {
 public:
  DailyShape() = default;  // flat: factor 1 at every hour
  // (hour in [0, 24), factor ≥ 0) points, any order, at least one factor
  // > 0; throws std::invalid_argument otherwise.
  // `day` is the length of a simulated day (24 h; shorter compresses it).
  explicit DailyShape(std::vector<std::pair<double, double>> points, double start_hour = 0,
                      Duration day = minutes(24 * 60));
  bool flat() const { return points_.empty(); }
  // The multiplier at simulated time t (t = 0 is start_hour).
  double factor(TimePoint t) const;
  double peak() const { return peak_; }

 private:
  std::vector<std::pair<double, double>> points_;  // sorted by hour
  double start_hour_ = 0;
  int64_t day_ns_ = minutes(24 * 60).ns();
  double peak_ = 1;
};

}  // namespace wx::sim::workload
