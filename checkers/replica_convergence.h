// The replica-convergence checker (docs/multi-dc.md "Checking convergence"):
// after heal and quiescence, every datacenter's copy of every user's records
// equals the user's HOME datacenter's records, key by key, version by
// version, value by value.
//
// It reads recorded facts only — one ReplicaDump per KV replica, taken at the
// end of a run (a simulation dumps its replicas' state machines; a real
// cluster scans each replica the same way) — so the same verdict judges a
// simulation and a real cluster. The home records of a user are, per key,
// the highest version any replica of the home group holds; every replica of
// the user's shard group in EVERY datacenter (the home's own three included)
// must hold exactly those (no key missing, none extra, same versions, same
// value hashes).
//
// Deterministic: the same facts give the same verdict and text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wx::checkers {

// One user record as a replica holds it.
struct ReplicaItem {
  uint64_t uid = 0;  // whose record (shard::user_of_key)
  std::string key;
  uint64_t version = 0;
  uint64_t value_hash = 0;  // FNV-1a 64 of the value
};

// The user records one replica held at the end.
struct ReplicaDump {
  std::string datacenter;
  std::string replica;  // the node's name
  uint32_t shard = 0;   // the shard group it belongs to (same index in every datacenter)
  std::vector<ReplicaItem> items;
};

// A user: where it lives.
struct UserPlacement {
  std::string home;
  uint32_t shard = 0;
};

struct ReplicaConvergenceVerdict {
  bool ok() const { return divergent == 0; }
  size_t users = 0;          // users judged
  size_t home_records = 0;   // records of the home copies, all users
  size_t compared = 0;       // (user, replica) copies compared
  size_t divergent = 0;      // copies that differ from the home records
  // The first differences, one line each ("user 1003: replica kv-dc2-s0-b
  // (dc2) lacks inbox/1003/... v2 held at home"), at most report_max.
  std::vector<std::string> violations;
};

ReplicaConvergenceVerdict check_replica_convergence(const std::vector<ReplicaDump>& dumps,
                                                    const std::map<uint64_t, UserPlacement>& users,
                                                    size_t report_max = 20);

}  // namespace wx::checkers
