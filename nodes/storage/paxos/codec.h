// Encoding, decoding and validation of Paxos messages (paxos.proto).
//
// validate_message() states what a well-formed Message of each type looks
// like: known type, distinct non-zero endpoints, ballots owned by the right
// side, entries consecutive or increasing as the type requires, sizes within
// kMessageEntriesMax / kCommandBytesMax. It is applied on both sides (pair
// assertions, STYLE.md): encode_message() asserts it — producing a malformed
// message is a bug — and decode_message() returns its error — receiving one is
// an input to reject. Nothing here throws on bad input or aborts on it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "nodes/storage/paxos/types.h"

namespace wx::paxos {

// Empty if `m` is well-formed, else what is wrong with it.
std::string validate_message(const Message& m);

// Serialized paxos.proto Message. `m` must be well-formed (asserted).
std::string encode_message(const Message& m);

struct DecodeResult {
  std::optional<Message> message;
  std::string error;  // set iff !message

  bool ok() const { return message.has_value(); }
};

// Parses and validates; never crashes on arbitrary bytes.
DecodeResult decode_message(std::string_view bytes);

}  // namespace wx::paxos
