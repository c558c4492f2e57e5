// Availability and latency objectives over a recorded messaging history.
//
// Like the messaging checker, this reads nothing but the history
// (checkers/history.h), so it judges a simulation and a real cluster alike.
// A logical send is every attempt of one (process, client message id); it is
// counted in the window that holds its first attempt, it succeeded if any
// attempt completed ok, and its latency is from the first attempt's invoke
// to the first ok completion (what the user waited, retries included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "checkers/history.h"

namespace wx::checkers::messaging {

// A time window [from_ns, until_ns) with a name ("before", "during", ...).
struct Window {
  std::string name;
  int64_t from_ns = 0;
  int64_t until_ns = 0;
};

struct WindowStats {
  Window window;
  uint64_t attempted = 0;  // logical sends whose first attempt is in the window
  uint64_t ok = 0;         // ... that succeeded
  uint64_t one_to_one = 0, group = 0;  // attempted, by conversation kind
  std::vector<int64_t> latencies_ns;   // of the successful ones, sorted
  double availability() const { return attempted == 0 ? 0.0 : static_cast<double>(ok) / static_cast<double>(attempted); }
  // Successful sends per second of the window.
  double goodput_per_s() const;
  // Nearest-rank percentile (p in [0, 1]) of the latencies; 0 if none.
  int64_t latency_ns(double p) const;
};

// Stats per window, in the order given. Windows may overlap. With
// `include`, only the sends of processes it accepts count.
std::vector<WindowStats> send_stats(const History& history, const std::vector<Window>& windows,
                                    const std::function<bool(const std::string& process)>& include = {});
// The same for syncs: every sync operation (a sync is not retried under one
// id: each is its own operation) counts in the window of its invoke and
// succeeded if it completed ok; latency from invoke to completion.
std::vector<WindowStats> sync_stats(const History& history, const std::vector<Window>& windows,
                                    const std::function<bool(const std::string& process)>& include = {});

}  // namespace wx::checkers::messaging
