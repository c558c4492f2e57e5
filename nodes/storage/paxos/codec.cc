#include "nodes/storage/paxos/codec.h"

#include <cassert>
#include <limits>

#include "nodes/storage/paxos/paxos.pb.h"

namespace wx::paxos {

namespace {

namespace pb = wx::storage::paxos::wire;

bool valid_ballot(Ballot b) {
  return b.round >= 1 && b.replica != kNoReplica;
}

bool has_no_payload(const Message& m) {
  return m.entries.empty();
}

// Entries strictly increasing inside [first, last], each a real slot with a
// real ballot no higher than `ceiling`.
std::string check_chunk(const Message& m, Ballot ceiling) {
  if (m.index < 1) return "chunk must start at index >= 1";
  if (m.last_index == std::numeric_limits<uint64_t>::max()) return "chunk range overflows";
  if (m.last_index + 1 < m.index) return "chunk ends before it starts";
  uint64_t prev = 0;
  for (const Entry& e : m.entries) {
    if (e.index < m.index || e.index > m.last_index) return "entry outside the chunk's range";
    if (e.index <= prev) return "entries not strictly increasing";
    if (!valid_ballot(e.ballot)) return "entry without a ballot";
    if (e.ballot > ceiling) return "entry ballot above the sender's promise";
    prev = e.index;
  }
  return {};
}

}  // namespace

std::string validate_message(const Message& m) {
  if (static_cast<uint8_t>(m.type) < static_cast<uint8_t>(MessageType::probe) ||
      static_cast<uint8_t>(m.type) > static_cast<uint8_t>(kMessageTypeMax)) {
    return "unknown message type";
  }
  if (m.from == kNoReplica || m.to == kNoReplica) return "missing from/to";
  if (m.from == m.to) return "message to self";
  if (m.entries.size() > kMessageEntriesMax) return "too many entries";
  for (const Entry& e : m.entries) {
    if (e.index == 0) return "entry index 0";
    if (e.command.size() > kCommandBytesMax) return "command too large";
  }
  if (m.sent_tick < 0) return "negative sent_tick";

  switch (m.type) {
    case MessageType::probe:
    case MessageType::prepare:
    case MessageType::heartbeat:
      if (!valid_ballot(m.ballot) || m.ballot.replica != m.from) return "ballot not the sender's";
      if (!has_no_payload(m)) return "unexpected entries";
      if (m.type == MessageType::prepare && m.index < 1) return "prepare from index 0";
      return {};
    case MessageType::probe_reply:
    case MessageType::heartbeat_reply:
    case MessageType::reject:
      if (!valid_ballot(m.ballot) || m.ballot.replica != m.to) return "ballot not the receiver's";
      if (!has_no_payload(m)) return "unexpected entries";
      return {};
    case MessageType::promise:
      if (!valid_ballot(m.ballot) || m.ballot.replica != m.to) return "ballot not the receiver's";
      return check_chunk(m, m.ballot);
    case MessageType::accept: {
      if (!valid_ballot(m.ballot) || m.ballot.replica != m.from) return "ballot not the sender's";
      if (m.entries.empty()) return "accept without entries";
      if (m.index != m.entries.front().index) return "accept index is not its first entry";
      uint64_t expected = m.index;
      for (const Entry& e : m.entries) {
        if (e.index != expected) return "accept entries not consecutive";
        if (e.ballot != m.ballot) return "accept entry under another ballot";
        if (expected == std::numeric_limits<uint64_t>::max()) return "index overflow";
        ++expected;
      }
      return {};
    }
    case MessageType::accepted:
      if (!valid_ballot(m.ballot) || m.ballot.replica != m.to) return "ballot not the receiver's";
      if (!has_no_payload(m)) return "unexpected entries";
      if (m.index < 1 || m.last_index < m.index) return "bad accepted range";
      if (m.last_index - m.index >= kMessageEntriesMax) return "accepted range too long";
      return {};
    case MessageType::recover_query:
      if (!m.ballot.is_zero()) return "recover_query carries a ballot";
      if (!has_no_payload(m)) return "unexpected entries";
      if (m.index < 1) return "recover_query from index 0";
      return {};
    case MessageType::recover_reply:
      if (!m.ballot.is_zero()) return "recover_reply carries a ballot";
      if (m.recovering && !m.entries.empty()) return "recovering sender sent entries";
      return check_chunk(m, m.promised);
  }
  return "unknown message type";
}

namespace {

void to_pb(Ballot b, pb::Ballot* out) {
  out->set_round(b.round);
  out->set_replica(b.replica);
}

Ballot from_pb(const pb::Ballot& b) {
  return Ballot{b.round(), b.replica()};
}

}  // namespace

std::string encode_message(const Message& m) {
  const std::string error = validate_message(m);
  assert(error.empty() && "encoding a malformed Paxos message");
  (void)error;
  pb::Message out;
  out.set_type(static_cast<pb::MessageType>(m.type));
  out.set_from(m.from);
  out.set_to(m.to);
  if (!m.ballot.is_zero()) to_pb(m.ballot, out.mutable_ballot());
  out.set_index(m.index);
  out.set_last_index(m.last_index);
  out.set_commit_index(m.commit_index);
  for (const Entry& e : m.entries) {
    pb::Entry* pe = out.add_entries();
    pe->set_index(e.index);
    to_pb(e.ballot, pe->mutable_ballot());
    pe->set_command(e.command);
  }
  if (!m.promised.is_zero()) to_pb(m.promised, out.mutable_promised());
  out.set_leader_hint(m.leader_hint);
  out.set_granted(m.granted);
  out.set_done(m.done);
  out.set_recovering(m.recovering);
  out.set_seq(m.seq);
  out.set_sent_tick(m.sent_tick);
  return out.SerializeAsString();
}

DecodeResult decode_message(std::string_view bytes) {
  pb::Message in;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return {std::nullopt, "does not parse as a Paxos message"};
  }
  const int type = static_cast<int>(in.type());
  if (type < static_cast<int>(MessageType::probe) || type > static_cast<int>(kMessageTypeMax)) {
    return {std::nullopt, "unknown message type"};
  }
  if (static_cast<size_t>(in.entries_size()) > kMessageEntriesMax) {
    return {std::nullopt, "too many entries"};
  }
  Message m;
  m.type = static_cast<MessageType>(type);
  m.from = in.from();
  m.to = in.to();
  m.ballot = from_pb(in.ballot());
  m.index = in.index();
  m.last_index = in.last_index();
  m.commit_index = in.commit_index();
  m.entries.reserve(static_cast<size_t>(in.entries_size()));
  for (const pb::Entry& pe : in.entries()) {
    if (!pe.has_ballot()) return {std::nullopt, "entry without a ballot"};
    m.entries.push_back(Entry{pe.index(), from_pb(pe.ballot()), pe.command()});
  }
  m.promised = from_pb(in.promised());
  m.leader_hint = in.leader_hint();
  m.granted = in.granted();
  m.done = in.done();
  m.recovering = in.recovering();
  m.seq = in.seq();
  m.sent_tick = in.sent_tick();
  std::string error = validate_message(m);
  if (!error.empty()) return {std::nullopt, std::move(error)};
  return {std::move(m), {}};
}

}  // namespace wx::paxos
