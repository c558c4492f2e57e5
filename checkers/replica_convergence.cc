#include "checkers/replica_convergence.h"

#include <fmt/format.h>

#include <utility>

namespace wx::checkers {

ReplicaConvergenceVerdict check_replica_convergence(const std::vector<ReplicaDump>& dumps,
                                                    const std::map<uint64_t, UserPlacement>& users,
                                                    size_t report_max) {
  ReplicaConvergenceVerdict v;
  struct Held {
    uint64_t version = 0;
    uint64_t hash = 0;
  };
  // uid → dump index → key → held. Keys of users not listed are ignored.
  std::map<uint64_t, std::map<size_t, std::map<std::string, Held>>> copies;
  for (size_t d = 0; d < dumps.size(); ++d) {
    for (const ReplicaItem& it : dumps[d].items) {
      if (!users.count(it.uid)) continue;
      copies[it.uid][d][it.key] = Held{it.version, it.value_hash};
    }
  }
  auto report = [&](std::string line) {
    if (v.violations.size() < report_max) v.violations.push_back(std::move(line));
  };
  for (const auto& [uid, where] : users) {
    ++v.users;
    const std::map<size_t, std::map<std::string, Held>>& mine = copies[uid];
    auto copy_of = [&](size_t d) -> const std::map<std::string, Held>& {
      static const std::map<std::string, Held> kNone;
      auto it = mine.find(d);
      return it == mine.end() ? kNone : it->second;
    };
    // The home records: per key the highest version of any home replica.
    std::map<std::string, Held> home;
    bool home_seen = false;
    for (size_t d = 0; d < dumps.size(); ++d) {
      if (dumps[d].datacenter != where.home || dumps[d].shard != where.shard) continue;
      home_seen = true;
      for (const auto& [key, h] : copy_of(d)) {
        Held& best = home[key];
        if (h.version > best.version) best = h;
      }
    }
    if (!home_seen) {
      ++v.divergent;
      report(fmt::format("user {}: no replica of its home group ({} shard {}) was dumped", uid, where.home,
                         where.shard));
      continue;
    }
    v.home_records += home.size();
    for (size_t d = 0; d < dumps.size(); ++d) {
      if (dumps[d].shard != where.shard) continue;
      ++v.compared;
      const std::map<std::string, Held>& held = copy_of(d);
      const std::string who = fmt::format("replica {} ({})", dumps[d].replica, dumps[d].datacenter);
      std::string first;
      size_t differences = 0;
      auto note = [&](std::string what) {
        if (differences++ == 0) first = std::move(what);
      };
      for (const auto& [key, h] : home) {
        auto it = held.find(key);
        if (it == held.end()) {
          note(fmt::format("lacks {} v{} held at home", key, h.version));
        } else if (it->second.version != h.version) {
          note(fmt::format("holds {} at v{}, home at v{}", key, it->second.version, h.version));
        } else if (it->second.hash != h.hash) {
          note(fmt::format("holds {} v{} with another value than home", key, h.version));
        }
      }
      for (const auto& [key, h] : held) {
        if (!home.count(key)) note(fmt::format("holds {} v{} that home does not", key, h.version));
      }
      if (differences > 0) {
        ++v.divergent;
        report(fmt::format("user {} (home {}): {} {}{}", uid, where.home, who, first,
                           differences > 1 ? fmt::format(" (and {} more differences)", differences - 1) : ""));
      }
    }
  }
  return v;
}

}  // namespace wx::checkers
