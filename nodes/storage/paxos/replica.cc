#include "nodes/storage/paxos/replica.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

#include "nodes/storage/paxos/codec.h"

namespace wx::paxos {

const char* to_string(Role role) {
  switch (role) {
    case Role::follower:
      return "follower";
    case Role::candidate:
      return "candidate";
    case Role::leader:
      return "leader";
  }
  return "unknown";
}

namespace {

int popcount(uint8_t bits) {
  return std::popcount(static_cast<unsigned>(bits));
}

}  // namespace

// ---------------------------------------------------------------------------
// Construction and small helpers

Replica::Replica(Config config, HardState hard_state, std::vector<Entry> log, uint64_t rng_seed)
    : config_(std::move(config)), rng_(rng_seed) {
  config_.validate();
  majority_ = config_.members.size() / 2 + 1;
  for (ReplicaId id : config_.members) {
    if (id != config_.self) peers_.push_back(id);
  }
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("paxos::Replica: persisted state: " + what);
  };
  if (config_.recovering &&
      (!hard_state.promised.is_zero() || hard_state.commit_index != 0 || !log.empty())) {
    bad("a recovering replica must start from an empty disk");
  }
  if (!hard_state.promised.is_zero() &&
      (hard_state.promised.round == 0 || !is_member(hard_state.promised.replica))) {
    bad("promised ballot " + hard_state.promised.to_string() + " is not a member's");
  }
  for (Entry& e : log) {
    if (e.index == 0) bad("entry with index 0");
    if (e.ballot.round == 0 || !is_member(e.ballot.replica)) {
      bad("entry " + std::to_string(e.index) + " under a ballot that is not a member's");
    }
    if (e.ballot > hard_state.promised) {
      bad("entry " + std::to_string(e.index) + " accepted above the promise");
    }
    if (e.command.size() > kCommandBytesMax) bad("entry " + std::to_string(e.index) + " too large");
    if (log_.contains(e.index)) bad("entry " + std::to_string(e.index) + " given twice");
    log_.put(e.index, e.ballot, std::move(e.command));
  }
  for (uint64_t i = 1; i <= hard_state.commit_index; ++i) {
    if (!log_.contains(i))
      bad("commit index " + std::to_string(hard_state.commit_index) + " over a missing entry " +
          std::to_string(i));
  }
  if (config_.applied_index > hard_state.commit_index) bad("applied_index beyond commit_index");

  hard_state_ = hard_state;
  applied_index_ = config_.applied_index;
  max_round_seen_ = hard_state.promised.round;
  phase1_.resize(config_.members.size());
  progress_.resize(config_.members.size());
  recovery_.resize(config_.members.size());
  reset_election_timer();
  // The previous incarnation may have acknowledged a leader just before it
  // crashed: honour that lease as if the leader had been heard just now.
  ticks_since_leader_ = 0;
  if (config_.recovering) {
    recovering_ = true;
    send_recover_queries();
  }
}

bool Replica::is_member(ReplicaId id) const {
  return std::find(config_.members.begin(), config_.members.end(), id) != config_.members.end();
}

size_t Replica::member_pos(ReplicaId id) const {
  for (size_t i = 0; i < config_.members.size(); ++i) {
    if (config_.members[i] == id) return i;
  }
  assert(false && "not a member");
  return 0;
}

std::optional<ReplicaId> Replica::leader_hint() const {
  if (leader_hint_ == kNoReplica) return std::nullopt;
  return leader_hint_;
}

void Replica::send(Message m) {
  assert(validate_message(m).empty() && "sending a malformed Paxos message");
  outbox_.push_back(std::move(m));
}

Message Replica::reply_to(const Message& m, MessageType type) const {
  Message r;
  r.type = type;
  r.from = config_.self;
  r.to = m.from;
  return r;
}

void Replica::note_round(Ballot b) {
  max_round_seen_ = std::max(max_round_seen_, b.round);
}

Ballot Replica::next_ballot() {
  const uint64_t round = std::max(max_round_seen_, hard_state_.promised.round) + 1;
  max_round_seen_ = round;
  return Ballot{round, config_.self};
}

void Replica::reset_election_timer() {
  election_elapsed_ticks_ = 0;
  election_timeout_ticks_ =
      rng_.uniform_int(config_.election_ticks_min, config_.election_ticks_max);
}

bool Replica::lease_promised() const {
  return ticks_since_leader_ < config_.election_ticks_min;
}

void Replica::set_promised(Ballot b) {
  assert(b >= hard_state_.promised);
  note_round(b);
  if (b != hard_state_.promised) {
    hard_state_.promised = b;
    hard_state_dirty_ = true;
  }
}

void Replica::store(uint64_t index, Ballot ballot, std::string command) {
  assert(ballot <= hard_state_.promised);
  log_.put(index, ballot, std::move(command));
  unstable_.push_back(index);
  if (role_ == Role::leader) {
    if (acks_.size() <= index) acks_.resize(index + 1, 0);
    acks_[index] = 0;
  }
}

Message Replica::make_chunk(MessageType type, ReplicaId to, Ballot ballot,
                            uint64_t from_index) const {
  Message m;
  m.type = type;
  m.from = config_.self;
  m.to = to;
  m.ballot = ballot;
  m.index = from_index;
  m.commit_index = hard_state_.commit_index;
  m.promised = hard_state_.promised;
  const uint64_t last = log_.last_index();
  size_t bytes = 0;
  uint64_t i = from_index;
  for (; i <= last; ++i) {
    const PaxosLog::Slot& slot = log_.at(i);
    if (!slot.present) continue;
    if (m.entries.size() >= config_.transfer_entries_max) break;
    if (!m.entries.empty() && bytes + slot.command.size() > config_.batch_bytes_max) break;
    bytes += slot.command.size();
    m.entries.push_back(Entry{i, slot.ballot, slot.command});
  }
  m.last_index = i - 1;
  m.done = i > last;
  return m;
}

void Replica::merge_reported(std::map<uint64_t, Entry>& into, const Entry& e) {
  auto it = into.find(e.index);
  if (it == into.end()) {
    into.emplace(e.index, e);
    return;
  }
  if (it->second.ballot == e.ballot && it->second.command != e.command) {
    throw InvariantViolation("slot " + std::to_string(e.index) +
                             " reported with two values under ballot " + e.ballot.to_string());
  }
  if (it->second.ballot < e.ballot) it->second = e;
}

// ---------------------------------------------------------------------------
// Inputs

void Replica::tick() {
  ++now_ticks_;
  if (ticks_since_leader_ < std::numeric_limits<int64_t>::max()) ++ticks_since_leader_;
  if (recovering_) {
    if (++resend_elapsed_ticks_ >= config_.heartbeat_ticks) {
      resend_elapsed_ticks_ = 0;
      send_recover_queries();
    }
    return;
  }
  switch (role_) {
    case Role::follower:
      if (++election_elapsed_ticks_ >= election_timeout_ticks_) start_probe();
      break;
    case Role::candidate:
      tick_candidate();
      break;
    case Role::leader:
      tick_leader();
      break;
  }
}

StepOutcome Replica::step(const Message& m) {
  if (!validate_message(m).empty()) {
    ++stats_.messages_dropped;
    return StepOutcome::dropped_malformed;
  }
  if (m.to != config_.self || !is_member(m.from) ||
      (!m.ballot.is_zero() && !is_member(m.ballot.replica))) {
    ++stats_.messages_dropped;
    return StepOutcome::dropped_not_for_us;
  }
  note_round(m.ballot);
  note_round(m.promised);
  if (recovering_ && m.type != MessageType::recover_query && m.type != MessageType::recover_reply) {
    return StepOutcome::processed;  // no vote, no state until rebuilt
  }
  switch (m.type) {
    case MessageType::probe:
      on_probe(m);
      break;
    case MessageType::probe_reply:
      on_probe_reply(m);
      break;
    case MessageType::prepare:
      on_prepare(m);
      break;
    case MessageType::promise:
      on_promise(m);
      break;
    case MessageType::accept:
      on_accept(m);
      break;
    case MessageType::accepted:
      on_accepted(m);
      break;
    case MessageType::heartbeat:
      on_heartbeat(m);
      break;
    case MessageType::heartbeat_reply:
      on_heartbeat_reply(m);
      break;
    case MessageType::reject:
      on_reject(m);
      break;
    case MessageType::recover_query:
      on_recover_query(m);
      break;
    case MessageType::recover_reply:
      on_recover_reply(m);
      break;
  }
  return StepOutcome::processed;
}

ProposeResult Replica::propose(std::string command) {
  ProposeResult r;
  r.leader_hint = leader_hint_;
  if (recovering_ || role_ != Role::leader) {
    r.status = ProposeStatus::not_leader;
    return r;
  }
  if (command.empty() || command.size() > config_.command_bytes_max) {
    r.status = ProposeStatus::invalid_argument;
    return r;
  }
  if (log_.last_index() - hard_state_.commit_index >= config_.uncommitted_entries_max) {
    r.status = ProposeStatus::overloaded;
    return r;
  }
  r.index = log_.last_index() + 1;
  r.ballot = campaign_ballot_;
  r.status = ProposeStatus::ok;
  store(r.index, campaign_ballot_, std::move(command));
  return r;
}

ReadResult Replica::read_index(uint64_t request_id) {
  ReadResult r;
  r.leader_hint = leader_hint_;
  if (recovering_ || role_ != Role::leader) {
    r.status = ReadStatus::not_leader;
    return r;
  }
  if (pending_reads_.size() >= config_.reads_pending_max) {
    r.status = ReadStatus::overloaded;
    return r;
  }
  // Any round numbered hb_seq_ + 1 or later starts after this call.
  pending_reads_.push_back(PendingRead{request_id, hard_state_.commit_index, hb_seq_ + 1});
  heartbeat_requested_ = true;
  r.status = ReadStatus::pending;
  r.index = hard_state_.commit_index;
  return r;
}

ReadResult Replica::lease_read() const {
  ReadResult r;
  r.leader_hint = leader_hint_;
  if (role_ != Role::leader) {
    r.status = ReadStatus::not_leader;
    return r;
  }
  const int64_t start = lease_start_tick();
  if (hard_state_.commit_index < read_barrier_index_ || start < 0 ||
      now_ticks_ >= start + config_.lease_ticks) {
    r.status = ReadStatus::not_ready;
    return r;
  }
  r.status = ReadStatus::ok;
  r.index = hard_state_.commit_index;
  return r;
}

// ---------------------------------------------------------------------------
// Ready / advance

bool Replica::has_ready() const {
  if (ready_outstanding_) return false;
  if (hard_state_dirty_ || !unstable_.empty() || !outbox_.empty() || !reads_out_.empty())
    return true;
  if (applied_index_ < hard_state_.commit_index) return true;
  if (role_ == Role::leader) {
    if (heartbeat_requested_) return true;
    for (ReplicaId peer : peers_) {
      if (wants_to_send(peer)) return true;
    }
  }
  return false;
}

Ready Replica::ready() {
  if (ready_outstanding_)
    throw std::logic_error("paxos::Replica::ready() called again before advance()");
  if (role_ == Role::leader) {
    // Batching: everything proposed since the last Ready goes out now.
    if (heartbeat_requested_) broadcast_heartbeat();
    for (ReplicaId peer : peers_) send_appends(peer);
  }
  Ready rd;
  in_flight_ = ReadyInFlight{};
  if (hard_state_dirty_) {
    rd.hard_state = hard_state_;
    in_flight_.hard_state = hard_state_;
    hard_state_dirty_ = false;
  }
  std::sort(unstable_.begin(), unstable_.end());
  unstable_.erase(std::unique(unstable_.begin(), unstable_.end()), unstable_.end());
  rd.entries_to_persist.reserve(unstable_.size());
  for (uint64_t i : unstable_) {
    Entry e = log_.entry(i);
    in_flight_.entries.emplace_back(i, e.ballot);
    rd.entries_to_persist.push_back(std::move(e));
  }
  unstable_.clear();
  rd.messages = std::move(outbox_);
  outbox_.clear();
  const uint64_t apply_to =
      std::min<uint64_t>(hard_state_.commit_index, applied_index_ + config_.committed_entries_max);
  for (uint64_t i = applied_index_ + 1; i <= apply_to; ++i) rd.committed.push_back(log_.entry(i));
  in_flight_.applied_to = std::max(applied_index_, apply_to);
  rd.reads = std::move(reads_out_);
  reads_out_.clear();
  ready_outstanding_ = true;
  return rd;
}

void Replica::advance() {
  if (!ready_outstanding_) throw std::logic_error("paxos::Replica::advance() without a Ready");
  ready_outstanding_ = false;
  applied_index_ = std::max(applied_index_, in_flight_.applied_to);
  // What was just persisted now counts as this replica's own vote.
  if (in_flight_.hard_state && role_ == Role::candidate && phase_ == CampaignPhase::preparing &&
      in_flight_.hard_state->promised == campaign_ballot_ && !self_promise_durable_) {
    self_promise_durable_ = true;
    maybe_finish_phase1();
  }
  if (role_ == Role::leader) {
    const uint8_t me = bit(config_.self);
    for (const auto& [index, ballot] : in_flight_.entries) {
      if (ballot == campaign_ballot_ && index < acks_.size() && log_.at(index).ballot == ballot) {
        acks_[index] |= me;
      }
    }
    advance_leader_commit();
    release_reads();
  }
  in_flight_ = ReadyInFlight{};
}

// ---------------------------------------------------------------------------
// Roles

void Replica::become_follower(ReplicaId leader_hint) {
  if (role_ == Role::leader) {
    fail_pending_reads();
    acks_.clear();
    ++stats_.step_downs;
  }
  role_ = Role::follower;
  phase_ = CampaignPhase::none;
  heartbeat_requested_ = false;
  leader_hint_ = leader_hint == config_.self ? kNoReplica : leader_hint;
  reset_election_timer();
}

void Replica::start_probe() {
  assert(role_ != Role::leader);
  role_ = Role::candidate;
  phase_ = CampaignPhase::probing;
  leader_hint_ = kNoReplica;
  reset_election_timer();
  resend_elapsed_ticks_ = 0;
  campaign_ballot_ = next_ballot();
  probe_grants_ = bit(config_.self);
  ++stats_.probes_started;
  if (static_cast<size_t>(popcount(probe_grants_)) >= majority_) {
    start_prepare();
    return;
  }
  for (ReplicaId peer : peers_) {
    Message p;
    p.type = MessageType::probe;
    p.from = config_.self;
    p.to = peer;
    p.ballot = campaign_ballot_;
    send(std::move(p));
  }
}

void Replica::start_prepare() {
  phase_ = CampaignPhase::preparing;
  campaign_ballot_ = next_ballot();
  set_promised(campaign_ballot_);  // persisted before any Prepare leaves (same Ready)
  self_promise_durable_ = false;
  phase1_start_index_ = hard_state_.commit_index + 1;
  reported_.clear();
  for (ChunkProgress& p : phase1_) p = ChunkProgress{phase1_start_index_, false, false, 0};
  resend_elapsed_ticks_ = 0;
  reset_election_timer();
  ++stats_.phase1_started;
  for (ReplicaId peer : peers_) {
    Message p;
    p.type = MessageType::prepare;
    p.from = config_.self;
    p.to = peer;
    p.ballot = campaign_ballot_;
    p.index = phase1_start_index_;
    send(std::move(p));
  }
}

void Replica::tick_candidate() {
  if (++election_elapsed_ticks_ >= election_timeout_ticks_) {
    start_probe();  // this campaign stalled: try again with a higher ballot
    return;
  }
  if (++resend_elapsed_ticks_ < config_.heartbeat_ticks) return;
  resend_elapsed_ticks_ = 0;
  for (ReplicaId peer : peers_) {
    Message p;
    p.from = config_.self;
    p.to = peer;
    p.ballot = campaign_ballot_;
    if (phase_ == CampaignPhase::probing) {
      if (probe_grants_ & bit(peer)) continue;
      p.type = MessageType::probe;
    } else {
      const ChunkProgress& progress = phase1_[member_pos(peer)];
      if (progress.done) continue;
      p.type = MessageType::prepare;
      p.index = progress.next_from;
    }
    send(std::move(p));
  }
}

void Replica::maybe_finish_phase1() {
  size_t done = self_promise_durable_ ? 1 : 0;
  for (ReplicaId peer : peers_) {
    if (phase1_[member_pos(peer)].done) ++done;
  }
  if (done >= majority_) become_leader();
}

void Replica::become_leader() {
  assert(role_ == Role::candidate && phase_ == CampaignPhase::preparing);
  assert(hard_state_.promised == campaign_ballot_);
  const uint64_t start = phase1_start_index_;
  for (uint64_t i = start; i <= log_.last_index(); ++i) {
    if (log_.contains(i)) merge_reported(reported_, log_.entry(i));
  }
  uint64_t last = start - 1;
  if (!reported_.empty()) last = std::max(last, reported_.rbegin()->first);

  role_ = Role::leader;
  phase_ = CampaignPhase::none;
  leader_hint_ = config_.self;
  acks_.assign(last + 1, 0);
  // Re-propose, under our ballot, the highest-ballot value reported for each
  // slot; a slot nobody reported cannot have been chosen: fill it with a no-op.
  for (uint64_t i = start; i <= last; ++i) {
    auto it = reported_.find(i);
    if (it == reported_.end()) {
      store(i, campaign_ballot_, std::string());
      ++stats_.noops_filled;
    } else {
      store(i, campaign_ballot_, it->second.command);
      ++stats_.values_recovered;
    }
  }
  reported_.clear();
  read_barrier_index_ = last;
  hb_seq_ = 0;
  heartbeat_elapsed_ticks_ = 0;
  pending_reads_.clear();
  for (ReplicaId peer : peers_) {
    const size_t pos = member_pos(peer);
    Progress pr;
    pr.last_ack_tick = now_ticks_;
    progress_[pos] = pr;
    if (phase1_[pos].responded) {
      progress_[pos].known = true;
      note_peer_commit(peer, phase1_[pos].commit_index);
    }
  }
  ++stats_.leaderships_won;
  broadcast_heartbeat();
}

void Replica::tick_leader() {
  if (++heartbeat_elapsed_ticks_ >= config_.heartbeat_ticks) {
    for (ReplicaId peer : peers_) {
      Progress& pr = progress_[member_pos(peer)];
      // No progress for a whole heartbeat interval: something was lost; go
      // back and re-send from the first slot the peer is missing.
      if (pr.known && pr.next_index > pr.match_index + 1 &&
          pr.match_index == pr.match_at_last_heartbeat) {
        stats_.entries_resent += pr.next_index - pr.match_index - 1;
        pr.next_index = pr.match_index + 1;
      }
      pr.match_at_last_heartbeat = pr.match_index;
    }
    broadcast_heartbeat();
  }
  // Check quorum: a leader that has heard from no majority for the longest
  // election timeout steps down (its lease is long gone; clients should look
  // elsewhere).
  size_t live = 1;
  for (ReplicaId peer : peers_) {
    if (now_ticks_ - progress_[member_pos(peer)].last_ack_tick <= config_.election_ticks_max)
      ++live;
  }
  if (live < majority_) become_follower(kNoReplica);
}

// ---------------------------------------------------------------------------
// Handlers: election

void Replica::on_probe(const Message& m) {
  Message r = reply_to(m, MessageType::probe_reply);
  r.ballot = m.ballot;
  r.promised = hard_state_.promised;
  r.leader_hint = role_ == Role::leader ? config_.self : leader_hint_;
  r.granted = role_ != Role::leader && m.ballot > hard_state_.promised && !lease_promised();
  send(std::move(r));
}

void Replica::on_probe_reply(const Message& m) {
  if (role_ != Role::candidate || phase_ != CampaignPhase::probing ||
      m.ballot != campaign_ballot_) {
    return;
  }
  if (m.granted) {
    probe_grants_ |= bit(m.from);
    if (static_cast<size_t>(popcount(probe_grants_)) >= majority_) start_prepare();
  } else if (m.leader_hint != kNoReplica && m.leader_hint != config_.self) {
    leader_hint_ = m.leader_hint;
  }
}

void Replica::on_prepare(const Message& m) {
  // A later chunk request for the ballot we already promised needs no new
  // promise (and no lease check: we let this candidate in already).
  const bool renewal = m.ballot == hard_state_.promised;
  if (!renewal) {
    if (m.ballot < hard_state_.promised || role_ == Role::leader || lease_promised()) {
      Message r = reply_to(m, MessageType::reject);
      r.ballot = m.ballot;
      r.promised = hard_state_.promised;
      r.leader_hint = role_ == Role::leader ? config_.self : leader_hint_;
      send(std::move(r));
      return;
    }
    if (role_ != Role::follower) become_follower(kNoReplica);
    set_promised(m.ballot);  // durable before the Promise below is sent
    reset_election_timer();  // give the candidate time to finish
    leader_hint_ = kNoReplica;
  } else {
    // The candidate we promised is alive and still collecting: do not time
    // out and depose it halfway through a long Phase 1.
    election_elapsed_ticks_ = 0;
  }
  send(make_chunk(MessageType::promise, m.from, m.ballot, m.index));
}

void Replica::on_promise(const Message& m) {
  if (role_ != Role::candidate || phase_ != CampaignPhase::preparing ||
      m.ballot != campaign_ballot_) {
    return;
  }
  ChunkProgress& p = phase1_[member_pos(m.from)];
  if (p.done || m.index != p.next_from) return;  // duplicate or reordered chunk
  for (const Entry& e : m.entries) {
    if (e.index >= phase1_start_index_) merge_reported(reported_, e);
  }
  p.responded = true;
  p.commit_index = std::max(p.commit_index, m.commit_index);
  p.next_from = m.last_index + 1;
  // A long log takes many chunks; restarting the campaign while they still
  // arrive would never finish. Only a stalled Phase 1 times out.
  election_elapsed_ticks_ = 0;
  if (m.done) {
    p.done = true;
    maybe_finish_phase1();
    return;
  }
  Message next;
  next.type = MessageType::prepare;
  next.from = config_.self;
  next.to = m.from;
  next.ballot = campaign_ballot_;
  next.index = p.next_from;
  send(std::move(next));
}

void Replica::on_reject(const Message& m) {
  const ReplicaId hint = m.leader_hint == config_.self ? kNoReplica : m.leader_hint;
  if (role_ == Role::leader && m.ballot == campaign_ballot_ && m.promised > campaign_ballot_) {
    become_follower(hint);  // a majority may already follow a higher ballot
    return;
  }
  if (role_ == Role::candidate && m.ballot == campaign_ballot_) {
    if (m.promised > campaign_ballot_) {
      become_follower(hint);
    } else if (hint != kNoReplica) {
      leader_hint_ = hint;  // refused because that leader is alive
    }
  }
}

// ---------------------------------------------------------------------------
// Handlers: replication

bool Replica::follow(const Message& m) {
  if (m.ballot < hard_state_.promised) {
    Message r = reply_to(m, MessageType::reject);
    r.ballot = m.ballot;
    r.promised = hard_state_.promised;
    r.leader_hint = role_ == Role::leader ? config_.self : leader_hint_;
    send(std::move(r));
    return false;
  }
  if (role_ != Role::follower) become_follower(m.from);
  set_promised(m.ballot);
  leader_hint_ = m.from;
  ticks_since_leader_ = 0;
  election_elapsed_ticks_ = 0;
  return true;
}

void Replica::on_accept(const Message& m) {
  if (!follow(m)) return;
  for (const Entry& e : m.entries) {
    if (e.index <= hard_state_.commit_index) {
      // Already chosen here: a re-send, possibly under a newer ballot. The
      // value must be the same, or Paxos is broken.
      if (log_.at(e.index).command != e.command) {
        throw InvariantViolation("replica " + std::to_string(config_.self) + ": chosen slot " +
                                 std::to_string(e.index) + " offered a different value under " +
                                 m.ballot.to_string());
      }
      continue;
    }
    if (log_.contains(e.index) && log_.at(e.index).ballot == e.ballot) {
      if (log_.at(e.index).command != e.command) {
        throw InvariantViolation("replica " + std::to_string(config_.self) + ": slot " +
                                 std::to_string(e.index) + " given two values under " +
                                 e.ballot.to_string());
      }
      continue;  // duplicate
    }
    store(e.index, e.ballot, e.command);
  }
  advance_follower_commit(m.ballot, m.commit_index);
  Message r = reply_to(m, MessageType::accepted);
  r.ballot = m.ballot;
  r.index = m.entries.front().index;
  r.last_index = m.entries.back().index;
  r.commit_index = hard_state_.commit_index;
  r.seq = m.seq;
  r.sent_tick = m.sent_tick;
  send(std::move(r));  // after the entries are persisted: same Ready
}

void Replica::on_heartbeat(const Message& m) {
  if (!follow(m)) return;
  advance_follower_commit(m.ballot, m.commit_index);
  Message r = reply_to(m, MessageType::heartbeat_reply);
  r.ballot = m.ballot;
  r.commit_index = hard_state_.commit_index;
  r.last_index = log_.last_index();
  r.seq = m.seq;
  r.sent_tick = m.sent_tick;
  send(std::move(r));
}

void Replica::advance_follower_commit(Ballot leader_ballot, uint64_t leader_commit) {
  // The leader vouches for its own values only: a slot held under another
  // ballot may hold a value that lost, so it waits for the leader's re-send.
  uint64_t c = hard_state_.commit_index;
  while (c < leader_commit && log_.contains(c + 1) && log_.at(c + 1).ballot == leader_ballot) ++c;
  if (c != hard_state_.commit_index) {
    hard_state_.commit_index = c;
    hard_state_dirty_ = true;
  }
}

void Replica::on_accepted(const Message& m) {
  if (role_ != Role::leader || m.ballot != campaign_ballot_) return;
  const uint8_t b = bit(m.from);
  const uint64_t hi = std::min(m.last_index, log_.last_index());
  for (uint64_t i = m.index; i <= hi; ++i) acks_[i] |= b;
  note_peer_ack(m.from, m);
  note_peer_commit(m.from, m.commit_index);
  Progress& pr = progress_[member_pos(m.from)];
  while (pr.match_index < log_.last_index() && (acks_[pr.match_index + 1] & b)) ++pr.match_index;
  if (pr.next_index < pr.match_index + 1) pr.next_index = pr.match_index + 1;
  advance_leader_commit();
  release_reads();
}

void Replica::on_heartbeat_reply(const Message& m) {
  if (role_ != Role::leader || m.ballot != campaign_ballot_) return;
  note_peer_ack(m.from, m);
  note_peer_commit(m.from, m.commit_index);
  advance_leader_commit();
  release_reads();
}

// ---------------------------------------------------------------------------
// Leader internals

void Replica::broadcast_heartbeat() {
  ++hb_seq_;
  heartbeat_requested_ = false;
  heartbeat_elapsed_ticks_ = 0;
  for (ReplicaId peer : peers_) {
    Message h;
    h.type = MessageType::heartbeat;
    h.from = config_.self;
    h.to = peer;
    h.ballot = campaign_ballot_;
    h.commit_index = hard_state_.commit_index;
    h.seq = hb_seq_;
    h.sent_tick = now_ticks_;
    send(std::move(h));
  }
  release_reads();  // a single-replica group confirms at once
}

bool Replica::wants_to_send(ReplicaId peer) const {
  const Progress& pr = progress_[member_pos(peer)];
  return pr.known && pr.next_index <= log_.last_index() &&
         pr.next_index - 1 - pr.match_index < config_.inflight_entries_max;
}

void Replica::send_appends(ReplicaId peer) {
  Progress& pr = progress_[member_pos(peer)];
  const uint64_t last = log_.last_index();
  while (wants_to_send(peer)) {
    Message m;
    m.type = MessageType::accept;
    m.from = config_.self;
    m.to = peer;
    m.ballot = campaign_ballot_;
    m.index = pr.next_index;
    size_t bytes = 0;
    uint64_t i = pr.next_index;
    for (; i <= last && m.entries.size() < config_.batch_entries_max &&
           i - 1 - pr.match_index < config_.inflight_entries_max;
         ++i) {
      const PaxosLog::Slot& slot = log_.at(i);
      assert(slot.present);
      if (!m.entries.empty() && bytes + slot.command.size() > config_.batch_bytes_max) break;
      bytes += slot.command.size();
      // Slots below this leadership's start are chosen: re-sending them under
      // our ballot is safe and lets the peer verify them (same ballot).
      m.entries.push_back(Entry{i, campaign_ballot_, slot.command});
    }
    pr.next_index = i;
    m.commit_index = hard_state_.commit_index;
    m.seq = hb_seq_;
    m.sent_tick = now_ticks_;
    send(std::move(m));
  }
}

void Replica::note_peer_ack(ReplicaId peer, const Message& m) {
  Progress& pr = progress_[member_pos(peer)];
  pr.known = true;
  pr.last_ack_tick = now_ticks_;
  pr.acked_seq = std::max(pr.acked_seq, m.seq);
  pr.acked_sent_tick = std::max(pr.acked_sent_tick, m.sent_tick);
}

void Replica::note_peer_commit(ReplicaId peer, uint64_t peer_commit) {
  Progress& pr = progress_[member_pos(peer)];
  const uint64_t c = std::min(peer_commit, log_.last_index());
  if (c > pr.match_index) pr.match_index = c;
  if (pr.next_index < pr.match_index + 1) pr.next_index = pr.match_index + 1;
  // The peer answered under our ballot, so it has promised nothing higher and
  // learned `c` from leaders at or below our ballot: slots up to c are chosen,
  // and after our Phase 1 our values there are the chosen ones.
  if (c > hard_state_.commit_index) {
    hard_state_.commit_index = c;
    hard_state_dirty_ = true;
  }
}

void Replica::advance_leader_commit() {
  const uint8_t me = bit(config_.self);
  uint64_t c = hard_state_.commit_index;
  const uint64_t last = log_.last_index();
  while (c < last) {
    const uint8_t acks = acks_[c + 1];
    const bool chosen = config_.unsafe_ack_before_majority
                            ? (acks & me) != 0
                            : static_cast<size_t>(popcount(acks)) >= majority_;
    if (!chosen) break;
    ++c;
  }
  if (c != hard_state_.commit_index) {
    hard_state_.commit_index = c;
    hard_state_dirty_ = true;
  }
}

uint64_t Replica::quorum_seq() const {
  std::vector<uint64_t> seqs{hb_seq_};
  for (ReplicaId peer : peers_) seqs.push_back(progress_[member_pos(peer)].acked_seq);
  std::sort(seqs.begin(), seqs.end(), std::greater<>());
  return seqs[majority_ - 1];
}

int64_t Replica::lease_start_tick() const {
  std::vector<int64_t> ticks{now_ticks_};
  for (ReplicaId peer : peers_) ticks.push_back(progress_[member_pos(peer)].acked_sent_tick);
  std::sort(ticks.begin(), ticks.end(), std::greater<>());
  return ticks[majority_ - 1];
}

void Replica::release_reads() {
  if (role_ != Role::leader || pending_reads_.empty()) return;
  // Until the values recovered in Phase 1 are committed, an earlier leader's
  // acknowledged writes might be above our commit index.
  if (hard_state_.commit_index < read_barrier_index_) return;
  const uint64_t confirmed = quorum_seq();
  while (!pending_reads_.empty() && pending_reads_.front().seq_needed <= confirmed) {
    const PendingRead& p = pending_reads_.front();
    reads_out_.push_back(ReadState{p.request_id, std::max(p.index, read_barrier_index_), true});
    pending_reads_.pop_front();
  }
}

void Replica::fail_pending_reads() {
  for (const PendingRead& p : pending_reads_)
    reads_out_.push_back(ReadState{p.request_id, 0, false});
  pending_reads_.clear();
}

// ---------------------------------------------------------------------------
// Recovery after disk loss

void Replica::send_recover_queries() {
  for (ReplicaId peer : peers_) {
    const ChunkProgress& p = recovery_[member_pos(peer)];
    if (p.done) continue;
    Message q;
    q.type = MessageType::recover_query;
    q.from = config_.self;
    q.to = peer;
    q.index = p.next_from;
    send(std::move(q));
  }
}

void Replica::on_recover_query(const Message& m) {
  if (recovering_) {
    Message r = reply_to(m, MessageType::recover_reply);
    r.index = m.index;
    r.last_index = m.index - 1;
    r.recovering = true;
    send(std::move(r));
    return;
  }
  send(make_chunk(MessageType::recover_reply, m.from, Ballot{}, m.index));
}

void Replica::on_recover_reply(const Message& m) {
  if (!recovering_ || m.recovering) return;
  ChunkProgress& p = recovery_[member_pos(m.from)];
  if (p.done || m.index != p.next_from) return;
  for (const Entry& e : m.entries) merge_reported(reported_, e);
  recovery_promised_ = std::max(recovery_promised_, m.promised);
  // The peer's log may gain slots between chunks (a hole already reported
  // may fill later), so only the commit index it had when the transfer began
  // is covered by what it reports: every slot up to it was present then, is
  // never removed, and is reported by this or a later chunk.
  if (m.index == 1) recovery_commit_index_ = std::max(recovery_commit_index_, m.commit_index);
  p.next_from = m.last_index + 1;
  if (!m.done) {
    Message q;
    q.type = MessageType::recover_query;
    q.from = config_.self;
    q.to = m.from;
    q.index = p.next_from;
    send(std::move(q));
    return;
  }
  p.done = true;
  for (ReplicaId peer : peers_) {
    if (!recovery_[member_pos(peer)].done) return;
  }
  finish_recovery();
}

void Replica::finish_recovery() {
  // Every other member has reported its promise and its whole log. What the
  // lost disk promised or accepted is covered (docs/storage.md, "Disk loss"):
  // promise the highest ballot any of them promised, hold per slot the value
  // of the highest ballot reported.
  recovering_ = false;
  set_promised(std::max(hard_state_.promised, recovery_promised_));
  hard_state_dirty_ = true;  // always write: the disk must show recovery is over
  for (auto& [index, e] : reported_) store(index, e.ballot, std::move(e.command));
  reported_.clear();
  for (uint64_t i = 1; i <= recovery_commit_index_; ++i) {
    if (!log_.contains(i)) {
      throw InvariantViolation("recovery: committed slot " + std::to_string(i) +
                               " missing from every report");
    }
  }
  // Up to the highest commit index reported every slot is chosen, and the
  // highest ballot reported there carries the chosen value.
  hard_state_.commit_index = std::max(hard_state_.commit_index, recovery_commit_index_);
  ticks_since_leader_ = 0;
  become_follower(kNoReplica);
}

// ---------------------------------------------------------------------------
// Invariants

std::string Replica::describe() const {
  std::string s = "replica " + std::to_string(config_.self) + " " + to_string(role_);
  if (recovering_) s += "/recovering";
  if (role_ == Role::candidate) {
    s += phase_ == CampaignPhase::probing ? "/probing " : "/preparing ";
    s += campaign_ballot_.to_string();
  }
  s += " promised " + hard_state_.promised.to_string() + " commit " +
       std::to_string(hard_state_.commit_index) + " last " + std::to_string(log_.last_index()) +
       " applied " + std::to_string(applied_index_);
  for (ReplicaId peer : peers_) {
    const size_t pos = member_pos(peer);
    if (role_ == Role::candidate && phase_ == CampaignPhase::preparing) {
      const ChunkProgress& p = phase1_[pos];
      s += " [p" + std::to_string(peer) + " from " + std::to_string(p.next_from) +
           (p.done ? " done" : "") + "]";
    } else if (role_ == Role::leader) {
      const Progress& p = progress_[pos];
      s += " [p" + std::to_string(peer) + " match " + std::to_string(p.match_index) + " next " +
           std::to_string(p.next_index) + (p.known ? "" : " unknown") + "]";
    } else if (recovering_) {
      const ChunkProgress& p = recovery_[pos];
      s += " [p" + std::to_string(peer) + " from " + std::to_string(p.next_from) +
           (p.done ? " done" : "") + "]";
    }
  }
  if (role_ == Role::candidate && phase_ == CampaignPhase::preparing && self_promise_durable_) {
    s += " self-durable";
  }
  return s;
}

void Replica::check_invariants() const {
  auto fail = [&](const std::string& what) {
    throw InvariantViolation("replica " + std::to_string(config_.self) + " (" + to_string(role_) +
                             "): " + what);
  };
  const uint64_t last = log_.last_index();
  const uint64_t commit = hard_state_.commit_index;
  if (commit > last) fail("commit index beyond the log");
  if (applied_index_ > commit) fail("applied beyond commit");
  if (last > 0 && !log_.contains(last)) fail("the last slot is a hole");
  if (commit > 0 && !log_.contains(commit)) fail("committed slot missing");
  if (max_round_seen_ < hard_state_.promised.round) fail("promised a round never seen");
  for (uint64_t i = commit + 1; i <= last; ++i) {
    if (log_.contains(i) && log_.at(i).ballot > hard_state_.promised) {
      fail("slot " + std::to_string(i) + " accepted above the promise");
    }
  }
  if (recovering_ && (role_ != Role::follower || commit != 0 || last != 0)) {
    fail("a recovering replica has state or a role");
  }
  if (ready_outstanding_ == false && (in_flight_.hard_state || !in_flight_.entries.empty())) {
    fail("a Ready's record outlived its advance()");
  }
  switch (role_) {
    case Role::follower:
      if (phase_ != CampaignPhase::none) fail("follower in a campaign");
      break;
    case Role::candidate:
      if (phase_ == CampaignPhase::none) fail("candidate without a campaign");
      if (phase_ == CampaignPhase::preparing && hard_state_.promised != campaign_ballot_) {
        fail("preparing candidate promised another ballot");
      }
      break;
    case Role::leader: {
      if (hard_state_.promised != campaign_ballot_) fail("leader promised another ballot");
      if (leader_hint_ != config_.self) fail("leader does not know itself");
      if (acks_.size() != last + 1) fail("ack table out of step with the log");
      if (commit + 1 < phase1_start_index_) fail("leader's commit below its start");
      if (read_barrier_index_ > last) fail("read barrier beyond the log");
      if (pending_reads_.size() > config_.reads_pending_max) fail("too many pending reads");
      for (uint64_t i = commit + 1; i <= last; ++i) {
        if (!log_.contains(i)) fail("hole in the leader's log at " + std::to_string(i));
        if (log_.at(i).ballot != campaign_ballot_) {
          fail("uncommitted slot " + std::to_string(i) + " not under the leader's ballot");
        }
      }
      for (ReplicaId peer : peers_) {
        const Progress& pr = progress_[member_pos(peer)];
        if (pr.match_index > last) fail("peer match beyond the log");
        if (pr.next_index < pr.match_index + 1 || pr.next_index > last + 1) {
          fail("peer next index out of range");
        }
      }
      break;
    }
  }
}

}  // namespace wx::paxos
