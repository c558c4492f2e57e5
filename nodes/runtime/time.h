// Integer time for node code and the simulator.
//
// `Duration` and `TimePoint` are strong 64-bit nanosecond types. They never
// convert silently from plain integers, so a value in microseconds cannot be
// passed where nanoseconds are meant. `TimePoint` counts from the epoch of the
// Runtime that produced it (simulation start, or process start in production
// mode); two TimePoints from different runtimes are not comparable.
//
// Arithmetic saturates: a sum, difference or product that would overflow
// int64 clamps to the largest or smallest value instead (signed overflow is
// undefined behaviour, and a value from the wire may be anything). So
// `now + Duration::max()` is `TimePoint::max()`, a deadline that never comes,
// and never a time in the past.
//
// Nothing here reads a clock: time comes only from `Runtime::now()`.
#pragma once

#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace wx {

namespace time_detail {
constexpr int64_t sat_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}
constexpr int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) {
    return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}
constexpr int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    return (a < 0) != (b < 0) ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return r;
}
}  // namespace time_detail

class Duration {
 public:
  constexpr Duration() = default;
  static constexpr Duration from_ns(int64_t ns) { return Duration(ns); }
  static constexpr Duration zero() { return Duration(0); }
  static constexpr Duration max() { return Duration(std::numeric_limits<int64_t>::max()); }

  constexpr int64_t ns() const { return ns_; }
  constexpr double us_f() const { return static_cast<double>(ns_) / 1e3; }
  constexpr double ms_f() const { return static_cast<double>(ns_) / 1e6; }
  constexpr double s_f() const { return static_cast<double>(ns_) / 1e9; }

  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration operator+(Duration o) const { return Duration(time_detail::sat_add(ns_, o.ns_)); }
  constexpr Duration operator-(Duration o) const { return Duration(time_detail::sat_sub(ns_, o.ns_)); }
  constexpr Duration operator-() const { return Duration(time_detail::sat_sub(0, ns_)); }
  constexpr Duration operator*(int64_t k) const { return Duration(time_detail::sat_mul(ns_, k)); }
  constexpr Duration operator/(int64_t k) const { return Duration(k == -1 ? time_detail::sat_sub(0, ns_) : ns_ / k); }
  constexpr int64_t operator/(Duration o) const { return o.ns_ == -1 ? time_detail::sat_sub(0, ns_) : ns_ / o.ns_; }
  constexpr Duration& operator+=(Duration o) { return *this = *this + o; }
  constexpr Duration& operator-=(Duration o) { return *this = *this - o; }

 private:
  constexpr explicit Duration(int64_t ns) : ns_(ns) {}
  int64_t ns_ = 0;
};

constexpr Duration nanoseconds(int64_t n) { return Duration::from_ns(n); }
constexpr Duration microseconds(int64_t n) { return Duration::from_ns(time_detail::sat_mul(n, 1'000)); }
constexpr Duration milliseconds(int64_t n) { return Duration::from_ns(time_detail::sat_mul(n, 1'000'000)); }
constexpr Duration seconds(int64_t n) { return Duration::from_ns(time_detail::sat_mul(n, 1'000'000'000)); }
constexpr Duration minutes(int64_t n) { return seconds(time_detail::sat_mul(n, 60)); }

class TimePoint {
 public:
  constexpr TimePoint() = default;
  static constexpr TimePoint from_ns(int64_t ns) { return TimePoint(ns); }
  static constexpr TimePoint zero() { return TimePoint(0); }
  static constexpr TimePoint max() { return TimePoint(std::numeric_limits<int64_t>::max()); }

  constexpr int64_t ns() const { return ns_; }
  constexpr Duration since_epoch() const { return Duration::from_ns(ns_); }

  constexpr auto operator<=>(const TimePoint&) const = default;
  constexpr TimePoint operator+(Duration d) const { return TimePoint(time_detail::sat_add(ns_, d.ns())); }
  constexpr TimePoint operator-(Duration d) const { return TimePoint(time_detail::sat_sub(ns_, d.ns())); }
  constexpr Duration operator-(TimePoint o) const { return Duration::from_ns(time_detail::sat_sub(ns_, o.ns_)); }
  constexpr TimePoint& operator+=(Duration d) { return *this = *this + d; }

 private:
  constexpr explicit TimePoint(int64_t ns) : ns_(ns) {}
  int64_t ns_ = 0;
};

namespace time_literals {
constexpr Duration operator""_ns(unsigned long long n) { return nanoseconds(static_cast<int64_t>(n)); }
constexpr Duration operator""_us(unsigned long long n) { return microseconds(static_cast<int64_t>(n)); }
constexpr Duration operator""_ms(unsigned long long n) { return milliseconds(static_cast<int64_t>(n)); }
constexpr Duration operator""_s(unsigned long long n) { return seconds(static_cast<int64_t>(n)); }
}  // namespace time_literals

// "1.5ms", "2s", "750us", "12ns", "3m" (minutes), "1h". Exact for whole units.
std::string to_string(Duration d);
// "12.000345s" since the runtime's epoch, microsecond precision.
std::string to_string(TimePoint t);

// Parses "250ms", "1.5s", "10us", "42ns", "2m", "1h", "1m30s". A bare number is
// rejected: units are mandatory. Returns nullopt on malformed input.
std::optional<Duration> parse_duration(std::string_view text);

}  // namespace wx
