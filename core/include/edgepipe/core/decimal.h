// A double as a decimal n / 10^e, exactly: shared by the buffer's value column (lossless decimal
// encoding) and the uploader's number formatting (shortest text).
#pragma once

#include <cstdint>

namespace edgepipe {

constexpr int kMaxDecimalExponent = 18;

// 10^e for e in [0, kMaxDecimalExponent], exact.
double Pow10(int e);

// The integer n with n / 10^e == v bit for bit, found as the integer nearest to v * 10^e, when
// |v * 10^e| <= max_scaled (also false for NaN). Correct because IEEE division rounds correctly,
// as parsing the decimal text does. Below 2^53 every integer is a double; below 2^50 the rounding
// of the product cannot move the nearest integer, so n is then the closest e-decimal to v.
bool ScaledDecimal(double v, int e, double max_scaled, int64_t* n);

}  // namespace edgepipe
