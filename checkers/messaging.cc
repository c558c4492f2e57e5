#include "checkers/messaging.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace wx::checkers::messaging {
namespace {

// A message as its sender knows it: (sender, client message id). Retries of
// one send share it; the server must store it once.
struct MsgKey {
  UserId sender = 0;
  std::string cmid;
  auto operator<=>(const MsgKey&) const = default;
};

// Where `to` of a message was learnt from; the first source wins, and a
// disagreeing copy is judged by the origin check, not as a history problem.
enum class Source : uint8_t { send, ack, members, copy };

struct MessageInfo {
  MsgKey key;
  std::optional<Conversation> to;
  size_t to_event = 0;                // the event `to` was learnt from
  std::optional<uint64_t> body_hash;  // from the first send that recorded one
  std::vector<size_t> invokes;        // send invoke events
  size_t fails = 0;
  std::map<std::string, size_t> ids;  // server message id -> first event naming it
  std::optional<std::set<UserId>> members;
  size_t members_event = 0;
  std::map<UserId, std::pair<Seq, size_t>> acked;  // recipient -> (seq, ack event)
  std::optional<size_t> acknowledged_event;        // earliest ok or ack

  bool acknowledged() const { return acknowledged_event.has_value(); }
};

enum class HolderKind : uint8_t { server_final, client_final, stream };

struct Holder {
  HolderKind kind = HolderKind::server_final;
  UserId user = 0;
  std::string process;  // empty for server_final
  size_t event = 0;     // the final-state event; a stream's first sync completion
};

// One copy of a message seen in a holder.
struct Obs {
  size_t holder = 0;
  size_t event = 0;  // the final state's event, or the sync's completion
  int64_t t_ns = 0;
  MsgKey key;
  const MessageCopy* copy = nullptr;
};

struct Op {
  size_t invoke = 0;
  std::optional<size_t> completion;  // a usable completion
};

std::string user_name(UserId u) {
  return "u" + std::to_string(u);
}

// "1..38, 40, 42..45" (at most 8 ranges, then the count).
std::string summarize_seqs(const std::set<Seq>& seqs) {
  if (seqs.empty()) return "no seq";
  std::string out;
  size_t ranges = 0;
  auto it = seqs.begin();
  while (it != seqs.end()) {
    const Seq lo = *it;
    Seq hi = lo;
    ++it;
    while (it != seqs.end() && *it == hi + 1) {
      hi = *it;
      ++it;
    }
    if (ranges == 8) {
      out += ", ... (" + std::to_string(seqs.size()) + " seqs in all)";
      break;
    }
    if (ranges > 0) out += ", ";
    out += lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
    ++ranges;
  }
  return out;
}

// "holds seqs 1..40" or "holds nothing".
std::string holds_text(const std::set<Seq>& seqs) {
  return seqs.empty() ? "holds nothing" : "holds seqs " + summarize_seqs(seqs);
}

std::string format_key(const SyncKey& key) {
  std::string out = "{";
  bool first = true;
  for (const auto& [type, version] : key) {
    if (!first) out += ", ";
    first = false;
    out += type + ": " + std::to_string(version);
  }
  return out + "}";
}

uint64_t version_of(const SyncKey& key, std::string_view type) {
  auto it = key.find(std::string(type));
  return it == key.end() ? 0 : it->second;
}

std::string join_users(const std::set<UserId>& users) {
  std::string out;
  for (UserId u : users) out += (out.empty() ? "" : ", ") + user_name(u);
  return out.empty() ? "nobody" : out;
}

class Checker {
 public:
  Checker(const History& history, const CheckOptions& options) : h_(history), opt_(options) {}

  MessagingVerdict run() {
    verdict_.context = opt_.context;
    verdict_.stats.events = h_.size();
    // Events by (time, index): what is "first" never depends on line order.
    order_.resize(h_.size());
    for (size_t i = 0; i < h_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
      return std::tie(h_[a].t_ns, a) < std::tie(h_[b].t_ns, b);
    });
    pair_operations();
    collect_sends();
    collect_facts();
    collect_holders();
    collect_copies();
    index_by_message();
    verdict_.stats.messages = msgs_.size();
    check_ids();
    check_duplicates();
    check_streams();
    check_seq_agreement();
    check_seq_reuse();
    check_lost();
    check_convergence();
    check_origin();
    for (size_t c = 0; c < kCheckCount; ++c) {
      verdict_.violations_per_check[c] = found_[c].size();
      for (auto& v : found_[c]) {
        // Each event once, in the order first cited.
        std::set<size_t> seen;
        std::erase_if(v.events, [&](const EventRef& e) { return !seen.insert(e.index).second; });
        verdict_.violations.push_back(std::move(v));
      }
    }
    return std::move(verdict_);
  }

 private:
  // --- reporting helpers ----------------------------------------------------

  std::string event_label(size_t i) const {
    const Event& e = h_[i];
    struct Visitor {
      std::string operator()(const Invoke& inv) const {
        return std::string(to_string(op_kind(inv.request))) + " invoke";
      }
      std::string operator()(const Completion& c) const {
        return std::string(to_string(c.op)) + " " + std::string(to_string(c.outcome));
      }
      std::string operator()(const SendAck&) const { return "ack"; }
      std::string operator()(const GroupMembers& g) const {
        return "group_members of group g" + std::to_string(g.group);
      }
      std::string operator()(const ServerFinal& s) const {
        return "server_final of " + user_name(s.user);
      }
      std::string operator()(const ClientFinal& c) const {
        return "client_final of " + user_name(c.user);
      }
    };
    return std::visit(Visitor{}, e.body);
  }

  EventRef ref(size_t i) const { return EventRef{i, h_[i].t_ns, h_[i].process, event_label(i)}; }

  std::string at(size_t i) const { return format_time(h_[i].t_ns); }

  Violation& add(Check check, std::string kind, std::string text) {
    auto& list = found_[static_cast<size_t>(check)];
    list.push_back(Violation{});
    Violation& v = list.back();
    v.check = check;
    v.kind = std::move(kind);
    v.text = std::move(text);
    return v;
  }

  void set_message(Violation& v, const MessageInfo& m) const {
    v.sender = m.key.sender;
    v.client_msg_id = m.key.cmid;
    v.to = m.to;
    if (!m.ids.empty()) v.message_id = m.ids.begin()->first;
  }

  void add_refs(Violation& v, std::initializer_list<size_t> events) const {
    for (size_t e : events) v.events.push_back(ref(e));
  }

  std::string ids_text(const MessageInfo& m) const {
    if (m.ids.empty()) return "(no message id)";
    std::string out;
    for (const auto& [id, ev] : m.ids) out += (out.empty() ? "" : "/") + id;
    return out;
  }

  std::string send_state(const MessageInfo& m) const {
    if (m.acknowledged()) return "acknowledged at " + at(*m.acknowledged_event);
    if (m.invokes.empty()) return "no send recorded";
    if (m.fails == m.invokes.size()) return "send failed";
    return "send outcome unknown";
  }

  // "message m17 (client id c3-42 from u3 to group g2, acknowledged at 12.345s)"
  std::string describe_message(const MessageInfo& m) const {
    return "message " + ids_text(m) + " (client id " + m.key.cmid + " from " +
           user_name(m.key.sender) + " to " + (m.to ? describe(*m.to) : std::string("?")) + ", " +
           send_state(m) + ")";
  }

  // Short form for lists: "m17 (client id c3-42 from u3)".
  std::string short_message(const MsgKey& k, const std::string& id) const {
    return id + " (client id " + k.cmid + " from " + user_name(k.sender) + ")";
  }

  std::string describe_holder(size_t hi) const {
    const Holder& hd = holders_[hi];
    switch (hd.kind) {
      case HolderKind::server_final:
        return "the server's final inbox of " + user_name(hd.user);
      case HolderKind::client_final:
        return "client " + hd.process + "'s final state";
      case HolderKind::stream:
        return "client " + hd.process + "'s syncs";
    }
    return "?";
  }

  MessageInfo& info(const MsgKey& k) {
    auto [it, inserted] = msgs_.try_emplace(k);
    if (inserted) it->second.key = k;
    return it->second;
  }

  void note_acknowledged(MessageInfo& m, size_t e) {
    if (!m.acknowledged_event ||
        std::tie(h_[e].t_ns, e) < std::tie(h_[*m.acknowledged_event].t_ns, *m.acknowledged_event)) {
      m.acknowledged_event = e;
    }
  }

  // Keeps the earliest event (by time, then index) in `slot`.
  void keep_earliest(size_t& slot, size_t e) const {
    if (std::tie(h_[e].t_ns, e) < std::tie(h_[slot].t_ns, slot)) slot = e;
  }

  void note_id(MessageInfo& m, const std::string& id, size_t e) {
    if (id.empty()) return;
    auto [it, inserted] = m.ids.try_emplace(id, e);
    if (!inserted) keep_earliest(it->second, e);
    auto [owner, fresh] = id_owners_[id].try_emplace(m.key, e);
    if (!fresh) keep_earliest(owner->second, e);
  }

  // Learns `to` from a source; reports a disagreement with an earlier one.
  void note_to(MessageInfo& m, const Conversation& to, Source source, size_t e) {
    if (!m.to) {
      m.to = to;
      m.to_event = e;
      return;
    }
    if (*m.to == to || source == Source::copy) return;  // copies are judged by origin
    Violation& v = add(Check::history, "conversation_mismatch",
                       describe_message(m) + ": the " + event_label(e) + " at " + at(e) +
                           " says it goes to " + describe(to) + ", the " + event_label(m.to_event) +
                           " at " + at(m.to_event) + " says " + describe(*m.to));
    set_message(v, m);
    add_refs(v, {m.to_event, e});
  }

  // --- pairing invokes and completions ------------------------------------------

  void pair_operations() {
    std::map<std::pair<std::string, uint64_t>, size_t> op_of;
    for (size_t i : order_) {
      const auto* inv = std::get_if<Invoke>(&h_[i].body);
      if (inv == nullptr) continue;
      auto [it, inserted] = op_of.try_emplace({h_[i].process, inv->op_id}, ops_.size());
      if (!inserted) {
        Violation& v =
            add(Check::history, "duplicate_op_id",
                "process " + h_[i].process + " invoked op_id " + std::to_string(inv->op_id) +
                    " twice (at " + at(ops_[it->second].invoke) + " and " + at(i) +
                    "); the second is ignored");
        v.client = h_[i].process;
        add_refs(v, {ops_[it->second].invoke, i});
        continue;
      }
      ops_.push_back(Op{i, std::nullopt});
    }
    std::vector<bool> completed(ops_.size(), false);
    for (size_t i : order_) {
      const auto* c = std::get_if<Completion>(&h_[i].body);
      if (c == nullptr) continue;
      auto it = op_of.find({h_[i].process, c->op_id});
      auto problem = [&](std::string kind, std::string text, std::optional<size_t> inv) {
        Violation& v = add(Check::history, std::move(kind), std::move(text));
        v.client = h_[i].process;
        if (inv) add_refs(v, {*inv});
        add_refs(v, {i});
      };
      // Only formatted for a problem: building it for every completion cost
      // more than the rest of the pairing on millions of events.
      auto name = [&] {
        return "the " + event_label(i) + " of process " + h_[i].process + " op_id " +
               std::to_string(c->op_id) + " at " + at(i);
      };
      if (it == op_of.end()) {
        problem("completion_without_invoke", name() + " has no invoke; ignored", std::nullopt);
        continue;
      }
      Op& op = ops_[it->second];
      const Invoke& inv = std::get<Invoke>(h_[op.invoke].body);
      if (completed[it->second]) {
        problem("two_completions", name() + " completes an operation already completed; ignored",
                op.invoke);
        continue;
      }
      completed[it->second] = true;
      if (c->op != op_kind(inv.request)) {
        problem("op_mismatch",
                name() + " completes a " + std::string(to_string(op_kind(inv.request))) +
                    " invoke; taken as outcome unknown",
                op.invoke);
        continue;
      }
      const bool has_result = c->result.has_value();
      if ((c->outcome == Outcome::ok) != has_result ||
          (has_result && op_kind(*c->result) != c->op)) {
        problem("bad_result",
                name() +
                    (c->outcome == Outcome::ok ? " has no result of its kind"
                                               : " carries a result though not ok") +
                    "; taken as outcome unknown",
                op.invoke);
        continue;
      }
      if (c->outcome == Outcome::ok && c->op == OpKind::send &&
          std::get<SendResult>(*c->result).message_id.empty()) {
        problem("bad_result", name() + " has an empty message id; taken as outcome unknown",
                op.invoke);
        continue;
      }
      if (h_[i].t_ns < h_[op.invoke].t_ns) {
        problem("completes_before_invoke", name() + " is earlier than its invoke at " + at(op.invoke),
                op.invoke);
      }
      op.completion = i;
    }
  }

  const Completion* completion_of(const Op& op) const {
    return op.completion ? &std::get<Completion>(h_[*op.completion].body) : nullptr;
  }

  // --- what was sent and acknowledged ----------------------------------------------

  void collect_sends() {
    for (const Op& op : ops_) {
      const auto& req = std::get<Invoke>(h_[op.invoke].body).request;
      const auto* send = std::get_if<SendRequest>(&req);
      if (send == nullptr) continue;
      ++verdict_.stats.send_attempts;
      MessageInfo& m = info(MsgKey{send->user, send->client_msg_id});
      if (!m.invokes.empty()) {
        const auto& first =
            std::get<SendRequest>(std::get<Invoke>(h_[m.invokes.front()].body).request);
        if (first.to != send->to ||
            (first.body_hash && send->body_hash && *first.body_hash != *send->body_hash)) {
          Violation& v =
              add(Check::history, "client_msg_id_reused",
                  user_name(send->user) + " used client message id " + send->client_msg_id +
                      " for two different messages (to " + describe(first.to) + " at " +
                      at(m.invokes.front()) + ", to " + describe(send->to) + " at " +
                      at(op.invoke) + (first.to == send->to ? ", with different bodies" : "") +
                      "); a retry must resend the same message");
          set_message(v, m);
          v.client = h_[op.invoke].process;
          add_refs(v, {m.invokes.front(), op.invoke});
        }
      }
      m.invokes.push_back(op.invoke);
      if (m.invokes.size() == 1) note_to(m, send->to, Source::send, op.invoke);
      if (!m.body_hash) m.body_hash = send->body_hash;
      const Completion* c = completion_of(op);
      if (c == nullptr || c->outcome == Outcome::info) {
        ++verdict_.stats.sends_unknown;
      } else if (c->outcome == Outcome::fail) {
        ++verdict_.stats.sends_fail;
        ++m.fails;
      } else {
        ++verdict_.stats.sends_ok;
        note_id(m, std::get<SendResult>(*c->result).message_id, *op.completion);
        note_acknowledged(m, *op.completion);
      }
    }
  }

  void collect_facts() {
    for (size_t i : order_) {
      if (const auto* a = std::get_if<SendAck>(&h_[i].body)) {
        MessageInfo& m = info(MsgKey{a->sender, a->client_msg_id});
        note_to(m, a->to, Source::ack, i);
        note_id(m, a->message_id, i);
        note_acknowledged(m, i);
        for (const RecipientSeq& r : a->recipients) {
          seq_sources_[{r.user, r.seq}].try_emplace(m.key, SeqSource{i, a->message_id, "ack"});
          auto [it, inserted] = m.acked.try_emplace(r.user, r.seq, i);
          if (!inserted && it->second.first != r.seq) {
            Violation& v =
                add(Check::duplicated, "acknowledged_twice",
                    describe_message(m) + " was acknowledged for recipient " + user_name(r.user) +
                        " at seq " + std::to_string(it->second.first) + " (ack at " +
                        at(it->second.second) + ") and at seq " + std::to_string(r.seq) +
                        " (ack at " + at(i) + "): it was stored twice for that recipient");
            set_message(v, m);
            v.recipient = r.user;
            add_refs(v, {it->second.second, i});
          }
        }
      } else if (const auto* g = std::get_if<GroupMembers>(&h_[i].body)) {
        MessageInfo& m = info(MsgKey{g->sender, g->client_msg_id});
        const Conversation group{ConversationKind::group, g->group};
        note_to(m, group, Source::members, i);
        note_id(m, g->message_id, i);
        const std::set<UserId> members(g->members.begin(), g->members.end());
        if (!m.members) {
          m.members = members;
          m.members_event = i;
        } else if (*m.members != members) {
          Violation& v = add(Check::history, "conflicting_members",
                             describe_message(m) + ": two group_members facts disagree (" +
                                 join_users(*m.members) + " at " + at(m.members_event) + "; " +
                                 join_users(members) + " at " + at(i) +
                                 "): the members of a group send are fixed when it is sent");
          set_message(v, m);
          add_refs(v, {m.members_event, i});
        }
      }
    }
  }

  // --- who holds what ------------------------------------------------------------------

  void collect_holders() {
    std::map<UserId, size_t> server_event;
    std::map<std::pair<std::string, UserId>, size_t> client_event;
    for (size_t i : order_) {
      if (const auto* s = std::get_if<ServerFinal>(&h_[i].body)) {
        ++verdict_.stats.server_finals;
        auto [it, inserted] = server_event.try_emplace(s->user, i);
        if (!inserted) {
          Violation& v = add(Check::history, "two_server_finals",
                             "two server final states of " + user_name(s->user) + " (at " +
                                 at(it->second) + " and " + at(i) + "); the second is ignored");
          v.recipient = s->user;
          add_refs(v, {it->second, i});
          continue;
        }
        server_holder_[s->user] = holders_.size();
        holders_.push_back(Holder{HolderKind::server_final, s->user, "", i});
      } else if (const auto* c = std::get_if<ClientFinal>(&h_[i].body)) {
        ++verdict_.stats.client_finals;
        auto [it, inserted] = client_event.try_emplace({h_[i].process, c->user}, i);
        if (!inserted) {
          Violation& v =
              add(Check::history, "two_client_finals",
                  "two final states of client " + h_[i].process + " for " + user_name(c->user) +
                      " (at " + at(it->second) + " and " + at(i) + "); the second is ignored");
          v.client = h_[i].process;
          v.recipient = c->user;
          add_refs(v, {it->second, i});
          continue;
        }
        client_holders_[c->user].push_back(holders_.size());
        holders_.push_back(Holder{HolderKind::client_final, c->user, h_[i].process, i});
      }
    }
    // Streams: the ok syncs of each (client, user), in completion order.
    std::map<std::pair<std::string, UserId>, std::vector<size_t>> syncs;  // op indices
    for (size_t k = 0; k < ops_.size(); ++k) {
      const auto* req =
          std::get_if<SyncRequest>(&std::get<Invoke>(h_[ops_[k].invoke].body).request);
      const Completion* c = completion_of(ops_[k]);
      if (req == nullptr || c == nullptr || c->outcome != Outcome::ok) continue;
      ++verdict_.stats.syncs_ok;
      syncs[{h_[ops_[k].invoke].process, req->user}].push_back(k);
    }
    for (auto& [who, list] : syncs) {
      std::sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        const Op& x = ops_[a];
        const Op& y = ops_[b];
        return std::tie(h_[*x.completion].t_ns, h_[x.invoke].t_ns, x.invoke) <
               std::tie(h_[*y.completion].t_ns, h_[y.invoke].t_ns, y.invoke);
      });
      for (size_t j = 1; j < list.size(); ++j) {
        const Op& prev = ops_[list[j - 1]];
        const Op& next = ops_[list[j]];
        if (h_[next.invoke].t_ns < h_[*prev.completion].t_ns) {
          Violation& v = add(Check::history, "overlapping_syncs",
                             "client " + who.first + " ran two syncs for " + user_name(who.second) +
                                 " at once (" + at(prev.invoke) + ".." + at(*prev.completion) +
                                 " and " + at(next.invoke) + ".." + at(*next.completion) +
                                 "); the order check takes them in completion order");
          v.client = who.first;
          v.recipient = who.second;
          add_refs(v, {prev.invoke, *prev.completion, next.invoke, *next.completion});
        }
      }
      stream_holder_[who] = holders_.size();
      holders_.push_back(
          Holder{HolderKind::stream, who.second, who.first, *ops_[list.front()].completion});
      stream_syncs_.push_back(std::move(list));
    }
  }

  // Records one copy held by `holder`; returns its observation index.
  size_t observe(size_t holder, size_t event, const MessageCopy& copy) {
    const Holder& hd = holders_[holder];
    if (copy.recipient != hd.user) {
      Violation& v =
          add(Check::history, "copy_for_other_user",
              "the " + event_label(event) + " at " + at(event) + " lists message " +
                  copy.message_id + " at seq " + std::to_string(copy.seq) + " with recipient " +
                  user_name(copy.recipient) + "; it is taken as " + user_name(hd.user) + "'s");
      v.recipient = hd.user;
      v.message_id = copy.message_id;
      add_refs(v, {event});
    }
    if (copy.seq == 0) {
      Violation& v = add(Check::history, "seq_zero",
                         "the " + event_label(event) + " at " + at(event) + " lists message " +
                             copy.message_id + " at seq 0; seqs start at 1");
      v.recipient = hd.user;
      v.message_id = copy.message_id;
      add_refs(v, {event});
    }
    const MsgKey key{copy.sender, copy.client_msg_id};
    MessageInfo& m = info(key);
    note_id(m, copy.message_id, event);
    note_to(m, copy.to, Source::copy, event);
    const size_t o = obs_.size();
    obs_.push_back(Obs{holder, event, h_[event].t_ns, key, &copy});
    held_[{hd.user, key}][holder].push_back(o);
    seq_sources_[{hd.user, copy.seq}].try_emplace(
        key, SeqSource{event, copy.message_id, describe_holder(holder)});
    return o;
  }

  void collect_copies() {
    for (size_t hi = 0; hi < holders_.size(); ++hi) {
      const Holder& hd = holders_[hi];
      if (hd.kind == HolderKind::stream) continue;
      const auto& copies = hd.kind == HolderKind::server_final
                               ? std::get<ServerFinal>(h_[hd.event].body).inbox
                               : std::get<ClientFinal>(h_[hd.event].body).messages;
      std::set<MessageCopy> seen;
      for (const MessageCopy& c : copies) {
        if (!seen.insert(c).second) {
          Violation& v =
              add(Check::history, "listed_twice",
                  "the " + event_label(hd.event) + " at " + at(hd.event) + " lists seq " +
                      std::to_string(c.seq) + " = message " + c.message_id + " twice");
          v.recipient = hd.user;
          v.message_id = c.message_id;
          add_refs(v, {hd.event});
          continue;
        }
        observe(hi, hd.event, c);
      }
    }
    size_t s = 0;
    for (const auto& [who, hi] : stream_holder_) {
      auto& per_sync = stream_obs_.emplace_back();
      for (size_t k : stream_syncs_[s]) {
        const size_t done = *ops_[k].completion;
        auto& received = per_sync.emplace_back();
        for (const MessageCopy& c :
             std::get<SyncResult>(*completion_of(ops_[k])->result).messages) {
          received.push_back(observe(hi, done, c));
        }
      }
      ++s;
    }
  }

  // --- checks ----------------------------------------------------------------------------

  void check_ids() {
    // One message id per client message: otherwise it was stored twice.
    for (const auto& [key, m] : msgs_) {
      if (m.ids.size() < 2) continue;
      std::string list;
      for (const auto& [id, ev] : m.ids) {
        list += (list.empty() ? "" : "; ") + id + " (first in the " + event_label(ev) + " at " +
                at(ev) + ")";
      }
      Violation& v = add(Check::duplicated, "two_message_ids",
                         describe_message(m) + " was stored as " + std::to_string(m.ids.size()) +
                             " messages: " + list + "; a retried send must be stored once");
      set_message(v, m);
      for (const auto& [id, ev] : m.ids) v.events.push_back(ref(ev));
    }
    // One message per message id.
    for (const auto& [id, owners] : id_owners_) {
      if (owners.size() < 2) continue;
      std::string list;
      for (const auto& [key, ev] : owners) {
        list += (list.empty() ? "" : "; ") + short_message(key, id) + " in the " + event_label(ev) +
                " at " + at(ev);
      }
      Violation& v = add(Check::origin, "id_conflict",
                         "message id " + id + " names " + std::to_string(owners.size()) +
                             " different messages: " + list);
      v.message_id = id;
      v.sender = owners.begin()->first.sender;
      v.client_msg_id = owners.begin()->first.cmid;
      for (const auto& [key, ev] : owners) v.events.push_back(ref(ev));
    }
  }

  // The seqs of a message in one holder (a stream: one per receipt).
  std::vector<Seq> seqs_in(const std::vector<size_t>& obs) const {
    std::vector<Seq> out;
    for (size_t o : obs) out.push_back(obs_[o].copy->seq);
    return out;
  }

  static std::string seq_list(const std::vector<Seq>& seqs) {
    std::string out;
    for (size_t i = 0; i < seqs.size(); ++i) {
      out += (i == 0 ? "" : i + 1 == seqs.size() ? " and " : ", ") + std::to_string(seqs[i]);
    }
    return out;
  }

  void check_duplicates() {
    for (const auto& [rk, by_holder] : held_) {
      const auto& [r, key] = rk;
      std::string where;
      std::vector<size_t> events;
      size_t times_max = 0;
      for (const auto& [hi, obs] : by_holder) {
        if (obs.size() < 2) continue;
        times_max = std::max(times_max, obs.size());
        if (!where.empty()) where += "; ";
        if (holders_[hi].kind == HolderKind::stream) {
          where += "received by client " + holders_[hi].process + " ";
          for (size_t j = 0; j < obs.size(); ++j) {
            where += (j == 0 ? "" : " and ") + std::string("at seq ") +
                     std::to_string(obs_[obs[j]].copy->seq) + " (sync at " +
                     at(obs_[obs[j]].event) + ")";
            events.push_back(obs_[obs[j]].event);
          }
        } else {
          where += "at seqs " + seq_list(seqs_in(obs)) + " in " + describe_holder(hi);
          events.push_back(holders_[hi].event);
        }
      }
      if (times_max == 0) continue;
      const MessageInfo& m = msgs_.at(key);
      Violation& v = add(Check::duplicated, "held_twice",
                         describe_message(m) + " is held " + std::to_string(times_max) +
                             " times by recipient " + user_name(r) + ": " + where);
      set_message(v, m);
      v.recipient = r;
      std::sort(events.begin(), events.end());
      events.erase(std::unique(events.begin(), events.end()), events.end());
      for (size_t e : events) v.events.push_back(ref(e));
    }
  }

  const MessageInfo& msg_of(const Obs& o) const { return msgs_.at(o.key); }

  void check_streams() {
    size_t s = 0;
    for (const auto& [who, hi] : stream_holder_) {
      const auto& [process, user] = who;
      (void)hi;
      std::optional<size_t> last;  // the observation with the highest seq so far
      for (size_t j_sync = 0; j_sync < stream_syncs_[s].size(); ++j_sync) {
        const Op& op = ops_[stream_syncs_[s][j_sync]];
        const size_t done = *op.completion;
        const SyncKey& in = std::get<SyncRequest>(std::get<Invoke>(h_[op.invoke].body).request).key;
        const auto& res = std::get<SyncResult>(*completion_of(op)->result);
        std::set<std::string> types;
        for (const auto& [t, ver] : in) types.insert(t);
        for (const auto& [t, ver] : res.key) types.insert(t);
        std::string back;
        for (const std::string& t : types) {
          if (version_of(res.key, t) < version_of(in, t)) {
            back += (back.empty() ? "" : ", ") + t + " " + std::to_string(version_of(in, t)) +
                    " -> " + std::to_string(version_of(res.key, t));
          }
        }
        if (!back.empty()) {
          Violation& v =
              add(Check::order, "key_regressed",
                  "client " + process + " (" + user_name(user) + ") presented key " +
                      format_key(in) + " in the sync completed at " + at(done) + " and was given " +
                      format_key(res.key) + " (" + back + "): a sync key never goes backwards");
          v.client = process;
          v.recipient = user;
          add_refs(v, {op.invoke, done});
        }
        const Seq key_in = version_of(in, kMessagesType);
        const Seq key_out = version_of(res.key, kMessagesType);
        for (size_t o : stream_obs_[s][j_sync]) {
          const Obs& ob = obs_[o];
          const Seq seq = ob.copy->seq;
          std::string problem;
          std::string kind;
          std::vector<size_t> events;
          if (last && seq <= obs_[*last].copy->seq) {
            const Obs& prev = obs_[*last];
            kind = "not_increasing";
            problem = "after seq " + std::to_string(prev.copy->seq) + " (message " +
                      prev.copy->message_id +
                      (prev.event == done ? ", earlier in the same response"
                                          : ", sync completed at " + at(prev.event)) +
                      "): the seqs a client receives must strictly increase";
            events = {prev.event, done};
          } else if (seq <= key_in) {
            kind = "not_after_key";
            problem = "though it presented " + std::string(kMessagesType) + " " +
                      std::to_string(key_in) + ": a sync returns only messages after the key";
            events = {op.invoke, done};
          } else if (seq > key_out) {
            kind = "beyond_new_key";
            problem = "but the new key says " + std::string(kMessagesType) + " " +
                      std::to_string(key_out) + ": the next sync would fetch it again";
            events = {done};
          }
          if (!problem.empty()) {
            const MessageInfo& m = msg_of(ob);
            Violation& v = add(Check::order, kind,
                               "client " + process + " (" + user_name(user) + ") received " +
                                   describe_message(m) + " at seq " + std::to_string(seq) +
                                   " in the sync completed at " + at(done) + " " + problem);
            set_message(v, m);
            v.message_id = ob.copy->message_id;
            v.client = process;
            v.recipient = user;
            for (size_t e : events) v.events.push_back(ref(e));
          }
          if (!last || seq > obs_[*last].copy->seq) last = o;
        }
      }
      ++s;
    }
  }

  void check_seq_agreement() {
    for (const auto& [rk, by_holder] : held_) {
      const auto& [r, key] = rk;
      const MessageInfo& m = msgs_.at(key);
      // The seq each holder has (holders with several are duplicates: skipped).
      std::map<size_t, Seq> single;
      for (const auto& [hi, obs] : by_holder) {
        const std::vector<Seq> seqs = seqs_in(obs);
        if (std::all_of(seqs.begin(), seqs.end(), [&](Seq x) { return x == seqs.front(); })) {
          single[hi] = seqs.front();
        }
      }
      if (single.empty()) continue;
      std::optional<Seq> reference;
      std::string reference_text;
      std::vector<size_t> events;
      if (auto it = m.acked.find(r); it != m.acked.end()) {
        reference = it->second.first;
        reference_text = "was acknowledged at seq " + std::to_string(*reference) + " (ack at " +
                         at(it->second.second) + ")";
        events.push_back(it->second.second);
      } else {
        auto server = server_holder_.find(r);
        size_t ref_holder = single.begin()->first;
        if (server != server_holder_.end() && single.count(server->second)) {
          ref_holder = server->second;
        }
        reference = single[ref_holder];
        reference_text =
            "is at seq " + std::to_string(*reference) + " in " + describe_holder(ref_holder);
        events.push_back(holders_[ref_holder].event);
      }
      std::string differ;
      for (const auto& [hi, seq] : single) {
        if (seq == *reference) continue;
        differ += (differ.empty() ? "" : "; ") + std::string("at seq ") + std::to_string(seq) +
                  " in " + describe_holder(hi);
        events.push_back(holders_[hi].event);
      }
      if (differ.empty()) continue;
      Violation& v =
          add(Check::order, "seq_mismatch",
              describe_message(m) + " " + reference_text + " for recipient " + user_name(r) +
                  " but is " + differ + ": a message has one seq per recipient");
      set_message(v, m);
      v.recipient = r;
      for (size_t e : events) v.events.push_back(ref(e));
    }
  }

  void check_seq_reuse() {
    for (const auto& [rs, owners] : seq_sources_) {
      if (owners.size() < 2) continue;
      const auto& [r, seq] = rs;
      std::string list;
      for (const auto& [key, src] : owners) {
        list += (list.empty() ? "" : "; ") + short_message(key, src.message_id) + " in " +
                (src.where == "ack" ? "the ack at " + at(src.event) : src.where);
      }
      Violation& v = add(Check::order, "seq_reused",
                         "seq " + std::to_string(seq) + " of " + user_name(r) + " names " +
                             std::to_string(owners.size()) + " different messages: " + list +
                             ": a seq is never reused");
      const auto& [key0, src0] = *owners.begin();
      v.message_id = src0.message_id;
      v.sender = key0.sender;
      v.client_msg_id = key0.cmid;
      v.recipient = r;
      std::set<size_t> events;
      for (const auto& [key, src] : owners) events.insert(src.event);
      for (size_t e : events) v.events.push_back(ref(e));
    }
  }

  // The recipients a message is meant for; nullopt when unknown (a group
  // message with no membership fact).
  std::optional<std::set<UserId>> intended(const MessageInfo& m) const {
    if (!m.to) return std::nullopt;
    if (m.to->kind == ConversationKind::user) return std::set<UserId>{m.to->id};
    if (!m.members) return std::nullopt;
    std::set<UserId> out = *m.members;
    out.erase(m.key.sender);
    return out;
  }

  std::optional<std::set<UserId>> allowed(const MessageInfo& m) const {
    auto out = intended(m);
    if (out) out->insert(m.key.sender);
    return out;
  }

  std::string intended_text(const MessageInfo& m) const {
    if (!m.to) return "recipients unknown";
    if (m.to->kind == ConversationKind::user) return "the peer is " + user_name(m.to->id);
    if (!m.members) return "members of group g" + std::to_string(m.to->id) + " unknown";
    return "members of group g" + std::to_string(m.to->id) +
           " at send time: " + join_users(*m.members);
  }

  std::set<Seq> seqs_held(size_t hi) const {
    std::set<Seq> out;
    const Holder& hd = holders_[hi];
    const auto& copies = hd.kind == HolderKind::server_final
                             ? std::get<ServerFinal>(h_[hd.event].body).inbox
                             : std::get<ClientFinal>(h_[hd.event].body).messages;
    for (const auto& c : copies) out.insert(c.seq);
    return out;
  }

  bool holds(size_t hi, UserId r, const MsgKey& key) const {
    auto it = held_.find({r, key});
    return it != held_.end() && it->second.count(hi) > 0;
  }

  void check_lost() {
    struct Unverified {
      size_t count = 0;
      MsgKey first;
    };
    std::map<UserId, Unverified> unverified;
    for (const auto& [key, m] : msgs_) {
      if (m.acknowledged()) ++verdict_.stats.messages_acknowledged;
      const auto meant = intended(m);
      const auto ok_holders = allowed(m);
      // Why each recipient must hold it.
      std::map<UserId, std::string> required;
      if (m.acknowledged()) {
        if (meant) {
          for (UserId r : *meant) required.try_emplace(r, "an intended recipient");
        } else if (m.to && m.to->kind == ConversationKind::group) {
          Violation& v = add(Check::history, "no_members",
                             describe_message(m) +
                                 " must be delivered but no group_members fact says to whom; "
                                 "only recipients the server acknowledged are checked");
          set_message(v, m);
          add_refs(v, {*m.acknowledged_event});
        }
        for (const auto& [r, sa] : m.acked) {
          if (!ok_holders || ok_holders->count(r)) {
            required.try_emplace(r, "acknowledged for " + user_name(r) + " at seq " +
                                        std::to_string(sa.first) + " (ack at " + at(sa.second) +
                                        ")");
          }
        }
      }
      for (const auto& [r, by] : held_by_message(key)) {
        if (ok_holders && !ok_holders->count(r)) continue;
        const Obs& first = obs_[by];
        required.try_emplace(r, "it was seen held for " + user_name(r) + " in " +
                                    describe_holder(first.holder) + " at " + at(first.event));
      }
      for (const auto& [r, why] : required) {
        ++verdict_.stats.deliveries_required;
        std::vector<size_t> lacking;  // holders of r's final state that lack it
        auto server = server_holder_.find(r);
        auto clients = client_holders_.find(r);
        if (clients == client_holders_.end()) {
          if (opt_.require_client_final_for_recipients) {
            auto [u, inserted] = unverified.try_emplace(r);
            if (inserted) u->second.first = key;
            ++u->second.count;
          }
        } else {
          for (size_t hi : clients->second) {
            if (!holds(hi, r, key)) lacking.push_back(hi);
          }
        }
        if (server != server_holder_.end() && !holds(server->second, r, key)) {
          lacking.push_back(server->second);
        }
        if (lacking.empty()) continue;
        std::string where;
        bool client_lacks = false;
        for (size_t hi : lacking) {
          if (holders_[hi].kind == HolderKind::client_final) client_lacks = true;
          where += (where.empty() ? "" : "; ") + describe_holder(hi) + " (recorded at " +
                   at(holders_[hi].event) + ") " + holds_text(seqs_held(hi));
        }
        std::string text = describe_message(m) + " missing from recipient " + user_name(r) +
                           (client_lacks ? "'s synced state" : "'s final inbox on the server") +
                           " (" + where + ")";
        if (client_lacks && server != server_holder_.end() && holds(server->second, r, key)) {
          text += "; the server's final inbox holds it at seq " +
                  std::to_string(obs_[held_.at({r, key}).at(server->second).front()].copy->seq);
        }
        text += "; " + user_name(r) + " must hold it: " + why;
        Violation& v = add(Check::lost, "missing", std::move(text));
        set_message(v, m);
        v.recipient = r;
        std::vector<size_t> clients_lacking;
        for (size_t hi : lacking) {
          if (holders_[hi].kind == HolderKind::client_final) clients_lacking.push_back(hi);
        }
        if (clients_lacking.size() == 1) v.client = holders_[clients_lacking.front()].process;
        if (m.acknowledged_event) add_refs(v, {*m.acknowledged_event});
        for (size_t hi : lacking) add_refs(v, {holders_[hi].event});
      }
    }
    for (const auto& [r, u] : unverified) {
      const MessageInfo& m = msgs_.at(u.first);
      Violation& v = add(Check::lost, "no_client_final",
                         "recipient " + user_name(r) +
                             " has no client final state: " + std::to_string(u.count) + " message" +
                             (u.count == 1 ? "" : "s") + " that must reach " + user_name(r) +
                             " cannot be confirmed, the first " + describe_message(m));
      set_message(v, m);
      v.recipient = r;
    }
  }

  // recipient -> first observation of `key` held for that recipient.
  std::map<UserId, size_t> held_by_message(const MsgKey& key) const {
    std::map<UserId, size_t> out;
    auto it = by_message_.find(key);
    if (it == by_message_.end()) return out;
    return it->second;
  }

  // The data types besides messages (docs/messaging-history.md,
  // "convergence"): the client's synced contact set and profile must equal
  // the server's. Compared when both sides recorded them; one side alone is
  // a violation too when the client syncs that type (its key lists it) or
  // only the client recorded it.
  void check_other_types(const Holder& hd, const ClientFinal& client, const ServerFinal& server,
                         size_t server_event) {
    auto report = [&](const std::string& kind, const std::string& text) {
      Violation& v = add(Check::convergence, kind, text);
      v.client = hd.process;
      v.recipient = hd.user;
      add_refs(v, {server_event, hd.event});
    };
    auto users_text = [](const std::set<UserId>& us) {
      std::string out;
      for (UserId u : us) out += (out.empty() ? "" : ", ") + user_name(u);
      return out.empty() ? std::string("none") : out;
    };
    const std::string who = "client " + hd.process + "'s final state of " + user_name(hd.user);
    if (client.contacts && server.contacts) {
      const std::set<UserId> c(client.contacts->begin(), client.contacts->end());
      const std::set<UserId> sv(server.contacts->begin(), server.contacts->end());
      if (c != sv) {
        std::set<UserId> only_client, only_server;
        std::set_difference(c.begin(), c.end(), sv.begin(), sv.end(),
                            std::inserter(only_client, only_client.end()));
        std::set_difference(sv.begin(), sv.end(), c.begin(), c.end(),
                            std::inserter(only_server, only_server.end()));
        report("contacts_differ", who + " has contacts the server does not (" + users_text(only_client) +
                                      ") and lacks contacts the server has (" + users_text(only_server) + ")");
      }
    } else if (client.contacts || (server.contacts && client.key.count("contacts") != 0)) {
      report("contacts_unrecorded", who + (client.contacts ? " lists contacts but the server's final state does not"
                                                          : " syncs contacts but does not list them"));
    }
    auto profile_text = [](const ProfileFields& p) {
      std::string out;
      for (const auto& [f, v] : p) out += (out.empty() ? "" : ", ") + f + "=\"" + v + "\"";
      return "{" + out + "}";
    };
    if (client.profile && server.profile) {
      if (*client.profile != *server.profile) {
        report("profile_differs", who + " holds profile " + profile_text(*client.profile) +
                                      " but the server's is " + profile_text(*server.profile));
      }
    } else if (client.profile || (server.profile && client.key.count("account") != 0)) {
      report("profile_unrecorded", who + (client.profile ? " holds a profile but the server's final state has none"
                                                        : " syncs the account but holds no profile"));
    }
  }

  void check_convergence() {
    for (size_t hi = 0; hi < holders_.size(); ++hi) {
      const Holder& hd = holders_[hi];
      if (hd.kind != HolderKind::client_final) continue;
      const auto& client = std::get<ClientFinal>(h_[hd.event].body);
      auto server_it = server_holder_.find(hd.user);
      if (server_it == server_holder_.end()) {
        Violation& v = add(Check::convergence, "no_server_final",
                           "client " + hd.process + " has a final state for " + user_name(hd.user) +
                               " but the server's final state of " + user_name(hd.user) +
                               " was not recorded: nothing to compare");
        v.client = hd.process;
        v.recipient = hd.user;
        add_refs(v, {hd.event});
        continue;
      }
      const size_t server_event = holders_[server_it->second].event;
      const auto& server = std::get<ServerFinal>(h_[server_event].body);
      std::map<Seq, std::vector<const MessageCopy*>> on_client;  // in listed order
      std::map<Seq, std::vector<const MessageCopy*>> on_server;
      auto ids = [](const std::vector<const MessageCopy*>& cs) {
        std::set<std::string> out;
        for (const auto* c : cs) out.insert(c->message_id);
        return out;
      };
      for (const auto& c : client.messages) on_client[c.seq].push_back(&c);
      for (const auto& c : server.inbox) on_server[c.seq].push_back(&c);
      std::set<Seq> seqs;
      for (const auto& [s, c] : on_client) seqs.insert(s);
      for (const auto& [s, c] : on_server) seqs.insert(s);
      size_t reported = 0;
      size_t more = 0;
      for (Seq s : seqs) {
        auto c = on_client.find(s);
        auto sv = on_server.find(s);
        std::string kind;
        std::string text;
        const MessageCopy* about = nullptr;
        if (c == on_client.end()) {
          about = sv->second.front();
          kind = "client_lacks";
          text = "client " + hd.process + "'s final state of " + user_name(hd.user) +
                 " lacks seq " + std::to_string(s) + " = " +
                 describe_message(info(MsgKey{about->sender, about->client_msg_id})) +
                 ", which the server's final inbox holds";
        } else if (sv == on_server.end()) {
          about = c->second.front();
          kind = "server_lacks";
          text = "client " + hd.process + "'s final state of " + user_name(hd.user) +
                 " holds seq " + std::to_string(s) + " = " +
                 describe_message(info(MsgKey{about->sender, about->client_msg_id})) +
                 ", which the server's final inbox lacks";
        } else if (ids(c->second) != ids(sv->second)) {
          about = c->second.front();
          kind = "different_message";
          std::string cs;
          std::string ss;
          for (const auto& id : ids(c->second)) cs += (cs.empty() ? "" : "/") + id;
          for (const auto& id : ids(sv->second)) ss += (ss.empty() ? "" : "/") + id;
          text = "seq " + std::to_string(s) + " of " + user_name(hd.user) + " is message " + cs +
                 " in client " + hd.process + "'s final state but message " + ss +
                 " in the server's final inbox";
        } else {
          continue;
        }
        if (reported == opt_.convergence_differences_max_per_client) {
          ++more;
          continue;
        }
        ++reported;
        Violation& v = add(Check::convergence, kind, std::move(text));
        set_message(v, info(MsgKey{about->sender, about->client_msg_id}));
        v.message_id = about->message_id;
        v.client = hd.process;
        v.recipient = hd.user;
        add_refs(v, {server_event, hd.event});
      }
      if (more > 0) {
        Violation& v = add(Check::convergence, "more_differences",
                           "client " + hd.process + "'s final state of " + user_name(hd.user) +
                               " differs from the server's final inbox at " + std::to_string(more) +
                               " more seqs (the client " + holds_text(seqs_held(hi)) +
                               ", the server " + holds_text(seqs_held(server_it->second)) + ")");
        v.client = hd.process;
        v.recipient = hd.user;
        add_refs(v, {server_event, hd.event});
      }
      bool keys_equal = true;
      for (const auto& [t, ver] : client.key) keys_equal &= version_of(server.versions, t) == ver;
      for (const auto& [t, ver] : server.versions) keys_equal &= version_of(client.key, t) == ver;
      if (!keys_equal) {
        Violation& v = add(Check::convergence, "key_differs",
                           "client " + hd.process + "'s sync key " + format_key(client.key) +
                               " differs from the server's versions " +
                               format_key(server.versions) + " for " + user_name(hd.user));
        v.client = hd.process;
        v.recipient = hd.user;
        add_refs(v, {server_event, hd.event});
      }
      check_other_types(hd, client, server, server_event);
    }
  }

  void check_origin() {
    for (const auto& [key, m] : msgs_) {
      if (opt_.require_send_for_every_message && m.invokes.empty()) {
        std::string where = "a server fact";
        size_t event = m.acknowledged_event.value_or(0);
        auto first = held_by_message(key);
        if (!first.empty()) {
          const Obs& o = obs_[first.begin()->second];
          where = describe_holder(o.holder) + " at " + at(o.event);
          event = o.event;
        } else if (!m.ids.empty()) {
          event = m.ids.begin()->second;
          where = "the " + event_label(event) + " at " + at(event);
        } else if (m.members) {
          event = m.members_event;
          where = "the " + event_label(event) + " at " + at(event);
        }
        Violation& v = add(Check::origin, "no_send",
                           describe_message(m) + " appears (first in " + where +
                               ") but no send with client message id " + key.cmid + " from " +
                               user_name(key.sender) + " was recorded");
        set_message(v, m);
        add_refs(v, {event});
      }
      const auto ok_holders = allowed(m);
      if (ok_holders) {
        for (const auto& [r, sa] : m.acked) {
          if (ok_holders->count(r)) continue;
          Violation& v =
              add(Check::origin, "misdelivered",
                  describe_message(m) + " was acknowledged for " + user_name(r) + " at seq " +
                      std::to_string(sa.first) + " (ack at " + at(sa.second) +
                      "), who is neither a recipient (" + intended_text(m) + ") nor the sender");
          set_message(v, m);
          v.recipient = r;
          add_refs(v, {sa.second});
        }
      }
      for (const auto& [r, o] : held_by_message(key)) {
        const Obs& ob = obs_[o];
        if (ok_holders && !ok_holders->count(r)) {
          Violation& v =
              add(Check::origin, "misdelivered",
                  describe_message(m) + " is held for " + user_name(r) + " (in " +
                      describe_holder(ob.holder) + " at " + at(ob.event) +
                      "), who is neither a recipient (" + intended_text(m) + ") nor the sender");
          set_message(v, m);
          v.recipient = r;
          add_refs(v, {ob.event});
        }
        // Altered: copies of it for r with another conversation or body.
        std::string what;
        std::vector<size_t> events;
        std::string client;
        for (const auto& [hi, list] : held_.at({r, key})) {
          std::string here;
          for (size_t x : list) {
            const MessageCopy& cx = *obs_[x].copy;
            if (m.to && cx.to != *m.to) {
              here = "as sent to " + describe(cx.to) + " (it was sent to " + describe(*m.to) + ")";
            } else if (m.body_hash && cx.body_hash && *cx.body_hash != *m.body_hash) {
              here = "with body hash " + std::to_string(*cx.body_hash) + " (the body sent has " +
                     std::to_string(*m.body_hash) + ")";
            }
            if (!here.empty()) break;
          }
          if (here.empty()) continue;
          what +=
              (what.empty() ? "" : "; ") + std::string("in ") + describe_holder(hi) + " " + here;
          events.push_back(obs_[list.front()].event);
          if (holders_[hi].kind != HolderKind::server_final && client.empty()) {
            client = holders_[hi].process;
          }
        }
        if (what.empty()) continue;
        Violation& v = add(Check::origin, "altered",
                           describe_message(m) + " is held for " + user_name(r) + " " + what);
        set_message(v, m);
        v.recipient = r;
        v.client = client;
        for (size_t e : events) v.events.push_back(ref(e));
      }
    }
  }

  // Fills by_message_ once every copy is observed.
  void index_by_message() {
    for (const auto& [rk, by_holder] : held_) {
      size_t first = SIZE_MAX;
      for (const auto& [hi, list] : by_holder) {
        for (size_t o : list) {
          if (first == SIZE_MAX || std::tie(obs_[o].t_ns, o) < std::tie(obs_[first].t_ns, first)) {
            first = o;
          }
        }
      }
      by_message_[rk.second][rk.first] = first;
    }
  }

  struct SeqSource {
    size_t event = 0;
    std::string message_id;
    std::string where;  // "ack" or a holder description
  };

  const History& h_;
  const CheckOptions& opt_;
  MessagingVerdict verdict_;
  std::array<std::vector<Violation>, kCheckCount> found_;
  std::vector<size_t> order_;  // event indices by (time, index)
  std::vector<Op> ops_;        // in invoke order
  std::map<MsgKey, MessageInfo> msgs_;
  std::map<std::string, std::map<MsgKey, size_t>> id_owners_;  // id -> message -> first event
  std::vector<Holder> holders_;
  std::map<UserId, size_t> server_holder_;
  std::map<UserId, std::vector<size_t>> client_holders_;
  std::map<std::pair<std::string, UserId>, size_t> stream_holder_;
  std::vector<std::vector<size_t>> stream_syncs_;  // in stream_holder_ order
  // Per stream, per sync (as in stream_syncs_): the observations received.
  std::vector<std::vector<std::vector<size_t>>> stream_obs_;
  std::vector<Obs> obs_;
  // (recipient, message) -> holder -> observations
  std::map<std::pair<UserId, MsgKey>, std::map<size_t, std::vector<size_t>>> held_;
  // message -> recipient -> earliest observation
  std::map<MsgKey, std::map<UserId, size_t>> by_message_;
  // (recipient, seq) -> message -> first source
  std::map<std::pair<UserId, Seq>, std::map<MsgKey, SeqSource>> seq_sources_;
};

}  // namespace

std::string_view to_string(Check check) {
  switch (check) {
    case Check::history:
      return "history";
    case Check::lost:
      return "lost";
    case Check::duplicated:
      return "duplicated";
    case Check::order:
      return "order";
    case Check::convergence:
      return "convergence";
    case Check::origin:
      return "origin";
  }
  return "?";
}

std::vector<const Violation*> MessagingVerdict::of(Check check) const {
  std::vector<const Violation*> out;
  for (const auto& v : violations) {
    if (v.check == check) out.push_back(&v);
  }
  return out;
}

MessagingVerdict check_messaging(const History& history, const CheckOptions& options) {
  Checker checker(history, options);
  return checker.run();
}

std::string format_violation(const Violation& violation, std::string_view context) {
  std::string out = std::string(to_string(violation.check)) + ": " + violation.text;
  if (!context.empty()) out += "; " + std::string(context);
  return out;
}

std::string format_verdict(const MessagingVerdict& verdict, size_t violations_max) {
  const auto& s = verdict.stats;
  std::string out = "messaging check: ";
  out += verdict.ok() ? "passed"
                      : "FAILED, " + std::to_string(verdict.violations.size()) + " violation" +
                            (verdict.violations.size() == 1 ? "" : "s");
  if (!verdict.context.empty()) out += " (" + verdict.context + ")";
  out += "\n  checks:";
  for (size_t c = 0; c < kCheckCount; ++c) {
    const size_t n = verdict.violations_per_check[c];
    out += std::string(c == 0 ? " " : ", ") + std::string(to_string(static_cast<Check>(c))) +
           (n == 0 ? " pass" : " FAIL (" + std::to_string(n) + ")");
  }
  out += "\n  history: " + std::to_string(s.events) + " events; " +
         std::to_string(s.send_attempts) + " send attempts (" + std::to_string(s.sends_ok) +
         " ok, " + std::to_string(s.sends_fail) + " fail, " + std::to_string(s.sends_unknown) +
         " unknown); " + std::to_string(s.messages) + " messages, " +
         std::to_string(s.messages_acknowledged) + " acknowledged; " +
         std::to_string(s.deliveries_required) + " deliveries required; " +
         std::to_string(s.syncs_ok) + " syncs ok; " + std::to_string(s.client_finals) +
         " client final states; " + std::to_string(s.server_finals) + " server final states\n";
  size_t shown = 0;
  for (const auto& v : verdict.violations) {
    if (shown == violations_max) break;
    ++shown;
    out += format_violation(v, verdict.context) + "\n";
    if (!v.events.empty()) {
      out += "    events:";
      for (size_t i = 0; i < v.events.size(); ++i) {
        const EventRef& e = v.events[i];
        out += std::string(i == 0 ? " " : "; ") + "#" + std::to_string(e.index) + " " + e.label +
               " by " + e.process + " at " + format_time(e.t_ns);
      }
      out += "\n";
    }
  }
  if (shown < verdict.violations.size()) {
    out += "  (and " + std::to_string(verdict.violations.size() - shown) + " more violations)\n";
  }
  return out;
}

}  // namespace wx::checkers::messaging
