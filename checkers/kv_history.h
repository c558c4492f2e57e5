// A recorded history of client operations on the replicated key-value store.
//
// This is the input of the linearizability checker (checkers/
// linearizability.h). It is plain data on purpose: the simulator's workload
// fills it, and so can a recorder beside a real cluster, so one checker judges
// both. Nothing here refers to the simulator.
//
// One `KvOp` is one client call as the client saw it: what it asked, what it
// got back (or that it never learned the result), when it sent the call and
// when the answer arrived. All times of one history must come from one clock
// (one Runtime's `now()`, or the simulator's true time — never the skewed
// local clocks of different nodes), because the checker orders operations by
// them: A precedes B exactly when A completed strictly before B was invoked.
//
// The store, per key (what the checker models):
//   get(key)                    -> found, value, version   (not found: version 0)
//   put(key, value)             -> the new version
//   cas(key, expected, value)   -> ok with the new version, or failure carrying
//                                  the current version (a failed cas changes nothing)
//   remove(key)                 -> ok; the key is absent again (version 0) and
//                                  the next write creates version 1
// Versions of a key start at 1 and grow by exactly 1 per successful write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nodes/runtime/time.h"

namespace wx::checkers {

enum class KvOpKind : uint8_t { get, put, cas, remove };

enum class KvOutcome : uint8_t {
  // The call returned a result; the outputs below are filled.
  ok,
  // cas only: the store refused because the version differed; `version` is
  // the current version it reported. The call had no effect.
  cas_failed,
  // The client never learned the result (timeout, broken connection, an error
  // that does not prove the call had no effect). The call may have taken
  // effect once, at any time after `invoke_time`, or never.
  unknown,
};

struct KvOp {
  uint64_t client_id = 0;  // for reading reports only
  KvOpKind kind = KvOpKind::get;
  std::string key;

  // Inputs.
  std::string write_value;        // put, cas: the value written
  uint64_t expected_version = 0;  // cas: the version the caller expects (0: key absent)

  // Outcome and outputs (outputs are read only when `outcome` says so).
  KvOutcome outcome = KvOutcome::unknown;
  bool read_found = false;  // get, ok: whether the key existed
  std::string read_value;   // get, ok, found: the value read
  // get, ok: the version read (0 when not found); put or cas, ok: the version
  // the write created; cas, cas_failed: the current version reported.
  uint64_t version = 0;

  // When the client sent the call, and when the result arrived. Set
  // `complete_time` exactly when `outcome` is not `unknown`.
  TimePoint invoke_time;
  std::optional<TimePoint> complete_time;
};

// Operations in any order; the checker sorts by key and time itself. A report
// names operations by their index in this vector.
using KvHistory = std::vector<KvOp>;

}  // namespace wx::checkers
