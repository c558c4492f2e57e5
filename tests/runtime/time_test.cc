#include "nodes/runtime/time.h"

#include <gtest/gtest.h>
#include <limits>

namespace wx {
namespace {

using namespace time_literals;

TEST(Time, ArithmeticKeepsUnitsStraight) {
  EXPECT_EQ((1_s).ns(), 1'000'000'000);
  EXPECT_EQ((1_ms + 500_us).ns(), 1'500'000);
  EXPECT_EQ((TimePoint::zero() + 2_s) - (TimePoint::zero() + 500_ms), 1500_ms);
  EXPECT_LT(999_us, 1_ms);
  EXPECT_EQ(3_s / 1_ms, 3000);
}

TEST(Time, ParsesDurations) {
  EXPECT_EQ(parse_duration("250ms"), 250_ms);
  EXPECT_EQ(parse_duration("1.5s"), 1500_ms);
  EXPECT_EQ(parse_duration("1m30s"), 90_s);
  EXPECT_EQ(parse_duration("42ns"), 42_ns);
  EXPECT_EQ(parse_duration("10us"), 10_us);
  EXPECT_EQ(parse_duration("2h"), seconds(7200));
}

TEST(Time, RejectsMalformedDurations) {
  for (const char* bad : {"", "10", "ms", "1.5", "abc", "10 ms", "1x", ".s", "-1s",
                          "99999999999999999999s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << "accepted '" << bad << "'";
  }
}

TEST(Time, FormatsDurations) {
  EXPECT_EQ(to_string(1500_ms), "1.5s");
  EXPECT_EQ(to_string(456526_ns), "456.526us");
  EXPECT_EQ(to_string(-2_ms), "-2ms");
  EXPECT_EQ(to_string(90_s), "1.5m");
  EXPECT_EQ(to_string(2_s), "2s");
  EXPECT_EQ(to_string(0_s), "0s");
  EXPECT_EQ(to_string(TimePoint::zero() + 1500_ms), "1.500000s");
}

}  // namespace
}  // namespace wx

namespace wx {
namespace {

// Time arithmetic saturates instead of overflowing (signed overflow is UB,
// and budgets arrive from the wire): regression for a call with timeout
// Duration::max() whose server computed now + timeout and wrapped around.
TEST(Time, ArithmeticSaturatesAtTheLimits) {
  const TimePoint now = TimePoint::zero() + seconds(5);
  EXPECT_EQ(now + Duration::max(), TimePoint::max());
  EXPECT_EQ(TimePoint::max() + seconds(1), TimePoint::max());
  EXPECT_EQ(TimePoint::zero() - Duration::max() - seconds(1), TimePoint::from_ns(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(TimePoint::max() - TimePoint::from_ns(-1), Duration::max());
  EXPECT_EQ(TimePoint::from_ns(std::numeric_limits<int64_t>::min()) - TimePoint::from_ns(1),
            Duration::from_ns(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(Duration::max() + seconds(1), Duration::max());
  EXPECT_EQ(Duration::max() * 2, Duration::max());
  EXPECT_EQ(Duration::max() * -2, Duration::from_ns(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(-Duration::from_ns(std::numeric_limits<int64_t>::min()), Duration::max());
  EXPECT_EQ(Duration::from_ns(std::numeric_limits<int64_t>::min()) / -1, Duration::max());
  EXPECT_EQ(seconds(std::numeric_limits<int64_t>::max() / 1000), Duration::max());
  EXPECT_EQ(minutes(std::numeric_limits<int64_t>::min() / 2), Duration::from_ns(std::numeric_limits<int64_t>::min()));
  Duration d = Duration::max();
  d += seconds(1);
  EXPECT_EQ(d, Duration::max());
  TimePoint t = TimePoint::max();
  t += seconds(1);
  EXPECT_EQ(t, TimePoint::max());
  // Ordinary values are exact.
  EXPECT_EQ(now + milliseconds(1500) - now, microseconds(1'500'000));
  EXPECT_EQ(seconds(3) * 4 / 2, seconds(6));
}

}  // namespace
}  // namespace wx
