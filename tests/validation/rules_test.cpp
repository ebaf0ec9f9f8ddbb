// Each rule on its own, with its edge cases: bounds, first readings, references, actions.
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <random>

#include "vtest.h"

#include "validation/rules.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::vtest;

namespace {

std::vector<Reading> Series(const std::string& sensor, const std::vector<double>& values, int64_t step = kSec) {
  std::vector<Reading> out;
  for (size_t i = 0; i < values.size(); ++i) out.push_back(R(sensor, kT0 + static_cast<int64_t>(i) * step, values[i]));
  return out;
}

bool Contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

}  // namespace

TEST_GROUP(Rules) {
  ManualClock clock{kT0 + 3600 * kSec};
};

TEST(Rules, TypeRejectsWhatTheSensorDoesNotDeclare) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "num"
type = "reject"
[[validation.sensor]]
match = "flagged"
type = { expect = "bool", action = "flag" }
)");
  Validator v(cfg, clock);
  Reading b = R("num", kT0 + 2, 1);
  b.type = ValueType::kBool;
  Out o = Run(v, {Text("num", kT0, "NA"), R("num", kT0 + 1, 3.5), b, R("flagged", kT0, 1), Text("other", kT0, "NA")});
  LONGS_EQUAL(2, o.rejected.size());
  STRCMP_EQUAL("type", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("NA", o.rejected[0].value.c_str());
  CHECK(Contains(o.rejected[0].reason, "string (NA) where the sensor declares number"));
  CHECK(Contains(o.rejected[1].reason, "boolean"));
  LONGS_EQUAL(3, o.passed.size());
  CHECK_EQUAL(0u, o.passed[0].quality);
  CHECK(o.passed[1].quality & kQualityType);  // "flagged" expects bool, got a number
  CHECK_EQUAL(0u, o.passed[2].quality);       // no type rule for "other"
}

TEST(Rules, SentinelsAreExactAndJudgedBeforeCalibration) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "co"
sentinel = [-200]
calibration = { scale = 2 }
[[validation.sensor]]
match = "wave"
sentinel = { values = [-99999.992, -100000], action = "flag" }
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("co", kT0, -200), R("co", kT0 + 1, -200.0000001), R("co", kT0 + 2, -199.9), R("wave", kT0, -99999.992),
                  R("wave", kT0 + 1, -100000), R("wave", kT0 + 2, 0.5)});
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("sentinel", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("-200", o.rejected[0].value.c_str());  // the raw value, not calibrated
  CHECK(Contains(o.rejected[0].reason, "missing-value marker"));
  LONGS_EQUAL(5, o.passed.size());
  DOUBLES_EQUAL(-400.0000002, o.passed[0].value, 1e-9);  // calibrated
  CHECK(o.passed[2].quality & kQualitySentinel);
  CHECK(o.passed[3].quality & kQualitySentinel);
  CHECK_EQUAL(0u, o.passed[4].quality);
}

TEST(Rules, RangeBoundsAreInclusiveUnlessExclusive) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
range = { min = 0, max = 100 }
[[validation.sensor]]
match = "co"
range = { min = 0, max = 10000, exclusive = true, action = "flag" }
[[validation.sensor]]
match = "depth"
range = { min = 0 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("t", kT0, 0), R("t", kT0 + 1, 100), R("t", kT0 + 2, -0.001), R("t", kT0 + 3, 100.5),
                  R("co", kT0, 10000), R("co", kT0 + 1, 9999.9), R("depth", kT0, -0.082), R("depth", kT0 + 1, 1e300)});
  LONGS_EQUAL(3, o.rejected.size());
  CHECK(Contains(o.rejected[0].reason, "below the minimum 0"));
  CHECK(Contains(o.rejected[1].reason, "above the maximum 100"));
  STRCMP_EQUAL("-0.082", o.rejected[2].value.c_str());
  LONGS_EQUAL(5, o.passed.size());
  CHECK(o.passed[2].quality & kQualityRange);  // 10000 is saturated
  CHECK_EQUAL(0u, o.passed[3].quality);
  CHECK_EQUAL(0u, o.passed[4].quality);  // no max for depth
}

TEST(Rules, RangeIsJudgedInTheConvertedUnit) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
unit = { from = "[degF]", to = "Cel" }
range = { max = 99 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("t", kT0, 212), R("t", kT0 + 1, 32)});
  LONGS_EQUAL(1, o.rejected.size());
  CHECK(Contains(o.rejected[0].reason, "above the maximum 99"));
  CHECK(Contains(o.rejected[0].reason, "(received 212 [degF])"));
  LONGS_EQUAL(1, o.passed.size());
  DOUBLES_EQUAL(0.0, o.passed[0].value, 1e-12);
  STRCMP_EQUAL("Cel", o.passed[0].unit.c_str());
}

TEST(Rules, RateOfChangeUsesTheLastPassedReading) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
rate_of_change = { max = 2, action = "reject" }
)");
  Validator v(cfg, clock);
  // 10 -> 12 in 1 s is exactly the limit; 100 is rejected and does not become the reference;
  // 13 (1 from 12 in 2 s) passes; same timestamp again is not judged by this rule.
  Out o = Run(v, Series("t", {10, 12, 100, 13}));
  LONGS_EQUAL(3, o.passed.size());
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("rate_of_change", o.rejected[0].rule.c_str());
  CHECK(Contains(o.rejected[0].reason, "changed by 88 in 1.0 s (88/s), more than the maximum 2/s"));
  // A slow change over a long gap is fine.
  o = Run(v, {R("t", kT0 + 3600 * kSec, 500)});
  LONGS_EQUAL(1, o.passed.size());
}

TEST(Rules, RateOfChangeFlagsAndTheFirstReadingIsNeverJudged) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
rate_of_change = { max = 0.5 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, Series("t", {1000, 1, 1.2}));
  LONGS_EQUAL(3, o.passed.size());
  CHECK_EQUAL(0u, o.passed[0].quality);
  CHECK(o.passed[1].quality & kQualityRateOfChange);
  CHECK_EQUAL(0u, o.passed[2].quality);  // reference is the flagged reading 1
}

TEST(Rules, StuckByCount) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
stuck = { count = 3 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, Series("t", {5, 5, 5, 5, 6, 6}));
  LONGS_EQUAL(6, o.passed.size());
  uint32_t expect[] = {0, 0, kQualityStuck, kQualityStuck, 0, 0};
  for (int i = 0; i < 6; ++i) CHECK_EQUAL(expect[i], o.passed[i].quality);
  ValidationStats s = v.stats();
  LONGS_EQUAL(2, s.flags.at("stuck"));
  LONGS_EQUAL(2, s.flagged);
}

TEST(Rules, StuckRejectedReadingsKeepTheRunGoing) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
stuck = { count = 2, delta = 0.05, action = "reject" }
)");
  Validator v(cfg, clock);
  Out o = Run(v, Series("t", {0, 0.04, 0.01, 0, 3}));
  LONGS_EQUAL(2, o.passed.size());
  LONGS_EQUAL(3, o.rejected.size());
  CHECK(Contains(o.rejected[0].reason, "repeated 2 times"));
  DOUBLES_EQUAL(3, o.passed[1].value, 0);
}

TEST(Rules, StuckByDurationIsStrictlyLongerThan) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
stuck = { duration = "1h" }
)");
  Validator v(cfg, clock);
  // Every 20 minutes: 0, 20, 40, 60 (exactly 1 h: not longer), 80 min.
  Out o = Run(v, Series("t", {7, 7, 7, 7, 7}, 20 * 60 * kSec));
  uint32_t expect[] = {0, 0, 0, 0, kQualityStuck};
  for (int i = 0; i < 5; ++i) CHECK_EQUAL(expect[i], o.passed[i].quality);
  // A single reading never is a run, however long after.
  Validator w(cfg, clock);
  o = Run(w, {R("t", kT0, 7), R("t", kT0 + 100 * 3600 * kSec, 8)});
  CHECK_EQUAL(0u, o.passed[1].quality);
}

TEST(Rules, SpikeNeedsAFullWindow) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
spike = { window = 5, threshold = 3 }
)");
  Validator v(cfg, clock);
  // Window not full yet for the 1000 at index 3.
  Out o = Run(v, Series("t", {10, 11, 10, 1000}));
  for (const auto& r : o.passed) CHECK_EQUAL(0u, r.quality);
}

TEST(Rules, SpikeWindowMedianAndMadMatchABruteForceComputation) {
  // The window keeps a sorted copy updated in place; compare with sorting from scratch, over
  // values with many ties (a quantised signal) and odd and even window sizes.
  std::mt19937_64 rng(7);
  for (uint32_t cap : {1u, 2u, 3u, 4u, 5u, 11u, 12u, 31u}) {
    validation::SpikeWindow w(cap);
    std::deque<double> ref;
    for (int i = 0; i < 2000; ++i) {
      const double v = std::uniform_int_distribution<int>(-20, 20)(rng) * 0.5;
      w.Push(v);
      ref.push_back(v);
      if (ref.size() > cap) ref.pop_front();
      std::vector<double> sorted(ref.begin(), ref.end());
      std::sort(sorted.begin(), sorted.end());
      const size_t n = sorted.size();
      const double med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      std::vector<double> dev;
      for (double x : sorted) dev.push_back(std::fabs(x - med));
      std::sort(dev.begin(), dev.end());
      const double mad = n % 2 ? dev[n / 2] : (dev[n / 2 - 1] + dev[n / 2]) / 2;
      LONGS_EQUAL(n, w.size());
      DOUBLES_EQUAL(med, w.Median(), 0);
      DOUBLES_EQUAL(mad, w.Mad(w.Median()), 0);
    }
  }
}

TEST(Rules, SpikeIsAHampelOutlier) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
spike = { window = 5, threshold = 3, action = "reject" }
)");
  Validator v(cfg, clock);
  // Window {10, 11, 12, 11, 10}: median 11, MAD 1, scale 1.4826: limit 4.45.
  Out o = Run(v, Series("t", {10, 11, 12, 11, 10, 15.4, 15.5, 11}));
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("spike", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("15.5", o.rejected[0].value.c_str());
  CHECK(Contains(o.rejected[0].reason, "from the median 11 of the last 5 readings"));
  LONGS_EQUAL(7, o.passed.size());  // 15.4 is within 4.45 of 11
}

TEST(Rules, SpikeOnAConstantWindowNeedsMinScale) {
  ValidationConfig quiet = ParseValidation(R"(
[[validation.sensor]]
match = "t"
spike = "flag"
)");
  Validator v(quiet, clock);
  std::vector<double> vals(11, 0.0);
  vals.push_back(1683.48);
  Out o = Run(v, Series("t", vals));
  CHECK_EQUAL(0u, o.passed.back().quality);  // MAD 0 and no min_scale: nothing to judge against

  ValidationConfig floor = ParseValidation(R"(
[[validation.sensor]]
match = "t"
spike = { min_scale = 1 }
)");
  Validator w(floor, clock);
  vals.push_back(0);
  vals.push_back(2.9);
  o = Run(w, Series("t", vals));
  CHECK(o.passed[11].quality & kQualitySpike);
  CHECK_EQUAL(0u, o.passed[12].quality);
  CHECK_EQUAL(0u, o.passed[13].quality);  // within 3 x 1 of the median 0
}

TEST(Rules, FutureDependsOnATrustedClock) {
  ValidationConfig cfg = ParseValidation(R"(
[validation.default]
future = { skew = "1m" }
)");
  Validator v(cfg, clock);
  const int64_t now = clock.SystemNowUs();
  Out o = Run(v, {R("a", now + 60 * kSec, 1), R("b", now + 60 * kSec + 1, 1)});
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("future", o.rejected[0].rule.c_str());
  CHECK(Contains(o.rejected[0].reason, "ahead of the system clock (allowed skew 60.0 s)"));
  v.SetClockTrusted(false);
  o = Run(v, {R("c", now + 3600 * kSec, 1)});
  LONGS_EQUAL(1, o.passed.size());
}

TEST(Rules, TooOldCatchesA1970Clock) {
  ValidationConfig cfg = ParseValidation(R"(
[validation.default]
too_old = "reject"
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("a", 946'684'800'000'000ll, 1), R("a", 946'684'800'000'000ll - 1, 1), R("a", 12 * kSec, 1)});
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(2, o.rejected.size());
  CHECK(Contains(o.rejected[1].reason, "1970-01-01T00:00:12.000000Z is before the floor 2000-01-01T00:00:00.000000Z"));
}

TEST(Rules, BackwardsComparesWithTheLatestPassedTime) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "m"
backwards = "reject"
)");
  cfg.duplicate = RuleAction::kOff;
  Validator v(cfg, clock);
  Out o = Run(v, {R("m", kT0 + 10, 1), R("m", kT0 + 5, 2), R("m", kT0 + 10, 3), R("m", kT0 + 11, 4), R("x", kT0 + 10, 1),
                  R("x", kT0 + 5, 2)});
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("backwards", o.rejected[0].rule.c_str());
  LONGS_EQUAL(kT0 + 5, o.rejected[0].reading_ts_us);
  LONGS_EQUAL(5, o.passed.size());  // equal time is not backwards; sensor x promises nothing
}

TEST(Rules, BackwardsFlaggedReadingsDoNotMoveTheReference) {
  ValidationConfig cfg = ParseValidation(R"(
[validation.default]
backwards = "flag"
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("m", kT0 + 100, 1), R("m", kT0 + 50, 2), R("m", kT0 + 60, 3), R("m", kT0 + 101, 4)});
  uint32_t expect[] = {0, kQualityBackwards, kQualityBackwards, 0};
  for (int i = 0; i < 4; ++i) CHECK_EQUAL(expect[i], o.passed[i].quality);
}

TEST(Rules, DuplicatesBySequence) {
  ValidationConfig cfg = ParseValidation(R"(
[validation]
duplicate_by = "sequence"
)");
  Validator v(cfg, clock);
  auto S = [](int64_t ts, double val, uint64_t seq) {
    Reading r = R("a", ts, val);
    r.seq = seq;
    return r;
  };
  // Re-stamped redelivery: same sequence and value, new time -> dropped. Same sequence, other
  // value -> conflict. Sequence 0 falls back to the timestamp.
  Out o = Run(v, {S(kT0, 1, 7), S(kT0 + 5, 1, 7), S(kT0 + 6, 2, 7), S(kT0 + 9, 3, 0), S(kT0 + 9, 4, 0), S(kT0, 5, 8)});
  LONGS_EQUAL(3, o.passed.size());
  LONGS_EQUAL(2, o.rejected.size());
  CHECK(Contains(o.rejected[0].reason, "seq 7"));
  LONGS_EQUAL(1, v.stats().duplicates_dropped);
  LONGS_EQUAL(kT0, o.passed[2].ts_us);  // same time, new sequence: not a duplicate by sequence
}

TEST(Rules, FirstRejectWinsAndFlagsAccumulate) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
range = { max = 50, action = "flag" }
rate_of_change = { max = 1 }
backwards = "flag"
future = "reject"
)");
  Validator v(cfg, clock);
  Out o = Run(v, {R("t", kT0 + 10 * kSec, 20), R("t", kT0 + 11 * kSec, 90), R("t", kT0 + 5 * kSec, 95),
                  R("t", kT0 + 86400 * kSec, 1000)});
  LONGS_EQUAL(3, o.passed.size());
  CHECK_EQUAL(kQualityRange | kQualityRateOfChange, o.passed[1].quality);
  // Backwards and out of range; the rate is not judged against an earlier timestamp.
  CHECK_EQUAL(kQualityRange | kQualityBackwards, o.passed[2].quality);
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("future", o.rejected[0].rule.c_str());
}

TEST(Rules, CountersPerSensorPerRule) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "*"
range = { min = 0 }
stuck = { count = 2 }
)");
  Validator v(cfg, clock);
  Run(v, {R("a", kT0, -1), R("a", kT0 + 1, 1), R("a", kT0 + 2, 1), R("b", kT0, -5), R("b", kT0 + 1, -6), R("b", kT0 + 1, -6),
          R("c", kT0, NAN)});
  std::vector<SensorQuality> rep = v.SensorReport();
  LONGS_EQUAL(3, rep.size());
  STRCMP_EQUAL("a", rep[0].sensor.c_str());
  LONGS_EQUAL(3, rep[0].counters.received);
  LONGS_EQUAL(2, rep[0].counters.passed);
  LONGS_EQUAL(1, rep[0].counters.flagged);
  LONGS_EQUAL(1, rep[0].counters.rejected.at("range"));
  LONGS_EQUAL(1, rep[0].counters.flags.at("stuck"));
  LONGS_EQUAL(2, rep[1].counters.rejected.at("range"));
  // A rejected reading is remembered as seen: its exact repeat is dropped, not quarantined twice.
  LONGS_EQUAL(1, rep[1].counters.duplicates_dropped);
  LONGS_EQUAL(1, rep[2].counters.rejected.at("finite"));
  ValidationStats s = v.stats();
  LONGS_EQUAL(7, s.received);
  LONGS_EQUAL(3, s.rejected.at("range"));
  LONGS_EQUAL(1, s.rejected.at("finite"));
  LONGS_EQUAL(4, s.rejected_total());
  LONGS_EQUAL(1, s.duplicates_dropped);
}

TEST(Rules, SeedPrimesEveryStatefulRule) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "t"
backwards = "reject"
rate_of_change = { max = 1, action = "reject" }
stuck = { count = 3, action = "reject" }
)");
  Validator v(cfg, clock);
  // As Store::RecentReadings returns them: newest chunk first.
  v.Seed({R("t", kT0 + 2 * kSec, 5), R("t", kT0 + 1 * kSec, 5)});
  Out o = Run(v, {R("t", kT0, 5.5), R("t", kT0 + 3 * kSec, 9), R("t", kT0 + 3 * kSec + 1, 5)});
  LONGS_EQUAL(3, o.rejected.size());
  STRCMP_EQUAL("backwards", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("rate_of_change", o.rejected[1].rule.c_str());
  STRCMP_EQUAL("stuck", o.rejected[2].rule.c_str());
  LONGS_EQUAL(3, v.stats().received);
}
