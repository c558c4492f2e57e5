// The messaging history (checkers/history.h) as JSON lines: one event per
// line, one JSON object per event. This is the file a real cluster's clients
// and servers write and the checker reads; the simulator writes the same.
//
// Reading never trusts its input: any byte sequence gives either events or
// errors, each naming the line (1-based) and the field (a path such as
// "messages[3].seq"), never a crash. Strict on purpose: every required field
// must be present with its type, and an unknown field is an error (a typo in
// an optional field would otherwise drop data silently). Blank lines are
// skipped; a file with no event at all is an error. Events may come in any
// order (files of several recorders may be concatenated).
//
// The schema, field by field: docs/messaging-history.md.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "checkers/history.h"

namespace wx::checkers::messaging {

// Limits on untrusted input.
inline constexpr size_t kLineBytesMax = size_t{256} << 20;   // one event
inline constexpr size_t kHistoryBytesMax = size_t{4} << 30;  // a whole stream
inline constexpr size_t kNestingDepthMax = 16;               // JSON objects/arrays
inline constexpr size_t kParseErrorsMaxDefault = 20;

struct ParseError {
  size_t line = 0;    // 1-based line number; 0 for an I/O error (no line)
  std::string field;  // the offending field's path; empty when the line as a whole is bad
  std::string message;
};

// "line 12: field \"messages[3].seq\": expected an unsigned integer, got a string"
std::string format_parse_error(const ParseError& error);

struct ReadResult {
  History history;                  // the events of the well-formed lines, in file order
  std::vector<size_t> event_lines;  // event_lines[i]: the line history[i] came from
  std::vector<ParseError> errors;   // the first `errors_max` errors, in line order
  size_t errors_total = 0;          // including those not kept
  bool ok() const { return errors_total == 0; }
};

// Decodes one line (without its newline). `line_number` only labels errors.
std::variant<Event, ParseError> decode_event(std::string_view line, size_t line_number);

// Reads a whole JSON-lines text / stream / file. Never throws on bad content.
ReadResult parse_history_jsonl(std::string_view text, size_t errors_max = kParseErrorsMaxDefault);
ReadResult read_history_jsonl(std::istream& in, size_t errors_max = kParseErrorsMaxDefault);
ReadResult read_history_file(const std::string& path, size_t errors_max = kParseErrorsMaxDefault);

// One event as one line of JSON (no newline); fields in a fixed order, so
// the same event always gives the same bytes. Throws std::invalid_argument
// when the event cannot be written so that it reads back the same: a string
// that is not valid UTF-8, an empty id, a Completion whose result does not
// match its outcome and kind.
std::string encode_event(const Event& event);

// Every event, one per line, each followed by '\n'. Throws as encode_event
// (naming the event's index) or std::runtime_error when the stream fails.
void write_history_jsonl(std::ostream& out, const History& history);
void write_history_file(const std::string& path, const History& history);

}  // namespace wx::checkers::messaging
