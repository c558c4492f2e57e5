// Linearizability checker for recorded key-value histories (history.h).
//
// Question answered: could every key of the store have behaved like one
// register that executes each operation atomically at some instant between
// the operation's invocation and its completion? Linearizability is
// compositional, so the history is split by key and each key is judged alone.
//
// Per key the checker searches for a linearization in the manner of Wing &
// Gong and Lowe (operations are tried "just in time": only ops invoked before
// the earliest pending completion are candidates), memoising every visited
// (set of linearized ops, register state) as Porcupine does, so that no
// configuration is explored twice. Operations whose outcome is unknown never
// complete: they may take effect at any point after their invocation, or
// never. The search is exhaustive, so a `violation` is a proof; it is bounded
// (steps and memo bytes per key), and a key whose search runs out of budget
// is reported `unknown_budget`, never as a violation or as linearizable.
//
// For a violation the checker also shrinks the key's history to a core: the
// operations with known outcomes that contradict each other even when every
// other write of the key is taken as outcome-unknown and every other read is
// ignored; treating any one core op that way too removes the contradiction.
// The report prints the core, the longest linearizable prefix found and why no
// operation could come next. See docs/checkers.md.
//
// Output is deterministic: keys sorted, operations named by history index, no
// dependence on pointers, hash order or wall-clock time. Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "checkers/kv_history.h"

namespace wx::checkers {

// Search steps (one candidate tried or one backtrack) allowed per key.
inline constexpr uint64_t kSearchStepsPerKeyMaxDefault = 5'000'000;
// Memory for the memo of visited configurations, per key.
inline constexpr uint64_t kMemoBytesPerKeyMaxDefault = uint64_t{256} << 20;
// Keys with more operations than this are reported without shrinking to a core.
inline constexpr size_t kMinimizeOpsPerKeyMaxDefault = 2'000;
// Search steps allowed for all re-checks that shrink one key's violation.
inline constexpr uint64_t kMinimizeStepsPerKeyMaxDefault = 20'000'000;

struct LinearizabilityOptions {
  uint64_t search_steps_per_key_max = kSearchStepsPerKeyMaxDefault;
  uint64_t memo_bytes_per_key_max = kMemoBytesPerKeyMaxDefault;
  // Shrink each violation to a core of operations (costs re-checks).
  bool minimize_violations = true;
  size_t minimize_ops_per_key_max = kMinimizeOpsPerKeyMaxDefault;
  uint64_t minimize_steps_per_key_max = kMinimizeStepsPerKeyMaxDefault;
  // Prunes the placements of unknown-outcome writes that version numbers rule
  // out (docs/checkers.md). Sound; off only to cross-check it in tests.
  bool version_pruning = true;
};

enum class KeyVerdict : uint8_t {
  linearizable,
  violation,       // proven: no linearization exists
  unknown_budget,  // the search ran out of steps or memory: no verdict
  malformed,       // the recorded history breaks the format of history.h
};
std::string_view to_string(KeyVerdict v);

// The register of one key at some point of a linearization.
struct KvState {
  uint64_t version = 0;  // 0: absent
  std::string value;     // meaningful when version > 0
};

// Why an operation could not be placed next at the point where the search
// got stuck.
struct CandidateNote {
  size_t op_index = 0;  // index into the history
  std::string reason;
};

// The deepest point one exhaustive search reached before it failed.
struct StuckPoint {
  // Operations (history indices) in the order they were linearized: the
  // longest linearizable prefix the search found.
  std::vector<size_t> prefix_ops;
  KvState state_after_prefix;
  // The operation whose completion the search reached without having been
  // able to linearize it: it had to take effect by then and could not.
  size_t blocking_op = 0;
  // Every operation that could have been linearized next, with the reason it
  // did not lead anywhere (the blocking op is among them).
  std::vector<CandidateNote> candidates;
};

struct KeyResult {
  std::string key;
  KeyVerdict verdict = KeyVerdict::linearizable;
  size_t op_count = 0;           // operations of this key in the history
  uint64_t search_steps = 0;     // of the first full search (not of shrinking)
  std::string malformed_reason;  // for `malformed`: the first bad op and why

  // For `violation` only.
  // Operations with known outcomes (history indices, by invocation) that
  // contradict each other even when every other write of the key is taken as
  // outcome-unknown and every other read is ignored. Empty when shrinking was
  // off or the key had more than `minimize_ops_per_key_max` ops.
  std::vector<size_t> core_ops;
  // True when it was checked that treating any single core op that way too
  // (read ignored, write outcome-unknown) makes the key linearizable; false
  // when the shrink budget ran out first (the core may then be larger).
  bool core_is_minimal = false;
  // Where the search got stuck: with a core, on the weakened history (core as
  // recorded, the key's other writes outcome-unknown, other reads ignored);
  // without one, on the key's whole history.
  StuckPoint stuck;
};

struct LinearizabilityReport {
  std::vector<KeyResult> keys;  // every key of the history, sorted by key
  size_t op_count = 0;

  size_t count(KeyVerdict v) const;
  // Every key linearizable: the history is linearizable.
  bool linearizable() const { return count(KeyVerdict::linearizable) == keys.size(); }
  // At least one key proven not linearizable (or malformed).
  bool failed() const { return count(KeyVerdict::violation) + count(KeyVerdict::malformed) > 0; }
  // The result for `key`, or nullptr if the history has no such key.
  const KeyResult* find(std::string_view key) const;
};

// Judges every key of `history`. Never throws on bad input: malformed
// operations make their key `malformed`.
LinearizabilityReport check_linearizability(const KvHistory& history,
                                            const LinearizabilityOptions& options = {});

// One operation on one line, e.g.
//   #12 c3 put "v7" -> v4  [1.000200000s .. 1.000900000s]
std::string format_op(const KvHistory& history, size_t op_index);
// A key's verdict, and for a violation the core, the prefix and the reasons.
std::string format_key_result(const KvHistory& history, const KeyResult& result);
// A summary line, then every key that is not linearizable.
std::string format_report(const KvHistory& history, const LinearizabilityReport& report);

}  // namespace wx::checkers
