// The messaging checker: judges a recorded history (checkers/history.h) of
// sends, syncs, server acknowledgements and final states. It reads nothing
// but the history, so it judges a simulation and a real cluster alike.
//
// Checks (each has its own pass/fail in the verdict; the rules in full, with
// the reasons, are in docs/messaging-history.md):
//   history      the history is consistent with itself (every completion has
//                its invoke, attempts of one client message agree, a group
//                send that must be delivered has its membership fact, ...).
//                When it fails the other verdicts may be unreliable.
//   lost         no acknowledged message is lost: a message whose send
//                completed ok, or that the server acknowledged, is in the
//                final synced state of every intended recipient (1:1: the
//                peer; group: every member at send time except the sender)
//                and of every recipient the server acknowledged; and a
//                message any allowed holder was seen holding stays held.
//   duplicated   each message at most once per recipient (by message id and
//                by the sender's client message id: a retried send is stored
//                once), and one message id per client message.
//   order        per client, the seqs received strictly increase across its
//                syncs and stay within (presented key, new key]; a sync key
//                never goes backwards; a message has one seq per recipient,
//                the one the server acknowledged; a seq names one message.
//   convergence  each client's final state equals the server's final inbox
//                for its user (the same seq -> message id pairs), its sync
//                key equals the server's versions, and its synced contact set
//                and profile equal the server's (every data type).
//   origin       every message held comes from a recorded send, reaches only
//                its intended recipients (or the sender's own devices), keeps
//                its conversation and body, and a message id names one
//                message.
// Sends that failed or whose outcome is unknown may or may not be delivered,
// but never twice.
//
// Deterministic: the same history gives the same verdict and report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkers/history.h"

namespace wx::checkers::messaging {

enum class Check : uint8_t { history, lost, duplicated, order, convergence, origin };
inline constexpr size_t kCheckCount = 6;
std::string_view to_string(Check check);

struct CheckOptions {
  // Free text printed with every violation (the caller puts the seed here).
  std::string context;
  // A recipient a message must reach but who has no client final state is a
  // `lost` violation ("cannot confirm delivery"). Off: such recipients are
  // judged on the server's final inbox alone.
  bool require_client_final_for_recipients = true;
  // A message held somewhere whose (sender, client message id) was never
  // invoked as a send is an `origin` violation.
  bool require_send_for_every_message = true;
  // Per client final state, at most this many `convergence` differences are
  // reported one by one (the rest are counted in one more violation).
  size_t convergence_differences_max_per_client = 20;
};

// An event a violation points at.
struct EventRef {
  size_t index = 0;  // in the history vector
  int64_t t_ns = 0;
  std::string process;
  std::string label;  // e.g. "send ok", "client_final of u9"
};

struct Violation {
  Check check = Check::history;
  std::string kind;  // a short name within the check, e.g. "missing", "two_seqs"
  // The message concerned; message_id / client_msg_id empty when none.
  std::string message_id;
  UserId sender = 0;
  std::string client_msg_id;
  std::optional<Conversation> to;
  std::optional<UserId> recipient;  // the recipient concerned, if any
  std::string client;               // the client (process) concerned, if any
  std::vector<EventRef> events;     // the events that show it
  std::string text;                 // the explanation, one sentence
};

struct CheckStats {
  size_t events = 0;
  size_t send_attempts = 0;
  size_t sends_ok = 0;
  size_t sends_fail = 0;
  size_t sends_unknown = 0;
  size_t messages = 0;  // distinct (sender, client message id)
  size_t messages_acknowledged = 0;
  size_t deliveries_required = 0;  // (message, recipient) pairs that must be held
  size_t syncs_ok = 0;
  size_t client_finals = 0;
  size_t server_finals = 0;
};

struct MessagingVerdict {
  std::string context;
  std::array<size_t, kCheckCount> violations_per_check{};
  std::vector<Violation> violations;  // grouped by check, in Check order
  CheckStats stats;

  bool passed(Check check) const { return violations_per_check[static_cast<size_t>(check)] == 0; }
  bool ok() const { return violations.empty(); }
  // The violations of one check.
  std::vector<const Violation*> of(Check check) const;
};

MessagingVerdict check_messaging(const History& history, const CheckOptions& options = {});

// One line: "lost: message m17 (client id c3-42 from u3 to group g2,
// acknowledged at 12.345s) missing from recipient u9's synced state (...);
// seed 7".
std::string format_violation(const Violation& violation, std::string_view context);

// The whole report: a summary line, one line per check, then each violation
// (at most `violations_max`, the rest counted) with the events it points at.
std::string format_verdict(const MessagingVerdict& verdict, size_t violations_max = 50);

}  // namespace wx::checkers::messaging
