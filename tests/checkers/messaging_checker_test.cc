// The messaging checker (checkers/messaging.h) and its JSON-lines history
// format (checkers/history_json.h).
//
// * hand-built histories from a tiny store-and-forward model (`World`): good
//   ones pass; one per violation kind fails, naming the message, the
//   recipient and the caller's context;
// * JSON: round trip of every event kind; malformed input (bad JSON, wrong
//   types, missing or unknown fields, unknown event kinds, binary bytes, an
//   empty file, deep nesting) gives errors naming the line and field, and
//   random garbage never crashes the reader;
// * randomized: histories generated from a seeded model (retries, lost
//   replies, failed sends, gaps in seqs, groups, two devices, shuffled event
//   order) pass; the same with one delivery dropped, one duplicated or two
//   received messages swapped fail with exactly the right check.
#include <gtest/gtest.h>

#include <functional>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "checkers/history_json.h"
#include "checkers/messaging.h"
#include "nodes/runtime/random.h"
#include "tests/support/seeds.h"

namespace wx::checkers::messaging {
namespace {

// --- a tiny store-and-forward model that records a history --------------------

Conversation peer(UserId u) {
  return Conversation{ConversationKind::user, u};
}
Conversation group(GroupId g) {
  return Conversation{ConversationKind::group, g};
}

enum class Fate {
  ok,             // stored, the sender told ok
  info_stored,    // stored, the reply lost
  info_lost,      // not stored, the sender timed out
  fail,           // not stored, a definite error
  silent_stored,  // stored, the client never recorded a completion
};

bool stores(Fate f) {
  return f == Fate::ok || f == Fate::info_stored || f == Fate::silent_stored;
}

class World {
 public:
  struct Client {
    UserId user = 0;
    SyncKey key;
    std::vector<MessageCopy> held;
  };

  History h;
  int64_t t_ns = 1'000'000'000;
  std::map<GroupId, std::vector<UserId>> groups;
  std::map<UserId, std::map<Seq, MessageCopy>> inbox;
  std::map<UserId, Seq> last_seq;
  std::map<UserId, uint64_t> contacts_version;
  std::map<std::pair<UserId, std::string>, std::string> stored;  // (sender, cmid) -> id
  std::map<std::string, Client> clients;
  uint64_t next_message = 1;
  uint64_t next_op = 1;
  bool record_acks = true;
  bool record_members = true;

  void add_client(const std::string& process, UserId user) {
    clients[process] = Client{user, {}, {}};
  }

  void emit(const std::string& process, EventBody body) {
    t_ns += 1'000'000;
    h.push_back(Event{t_ns, process, std::move(body)});
  }

  std::vector<UserId> recipients_of(UserId sender, const Conversation& to) {
    if (to.kind == ConversationKind::user) return {to.id};
    std::vector<UserId> out;
    for (UserId m : groups.at(to.id)) {
      if (m != sender) out.push_back(m);
    }
    return out;
  }

  // The server side of a send: stores the message once per (sender, cmid)
  // and records its facts. Returns the message id.
  std::string store(UserId sender, const Conversation& to, const std::string& cmid, uint64_t hash,
                    Seq gap = 0) {
    auto it = stored.find({sender, cmid});
    if (it != stored.end()) return it->second;
    const std::string id = "m" + std::to_string(next_message++);
    stored[{sender, cmid}] = id;
    if (to.kind == ConversationKind::group && record_members) {
      emit("server", GroupMembers{to.id, sender, cmid, id, groups.at(to.id)});
    }
    SendAck ack{id, sender, cmid, to, {}};
    for (UserId r : recipients_of(sender, to)) {
      const Seq seq = (last_seq[r] += 1 + gap);
      inbox[r][seq] = MessageCopy{r, seq, id, sender, cmid, to, hash};
      ack.recipients.push_back(RecipientSeq{r, seq});
    }
    if (record_acks) emit("server", ack);
    return id;
  }

  // One attempt of a send by `process`; returns the message id if stored.
  std::string send(const std::string& process, const Conversation& to, const std::string& cmid,
                   Fate fate, const std::string& body = "hello", Seq gap = 0) {
    const UserId user = clients.at(process).user;
    const uint64_t op = next_op++;
    emit(process, Invoke{op, SendRequest{user, to, cmid, body_hash(body)}});
    std::string id;
    if (stores(fate)) id = store(user, to, cmid, body_hash(body), gap);
    switch (fate) {
      case Fate::ok:
        emit(process, Completion{op, OpKind::send, Outcome::ok, Result{SendResult{id}}, ""});
        break;
      case Fate::info_stored:
      case Fate::info_lost:
        emit(process, Completion{op, OpKind::send, Outcome::info, std::nullopt, "timeout"});
        break;
      case Fate::fail:
        emit(process, Completion{op, OpKind::send, Outcome::fail, std::nullopt, "unavailable"});
        break;
      case Fate::silent_stored:
        break;
    }
    return id;
  }

  // One sync of `process`: at most `page_max` messages after its key.
  // Returns the number of messages received.
  size_t sync(const std::string& process, size_t page_max = 100, bool lose_reply = false) {
    Client& c = clients.at(process);
    const uint64_t op = next_op++;
    emit(process, Invoke{op, SyncRequest{c.user, c.key}});
    const Seq after = c.key.count("messages") ? c.key.at("messages") : 0;
    SyncResult r;
    const auto& box = inbox[c.user];
    for (auto it = box.upper_bound(after); it != box.end() && r.messages.size() < page_max; ++it) {
      r.messages.push_back(it->second);
    }
    r.key["messages"] = r.messages.empty() ? after : r.messages.back().seq;
    r.key["contacts"] = contacts_version[c.user];
    if (lose_reply) {
      emit(process, Completion{op, OpKind::sync, Outcome::info, std::nullopt, "reset"});
      return 0;
    }
    const size_t n = r.messages.size();
    c.held.insert(c.held.end(), r.messages.begin(), r.messages.end());
    c.key = r.key;
    emit(process, Completion{op, OpKind::sync, Outcome::ok, Result{std::move(r)}, ""});
    return n;
  }

  void sync_all(size_t page_max = 100) {
    for (auto& [process, c] : clients) {
      while (sync(process, page_max) > 0) {
      }
    }
  }

  void change_contacts(const std::string& process, UserId contact) {
    const UserId user = clients.at(process).user;
    const uint64_t op = next_op++;
    emit(process, Invoke{op, ContactsRequest{user, "add", contact}});
    const uint64_t v = ++contacts_version[user];
    emit(process, Completion{op, OpKind::contacts, Outcome::ok,
                             Result{ContactsResult{v, true, std::nullopt}}, ""});
  }

  // Final states: every user's inbox and versions, every client's state.
  void finish() {
    std::set<UserId> users;
    for (const auto& [u, box] : inbox) users.insert(u);
    for (const auto& [p, c] : clients) users.insert(c.user);
    for (UserId u : users) {
      ServerFinal s;
      s.user = u;
      for (const auto& [seq, m] : inbox[u]) s.inbox.push_back(m);
      s.versions["messages"] = inbox[u].empty() ? 0 : inbox[u].rbegin()->first;
      s.versions["contacts"] = contacts_version[u];
      emit("recorder", s);
    }
    for (const auto& [p, c] : clients) emit(p, ClientFinal{c.user, c.held, c.key, std::nullopt, std::nullopt});
  }
};

MessagingVerdict check(const History& h, const std::string& context = "seed 7") {
  CheckOptions o;
  o.context = context;
  return check_messaging(h, o);
}

::testing::AssertionResult Contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << needle << "\" not in:\n" << haystack;
}

// The only failing checks are `expected` (and each of them fails).
::testing::AssertionResult FailsExactly(const MessagingVerdict& v, std::set<Check> expected) {
  for (size_t c = 0; c < kCheckCount; ++c) {
    const Check check = static_cast<Check>(c);
    if (v.passed(check) == (expected.count(check) == 0)) continue;
    return ::testing::AssertionFailure()
           << "check " << to_string(check) << (v.passed(check) ? " passed" : " failed")
           << " unexpectedly\n"
           << format_verdict(v);
  }
  return ::testing::AssertionSuccess();
}

// The first violation of `check` with `kind`, or null.
const Violation* find(const MessagingVerdict& v, Check check, const std::string& kind) {
  for (const auto& x : v.violations) {
    if (x.check == check && x.kind == kind) return &x;
  }
  return nullptr;
}

// Three users with one device each, u2 with a second device, group g1 = {1,2,3}.
World small_world() {
  World w;
  w.add_client("c1", 1);
  w.add_client("c2", 2);
  w.add_client("c2b", 2);
  w.add_client("c3", 3);
  w.groups[1] = {1, 2, 3};
  return w;
}

// --- good histories pass -------------------------------------------------------------------

TEST(MessagingChecker, EmptyRunPasses) {
  World w = small_world();
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
  EXPECT_TRUE(Contains(format_verdict(v), "messaging check: passed (seed 7)"));
}

TEST(MessagingChecker, OneToOneAndGroupMessagesPass) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync("c2", 1);
  w.send("c3", group(1), "c3-1", Fate::ok);
  w.send("c2", peer(3), "c2-1", Fate::ok);
  w.change_contacts("c1", 3);
  w.sync_all(2);
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
  EXPECT_EQ(v.stats.messages, 3u);
  EXPECT_EQ(v.stats.messages_acknowledged, 3u);
  // c1-1 -> u2; c3-1 -> u1, u2 (not the sender u3); c2-1 -> u3.
  EXPECT_EQ(v.stats.deliveries_required, 4u);
  EXPECT_EQ(v.stats.client_finals, 4u);
}

TEST(MessagingChecker, RetriedSendStoredOncePasses) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::info_stored);  // stored, reply lost
  w.send("c1", peer(2), "c1-1", Fate::info_lost);
  const std::string id = w.send("c1", peer(2), "c1-1", Fate::ok);  // the server dedups
  EXPECT_EQ(id, "m1");
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
  EXPECT_EQ(v.stats.send_attempts, 3u);
  EXPECT_EQ(v.stats.messages, 1u);
}

TEST(MessagingChecker, UnknownAndFailedSendsMayOrMayNotBeDelivered) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::info_lost);       // never stored
  w.send("c1", peer(2), "c1-2", Fate::fail);            // never stored
  w.send("c1", peer(2), "c1-3", Fate::info_stored);     // stored and delivered
  w.send("c1", group(1), "c1-4", Fate::silent_stored);  // no completion at all
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
  EXPECT_EQ(v.stats.sends_fail, 1u);
  EXPECT_EQ(v.stats.sends_unknown, 3u);
}

TEST(MessagingChecker, GroupSenderMayHoldItsOwnMessage) {
  // A server that also stores a group message in the sender's inbox (for the
  // sender's other devices) is fine: the sender is an allowed holder.
  World w = small_world();
  w.send("c2", group(1), "c2-1", Fate::ok);
  MessageCopy own = w.inbox[3].begin()->second;
  own.recipient = 2;
  own.seq = ++w.last_seq[2];
  w.inbox[2][own.seq] = own;
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
}

TEST(MessagingChecker, VerdictDoesNotDependOnEventOrder) {
  World w = small_world();
  for (int i = 0; i < 10; ++i) {
    w.send("c1", i % 2 ? peer(2) : group(1), "c1-" + std::to_string(i), Fate::ok);
    w.sync("c2", 1);
  }
  w.sync_all();
  w.finish();
  History reversed(w.h.rbegin(), w.h.rend());
  const auto a = check(w.h);
  const auto b = check(reversed);
  EXPECT_TRUE(a.ok()) << format_verdict(a);
  EXPECT_TRUE(b.ok()) << format_verdict(b);
}

// --- each violation is caught and explained ---------------------------------------------------

TEST(MessagingChecker, LostGroupMessageIsReportedWithMessageRecipientAndContext) {
  World w;
  w.add_client("c3", 3);
  w.add_client("c9", 9);
  w.add_client("c10", 10);
  w.groups[2] = {3, 9, 10};
  w.next_message = 101;
  for (int i = 1; i <= 40; ++i) w.send("c10", peer(9), "c10-" + std::to_string(i), Fate::ok);
  w.sync_all();
  w.next_message = 17;
  w.t_ns = 12'342'000'000;  // the invoke, the members fact, then the ack at 12.345 s
  w.send("c3", group(2), "c3-42", Fate::ok);
  // The fan-out "forgets" u9 after acknowledging it.
  w.inbox[9].erase(w.inbox[9].rbegin()->first);
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::lost}));
  ASSERT_EQ(v.of(Check::lost).size(), 1u);
  const Violation& x = *v.of(Check::lost)[0];
  EXPECT_EQ(x.message_id, "m17");
  EXPECT_EQ(x.client_msg_id, "c3-42");
  EXPECT_EQ(x.sender, 3u);
  EXPECT_EQ(x.recipient, std::optional<UserId>(9));
  EXPECT_EQ(x.client, "c9");
  const std::string line = format_violation(x, v.context);
  EXPECT_TRUE(Contains(line,
                       "lost: message m17 (client id c3-42 from u3 to group g2, acknowledged at "
                       "12.345s) missing from recipient u9's synced state (client c9's final "
                       "state (recorded at "));
  EXPECT_TRUE(Contains(line, "holds seqs 1..40"));
  EXPECT_TRUE(Contains(line, "u9 must hold it: an intended recipient"));
  EXPECT_TRUE(line.ends_with("; seed 7")) << line;
  // u10 got it; the sender u3 is not required to.
  EXPECT_TRUE(Contains(format_verdict(v), "lost FAIL (1)"));
}

TEST(MessagingChecker, LostOneToOneMessageTheServerLost) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();                   // both devices of u2 got it...
  w.inbox[2].clear();             // ...then the server lost it
  w.clients["c2b"].held.clear();  // and one device lost it too
  w.finish();
  const auto v = check(w.h);
  EXPECT_FALSE(v.passed(Check::lost));
  const Violation* x = find(v, Check::lost, "missing");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_TRUE(Contains(x->text, "client c2b's final state"));
  EXPECT_TRUE(Contains(x->text, "the server's final inbox of u2"));
  // c2 still holds what the server lost: the states differ.
  EXPECT_FALSE(v.passed(Check::convergence));
  EXPECT_NE(find(v, Check::convergence, "server_lacks"), nullptr);
}

TEST(MessagingChecker, ADeliveredMessageOfAnUnknownSendMustStayDelivered) {
  World w = small_world();
  w.record_acks = false;  // the server never said it stored it
  w.send("c1", peer(3), "c1-1", Fate::info_stored);
  w.sync("c3");        // u3 received it
  w.inbox[3].clear();  // then it vanished everywhere
  w.clients["c3"].held.clear();
  w.finish();
  const auto v = check(w.h);
  const Violation* x = find(v, Check::lost, "missing");
  ASSERT_NE(x, nullptr) << format_verdict(v);
  EXPECT_EQ(x->recipient, std::optional<UserId>(3));
  EXPECT_TRUE(Contains(x->text, "send outcome unknown"));
  EXPECT_TRUE(Contains(x->text, "it was seen held for u3 in client c3's syncs"));
}

TEST(MessagingChecker, ARecipientWithoutFinalStateCannotBeConfirmed) {
  World w = small_world();
  w.send("c1", peer(4), "c1-1", Fate::ok);  // u4 has no client
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::lost}));
  const Violation* x = find(v, Check::lost, "no_client_final");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->recipient, std::optional<UserId>(4));
  EXPECT_EQ(x->message_id, "m1");
  CheckOptions relaxed;
  relaxed.require_client_final_for_recipients = false;
  EXPECT_TRUE(check_messaging(w.h, relaxed).ok());
}

TEST(MessagingChecker, MessageStoredTwiceForOneRecipientIsDuplicated) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  MessageCopy again = w.inbox[2].begin()->second;
  again.seq = ++w.last_seq[2];
  w.inbox[2][again.seq] = again;
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::duplicated}));
  const Violation* x = find(v, Check::duplicated, "held_twice");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_TRUE(Contains(format_violation(*x, v.context),
                       "duplicated: message m1 (client id c1-1 from u1 to u2, acknowledged at "));
  EXPECT_TRUE(Contains(x->text,
                       "is held 2 times by recipient u2: at seqs 1 and 2 in the "
                       "server's final inbox of u2"));
  EXPECT_TRUE(Contains(x->text, "received by client c2 at seq 1 (sync at"));
  EXPECT_TRUE(format_violation(*x, v.context).ends_with("; seed 7"));
}

TEST(MessagingChecker, RetryStoredAsASecondMessageIsDuplicated) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::info_stored);  // stored as m1
  w.stored.clear();                                  // a server that forgot its dedup table
  w.send("c1", peer(2), "c1-1", Fate::ok);           // stored again as m2
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::duplicated}));
  const Violation* ids = find(v, Check::duplicated, "two_message_ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->client_msg_id, "c1-1");
  EXPECT_TRUE(Contains(ids->text, "was stored as 2 messages: m1 "));
  EXPECT_TRUE(Contains(ids->text, "m2 (first in the ack"));
  const Violation* acked = find(v, Check::duplicated, "acknowledged_twice");
  ASSERT_NE(acked, nullptr);
  EXPECT_TRUE(Contains(acked->text, "was acknowledged for recipient u2 at seq 1"));
  const Violation* held = find(v, Check::duplicated, "held_twice");
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->recipient, std::optional<UserId>(2));
}

TEST(MessagingChecker, SeqsReceivedOutOfOrderAreReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.send("c3", peer(2), "c3-1", Fate::ok);
  w.sync_all();
  w.finish();
  // Swap the two messages in c2's sync response.
  for (auto& e : w.h) {
    auto* c = std::get_if<Completion>(&e.body);
    if (e.process != "c2" || c == nullptr || c->op != OpKind::sync) continue;
    auto& ms = std::get<SyncResult>(*c->result).messages;
    if (ms.size() == 2) std::swap(ms[0], ms[1]);
  }
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::order}));
  const Violation* x = find(v, Check::order, "not_increasing");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_EQ(x->client, "c2");
  EXPECT_TRUE(Contains(format_violation(*x, v.context),
                       "order: client c2 (u2) received message m1 (client id c1-1 from u1 to u2, "
                       "acknowledged at "));
  EXPECT_TRUE(Contains(x->text, "at seq 1 in the sync completed at"));
  EXPECT_TRUE(Contains(x->text, "after seq 2 (message m2"));
}

TEST(MessagingChecker, SeqDisagreeingWithTheAckIsReported) {
  World w = small_world();
  w.send("c1", peer(3), "c1-1", Fate::ok);
  // The server acknowledged seq 1 but stored (and serves) it at seq 5.
  MessageCopy m = w.inbox[3].at(1);
  w.inbox[3].clear();
  m.seq = 5;
  w.inbox[3][5] = m;
  w.last_seq[3] = 5;
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::order}));
  const Violation* x = find(v, Check::order, "seq_mismatch");
  ASSERT_NE(x, nullptr) << format_verdict(v);
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_EQ(x->recipient, std::optional<UserId>(3));
  EXPECT_TRUE(Contains(x->text, "was acknowledged at seq 1"));
  EXPECT_TRUE(Contains(x->text, "at seq 5 in the server's final inbox of u3"));
}

TEST(MessagingChecker, ASeqGivenToTwoMessagesIsReported) {
  World w = small_world();
  w.send("c1", peer(3), "c1-1", Fate::ok);
  w.last_seq[3] = 0;  // seqsvr restarted and reused seq 1
  w.send("c2", peer(3), "c2-1", Fate::ok);
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  const Violation* x = find(v, Check::order, "seq_reused");
  ASSERT_NE(x, nullptr) << format_verdict(v);
  EXPECT_EQ(x->recipient, std::optional<UserId>(3));
  EXPECT_TRUE(Contains(x->text,
                       "seq 1 of u3 names 2 different messages: m1 (client id c1-1 "
                       "from u1) in the ack at"));
  EXPECT_TRUE(Contains(x->text, "m2 (client id c2-1 from u2)"));
  // The overwritten message is lost.
  EXPECT_FALSE(v.passed(Check::lost));
}

TEST(MessagingChecker, SyncKeyGoingBackwardsIsReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();
  w.sync("c2");
  // The last sync of c2 returned an older key.
  for (auto it = w.h.rbegin(); it != w.h.rend(); ++it) {
    auto* c = std::get_if<Completion>(&it->body);
    if (it->process == "c2" && c != nullptr && c->op == OpKind::sync) {
      std::get<SyncResult>(*c->result).key["messages"] = 0;
      break;
    }
  }
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::order}));
  const Violation* x = find(v, Check::order, "key_regressed");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->client, "c2");
  EXPECT_TRUE(Contains(x->text, "(messages 1 -> 0)"));
}

TEST(MessagingChecker, ClientStateDifferingFromServerIsReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();
  w.send("c3", peer(2), "c3-1", Fate::ok);
  w.sync("c2");  // c2b never syncs again: behind the server
  w.finish();
  const auto v = check(w.h);
  EXPECT_FALSE(v.passed(Check::convergence));
  const Violation* x = find(v, Check::convergence, "client_lacks");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->client, "c2b");
  EXPECT_EQ(x->message_id, "m2");
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_TRUE(Contains(x->text, "client c2b's final state of u2 lacks seq 2 = message m2"));
  const Violation* key = find(v, Check::convergence, "key_differs");
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(Contains(key->text,
                       "client c2b's sync key {contacts: 0, messages: 1} differs from "
                       "the server's versions {contacts: 0, messages: 2} for u2"));
  EXPECT_FALSE(v.passed(Check::lost));  // and u2's device c2b lacks an acknowledged message
}

TEST(MessagingChecker, OnlyTheKeyDiffering) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();
  w.change_contacts("c2", 1);  // the server's contacts version moves, nobody syncs
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::convergence}));
  EXPECT_EQ(v.of(Check::convergence).size(), 2u);  // c2 and c2b
  EXPECT_EQ(v.of(Check::convergence)[0]->kind, "key_differs");
}

// --- the other synced types: contacts and profile ----------------------------------------

// Every final state (server and client) gets contacts {2, 3} and a profile;
// then `spoil` changes some of them.
void with_synced_types(History& h, const std::function<void(const std::string& process, ClientFinal&)>& spoil,
                       bool server_records = true) {
  for (Event& e : h) {
    if (auto* s = std::get_if<ServerFinal>(&e.body); s != nullptr && server_records) {
      s->contacts = std::vector<UserId>{3, 2};  // any order
      s->profile = ProfileFields{{"nickname", "n" + std::to_string(s->user)}, {"region", "sh"}};
    } else if (auto* c = std::get_if<ClientFinal>(&e.body)) {
      c->contacts = std::vector<UserId>{2, 3};
      c->profile = ProfileFields{{"nickname", "n" + std::to_string(c->user)}, {"region", "sh"}};
      spoil(e.process, *c);
    }
  }
}

TEST(MessagingChecker, SyncedContactsAndProfileEqualToTheServerPass) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();
  w.finish();
  with_synced_types(w.h, [](const std::string&, ClientFinal&) {});
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
}

TEST(MessagingChecker, ContactsDifferingFromServerAreReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.sync_all();
  w.finish();
  // Device c2b missed the add of u3 and still holds u4, removed on the server.
  with_synced_types(w.h, [](const std::string& p, ClientFinal& c) {
    if (p == "c2b") c.contacts = std::vector<UserId>{2, 4};
  });
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::convergence})) << format_verdict(v);
  ASSERT_EQ(v.of(Check::convergence).size(), 1u);
  const Violation* x = find(v, Check::convergence, "contacts_differ");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->client, "c2b");
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_TRUE(Contains(x->text, "client c2b's final state of u2 has contacts the server does not (u4) "
                                "and lacks contacts the server has (u3)"));
}

TEST(MessagingChecker, ProfileDifferingFromServerIsReported) {
  World w = small_world();
  w.sync_all();
  w.finish();
  with_synced_types(w.h, [](const std::string& p, ClientFinal& c) {
    if (p == "c3") (*c.profile)["nickname"] = "stale";
  });
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::convergence})) << format_verdict(v);
  const Violation* x = find(v, Check::convergence, "profile_differs");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->client, "c3");
  EXPECT_TRUE(Contains(x->text, "holds profile {nickname=\"stale\", region=\"sh\"} but the server's is "
                                "{nickname=\"n3\", region=\"sh\"}"));
}

TEST(MessagingChecker, SyncedTypesRecordedOnOneSideOnlyAreReported) {
  // Clients list contacts and profiles, the server's final states do not.
  World w = small_world();
  w.sync_all();
  w.finish();
  with_synced_types(w.h, [](const std::string&, ClientFinal&) {}, false);
  auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::convergence})) << format_verdict(v);
  EXPECT_NE(find(v, Check::convergence, "contacts_unrecorded"), nullptr);
  EXPECT_NE(find(v, Check::convergence, "profile_unrecorded"), nullptr);
  // The server lists them, a client that syncs contacts (its key has the
  // type) does not: it cannot be confirmed either.
  World w2 = small_world();
  w2.change_contacts("c1", 2);
  w2.sync_all();
  w2.finish();
  with_synced_types(w2.h, [](const std::string& p, ClientFinal& c) {
    if (p == "c1") c.contacts.reset();
  });
  v = check(w2.h);
  EXPECT_TRUE(FailsExactly(v, {Check::convergence})) << format_verdict(v);
  ASSERT_EQ(v.of(Check::convergence).size(), 1u);
  EXPECT_EQ(v.of(Check::convergence)[0]->kind, "contacts_unrecorded");
}

TEST(MessagingHistoryJson, FinalStatesWithContactsAndProfileRoundTrip) {
  History h;
  h.push_back({1, "reader", ServerFinal{9, {}, {{"account", 2}, {"contacts", 3}, {"messages", 0}},
                                        std::vector<UserId>{4, 5}, ProfileFields{{"nickname", "Ann"}}}});
  h.push_back({2, "c9", ClientFinal{9, {}, {{"account", 2}, {"contacts", 3}, {"messages", 0}},
                                    std::vector<UserId>{}, ProfileFields{}}});
  std::ostringstream out;
  write_history_jsonl(out, h);
  const ReadResult r = parse_history_jsonl(out.str());
  ASSERT_TRUE(r.ok()) << format_parse_error(r.errors.at(0));
  EXPECT_EQ(r.history, h);
  EXPECT_EQ(encode_event(h[1]),
            R"({"t_ns":2,"process":"c9","event":"client_final","user":9,"messages":[],)"
            R"("key":{"account":2,"contacts":3,"messages":0},"contacts":[],"profile":{}})");
  // Strict like the rest: wrong types are named by field.
  const ReadResult bad = parse_history_jsonl(
      R"({"t_ns":2,"process":"c9","event":"client_final","user":9,"messages":[],"key":{},"profile":{"nickname":7}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(format_parse_error(bad.errors.at(0)), "profile.nickname"));
}

TEST(MessagingChecker, MessageToANonMemberIsMisdelivered) {
  World w = small_world();
  w.add_client("c4", 4);
  w.send("c1", group(1), "c1-1", Fate::ok);
  MessageCopy stray = w.inbox[2].begin()->second;
  stray.recipient = 4;
  stray.seq = ++w.last_seq[4];
  w.inbox[4][stray.seq] = stray;
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::origin}));
  const Violation* x = find(v, Check::origin, "misdelivered");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->recipient, std::optional<UserId>(4));
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_TRUE(Contains(x->text,
                       "who is neither a recipient (members of group g1 at send time: "
                       "u1, u2, u3) nor the sender"));
}

TEST(MessagingChecker, MessageNobodySentIsReported) {
  World w = small_world();
  w.store(3, peer(1), "c3-99", body_hash("forged"));  // no client send recorded
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::origin}));
  const Violation* x = find(v, Check::origin, "no_send");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->client_msg_id, "c3-99");
  EXPECT_TRUE(Contains(x->text, "no send with client message id c3-99 from u3 was recorded"));
}

TEST(MessagingChecker, AlteredBodyIsReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok, "hello");
  w.inbox[2].begin()->second.body_hash = body_hash("hellO");
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::origin}));
  const Violation* x = find(v, Check::origin, "altered");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->recipient, std::optional<UserId>(2));
  EXPECT_TRUE(Contains(x->text, "with body hash"));
}

TEST(MessagingChecker, OneMessageIdForTwoMessagesIsReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.next_message = 1;  // the id generator restarted
  w.send("c3", peer(2), "c3-1", Fate::ok);
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(FailsExactly(v, {Check::origin}));
  const Violation* x = find(v, Check::origin, "id_conflict");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->message_id, "m1");
  EXPECT_TRUE(Contains(x->text, "message id m1 names 2 different messages"));
}

TEST(MessagingChecker, InconsistentHistoriesAreReported) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.send("c1", peer(3), "c1-1", Fate::info_lost);  // client message id reused
  w.record_members = false;
  w.send("c1", group(1), "c1-2", Fate::ok);  // acknowledged, no membership fact
  w.emit("c9", Completion{77, OpKind::login, Outcome::ok, Result{LoginResult{}}, ""});
  w.sync_all();
  w.finish();
  const auto v = check(w.h);
  EXPECT_FALSE(v.passed(Check::history));
  EXPECT_NE(find(v, Check::history, "client_msg_id_reused"), nullptr);
  EXPECT_NE(find(v, Check::history, "no_members"), nullptr);
  const Violation* orphan = find(v, Check::history, "completion_without_invoke");
  ASSERT_NE(orphan, nullptr);
  EXPECT_TRUE(Contains(orphan->text, "the login ok of process c9 op_id 77"));
}

TEST(MessagingChecker, ReportListsChecksStatsAndEvents) {
  World w = small_world();
  w.send("c1", peer(2), "c1-1", Fate::ok);
  w.inbox[2].clear();
  w.sync_all();
  w.finish();
  const std::string report = format_verdict(check(w.h, "seed 42"));
  EXPECT_TRUE(Contains(report, "messaging check: FAILED, 1 violation (seed 42)"));
  EXPECT_TRUE(Contains(report,
                       "checks: history pass, lost FAIL (1), duplicated pass, order "
                       "pass, convergence pass, origin pass"));
  EXPECT_TRUE(Contains(report, "1 send attempts (1 ok, 0 fail, 0 unknown)"));
  EXPECT_TRUE(Contains(report, "    events: #"));
  EXPECT_TRUE(Contains(report, "ack by server at 1.002s"));
  EXPECT_TRUE(Contains(report, "client c2's final state (recorded at 1.016s) holds nothing"));
  EXPECT_TRUE(Contains(report, "client_final of u2 by c2b at "));
}

// --- JSON lines ------------------------------------------------------------------------------

History every_kind_of_event() {
  History h;
  const Conversation g{ConversationKind::group, 7};
  const MessageCopy copy{9, 41, "m17", 3, "c3-42", g, 0xfedcba9876543210ULL};
  MessageCopy no_hash = copy;
  no_hash.body_hash.reset();
  h.push_back({-5, "c3", Invoke{1, SendRequest{3, g, "c3-42", body_hash("hi")}}});
  h.push_back({1, "c3", Invoke{2, SendRequest{3, peer(9), "c3-43", std::nullopt}}});
  h.push_back({2, "c3", Completion{1, OpKind::send, Outcome::ok, Result{SendResult{"m17"}}, ""}});
  h.push_back({3, "c3", Completion{2, OpKind::send, Outcome::info, std::nullopt, "timeout"}});
  h.push_back({4, "c3", Completion{3, OpKind::send, Outcome::fail, std::nullopt, ""}});
  h.push_back({5, "c9", Invoke{4, SyncRequest{9, {{"messages", 40}, {"contacts", 2}}}}});
  h.push_back(
      {6, "c9",
       Completion{4, OpKind::sync, Outcome::ok,
                  Result{SyncResult{{{"messages", 41}, {"contacts", 2}}, {copy, no_hash}}}, ""}});
  h.push_back({7, "c9", Invoke{5, SyncRequest{9, {}}}});
  h.push_back({8, "c9", Completion{5, OpKind::sync, Outcome::ok, Result{SyncResult{}}, ""}});
  h.push_back({9, "c9", Invoke{6, LoginRequest{9, "phone \"1\" \xc3\xa9"}}});
  h.push_back({10, "c9", Invoke{7, LoginRequest{9, ""}}});
  h.push_back({11, "c9", Completion{6, OpKind::login, Outcome::ok, Result{LoginResult{}}, ""}});
  h.push_back({12, "c9", Invoke{8, ContactsRequest{9, "add", 3}}});
  h.push_back({13, "c9", Invoke{9, ContactsRequest{9, "list", std::nullopt}}});
  h.push_back({14, "c9",
               Completion{8, OpKind::contacts, Outcome::ok,
                          Result{ContactsResult{3, true, std::nullopt}}, ""}});
  h.push_back(
      {15, "c9",
       Completion{9, OpKind::contacts, Outcome::ok,
                  Result{ContactsResult{std::nullopt, std::nullopt, std::vector<UserId>{3, 4}}},
                  ""}});
  h.push_back({16, "c9",
               Completion{10, OpKind::contacts, Outcome::ok,
                          Result{ContactsResult{0, false, std::vector<UserId>{}}}, ""}});
  h.push_back({17, "r1", Invoke{11, RegisterRequest{"wxid_alice", 0xffffffffffffffffULL}}});
  h.push_back({18, "r1", Invoke{12, RegisterRequest{"wxid_bob", std::nullopt}}});
  h.push_back(
      {19, "r1",
       Completion{11, OpKind::register_account, Outcome::ok, Result{RegisterResult{1}}, ""}});
  h.push_back(
      {20, "r1", Completion{12, OpKind::register_account, Outcome::fail, std::nullopt, "taken"}});
  h.push_back({21, "send-1", SendAck{"m17", 3, "c3-42", g, {{9, 41}, {10, 3}}}});
  h.push_back({22, "send-1", SendAck{"m17", 3, "c3-42", g, {}}});
  h.push_back({23, "fanout", GroupMembers{7, 3, "c3-42", "m17", {3, 9, 10}}});
  h.push_back({24, "fanout", GroupMembers{7, 3, "c3-44", "", {}}});
  h.push_back({25, "recorder", ServerFinal{9, {copy}, {{"messages", 41}}, std::nullopt, std::nullopt}});
  h.push_back({26, "recorder", ServerFinal{10, {}, {}, std::nullopt, std::nullopt}});
  h.push_back({INT64_MAX, "c9", ClientFinal{9, {copy}, {{"messages", 41}, {"contacts", 2}}, std::nullopt, std::nullopt}});
  return h;
}

TEST(MessagingHistoryJson, RoundTripsEveryKindOfEvent) {
  const History h = every_kind_of_event();
  std::ostringstream out;
  write_history_jsonl(out, h);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(h.size()));
  const ReadResult r = parse_history_jsonl(text);
  ASSERT_TRUE(r.ok()) << format_parse_error(r.errors.at(0));
  EXPECT_EQ(r.history, h);
  ASSERT_EQ(r.event_lines.size(), h.size());
  EXPECT_EQ(r.event_lines.back(), h.size());
  // Deterministic bytes, fields in a fixed order.
  std::ostringstream again;
  write_history_jsonl(again, r.history);
  EXPECT_EQ(again.str(), text);
  EXPECT_EQ(encode_event(h[2]),
            R"({"t_ns":2,"process":"c3","event":"ok","op":"send","op_id":1,"message_id":"m17"})");
}

TEST(MessagingHistoryJson, RoundTripsThroughAFileAndChecksTheSame) {
  World w = small_world();
  w.send("c1", group(1), "c1-1", Fate::ok);
  w.send("c2", peer(3), "c2-1", Fate::info_stored);
  w.inbox[3].clear();  // make it fail: the verdicts must be equal
  w.sync_all();
  w.finish();
  const auto path = std::filesystem::temp_directory_path() /
                    ("wx_messaging_history_" + std::to_string(::getpid()) + ".jsonl");
  write_history_file(path.string(), w.h);
  const ReadResult r = read_history_file(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << format_parse_error(r.errors.at(0));
  EXPECT_EQ(r.history, w.h);
  EXPECT_EQ(format_verdict(check(r.history)), format_verdict(check(w.h)));
  EXPECT_FALSE(check(r.history).ok());
}

TEST(MessagingHistoryJson, AcceptsCrLfBlankLinesAndAnyFieldOrder) {
  const std::string text =
      "\r\n"
      R"({"op_id":1,"user":2,"key":{},"op":"sync","event":"invoke","process":"c2","t_ns":5})"
      "\r\n   \n"
      R"({"t_ns":6,"process":"c2","event":"info","op":"sync","op_id":1})";
  const ReadResult r = parse_history_jsonl(text);
  ASSERT_TRUE(r.ok()) << format_parse_error(r.errors.at(0));
  ASSERT_EQ(r.history.size(), 2u);
  EXPECT_EQ(r.event_lines, (std::vector<size_t>{2, 4}));
  EXPECT_EQ(std::get<Invoke>(r.history[0].body).request, (Request{SyncRequest{2, {}}}));
}

struct BadInput {
  std::string name;
  std::string text;
  size_t line;
  std::string field;    // expected field path ("" = the line as a whole)
  std::string message;  // a substring of the message
};

const std::string kGood =
    R"({"t_ns":1,"process":"c1","event":"invoke","op":"send","op_id":1,"user":1,)"
    R"("to":{"kind":"user","id":2},"client_msg_id":"c1-1"})";

std::string sync_ok_with(const std::string& copy) {
  return R"({"t_ns":2,"process":"c2","event":"ok","op":"sync","op_id":1,"key":{"messages":1},)"
         R"("messages":[)" +
         copy + "]}";
}
const std::string kCopy =
    R"({"recipient":2,"seq":1,"message_id":"m1","sender":1,"client_msg_id":"c1-1",)"
    R"("to":{"kind":"user","id":2}})";

std::vector<BadInput> bad_inputs() {
  std::string copy_neg = kCopy;
  copy_neg.replace(copy_neg.find("\"seq\":1"), 7, "\"seq\":-1");
  std::string copy_no_to = kCopy.substr(0, kCopy.find(",\"to\"")) + "}";
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      {"empty file", "", 1, "", "the history is empty"},
      {"blank lines only", "\n  \n\r\n", 3, "", "the history is empty"},
      {"truncated JSON", kGood + "\n" + kGood.substr(0, 30), 2, "", "not valid JSON"},
      {"not JSON at all", "hello world", 1, "", "not valid JSON"},
      {"two values", kGood + " 5", 1, "", "not valid JSON"},
      {"binary bytes", std::string("\x00\xff\xfe\x01garbage", 11), 1, "", "not valid JSON"},
      {"invalid UTF-8 in a string",
       R"({"t_ns":1,"process":")" + std::string("\xff\xfe") + R"(","event":"ack"})", 1, "",
       "not valid JSON"},
      {"an array, not an object", "[1,2,3]", 1, "", "expected an object, got an array"},
      {"deep nesting", deep, 1, "", "nested deeper than"},
      {"missing event", R"({"t_ns":1,"process":"c1"})", 1, "event", "missing"},
      {"missing process", R"({"t_ns":1,"event":"info","op":"send","op_id":1})", 1, "process",
       "missing"},
      {"empty process", R"({"t_ns":1,"process":"","event":"info","op":"send","op_id":1})", 1,
       "process", "must not be empty"},
      {"time as a string", R"({"t_ns":"5","process":"c","event":"info","op":"send","op_id":1})", 1,
       "t_ns", "expected an integer, got a string"},
      {"time too large",
       R"({"t_ns":99999999999999999999,"process":"c","event":"info","op":"send","op_id":1})", 1,
       "t_ns", "expected an integer"},
      {"time above int64",
       R"({"t_ns":18446744073709551615,"process":"c","event":"info","op":"send","op_id":1})", 1,
       "t_ns", "out of range"},
      {"fractional op id", R"({"t_ns":1,"process":"c","event":"info","op":"send","op_id":1.5})", 1,
       "op_id", "expected an unsigned integer"},
      {"negative seq in a copy", sync_ok_with(copy_neg), 1, "messages[0].seq",
       "expected an unsigned integer, got a negative integer"},
      {"copy without a conversation", sync_ok_with(copy_no_to), 1, "messages[0].to", "missing"},
      {"copy is a number", sync_ok_with("5"), 1, "messages[0]", "expected an object"},
      {"bad conversation kind",
       R"({"t_ns":1,"process":"c1","event":"invoke","op":"send","op_id":1,"user":1,)"
       R"("to":{"kind":"channel","id":2},"client_msg_id":"c1-1"})",
       1, "to.kind", "expected \"user\" or \"group\""},
      {"user as a boolean",
       R"({"t_ns":1,"process":"c1","event":"invoke","op":"sync","op_id":1,"user":true,"key":{}})",
       1, "user", "got a boolean"},
      {"key version as a string",
       R"({"t_ns":1,"process":"c1","event":"invoke","op":"sync","op_id":1,"user":1,)"
       R"("key":{"messages":"3"}})",
       1, "key.messages", "expected an unsigned integer, got a string"},
      {"unknown event kind", R"({"t_ns":1,"process":"c1","event":"launch"})", 1, "event",
       "unknown event kind \"launch\""},
      {"unknown op", R"({"t_ns":1,"process":"c1","event":"invoke","op":"fly","op_id":1})", 1, "op",
       "unknown operation \"fly\""},
      {"unknown field", kGood.substr(0, kGood.size() - 1) + R"(,"sedner":3})", 1, "sedner",
       "unknown field"},
      {"result fields on a failure",
       R"({"t_ns":1,"process":"c","event":"fail","op":"send","op_id":1,"message_id":"m1"})", 1,
       "message_id", "unknown field"},
      {"ok send without message id",
       R"({"t_ns":1,"process":"c","event":"ok","op":"send","op_id":1})", 1, "message_id",
       "missing"},
      {"ack recipients not an array",
       R"({"t_ns":1,"process":"s","event":"ack","message_id":"m1","sender":1,)"
       R"("client_msg_id":"c","to":{"kind":"user","id":2},"recipients":{"user":2}})",
       1, "recipients", "expected an array"},
      {"ack recipient missing seq",
       R"({"t_ns":1,"process":"s","event":"ack","message_id":"m1","sender":1,)"
       R"("client_msg_id":"c","to":{"kind":"user","id":2},"recipients":[{"user":2}]})",
       1, "recipients[0].seq", "missing"},
      {"member not a number",
       R"({"t_ns":1,"process":"s","event":"group_members","group":1,"sender":1,)"
       R"("client_msg_id":"c","members":[1,"u2"]})",
       1, "members[1]", "got a string"},
      {"bad line among good ones", kGood + "\n" + kGood + "\n{\"t_ns\":1}\n" + kGood, 3, "event",
       "missing"},
  };
}

TEST(MessagingHistoryJson, MalformedInputNamesTheLineAndField) {
  for (const BadInput& bad : bad_inputs()) {
    SCOPED_TRACE(bad.name);
    const ReadResult r = parse_history_jsonl(bad.text);
    ASSERT_FALSE(r.ok());
    ASSERT_FALSE(r.errors.empty());
    const ParseError& e = r.errors.front();
    EXPECT_EQ(e.line, bad.line) << format_parse_error(e);
    EXPECT_EQ(e.field, bad.field) << format_parse_error(e);
    EXPECT_TRUE(Contains(e.message, bad.message));
    const std::string text = format_parse_error(e);
    EXPECT_TRUE(text.starts_with("line " + std::to_string(bad.line) + ": ")) << text;
    if (!bad.field.empty()) {
      EXPECT_TRUE(Contains(text, "field \"" + bad.field + "\": "));
    }
    // Printable, bounded messages even for binary input.
    for (char c : text) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << text;
    EXPECT_LT(text.size(), 400u);
  }
}

TEST(MessagingHistoryJson, ErrorsAreCountedAndCapped) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "oops\n" + kGood + "\n";
  const ReadResult r = parse_history_jsonl(text, 5);
  EXPECT_EQ(r.errors_total, 50u);
  ASSERT_EQ(r.errors.size(), 5u);
  EXPECT_EQ(r.errors[4].line, 9u);
  EXPECT_EQ(r.history.size(), 50u);  // the good lines are still read
}

TEST(MessagingHistoryJson, UnreadableFileIsAnError) {
  const ReadResult r = read_history_file("/nonexistent/dir/history.jsonl");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors.at(0).line, 0u);
  EXPECT_TRUE(Contains(format_parse_error(r.errors.at(0)), "cannot open /nonexistent/dir"));
}

TEST(MessagingHistoryJson, WritingRejectsWhatCouldNotBeReadBack) {
  Event bad_utf8{1, "c1", Invoke{1, LoginRequest{1, std::string("\xff")}}};
  EXPECT_THROW(encode_event(bad_utf8), std::invalid_argument);
  Event no_process{1, "", Invoke{1, LoginRequest{1, ""}}};
  EXPECT_THROW(encode_event(no_process), std::invalid_argument);
  Event ok_without_result{1, "c1", Completion{1, OpKind::send, Outcome::ok, std::nullopt, ""}};
  EXPECT_THROW(encode_event(ok_without_result), std::invalid_argument);
  Event wrong_result{1, "c1",
                     Completion{1, OpKind::sync, Outcome::ok, Result{SendResult{"m1"}}, ""}};
  EXPECT_THROW(encode_event(wrong_result), std::invalid_argument);
  std::ostringstream out;
  try {
    write_history_jsonl(out, History{every_kind_of_event()[0], bad_utf8});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(Contains(e.what(), "event #1 (invoke)"));
  }
}

// Random bytes and randomly damaged good lines: the reader answers with
// events or errors naming a line, and never crashes.
TEST(MessagingHistoryJson, GarbageNeverCrashesTheReader) {
  std::ostringstream good_text;
  write_history_jsonl(good_text, every_kind_of_event());
  const std::string good = good_text.str();
  Rng rng(12345);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    if (round % 3 == 0) {
      const size_t n = rng.uniform(300);
      for (size_t i = 0; i < n; ++i) text += static_cast<char>(rng.uniform(256));
    } else {
      text = good;
      const size_t edits = 1 + rng.uniform(4);
      for (size_t i = 0; i < edits && !text.empty(); ++i) {
        const size_t at = rng.uniform(text.size());
        switch (rng.uniform(3)) {
          case 0:
            text[at] = static_cast<char>(rng.uniform(256));
            break;
          case 1:
            text.erase(at, 1 + rng.uniform(8));
            break;
          default:
            text.insert(at, 1, "{}[]\",:0-e\\"[rng.uniform(11)]);
            break;
        }
      }
    }
    const ReadResult r = parse_history_jsonl(text);
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const ParseError& e : r.errors) {
      EXPECT_GE(e.line, 1u);
      EXPECT_LE(e.line, lines);
    }
    EXPECT_EQ(r.history.size(), r.event_lines.size());
    // Whatever was read is a history the checker can judge without crashing.
    (void)check_messaging(r.history);
  }
}

// --- randomized: a seeded model, then one mutation -------------------------------------------

World random_world(uint64_t seed) {
  Rng rng(seed);
  World w;
  const UserId users = 3 + rng.uniform(6);
  for (UserId u = 1; u <= users; ++u) {
    w.add_client("c" + std::to_string(u), u);
    if (rng.bernoulli(0.3)) w.add_client("c" + std::to_string(u) + "b", u);
  }
  const size_t groups = 1 + rng.uniform(3);
  for (GroupId g = 1; g <= groups; ++g) {
    std::vector<UserId> members;
    for (UserId u = 1; u <= users; ++u) {
      if (rng.bernoulli(0.5)) members.push_back(u);
    }
    while (members.size() < 2) {
      const UserId u = 1 + rng.uniform(users);
      if (std::find(members.begin(), members.end(), u) == members.end()) members.push_back(u);
    }
    std::sort(members.begin(), members.end());
    w.groups[g] = members;
  }
  w.record_acks = true;
  std::vector<std::string> processes;
  for (const auto& [p, c] : w.clients) processes.push_back(p);
  struct Pending {
    std::string process;
    Conversation to;
    std::string cmid;
  };
  std::vector<Pending> unknown;
  std::map<UserId, uint64_t> cmids;
  const size_t steps = 20 + rng.uniform(80);
  for (size_t step = 0; step < steps; ++step) {
    const uint64_t r = rng.uniform(100);
    const std::string& p = processes[rng.uniform(processes.size())];
    const UserId u = w.clients.at(p).user;
    if (r < 45) {
      Conversation to = peer(1 + rng.uniform(users));
      std::vector<GroupId> mine;
      for (const auto& [g, ms] : w.groups) {
        if (std::find(ms.begin(), ms.end(), u) != ms.end()) mine.push_back(g);
      }
      if (!mine.empty() && rng.bernoulli(0.35)) to = group(mine[rng.uniform(mine.size())]);
      if (to.kind == ConversationKind::user && to.id == u) to.id = u % users + 1;
      const std::string cmid = "c" + std::to_string(u) + "-" + std::to_string(++cmids[u]);
      const uint64_t f = rng.uniform(100);
      const Fate fate = f < 60   ? Fate::ok
                        : f < 70 ? Fate::info_stored
                        : f < 80 ? Fate::info_lost
                        : f < 90 ? Fate::fail
                                 : Fate::silent_stored;
      w.record_acks = rng.bernoulli(0.9);
      w.send(p, to, cmid, fate, "body " + cmid, rng.bernoulli(0.2) ? rng.uniform(4) : 0);
      w.record_acks = true;
      if (fate != Fate::ok) unknown.push_back(Pending{p, to, cmid});
    } else if (r < 55 && !unknown.empty()) {
      const Pending& pd = unknown[rng.uniform(unknown.size())];
      w.send(pd.process, pd.to, pd.cmid, rng.bernoulli(0.7) ? Fate::ok : Fate::info_lost,
             "body " + pd.cmid);
    } else if (r < 95) {
      w.sync(p, 1 + rng.uniform(4), rng.bernoulli(0.1));
    } else {
      w.change_contacts(p, 1 + rng.uniform(users));
    }
  }
  w.sync_all(1 + rng.uniform(5));
  w.finish();
  // Any order of events: Fisher-Yates with the seeded stream.
  for (size_t i = w.h.size(); i > 1; --i) std::swap(w.h[i - 1], w.h[rng.uniform(i)]);
  return w;
}

std::string rerun(uint64_t seed, const char* test) {
  return testing::rerun_hint(seed, "build/tests/checkers/messaging_checker_test",
                             std::string("MessagingCheckerRandom.") + test);
}

TEST(MessagingCheckerRandom, GeneratedHistoriesPass) {
  const auto seeds = testing::seed_range(300);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    const World w = random_world(seed);
    const auto v = check(w.h, "seed " + std::to_string(seed));
    ASSERT_TRUE(v.ok()) << format_verdict(v) << rerun(seed, "GeneratedHistoriesPass");
    ASSERT_GT(v.stats.deliveries_required, 0u) << rerun(seed, "GeneratedHistoriesPass");
  }
}

TEST(MessagingCheckerRandom, DroppedDeliveryIsLost) {
  const auto seeds = testing::seed_range(300);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    World w = random_world(seed);
    Rng rng(seed ^ 0xd00d);
    std::vector<size_t> finals;
    for (size_t i = 0; i < w.h.size(); ++i) {
      const auto* c = std::get_if<ClientFinal>(&w.h[i].body);
      if (c != nullptr && !c->messages.empty()) finals.push_back(i);
    }
    if (finals.empty()) continue;
    Event& e = w.h[finals[rng.uniform(finals.size())]];
    auto& ms = std::get<ClientFinal>(e.body).messages;
    const size_t k = rng.uniform(ms.size());
    const MessageCopy dropped = ms[k];
    ms.erase(ms.begin() + static_cast<long>(k));
    const auto v = check(w.h, "seed " + std::to_string(seed));
    const std::string why = format_verdict(v) + rerun(seed, "DroppedDeliveryIsLost");
    ASSERT_FALSE(v.passed(Check::lost)) << why;
    EXPECT_TRUE(v.passed(Check::history) && v.passed(Check::duplicated) && v.passed(Check::order) &&
                v.passed(Check::origin))
        << why;
    bool named = false;
    for (const Violation* x : v.of(Check::lost)) {
      named |= x->message_id == dropped.message_id && x->recipient == dropped.recipient &&
               x->client == e.process;
    }
    EXPECT_TRUE(named) << "dropped " << dropped.message_id << " of u" << dropped.recipient
                       << " from " << e.process << "\n"
                       << why;
  }
}

TEST(MessagingCheckerRandom, DuplicatedDeliveryIsDuplicated) {
  const auto seeds = testing::seed_range(300);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    World w = random_world(seed);
    Rng rng(seed ^ 0xd0b1e);
    std::vector<size_t> servers;
    for (size_t i = 0; i < w.h.size(); ++i) {
      const auto* s = std::get_if<ServerFinal>(&w.h[i].body);
      if (s != nullptr && !s->inbox.empty()) servers.push_back(i);
    }
    if (servers.empty()) continue;
    auto& s = std::get<ServerFinal>(w.h[servers[rng.uniform(servers.size())]].body);
    MessageCopy twice = s.inbox[rng.uniform(s.inbox.size())];
    Seq seq_max = 0;
    for (const auto& m : s.inbox) seq_max = std::max(seq_max, m.seq);
    twice.seq = seq_max + 1 + rng.uniform(3);
    // Stored again at a new seq, and every device of the user synced it.
    s.inbox.push_back(twice);
    s.versions["messages"] = twice.seq;
    for (auto& e : w.h) {
      auto* c = std::get_if<ClientFinal>(&e.body);
      if (c == nullptr || c->user != s.user) continue;
      c->messages.push_back(twice);
      c->key["messages"] = twice.seq;
    }
    const auto v = check(w.h, "seed " + std::to_string(seed));
    const std::string why = format_verdict(v) + rerun(seed, "DuplicatedDeliveryIsDuplicated");
    ASSERT_TRUE(FailsExactly(v, {Check::duplicated}))
        << rerun(seed, "DuplicatedDeliveryIsDuplicated");
    bool named = false;
    for (const Violation* x : v.of(Check::duplicated)) {
      named |= x->message_id == twice.message_id && x->recipient == s.user &&
               Contains(x->text, std::to_string(twice.seq));
    }
    EXPECT_TRUE(named) << why;
  }
}

TEST(MessagingCheckerRandom, SwappedReceiptsAreOutOfOrder) {
  const auto seeds = testing::seed_range(300);
  size_t mutated = 0;
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    World w = random_world(seed);
    Rng rng(seed ^ 0x5a9);
    std::vector<size_t> syncs;
    for (size_t i = 0; i < w.h.size(); ++i) {
      const auto* c = std::get_if<Completion>(&w.h[i].body);
      if (c != nullptr && c->op == OpKind::sync && c->outcome == Outcome::ok &&
          std::get<SyncResult>(*c->result).messages.size() >= 2) {
        syncs.push_back(i);
      }
    }
    if (syncs.empty()) continue;
    ++mutated;
    Event& e = w.h[syncs[rng.uniform(syncs.size())]];
    auto& ms = std::get<SyncResult>(*std::get<Completion>(e.body).result).messages;
    const size_t j = rng.uniform(ms.size() - 1);
    std::swap(ms[j], ms[j + 1]);
    const MessageCopy later = ms[j + 1];  // now received after a higher seq
    const auto v = check(w.h, "seed " + std::to_string(seed));
    const std::string why = format_verdict(v) + rerun(seed, "SwappedReceiptsAreOutOfOrder");
    ASSERT_TRUE(FailsExactly(v, {Check::order})) << rerun(seed, "SwappedReceiptsAreOutOfOrder");
    const auto order = v.of(Check::order);
    ASSERT_EQ(order.size(), 1u) << why;
    EXPECT_EQ(order[0]->kind, "not_increasing") << why;
    EXPECT_EQ(order[0]->message_id, later.message_id) << why;
    EXPECT_EQ(order[0]->recipient, std::optional<UserId>(later.recipient)) << why;
    EXPECT_EQ(order[0]->client, e.process) << why;
    EXPECT_TRUE(Contains(format_violation(*order[0], v.context), "; seed " + std::to_string(seed)));
  }
  EXPECT_GT(mutated, 0u);
}

// Shuffling the events again changes nothing a violation says.
TEST(MessagingCheckerRandom, MutatedVerdictsDoNotDependOnEventOrder) {
  const auto seeds = testing::seed_range(100);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    World w = random_world(seed);
    // Mutate: the first client final with messages loses one, a sync is swapped.
    for (auto& e : w.h) {
      auto* c = std::get_if<ClientFinal>(&e.body);
      if (c != nullptr && !c->messages.empty()) {
        c->messages.pop_back();
        break;
      }
    }
    History shuffled = w.h;
    Rng rng(seed ^ 0x5407);
    for (size_t i = shuffled.size(); i > 1; --i)
      std::swap(shuffled[i - 1], shuffled[rng.uniform(i)]);
    const auto a = check(w.h);
    const auto b = check(shuffled);
    ASSERT_EQ(a.violations.size(), b.violations.size())
        << rerun(seed, "MutatedVerdictsDoNotDependOnEventOrder");
    for (size_t i = 0; i < a.violations.size(); ++i) {
      EXPECT_EQ(format_violation(a.violations[i], ""), format_violation(b.violations[i], ""));
    }
  }
}

// Arbitrary damage to a history (events dropped, repeated, re-timed, ids
// and seqs changed, completions of the wrong kind, results missing): the
// checker reports whatever it finds and never crashes.
void damage_copy(Rng& rng, MessageCopy& m) {
  switch (rng.uniform(6)) {
    case 0:
      m.seq = rng.uniform(4);
      break;
    case 1:
      m.recipient = rng.uniform(5);
      break;
    case 2:
      m.message_id = "m" + std::to_string(rng.uniform(5));
      break;
    case 3:
      m.sender = rng.uniform(5);
      break;
    case 4:
      m.client_msg_id = "x" + std::to_string(rng.uniform(3));
      break;
    default:
      m.to = rng.bernoulli(0.5) ? group(rng.uniform(3)) : peer(rng.uniform(5));
      break;
  }
}

void damage(Rng& rng, History& h) {
  if (h.empty()) return;
  const size_t i = rng.uniform(h.size());
  switch (rng.uniform(5)) {
    case 0:
      h.erase(h.begin() + static_cast<long>(i));
      return;
    case 1:
      h.push_back(h[i]);
      return;
    case 2:
      h[i].t_ns = static_cast<int64_t>(rng.next_u64());
      return;
    case 3:
      h[i].process = "c" + std::to_string(rng.uniform(4));
      return;
    default:
      break;
  }
  std::visit(
      [&](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Invoke>) {
          b.op_id = rng.uniform(5);
        } else if constexpr (std::is_same_v<T, Completion>) {
          switch (rng.uniform(4)) {
            case 0:
              b.op_id = rng.uniform(5);
              break;
            case 1:
              b.op = static_cast<OpKind>(rng.uniform(5));
              break;
            case 2:
              b.outcome = static_cast<Outcome>(rng.uniform(3));
              break;
            default:
              if (b.result) {
                if (auto* r = std::get_if<SyncResult>(&*b.result); r && !r->messages.empty()) {
                  damage_copy(rng, r->messages[rng.uniform(r->messages.size())]);
                } else {
                  b.result.reset();
                }
              }
          }
        } else if constexpr (std::is_same_v<T, SendAck>) {
          if (!b.recipients.empty() && rng.bernoulli(0.5)) {
            b.recipients[rng.uniform(b.recipients.size())].seq = rng.uniform(4);
          } else {
            b.recipients.push_back(RecipientSeq{rng.uniform(5), rng.uniform(4)});
          }
        } else if constexpr (std::is_same_v<T, GroupMembers>) {
          b.members.clear();
        } else if constexpr (std::is_same_v<T, ServerFinal>) {
          if (!b.inbox.empty()) damage_copy(rng, b.inbox[rng.uniform(b.inbox.size())]);
          b.versions["messages"] = rng.uniform(3);
        } else {
          if (!b.messages.empty()) damage_copy(rng, b.messages[rng.uniform(b.messages.size())]);
          b.key.clear();
        }
      },
      h[i].body);
}

TEST(MessagingCheckerRandom, DamagedHistoriesNeverCrashTheChecker) {
  const auto seeds = testing::seed_range(300);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    World w = random_world(seed);
    Rng rng(seed ^ 0xbad);
    const size_t edits = 1 + rng.uniform(12);
    for (size_t k = 0; k < edits; ++k) damage(rng, w.h);
    const auto v = check(w.h, "seed " + std::to_string(seed));
    const std::string report = format_verdict(v, SIZE_MAX);
    EXPECT_FALSE(report.empty());
    size_t total = 0;
    for (size_t c : v.violations_per_check) total += c;
    EXPECT_EQ(total, v.violations.size());
    for (const auto& x : v.violations) {
      for (const auto& e : x.events) ASSERT_LT(e.index, w.h.size());
    }
  }
}

// A bigger run (thousands of messages) is judged in one go.
TEST(MessagingCheckerRandom, LargeHistory) {
  World w;
  const UserId users = 50;
  for (UserId u = 1; u <= users; ++u) w.add_client("c" + std::to_string(u), u);
  for (GroupId g = 1; g <= 5; ++g) {
    for (UserId u = g; u <= users; u += 3) w.groups[g].push_back(u);
  }
  Rng rng(99);
  for (int i = 0; i < 5000; ++i) {
    const UserId u = 1 + rng.uniform(users);
    const std::string p = "c" + std::to_string(u);
    const Conversation to = i % 10 == 0 ? group(1 + rng.uniform(5)) : peer(u % users + 1);
    if (to.kind == ConversationKind::group) {
      const auto& ms = w.groups[to.id];
      if (std::find(ms.begin(), ms.end(), u) == ms.end()) continue;
    }
    w.send(p, to, p + "-" + std::to_string(i), Fate::ok);
    if (i % 7 == 0) w.sync("c" + std::to_string(1 + rng.uniform(users)), 20);
  }
  w.sync_all(50);
  w.finish();
  const auto v = check(w.h);
  EXPECT_TRUE(v.ok()) << format_verdict(v);
  EXPECT_GT(v.stats.deliveries_required, 5000u);
}

}  // namespace
}  // namespace wx::checkers::messaging
