// The kernel alone: ordering, cancellation, owners, run limits.
#include "sim/kernel.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace wx::sim {
namespace {

using namespace time_literals;

TEST(Kernel, EventsAtEqualTimesRunInSchedulingOrder) {
  Kernel k;
  std::vector<int> order;
  // Interleave times so the heap has to reorder, with many ties per time.
  for (int i = 0; i < 1000; ++i) {
    const TimePoint at = TimePoint::zero() + milliseconds(i % 7);
    k.schedule_at(at, kKernelOwner, {}, [&order, i] { order.push_back(i); });
  }
  ASSERT_TRUE(k.run_until_idle());
  ASSERT_EQ(order.size(), 1000u);
  // Expected: grouped by time, and inside one time by scheduling order.
  std::vector<int> expected;
  for (int t = 0; t < 7; ++t)
    for (int i = t; i < 1000; i += 7) expected.push_back(i);
  EXPECT_EQ(order, expected);
}

TEST(Kernel, EventsScheduledForNowDuringAnEventRunAfterTheOnesAlreadyDue) {
  Kernel k;
  std::vector<std::string> order;
  k.schedule_at(TimePoint::zero() + 1_ms, kKernelOwner, {}, [&] {
    order.push_back("a");
    k.schedule_at(k.now(), kKernelOwner, {}, [&] { order.push_back("a-child"); });
  });
  k.schedule_at(TimePoint::zero() + 1_ms, kKernelOwner, {}, [&] { order.push_back("b"); });
  k.run_until_idle();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "a-child"}));
}

TEST(Kernel, TimeOnlyMovesForwardAndThePastIsClamped) {
  Kernel k;
  k.run_until(TimePoint::zero() + 5_s);
  TimePoint fired_at;
  k.schedule_at(TimePoint::zero() + 1_s, kKernelOwner, {}, [&] { fired_at = k.now(); });
  k.run_until_idle();
  EXPECT_EQ(fired_at, TimePoint::zero() + 5_s);
}

TEST(Kernel, CancelledEventsNeverRunAndIdsAreNotReused) {
  Kernel k;
  int ran = 0;
  EventId a = k.schedule_after(1_ms, kKernelOwner, {}, [&] { ran += 1; });
  EventId b = k.schedule_after(2_ms, kKernelOwner, {}, [&] { ran += 10; });
  EXPECT_TRUE(k.cancel(a));
  EXPECT_FALSE(k.cancel(a)) << "second cancel is a no-op";
  k.run_until_idle();
  EXPECT_EQ(ran, 10);
  EXPECT_FALSE(k.cancel(b)) << "cancel after firing is a no-op";
  // The freed slot is reused, but the old id must not cancel the new event.
  EventId c = k.schedule_after(1_ms, kKernelOwner, {}, [&] { ran += 100; });
  EXPECT_NE(a, c);
  EXPECT_FALSE(k.cancel(a));
  k.run_until_idle();
  EXPECT_EQ(ran, 110);
  EXPECT_FALSE(k.cancel(0));
}

TEST(Kernel, EventsOfAKilledOwnerAreDroppedAndCounted) {
  Kernel k;
  OwnerId o = k.new_owner();
  int ran = 0;
  k.schedule_after(1_ms, o, {}, [&] { ++ran; });
  k.schedule_after(2_ms, o, {}, [&] { ++ran; });
  k.schedule_after(3_ms, kKernelOwner, {}, [&] { ++ran; });
  k.kill_owner(o);
  k.run_until_idle();
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(k.stale_dropped(), 2u);
  EXPECT_EQ(k.events_executed(), 1u);
}

TEST(Kernel, RunUntilStopsAtTheLimitEvenWithCancelledEventsAtTheHead) {
  Kernel k;
  int ran = 0;
  EventId a = k.schedule_at(TimePoint::zero() + 1_ms, kKernelOwner, {}, [&] { ++ran; });
  k.schedule_at(TimePoint::zero() + 10_ms, kKernelOwner, {}, [&] { ++ran; });
  k.cancel(a);
  k.run_until(TimePoint::zero() + 5_ms);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(k.now(), TimePoint::zero() + 5_ms);
  k.run_until(TimePoint::zero() + 10_ms);
  EXPECT_EQ(ran, 1);
}

TEST(Kernel, FailureStopsTheRun) {
  Kernel k;
  int ran = 0;
  k.schedule_after(1_ms, kKernelOwner, {}, [&] { k.fail("test failure"); });
  k.schedule_after(2_ms, kKernelOwner, {}, [&] { ++ran; });
  EXPECT_FALSE(k.run_until_idle());
  EXPECT_EQ(ran, 0);
  ASSERT_TRUE(k.failure().has_value());
  EXPECT_EQ(*k.failure(), "test failure");
}

TEST(Kernel, ACallbackThatThrowsFailsTheRunWithItsText) {
  Kernel k;
  int ran = 0;
  k.schedule_after(1_ms, kKernelOwner, TraceTag{TraceKind::timer, 7, 0},
                   [] { throw std::runtime_error("callback broke"); });
  k.schedule_after(2_ms, kKernelOwner, {}, [&] { ++ran; });
  bool ok = true;
  EXPECT_NO_THROW(ok = k.run_until(TimePoint::zero() + 1_s));
  EXPECT_FALSE(ok);
  EXPECT_EQ(ran, 0) << "nothing runs after the failure";
  ASSERT_TRUE(k.failure().has_value());
  EXPECT_NE(k.failure()->find("callback broke"), std::string::npos) << *k.failure();
  EXPECT_NE(k.failure()->find("n7"), std::string::npos) << *k.failure();
}

TEST(Kernel, TraceHashCoversTimeOrderAndTags) {
  auto run = [](int variant) {
    Kernel k;
    for (int i = 0; i < 100; ++i) {
      const int64_t t = (variant == 1 && i == 50) ? 51 : i;
      const uint32_t node = (variant == 2 && i == 70) ? 9 : 1;
      k.schedule_at(TimePoint::zero() + microseconds(t), kKernelOwner, {TraceKind::timer, node, 0}, [] {});
    }
    k.run_until_idle();
    return k.trace().hash();
  };
  EXPECT_EQ(run(0), run(0));
  EXPECT_NE(run(0), run(1)) << "a different time must change the hash";
  EXPECT_NE(run(0), run(2)) << "a different node must change the hash";
}

}  // namespace
}  // namespace wx::sim

namespace wx::sim {
namespace {

// Regression: run_until_idle(max_events) computed its stop point as
// executed + max_events, which wrapped around for the default UINT64_MAX on
// any call after the first event, so a second call ran nothing. Found by
// Kernel.CancelledEventsNeverRunAndIdsAreNotReused.
TEST(Kernel, RunUntilIdleCanBeCalledRepeatedly) {
  Kernel k;
  int ran = 0;
  k.schedule_after(1_ms, kKernelOwner, {}, [&] { ++ran; });
  ASSERT_TRUE(k.run_until_idle());
  k.schedule_after(1_ms, kKernelOwner, {}, [&] { ++ran; });
  ASSERT_TRUE(k.run_until_idle());
  EXPECT_EQ(ran, 2);
  for (int i = 0; i < 10; ++i) k.schedule_after(1_ms, kKernelOwner, {}, [&] { ++ran; });
  ASSERT_TRUE(k.run_until_idle(3));
  EXPECT_EQ(ran, 5) << "max_events bounds one call";
}

}  // namespace
}  // namespace wx::sim
