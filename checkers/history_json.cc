#include "checkers/history_json.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace wx::checkers::messaging {
namespace {

// ordered_json keeps fields in insertion order, so written lines read
// "t_ns, process, event, ..." and the same event always gives the same bytes.
using Json = nlohmann::ordered_json;

// --- error text ------------------------------------------------------------

// Printable, bounded rendering of untrusted text for error messages.
std::string printable(std::string_view s, size_t bytes_max = 60) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < bytes_max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > bytes_max) out += "...";
  return out;
}

std::string type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::number_integer:
      return "a negative integer";
    case Json::value_t::number_unsigned:
      return "an unsigned integer";
    case Json::value_t::number_float:
      return "a number with a fraction or an exponent (or too large)";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::binary:
      return "binary data";
    case Json::value_t::discarded:
      return "nothing";
  }
  return "an unknown value";
}

// Thrown inside one line's decoding, caught by decode_event.
struct FieldError {
  std::string field;
  std::string message;
};

[[noreturn]] void fail(std::string field, std::string message) {
  throw FieldError{std::move(field), std::move(message)};
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index_path(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// --- typed access to one JSON value ------------------------------------------

uint64_t as_u64(const Json& j, const std::string& path) {
  if (!j.is_number_unsigned()) fail(path, "expected an unsigned integer, got " + type_name(j));
  return j.get<uint64_t>();
}

int64_t as_i64(const Json& j, const std::string& path) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(path, "integer out of range (above 2^63 - 1)");
    }
    return static_cast<int64_t>(v);
  }
  if (!j.is_number_integer()) fail(path, "expected an integer, got " + type_name(j));
  return j.get<int64_t>();
}

std::string as_string(const Json& j, const std::string& path, bool nonempty) {
  if (!j.is_string()) fail(path, "expected a string, got " + type_name(j));
  std::string s = j.get<std::string>();
  if (nonempty && s.empty()) fail(path, "must not be empty");
  return s;
}

bool as_bool(const Json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "expected true or false, got " + type_name(j));
  return j.get<bool>();
}

const Json& as_array(const Json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "expected an array, got " + type_name(j));
  return j;
}

// One JSON object being decoded. Every key the decoder looks up is marked;
// `finish()` rejects any key that was never looked up (an unknown field).
class Obj {
 public:
  Obj(const Json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) {
      fail(path_, "expected an object, got " + type_name(j_));
    }
  }

  const Json* find(std::string_view key) {
    used_.insert(std::string(key));
    auto it = j_.find(std::string(key));
    return it == j_.end() ? nullptr : &*it;
  }
  const Json& need(std::string_view key) {
    const Json* v = find(key);
    if (v == nullptr) fail(at(key), "missing");
    return *v;
  }
  std::string at(std::string_view key) const { return join(path_, key); }

  uint64_t u64(std::string_view key) { return as_u64(need(key), at(key)); }
  int64_t i64(std::string_view key) { return as_i64(need(key), at(key)); }
  std::string str(std::string_view key, bool nonempty) {
    return as_string(need(key), at(key), nonempty);
  }
  std::optional<uint64_t> opt_u64(std::string_view key) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return as_u64(*v, at(key));
  }
  std::optional<std::string> opt_str(std::string_view key, bool nonempty) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return as_string(*v, at(key), nonempty);
  }
  std::optional<bool> opt_bool(std::string_view key) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return as_bool(*v, at(key));
  }

  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (used_.count(it.key()) == 0) {
        fail(join(path_, printable(it.key())), "unknown field");
      }
    }
  }

 private:
  const Json& j_;
  std::string path_;
  std::set<std::string> used_;
};

// --- decoding the parts ----------------------------------------------------

Conversation decode_conversation(const Json& j, const std::string& path) {
  Obj o(j, path);
  Conversation c;
  const std::string kind = o.str("kind", true);
  const auto k = parse_conversation_kind(kind);
  if (!k) fail(o.at("kind"), "expected \"user\" or \"group\", got \"" + printable(kind) + "\"");
  c.kind = *k;
  c.id = o.u64("id");
  o.finish();
  return c;
}

SyncKey decode_key(const Json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object {data type: version}, got " + type_name(j));
  SyncKey key;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().empty()) fail(path, "a data type name must not be empty");
    key[it.key()] = as_u64(it.value(), join(path, printable(it.key())));
  }
  return key;
}

MessageCopy decode_copy(const Json& j, const std::string& path) {
  Obj o(j, path);
  MessageCopy m;
  m.recipient = o.u64("recipient");
  m.seq = o.u64("seq");
  m.message_id = o.str("message_id", true);
  m.sender = o.u64("sender");
  m.client_msg_id = o.str("client_msg_id", true);
  m.to = decode_conversation(o.need("to"), o.at("to"));
  m.body_hash = o.opt_u64("body_hash");
  o.finish();
  return m;
}

std::vector<MessageCopy> decode_copies(Obj& o, std::string_view key) {
  const std::string path = o.at(key);
  const Json& a = as_array(o.need(key), path);
  std::vector<MessageCopy> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) out.push_back(decode_copy(a[i], index_path(path, i)));
  return out;
}

std::vector<UserId> decode_users(const Json& j, const std::string& path) {
  as_array(j, path);
  std::vector<UserId> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) out.push_back(as_u64(j[i], index_path(path, i)));
  return out;
}

ProfileFields decode_profile(const Json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object {field: text}, got " + type_name(j));
  ProfileFields out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().empty()) fail(path, "a profile field name must not be empty");
    out[it.key()] = as_string(it.value(), join(path, printable(it.key())), false);
  }
  return out;
}

OpKind decode_op(Obj& o) {
  const std::string name = o.str("op", true);
  const auto k = parse_op_kind(name);
  if (!k) {
    fail("op", "unknown operation \"" + printable(name) +
                   "\" (expected send, sync, login, contacts or register)");
  }
  return *k;
}

Request decode_request(Obj& o, OpKind op) {
  switch (op) {
    case OpKind::send: {
      SendRequest r;
      r.user = o.u64("user");
      r.to = decode_conversation(o.need("to"), o.at("to"));
      r.client_msg_id = o.str("client_msg_id", true);
      r.body_hash = o.opt_u64("body_hash");
      return r;
    }
    case OpKind::sync: {
      SyncRequest r;
      r.user = o.u64("user");
      r.key = decode_key(o.need("key"), o.at("key"));
      return r;
    }
    case OpKind::login: {
      LoginRequest r;
      r.user = o.u64("user");
      r.device = o.opt_str("device", false).value_or("");
      return r;
    }
    case OpKind::contacts: {
      ContactsRequest r;
      r.user = o.u64("user");
      r.action = o.str("action", true);
      r.contact = o.opt_u64("contact");
      return r;
    }
    case OpKind::register_account: {
      RegisterRequest r;
      r.account_id = o.str("account_id", true);
      r.nonce = o.opt_u64("nonce");
      return r;
    }
  }
  fail("op", "unsupported operation");
}

Result decode_result(Obj& o, OpKind op) {
  switch (op) {
    case OpKind::send:
      return SendResult{o.str("message_id", true)};
    case OpKind::sync: {
      SyncResult r;
      r.key = decode_key(o.need("key"), o.at("key"));
      r.messages = decode_copies(o, "messages");
      return r;
    }
    case OpKind::login:
      return LoginResult{};
    case OpKind::contacts: {
      ContactsResult r;
      r.version = o.opt_u64("version");
      r.changed = o.opt_bool("changed");
      if (const Json* c = o.find("contacts")) r.contacts = decode_users(*c, o.at("contacts"));
      return r;
    }
    case OpKind::register_account:
      return RegisterResult{o.u64("uid")};
  }
  fail("op", "unsupported operation");
}

EventBody decode_body(Obj& o, const std::string& kind) {
  if (kind == "invoke") {
    Invoke inv;
    const OpKind op = decode_op(o);
    inv.op_id = o.u64("op_id");
    inv.request = decode_request(o, op);
    return inv;
  }
  if (const auto outcome = parse_outcome(kind)) {
    Completion c;
    c.op = decode_op(o);
    c.op_id = o.u64("op_id");
    c.outcome = *outcome;
    if (c.outcome == Outcome::ok) {
      c.result = decode_result(o, c.op);
    } else {
      c.error = o.opt_str("error", false).value_or("");
    }
    return c;
  }
  if (kind == "ack") {
    SendAck a;
    a.message_id = o.str("message_id", true);
    a.sender = o.u64("sender");
    a.client_msg_id = o.str("client_msg_id", true);
    a.to = decode_conversation(o.need("to"), o.at("to"));
    const std::string path = o.at("recipients");
    const Json& rs = as_array(o.need("recipients"), path);
    for (size_t i = 0; i < rs.size(); ++i) {
      Obj r(rs[i], index_path(path, i));
      a.recipients.push_back(RecipientSeq{r.u64("user"), r.u64("seq")});
      r.finish();
    }
    return a;
  }
  if (kind == "group_members") {
    GroupMembers g;
    g.group = o.u64("group");
    g.sender = o.u64("sender");
    g.client_msg_id = o.str("client_msg_id", true);
    g.message_id = o.opt_str("message_id", true).value_or("");
    g.members = decode_users(o.need("members"), o.at("members"));
    return g;
  }
  if (kind == "server_final") {
    ServerFinal s;
    s.user = o.u64("user");
    s.inbox = decode_copies(o, "inbox");
    s.versions = decode_key(o.need("versions"), o.at("versions"));
    if (const Json* c = o.find("contacts")) s.contacts = decode_users(*c, o.at("contacts"));
    if (const Json* p = o.find("profile")) s.profile = decode_profile(*p, o.at("profile"));
    return s;
  }
  if (kind == "client_final") {
    ClientFinal c;
    c.user = o.u64("user");
    c.messages = decode_copies(o, "messages");
    c.key = decode_key(o.need("key"), o.at("key"));
    if (const Json* u = o.find("contacts")) c.contacts = decode_users(*u, o.at("contacts"));
    if (const Json* p = o.find("profile")) c.profile = decode_profile(*p, o.at("profile"));
    return c;
  }
  fail("event", "unknown event kind \"" + printable(kind) +
                    "\" (expected invoke, ok, fail, info, ack, group_members, server_final or "
                    "client_final)");
}

// Nesting depth of JSON brackets outside strings (a cheap guard before the
// parser sees a line of 10^8 '[').
bool nesting_too_deep(std::string_view line) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kNestingDepthMax) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// Strips nlohmann's "[json.exception.parse_error.101] " prefix.
std::string parse_error_text(const std::exception& e) {
  std::string w = e.what();
  if (const auto p = w.find("] "); w.rfind("[json.exception", 0) == 0 && p != std::string::npos) {
    w = w.substr(p + 2);
  }
  return printable(w, 200);
}

// --- encoding --------------------------------------------------------------

void require_nonempty(const std::string& s, const char* what) {
  if (s.empty()) throw std::invalid_argument(std::string(what) + " must not be empty");
}

Json encode_conversation(const Conversation& c) {
  Json j = Json::object();
  j["kind"] = std::string(to_string(c.kind));
  j["id"] = c.id;
  return j;
}

Json encode_key(const SyncKey& key) {
  Json j = Json::object();
  for (const auto& [type, version] : key) {
    require_nonempty(type, "a sync key's data type");
    j[type] = version;
  }
  return j;
}

Json encode_copy(const MessageCopy& m) {
  require_nonempty(m.message_id, "message_id");
  require_nonempty(m.client_msg_id, "client_msg_id");
  Json j = Json::object();
  j["recipient"] = m.recipient;
  j["seq"] = m.seq;
  j["message_id"] = m.message_id;
  j["sender"] = m.sender;
  j["client_msg_id"] = m.client_msg_id;
  j["to"] = encode_conversation(m.to);
  if (m.body_hash) j["body_hash"] = *m.body_hash;
  return j;
}

Json encode_copies(const std::vector<MessageCopy>& ms) {
  Json a = Json::array();
  for (const auto& m : ms) a.push_back(encode_copy(m));
  return a;
}

Json encode_users(const std::vector<UserId>& us) {
  Json a = Json::array();
  for (UserId u : us) a.push_back(u);
  return a;
}

void encode_request(Json& j, const Request& request) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, SendRequest>) {
          require_nonempty(r.client_msg_id, "client_msg_id");
          j["user"] = r.user;
          j["to"] = encode_conversation(r.to);
          j["client_msg_id"] = r.client_msg_id;
          if (r.body_hash) j["body_hash"] = *r.body_hash;
        } else if constexpr (std::is_same_v<T, SyncRequest>) {
          j["user"] = r.user;
          j["key"] = encode_key(r.key);
        } else if constexpr (std::is_same_v<T, LoginRequest>) {
          j["user"] = r.user;
          if (!r.device.empty()) j["device"] = r.device;
        } else if constexpr (std::is_same_v<T, ContactsRequest>) {
          require_nonempty(r.action, "action");
          j["user"] = r.user;
          j["action"] = r.action;
          if (r.contact) j["contact"] = *r.contact;
        } else {
          static_assert(std::is_same_v<T, RegisterRequest>);
          require_nonempty(r.account_id, "account_id");
          j["account_id"] = r.account_id;
          if (r.nonce) j["nonce"] = *r.nonce;
        }
      },
      request);
}

Json encode_profile(const ProfileFields& p) {
  Json j = Json::object();
  for (const auto& [field, value] : p) {
    require_nonempty(field, "profile field name");
    j[field] = value;
  }
  return j;
}

void encode_result(Json& j, const Result& result) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, SendResult>) {
          require_nonempty(r.message_id, "message_id");
          j["message_id"] = r.message_id;
        } else if constexpr (std::is_same_v<T, SyncResult>) {
          j["key"] = encode_key(r.key);
          j["messages"] = encode_copies(r.messages);
        } else if constexpr (std::is_same_v<T, LoginResult>) {
          // nothing
        } else if constexpr (std::is_same_v<T, ContactsResult>) {
          if (r.version) j["version"] = *r.version;
          if (r.changed) j["changed"] = *r.changed;
          if (r.contacts) j["contacts"] = encode_users(*r.contacts);
        } else {
          static_assert(std::is_same_v<T, RegisterResult>);
          j["uid"] = r.uid;
        }
      },
      result);
}

Json encode_json(const Event& e) {
  require_nonempty(e.process, "process");
  Json j = Json::object();
  j["t_ns"] = e.t_ns;
  j["process"] = e.process;
  j["event"] = std::string(event_name(e));
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Invoke>) {
          j["op"] = std::string(to_string(op_kind(b.request)));
          j["op_id"] = b.op_id;
          encode_request(j, b.request);
        } else if constexpr (std::is_same_v<T, Completion>) {
          j["op"] = std::string(to_string(b.op));
          j["op_id"] = b.op_id;
          if (b.outcome == Outcome::ok) {
            if (!b.result) throw std::invalid_argument("an ok completion needs a result");
            if (op_kind(*b.result) != b.op) {
              throw std::invalid_argument("the completion's result is not of its op kind");
            }
            encode_result(j, *b.result);
          } else {
            if (b.result) throw std::invalid_argument("only an ok completion carries a result");
            if (!b.error.empty()) j["error"] = b.error;
          }
        } else if constexpr (std::is_same_v<T, SendAck>) {
          require_nonempty(b.message_id, "message_id");
          require_nonempty(b.client_msg_id, "client_msg_id");
          j["message_id"] = b.message_id;
          j["sender"] = b.sender;
          j["client_msg_id"] = b.client_msg_id;
          j["to"] = encode_conversation(b.to);
          Json rs = Json::array();
          for (const auto& r : b.recipients) {
            Json x = Json::object();
            x["user"] = r.user;
            x["seq"] = r.seq;
            rs.push_back(std::move(x));
          }
          j["recipients"] = std::move(rs);
        } else if constexpr (std::is_same_v<T, GroupMembers>) {
          require_nonempty(b.client_msg_id, "client_msg_id");
          j["group"] = b.group;
          j["sender"] = b.sender;
          j["client_msg_id"] = b.client_msg_id;
          if (!b.message_id.empty()) j["message_id"] = b.message_id;
          j["members"] = encode_users(b.members);
        } else if constexpr (std::is_same_v<T, ServerFinal>) {
          j["user"] = b.user;
          j["inbox"] = encode_copies(b.inbox);
          j["versions"] = encode_key(b.versions);
          if (b.contacts) j["contacts"] = encode_users(*b.contacts);
          if (b.profile) j["profile"] = encode_profile(*b.profile);
        } else {
          static_assert(std::is_same_v<T, ClientFinal>);
          j["user"] = b.user;
          j["messages"] = encode_copies(b.messages);
          j["key"] = encode_key(b.key);
          if (b.contacts) j["contacts"] = encode_users(*b.contacts);
          if (b.profile) j["profile"] = encode_profile(*b.profile);
        }
      },
      e.body);
  return j;
}

}  // namespace

std::string format_parse_error(const ParseError& error) {
  std::string out = error.line == 0 ? std::string("input") : "line " + std::to_string(error.line);
  out += ": ";
  if (!error.field.empty()) out += "field \"" + error.field + "\": ";
  return out + error.message;
}

std::variant<Event, ParseError> decode_event(std::string_view line, size_t line_number) {
  if (line.size() > kLineBytesMax) {
    return ParseError{line_number, "",
                      "line longer than " + std::to_string(kLineBytesMax) + " bytes"};
  }
  if (nesting_too_deep(line)) {
    return ParseError{line_number, "",
                      "JSON nested deeper than " + std::to_string(kNestingDepthMax) + " levels"};
  }
  Json j;
  try {
    j = Json::parse(line.begin(), line.end());
  } catch (const Json::parse_error& e) {
    return ParseError{line_number, "", "not valid JSON: " + parse_error_text(e)};
  } catch (const std::exception& e) {
    return ParseError{line_number, "", "not valid JSON: " + parse_error_text(e)};
  }
  try {
    Obj o(j, "");
    Event e;
    const std::string kind = o.str("event", true);
    e.t_ns = o.i64("t_ns");
    e.process = o.str("process", true);
    e.body = decode_body(o, kind);
    o.finish();
    return e;
  } catch (const FieldError& fe) {
    return ParseError{line_number, fe.field, fe.message};
  } catch (const std::exception& ex) {
    // A nlohmann accessor we did not guard; still an error, never a crash.
    return ParseError{line_number, "", "unreadable event: " + parse_error_text(ex)};
  }
}

ReadResult parse_history_jsonl(std::string_view text, size_t errors_max) {
  ReadResult out;
  auto add_error = [&](ParseError e) {
    ++out.errors_total;
    if (out.errors.size() < errors_max) out.errors.push_back(std::move(e));
  };
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_number;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
    auto decoded = decode_event(line, line_number);
    if (auto* e = std::get_if<Event>(&decoded)) {
      out.history.push_back(std::move(*e));
      out.event_lines.push_back(line_number);
    } else {
      add_error(std::get<ParseError>(std::move(decoded)));
    }
  }
  if (out.history.empty() && out.errors_total == 0) {
    add_error(ParseError{line_number == 0 ? 1 : line_number, "",
                         "the history is empty: no event in the input"});
  }
  return out;
}

ReadResult read_history_jsonl(std::istream& in, size_t errors_max) {
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kHistoryBytesMax) {
      ReadResult r;
      r.errors.push_back(
          ParseError{0, "", "input longer than " + std::to_string(kHistoryBytesMax) + " bytes"});
      r.errors_total = 1;
      return r;
    }
  }
  if (in.bad()) {
    ReadResult r;
    r.errors.push_back(ParseError{0, "", "read error"});
    r.errors_total = 1;
    return r;
  }
  return parse_history_jsonl(text, errors_max);
}

ReadResult read_history_file(const std::string& path, size_t errors_max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ReadResult r;
    r.errors.push_back(ParseError{0, "", "cannot open " + path + ": " + std::strerror(errno)});
    r.errors_total = 1;
    return r;
  }
  return read_history_jsonl(in, errors_max);
}

std::string encode_event(const Event& event) {
  const Json j = encode_json(event);
  try {
    return j.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::type_error&) {
    throw std::invalid_argument("a string of the event is not valid UTF-8");
  }
}

void write_history_jsonl(std::ostream& out, const History& history) {
  for (size_t i = 0; i < history.size(); ++i) {
    std::string line;
    try {
      line = encode_event(history[i]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("event #" + std::to_string(i) + " (" +
                                  std::string(event_name(history[i])) + "): " + e.what());
    }
    out << line << '\n';
    if (!out) throw std::runtime_error("writing the history failed at event #" + std::to_string(i));
  }
}

void write_history_file(const std::string& path, const History& history) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  write_history_jsonl(out, history);
  out.flush();
  if (!out) throw std::runtime_error("writing " + path + " failed");
}

}  // namespace wx::checkers::messaging
