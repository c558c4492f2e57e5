#include "nodes/logic/ticket/ticket.h"

#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>

#include <cassert>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>

#include "nodes/logic/ticket/ticket.pb.h"

namespace wx::ticket {

namespace {

std::string_view as_chars(const HmacSha256& mac) {
  return {reinterpret_cast<const char*>(mac.data()), mac.size()};
}

bool has_unknown_fields(const google::protobuf::Message& m) {
  return !m.GetReflection()->GetUnknownFields(m).empty();
}

TicketCheck refused(TicketStatus status) {
  TicketCheck c;
  c.status = status;
  return c;
}

}  // namespace

std::string_view to_string(TicketStatus status) {
  switch (status) {
    case TicketStatus::ok:
      return "ok";
    case TicketStatus::malformed:
      return "malformed";
    case TicketStatus::unknown_key:
      return "unknown_key";
    case TicketStatus::bad_signature:
      return "bad_signature";
    case TicketStatus::not_yet_valid:
      return "not_yet_valid";
    case TicketStatus::expired:
      return "expired";
    case TicketStatus::wrong_user:
      return "wrong_user";
  }
  return "unknown";
}

bool KeyRing::secret_acceptable(std::string_view secret) {
  if (secret.size() != kTicketKeyBytes) return false;
  // 32 zero bytes is what an unset or zero-filled config slot looks like.
  for (char c : secret) {
    if (c != 0) return true;
  }
  return false;
}

std::string KeyRing::validate(const KeyRingConfig& config) {
  if (config.keys.empty()) return "no keys";
  if (config.keys.size() > kTicketKeysMax)
    return "more than " + std::to_string(kTicketKeysMax) + " keys";
  std::set<KeyId> ids;
  for (const TicketKey& k : config.keys) {
    if (k.id == 0) return "key id 0";
    if (!ids.insert(k.id).second) return "duplicate key id " + std::to_string(k.id);
    if (k.secret.size() != kTicketKeyBytes) {
      return "key " + std::to_string(k.id) + ": secret is " + std::to_string(k.secret.size()) +
             " bytes, not " + std::to_string(kTicketKeyBytes);
    }
    if (!secret_acceptable(k.secret)) return "key " + std::to_string(k.id) + ": secret is all zero";
  }
  if (ids.count(config.current_key_id) == 0)
    return "current key id " + std::to_string(config.current_key_id) + " is not among the keys";
  if (config.ttl_max <= Duration::zero()) return "ttl_max is not positive";
  if (config.clock_skew_max < Duration::zero()) return "clock_skew_max is negative";
  return "";
}

KeyRing::KeyRing(KeyRingConfig config)
    : ttl_max_(config.ttl_max), clock_skew_max_(config.clock_skew_max) {
  if (std::string err = validate(config); !err.empty())
    throw std::invalid_argument("KeyRing: " + err);
  for (TicketKey& k : config.keys) {
    Key& key = keys_[k.id];
    for (size_t i = 0; i < kTicketKeyBytes; ++i) key.secret[i] = static_cast<uint8_t>(k.secret[i]);
    wipe(k.secret.data(), k.secret.size());
    if (k.id > key_id_high_) key_id_high_ = k.id;
  }
  current_ = config.current_key_id;
  check_invariants();
}

bool KeyRing::add_key(KeyId id, std::string_view secret) {
  if (id == 0 || id <= key_id_high_) return false;
  if (!secret_acceptable(secret)) return false;
  if (keys_.size() >= kTicketKeysMax) return false;
  Key& key = keys_[id];
  for (size_t i = 0; i < kTicketKeyBytes; ++i) key.secret[i] = static_cast<uint8_t>(secret[i]);
  key_id_high_ = id;
  check_invariants();
  return true;
}

bool KeyRing::make_current(KeyId id) {
  if (!has_key(id)) return false;
  current_ = id;
  return true;
}

bool KeyRing::rotate(KeyId id, std::string_view secret) {
  if (!add_key(id, secret)) return false;
  const bool made = make_current(id);
  assert(made);
  return made;
}

bool KeyRing::retire(KeyId id) {
  if (id == current_ || !has_key(id)) return false;
  keys_.erase(id);
  std::erase_if(verified_, [id](const auto& entry) { return entry.second.key_id == id; });
  check_invariants();
  return true;
}

std::vector<KeyId> KeyRing::key_ids() const {
  std::vector<KeyId> ids;
  ids.reserve(keys_.size());
  for (const auto& [id, key] : keys_) ids.push_back(id);
  return ids;
}

void KeyRing::check_invariants() const {
  assert(!keys_.empty() && keys_.size() <= kTicketKeysMax);
  assert(keys_.count(current_) == 1);
  assert(current_ != 0);
  assert(keys_.begin()->first != 0);
  assert(keys_.rbegin()->first <= key_id_high_);
  assert(ttl_max_ > Duration::zero());
  assert(clock_skew_max_ >= Duration::zero());
}

std::optional<std::string> KeyRing::issue(uint64_t user_id, TimePoint now, Duration ttl) const {
  if (user_id == 0) return std::nullopt;
  if (ttl <= Duration::zero() || ttl > ttl_max_) return std::nullopt;
  if (now.ns() > std::numeric_limits<int64_t>::max() - ttl.ns()) return std::nullopt;
  const Key& key = keys_.at(current_);

  wire::TicketBody body;
  body.set_version(kTicketFormatVersion);
  body.set_key_id(current_);
  body.set_user_id(user_id);
  body.set_issued_at_ns(now.ns());
  body.set_expires_at_ns((now + ttl).ns());
  std::string body_bytes;
  if (!body.SerializeToString(&body_bytes)) return std::nullopt;

  const std::optional<HmacSha256> mac = hmac_sha256(key.view(), body_bytes);
  if (!mac) return std::nullopt;

  wire::TicketEnvelope envelope;
  envelope.set_key_id(current_);
  envelope.set_body(std::move(body_bytes));
  envelope.set_signature(std::string(as_chars(*mac)));
  std::string out;
  if (!envelope.SerializeToString(&out)) return std::nullopt;
  // Paired with verify's size check: what we issue, we accept.
  assert(out.size() <= kTicketBytesMax);
  return out;
}

TicketCheck KeyRing::verify(std::string_view ticket, TimePoint now) const {
  // 1. Shape, before any key is touched. Bounded: nothing longer is parsed.
  if (ticket.empty() || ticket.size() > kTicketBytesMax) return refused(TicketStatus::malformed);
  TicketCheck check;
  if (auto hit = verified_.find(std::string(ticket)); hit != verified_.end()) {
    check.user_id = hit->second.user_id;
    check.key_id = hit->second.key_id;
    check.issued_at = TimePoint::from_ns(hit->second.issued_at_ns);
    check.expires_at = TimePoint::from_ns(hit->second.expires_at_ns);
    return check_time(check, now);
  }
  wire::TicketEnvelope envelope;
  if (!envelope.ParseFromArray(ticket.data(), static_cast<int>(ticket.size())))
    return refused(TicketStatus::malformed);
  // Unknown fields would make a ticket's bytes malleable without touching the
  // signature; an issuer never writes any.
  if (has_unknown_fields(envelope)) return refused(TicketStatus::malformed);
  if (envelope.signature().size() != kHmacSha256Bytes || envelope.body().empty())
    return refused(TicketStatus::malformed);

  // 2. Key.
  const auto it = keys_.find(envelope.key_id());
  if (it == keys_.end()) return refused(TicketStatus::unknown_key);

  // 3. Signature over the body bytes exactly as received, compared in
  // constant time. A libcrypto failure fails closed.
  const std::optional<HmacSha256> mac = hmac_sha256(it->second.view(), envelope.body());
  if (!mac || !equal_constant_time(as_chars(*mac), envelope.signature()))
    return refused(TicketStatus::bad_signature);

  // 4. The body is authentic: it was written by a holder of this key. Still
  // refuse anything this version does not fully understand (fail closed on a
  // newer issuer's restrictions rather than ignore them).
  wire::TicketBody body;
  if (!body.ParseFromString(envelope.body())) return refused(TicketStatus::malformed);
  if (has_unknown_fields(body) || body.version() != kTicketFormatVersion ||
      body.key_id() != envelope.key_id() || body.user_id() == 0 ||
      body.expires_at_ns() <= body.issued_at_ns()) {
    return refused(TicketStatus::malformed);
  }

  check.user_id = body.user_id();
  check.key_id = body.key_id();
  check.issued_at = TimePoint::from_ns(body.issued_at_ns());
  check.expires_at = TimePoint::from_ns(body.expires_at_ns());
  if (verified_.size() >= kVerifiedCacheMax) verified_.clear();
  verified_.emplace(std::string(ticket),
                    Authentic{check.user_id, check.key_id, body.issued_at_ns(), body.expires_at_ns()});
  return check_time(check, now);
}

TicketCheck KeyRing::check_time(TicketCheck check, TimePoint now) const {
  // 5. Time, by the verifier's clock. issued_at may run ahead of `now` by at
  // most the allowed skew; the difference is taken in unsigned arithmetic, so
  // no value of either can overflow it.
  if (check.issued_at > now) {
    const uint64_t ahead_ns =
        static_cast<uint64_t>(check.issued_at.ns()) - static_cast<uint64_t>(now.ns());
    if (ahead_ns > static_cast<uint64_t>(clock_skew_max_.ns())) {
      check.status = TicketStatus::not_yet_valid;
      return check;
    }
  }
  if (now >= check.expires_at) {
    check.status = TicketStatus::expired;
    return check;
  }
  check.status = TicketStatus::ok;
  return check;
}

TicketCheck KeyRing::verify_for_user(std::string_view ticket, TimePoint now,
                                     uint64_t user_id) const {
  TicketCheck check = verify(ticket, now);
  if (check.ok() && check.user_id != user_id) check.status = TicketStatus::wrong_user;
  return check;
}

}  // namespace wx::ticket
