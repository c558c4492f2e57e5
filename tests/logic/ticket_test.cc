// Login tickets (nodes/logic/ticket/, docs/tickets.md): the HMAC primitive
// against RFC 4231, the wire format, issue/verify, forgeries of every kind,
// expiry and skew at their exact edges, key rotation and retirement, and
// config validation.
#include "nodes/logic/ticket/ticket.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/logic/ticket/hmac.h"
#include "nodes/logic/ticket/ticket.pb.h"
#include "nodes/runtime/random.h"
#include "nodes/runtime/time.h"

namespace wx::ticket {
namespace {

using namespace wx::time_literals;

// --- helpers ---------------------------------------------------------------

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    ADD_FAILURE() << "bad hex digit " << c;
    return 0;
  };
  EXPECT_EQ(hex.size() % 2, 0u);
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string to_hex(const HmacSha256& mac) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

// A 32-byte secret derived from a label (test fixture data, not a real key).
std::string secret(uint8_t first) {
  std::string s;
  for (size_t i = 0; i < kTicketKeyBytes; ++i) s.push_back(static_cast<char>(first + i));
  return s;
}

KeyRingConfig one_key_config(KeyId id, std::string key) {
  KeyRingConfig c;
  c.keys.push_back({id, std::move(key)});
  c.current_key_id = id;
  c.ttl_max = minutes(24 * 60);
  c.clock_skew_max = 5_s;
  return c;
}

wire::TicketEnvelope parse_envelope(const std::string& bytes) {
  wire::TicketEnvelope e;
  EXPECT_TRUE(e.ParseFromString(bytes));
  return e;
}

wire::TicketBody parse_body(const wire::TicketEnvelope& e) {
  wire::TicketBody b;
  EXPECT_TRUE(b.ParseFromString(e.body()));
  return b;
}

// An envelope around `body_bytes`, signed with `key` (what only a holder of
// the key can produce).
std::string sign_by_hand(std::string_view key, KeyId envelope_key_id, std::string body_bytes) {
  const std::optional<HmacSha256> mac = hmac_sha256(key, body_bytes);
  EXPECT_TRUE(mac.has_value());
  wire::TicketEnvelope e;
  e.set_key_id(envelope_key_id);
  e.set_body(std::move(body_bytes));
  e.set_signature(std::string(reinterpret_cast<const char*>(mac->data()), mac->size()));
  return e.SerializeAsString();
}

std::string serialize(const wire::TicketBody& b) {
  return b.SerializeAsString();
}

wire::TicketBody good_body(KeyId key_id) {
  wire::TicketBody b;
  b.set_version(kTicketFormatVersion);
  b.set_key_id(key_id);
  b.set_user_id(42);
  b.set_issued_at_ns(seconds(100).ns());
  b.set_expires_at_ns(seconds(200).ns());
  return b;
}

const TimePoint kT0 = TimePoint::zero() + seconds(1000);

// --- the primitive: RFC 4231 known answers -----------------------------------

struct Rfc4231Case {
  const char* name;
  std::string key;
  std::string data;
  const char* mac_hex;  // full HMAC-SHA-256, or its first 128 bits (case 5)
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const Rfc4231Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Rfc4231Case> rfc4231_cases() {
  return {
      {"case1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"case2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"case3", std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"case4", from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
       std::string(50, '\xcd'), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      // Output truncated to 128 bits in the RFC.
      {"case5", std::string(20, '\x0c'), "Test With Truncation",
       "a3b6167473100ee06e0c796c2955552b"},
      {"case6", std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"case7", std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
}

class HmacRfc4231 : public ::testing::TestWithParam<Rfc4231Case> {};

TEST_P(HmacRfc4231, MatchesKnownAnswer) {
  const Rfc4231Case& c = GetParam();
  const std::optional<HmacSha256> mac = hmac_sha256(c.key, c.data);
  ASSERT_TRUE(mac.has_value());
  const std::string expected = c.mac_hex;
  EXPECT_EQ(to_hex(*mac).substr(0, expected.size()), expected);
}

INSTANTIATE_TEST_SUITE_P(Rfc4231, HmacRfc4231, ::testing::ValuesIn(rfc4231_cases()),
                         [](const ::testing::TestParamInfo<Rfc4231Case>& info) {
                           return std::string(info.param.name);
                         });

TEST(HmacSha256, EmptyKeyAndDataAreFine) {
  // HMAC-SHA256("", "") — the well-known value.
  const std::optional<HmacSha256> mac = hmac_sha256("", "");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(to_hex(*mac), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256, EqualConstantTime) {
  EXPECT_TRUE(equal_constant_time("", ""));
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "xbc"));
  EXPECT_FALSE(equal_constant_time("abc", "ab"));
  EXPECT_FALSE(equal_constant_time("", "a"));
}

// --- issue's code path uses that primitive, and the format is pinned --------

TEST(Ticket, SignatureIsHmacSha256OfBodyUnderCurrentKey) {
  const std::string key = secret(0x40);
  const KeyRing ring(one_key_config(3, key));
  const std::optional<std::string> t = ring.issue(42, kT0, 60_s);
  ASSERT_TRUE(t.has_value());
  const wire::TicketEnvelope e = parse_envelope(*t);
  const std::optional<HmacSha256> mac = hmac_sha256(key, e.body());
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(to_hex(e.signature()), to_hex(*mac));
  EXPECT_EQ(e.key_id(), 3u);
}

// The exact bytes of one ticket, computed independently (Python's hmac and a
// hand-encoded protobuf): any change to the wire format or the signed bytes
// shows up here.
TEST(Ticket, WireFormatIsPinned) {
  const KeyRing ring(one_key_config(7, secret(0x01)));  // key bytes 01 02 … 20
  const std::optional<std::string> t = ring.issue(42, TimePoint::zero() + 1000_s, 3600_s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(to_hex(*t),
            "0807121508011007182a2080a094a58d1d2880e0f6aaf085011a20"
            "d9fb2dc472686a67e52e8ecd6ba269610e55179b8fda11bdef483d6e0680ebc6");
  EXPECT_LE(t->size(), kTicketBytesMax);
}

// --- round trip ----------------------------------------------------------------

TEST(Ticket, IssueVerifyRoundTrip) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  for (uint64_t user : {uint64_t{1}, uint64_t{42}, uint64_t{1} << 40, ~uint64_t{0}}) {
    const std::optional<std::string> t = ring.issue(user, kT0, 3600_s);
    ASSERT_TRUE(t.has_value());
    EXPECT_LE(t->size(), kTicketBytesMax);
    const TicketCheck c = ring.verify(*t, kT0 + 1_s);
    EXPECT_EQ(c.status, TicketStatus::ok) << to_string(c.status);
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(c.user_id, user);
    EXPECT_EQ(c.key_id, 1u);
    EXPECT_EQ(c.issued_at, kT0);
    EXPECT_EQ(c.expires_at, kT0 + 3600_s);
    EXPECT_EQ(ring.verify_for_user(*t, kT0, user).status, TicketStatus::ok);
  }
}

// Every field at its longest encoding (a 5-byte key id, a 10-byte user id,
// negative times as 10-byte varints) still fits well inside the limit.
TEST(Ticket, LargestTicketFitsTheLimit) {
  const KeyId id = std::numeric_limits<KeyId>::max();
  const KeyRing ring(one_key_config(id, secret(0x10)));
  const TimePoint now = TimePoint::from_ns(std::numeric_limits<int64_t>::min() / 2);
  const std::optional<std::string> t = ring.issue(~uint64_t{0}, now, ring.ttl_max());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->size(), 83u);
  EXPECT_LE(t->size(), kTicketBytesMax);
  const TicketCheck c = ring.verify(*t, now);
  EXPECT_EQ(c.status, TicketStatus::ok);
  EXPECT_EQ(c.user_id, ~uint64_t{0});
  EXPECT_EQ(c.key_id, id);
}

TEST(Ticket, IssueIsDeterministic) {
  const KeyRing a(one_key_config(1, secret(0x10)));
  const KeyRing b(one_key_config(1, secret(0x10)));
  EXPECT_EQ(a.issue(9, kT0, 10_s), b.issue(9, kT0, 10_s));
  EXPECT_NE(a.issue(9, kT0, 10_s), a.issue(10, kT0, 10_s));
}

TEST(Ticket, IssueRefusesBadArguments) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  EXPECT_FALSE(ring.issue(0, kT0, 10_s).has_value());                     // no user 0
  EXPECT_FALSE(ring.issue(1, kT0, Duration::zero()).has_value());         // ttl 0
  EXPECT_FALSE(ring.issue(1, kT0, -1_s).has_value());                     // negative
  EXPECT_FALSE(ring.issue(1, kT0, ring.ttl_max() + 1_ns).has_value());    // over ttl_max
  EXPECT_TRUE(ring.issue(1, kT0, ring.ttl_max()).has_value());            // exactly ttl_max
  EXPECT_FALSE(ring.issue(1, TimePoint::max() - 5_s, 10_s).has_value());  // overflow
}

TEST(Ticket, VerifyForUserRefusesAnotherUser) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string t = ring.issue(42, kT0, 60_s).value();
  const TicketCheck c = ring.verify_for_user(t, kT0, 43);
  EXPECT_EQ(c.status, TicketStatus::wrong_user);
  EXPECT_EQ(c.user_id, 42u);  // authenticated, so it may be logged
  EXPECT_EQ(ring.verify_for_user(t, kT0, 0).status, TicketStatus::wrong_user);
  // An invalid ticket keeps its own status, whatever the user.
  EXPECT_EQ(ring.verify_for_user(t, kT0 + 60_s, 42).status, TicketStatus::expired);
  EXPECT_EQ(ring.verify_for_user("", kT0, 42).status, TicketStatus::malformed);
}

// --- forgeries -----------------------------------------------------------------

TEST(TicketForgery, EveryBitFlipInTheBodyIsBadSignature) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string t = ring.issue(42, kT0, 60_s).value();
  const wire::TicketEnvelope e = parse_envelope(t);
  for (size_t i = 0; i < e.body().size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      wire::TicketEnvelope forged = e;
      std::string body = e.body();
      body[i] = static_cast<char>(body[i] ^ (1 << bit));
      forged.set_body(body);
      const TicketCheck c = ring.verify(forged.SerializeAsString(), kT0);
      EXPECT_EQ(c.status, TicketStatus::bad_signature) << "byte " << i << " bit " << bit;
      EXPECT_EQ(c.user_id, 0u);
    }
  }
}

TEST(TicketForgery, ChangedUserOrExpiryIsBadSignature) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const wire::TicketEnvelope e = parse_envelope(ring.issue(42, kT0, 60_s).value());
  {
    wire::TicketBody b = parse_body(e);
    b.set_user_id(43);
    wire::TicketEnvelope forged = e;
    forged.set_body(serialize(b));
    EXPECT_EQ(ring.verify(forged.SerializeAsString(), kT0).status, TicketStatus::bad_signature);
  }
  {
    wire::TicketBody b = parse_body(e);
    b.set_expires_at_ns(b.expires_at_ns() + seconds(3600 * 24 * 365).ns());
    wire::TicketEnvelope forged = e;
    forged.set_body(serialize(b));
    EXPECT_EQ(ring.verify(forged.SerializeAsString(), kT0 + 120_s).status,
              TicketStatus::bad_signature);
  }
}

TEST(TicketForgery, EveryBitFlipInTheSignatureIsBadSignature) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const wire::TicketEnvelope e = parse_envelope(ring.issue(42, kT0, 60_s).value());
  for (size_t i = 0; i < e.signature().size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      wire::TicketEnvelope forged = e;
      std::string sig = e.signature();
      sig[i] = static_cast<char>(sig[i] ^ (1 << bit));
      forged.set_signature(sig);
      EXPECT_EQ(ring.verify(forged.SerializeAsString(), kT0).status, TicketStatus::bad_signature)
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(TicketForgery, SignatureOfAnotherKeyIsRejected) {
  const KeyRing ours(one_key_config(1, secret(0x10)));
  // Same key id, another secret: bad_signature.
  const KeyRing theirs_same_id(one_key_config(1, secret(0x80)));
  const std::string t1 = theirs_same_id.issue(42, kT0, 60_s).value();
  EXPECT_EQ(ours.verify(t1, kT0).status, TicketStatus::bad_signature);
  // A key id we do not hold: unknown_key.
  const KeyRing theirs_other_id(one_key_config(9, secret(0x80)));
  const std::string t9 = theirs_other_id.issue(42, kT0, 60_s).value();
  EXPECT_EQ(ours.verify(t9, kT0).status, TicketStatus::unknown_key);
}

TEST(TicketForgery, EnvelopeKeyIdSwappedToAnotherHeldKeyIsBadSignature) {
  KeyRingConfig cfg = one_key_config(1, secret(0x10));
  cfg.keys.push_back({2, secret(0x20)});
  const KeyRing ring(std::move(cfg));
  wire::TicketEnvelope e = parse_envelope(ring.issue(42, kT0, 60_s).value());
  ASSERT_EQ(e.key_id(), 1u);
  e.set_key_id(2);
  EXPECT_EQ(ring.verify(e.SerializeAsString(), kT0).status, TicketStatus::bad_signature);
  e.set_key_id(3);
  EXPECT_EQ(ring.verify(e.SerializeAsString(), kT0).status, TicketStatus::unknown_key);
}

TEST(TicketForgery, RandomBytesAreNeverAccepted) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  Rng rng(20240601);
  int malformed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string junk(1 + rng.uniform(kTicketBytesMax), '\0');
    for (char& c : junk) c = static_cast<char>(rng.uniform(256));
    const TicketCheck c = ring.verify(junk, kT0);
    ASSERT_NE(c.status, TicketStatus::ok) << to_hex(junk);
    ASSERT_TRUE(c.status == TicketStatus::malformed || c.status == TicketStatus::unknown_key ||
                c.status == TicketStatus::bad_signature)
        << to_string(c.status) << " " << to_hex(junk);
    if (c.status == TicketStatus::malformed) ++malformed;
  }
  // Almost all random strings are not even an envelope.
  EXPECT_GT(malformed, 19000);
  // Starts with field number 0: never a protobuf message.
  EXPECT_EQ(ring.verify(std::string("\x00\x01\x02\x03", 4), kT0).status, TicketStatus::malformed);
}

TEST(TicketForgery, WellFormedEnvelopeWithRandomSignatureIsBadSignature) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  Rng rng(7);
  for (int i = 0; i < 1000; ++i) {
    wire::TicketEnvelope e;
    e.set_key_id(1);
    e.set_body(serialize(good_body(1)));
    std::string sig(kHmacSha256Bytes, '\0');
    for (char& c : sig) c = static_cast<char>(rng.uniform(256));
    e.set_signature(sig);
    ASSERT_EQ(ring.verify(e.SerializeAsString(), TimePoint::zero() + 150_s).status,
              TicketStatus::bad_signature);
  }
}

TEST(TicketForgery, EveryTruncationIsMalformed) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string t = ring.issue(42, kT0, 60_s).value();
  for (size_t n = 0; n < t.size(); ++n) {
    EXPECT_EQ(ring.verify(std::string_view(t).substr(0, n), kT0).status, TicketStatus::malformed)
        << "prefix of " << n << " bytes";
  }
  // A signature cut short but re-encoded correctly.
  wire::TicketEnvelope e = parse_envelope(t);
  e.set_signature(e.signature().substr(0, 16));
  EXPECT_EQ(ring.verify(e.SerializeAsString(), kT0).status, TicketStatus::malformed);
}

TEST(TicketForgery, EmptyIsMalformed) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  EXPECT_EQ(ring.verify("", kT0).status, TicketStatus::malformed);
  EXPECT_EQ(ring.verify(std::string_view(), kT0).status, TicketStatus::malformed);
}

TEST(TicketForgery, HugeIsMalformedUnread) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string t = ring.issue(42, kT0, 60_s).value();
  // A valid ticket followed by a valid unknown field, up to the limit and one
  // byte past it.
  auto padded_to = [&](size_t total) {
    std::string s = t;
    // Field 15, length-delimited (tag 0x7a), then a one- or two-byte length.
    const size_t room = total - s.size() - 1;  // after the tag
    const size_t len = room <= 128 ? room - 1 : room - 2;
    s.push_back('\x7a');
    if (len < 128) {
      s.push_back(static_cast<char>(len));
    } else {
      s.push_back(static_cast<char>(0x80 | (len & 0x7f)));
      s.push_back(static_cast<char>(len >> 7));
    }
    s.append(len, 'x');
    EXPECT_EQ(s.size(), total);
    return s;
  };
  // At the limit it is read, and refused for the unknown field.
  EXPECT_EQ(ring.verify(padded_to(kTicketBytesMax), kT0).status, TicketStatus::malformed);
  EXPECT_EQ(ring.verify(padded_to(kTicketBytesMax + 1), kT0).status, TicketStatus::malformed);
  EXPECT_EQ(ring.verify(std::string(1 << 20, 'A'), kT0).status, TicketStatus::malformed);
  // Trailing garbage after a valid ticket.
  EXPECT_EQ(ring.verify(t + std::string(8, '\xff'), kT0).status, TicketStatus::malformed);
}

// Bodies that carry a valid signature (so only a key holder could make them)
// but break the format: refused as malformed, never trusted.
TEST(TicketForgery, AuthenticButMalformedBodyIsMalformed) {
  const std::string key = secret(0x10);
  const KeyRing ring(one_key_config(1, key));
  const TimePoint at = TimePoint::zero() + 150_s;
  // The control: the hand-signed good body verifies.
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, serialize(good_body(1))), at).status,
            TicketStatus::ok);

  wire::TicketBody b = good_body(1);
  b.set_version(2);
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, serialize(b)), at).status, TicketStatus::malformed);

  b = good_body(5);  // body says key 5, envelope says key 1
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, serialize(b)), at).status, TicketStatus::malformed);

  b = good_body(1);
  b.set_user_id(0);
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, serialize(b)), at).status, TicketStatus::malformed);

  b = good_body(1);
  b.set_expires_at_ns(b.issued_at_ns());
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, serialize(b)), at).status, TicketStatus::malformed);

  // An unknown field in the body (a newer issuer's restriction we cannot
  // honour): fail closed.
  std::string with_unknown = serialize(good_body(1)) + std::string("\x78\x01", 2);  // field 15 = 1
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, with_unknown), at).status, TicketStatus::malformed);

  // Not a protobuf at all.
  EXPECT_EQ(ring.verify(sign_by_hand(key, 1, std::string("\x00\xff", 2)), at).status,
            TicketStatus::malformed);
}

// --- time ------------------------------------------------------------------------

TEST(TicketExpiry, RefusedAtAndAfterExpiryAcceptedJustBefore) {
  const KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string t = ring.issue(42, kT0, 60_s).value();
  const TimePoint expiry = kT0 + 60_s;
  EXPECT_EQ(ring.verify(t, kT0).status, TicketStatus::ok);
  EXPECT_EQ(ring.verify(t, expiry - 1_ns).status, TicketStatus::ok);
  const TicketCheck at = ring.verify(t, expiry);
  EXPECT_EQ(at.status, TicketStatus::expired);
  EXPECT_EQ(at.user_id, 42u);
  EXPECT_EQ(at.expires_at, expiry);
  EXPECT_EQ(ring.verify(t, expiry + 1_ns).status, TicketStatus::expired);
  EXPECT_EQ(ring.verify(t, expiry + 3600_s).status, TicketStatus::expired);
  EXPECT_EQ(ring.verify(t, TimePoint::max()).status, TicketStatus::expired);
}

TEST(TicketExpiry, IssuedAheadOfTheVerifierWithinSkewOnly) {
  const KeyRing ring(one_key_config(1, secret(0x10)));  // clock_skew_max 5 s
  const std::string t = ring.issue(42, kT0, 60_s).value();
  // The verifier's clock runs behind the issuer's.
  EXPECT_EQ(ring.verify(t, kT0 - 5_s).status, TicketStatus::ok);
  EXPECT_EQ(ring.verify(t, kT0 - 5_s - 1_ns).status, TicketStatus::not_yet_valid);
  EXPECT_EQ(ring.verify(t, TimePoint::from_ns(std::numeric_limits<int64_t>::min())).status,
            TicketStatus::not_yet_valid);
  // With no skew allowed, only now >= issued_at passes.
  KeyRingConfig strict = one_key_config(1, secret(0x10));
  strict.clock_skew_max = Duration::zero();
  const KeyRing strict_ring(std::move(strict));
  EXPECT_EQ(strict_ring.verify(t, kT0).status, TicketStatus::ok);
  EXPECT_EQ(strict_ring.verify(t, kT0 - 1_ns).status, TicketStatus::not_yet_valid);
}

// --- rotation ----------------------------------------------------------------------

TEST(TicketRotation, PreviousKeyVerifiesUntilRetired) {
  KeyRing ring(one_key_config(1, secret(0x10)));
  const std::string old_ticket = ring.issue(42, kT0, 600_s).value();

  ASSERT_TRUE(ring.rotate(2, secret(0x20)));
  EXPECT_EQ(ring.current_key_id(), 2u);
  EXPECT_EQ(ring.key_ids(), (std::vector<KeyId>{1, 2}));
  const std::string new_ticket = ring.issue(43, kT0, 600_s).value();
  EXPECT_EQ(parse_envelope(new_ticket).key_id(), 2u);

  // Both verify while key 1 is held.
  EXPECT_EQ(ring.verify(old_ticket, kT0 + 1_s).status, TicketStatus::ok);
  EXPECT_EQ(ring.verify(old_ticket, kT0 + 1_s).key_id, 1u);
  EXPECT_EQ(ring.verify(new_ticket, kT0 + 1_s).status, TicketStatus::ok);

  // Another node that has not rotated yet still accepts the old key only.
  const KeyRing lagging(one_key_config(1, secret(0x10)));
  EXPECT_EQ(lagging.verify(old_ticket, kT0).status, TicketStatus::ok);
  EXPECT_EQ(lagging.verify(new_ticket, kT0).status, TicketStatus::unknown_key);

  ASSERT_TRUE(ring.retire(1));
  EXPECT_FALSE(ring.has_key(1));
  const TicketCheck c = ring.verify(old_ticket, kT0 + 1_s);
  EXPECT_EQ(c.status, TicketStatus::unknown_key);
  EXPECT_EQ(c.user_id, 0u);
  EXPECT_EQ(ring.verify(new_ticket, kT0 + 1_s).status, TicketStatus::ok);
  ring.check_invariants();
}

TEST(TicketRotation, AddKeyFirstThenMakeCurrent) {
  // The safe roll-out: every verifier learns key 2 first, only then do
  // issuers switch to it.
  KeyRing ring(one_key_config(1, secret(0x10)));
  ASSERT_TRUE(ring.add_key(2, secret(0x20)));
  EXPECT_EQ(ring.current_key_id(), 1u);
  EXPECT_EQ(parse_envelope(ring.issue(42, kT0, 60_s).value()).key_id(), 1u);
  ASSERT_TRUE(ring.make_current(2));
  EXPECT_EQ(parse_envelope(ring.issue(42, kT0, 60_s).value()).key_id(), 2u);
  EXPECT_FALSE(ring.make_current(7));
  EXPECT_EQ(ring.current_key_id(), 2u);
}

TEST(TicketRotation, RetireRefusesCurrentAndUnknownKeys) {
  KeyRing ring(one_key_config(1, secret(0x10)));
  EXPECT_FALSE(ring.retire(1));  // the current key
  EXPECT_FALSE(ring.retire(2));  // never held
  ASSERT_TRUE(ring.rotate(2, secret(0x20)));
  EXPECT_FALSE(ring.retire(2));
  EXPECT_TRUE(ring.retire(1));
  EXPECT_FALSE(ring.retire(1));  // already gone
  ring.check_invariants();
}

TEST(TicketRotation, AddKeyRefusesBadIdsAndSecrets) {
  KeyRing ring(one_key_config(5, secret(0x10)));
  EXPECT_FALSE(ring.add_key(0, secret(0x20)));           // id 0
  EXPECT_FALSE(ring.add_key(5, secret(0x20)));           // held
  EXPECT_FALSE(ring.add_key(4, secret(0x20)));           // below the highest id
  EXPECT_FALSE(ring.add_key(6, std::string(31, 'k')));   // too short
  EXPECT_FALSE(ring.add_key(6, std::string(33, 'k')));   // too long
  EXPECT_FALSE(ring.add_key(6, std::string(32, '\0')));  // all zero
  EXPECT_FALSE(ring.rotate(6, ""));                      // rotate refuses too...
  EXPECT_EQ(ring.current_key_id(), 5u);                  // ...and changes nothing
  ASSERT_TRUE(ring.rotate(6, secret(0x20)));
  ASSERT_TRUE(ring.retire(5));
  // A retired id never comes back, so no old ticket can meet a new secret.
  EXPECT_FALSE(ring.add_key(5, secret(0x30)));
  // The ring is bounded.
  for (KeyId id = 7; ring.key_ids().size() < kTicketKeysMax; ++id)
    ASSERT_TRUE(ring.add_key(id, secret(static_cast<uint8_t>(id))));
  EXPECT_FALSE(ring.add_key(100, secret(0x30)));
  ring.check_invariants();
}

// --- configuration -------------------------------------------------------------------

TEST(TicketConfig, ValidateNamesEachProblem) {
  EXPECT_EQ(KeyRing::validate(one_key_config(1, secret(0x10))), "");
  KeyRingConfig c = one_key_config(1, secret(0x10));
  c.keys.clear();
  EXPECT_NE(KeyRing::validate(c), "");

  c = one_key_config(0, secret(0x10));
  EXPECT_NE(KeyRing::validate(c).find("key id 0"), std::string::npos);

  c = one_key_config(1, secret(0x10));
  c.keys.push_back({1, secret(0x20)});
  EXPECT_NE(KeyRing::validate(c).find("duplicate"), std::string::npos);

  c = one_key_config(1, "short");
  EXPECT_NE(KeyRing::validate(c).find("bytes"), std::string::npos);

  c = one_key_config(1, std::string(32, '\0'));
  EXPECT_NE(KeyRing::validate(c).find("all zero"), std::string::npos);

  c = one_key_config(1, secret(0x10));
  c.current_key_id = 2;
  EXPECT_NE(KeyRing::validate(c).find("current"), std::string::npos);

  c = one_key_config(1, secret(0x10));
  c.ttl_max = Duration::zero();
  EXPECT_NE(KeyRing::validate(c).find("ttl_max"), std::string::npos);

  c = one_key_config(1, secret(0x10));
  c.clock_skew_max = -1_ns;
  EXPECT_NE(KeyRing::validate(c).find("clock_skew_max"), std::string::npos);

  c = one_key_config(1, secret(0x10));
  for (KeyId id = 2; id <= kTicketKeysMax + 1; ++id) c.keys.push_back({id, secret(0x20)});
  EXPECT_NE(KeyRing::validate(c), "");

  // The message never quotes a secret.
  c = one_key_config(1, std::string(31, 'S'));
  EXPECT_EQ(KeyRing::validate(c).find("SSSS"), std::string::npos);

  EXPECT_THROW(KeyRing(one_key_config(1, "short")), std::invalid_argument);
}

TEST(TicketConfig, StatusNames) {
  EXPECT_EQ(to_string(TicketStatus::ok), "ok");
  EXPECT_EQ(to_string(TicketStatus::malformed), "malformed");
  EXPECT_EQ(to_string(TicketStatus::unknown_key), "unknown_key");
  EXPECT_EQ(to_string(TicketStatus::bad_signature), "bad_signature");
  EXPECT_EQ(to_string(TicketStatus::not_yet_valid), "not_yet_valid");
  EXPECT_EQ(to_string(TicketStatus::expired), "expired");
  EXPECT_EQ(to_string(TicketStatus::wrong_user), "wrong_user");
}

}  // namespace
}  // namespace wx::ticket
