// core/decimal.h: RoundToNearest is std::nearbyint (default rounding mode) without libm, and
// ScaledDecimal finds the exact decimal of a double.
#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "edgepipe/core/decimal.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;

namespace {
bool SameBits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }
}  // namespace

TEST_GROUP(Decimal){};

TEST(Decimal, RoundToNearestIsNearbyintBitForBit) {
  CHECK_EQUAL(FE_TONEAREST, std::fegetround());
  const double inf = std::numeric_limits<double>::infinity();
  const double special[] = {0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 4503599627370495.5,
                            -4503599627370495.5, 0x1p52, 0x1p52 + 1, 0x1p53, -0x1p53, 1e300, -1e300, inf, -inf,
                            std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::min(),
                            2137.0000000000005, 2136.9999999999995};
  for (double s : special)
    CHECK_TEXT(SameBits(std::nearbyint(s), RoundToNearest(s)), std::to_string(s).c_str());
  CHECK_TRUE(std::isnan(RoundToNearest(std::numeric_limits<double>::quiet_NaN())));
  // Random bit patterns (every exponent) and values around halves at sensor scales.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> scaled(-1e7, 1e7);
  for (int i = 0; i < 200000; ++i) {
    double a = std::bit_cast<double>(rng());
    if (std::isnan(a)) continue;
    double b = std::floor(scaled(rng)) + 0.5;  // exact halves: ties go to even
    double c = scaled(rng) * 100;
    CHECK(SameBits(std::nearbyint(a), RoundToNearest(a)));
    CHECK(SameBits(std::nearbyint(b), RoundToNearest(b)));
    CHECK(SameBits(std::nearbyint(c), RoundToNearest(c)));
  }
}

TEST(Decimal, ScaledDecimalFindsTheExactDecimalOrRefuses) {
  int64_t n = 0;
  CHECK_TRUE(ScaledDecimal(21.37, 2, 0x1p50, &n));
  LONGS_EQUAL(2137, n);
  CHECK_FALSE(ScaledDecimal(21.37, 1, 0x1p50, &n));  // 213.7 is no integer
  CHECK_TRUE(ScaledDecimal(-0.125, 3, 0x1p50, &n));
  LONGS_EQUAL(-125, n);
  CHECK_FALSE(ScaledDecimal(0.1 + 0.2, 2, 0x1p50, &n));  // 0.30000000000000004 is not 30 / 100
  CHECK_FALSE(ScaledDecimal(1e17, 2, 0x1p50, &n));       // over max_scaled
  CHECK_FALSE(ScaledDecimal(std::numeric_limits<double>::quiet_NaN(), 0, 0x1p50, &n));
  CHECK_FALSE(ScaledDecimal(std::numeric_limits<double>::infinity(), 0, 0x1p53, &n));
}
