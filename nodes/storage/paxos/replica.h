// One replica of a Multi-Paxos replication group, as a pure state machine.
//
// Inputs: tick() (the driver's clock), step(message), propose(command),
// read_index(id). Outputs: a Ready — state to persist, messages to send,
// committed entries to apply, read points to serve. No I/O, no clock, no
// coroutines: the storage service wraps it (network, SQLite, timers) and the
// tests drive it by hand. Modelled on etcd-raft's Ready/Advance shape; the
// protocol is Multi-Paxos with a distinguished proposer (docs/storage.md):
//
//   election   a follower that hears no leader for a randomized timeout
//              probes the others (no state change), then runs Phase 1 once
//              for every slot from its first unchosen one: prepare/promise
//              with a ballot (round, replica) above any it has seen.
//   recovery   the new leader re-proposes, under its ballot, the value of the
//              highest ballot each slot was reported with, and fills holes
//              with no-ops.
//   Phase 2    accept/accepted per slot, pipelined and batched; a slot is
//              chosen when a majority accepted it under the leader's ballot.
//   learning   the commit index rides on accepts and heartbeats; a follower
//              takes an entry as chosen only if it holds it under the ballot
//              of the leader vouching for it, else the leader re-sends it.
//   leases     a follower refuses to help candidates for election_ticks_min
//              ticks after hearing from the leader, so the leader may serve
//              reads for lease_ticks after a round a majority acknowledged,
//              lease_ticks * (1 + drift margin) <= election_ticks_min - 1
//              (timing assumption: Config::clock_drift_ppm).
//   disk loss  a replica started with Config::recovering neither votes nor
//              campaigns until every other member has sent it its promise
//              and whole log.
//
// Driving a Replica (single-threaded; the driver owns it):
//
//   while (r.has_ready()) {
//     Ready rd = r.ready();
//     persist(rd.hard_state, rd.entries_to_persist);  // durable before ...
//     send(rd.messages);                               // ... anything is sent
//     apply(rd.committed);                             // in order
//     serve(rd.reads);                                 // once applied >= index
//     r.advance();
//   }
//
// Persist-before-send is the durability rule: a promise or an accept is only
// ever sent in the same Ready as (or a later one than) the state it vouches
// for. tick/step/propose/read_index may be called between ready() and
// advance(); ready() may not be called again before advance(). A crash may
// happen anywhere: the driver rebuilds the Replica from what it persisted.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nodes/runtime/random.h"
#include "nodes/storage/paxos/log.h"
#include "nodes/storage/paxos/types.h"

namespace wx::paxos {

enum class Role : uint8_t { follower, candidate, leader };
const char* to_string(Role role);

enum class StepOutcome : uint8_t {
  processed,
  dropped_malformed,   // validate_message failed
  dropped_not_for_us,  // not addressed to this replica, or from a non-member
};

// Counters for tests and metrics.
struct ReplicaStats {
  uint64_t probes_started = 0;
  uint64_t phase1_started = 0;
  uint64_t leaderships_won = 0;
  uint64_t step_downs = 0;
  uint64_t messages_dropped = 0;
  uint64_t entries_resent = 0;
  uint64_t noops_filled = 0;
  uint64_t values_recovered = 0;  // re-proposed from Phase 1 reports
};

class Replica {
 public:
  // Rebuilds a replica from what its driver persisted: the last HardState and
  // every entry of every Ready's entries_to_persist (latest write per index).
  // A new group starts every member with HardState{} and an empty log.
  // rng_seed seeds the election-timeout randomization (give each replica its
  // own stream). Throws std::invalid_argument on a bad Config or a persisted
  // state that cannot have been written by a Replica.
  Replica(Config config, HardState hard_state, std::vector<Entry> log, uint64_t rng_seed);

  // One tick of the driver's clock (all timeouts are counted in ticks).
  void tick();
  // Handles a message from a peer. Malformed or misaddressed messages are
  // dropped and counted, never trusted.
  StepOutcome step(const Message& m);
  // Appends `command` (non-empty, <= command_bytes_max) if this replica is
  // the leader; see ProposeResult for what ok means.
  ProposeResult propose(std::string command);
  // Read-index: on the leader, records the commit index and starts a
  // heartbeat round; when a majority has acknowledged a round started after
  // this call (and the leader's first entries are committed), a ReadState
  // {request_id, index, ok} comes in a Ready. Returns pending, not_leader or
  // overloaded. A leader that steps down answers its pending reads !ok.
  ReadResult read_index(uint64_t request_id);
  // Lease read: ok with the commit index if this leader holds a lease now.
  ReadResult lease_read() const;

  bool has_ready() const;
  Ready ready();
  // The driver has done everything the last Ready asked.
  void advance();

  bool is_leader() const { return role_ == Role::leader; }
  Role role() const { return role_; }
  ReplicaId self() const { return config_.self; }
  // Who this replica believes leads the group (itself included), if anyone.
  std::optional<ReplicaId> leader_hint() const;
  bool recovering() const { return recovering_; }
  uint64_t commit_index() const { return hard_state_.commit_index; }
  uint64_t applied_index() const { return applied_index_; }
  uint64_t last_index() const { return log_.last_index(); }
  Ballot promised() const { return hard_state_.promised; }
  // The leader's ballot while leader, else zero.
  Ballot leader_ballot() const { return role_ == Role::leader ? campaign_ballot_ : Ballot{}; }
  const PaxosLog& log() const { return log_; }
  const Config& config() const { return config_; }
  const ReplicaStats& stats() const { return stats_; }

  // One line of state for logs and test failures.
  std::string describe() const;

  // Throws InvariantViolation describing the first broken invariant. Cost is
  // proportional to the uncommitted part of the log plus the group size.
  void check_invariants() const;

 private:
  enum class CampaignPhase : uint8_t { none, probing, preparing };

  // Phase 1 / recovery transfer progress from one peer.
  struct ChunkProgress {
    uint64_t next_from = 1;
    bool done = false;
    bool responded = false;
    uint64_t commit_index = 0;
  };
  // The leader's view of one peer.
  struct Progress {
    bool known = false;        // we have heard from it under our ballot (or in Phase 1)
    uint64_t next_index = 1;   // next slot to send
    uint64_t match_index = 0;  // peer holds 1..match_index as the leader does (or chosen)
    uint64_t match_at_last_heartbeat = 0;
    uint64_t acked_seq = 0;        // highest heartbeat round acknowledged
    int64_t acked_sent_tick = -1;  // latest sent_tick acknowledged (-1: none)
    int64_t last_ack_tick = 0;     // local tick of the last reply under our ballot
  };
  struct PendingRead {
    uint64_t request_id;
    uint64_t index;
    uint64_t seq_needed;
  };
  // What the outstanding Ready asked to persist, for advance().
  struct ReadyInFlight {
    std::optional<HardState> hard_state;
    std::vector<std::pair<uint64_t, Ballot>> entries;
    uint64_t applied_to = 0;
  };

  size_t member_pos(ReplicaId id) const;  // index in config_.members; asserts membership
  bool is_member(ReplicaId id) const;
  uint8_t bit(ReplicaId id) const { return static_cast<uint8_t>(1u << member_pos(id)); }
  void send(Message m);
  Message reply_to(const Message& m, MessageType type) const;
  void note_round(Ballot b);
  Ballot next_ballot();
  void reset_election_timer();
  bool lease_promised() const;
  void set_promised(Ballot b);
  void store(uint64_t index, Ballot ballot, std::string command);
  Message make_chunk(MessageType type, ReplicaId to, Ballot ballot, uint64_t from_index) const;
  static void merge_reported(std::map<uint64_t, Entry>& into, const Entry& e);

  // roles
  void become_follower(ReplicaId leader_hint);
  void start_probe();
  void start_prepare();
  void maybe_finish_phase1();
  void become_leader();
  void tick_leader();
  void tick_candidate();

  // handlers
  void on_probe(const Message& m);
  void on_probe_reply(const Message& m);
  void on_prepare(const Message& m);
  void on_promise(const Message& m);
  void on_accept(const Message& m);
  void on_accepted(const Message& m);
  void on_heartbeat(const Message& m);
  void on_heartbeat_reply(const Message& m);
  void on_reject(const Message& m);
  void on_recover_query(const Message& m);
  void on_recover_reply(const Message& m);
  // Common to accept and heartbeat: false if the ballot is refused.
  bool follow(const Message& m);
  void advance_follower_commit(Ballot leader_ballot, uint64_t leader_commit);

  // leader
  void broadcast_heartbeat();
  void send_appends(ReplicaId peer);
  bool wants_to_send(ReplicaId peer) const;
  void note_peer_ack(ReplicaId peer, const Message& m);
  void note_peer_commit(ReplicaId peer, uint64_t peer_commit);
  void advance_leader_commit();
  void release_reads();
  void fail_pending_reads();
  uint64_t quorum_seq() const;
  int64_t lease_start_tick() const;

  // recovery
  void send_recover_queries();
  void finish_recovery();

  Config config_;
  Rng rng_;
  size_t majority_ = 1;
  std::vector<ReplicaId> peers_;

  // Durable state (the driver holds what it persisted of it).
  HardState hard_state_;
  bool hard_state_dirty_ = false;
  PaxosLog log_;
  std::vector<uint64_t> unstable_;  // indices written since the last ready()

  // Volatile state.
  Role role_ = Role::follower;
  CampaignPhase phase_ = CampaignPhase::none;
  bool recovering_ = false;
  int64_t now_ticks_ = 0;
  int64_t ticks_since_leader_ = 0;  // lease: reset by contact with a live leader
  int64_t election_elapsed_ticks_ = 0;
  int64_t election_timeout_ticks_ = 0;
  int64_t resend_elapsed_ticks_ = 0;
  ReplicaId leader_hint_ = kNoReplica;
  uint64_t max_round_seen_ = 0;
  uint64_t applied_index_ = 0;
  std::vector<Message> outbox_;
  std::vector<ReadState> reads_out_;
  bool ready_outstanding_ = false;
  ReadyInFlight in_flight_;

  // Candidate, and the leader's own ballot once elected.
  Ballot campaign_ballot_;
  uint8_t probe_grants_ = 0;
  uint64_t phase1_start_index_ = 0;
  bool self_promise_durable_ = false;
  std::vector<ChunkProgress> phase1_;   // by member position
  std::map<uint64_t, Entry> reported_;  // highest-ballot entry reported per slot

  // Leader.
  std::vector<Progress> progress_;  // by member position
  std::vector<uint8_t> acks_;       // acks_[i]: members holding slot i under our ballot
  uint64_t hb_seq_ = 0;
  bool heartbeat_requested_ = false;
  int64_t heartbeat_elapsed_ticks_ = 0;
  uint64_t read_barrier_index_ = 0;  // reads wait until this is committed
  std::deque<PendingRead> pending_reads_;

  // Recovery after disk loss.
  std::vector<ChunkProgress> recovery_;  // by member position
  Ballot recovery_promised_;
  uint64_t recovery_commit_index_ = 0;

  ReplicaStats stats_;
};

}  // namespace wx::paxos
