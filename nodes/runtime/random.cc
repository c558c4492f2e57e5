#include "nodes/runtime/random.h"

#include <cassert>
#include <cmath>
#include <stdexcept>

namespace wx {

namespace {
constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) {
    x += 0x9e3779b97f4a7c15ULL;
    s = mix64(x);
  }
  // xoshiro must not start from all zeros; mix64 of distinct inputs makes that
  // astronomically unlikely, but make it impossible.
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
}

uint64_t Rng::derive_seed(uint64_t seed, std::string_view label, uint64_t index) {
  return mix64(mix64(seed ^ fnv1a64(label)) ^ mix64(index + 0x632be59bd9b4e019ULL));
}

Rng Rng::derive(uint64_t seed, std::string_view label, uint64_t index) {
  return Rng(derive_seed(seed, label, index));
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::uniform(uint64_t n) {
  assert(n > 0);
  __uint128_t m = static_cast<__uint128_t>(next_u64()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<__uint128_t>(next_u64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  if (lo > hi) throw std::invalid_argument("Rng::uniform_int: lo > hi");
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == UINT64_MAX) return static_cast<int64_t>(next_u64());
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + uniform(span + 1));
}

double Rng::uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform_real(double lo, double hi) { return lo + (hi - lo) * uniform01(); }

bool Rng::bernoulli(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return uniform01() < p;
}

double Rng::exponential(double mean) {
  // 1 - u is in (0, 1], so the log is finite.
  return -mean * std::log(1.0 - uniform01());
}

Duration Rng::exponential(Duration mean) {
  return nanoseconds(static_cast<int64_t>(std::llround(exponential(static_cast<double>(mean.ns())))));
}

double Rng::normal(double mean, double stddev) {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return mean + stddev * spare_normal_;
  }
  double u1 = 1.0 - uniform01();  // (0, 1]
  double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_normal_ = r * std::sin(theta);
  has_spare_normal_ = true;
  return mean + stddev * r * std::cos(theta);
}

double Rng::lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }

Duration Rng::uniform(Duration lo, Duration hi) {
  return nanoseconds(uniform_int(lo.ns(), hi.ns()));
}

// --- Zipf: rejection-inversion sampling ---------------------------------
// H(x) = integral of x^-s, the helper of the method; written with expm1/log1p
// forms so that s near 1 stays accurate.

namespace {
double helper1(double x) {  // log1p(x)/x, stable near 0
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}
double helper2(double x) {  // expm1(x)/x, stable near 0
  return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}
}  // namespace

Zipf::Zipf(uint64_t n, double s) : n_(n), s_(s) {
  if (n == 0) throw std::invalid_argument("Zipf: n must be >= 1");
  if (!(s > 0)) throw std::invalid_argument("Zipf: exponent must be > 0");
  h_x1_ = h(1.5) - 1.0;
  h_n_ = h(static_cast<double>(n) + 0.5);
  threshold_ = 2.0 - h_inv(h(2.5) - std::pow(2.0, -s));
}

double Zipf::h(double x) const {
  const double log_x = std::log(x);
  return helper2((1.0 - s_) * log_x) * log_x;
}

double Zipf::h_inv(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // numerical guard
  return std::exp(helper1(t) * x);
}

uint64_t Zipf::sample(Rng& rng) const {
  if (n_ == 1) return 1;
  for (;;) {
    const double u = h_n_ + rng.uniform01() * (h_x1_ - h_n_);
    const double x = h_inv(u);
    double k = std::floor(x + 0.5);
    if (k < 1) k = 1;
    if (k > static_cast<double>(n_)) k = static_cast<double>(n_);
    if (k - x <= threshold_ || u >= h(k + 0.5) - std::pow(k, -s_)) {
      return static_cast<uint64_t>(k);
    }
  }
}

}  // namespace wx
