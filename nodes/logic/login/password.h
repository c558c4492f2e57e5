// Password verifiers for the login service: PBKDF2-HMAC-SHA256 from OpenSSL's
// libcrypto (PKCS5_PBKDF2_HMAC), never hand-written. Pure functions (no
// state, clock or randomness): the salt comes from the caller, which draws it
// from Runtime::rng().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wx::login {

inline constexpr size_t kVerifierBytes = 32;  // SHA-256 output
inline constexpr size_t kSaltBytes = 16;
inline constexpr uint32_t kIterationsMin = 1;
// An upper bound on what a stored credential may ask a login to compute.
inline constexpr uint32_t kIterationsMax = 10'000'000;

// PBKDF2-HMAC-SHA256(password, salt, iterations) → 32 bytes. nullopt if
// iterations is outside [kIterationsMin, kIterationsMax], an input is longer
// than libcrypto accepts, or libcrypto fails; callers fail closed.
std::optional<std::string> pbkdf2_sha256(std::string_view password, std::string_view salt, uint32_t iterations);

}  // namespace wx::login
