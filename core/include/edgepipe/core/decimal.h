// A double as a decimal n / 10^e, exactly: shared by the buffer's value column (lossless decimal
// encoding) and the uploader's number formatting (shortest text). Inline: both call it in their
// per-value loops.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace edgepipe {

constexpr int kMaxDecimalExponent = 18;

namespace detail {
inline constexpr double kPow10[kMaxDecimalExponent + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                                           1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                                           1e14, 1e15, 1e16, 1e17, 1e18};
}  // namespace detail

// 10^e for e in [0, kMaxDecimalExponent], exact.
inline double Pow10(int e) { return detail::kPow10[e]; }

// std::nearbyint in the default rounding mode (to nearest, ties to even), without a call into
// libm: below 2^52, adding 2^52 leaves no fraction bits, so the addition itself rounds; from 2^52
// on every double is an integer. NaN and infinities come back unchanged.
inline double RoundToNearest(double s) {
  const double a = std::fabs(s);
  if (!(a < 0x1p52)) return s;
  return std::copysign((a + 0x1p52) - 0x1p52, s);
}

// The integer n with n / 10^e == v bit for bit, found as the integer nearest to v * 10^e, when
// |v * 10^e| <= max_scaled (also false for NaN). Correct because IEEE division rounds correctly,
// as parsing the decimal text does. Below 2^53 every integer is a double; below 2^50 the rounding
// of the product cannot move the nearest integer, so n is then the closest e-decimal to v.
inline bool ScaledDecimal(double v, int e, double max_scaled, int64_t* n) {
  const double s = v * detail::kPow10[e];
  if (!(std::fabs(s) <= max_scaled)) return false;  // also rejects NaN
  const auto k = static_cast<int64_t>(RoundToNearest(s));
  if (std::bit_cast<uint64_t>(static_cast<double>(k) / detail::kPow10[e]) != std::bit_cast<uint64_t>(v)) return false;
  *n = k;
  return true;
}

}  // namespace edgepipe
