// Status and Result<T>: what every RPC returns.
//
// A call either yields a value or a Status saying why not. The codes are
// the wire codes of rpc.proto. `retryable()` says whether a call that failed
// this way may be sent again *if the method is idempotent*: timeout,
// unavailable and overloaded. Nothing here retries by itself.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace wx::rpc {

enum class StatusCode : uint8_t {
  ok = 0,
  timeout = 1,
  unavailable = 2,
  overloaded = 3,
  unauthenticated = 4,
  invalid_argument = 5,
  internal = 6,
  not_found = 7,
};
constexpr StatusCode kStatusCodeMax = StatusCode::not_found;
std::string_view to_string(StatusCode code);

struct Status {
  StatusCode code = StatusCode::ok;
  std::string message;

  static Status ok_status() { return {}; }
  bool ok() const { return code == StatusCode::ok; }
  bool retryable() const {
    return code == StatusCode::timeout || code == StatusCode::unavailable ||
           code == StatusCode::overloaded;
  }
  std::string to_string() const;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit, like std::optional
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok() && "error Result needs a non-ok status"); }
  Result(StatusCode code, std::string message) : Result(Status{code, std::move(message)}) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  StatusCode code() const { return status_.code; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace wx::rpc
