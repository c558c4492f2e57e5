// Plain data of the Multi-Paxos core for one replication group.
//
// Ballots, log entries, the durable HardState, the configuration, the messages
// replicas exchange, and the Ready batch a Replica hands to its driver. Nothing
// here does I/O or reads a clock: time is counted in ticks the driver delivers
// (Replica::tick). The wire form of a Message is paxos.proto; codec.h converts
// and validates. The protocol itself is in replica.h and docs/storage.md.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wx::paxos {

// A replica's identity inside its group; never 0 (0 means "none").
using ReplicaId = uint32_t;
constexpr ReplicaId kNoReplica = 0;

// Acknowledgements are kept as one bit per member, and a group beyond seven
// replicas is not a design point (we run three, one per zone).
constexpr size_t kMembersMax = 7;
// Hard bounds a decoded message must respect whatever the local Config says;
// they keep a malformed or hostile frame from allocating without bound.
constexpr size_t kMessageEntriesMax = 65'536;
constexpr size_t kCommandBytesMax = 16u << 20;

// A proposal number. Totally ordered by (round, replica); the replica part
// makes ballots of different proposers distinct. {0, 0} is "no ballot".
struct Ballot {
  uint64_t round = 0;
  ReplicaId replica = kNoReplica;

  constexpr auto operator<=>(const Ballot&) const = default;
  constexpr bool is_zero() const { return round == 0 && replica == kNoReplica; }
  std::string to_string() const;
};

// One slot of the replicated log as an acceptor holds it: the value accepted
// at `index` under `ballot`. An empty command is a no-op (the leader fills
// holes with them); proposals must therefore be non-empty.
struct Entry {
  uint64_t index = 0;
  Ballot ballot;
  std::string command;

  bool is_noop() const { return command.empty(); }
  bool operator==(const Entry&) const = default;
};

// The state a replica must find again after a crash, besides its log.
//   promised      highest ballot this acceptor promised (Phase 1) or accepted
//                 under; it never accepts or promises anything lower.
//   commit_index  every entry at or below it is chosen and held here with a
//                 value equal to the chosen one (an optimisation: losing it
//                 is safe, the leader re-teaches it).
struct HardState {
  Ballot promised;
  uint64_t commit_index = 0;

  bool operator==(const HardState&) const = default;
};

// Static configuration of one replica. Times are in ticks of the driver's
// clock. Timing assumption (docs/storage.md, "Leases and clock drift"): tick
// clocks of two replicas run at rates that differ by a factor of at most
// 1 + clock_drift_ppm * 1e-6; validate() then requires
// lease_ticks * (1 + clock_drift_ppm * 1e-6) <= election_ticks_min - 1, so
// that while lease_ticks pass on the leader, fewer than election_ticks_min
// ticks pass on any other replica (the - 1 absorbs the tick granularity).
struct Config {
  ReplicaId self = kNoReplica;
  std::vector<ReplicaId> members;  // odd count, includes self, distinct, non-zero

  // A follower that has not heard from a leader for a timeout drawn uniformly
  // from [min, max] campaigns. Followers also refuse to help any candidate for
  // election_ticks_min ticks after hearing from a leader (that is the lease).
  int64_t election_ticks_min = 50;
  int64_t election_ticks_max = 100;
  int64_t heartbeat_ticks = 5;
  // How long a leader may serve lease reads after a heartbeat round a
  // majority acknowledged, counted from when it sent that round.
  int64_t lease_ticks = 40;
  // The drift margin of leases, in parts per million: the largest factor
  // (1 + clock_drift_ppm * 1e-6) by which one replica's tick clock may run
  // faster than another's over any interval. Two clocks each within +-d of
  // true rate differ by (1 + d) / (1 - d), about 1 + 2d: the default 10 %
  // covers clocks within +-4.7 %. Only validate() reads it (the bound on
  // lease_ticks above); 0 assumes equal rates.
  int64_t clock_drift_ppm = 100'000;

  size_t batch_entries_max = 64;          // entries per Accept message
  size_t batch_bytes_max = 1u << 20;      // command bytes per message (one entry may exceed it)
  size_t inflight_entries_max = 256;      // entries sent to one peer and not yet acknowledged
  size_t uncommitted_entries_max = 1024;  // leader refuses proposals beyond this backlog
  size_t transfer_entries_max = 1024;     // entries per Promise / RecoverReply chunk
  size_t committed_entries_max = 1024;    // committed entries handed out per Ready
  size_t reads_pending_max = 1024;        // read-index requests waiting for a quorum
  size_t command_bytes_max = 1u << 20;    // largest accepted proposal

  // Entries up to this index were already applied by the state machine
  // before this incarnation; Ready::committed resumes after it.
  uint64_t applied_index = 0;
  // Set by the driver when this replica's disk was lost while the group
  // already existed: the replica starts empty, does not vote, and first
  // rebuilds its state from every other member (docs/storage.md).
  bool recovering = false;
  // TEST ONLY. The leader counts an entry as committed after its own accept
  // alone. Breaks safety on purpose, so tests can show their checkers catch it.
  bool unsafe_ack_before_majority = false;

  // Throws std::invalid_argument naming the offending field.
  void validate() const;
};

enum class MessageType : uint8_t {
  probe = 1,    // candidate -> all: "would you accept a Prepare for `ballot`?" (no state change)
  probe_reply,  // granted or not; promised, leader_hint
  prepare,      // Phase 1a: ballot, index = first slot wanted
  promise,      // Phase 1b: one chunk of accepted entries from `index` to `last_index`
  accept,       // Phase 2a: entries (all under `ballot`), leader's commit_index
  accepted,     // Phase 2b: slots index..last_index accepted under `ballot`
  heartbeat,    // leader -> all: ballot, commit_index, seq, sent_tick
  heartbeat_reply,  // echo of seq and sent_tick; sender's commit_index
  reject,           // `ballot` refused: receiver promised `promised`; leader_hint
  recover_query,    // recovering replica -> all: send your state from `index`
  recover_reply,    // one chunk, like promise, plus promised (no promise is made)
};
constexpr MessageType kMessageTypeMax = MessageType::recover_reply;
const char* to_string(MessageType type);

// One message between replicas of a group. A flat struct: each type uses the
// fields listed at MessageType; the others stay zero. codec.h validates that.
struct Message {
  MessageType type = MessageType::heartbeat;
  ReplicaId from = kNoReplica;
  ReplicaId to = kNoReplica;
  Ballot ballot;
  uint64_t index = 0;
  uint64_t last_index = 0;
  uint64_t commit_index = 0;
  std::vector<Entry> entries;
  Ballot promised;
  ReplicaId leader_hint = kNoReplica;
  bool granted = false;     // probe_reply
  bool done = false;        // promise, recover_reply: this chunk reaches the sender's last slot
  bool recovering = false;  // recover_reply: the sender is itself recovering (no state to give)
  // A leader numbers its heartbeat rounds (seq) and stamps its own tick count
  // (sent_tick) on accept and heartbeat; replies echo both. seq proves a
  // round started after a read-index request; sent_tick dates the lease.
  uint64_t seq = 0;
  int64_t sent_tick = 0;

  bool operator==(const Message&) const = default;
};

// The answer to a read-index request (Replica::read_index), delivered in a
// Ready. ok: a read that observes the state machine after applying every
// entry up to `index` is linearizable. !ok: leadership was lost; retry.
struct ReadState {
  uint64_t request_id = 0;
  uint64_t index = 0;
  bool ok = false;

  bool operator==(const ReadState&) const = default;
};

// Work the driver must do, in this order (replica.h, "Driving a Replica"):
//   1. persist hard_state (if set) and entries_to_persist (upsert by index)
//      in one atomic write (one SQLite transaction), and make it durable;
//   2. only then send messages — they may vouch for that state;
//   3. apply committed, in order;
//   4. answer reads;
//   then call Replica::advance().
struct Ready {
  std::optional<HardState> hard_state;
  std::vector<Entry> entries_to_persist;
  std::vector<Message> messages;
  std::vector<Entry> committed;
  std::vector<ReadState> reads;

  bool empty() const {
    return !hard_state && entries_to_persist.empty() && messages.empty() && committed.empty() &&
           reads.empty();
  }
};

enum class ProposeStatus : uint8_t { ok, not_leader, overloaded, invalid_argument };
const char* to_string(ProposeStatus status);

// ok: the command was appended at `index` under `ballot`. That is not a
// commitment: the outcome is known when an entry at `index` is committed —
// it is this proposal only if its command is this command (a command may be
// re-proposed under a newer ballot, or replaced by another leader's value).
struct ProposeResult {
  ProposeStatus status = ProposeStatus::not_leader;
  uint64_t index = 0;
  Ballot ballot;
  ReplicaId leader_hint = kNoReplica;  // on not_leader, who may be leader (or none)

  bool ok() const { return status == ProposeStatus::ok; }
};

enum class ReadStatus : uint8_t {
  pending,     // read_index accepted: the answer comes as a ReadState in a Ready
  ok,          // lease_read: `index` is a linearizable read point now
  not_leader,  // ask leader_hint
  not_ready,   // leader, but no valid lease yet or its first entries not yet committed
  overloaded,  // too many read-index requests waiting
};
const char* to_string(ReadStatus status);

struct ReadResult {
  ReadStatus status = ReadStatus::not_leader;
  uint64_t index = 0;
  ReplicaId leader_hint = kNoReplica;
};

// Thrown by Replica::check_invariants and by a replica that detects a safety
// violation (a chosen slot being given a different value). Never caught in
// node code: it means the protocol, the driver or the disk is broken.
class InvariantViolation : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace wx::paxos
