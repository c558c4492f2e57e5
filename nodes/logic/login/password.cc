#include "nodes/logic/login/password.h"

#include <openssl/evp.h>

#include <climits>

namespace wx::login {

std::optional<std::string> pbkdf2_sha256(std::string_view password, std::string_view salt, uint32_t iterations) {
  if (iterations < kIterationsMin || iterations > kIterationsMax) return std::nullopt;
  if (password.size() > static_cast<size_t>(INT_MAX) || salt.size() > static_cast<size_t>(INT_MAX)) {
    return std::nullopt;
  }
  // libcrypto wants non-null pointers even for empty inputs.
  static const char kEmptyPass = 0;
  static const unsigned char kEmptySalt = 0;
  std::string out(kVerifierBytes, '\0');
  const int ok = PKCS5_PBKDF2_HMAC(
      password.empty() ? &kEmptyPass : password.data(), static_cast<int>(password.size()),
      salt.empty() ? &kEmptySalt : reinterpret_cast<const unsigned char*>(salt.data()),
      static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
      reinterpret_cast<unsigned char*>(out.data()));
  if (ok != 1) return std::nullopt;
  return out;
}

}  // namespace wx::login
