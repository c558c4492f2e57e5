// The seeded streams and our own distributions. Every figure below is from a
// fixed seed, so these checks are exact reruns, not flaky statistics: the
// tolerances are what a correct sampler of that size must meet.
#include "nodes/runtime/random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace wx {
namespace {

TEST(Rng, SameSeedSameStream) {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, DerivedStreamsAreIndependentOfUse) {
  Rng parent_used(7);
  for (int i = 0; i < 100; ++i) parent_used.next_u64();
  // Derivation reads the seed only.
  EXPECT_EQ(Rng::derive(7, "node", 3).next_u64(), Rng::derive(7, "node", 3).next_u64());
  EXPECT_NE(Rng::derive(7, "node", 3).next_u64(), Rng::derive(7, "node", 4).next_u64());
  EXPECT_NE(Rng::derive(7, "node", 3).next_u64(), Rng::derive(7, "network", 3).next_u64());
  EXPECT_NE(Rng::derive(7, "node", 3).next_u64(), Rng::derive(8, "node", 3).next_u64());
}

TEST(Rng, UniformIsInRangeAndCoversIt) {
  Rng r(1);
  std::vector<int> counts(10);
  for (int i = 0; i < 100'000; ++i) {
    uint64_t v = r.uniform(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, 10'000, 500);
  for (int i = 0; i < 1000; ++i) {
    int64_t v = r.uniform_int(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
  }
  EXPECT_THROW(r.uniform_int(2, 1), std::invalid_argument);
}

TEST(Rng, ExponentialHasTheRequestedMean) {
  Rng r(2);
  double sum = 0;
  const int n = 200'000;
  for (int i = 0; i < n; ++i) {
    double x = r.exponential(5.0);
    ASSERT_GE(x, 0.0);
    sum += x;
  }
  EXPECT_NEAR(sum / n, 5.0, 0.05);
}

TEST(Rng, NormalHasTheRequestedMeanAndSpread) {
  Rng r(3);
  double sum = 0, sq = 0;
  const int n = 200'000;
  for (int i = 0; i < n; ++i) {
    double x = r.normal(10.0, 2.0);
    sum += x;
    sq += x * x;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 10.0, 0.02);
  EXPECT_NEAR(std::sqrt(sq / n - mean * mean), 2.0, 0.02);
}

TEST(Rng, LognormalMedianIsExpMu) {
  Rng r(4);
  std::vector<double> v;
  for (int i = 0; i < 100'001; ++i) v.push_back(r.lognormal(1.0, 0.5));
  std::nth_element(v.begin(), v.begin() + 50'000, v.end());
  EXPECT_NEAR(v[50'000], std::exp(1.0), 0.03);
}

TEST(Zipf, FollowsThePowerLaw) {
  Rng r(5);
  Zipf z(1000, 1.0);
  std::map<uint64_t, int> counts;
  const int n = 500'000;
  for (int i = 0; i < n; ++i) {
    uint64_t k = z.sample(r);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, 1000u);
    ++counts[k];
  }
  // P(k) = k^-1 / H(1000); H(1000) ≈ 7.4855.
  const double h = 7.485470860550345;
  for (uint64_t k : {1, 2, 10}) {
    const double expected = n / (static_cast<double>(k) * h);
    EXPECT_NEAR(counts[k], expected, expected * 0.03) << "k=" << k;
  }
  EXPECT_GT(counts[1], counts[2]);
}

TEST(Zipf, HandlesHugeSupportAndOtherExponents) {
  Rng r(6);
  Zipf big(uint64_t{1} << 40, 1.2);
  for (int i = 0; i < 1000; ++i) {
    uint64_t k = big.sample(r);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, uint64_t{1} << 40);
  }
  Zipf one(1, 2.0);
  EXPECT_EQ(one.sample(r), 1u);
  EXPECT_THROW(Zipf(0, 1.0), std::invalid_argument);
  EXPECT_THROW(Zipf(10, 0.0), std::invalid_argument);
}

}  // namespace
}  // namespace wx
