#include "edgepipe/agent/validator.h"

#include <cmath>
#include <limits>

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;

namespace {
Reading R(const std::string& sensor, int64_t ts, double v) {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.source = "t";
  return r;
}
struct Out {
  std::vector<Reading> passed;
  std::vector<QuarantineRecord> rejected;
};
Out Run(Validator& v, std::vector<Reading> in) {
  Out o;
  v.Process(in, &o.passed, &o.rejected);
  return o;
}
}  // namespace

TEST_GROUP(Validator) {
  ManualClock clock;
  ValidationConfig cfg;
};

TEST(Validator, CleanReadingsPassBitForBit) {
  Validator v(cfg, clock);
  std::vector<Reading> in;
  for (int i = 0; i < 1000; ++i) in.push_back(R("s" + std::to_string(i % 7), i * 1000, std::sin(i) * 1e3));
  std::vector<Reading> copy = in;
  Out o = Run(v, in);
  LONGS_EQUAL(1000, o.passed.size());
  for (size_t i = 0; i < copy.size(); ++i) CHECK_TRUE(copy[i] == o.passed[i]);
  LONGS_EQUAL(0, v.stats().flagged);
}

TEST(Validator, NonFiniteIsRejectedWithAReasonOrFlagged) {
  Validator v(cfg, clock);
  Out o = Run(v, {R("a", 1, std::numeric_limits<double>::quiet_NaN()), R("a", 2, INFINITY), R("a", 3, 1.0)});
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(2, o.rejected.size());
  STRCMP_EQUAL("finite", o.rejected[0].rule.c_str());
  STRCMP_EQUAL("value is NaN", o.rejected[0].reason.c_str());
  STRCMP_EQUAL("value is infinite", o.rejected[1].reason.c_str());
  LONGS_EQUAL(2, o.rejected[1].reading_ts_us);
  LONGS_EQUAL(2, v.stats().rejected.at("finite"));

  cfg.non_finite = RuleAction::kFlag;
  Validator f(cfg, clock);
  o = Run(f, {R("a", 1, NAN)});
  LONGS_EQUAL(1, o.passed.size());
  CHECK(o.passed[0].quality & kQualityNonFinite);
}

TEST(Validator, ExactRepeatsAreDroppedAndConflictsRejected) {
  Validator v(cfg, clock);
  Run(v, {R("a", 10, 1.5), R("b", 10, 2.5)});
  Out o = Run(v, {R("a", 10, 1.5), R("a", 10, 9.0), R("b", 11, 2.5), R("a", 11, 1.5)});
  LONGS_EQUAL(2, o.passed.size());
  LONGS_EQUAL(11, o.passed[0].ts_us);
  LONGS_EQUAL(1, v.stats().duplicates_dropped);
  LONGS_EQUAL(1, o.rejected.size());
  STRCMP_EQUAL("duplicate", o.rejected[0].rule.c_str());
  CHECK(o.rejected[0].reason.find("already seen") != std::string::npos);
}

TEST(Validator, DuplicateWindowIsPerSensorAndBounded) {
  Validator v(cfg, clock);
  std::vector<Reading> in;
  for (int i = 0; i < Validator::kDuplicateWindow + 1; ++i) in.push_back(R("a", i, i));
  Run(v, in);
  // The oldest timestamp fell out of the window; the newest is still remembered.
  Out o = Run(v, {R("a", 0, 0), R("a", Validator::kDuplicateWindow, Validator::kDuplicateWindow)});
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(0, o.passed[0].ts_us);
}

TEST(Validator, FlagAndOffModes) {
  cfg.duplicate = RuleAction::kFlag;
  Validator v(cfg, clock);
  Run(v, {R("a", 1, 1)});
  Out o = Run(v, {R("a", 1, 2)});
  LONGS_EQUAL(1, o.passed.size());
  CHECK(o.passed[0].quality & kQualityDuplicate);

  cfg.duplicate = RuleAction::kOff;
  cfg.drop_exact_duplicates = false;
  Validator off(cfg, clock);
  Run(off, {R("a", 1, 1)});
  o = Run(off, {R("a", 1, 1), R("a", 1, 2)});
  LONGS_EQUAL(2, o.passed.size());
}

TEST(Validator, SeededReadingsAreRecognisedAfterARestart) {
  Validator v(cfg, clock);
  // Newest chunk first, as Store::RecentReadings returns them.
  v.Seed({R("a", 5, 5.0), R("a", 4, 4.0)});
  Out o = Run(v, {R("a", 4, 4.0), R("a", 5, 5.0), R("a", 6, 6.0)});
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(6, o.passed[0].ts_us);
  LONGS_EQUAL(2, v.stats().duplicates_dropped);
  LONGS_EQUAL(3, v.stats().received);
}
