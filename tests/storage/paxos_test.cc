// Unit tests of the Multi-Paxos core (nodes/storage/paxos/), driven by hand.
//
// TestCluster is a deliberately dumb network: messages wait in one list until
// the test delivers or drops them, so each test decides exactly which
// messages arrive. Its driver checks the durability rule on every Ready: a
// message may only vouch for state the same or an earlier Ready persisted.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nodes/storage/paxos/codec.h"
#include "nodes/storage/paxos/paxos.pb.h"
#include "nodes/storage/paxos/replica.h"

namespace wx::paxos {
namespace {

constexpr int64_t kElectionTicksMin = 10;
constexpr int64_t kElectionTicksMax = 20;
constexpr int64_t kHeartbeatTicks = 2;
constexpr int64_t kLeaseTicks = 8;
constexpr int kSettleRoundsMax = 10'000;

Config test_config(ReplicaId self, size_t members = 3) {
  Config c;
  c.self = self;
  for (ReplicaId id = 1; id <= members; ++id) c.members.push_back(id);
  c.election_ticks_min = kElectionTicksMin;
  c.election_ticks_max = kElectionTicksMax;
  c.heartbeat_ticks = kHeartbeatTicks;
  c.lease_ticks = kLeaseTicks;
  return c;
}

struct Disk {
  HardState hard_state;
  std::map<uint64_t, Entry> log;
};

class TestCluster {
 public:
  explicit TestCluster(size_t n = 3, uint64_t seed = 1, bool unsafe = false)
      : n_(n), seed_(seed), unsafe_(unsafe) {
    for (ReplicaId id = 1; id <= n; ++id) {
      disks_[id] = Disk{};
      start(id, false);
    }
  }

  Replica& r(ReplicaId id) { return *replicas_.at(id); }
  bool up(ReplicaId id) const { return replicas_.count(id) != 0 && replicas_.at(id) != nullptr; }
  const std::vector<Entry>& applied(ReplicaId id) { return applied_[id]; }
  const std::vector<ReadState>& reads(ReplicaId id) { return reads_[id]; }
  std::vector<Message>& net() { return net_; }
  const Disk& disk(ReplicaId id) { return disks_.at(id); }

  void start(ReplicaId id, bool recovering) {
    Config c = test_config(id, n_);
    c.unsafe_ack_before_majority = unsafe_;
    c.recovering = recovering;
    c.applied_index = applied_[id].size();
    std::vector<Entry> log;
    for (const auto& [i, e] : disks_[id].log) log.push_back(e);
    replicas_[id] = std::make_unique<Replica>(c, disks_[id].hard_state, std::move(log),
                                              seed_ * 100 + id + 1000 * ++incarnations_[id]);
  }
  void crash(ReplicaId id) { replicas_[id].reset(); }
  // Persists one Ready, then crashes before sending, applying or advancing.
  void crash_after_persist(ReplicaId id) {
    if (!up(id)) return;
    Ready rd = r(id).ready();
    for (const Entry& e : rd.entries_to_persist) disks_[id].log[e.index] = e;
    if (rd.hard_state) disks_[id].hard_state = *rd.hard_state;
    crash(id);
  }
  void restart(ReplicaId id) {
    crash(id);
    start(id, false);
  }
  void wipe_and_restart(ReplicaId id) {
    crash(id);
    disks_[id] = Disk{};
    applied_[id].clear();
    start(id, true);
  }

  // Runs the Ready loop of `id`, checking persist-before-send on each Ready.
  void drain(ReplicaId id) {
    if (!up(id)) return;
    Replica& rep = r(id);
    while (rep.has_ready()) {
      Ready rd = rep.ready();
      Disk& d = disks_[id];
      for (const Entry& e : rd.entries_to_persist) d.log[e.index] = e;
      if (rd.hard_state) d.hard_state = *rd.hard_state;
      for (const Message& m : rd.messages) {
        check_vouched(d, m);
        if (!blocked_.count({m.from, m.to})) net_.push_back(m);
      }
      for (const Entry& e : rd.committed) {
        ASSERT_EQ(e.index, applied_[id].size() + 1) << "applied out of order on " << id;
        auto [it, fresh] = chosen_.emplace(e.index, e.command);
        ASSERT_EQ(it->second, e.command) << "replicas disagree at index " << e.index;
        applied_[id].push_back(e);
      }
      for (const ReadState& rs : rd.reads) reads_[id].push_back(rs);
      rep.advance();
      rep.check_invariants();
    }
  }
  void drain_all() {
    for (ReplicaId id = 1; id <= n_; ++id) drain(id);
  }

  // Delivers one message (if its destination is up and the link is open).
  void deliver(const Message& m) {
    if (!up(m.to) || blocked_.count({m.from, m.to})) return;
    EXPECT_EQ(r(m.to).step(m), StepOutcome::processed);
    drain(m.to);
  }
  // Delivers everything, including what the deliveries produce, FIFO.
  void deliver_all() {
    for (int round = 0; round < kSettleRoundsMax && !net_.empty(); ++round) {
      std::vector<Message> batch;
      batch.swap(net_);
      for (const Message& m : batch) deliver(m);
    }
    ASSERT_TRUE(net_.empty()) << "network did not settle";
  }
  void drop_if(const std::function<bool(const Message&)>& pred) {
    net_.erase(std::remove_if(net_.begin(), net_.end(), pred), net_.end());
  }
  void deliver_if(const std::function<bool(const Message&)>& pred) {
    std::vector<Message> keep, now;
    for (Message& m : net_) (pred(m) ? now : keep).push_back(std::move(m));
    net_ = std::move(keep);
    for (const Message& m : now) deliver(m);
  }

  void tick(ReplicaId id) {
    if (!up(id)) return;
    r(id).tick();
    drain(id);
  }
  // Ticks every live replica once, then lets the network settle.
  void tick_all(int times = 1) {
    for (int t = 0; t < times; ++t) {
      for (ReplicaId id = 1; id <= n_; ++id) tick(id);
      deliver_all();
    }
  }

  void block_one_way(ReplicaId from, ReplicaId to) { blocked_.insert({from, to}); }
  void block(ReplicaId a, ReplicaId b) {
    blocked_.insert({a, b});
    blocked_.insert({b, a});
  }
  void isolate(ReplicaId id) {
    for (ReplicaId o = 1; o <= n_; ++o) {
      if (o != id) block(id, o);
    }
  }
  void heal() { blocked_.clear(); }

  std::vector<ReplicaId> leaders() {
    std::vector<ReplicaId> out;
    for (ReplicaId id = 1; id <= n_; ++id) {
      if (up(id) && r(id).is_leader()) out.push_back(id);
    }
    return out;
  }

  // Makes `id` the leader: every replica first times out in isolation (so no
  // lease holds anyone back), then only `id` keeps ticking.
  void elect(ReplicaId id) {
    auto saved = blocked_;
    for (ReplicaId o = 1; o <= n_; ++o) isolate(o);
    for (int t = 0; t < kElectionTicksMax + 1; ++t) {
      for (ReplicaId o = 1; o <= n_; ++o) tick(o);
    }
    net_.clear();
    blocked_ = saved;
    for (int t = 0; t < 10 * kElectionTicksMax && !r(id).is_leader(); ++t) {
      tick(id);
      deliver_all();
    }
    ASSERT_TRUE(r(id).is_leader()) << "replica " << id << " did not win";
    deliver_all();
  }

 private:
  // The durability rule, from the receiver's point of view: what a promise or
  // an acknowledgement vouches for must already be on this replica's disk.
  static void check_vouched(const Disk& d, const Message& m) {
    switch (m.type) {
      case MessageType::promise:
        EXPECT_GE(d.hard_state.promised, m.ballot) << "promise sent before it was persisted";
        for (const Entry& e : m.entries) {
          auto it = d.log.find(e.index);
          EXPECT_TRUE(it != d.log.end() && it->second == e) << "reported an unpersisted entry";
        }
        break;
      case MessageType::accepted:
        EXPECT_GE(d.hard_state.promised, m.ballot);
        for (uint64_t i = m.index; i <= m.last_index; ++i) {
          auto it = d.log.find(i);
          const bool held = it != d.log.end() && it->second.ballot == m.ballot;
          const bool chosen = it != d.log.end() && i <= d.hard_state.commit_index;
          EXPECT_TRUE(held || chosen) << "accepted slot " << i << " not persisted";
        }
        break;
      case MessageType::heartbeat_reply:
        EXPECT_GE(d.hard_state.promised, m.ballot);
        break;
      case MessageType::prepare:
        EXPECT_EQ(d.hard_state.promised, m.ballot) << "candidate's own promise not persisted";
        break;
      default:
        break;
    }
  }

  size_t n_;
  uint64_t seed_;
  bool unsafe_;
  std::map<ReplicaId, std::unique_ptr<Replica>> replicas_;
  std::map<ReplicaId, Disk> disks_;
  std::map<ReplicaId, std::vector<Entry>> applied_;
  std::map<ReplicaId, std::vector<ReadState>> reads_;
  std::map<ReplicaId, uint64_t> incarnations_;
  std::map<uint64_t, std::string> chosen_;
  std::set<std::pair<ReplicaId, ReplicaId>> blocked_;
  std::vector<Message> net_;
};

std::vector<std::string> commands(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const Entry& e : entries) out.push_back(e.command);
  return out;
}

// ---------------------------------------------------------------------------
// Election

TEST(PaxosElection, ExactlyOneLeaderIsElectedAndStays) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    TestCluster c(3, seed);
    int ticks = 0;
    while (c.leaders().empty() && ticks < 20 * kElectionTicksMax) {
      c.tick_all();
      ++ticks;
    }
    ASSERT_EQ(c.leaders().size(), 1u) << "seed " << seed;
    const ReplicaId leader = c.leaders().front();
    for (int t = 0; t < 200; ++t) {
      c.tick_all();
      ASSERT_EQ(c.leaders(), std::vector<ReplicaId>{leader}) << "seed " << seed << " tick " << t;
    }
    for (ReplicaId id = 1; id <= 3; ++id) {
      ASSERT_EQ(c.r(id).leader_hint(), leader) << "seed " << seed;
    }
  }
}

TEST(PaxosElection, NoLeaderBeforeTheFirstLeasePeriodEnds) {
  // A restarted replica honours a lease it may have granted before the crash,
  // so nobody can win during the first election_ticks_min ticks.
  TestCluster c(3, 7);
  for (int t = 0; t < kElectionTicksMin - 1; ++t) {
    c.tick_all();
    EXPECT_TRUE(c.leaders().empty());
  }
}

TEST(PaxosElection, NewLeaderAfterLeaderCrash) {
  TestCluster c(3, 3);
  c.elect(1);
  c.crash(1);
  int ticks = 0;
  while (c.leaders().empty() && ticks < 20 * kElectionTicksMax) {
    c.tick_all();
    ++ticks;
  }
  ASSERT_EQ(c.leaders().size(), 1u);
  EXPECT_NE(c.leaders().front(), 1u);
  EXPECT_GE(ticks, kElectionTicksMin) << "lease of the dead leader not honoured";
}

TEST(PaxosElection, PartitionedReplicaDoesNotDisruptOnReturn) {
  TestCluster c(3, 4);
  c.elect(1);
  c.isolate(3);
  for (int t = 0; t < 10 * kElectionTicksMax; ++t) c.tick_all();
  EXPECT_EQ(c.leaders(), std::vector<ReplicaId>{1});
  const Ballot before = c.r(1).leader_ballot();
  // Probes do not raise promises, so the returning replica simply follows.
  EXPECT_LE(c.r(3).promised(), before);
  c.heal();
  c.tick_all(5 * kHeartbeatTicks);
  EXPECT_EQ(c.leaders(), std::vector<ReplicaId>{1});
  EXPECT_EQ(c.r(1).leader_ballot(), before);
  EXPECT_EQ(c.r(3).leader_hint(), 1u);
}

// ---------------------------------------------------------------------------
// Replication

TEST(PaxosReplication, ProposalCommittedOnMajority) {
  TestCluster c;
  c.elect(1);
  c.isolate(3);
  ProposeResult p = c.r(1).propose("x");
  ASSERT_TRUE(p.ok());
  c.drain(1);
  c.deliver_all();
  EXPECT_EQ(c.r(1).commit_index(), p.index);
  ASSERT_EQ(c.applied(1).size(), 1u);
  EXPECT_EQ(c.applied(1)[0].command, "x");
  c.tick_all(kHeartbeatTicks);  // the commit point reaches the follower
  EXPECT_EQ(commands(c.applied(2)), std::vector<std::string>{"x"});
  EXPECT_TRUE(c.applied(3).empty());
  c.heal();
  c.tick_all(3 * kHeartbeatTicks);  // and the lagging one catches up
  EXPECT_EQ(commands(c.applied(3)), std::vector<std::string>{"x"});
}

TEST(PaxosReplication, NotCommittedWithOnlyTheLeadersAccept) {
  TestCluster c;
  c.elect(1);
  c.isolate(1);
  ProposeResult p = c.r(1).propose("x");
  ASSERT_TRUE(p.ok());
  c.tick_all(kElectionTicksMin);
  EXPECT_LT(c.r(1).commit_index(), p.index);
  EXPECT_TRUE(c.applied(1).empty());
  // The disk holds the accept, but nothing was chosen.
  EXPECT_EQ(c.disk(1).log.at(p.index).command, "x");
}

TEST(PaxosReplication, UnsafeSwitchCommitsOnOwnAccept) {
  TestCluster c(3, 1, /*unsafe=*/true);
  c.elect(1);
  c.isolate(1);
  ProposeResult p = c.r(1).propose("x");
  ASSERT_TRUE(p.ok());
  c.drain(1);
  EXPECT_EQ(c.r(1).commit_index(), p.index) << "the test-only switch should commit alone";
}

TEST(PaxosReplication, ProposalsAreBatchedPerReady) {
  TestCluster c;
  c.elect(1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.r(1).propose("c" + std::to_string(i)).ok());
  c.drain(1);
  size_t accepts_to_2 = 0;
  for (const Message& m : c.net()) {
    if (m.type == MessageType::accept && m.to == 2) {
      ++accepts_to_2;
      EXPECT_EQ(m.entries.size(), 10u);
    }
  }
  EXPECT_EQ(accepts_to_2, 1u);
  c.deliver_all();
  EXPECT_EQ(c.r(1).commit_index(), 10u);
}

TEST(PaxosReplication, ProposalOnFollowerIsRefusedWithHint) {
  TestCluster c;
  c.elect(1);
  ProposeResult p = c.r(2).propose("x");
  EXPECT_EQ(p.status, ProposeStatus::not_leader);
  EXPECT_EQ(p.leader_hint, 1u);
  ReadResult rr = c.r(3).read_index(9);
  EXPECT_EQ(rr.status, ReadStatus::not_leader);
  EXPECT_EQ(rr.leader_hint, 1u);
  EXPECT_EQ(c.r(1).propose("").status, ProposeStatus::invalid_argument);
}

TEST(PaxosReplication, LeaderRefusesProposalsBeyondTheUncommittedLimit) {
  TestCluster c;
  c.elect(1);
  c.isolate(1);
  const size_t limit = c.r(1).config().uncommitted_entries_max;
  for (size_t i = 0; i < limit; ++i) ASSERT_TRUE(c.r(1).propose("c").ok());
  EXPECT_EQ(c.r(1).propose("c").status, ProposeStatus::overloaded);
}

TEST(PaxosAcceptor, RefusesLowerBallots) {
  const Ballot promised{5, 3};
  Replica r(test_config(2), HardState{promised, 0}, {}, 1);
  Message accept;
  accept.type = MessageType::accept;
  accept.from = 1;
  accept.to = 2;
  accept.ballot = Ballot{4, 1};
  accept.index = 1;
  accept.entries = {Entry{1, Ballot{4, 1}, "old"}};
  ASSERT_EQ(r.step(accept), StepOutcome::processed);
  Ready rd = r.ready();
  EXPECT_FALSE(rd.hard_state);
  EXPECT_TRUE(rd.entries_to_persist.empty());
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type, MessageType::reject);
  EXPECT_EQ(rd.messages[0].promised, promised);
  r.advance();

  Message prepare;
  prepare.type = MessageType::prepare;
  prepare.from = 1;
  prepare.to = 2;
  prepare.ballot = Ballot{5, 1};  // same round, lower replica id: still lower
  prepare.index = 1;
  for (int t = 0; t < kElectionTicksMax; ++t) r.tick();  // no lease holds it back
  if (r.has_ready()) {
    r.ready();
    r.advance();
  }
  ASSERT_EQ(r.step(prepare), StepOutcome::processed);
  rd = r.ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type, MessageType::reject);
  r.advance();
  EXPECT_EQ(r.promised(), promised);

  prepare.ballot = Ballot{6, 1};
  ASSERT_EQ(r.step(prepare), StepOutcome::processed);
  rd = r.ready();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->promised, (Ballot{6, 1}));
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type, MessageType::promise);
  r.advance();
}

TEST(PaxosAcceptor, RefusesPrepareWhileItHearsALeader) {
  TestCluster c;
  c.elect(1);
  Message prepare;
  prepare.type = MessageType::prepare;
  prepare.from = 3;
  prepare.to = 2;
  prepare.ballot = Ballot{c.r(1).leader_ballot().round + 10, 3};
  prepare.index = 1;
  ASSERT_EQ(c.r(2).step(prepare), StepOutcome::processed);
  EXPECT_LT(c.r(2).promised(), prepare.ballot);
  c.drain(2);
  ASSERT_FALSE(c.net().empty());
  EXPECT_EQ(c.net().back().type, MessageType::reject);
  EXPECT_EQ(c.net().back().leader_hint, 1u);
}

// ---------------------------------------------------------------------------
// Phase 1 recovery

TEST(PaxosRecovery, ValueAcceptedByOneSurvivorIsReproposedNotReplaced) {
  TestCluster c;
  c.elect(1);
  ASSERT_TRUE(c.r(1).propose("v").ok());
  c.drain(1);
  // Only replica 2 gets the accept, and its acknowledgement is lost: the old
  // leader never learns the value was chosen, no client was told.
  c.drop_if([](const Message& m) { return m.type == MessageType::accept && m.to == 3; });
  c.deliver_if([](const Message& m) { return m.type == MessageType::accept && m.to == 2; });
  c.drop_if([](const Message&) { return true; });
  EXPECT_EQ(c.r(1).commit_index(), 0u);
  c.crash(1);
  c.elect(3);  // the replica that never saw "v" leads, with 2's promise
  ASSERT_GE(c.r(3).stats().values_recovered, 1u);
  c.tick_all(3 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(3)), std::vector<std::string>{"v"});
  EXPECT_EQ(commands(c.applied(2)), std::vector<std::string>{"v"});
  c.restart(1);
  c.tick_all(5 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(1)), std::vector<std::string>{"v"});
}

TEST(PaxosRecovery, HighestBallotReportWins) {
  // Slot 1 holds "x" under ballot b1 on replica 1 (never chosen) and "y"
  // under a higher b2 on replica 2, where "y" was chosen (with replica 3).
  // A new leader hearing both must re-propose "y".
  TestCluster c;
  c.elect(1);
  ASSERT_TRUE(c.r(1).propose("x").ok());
  c.drain(1);
  c.drop_if([](const Message&) { return true; });
  c.crash(1);
  c.elect(2);
  ASSERT_TRUE(c.r(2).propose("y").ok());
  c.drain(2);
  c.deliver_all();
  ASSERT_EQ(c.r(2).commit_index(), 1u);
  c.crash(3);
  c.restart(2);  // keeps its disk, loses its leadership
  c.restart(1);
  c.elect(1);  // Phase 1 with replica 2 only
  c.tick_all(3 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(1)), std::vector<std::string>{"y"});
  EXPECT_EQ(commands(c.applied(2)), std::vector<std::string>{"y"});
}

TEST(PaxosRecovery, HolesAreFilledWithNoops) {
  TestCluster c;
  c.elect(1);
  for (const char* cmd : {"a", "b", "c"}) {
    ASSERT_TRUE(c.r(1).propose(cmd).ok());
    c.drain(1);  // one Accept per proposal
  }
  // Replica 2 receives only the accept for slot 3.
  c.deliver_if(
      [](const Message& m) { return m.type == MessageType::accept && m.to == 2 && m.index == 3; });
  c.drop_if([](const Message&) { return true; });
  ASSERT_TRUE(c.r(2).log().contains(3));
  ASSERT_FALSE(c.r(2).log().contains(1));
  c.crash(1);
  c.elect(3);
  EXPECT_EQ(c.r(3).stats().noops_filled, 2u);
  c.tick_all(3 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(3)), (std::vector<std::string>{"", "", "c"}));
  EXPECT_EQ(commands(c.applied(2)), (std::vector<std::string>{"", "", "c"}));
  EXPECT_TRUE(c.applied(3)[0].is_noop());
}

TEST(PaxosRecovery, ValueOnlyOnTheDeadLeaderMayBeReplaced) {
  // The converse: a value nobody else accepted was not chosen; the new leader
  // may fill the slot, and the old leader adopts the outcome on return.
  TestCluster c;
  c.elect(1);
  ASSERT_TRUE(c.r(1).propose("lost").ok());
  c.drain(1);
  c.drop_if([](const Message&) { return true; });
  c.crash(1);
  c.elect(2);
  ASSERT_TRUE(c.r(2).propose("kept").ok());
  c.tick_all(3 * kHeartbeatTicks);
  c.restart(1);
  c.tick_all(5 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(1)), std::vector<std::string>{"kept"});
  EXPECT_EQ(c.disk(1).log.at(1).command, "kept");
}

TEST(PaxosRecovery, LongLogsTravelInChunks) {
  TestCluster c;
  c.elect(1);
  c.isolate(3);
  const size_t chunk = c.r(1).config().transfer_entries_max;
  const size_t n = chunk * 2 + 5;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(c.r(1).propose("c" + std::to_string(i)).ok());
    if (i % 100 == 0) {
      c.drain(1);
      c.deliver_all();
    }
  }
  c.drain(1);
  c.deliver_all();
  ASSERT_EQ(c.r(1).commit_index(), n);
  c.crash(1);
  c.heal();
  c.elect(3);  // knows nothing: its Phase 1 needs three chunks from replica 2
  c.tick_all(20 * kHeartbeatTicks);
  ASSERT_EQ(c.applied(3).size(), n);
  EXPECT_EQ(c.applied(3).back().command, "c" + std::to_string(n - 1));
}

// ---------------------------------------------------------------------------
// Reads

TEST(PaxosReads, ReadIndexWaitsForAHeartbeatQuorum) {
  TestCluster c;
  c.elect(1);
  ASSERT_TRUE(c.r(1).propose("x").ok());
  c.drain(1);
  c.deliver_all();
  ASSERT_EQ(c.r(1).commit_index(), 1u);
  // A heartbeat round that started before the request does not count: the
  // followers answer it after the request, but the leader's new round is lost.
  for (int t = 0; t < kHeartbeatTicks; ++t) c.tick(1);
  c.deliver_if([](const Message& m) { return m.type == MessageType::heartbeat; });
  ASSERT_EQ(c.r(1).read_index(42).status, ReadStatus::pending);
  c.block_one_way(1, 2);
  c.block_one_way(1, 3);
  c.deliver_all();
  EXPECT_TRUE(c.reads(1).empty()) << "read released by a round older than the request";
  c.tick_all(kHeartbeatTicks * 2);
  EXPECT_TRUE(c.reads(1).empty()) << "read released without a quorum";
  c.heal();
  c.tick_all(kHeartbeatTicks);
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0], (ReadState{42, 1, true}));
}

TEST(PaxosReads, ReadIndexFailsWhenLeadershipIsLost) {
  TestCluster c;
  c.elect(1);
  c.isolate(1);
  ASSERT_EQ(c.r(1).read_index(5).status, ReadStatus::pending);
  c.tick_all(2 * kElectionTicksMax + 2);  // check quorum makes it step down
  EXPECT_FALSE(c.r(1).is_leader());
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_FALSE(c.reads(1)[0].ok);
}

TEST(PaxosReads, LeaseEndsBeforeAnotherLeaderCanExist) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TestCluster c(3, seed);
    c.elect(1);
    c.tick_all(kHeartbeatTicks);
    ASSERT_EQ(c.r(1).lease_read().status, ReadStatus::ok);
    c.isolate(1);
    bool lease_expired = false;
    for (int t = 0; t < 10 * kElectionTicksMax; ++t) {
      c.tick_all();
      const bool old_has_lease = c.r(1).lease_read().status == ReadStatus::ok;
      if (!old_has_lease) lease_expired = true;
      bool other_leader = c.r(2).is_leader() || c.r(3).is_leader();
      ASSERT_FALSE(old_has_lease && other_leader) << "two leases at tick " << t;
      if (old_has_lease) {
        ASSERT_FALSE(lease_expired) << "lease came back";
      }
    }
    EXPECT_TRUE(lease_expired);
    EXPECT_TRUE(c.r(2).is_leader() || c.r(3).is_leader());
  }
}

// ---------------------------------------------------------------------------
// Durability

TEST(PaxosDurability, PersistBeforeSendUnderRandomDriving) {
  // Every Ready of this run goes through TestCluster::check_vouched; this
  // adds crashes right after persisting and before sending.
  size_t committed = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    TestCluster c(3, seed);
    Rng rng(seed);
    int proposals = 0;
    for (int step = 0; step < 1500; ++step) {
      const ReplicaId id = static_cast<ReplicaId>(1 + rng.uniform(3));
      switch (rng.uniform(8)) {
        case 0:
        case 1:
          for (ReplicaId l : c.leaders()) (void)c.r(l).propose("p" + std::to_string(proposals++));
          break;
        case 2:
          if (rng.bernoulli(0.1) && c.up(id) && c.r(id).has_ready()) {
            c.crash_after_persist(id);  // persisted, never sent
            c.start(id, false);
          }
          break;
        default:
          c.tick(id);
          break;
      }
      if (rng.bernoulli(0.7)) c.deliver_all();
      c.drain_all();
    }
    c.tick_all(100);
    ASSERT_EQ(c.leaders().size(), 1u) << "seed " << seed;
    ASSERT_TRUE(c.r(c.leaders().front()).propose("last").ok());
    c.tick_all(3 * kHeartbeatTicks);
    for (ReplicaId id = 1; id <= 3; ++id) {
      ASSERT_FALSE(c.applied(id).empty()) << "seed " << seed;
      EXPECT_EQ(c.applied(id).back().command, "last") << "seed " << seed;
    }
    committed += c.applied(1).size();
  }
  EXPECT_GT(committed, 10u * 100u) << "the random driving hardly committed anything";
}

TEST(PaxosDurability, RestartedFollowerResumesFromItsDisk) {
  TestCluster c;
  c.elect(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.r(1).propose("c" + std::to_string(i)).ok());
  c.drain(1);
  c.deliver_all();
  c.tick_all(kHeartbeatTicks);
  ASSERT_EQ(c.applied(2).size(), 5u);
  c.restart(2);
  EXPECT_EQ(c.r(2).commit_index(), 5u);
  EXPECT_EQ(c.r(2).applied_index(), 5u);
  for (int i = 5; i < 8; ++i) ASSERT_TRUE(c.r(1).propose("c" + std::to_string(i)).ok());
  c.drain(1);
  c.deliver_all();
  c.tick_all(kHeartbeatTicks);
  EXPECT_EQ(c.applied(2).size(), 8u);
}

// ---------------------------------------------------------------------------
// Disk loss

TEST(PaxosDiskLoss, WipedReplicaRebuildsFromPeersBeforeVoting) {
  TestCluster c;
  c.elect(1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.r(1).propose("c" + std::to_string(i)).ok());
  c.drain(1);
  c.deliver_all();
  c.tick_all(kHeartbeatTicks);
  c.wipe_and_restart(3);
  EXPECT_TRUE(c.r(3).recovering());
  c.tick_all(kHeartbeatTicks);
  EXPECT_FALSE(c.r(3).recovering());
  EXPECT_GE(c.r(3).promised(), c.r(1).leader_ballot());
  c.tick_all(2 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(3)), (std::vector<std::string>{"c0", "c1", "c2", "c3"}));
  // It now votes: with the old leader gone, 2 and 3 keep every value.
  c.crash(1);
  c.tick_all(10 * kElectionTicksMax);
  ASSERT_EQ(c.leaders().size(), 1u);
  const ReplicaId leader = c.leaders().front();
  ASSERT_TRUE(c.r(leader).propose("c4").ok());
  c.tick_all(3 * kHeartbeatTicks);
  EXPECT_EQ(commands(c.applied(3)), (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4"}));
}

TEST(PaxosDiskLoss, WipedReplicaWaitsForEveryPeer) {
  // Replica 1 leads and gets "v" chosen with replica 3 only; 3 then loses its
  // disk and 1 crashes. Replica 2 never saw "v". Had 3 voted with an empty
  // log, 2 and 3 could have filled slot 1 with something else.
  TestCluster c;
  c.elect(1);
  ASSERT_TRUE(c.r(1).propose("v").ok());
  c.drain(1);
  c.drop_if([](const Message& m) { return m.to == 2; });
  c.block(1, 2);
  c.deliver_all();
  ASSERT_EQ(c.r(1).commit_index(), 1u);
  c.wipe_and_restart(3);
  c.crash(1);
  c.heal();
  c.tick_all(10 * kElectionTicksMax);
  EXPECT_TRUE(c.leaders().empty()) << "elected without the only copy of a chosen value";
  EXPECT_TRUE(c.r(3).recovering());
  c.restart(1);
  c.tick_all(10 * kElectionTicksMax);
  ASSERT_EQ(c.leaders().size(), 1u);
  c.tick_all(5 * kHeartbeatTicks);
  for (ReplicaId id = 1; id <= 3; ++id) {
    EXPECT_EQ(commands(c.applied(id)), std::vector<std::string>{"v"}) << "replica " << id;
  }
}

// ---------------------------------------------------------------------------
// Messages

Message sample_accept() {
  Message m;
  m.type = MessageType::accept;
  m.from = 1;
  m.to = 2;
  m.ballot = Ballot{3, 1};
  m.index = 7;
  m.entries = {Entry{7, Ballot{3, 1}, "a"}, Entry{8, Ballot{3, 1}, ""}};
  m.commit_index = 6;
  m.seq = 4;
  m.sent_tick = 99;
  return m;
}

TEST(PaxosCodec, RoundTripsEveryKind) {
  std::vector<Message> samples;
  samples.push_back(sample_accept());
  Message promise;
  promise.type = MessageType::promise;
  promise.from = 2;
  promise.to = 1;
  promise.ballot = Ballot{3, 1};
  promise.index = 5;
  promise.last_index = 9;
  promise.done = true;
  promise.promised = Ballot{3, 1};
  promise.entries = {Entry{5, Ballot{2, 3}, "x"}, Entry{9, Ballot{1, 2}, "y"}};
  samples.push_back(promise);
  Message reject;
  reject.type = MessageType::reject;
  reject.from = 3;
  reject.to = 1;
  reject.ballot = Ballot{3, 1};
  reject.promised = Ballot{4, 2};
  reject.leader_hint = 2;
  samples.push_back(reject);
  Message query;
  query.type = MessageType::recover_query;
  query.from = 3;
  query.to = 1;
  query.index = 1;
  samples.push_back(query);
  for (const Message& m : samples) {
    ASSERT_EQ(validate_message(m), "") << to_string(m.type);
    DecodeResult d = decode_message(encode_message(m));
    ASSERT_TRUE(d.ok()) << d.error;
    EXPECT_EQ(*d.message, m) << to_string(m.type);
  }
}

TEST(PaxosCodec, MalformedMessagesAreRejectedNotTrusted) {
  EXPECT_FALSE(decode_message("\xff\xff\xff garbage").ok());
  EXPECT_FALSE(decode_message("").ok());  // type 0

  auto encode_raw = [](const std::function<void(storage::paxos::wire::Message&)>& edit) {
    storage::paxos::wire::Message pm;
    DecodeResult base = decode_message(encode_message(sample_accept()));
    EXPECT_TRUE(base.ok());
    EXPECT_TRUE(pm.ParseFromString(encode_message(sample_accept())));
    edit(pm);
    return pm.SerializeAsString();
  };
  struct Case {
    const char* name;
    std::function<void(storage::paxos::wire::Message&)> edit;
  };
  const std::vector<Case> cases = {
      {"unknown type",
       [](auto& m) { m.set_type(static_cast<storage::paxos::wire::MessageType>(99)); }},
      {"to self", [](auto& m) { m.set_to(1); }},
      {"no sender", [](auto& m) { m.set_from(0); }},
      {"ballot of another", [](auto& m) { m.mutable_ballot()->set_replica(3); }},
      {"no ballot", [](auto& m) { m.clear_ballot(); }},
      {"gap in entries", [](auto& m) { m.mutable_entries(1)->set_index(10); }},
      {"entry under other ballot",
       [](auto& m) { m.mutable_entries(0)->mutable_ballot()->set_round(2); }},
      {"entry without ballot", [](auto& m) { m.mutable_entries(0)->clear_ballot(); }},
      {"entry index 0",
       [](auto& m) {
         m.mutable_entries(0)->set_index(0);
         m.set_index(0);
       }},
      {"index not first entry", [](auto& m) { m.set_index(6); }},
      {"no entries", [](auto& m) { m.clear_entries(); }},
      {"negative tick", [](auto& m) { m.set_sent_tick(-5); }},
  };
  for (const Case& k : cases) {
    DecodeResult d = decode_message(encode_raw(k.edit));
    EXPECT_FALSE(d.ok()) << k.name;
    EXPECT_FALSE(d.error.empty()) << k.name;
  }

  // Every truncation of a valid message, and random bytes: never a crash.
  const std::string good = encode_message(sample_accept());
  for (size_t n = 0; n < good.size(); ++n) (void)decode_message(good.substr(0, n));
  Rng rng(5);
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng.uniform(4));
    for (int f = 0; f < flips; ++f)
      bytes[rng.uniform(bytes.size())] = static_cast<char>(rng.uniform(256));
    DecodeResult d = decode_message(bytes);
    if (d.ok()) {
      EXPECT_EQ(validate_message(*d.message), "");
    }
  }
}

TEST(PaxosCodec, ReplicaDropsMalformedAndForeignMessages) {
  Replica r(test_config(2), HardState{}, {}, 1);
  Message m = sample_accept();
  m.entries[1].index = 12;  // not consecutive
  EXPECT_EQ(r.step(m), StepOutcome::dropped_malformed);
  m = sample_accept();
  m.from = 9;
  m.ballot.replica = 9;
  for (Entry& e : m.entries) e.ballot.replica = 9;
  EXPECT_EQ(r.step(m), StepOutcome::dropped_not_for_us);
  m = sample_accept();
  m.to = 3;
  EXPECT_EQ(r.step(m), StepOutcome::dropped_not_for_us);
  EXPECT_EQ(r.stats().messages_dropped, 3u);
  EXPECT_FALSE(r.has_ready());
}

// ---------------------------------------------------------------------------
// Configuration and persisted state

TEST(PaxosConfig, RejectsUnsafeTimingAndBadMembership) {
  Config c = test_config(1);
  c.lease_ticks = c.election_ticks_min;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = test_config(1);
  c.members = {1, 2};
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = test_config(4);
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = test_config(1);
  c.members = {1, 2, 2};
  EXPECT_THROW(c.validate(), std::invalid_argument);
  EXPECT_NO_THROW(test_config(1).validate());
}

TEST(PaxosConfig, RejectsImpossiblePersistedState) {
  const Config c = test_config(1);
  // An entry above the promise, a commit over a hole, an unknown ballot owner.
  EXPECT_THROW((void)Replica(c, HardState{Ballot{1, 1}, 0}, {Entry{1, Ballot{2, 1}, "x"}}, 1),
               std::invalid_argument);
  EXPECT_THROW((void)Replica(c, HardState{Ballot{1, 1}, 2}, {Entry{1, Ballot{1, 1}, "x"}}, 1),
               std::invalid_argument);
  EXPECT_THROW((void)Replica(c, HardState{Ballot{1, 9}, 0}, {}, 1), std::invalid_argument);
  Config rec = c;
  rec.recovering = true;
  EXPECT_THROW((void)Replica(rec, HardState{Ballot{1, 1}, 0}, {}, 1), std::invalid_argument);
}

TEST(PaxosSingleReplica, CommitsAlone) {
  Config c = test_config(1, 1);
  Replica r(c, HardState{}, {}, 1);
  std::vector<std::string> applied;
  auto drain = [&] {
    while (r.has_ready()) {
      Ready rd = r.ready();
      for (const Entry& e : rd.committed) applied.push_back(e.command);
      r.advance();
      r.check_invariants();
    }
  };
  for (int t = 0; t < 3 * kElectionTicksMax && !r.is_leader(); ++t) {
    r.tick();
    drain();
  }
  ASSERT_TRUE(r.is_leader());
  ASSERT_TRUE(r.propose("solo").ok());
  drain();
  EXPECT_EQ(applied, std::vector<std::string>{"solo"});
  ASSERT_EQ(r.read_index(3).status, ReadStatus::pending);
  Ready rd = r.ready();
  ASSERT_EQ(rd.reads.size(), 1u);
  EXPECT_EQ(rd.reads[0], (ReadState{3, 1, true}));
  r.advance();
}

}  // namespace
}  // namespace wx::paxos
