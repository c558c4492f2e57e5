#include "checkers/history.h"

#include <cstdio>

namespace wx::checkers::messaging {

OpKind op_kind(const Request& request) {
  return static_cast<OpKind>(request.index());
}

OpKind op_kind(const Result& result) {
  return static_cast<OpKind>(result.index());
}

std::string_view to_string(OpKind kind) {
  switch (kind) {
    case OpKind::send:
      return "send";
    case OpKind::sync:
      return "sync";
    case OpKind::login:
      return "login";
    case OpKind::contacts:
      return "contacts";
    case OpKind::register_account:
      return "register";
  }
  return "?";
}

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return "ok";
    case Outcome::fail:
      return "fail";
    case Outcome::info:
      return "info";
  }
  return "?";
}

std::string_view to_string(ConversationKind kind) {
  switch (kind) {
    case ConversationKind::user:
      return "user";
    case ConversationKind::group:
      return "group";
  }
  return "?";
}

std::optional<OpKind> parse_op_kind(std::string_view name) {
  for (OpKind k :
       {OpKind::send, OpKind::sync, OpKind::login, OpKind::contacts, OpKind::register_account}) {
    if (to_string(k) == name) return k;
  }
  return std::nullopt;
}

std::optional<Outcome> parse_outcome(std::string_view name) {
  for (Outcome o : {Outcome::ok, Outcome::fail, Outcome::info}) {
    if (to_string(o) == name) return o;
  }
  return std::nullopt;
}

std::optional<ConversationKind> parse_conversation_kind(std::string_view name) {
  for (ConversationKind k : {ConversationKind::user, ConversationKind::group}) {
    if (to_string(k) == name) return k;
  }
  return std::nullopt;
}

std::string_view event_name(const Event& event) {
  struct Visitor {
    std::string_view operator()(const Invoke&) const { return "invoke"; }
    std::string_view operator()(const Completion& c) const { return to_string(c.outcome); }
    std::string_view operator()(const SendAck&) const { return "ack"; }
    std::string_view operator()(const GroupMembers&) const { return "group_members"; }
    std::string_view operator()(const ServerFinal&) const { return "server_final"; }
    std::string_view operator()(const ClientFinal&) const { return "client_final"; }
  };
  return std::visit(Visitor{}, event.body);
}

std::string describe(const Conversation& to) {
  if (to.kind == ConversationKind::group) return "group g" + std::to_string(to.id);
  return "u" + std::to_string(to.id);
}

std::string format_time(int64_t t_ns) {
  const bool negative = t_ns < 0;
  // Magnitude as unsigned, so INT64_MIN is printable too.
  const uint64_t mag =
      negative ? static_cast<uint64_t>(-(t_ns + 1)) + 1 : static_cast<uint64_t>(t_ns);
  char frac[16];
  std::snprintf(frac, sizeof frac, "%09llu",
                static_cast<unsigned long long>(mag % 1'000'000'000ULL));
  std::string f(frac);
  // Keep at least milliseconds, drop trailing zeros beyond.
  while (f.size() > 3 && f.back() == '0') f.pop_back();
  return std::string(negative ? "-" : "") + std::to_string(mag / 1'000'000'000ULL) + "." + f + "s";
}

}  // namespace wx::checkers::messaging
