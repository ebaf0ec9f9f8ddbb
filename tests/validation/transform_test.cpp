// Transforms: calibration, unit conversion (and the documented unit table), rounding to the
// resolution; values that no transform changes stay bit for bit.
#include <cmath>
#include <cstring>
#include <random>

#include "test_util.h"
#include "validation/rules.h"
#include "validation/units.h"
#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::vtest;

namespace {

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double Convert(const char* from, const char* to, double v) {
  std::string why;
  auto m = validation::UnitConversion(from, to, &why);
  if (!m) FAIL(why.c_str());
  return m->Apply(v);
}

}  // namespace

TEST_GROUP(Transform) {
  ManualClock clock{kT0};
};

TEST(Transform, CalibrationScaleOffsetAndPolynomial) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "lin"
calibration = { scale = 1.5, offset = -2 }
[[validation.sensor]]
match = "poly"
calibration = { polynomial = [1, 0.5, 0.25] }
[[validation.sensor]]
match = "id"
calibration = { scale = 1 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("lin", kT0, 10), R("poly", kT0, 2), R("id", kT0, -0.0)});
  DOUBLES_EQUAL(13.0, o.passed[0].value, 0);
  DOUBLES_EQUAL(1 + 1 + 1, o.passed[1].value, 0);
  CHECK_EQUAL(Bits(-0.0), Bits(o.passed[2].value));  // identity calibration does not touch the value
}

TEST(Transform, UnitConversions) {
  DOUBLES_EQUAL(0.0, Convert("[degF]", "Cel", 32), 1e-12);
  DOUBLES_EQUAL(100.0, Convert("degF", "Cel", 212), 1e-12);
  DOUBLES_EQUAL(-40.0, Convert("Cel", "[degF]", -40), 1e-12);
  DOUBLES_EQUAL(273.15, Convert("Cel", "K", 0), 1e-12);
  DOUBLES_EQUAL(1013.25, Convert("atm", "hPa", 1), 1e-9);
  DOUBLES_EQUAL(14.503773773, Convert("bar", "[psi]", 1), 1e-8);
  DOUBLES_EQUAL(10.0, Convert("m/s", "km/h", 10 / 3.6), 1e-12);
  DOUBLES_EQUAL(2.54, Convert("[in_i]", "cm", 1), 1e-12);
  DOUBLES_EQUAL(1000.0, Convert("mg/m3", "ug/m3", 1), 1e-9);
  DOUBLES_EQUAL(0.5, Convert("%", "/", 50), 1e-15);
  DOUBLES_EQUAL(180.0, Convert("rad", "deg", M_PI), 1e-12);
  DOUBLES_EQUAL(60.0, Convert("Hz", "1/min", 1), 1e-12);
  // Identity, also for units outside the table (SenML "%RH" has nothing to convert to).
  CHECK_EQUAL(Bits(0.1), Bits(Convert("%RH", "%RH", 0.1)));
  CHECK_EQUAL(Bits(0.1), Bits(Convert("degC", "Cel", 0.1)));
  std::string why;
  CHECK_FALSE(validation::UnitConversion("hPa", "Cel", &why).has_value());
  CHECK(why.find("pressure") != std::string::npos);
  CHECK_FALSE(validation::UnitConversion("", "Cel", &why).has_value());
  CHECK(why.find("no unit") != std::string::npos);
}

TEST(Transform, EveryUnitRoundTripsThroughEveryUnitOfItsDimension) {
  const auto& table = validation::UnitTable();
  for (const auto& a : table) {
    for (const auto& b : table) {
      if (std::strcmp(a.dimension, b.dimension) != 0) continue;
      const double x = 12.345;
      const double y = Convert(b.name, a.name, Convert(a.name, b.name, x));
      if (std::fabs(y - x) > 1e-9 * std::max(1.0, std::fabs(x)))
        FAIL((std::string(a.name) + " -> " + b.name + " -> back gave " + std::to_string(y)).c_str());
    }
  }
}

TEST(Transform, TheUnitTableIsDocumented) {
  std::string doc = testing::ReadFile(testing::SourceDir() + "/docs/data-quality.md");
  for (const auto& u : validation::UnitTable()) {
    std::string cell = std::string("`") + u.name + "`";
    if (doc.find(cell) == std::string::npos)
      FAIL(("docs/data-quality.md does not list unit " + cell).c_str());
  }
}

TEST(Transform, UnitDeclarationConversionAndFailures) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t/*"
unit = { from = "[degF]", to = "Cel" }
resolution = 0.01
[[validation.sensor]]
match = "t/soft"
unit = { to = "Cel", action = "flag" }
[[validation.sensor]]
match = "declared"
unit = { from = "NTU" }
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("t/a", kT0, 98.6), R("t/a", kT0 + 1, 300, "K"), R("t/a", kT0 + 2, 21.5, "Cel"), R("t/a", kT0 + 3, 50, "%RH"),
                  R("t/soft", kT0, 50, "%RH"), R("declared", kT0, 3.2), R("declared", kT0 + 1, 3.2, "FNU")});
  LONGS_EQUAL(6, o.passed.size());
  DOUBLES_EQUAL(37.0, o.passed[0].value, 0);  // rounded to 0.01
  STRCMP_EQUAL("Cel", o.passed[0].unit.c_str());
  DOUBLES_EQUAL(26.85, o.passed[1].value, 0);
  CHECK_EQUAL(Bits(21.5), Bits(o.passed[2].value));
  // t/soft: unit not convertible, flagged and left as received.
  CHECK_EQUAL(kQualityUnit, o.passed[3].quality);
  CHECK_EQUAL(Bits(50.0), Bits(o.passed[3].value));
  STRCMP_EQUAL("%RH", o.passed[3].unit.c_str());
  STRCMP_EQUAL("NTU", o.passed[4].unit.c_str());
  STRCMP_EQUAL("FNU", o.passed[5].unit.c_str());  // a unit the reading carries is kept
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("unit", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("50", o.rejected[0].value.c_str());
  CHECK(o.rejected[0].reason.find("unknown unit \"%RH\"") != std::string::npos);
}

TEST(Transform, RoundingToTheResolution) {
  validation::CompiledRules r;
  r.resolution = 0.1;
  r.resolution_pow10 = 10;
  DOUBLES_EQUAL(21.3, validation::RoundToResolution(21.34, r), 0);
  CHECK_EQUAL(Bits(4.7), Bits(validation::RoundToResolution(4.66666666666667, r)));
  CHECK_EQUAL(Bits(0.0), Bits(validation::RoundToResolution(-2.77555756156289e-17, r)));  // no -0 made by rounding
  CHECK_EQUAL(Bits(0.0), Bits(validation::RoundToResolution(-0.04, r)));
  CHECK_EQUAL(Bits(-0.0), Bits(validation::RoundToResolution(-0.0, r)));  // on the grid: kept as received
  CHECK_EQUAL(Bits(1e300), Bits(validation::RoundToResolution(1e300, r)));
  r.resolution_pow10 = 0;
  r.resolution = 0.5;
  DOUBLES_EQUAL(2.5, validation::RoundToResolution(2.3, r), 0);
  r.resolution = 5;
  DOUBLES_EQUAL(1015, validation::RoundToResolution(1013.25, r), 0);
}

TEST(Transform, ValuesOnTheGridAreUnchangedBitForBit) {
  // Values printed with d decimals and parsed back (as a source would) are already on the grid.
  std::mt19937_64 rng(7);
  for (int d = 0; d <= 4; ++d) {
    validation::CompiledRules r;
    r.resolution = 1.0 / std::pow(10.0, d);
    r.resolution_pow10 = std::pow(10.0, d);
    std::uniform_real_distribution<double> dist(-1e5, 1e5);
    for (int i = 0; i < 20000; ++i) {
      char buf[64];
      snprintf(buf, sizeof buf, "%.*f", d, dist(rng));
      const double v = std::strtod(buf, nullptr);
      if (v == 0) continue;
      const double out = validation::RoundToResolution(v, r);
      if (Bits(out) != Bits(v)) FAIL((std::string("rounding changed ") + buf).c_str());
    }
  }
}
