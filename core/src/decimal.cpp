#include "edgepipe/core/decimal.h"

#include <bit>
#include <cmath>

namespace edgepipe {
namespace {
constexpr double kPow10[kMaxDecimalExponent + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                                    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
}  // namespace

double Pow10(int e) { return kPow10[e]; }

bool ScaledDecimal(double v, int e, double max_scaled, int64_t* n) {
  const double s = v * kPow10[e];
  if (!(std::fabs(s) <= max_scaled)) return false;  // also rejects NaN
  const auto k = static_cast<int64_t>(std::nearbyint(s));
  if (std::bit_cast<uint64_t>(static_cast<double>(k) / kPow10[e]) != std::bit_cast<uint64_t>(v)) return false;
  *n = k;
  return true;
}

}  // namespace edgepipe
