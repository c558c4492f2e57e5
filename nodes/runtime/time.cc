#include "nodes/runtime/time.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace wx {

std::string to_string(Duration d) {
  // The largest unit the magnitude reaches; whole numbers print bare
  // ("2s", "750us"), others with up to three decimals ("1.5s", "456.526us").
  const int64_t ns = d.ns();
  const int64_t mag = ns < 0 ? -ns : ns;
  if (mag == 0) return "0s";
  struct Unit {
    int64_t scale;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{3'600'000'000'000, "h"}, {60'000'000'000, "m"},
                                    {1'000'000'000, "s"},     {1'000'000, "ms"},
                                    {1'000, "us"},            {1, "ns"}};
  const Unit* u = &kUnits[5];
  for (const Unit& cand : kUnits) {
    if (mag >= cand.scale) {
      u = &cand;
      break;
    }
  }
  char buf[64];
  if (mag % u->scale == 0) {
    std::snprintf(buf, sizeof buf, "%lld%s", static_cast<long long>(ns / u->scale), u->name);
    return buf;
  }
  // fmt, unlike printf, ignores the process locale: always a '.' (the
  // result is hashed into traces and written to reports).
  std::string out = fmt::format("{:.3f}", static_cast<double>(ns) / static_cast<double>(u->scale));
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out + u->name;
}

std::string to_string(TimePoint t) {
  char buf[64];
  const int64_t ns = t.ns();
  std::snprintf(buf, sizeof buf, "%s%lld.%06llds", ns < 0 ? "-" : "",
                static_cast<long long>((ns < 0 ? -ns : ns) / 1'000'000'000),
                static_cast<long long>(((ns < 0 ? -ns : ns) % 1'000'000'000) / 1'000));
  return buf;
}

std::optional<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total_ns = 0;
  size_t i = 0;
  while (i < text.size()) {
    // Number: digits with an optional fraction.
    size_t start = i;
    int64_t whole = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (whole > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
      whole = whole * 10 + (text[i] - '0');
      ++i;
    }
    int64_t frac = 0, frac_scale = 1;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (frac_scale < 1'000'000'000) {
          frac = frac * 10 + (text[i] - '0');
          frac_scale *= 10;
        }
        ++i;
      }
    }
    if (i == start || (i == start + 1 && text[start] == '.')) return std::nullopt;
    // Unit.
    size_t ustart = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    int64_t scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us") scale = 1'000;
    else if (unit == "ms") scale = 1'000'000;
    else if (unit == "s") scale = 1'000'000'000;
    else if (unit == "m" || unit == "min") scale = 60'000'000'000;
    else if (unit == "h") scale = 3'600'000'000'000;
    else return std::nullopt;
    if (whole > std::numeric_limits<int64_t>::max() / scale) return std::nullopt;
    const int64_t part = whole * scale + (frac * scale) / frac_scale;
    if (total_ns > std::numeric_limits<int64_t>::max() - part) return std::nullopt;
    total_ns += part;
  }
  return Duration::from_ns(total_ns);
}

}  // namespace wx
