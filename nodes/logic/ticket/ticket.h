// Login tickets: HMAC-SHA256-signed statements "uid U may act until time T"
// (docs/tickets.md).
//
// The login service turns credentials into a ticket with `KeyRing::issue`;
// every backend hop (access, logic, storage) checks the ticket it receives in
// the RPC metadata (rpc::CallContext::ticket) with `KeyRing::verify_for_user`
// before acting on a user's data: the ticket must be authentic, unexpired and
// speak for exactly the user the request acts on.
//
// A KeyRing holds the HMAC secrets by key id: one CURRENT key signs new
// tickets; every other key it holds still verifies tickets it signed, until
// it is retired. Rotation: `rotate(new_id, secret)` adds a key and makes it
// current; once every ticket signed by the old key has expired (after
// ttl_max), `retire(old_id)` drops it and its tickets fail with
// `unknown_key`. Key ids only increase, so a retired id never comes back
// with another secret.
//
// Secrets come only from configuration (bytes); nothing here reads files, a
// clock or a random source, so issue/verify are pure functions of
// (keys, input, now) — deterministic in simulation, and HMAC itself needs no
// randomness. The KeyRing wipes its copies of the secrets when destroyed.
//
// Time base: `now`, `issued_at` and `expires_at` are TimePoints of the clock
// the caller passes in, which today is Runtime::now(). That is a shared time
// base in simulation (kernel time plus each node's skew) but NOT across
// production processes, whose Runtime epochs differ; see docs/tickets.md,
// "Time base", for the gap and the defences taken here (expiry judged by the
// verifier's clock, `not_yet_valid` beyond clock_skew_max).
//
// Threading: none; a KeyRing is used from its node's one thread. verify never
// throws on any input bytes and reads at most kTicketBytesMax of them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nodes/logic/ticket/hmac.h"
#include "nodes/runtime/time.h"

namespace wx::ticket {

using KeyId = uint32_t;

// Length of every HMAC secret.
inline constexpr size_t kTicketKeyBytes = 32;
// Keys a ring holds at once (the current one plus those not yet retired).
inline constexpr size_t kTicketKeysMax = 16;
// Longest input verify() will look at; longer input is `malformed` unread.
// An issued ticket is under 100 bytes.
inline constexpr size_t kTicketBytesMax = 256;
// TicketBody.version written by issue() and the only one verify() accepts.
inline constexpr uint32_t kTicketFormatVersion = 1;

struct TicketKey {
  KeyId id = 0;        // non-zero
  std::string secret;  // exactly kTicketKeyBytes raw bytes, not all zero
};

struct KeyRingConfig {
  // Between 1 and kTicketKeysMax keys with distinct ids.
  std::vector<TicketKey> keys;
  // Signs new tickets; must be one of `keys`.
  KeyId current_key_id = 0;
  // Longest lifetime issue() grants. Also the least time to keep a key after
  // it stopped being current, so that its tickets expire before it is retired.
  Duration ttl_max = minutes(24 * 60);
  // How far in the verifier's future a ticket's issued_at may lie (clock skew
  // between issuer and verifier) before it is refused as not_yet_valid. >= 0.
  Duration clock_skew_max = seconds(5);
};

enum class TicketStatus : uint8_t {
  ok,             // authentic, within its lifetime (and for the right user)
  malformed,      // empty, too long, not a ticket, or an authentic body that
                  // breaks the format (unknown version or fields, user 0, …)
  unknown_key,    // signed with a key id this ring does not hold (never had,
                  // or retired)
  bad_signature,  // the signature does not match the body under that key
  not_yet_valid,  // issued_at > now + clock_skew_max
  expired,        // now >= expires_at
  wrong_user,     // verify_for_user only: valid, but for another user
};
std::string_view to_string(TicketStatus status);

struct TicketCheck {
  TicketStatus status = TicketStatus::malformed;
  // Filled only when the signature checked (ok, not_yet_valid, expired,
  // wrong_user), so that a refusal can still be logged with whom it was for;
  // zero otherwise. Act on them only if ok().
  uint64_t user_id = 0;
  KeyId key_id = 0;
  TimePoint issued_at;
  TimePoint expires_at;

  bool ok() const { return status == TicketStatus::ok; }
};

class KeyRing {
 public:
  // Checks the config; an empty string means valid, else what is wrong
  // (never quoting a secret).
  static std::string validate(const KeyRingConfig& config);
  // Throws std::invalid_argument if validate() finds a problem. Overwrites the
  // secrets in `config` with zeros once copied: pass it with std::move to
  // leave no copy behind.
  explicit KeyRing(KeyRingConfig config);

  // --- rotation -----------------------------------------------------------
  // Adds a verification key. False (and no change) if `id` is 0 or not
  // greater than every id this ring has ever held, if `secret` is not
  // kTicketKeyBytes bytes or is all zero, or if the ring is full.
  bool add_key(KeyId id, std::string_view secret);
  // Makes a held key the signing key. False if `id` is not held.
  bool make_current(KeyId id);
  // add_key then make_current; false (no change) if add_key refuses.
  bool rotate(KeyId id, std::string_view secret);
  // Drops a key: tickets it signed now fail with unknown_key. False if `id`
  // is not held or is the current key (a ring always has a signing key).
  bool retire(KeyId id);

  KeyId current_key_id() const { return current_; }
  bool has_key(KeyId id) const { return keys_.count(id) != 0; }
  // Held key ids, ascending.
  std::vector<KeyId> key_ids() const;
  Duration ttl_max() const { return ttl_max_; }
  Duration clock_skew_max() const { return clock_skew_max_; }

  // --- tickets ------------------------------------------------------------
  // A ticket for `user_id` signed by the current key: issued_at = now,
  // expires_at = now + ttl. nullopt if user_id is 0, ttl <= 0, ttl > ttl_max,
  // now + ttl overflows, or libcrypto fails. Deterministic: the same
  // (key, user, now, ttl) gives the same bytes.
  std::optional<std::string> issue(uint64_t user_id, TimePoint now, Duration ttl) const;

  // Checks `ticket` at local time `now`, in this order: size and parse
  // (malformed), key (unknown_key), signature in constant time
  // (bad_signature), body format (malformed), issued_at (not_yet_valid),
  // expiry (expired). Never throws on any input.
  TicketCheck verify(std::string_view ticket, TimePoint now) const;
  // verify, then wrong_user if the ticket is valid but for another user than
  // `user_id` — the check every hop makes before touching that user's data.
  TicketCheck verify_for_user(std::string_view ticket, TimePoint now, uint64_t user_id) const;

  // Asserts the ring's invariants (current key held, ids in range, size
  // bounded). For tests and the simulator.
  void check_invariants() const;

 private:
  // Wipes the secret when destroyed (also each copy's).
  struct Key {
    std::array<uint8_t, kTicketKeyBytes> secret{};
    Key() = default;
    Key(const Key&) = default;
    Key& operator=(const Key&) = default;
    ~Key() { wipe(secret.data(), secret.size()); }
    std::string_view view() const {
      return {reinterpret_cast<const char*>(secret.data()), secret.size()};
    }
  };

  static bool secret_acceptable(std::string_view secret);
  // Step 5 of verify: issued_at (skew) and expiry against `now`.
  TicketCheck check_time(TicketCheck check, TimePoint now) const;

  std::map<KeyId, Key> keys_;
  // Tickets whose signature and body checked (steps 1-4 of verify), by their
  // exact bytes: a service sees the same ticket on every request of a user,
  // and an HMAC per request was a visible share of a simulation's CPU. Only
  // authentic tickets enter (a forger cannot fill it); the time checks still
  // run on every verify; retire() drops the entries of the retired key.
  // Cleared when it reaches kVerifiedCacheMax entries. Not thread-safe (each
  // node owns its ring; verify is const only to its callers).
  struct Authentic {
    uint64_t user_id = 0;
    KeyId key_id = 0;
    int64_t issued_at_ns = 0;
    int64_t expires_at_ns = 0;
  };
  static constexpr size_t kVerifiedCacheMax = 16384;
  mutable std::unordered_map<std::string, Authentic> verified_;
  KeyId current_ = 0;
  // The highest id ever held; add_key takes only larger ids.
  KeyId key_id_high_ = 0;
  Duration ttl_max_;
  Duration clock_skew_max_;
};

}  // namespace wx::ticket
