// Planted seam bypass 10: fmt's calendar helpers read the host's time zone
// (fmt::localtime calls localtime_r).
#include <fmt/chrono.h>

int planted_fmt_localtime(long t) {
  std::tm tm = fmt::localtime(static_cast<std::time_t>(t));
  return tm.tm_hour;
}
