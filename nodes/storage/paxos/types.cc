#include "nodes/storage/paxos/types.h"

#include <algorithm>

namespace wx::paxos {

std::string Ballot::to_string() const {
  return "(" + std::to_string(round) + "," + std::to_string(replica) + ")";
}

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::probe:
      return "probe";
    case MessageType::probe_reply:
      return "probe_reply";
    case MessageType::prepare:
      return "prepare";
    case MessageType::promise:
      return "promise";
    case MessageType::accept:
      return "accept";
    case MessageType::accepted:
      return "accepted";
    case MessageType::heartbeat:
      return "heartbeat";
    case MessageType::heartbeat_reply:
      return "heartbeat_reply";
    case MessageType::reject:
      return "reject";
    case MessageType::recover_query:
      return "recover_query";
    case MessageType::recover_reply:
      return "recover_reply";
  }
  return "unknown";
}

const char* to_string(ProposeStatus status) {
  switch (status) {
    case ProposeStatus::ok:
      return "ok";
    case ProposeStatus::not_leader:
      return "not_leader";
    case ProposeStatus::overloaded:
      return "overloaded";
    case ProposeStatus::invalid_argument:
      return "invalid_argument";
  }
  return "unknown";
}

const char* to_string(ReadStatus status) {
  switch (status) {
    case ReadStatus::pending:
      return "pending";
    case ReadStatus::ok:
      return "ok";
    case ReadStatus::not_leader:
      return "not_leader";
    case ReadStatus::not_ready:
      return "not_ready";
    case ReadStatus::overloaded:
      return "overloaded";
  }
  return "unknown";
}

namespace {
constexpr int64_t kPpm = 1'000'000;
}  // namespace

void Config::validate() const {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("paxos::Config: " + what);
  };
  if (self == kNoReplica) fail("self must be non-zero");
  if (members.empty() || members.size() > kMembersMax) fail("members: 1 to 7 replicas");
  if (members.size() % 2 == 0) fail("members: an odd number of replicas");
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i] == kNoReplica) fail("members: ids must be non-zero");
    for (size_t j = i + 1; j < members.size(); ++j) {
      if (members[i] == members[j]) fail("members: duplicate id " + std::to_string(members[i]));
    }
  }
  if (std::find(members.begin(), members.end(), self) == members.end()) fail("self not in members");
  if (heartbeat_ticks < 1) fail("heartbeat_ticks must be >= 1");
  if (lease_ticks < 1) fail("lease_ticks must be >= 1");
  if (lease_ticks >= election_ticks_min) {
    fail(
        "lease_ticks must be < election_ticks_min (the lease must end before a new leader can "
        "exist)");
  }
  if (clock_drift_ppm < 0 || clock_drift_ppm > kPpm) fail("clock_drift_ppm must be in [0, 1000000]");
  // lease_ticks * (1 + drift) <= election_ticks_min - 1, exactly, in integers.
  using i128 = __int128;
  if (i128{lease_ticks} * (kPpm + clock_drift_ppm) > i128{election_ticks_min - 1} * kPpm) {
    fail(
        "lease_ticks * (1 + clock_drift_ppm / 1e6) must be <= election_ticks_min - 1 (the lease "
        "must end, on the leader's clock, before any follower's election timeout can elapse on "
        "its clock, when the clocks drift apart by up to clock_drift_ppm)");
  }
  if (heartbeat_ticks >= election_ticks_min) fail("heartbeat_ticks must be < election_ticks_min");
  if (election_ticks_max < election_ticks_min) fail("election_ticks_max < election_ticks_min");
  if (batch_entries_max < 1 || batch_bytes_max < 1 || inflight_entries_max < 1 ||
      uncommitted_entries_max < 1 || transfer_entries_max < 1 || committed_entries_max < 1 ||
      reads_pending_max < 1 || command_bytes_max < 1) {
    fail("every *_max limit must be >= 1");
  }
  if (batch_entries_max > kMessageEntriesMax || transfer_entries_max > kMessageEntriesMax) {
    fail("batch_entries_max and transfer_entries_max must be <= kMessageEntriesMax");
  }
  if (command_bytes_max > kCommandBytesMax) fail("command_bytes_max must be <= kCommandBytesMax");
  if (recovering && members.size() == 1) fail("a single-replica group cannot recover from peers");
}

}  // namespace wx::paxos
