// HMAC-SHA256 and constant-time comparison, from OpenSSL's libcrypto.
//
// The one place the ticket code touches cryptography; nothing here is written
// by hand. Both functions are pure (no state, no randomness, no clock), so
// they are deterministic and safe in node code. tests/logic/ticket_test.cc
// checks hmac_sha256 against the RFC 4231 test vectors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace wx::ticket {

inline constexpr size_t kHmacSha256Bytes = 32;
using HmacSha256 = std::array<uint8_t, kHmacSha256Bytes>;

// HMAC-SHA256(key, data) (RFC 2104 with SHA-256). Any key length, including
// empty. nullopt only if libcrypto fails (out of memory, broken install) or
// the key is longer than libcrypto accepts (INT_MAX bytes); callers fail
// closed on it.
std::optional<HmacSha256> hmac_sha256(std::string_view key, std::string_view data);

// Whether a and b hold the same bytes. Time depends only on the sizes, never
// on where the contents differ (CRYPTO_memcmp), so comparing a presented
// signature with the expected one leaks nothing about the expected one.
// Different sizes compare unequal at once (sizes are not secret).
bool equal_constant_time(std::string_view a, std::string_view b);

// Overwrites `n` bytes at `p` with zeros in a way the compiler may not elide
// (OPENSSL_cleanse). For key material that is about to be freed.
void wipe(void* p, size_t n);

}  // namespace wx::ticket
