// The per-key linearization search, shrinking of violations, and reports.
//
// Search (one key): the ops' invocations and completions form one list of
// events in time order (at equal times invocations first, so touching
// intervals count as concurrent). Walking the list from its head, an
// invocation is a candidate: if the register model accepts the op in the
// current state and the resulting (set of linearized ops, state) was never
// visited, the op is linearized — its two events are unlinked from the list —
// and the walk restarts at the head. Reaching a completion means that op had
// to be linearized by now and was not: backtrack (undo the last op and try the
// candidates after it). Reaching the end of the list means every op with a
// known outcome is linearized: success. Unknown-outcome ops have no
// completion event, so they are never required; left over, they are the ops
// that never took effect.
//
// Read-only ops (completed gets, failed cas) that fit the current state are
// linearized at once as forced moves, without branching: placing such a read
// as early as it fits never loses a linearization. Only writes branch.
//
// Model abstraction that keeps the state space small:
// * values are interned; every value that no completed get returned is the
//   same "unread" value (nothing can tell such values apart);
// * unknown-outcome writes with unread values and the same inputs are
//   interchangeable: only the earliest-invoked unapplied one is tried;
// * version pruning: an unknown write may not create a version above every
//   version any completed op reports (nothing completed could follow it before
//   a remove erases it), nor a version that a pending completed write reports
//   creating or a pending completed read saw with another value, unless a
//   remove could still come in between; and an op no version pins (an
//   unknown write, any remove) may not be placed where one of the next
//   pending completed ops could no longer reach the version it reports.
#include "checkers/linearizability.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "nodes/runtime/random.h"

namespace wx::checkers {
namespace {

// Report limits: how much of a value, a prefix and a candidate list is printed.
constexpr size_t kValueBytesShownMax = 40;
constexpr size_t kPrefixOpsShownMax = 20;
constexpr size_t kCandidatesShownMax = 16;
// Memo hash table: initial slots (a power of two) and the fill that triggers growth.
constexpr size_t kMemoSlotsInitial = 1024;
constexpr size_t kMemoLoadPercentMax = 50;

constexpr uint32_t kAbsentValueId = 0;
constexpr uint32_t kUnreadValueId = 1;  // any value no completed get returned
constexpr uint32_t kFirstReadValueId = 2;

constexpr int32_t kNil = -1;
// Pending completed ops (earliest completions first) whose reachability a
// placement of an unpinned op is checked against.
constexpr int32_t kFrontierOpsChecked = 8;

// The abstract register: version 0 means absent.
struct State {
  uint64_t version = 0;
  uint32_t value_id = kAbsentValueId;
  bool operator==(const State&) const = default;
};

// An operation as the search sees it (after dropping and weakening).
struct SearchOp {
  size_t history_index = 0;
  KvOpKind kind = KvOpKind::get;
  // Completed: must take effect inside its interval and its outputs must match.
  bool known = true;
  bool cas_failed = false;  // a completed cas that reported failure
  bool read_found = false;
  uint64_t version = 0;  // as KvOp::version
  uint64_t expected_version = 0;
  uint32_t write_value_id = kAbsentValueId;
  uint32_t read_value_id = kAbsentValueId;
  int64_t invoke_ns = 0;
  int64_t complete_ns = 0;  // known ops only
  int32_t sym_class = -1;   // interchangeable unknown writes share a class
};

bool is_write(KvOpKind k) {
  return k != KvOpKind::get;
}

// ---------------------------------------------------------------------------
// Building the search input.

// `weakened[i]` (parallel to `indices`): a completed get or failed cas is
// dropped, a completed write becomes unknown. Unknown gets are always dropped:
// they neither change nor reveal anything.
std::vector<SearchOp> build_search_ops(const KvHistory& history, const std::vector<size_t>& indices,
                                       const std::vector<bool>& weakened) {
  assert(weakened.empty() || weakened.size() == indices.size());
  std::vector<SearchOp> ops;
  ops.reserve(indices.size());
  std::unordered_map<std::string, uint32_t> read_ids;  // content-keyed: order-free use only
  for (size_t pos = 0; pos < indices.size(); ++pos) {
    const KvOp& op = history[indices[pos]];
    const bool weak = !weakened.empty() && weakened[pos];
    const bool known = op.outcome != KvOutcome::unknown && !weak;
    if (!is_write(op.kind) && !known) continue;
    if (op.outcome == KvOutcome::cas_failed && !known) continue;  // had no effect
    SearchOp s;
    s.history_index = indices[pos];
    s.kind = op.kind;
    s.known = known;
    s.cas_failed = known && op.outcome == KvOutcome::cas_failed;
    s.read_found = op.read_found;
    s.version = op.version;
    s.expected_version = op.expected_version;
    s.invoke_ns = op.invoke_time.ns();
    s.complete_ns = known ? op.complete_time->ns() : 0;
    if (known && op.kind == KvOpKind::get && op.read_found) {
      auto [it, added] = read_ids.try_emplace(op.read_value, 0);
      if (added) it->second = kFirstReadValueId + static_cast<uint32_t>(read_ids.size() - 1);
      s.read_value_id = it->second;
    }
    ops.push_back(std::move(s));
  }
  for (SearchOp& s : ops) {
    if (s.kind != KvOpKind::put && s.kind != KvOpKind::cas) continue;
    const KvOp& op = history[s.history_index];
    auto it = read_ids.find(op.write_value);
    s.write_value_id = it == read_ids.end() ? kUnreadValueId : it->second;
  }
  return ops;
}

// ---------------------------------------------------------------------------
// The memo: a set of (linearized-op bitset, state), open addressing over an arena.

class Memo {
 public:
  explicit Memo(size_t words) : words_(words), slots_(kMemoSlotsInitial, 0) {}

  // Adds the configuration; false when it was already present.
  bool insert(const std::vector<uint64_t>& bits, uint64_t bits_hash, const State& s) {
    assert(bits.size() == words_);
    if ((hashes_.size() + 1) * 100 > slots_.size() * kMemoLoadPercentMax) grow();
    const uint64_t h = entry_hash(bits_hash, s);
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0) {
        assert(hashes_.size() < std::numeric_limits<uint32_t>::max() - 1);
        hashes_.push_back(h);
        states_.push_back(s);
        arena_.insert(arena_.end(), bits.begin(), bits.end());
        slots_[i] = static_cast<uint32_t>(hashes_.size());
        return true;
      }
      const size_t e = slot - 1;
      if (hashes_[e] == h && states_[e] == s &&
          std::equal(bits.begin(), bits.end(), arena_.begin() + static_cast<ptrdiff_t>(e * words_)))
        return false;
    }
  }

  uint64_t bytes() const {
    return arena_.size() * sizeof(uint64_t) + hashes_.size() * sizeof(uint64_t) +
           states_.size() * sizeof(State) + slots_.size() * sizeof(uint32_t);
  }

 private:
  static uint64_t entry_hash(uint64_t bits_hash, const State& s) {
    return mix64(bits_hash ^ mix64(s.version * 0x9e3779b97f4a7c15ULL + s.value_id));
  }

  void grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    const size_t mask = slots.size() - 1;
    for (size_t e = 0; e < hashes_.size(); ++e) {
      size_t i = hashes_[e] & mask;
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = static_cast<uint32_t>(e + 1);
    }
    slots_ = std::move(slots);
  }

  size_t words_;
  std::vector<uint32_t> slots_;  // 0: empty, else entry index + 1
  std::vector<uint64_t> hashes_;
  std::vector<State> states_;
  std::vector<uint64_t> arena_;  // words_ per entry
};

// ---------------------------------------------------------------------------
// The search over one key.

enum class StepCode : uint8_t {
  ok,
  read_mismatch,                // a get's outputs differ from the register
  wrong_new_version,            // a completed write reported another new version
  expected_mismatch,            // a cas (ok or unknown) whose expected version is not current
  failed_cas_current_mismatch,  // a failed cas reported another current version
  failed_cas_would_succeed,     // a failed cas reported current == expected
  unobservable_version,         // pruning: above every reported version
  version_claimed,              // pruning: a pending completed write must create that version
  observed_other_value,         // pruning: a pending read saw that version with another value
  too_few_writes_left,          // pruning: the next op to complete needs more writes than remain
  needs_a_remove,               // pruning: the next op to complete needs an older version
};

struct Step {
  StepCode code = StepCode::ok;
  State next;              // ok: the new state; pruned: the state the placement would leave
  int32_t because = kNil;  // pruned: the op that rules the placement out
  uint64_t need = 0;       // pruned by the frontier: the version `because` needs
};

// A fixed set of ops sorted by one of their times.
struct TimeIndex {
  std::vector<int32_t> pos_of_op;  // op -> position here, or -1
  std::vector<int32_t> ops;        // position -> op
  std::vector<int64_t> times_ns;   // sorted

  // Positions whose time is at or before `t_ns`.
  size_t count_by(int64_t t_ns) const {
    return static_cast<size_t>(std::upper_bound(times_ns.begin(), times_ns.end(), t_ns) -
                               times_ns.begin());
  }
};

// Counts which positions of a TimeIndex are still pending (a Fenwick tree).
class PendingCounts {
 public:
  explicit PendingCounts(size_t n = 0) : tree_(n + 1, 0) {
    for (size_t k = 0; k < n; ++k) add(k, 1);
  }
  void add(size_t pos, int delta) {
    for (size_t k = pos + 1; k < tree_.size(); k += k & (~k + 1)) tree_[k] += delta;
  }
  // Pending among the first `count` positions.
  int32_t prefix(size_t count) const {
    int32_t sum = 0;
    for (size_t k = count; k > 0; k &= k - 1) sum += tree_[k];
    return sum;
  }
  // The position of the `rank`-th pending entry (1-based), or nullopt.
  std::optional<size_t> select(int32_t rank) const {
    const size_t n = tree_.size() - 1;
    size_t pos = 0;
    int32_t want = rank;
    size_t step = 1;
    while (step * 2 <= n) step *= 2;
    for (; step > 0; step /= 2) {
      if (pos + step <= n && tree_[pos + step] < want) {
        pos += step;
        want -= tree_[pos];
      }
    }
    if (pos >= n) return std::nullopt;
    return pos;  // prefix(pos + 1) reaches `rank`: 0-based position pos
  }

 private:
  std::vector<int32_t> tree_;
};

// What is linearized so far, in the forms the search needs. Changed only
// through KeySearch::toggle, so that all parts stay consistent.
struct Progress {
  std::vector<uint64_t> bits;     // linearized ops (search-op ids)
  uint64_t bits_hash = 0;         // Zobrist hash of `bits`
  std::vector<uint32_t> applied;  // per class: how many members are linearized
  PendingCounts removes;          // by invocation
  PendingCounts writes;           // puts and cas that can create a version, by invocation
  PendingCounts known;            // completed ops that need a version, by completion

  bool done(int32_t j) const { return bits[static_cast<size_t>(j) / 64] >> (j % 64) & 1; }
};

enum class SearchVerdict : uint8_t { linearizable, violation, budget };

// The deepest point of a failed search, in search-op ids.
struct RawStuck {
  std::vector<int32_t> prefix;
  int32_t blocking = kNil;
  std::vector<int32_t> candidates;
};

struct SearchResult {
  SearchVerdict verdict = SearchVerdict::linearizable;
  uint64_t steps = 0;
  RawStuck stuck;  // violation only
};

class KeySearch {
 public:
  KeySearch(std::vector<SearchOp> ops, bool version_pruning, uint64_t steps_max,
            uint64_t memo_bytes_max)
      : ops_(std::move(ops)), steps_max_(steps_max), memo_bytes_max_(memo_bytes_max) {
    init_pruning(version_pruning);
    init_classes();
    zobrist_.resize(ops_.size());
    for (size_t j = 0; j < ops_.size(); ++j) zobrist_[j] = mix64(0x6c696e6561726973ULL + j);
  }

  // Nothing linearized yet.
  Progress start() const {
    Progress p;
    p.bits.assign((ops_.size() + 63) / 64, 0);
    p.applied.assign(class_members_.size(), 0);
    p.removes = PendingCounts(removes_.times_ns.size());
    p.writes = PendingCounts(writes_.times_ns.size());
    p.known = PendingCounts(known_.times_ns.size());
    return p;
  }

  // Marks op `j` linearized if it was not, and not linearized if it was.
  void toggle(Progress& p, int32_t j) const {
    const SearchOp& op = ops_[static_cast<size_t>(j)];
    const bool now_done = !p.done(j);
    p.bits[static_cast<size_t>(j) / 64] ^= uint64_t{1} << (j % 64);
    p.bits_hash ^= zobrist_[static_cast<size_t>(j)];
    const int delta = now_done ? 1 : -1;
    if (op.sym_class >= 0) {
      uint32_t& applied = p.applied[static_cast<size_t>(op.sym_class)];
      applied = now_done ? applied + 1 : applied - 1;
    }
    const auto at = static_cast<size_t>(j);
    if (removes_.pos_of_op[at] >= 0)
      p.removes.add(static_cast<size_t>(removes_.pos_of_op[at]), -delta);
    if (writes_.pos_of_op[at] >= 0)
      p.writes.add(static_cast<size_t>(writes_.pos_of_op[at]), -delta);
    if (known_.pos_of_op[at] >= 0) p.known.add(static_cast<size_t>(known_.pos_of_op[at]), -delta);
  }

  SearchResult run();

  // The model: `op` applied to `s` (with `p` linearized), or why it cannot be.
  Step step(const State& s, int32_t j, const Progress& p) const {
    const SearchOp& op = ops_[static_cast<size_t>(j)];
    State next = s;
    switch (op.kind) {
      case KvOpKind::get:
        if (op.read_found) {
          if (op.version == 0 || s.version != op.version || s.value_id != op.read_value_id)
            return {StepCode::read_mismatch, s};
        } else if (s.version != 0 || op.version != 0) {
          return {StepCode::read_mismatch, s};
        }
        return {StepCode::ok, s};
      case KvOpKind::put:
        next = State{s.version + 1, op.write_value_id};
        if (op.known && op.version != next.version) return {StepCode::wrong_new_version, s};
        break;
      case KvOpKind::cas:
        if (op.cas_failed) {
          if (op.version == op.expected_version) return {StepCode::failed_cas_would_succeed, s};
          if (s.version != op.version) return {StepCode::failed_cas_current_mismatch, s};
          return {StepCode::ok, s};
        }
        if (s.version != op.expected_version) return {StepCode::expected_mismatch, s};
        next = State{s.version + 1, op.write_value_id};
        if (op.known && op.version != next.version) return {StepCode::wrong_new_version, s};
        break;
      case KvOpKind::remove:
        next = State{0, kAbsentValueId};
        break;
    }
    if (pruning_ && !op.known) {
      const Step prune = prune_unknown_write(next, p);
      if (prune.code != StepCode::ok) return prune;
    }
    if (pruning_ && (!op.known || op.kind == KvOpKind::remove)) {
      const Step prune = prune_by_frontier(j, next, p);
      if (prune.code != StepCode::ok) return prune;
    }
    return {StepCode::ok, next};
  }

  const std::vector<SearchOp>& ops() const { return ops_; }
  bool monotone() const { return monotone_; }
  // Is op `j` the one of its class to try? (Members of a class are always
  // linearized in invocation order.)
  bool is_class_turn(int32_t j, const Progress& p) const {
    const int32_t c = ops_[static_cast<size_t>(j)].sym_class;
    if (c < 0) return true;
    const auto& members = class_members_[static_cast<size_t>(c)];
    const uint32_t k = p.applied[static_cast<size_t>(c)];
    return k < members.size() && members[k] == j;
  }
  // The member of op `j`'s class to try in its place (search-op id).
  int32_t class_turn(int32_t j, const Progress& p) const {
    const auto c = static_cast<size_t>(ops_[static_cast<size_t>(j)].sym_class);
    return class_members_[c][p.applied[c]];
  }

 private:
  void init_pruning(bool version_pruning) {
    pruning_ = version_pruning;
    monotone_ = std::none_of(ops_.begin(), ops_.end(),
                             [](const SearchOp& op) { return op.kind == KvOpKind::remove; });
    removes_ = make_index([](const SearchOp& op) { return op.kind == KvOpKind::remove; }, false);
    writes_ = make_index(
        [](const SearchOp& op) {
          return op.kind == KvOpKind::put || (op.kind == KvOpKind::cas && !op.cas_failed);
        },
        false);
    known_ = make_index([](const SearchOp& op) { return op.known && op.kind != KvOpKind::remove; },
                        true);
    if (!pruning_) return;
    for (size_t j = 0; j < ops_.size(); ++j) {
      const SearchOp& op = ops_[j];
      if (!op.known || op.kind == KvOpKind::remove) continue;  // a remove reports no version
      max_pinned_ = std::max(max_pinned_, op.version);
      if ((op.kind == KvOpKind::put || op.kind == KvOpKind::cas) && !op.cas_failed)
        claimers_[op.version].push_back(static_cast<int32_t>(j));
      if (op.kind == KvOpKind::get && op.read_found)
        observers_[op.version].push_back(static_cast<int32_t>(j));
    }
  }

  // Unknown writes with unread values and equal inputs behave identically.
  void init_classes() {
    std::map<std::pair<int, uint64_t>, int32_t> class_of;
    std::vector<int32_t> order(ops_.size());
    for (size_t j = 0; j < ops_.size(); ++j) order[j] = static_cast<int32_t>(j);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const SearchOp& x = ops_[static_cast<size_t>(a)];
      const SearchOp& y = ops_[static_cast<size_t>(b)];
      return std::pair(x.invoke_ns, a) < std::pair(y.invoke_ns, b);
    });
    for (int32_t j : order) {
      SearchOp& op = ops_[static_cast<size_t>(j)];
      if (op.known || !is_write(op.kind)) continue;
      if (op.kind != KvOpKind::remove && op.write_value_id != kUnreadValueId) continue;
      const uint64_t input = op.kind == KvOpKind::cas ? op.expected_version : 0;
      auto [it, added] = class_of.try_emplace({static_cast<int>(op.kind), input},
                                              static_cast<int32_t>(class_members_.size()));
      if (added) class_members_.emplace_back();
      op.sym_class = it->second;
      class_members_[static_cast<size_t>(it->second)].push_back(j);
    }
  }

  // Placements of an unknown write that cannot matter or cannot work.
  // * Above every reported version: versions only grow until a remove, so
  //   until then no completed op can follow except removes, and a remove
  //   erases the write; dropping it (and the unknown writes after it up to
  //   that remove) gives an equally valid linearization.
  // * Creating version c while a completed write that reports creating c, or
  //   a completed read that saw c with another value, is still pending: that
  //   op then needs the version to go back, which only a remove does, and a
  //   remove that can be linearized before the op completes must exist.
  Step prune_unknown_write(const State& next, const Progress& p) const {
    if (next.version > max_pinned_) return {StepCode::unobservable_version, next, kNil};
    if (auto it = claimers_.find(next.version); it != claimers_.end()) {
      for (int32_t w : it->second)
        if (!p.done(w) && !remove_possible_by(p, ops_[static_cast<size_t>(w)].complete_ns))
          return {StepCode::version_claimed, next, w};
    }
    if (auto it = observers_.find(next.version); it != observers_.end()) {
      for (int32_t g : it->second) {
        const SearchOp& read = ops_[static_cast<size_t>(g)];
        if (read.read_value_id != next.value_id && !p.done(g) &&
            !remove_possible_by(p, read.complete_ns))
          return {StepCode::observed_other_value, next, g};
      }
    }
    return {StepCode::ok, next, kNil};
  }

  // A placement (of an unknown write, or of any remove: the ops no version
  // pins) must leave the pending completed ops due first able to find their
  // versions: a higher version needs that many writes not yet linearized and
  // invoked before the op completes; an older one needs such a remove. Only
  // the first kFrontierOpsChecked ops by completion are checked.
  Step prune_by_frontier(int32_t j, const State& next, const Progress& p) const {
    const SearchOp& placed = ops_[static_cast<size_t>(j)];
    const bool placed_is_write = writes_.pos_of_op[static_cast<size_t>(j)] >= 0;
    for (int32_t rank = 1; rank <= kFrontierOpsChecked; ++rank) {
      const std::optional<size_t> pos = p.known.select(rank);
      if (!pos) break;
      const int32_t f = known_.ops[*pos];
      const SearchOp& due = ops_[static_cast<size_t>(f)];
      const std::optional<uint64_t> need = needed_version(due);
      if (!need || *need == next.version) continue;
      if (*need < next.version) {
        if (!remove_possible_by(p, due.complete_ns))
          return {StepCode::needs_a_remove, next, f, *need};
        continue;
      }
      int64_t writes_left = p.writes.prefix(writes_.count_by(due.complete_ns));
      if (placed_is_write && placed.invoke_ns <= due.complete_ns) writes_left -= 1;
      if (writes_.pos_of_op[static_cast<size_t>(f)] >= 0) writes_left -= 1;  // the due op itself
      if (writes_left < static_cast<int64_t>(*need - next.version))
        return {StepCode::too_few_writes_left, next, f, *need};
    }
    return {StepCode::ok, next, kNil};
  }

  // The version a completed op needs to find when it takes effect.
  static std::optional<uint64_t> needed_version(const SearchOp& op) {
    switch (op.kind) {
      case KvOpKind::get:
        return op.version;
      case KvOpKind::put:
        if (op.version == 0) return std::nullopt;
        return op.version - 1;
      case KvOpKind::cas:
        return op.cas_failed ? op.version : op.expected_version;
      case KvOpKind::remove:
        return std::nullopt;
    }
    return std::nullopt;
  }

  // Is some remove not yet linearized and invoked at or before `t_ns`?
  bool remove_possible_by(const Progress& p, int64_t t_ns) const {
    return p.removes.prefix(removes_.count_by(t_ns)) > 0;
  }

  // The ops satisfying `pred`, sorted by completion (`by_completion`) or invocation.
  template <typename Pred>
  TimeIndex make_index(Pred pred, bool by_completion) const {
    auto time_of = [&](int32_t j) {
      const SearchOp& op = ops_[static_cast<size_t>(j)];
      return by_completion ? op.complete_ns : op.invoke_ns;
    };
    std::vector<int32_t> members;
    for (size_t j = 0; j < ops_.size(); ++j)
      if (pred(ops_[j])) members.push_back(static_cast<int32_t>(j));
    std::sort(members.begin(), members.end(), [&](int32_t a, int32_t b) {
      return std::pair(time_of(a), a) < std::pair(time_of(b), b);
    });
    TimeIndex index;
    index.pos_of_op.assign(ops_.size(), -1);
    for (size_t k = 0; k < members.size(); ++k) {
      index.pos_of_op[static_cast<size_t>(members[k])] = static_cast<int32_t>(k);
      index.times_ns.push_back(time_of(members[k]));
    }
    index.ops = std::move(members);
    return index;
  }

  std::vector<SearchOp> ops_;
  uint64_t steps_max_;
  uint64_t memo_bytes_max_;
  std::vector<uint64_t> zobrist_;  // per op: its share of the linearized set's hash

  bool pruning_ = false;
  bool monotone_ = true;  // no removes: versions never restart
  uint64_t max_pinned_ = 0;
  std::unordered_map<uint64_t, std::vector<int32_t>> claimers_;   // version -> known writes
  std::unordered_map<uint64_t, std::vector<int32_t>> observers_;  // version -> known reads
  TimeIndex removes_;
  TimeIndex writes_;
  TimeIndex known_;
  std::vector<std::vector<int32_t>> class_members_;  // by invocation
};

SearchResult KeySearch::run() {
  SearchResult result;
  const size_t n = ops_.size();
  assert(n < static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2) && "key too large");

  // Events: node 0 is the list head; nodes 1..E are events in time order.
  struct Event {
    int64_t t_ns;
    int kind;  // 0 invocation, 1 completion: invocations first at equal times
    int32_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (size_t j = 0; j < n; ++j) {
    const auto id = static_cast<int32_t>(j);
    events.push_back({ops_[j].invoke_ns, 0, id});
    if (ops_[j].known) events.push_back({ops_[j].complete_ns, 1, id});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tuple(a.t_ns, a.kind, a.op) < std::tuple(b.t_ns, b.kind, b.op);
  });
  const size_t nodes = events.size() + 1;
  std::vector<int32_t> next(nodes), prev(nodes), node_op(nodes, kNil), match(nodes, kNil);
  std::vector<bool> is_call(nodes, false);
  std::vector<int32_t> call_node_of(n, kNil);
  for (size_t k = 0; k < nodes; ++k) {
    next[k] = k + 1 < nodes ? static_cast<int32_t>(k + 1) : kNil;
    prev[k] = static_cast<int32_t>(k) - 1;
  }
  for (size_t e = 0; e < events.size(); ++e) {
    const size_t node = e + 1;
    node_op[node] = events[e].op;
    is_call[node] = events[e].kind == 0;
    if (is_call[node]) {
      call_node_of[static_cast<size_t>(events[e].op)] = static_cast<int32_t>(node);
    } else {
      const int32_t call = call_node_of[static_cast<size_t>(events[e].op)];
      assert(call != kNil && "completion sorted before its invocation");
      match[static_cast<size_t>(call)] = static_cast<int32_t>(node);
    }
  }
  auto unlink = [&](int32_t x) {
    next[static_cast<size_t>(prev[x])] = next[x];
    if (next[x] != kNil) prev[static_cast<size_t>(next[x])] = prev[x];
  };
  auto relink = [&](int32_t x) {
    next[static_cast<size_t>(prev[x])] = x;
    if (next[x] != kNil) prev[static_cast<size_t>(next[x])] = x;
  };
  auto lift = [&](int32_t call) {
    unlink(call);
    if (match[call] != kNil) unlink(match[call]);
  };
  auto unlift = [&](int32_t call) {
    if (match[call] != kNil) relink(match[call]);
    relink(call);
  };

  Progress progress = start();
  Memo memo(progress.bits.size());
  // `forced`: a read linearized by the sweep. If the search fails after it,
  // the node it was taken at fails too (no other choice there is tried).
  struct Frame {
    int32_t call_node;
    State prior;
    bool forced;
  };
  std::vector<Frame> stack;
  State state;
  bool have_stuck = false;

  // Each node is visited in two phases. The sweep walks the candidates and
  // linearizes the first read-only op that fits the state, as a forced move:
  // if any linearization exists from here, one exists that places that read
  // now (it changes nothing, it is already invoked, and everything that had
  // to precede it is already linearized). Without this, every interleaving of
  // commuting reads would be explored. When no read fits, the scan walks the
  // candidates again and branches over the writes.
  bool sweeping = true;
  bool fail_node = false;
  int32_t entry = next[0];
  for (;;) {
    if (entry == kNil) {  // no completion left in the list: every known op is linearized
      result.verdict = SearchVerdict::linearizable;
      break;
    }
    if (result.steps == steps_max_) {
      result.verdict = SearchVerdict::budget;
      break;
    }
    ++result.steps;
    if (is_call[entry]) {
      const int32_t j = node_op[entry];
      const SearchOp& op = ops_[static_cast<size_t>(j)];
      const bool read_only = op.known && (op.kind == KvOpKind::get || op.cas_failed);
      if (read_only != sweeping || !is_class_turn(j, progress)) {
        entry = next[entry];
        continue;
      }
      const Step st = step(state, j, progress);
      if (st.code != StepCode::ok) {
        entry = next[entry];
        continue;
      }
      toggle(progress, j);
      if (memo.insert(progress.bits, progress.bits_hash, st.next)) {
        if (memo.bytes() > memo_bytes_max_) {
          result.verdict = SearchVerdict::budget;
          break;
        }
        stack.push_back({entry, state, read_only});
        state = st.next;
        lift(entry);
        entry = next[0];
        sweeping = true;
        continue;
      }
      toggle(progress, j);
      if (!read_only) {
        entry = next[entry];
        continue;
      }
      fail_node = true;  // the forced read leads to a configuration that already failed
    } else if (sweeping) {
      // The sweep ends at the first completion: no read fits; now the writes.
      sweeping = false;
      entry = next[0];
      continue;
    }

    if (!fail_node) {
      // A completion of an op not yet linearized: it cannot be left for later.
      if (!have_stuck || stack.size() > result.stuck.prefix.size()) {
        have_stuck = true;
        RawStuck& s = result.stuck;
        s.prefix.clear();
        for (const Frame& f : stack) s.prefix.push_back(node_op[f.call_node]);
        s.blocking = node_op[entry];
        s.candidates.clear();
        for (int32_t k = next[0]; k != entry; k = next[k])
          if (is_call[k]) s.candidates.push_back(node_op[k]);
      }
    }
    fail_node = false;
    // Backtrack: undo forced reads (their nodes fail with them) down to the
    // last branching write, and continue that node's scan after it.
    bool resumed = false;
    while (!stack.empty()) {
      const Frame f = stack.back();
      stack.pop_back();
      toggle(progress, node_op[f.call_node]);
      state = f.prior;
      unlift(f.call_node);
      if (!f.forced) {
        entry = next[f.call_node];
        sweeping = false;
        resumed = true;
        break;
      }
    }
    if (!resumed) {
      assert(have_stuck);
      result.verdict = SearchVerdict::violation;
      break;
    }
  }
  if (result.verdict != SearchVerdict::violation) result.stuck = RawStuck{};
  return result;
}

// ---------------------------------------------------------------------------
// Explanations.

std::string quote(std::string_view v) {
  std::string out = "\"";
  const size_t shown = std::min(v.size(), kValueBytesShownMax);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out += '"';
  if (shown < v.size()) out += fmt::format("...({} bytes)", v.size());
  return out;
}

std::string state_text(const KvState& s) {
  if (s.version == 0) return "nothing (absent, v0)";
  return fmt::format("v{} {}", s.version, quote(s.value));
}

std::string time_text(TimePoint t) {
  const int64_t ns = t.ns();
  const uint64_t mag = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  return fmt::format("{}{}.{:09}s", ns < 0 ? "-" : "", mag / 1'000'000'000, mag % 1'000'000'000);
}

std::string reason_text(const Step& step, const KvState& cs, const KvOp& op,
                        const KeySearch& search) {
  const std::string no_remove = search.monotone() ? "" : " and no remove can come in between";
  const size_t because =
      step.because == kNil ? 0 : search.ops()[static_cast<size_t>(step.because)].history_index;
  switch (step.code) {
    case StepCode::ok:
      return "could be next here, but no continuation after it linearizes the rest";
    case StepCode::read_mismatch:
      if (op.read_found)
        return fmt::format("reads v{} {}, but the register holds {}", op.version,
                           quote(op.read_value), state_text(cs));
      return fmt::format("reads not found (v{}), but the register holds {}", op.version,
                         state_text(cs));
    case StepCode::wrong_new_version:
      return fmt::format("returned v{}, but taking effect on v{} it creates v{}", op.version,
                         cs.version, cs.version + 1);
    case StepCode::expected_mismatch:
      return fmt::format("expects v{}, but the register is at v{}", op.expected_version,
                         cs.version);
    case StepCode::failed_cas_current_mismatch:
      return fmt::format("failed reporting current v{}, but the register is at v{}", op.version,
                         cs.version);
    case StepCode::failed_cas_would_succeed:
      return fmt::format(
          "failed reporting current v{}, which is the version it expected: such a cas succeeds",
          op.version);
    case StepCode::unobservable_version:
      return fmt::format(
          "outcome unknown; taking effect here creates v{}, above every version a completed "
          "op reports: no completed op could follow it (until a remove erased it)",
          cs.version + 1);
    case StepCode::version_claimed:
      return fmt::format(
          "outcome unknown; taking effect here creates v{}, but completed #{} reports creating "
          "v{} later{}",
          cs.version + 1, because, cs.version + 1, no_remove);
    case StepCode::too_few_writes_left:
      return fmt::format(
          "taking effect here leaves v{}, but #{}, among the next ops due to complete, needs "
          "v{} and too few writes remain before it to get there",
          step.next.version, because, step.need);
    case StepCode::needs_a_remove:
      return fmt::format(
          "taking effect here leaves v{}, but #{}, among the next ops due to complete, needs "
          "v{} and no remove can come in between",
          step.next.version, because, step.need);
    case StepCode::observed_other_value:
      return fmt::format(
          "outcome unknown; taking effect here creates v{} {}, but completed #{} later reads v{} "
          "with another value{}",
          cs.version + 1, quote(op.write_value), because, cs.version + 1, no_remove);
  }
  return "?";
}

// Turns a raw stuck point into history terms: replays the prefix on the
// abstract model (must succeed) and on concrete values (versions must agree).
StuckPoint explain(const KvHistory& history, const KeySearch& search, const RawStuck& raw) {
  StuckPoint out;
  const auto& ops = search.ops();
  State s;
  KvState cs;
  Progress progress = search.start();
  for (int32_t j : raw.prefix) {
    const SearchOp& op = ops[static_cast<size_t>(j)];
    const Step st = search.step(s, j, progress);
    assert(st.code == StepCode::ok && "a linearized prefix no longer replays");
    s = st.next;
    search.toggle(progress, j);
    const KvOp& h = history[op.history_index];
    if (h.kind == KvOpKind::put || (h.kind == KvOpKind::cas && !op.cas_failed)) {
      cs.version += 1;
      cs.value = h.write_value;
    } else if (h.kind == KvOpKind::remove) {
      cs = KvState{};
    }
    assert(cs.version == s.version && "concrete and abstract replays disagree");
    out.prefix_ops.push_back(op.history_index);
  }
  out.state_after_prefix = cs;
  assert(raw.blocking != kNil);
  out.blocking_op = ops[static_cast<size_t>(raw.blocking)].history_index;
  for (int32_t j : raw.candidates) {
    const SearchOp& op = ops[static_cast<size_t>(j)];
    const KvOp& h = history[op.history_index];
    CandidateNote note;
    note.op_index = op.history_index;
    if (!search.is_class_turn(j, progress)) {
      const SearchOp& other = ops[static_cast<size_t>(search.class_turn(j, progress))];
      note.reason = fmt::format(
          "outcome unknown; interchangeable with #{} (same inputs, value never read), which is "
          "tried in its place",
          other.history_index);
    } else {
      note.reason = reason_text(search.step(s, j, progress), cs, h, search);
    }
    out.candidates.push_back(std::move(note));
  }
  return out;
}

// ---------------------------------------------------------------------------
// One key.

std::optional<std::string> validate(const KvOp& op) {
  if (op.outcome == KvOutcome::unknown) {
    if (op.complete_time) return "outcome unknown but a completion time is set";
  } else {
    if (!op.complete_time) return "outcome known but no completion time";
    if (*op.complete_time < op.invoke_time) return "completed before it was invoked";
  }
  if (op.outcome == KvOutcome::cas_failed && op.kind != KvOpKind::cas)
    return "outcome cas_failed on an op that is not a cas";
  if (op.kind == KvOpKind::get && op.outcome == KvOutcome::ok && !op.read_found &&
      !op.read_value.empty())
    return "get not found but with a read value";
  return std::nullopt;
}

bool is_known(const KvOp& op) {
  return op.outcome != KvOutcome::unknown;
}

KeyResult check_key(const KvHistory& history, const std::string& key,
                    const std::vector<size_t>& indices, const LinearizabilityOptions& options) {
  KeyResult result;
  result.key = key;
  result.op_count = indices.size();
  for (size_t i : indices) {
    if (auto why = validate(history[i])) {
      result.verdict = KeyVerdict::malformed;
      result.malformed_reason = fmt::format("#{}: {}", i, *why);
      return result;
    }
  }

  KeySearch full(build_search_ops(history, indices, {}), options.version_pruning,
                 options.search_steps_per_key_max, options.memo_bytes_per_key_max);
  const SearchResult r = full.run();
  result.search_steps = r.steps;
  if (r.verdict == SearchVerdict::linearizable) return result;
  if (r.verdict == SearchVerdict::budget) {
    result.verdict = KeyVerdict::unknown_budget;
    return result;
  }
  result.verdict = KeyVerdict::violation;
  result.stuck = explain(history, full, r.stuck);
  if (!options.minimize_violations || indices.size() > options.minimize_ops_per_key_max)
    return result;

  // Shrink: weaken one known op at a time (drop a read, make a write unknown);
  // keep the weakening if the rest is still a violation. Weakening only adds
  // possible linearizations, so what remains stays a proof. Reads first: they
  // are cheap to re-check.
  std::vector<size_t> order;
  for (size_t pos = 0; pos < indices.size(); ++pos)
    if (is_known(history[indices[pos]]) && !is_write(history[indices[pos]].kind))
      order.push_back(pos);
  for (size_t pos = 0; pos < indices.size(); ++pos)
    if (is_known(history[indices[pos]]) && is_write(history[indices[pos]].kind))
      order.push_back(pos);
  std::vector<bool> weakened(indices.size(), false);
  uint64_t steps_left = options.minimize_steps_per_key_max;
  bool minimal = true;
  for (size_t pos : order) {
    if (steps_left == 0) {
      minimal = false;
      break;
    }
    weakened[pos] = true;
    KeySearch trial(build_search_ops(history, indices, weakened), options.version_pruning,
                    std::min(options.search_steps_per_key_max, steps_left),
                    options.memo_bytes_per_key_max);
    const SearchResult t = trial.run();
    steps_left -= std::min(steps_left, t.steps);
    if (t.verdict == SearchVerdict::violation) continue;
    weakened[pos] = false;
    if (t.verdict == SearchVerdict::budget) minimal = false;
  }
  std::vector<size_t> core;
  for (size_t pos = 0; pos < indices.size(); ++pos)
    if (is_known(history[indices[pos]]) && !weakened[pos]) core.push_back(indices[pos]);
  std::sort(core.begin(), core.end(), [&](size_t a, size_t b) {
    return std::pair(history[a].invoke_time, a) < std::pair(history[b].invoke_time, b);
  });

  // Explain on the weakened history: the core as recorded, every other write
  // of the key as unknown (they may supply versions the core needs). The same
  // input was a violation during shrinking (or is the full history), and the
  // search is deterministic within at least that budget.
  KeySearch weak(build_search_ops(history, indices, weakened), options.version_pruning,
                 options.search_steps_per_key_max, options.memo_bytes_per_key_max);
  const SearchResult w = weak.run();
  assert(w.verdict == SearchVerdict::violation && "a shrunk history must stay a violation");
  result.core_ops = std::move(core);
  result.core_is_minimal = minimal;
  result.stuck = explain(history, weak, w.stuck);
  return result;
}

std::string call_text(const KvOp& op) {
  switch (op.kind) {
    case KvOpKind::get:
      return "get";
    case KvOpKind::put:
      return fmt::format("put {}", quote(op.write_value));
    case KvOpKind::cas:
      return fmt::format("cas(v{} -> {})", op.expected_version, quote(op.write_value));
    case KvOpKind::remove:
      return "remove";
  }
  return "?";
}

std::string result_text(const KvOp& op) {
  switch (op.outcome) {
    case KvOutcome::unknown:
      return "unknown";
    case KvOutcome::cas_failed:
      return fmt::format("failed, current v{}", op.version);
    case KvOutcome::ok:
      break;
  }
  switch (op.kind) {
    case KvOpKind::get:
      if (op.read_found) return fmt::format("v{} {}", op.version, quote(op.read_value));
      return op.version == 0 ? "not found" : fmt::format("not found (v{})", op.version);
    case KvOpKind::put:
    case KvOpKind::cas:
      return fmt::format("ok v{}", op.version);
    case KvOpKind::remove:
      return "ok";
  }
  return "?";
}

}  // namespace

std::string_view to_string(KeyVerdict v) {
  switch (v) {
    case KeyVerdict::linearizable:
      return "linearizable";
    case KeyVerdict::violation:
      return "violation";
    case KeyVerdict::unknown_budget:
      return "unknown_budget";
    case KeyVerdict::malformed:
      return "malformed";
  }
  return "?";
}

size_t LinearizabilityReport::count(KeyVerdict v) const {
  return static_cast<size_t>(
      std::count_if(keys.begin(), keys.end(), [v](const KeyResult& k) { return k.verdict == v; }));
}

const KeyResult* LinearizabilityReport::find(std::string_view key) const {
  auto it = std::lower_bound(keys.begin(), keys.end(), key,
                             [](const KeyResult& k, std::string_view x) { return k.key < x; });
  return it != keys.end() && it->key == key ? &*it : nullptr;
}

LinearizabilityReport check_linearizability(const KvHistory& history,
                                            const LinearizabilityOptions& options) {
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) by_key[history[i].key].push_back(i);
  LinearizabilityReport report;
  report.op_count = history.size();
  report.keys.reserve(by_key.size());
  for (const auto& [key, indices] : by_key)
    report.keys.push_back(check_key(history, key, indices, options));
  return report;
}

std::string format_op(const KvHistory& history, size_t op_index) {
  assert(op_index < history.size());
  const KvOp& op = history[op_index];
  return fmt::format("#{} c{} {} -> {}  [{} .. {}]", op_index, op.client_id, call_text(op),
                     result_text(op), time_text(op.invoke_time),
                     op.complete_time ? time_text(*op.complete_time) : std::string("?"));
}

std::string format_key_result(const KvHistory& history, const KeyResult& r) {
  std::string out = fmt::format("key {}: {} ({} ops on this key)\n", quote(r.key),
                                to_string(r.verdict), r.op_count);
  switch (r.verdict) {
    case KeyVerdict::linearizable:
      return out;
    case KeyVerdict::malformed:
      return out + fmt::format("  malformed history: {}\n", r.malformed_reason);
    case KeyVerdict::unknown_budget:
      return out + fmt::format(
                       "  no verdict: the search stopped after {} steps (raise "
                       "search_steps_per_key_max or memo_bytes_per_key_max)\n",
                       r.search_steps);
    case KeyVerdict::violation:
      break;
  }
  // Ops outside the core are shown with what was recorded but were judged
  // as outcome-unknown (writes); mark them.
  auto line = [&](size_t i) {
    std::string text = format_op(history, i);
    if (!r.core_ops.empty() && is_known(history[i]) &&
        std::find(r.core_ops.begin(), r.core_ops.end(), i) == r.core_ops.end())
      text += "  (not in core: taken as unknown)";
    return text;
  };
  if (!r.core_ops.empty()) {
    out += fmt::format(
        "  core: {} ops whose recorded outcomes contradict each other, even with every other\n"
        "  write of this key taken as outcome-unknown and every other read ignored ({}):\n",
        r.core_ops.size(),
        r.core_is_minimal ? "each one is needed"
                          : "shrinking stopped early: not all of them may be needed");
    for (size_t i : r.core_ops) out += "    " + format_op(history, i) + "\n";
    out += "  search with only the core's outcomes:\n";
  } else {
    out += "  search on all ops of the key (not shrunk to a core):\n";
  }
  const StuckPoint& s = r.stuck;
  out += fmt::format("  longest linearizable prefix: {} ops; the register after it: {}\n",
                     s.prefix_ops.size(), state_text(s.state_after_prefix));
  size_t first = 0;
  if (s.prefix_ops.size() > kPrefixOpsShownMax) {
    first = s.prefix_ops.size() - kPrefixOpsShownMax;
    out += fmt::format("    ... {} earlier ops\n", first);
  }
  for (size_t k = first; k < s.prefix_ops.size(); ++k)
    out += fmt::format("    {}. {}\n", k + 1, line(s.prefix_ops[k]));
  out += fmt::format(
      "  stuck: this op completed, so it had to take effect by then, and cannot:\n    {}\n",
      line(s.blocking_op));
  out += "  ops that could come next, and why none works:\n";
  for (size_t k = 0; k < s.candidates.size() && k < kCandidatesShownMax; ++k)
    out += fmt::format("    #{}: {}\n", s.candidates[k].op_index, s.candidates[k].reason);
  if (s.candidates.size() > kCandidatesShownMax)
    out += fmt::format("    ... {} more\n", s.candidates.size() - kCandidatesShownMax);
  return out;
}

std::string format_report(const KvHistory& history, const LinearizabilityReport& report) {
  std::string out = fmt::format(
      "linearizability: {} keys, {} ops: {} linearizable, {} violation, {} unknown_budget, {} "
      "malformed\n",
      report.keys.size(), report.op_count, report.count(KeyVerdict::linearizable),
      report.count(KeyVerdict::violation), report.count(KeyVerdict::unknown_budget),
      report.count(KeyVerdict::malformed));
  for (const KeyResult& r : report.keys)
    if (r.verdict != KeyVerdict::linearizable) out += format_key_result(history, r);
  return out;
}

}  // namespace wx::checkers
