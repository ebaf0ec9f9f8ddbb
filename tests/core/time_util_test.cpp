#include "edgepipe/core/time_util.h"

#include <random>

#include <CppUTest/TestHarness.h>

using namespace edgepipe;

TEST_GROUP(TimeUtil){};

TEST(TimeUtil, FormatsKnownInstant) {
  // 2026-11-26T04:05:49.123Z
  int64_t us = (DaysFromCivil(2026, 11, 26) * 86400 + 4 * 3600 + 5 * 60 + 49) * 1'000'000LL + 123'456;
  STRCMP_EQUAL("2026-11-26T04:05:49.123Z", FormatIso8601Ms(us).c_str());
  STRCMP_EQUAL("2026-11-26T04:05:49.123456Z", FormatIso8601Us(us).c_str());
}

TEST(TimeUtil, EpochAndNegativeTimesFloor) {
  STRCMP_EQUAL("1970-01-01T00:00:00.000Z", FormatIso8601Ms(0).c_str());
  // One microsecond before the epoch is still in 1969, and truncates toward -inf.
  STRCMP_EQUAL("1969-12-31T23:59:59.999Z", FormatIso8601Ms(-1).c_str());
  LONGS_EQUAL(-3600LL * 1'000'000, FloorToHour(-1));
}

TEST(TimeUtil, LeapDay) {
  int64_t us = DaysFromCivil(2024, 2, 29) * 86400LL * 1'000'000;
  STRCMP_EQUAL("2024-02-29T00:00:00.000Z", FormatIso8601Ms(us).c_str());
}

TEST(TimeUtil, CivilRoundTripRandom) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> dist(-2'000'000'000'000'000LL, 4'000'000'000'000'000LL);
  for (int i = 0; i < 100000; ++i) {
    int64_t us = dist(rng);
    CivilTime c = CivilFromUs(us);
    LONGS_EQUAL(us, UsFromCivil(c));
    CHECK(c.month >= 1 && c.month <= 12 && c.day >= 1 && c.day <= 31 && c.hour < 24);
  }
}

TEST(TimeUtil, FloorToHour) {
  int64_t base = DaysFromCivil(2026, 1, 1) * 86400LL * 1'000'000 + 5 * kUsPerHour;
  LONGS_EQUAL(base, FloorToHour(base));
  LONGS_EQUAL(base, FloorToHour(base + kUsPerHour - 1));
  LONGS_EQUAL(base + kUsPerHour, FloorToHour(base + kUsPerHour));
}

TEST(TimeUtil, ParsesIsoForms) {
  int64_t day = DaysFromCivil(2020, 1, 2) * 86400LL * 1'000'000;
  LONGS_EQUAL(day, *ParseIso8601("2020-01-02"));
  LONGS_EQUAL(day + 3 * kUsPerHour + 4 * 60'000'000LL, *ParseIso8601("2020-01-02T03:04"));
  LONGS_EQUAL(day + 3 * kUsPerHour + 4 * 60'000'000LL + 5'250'000, *ParseIso8601("2020-01-02 03:04:05.25Z"));
  LONGS_EQUAL(day + 1 * kUsPerHour, *ParseIso8601("2020-01-02T03:00:00+02:00"));
  CHECK_FALSE(ParseIso8601("2020-13-02").has_value());
  CHECK_FALSE(ParseIso8601("2020-01-02T25:00").has_value());
  CHECK_FALSE(ParseIso8601("yesterday").has_value());
  CHECK_FALSE(ParseIso8601("2020-01-02T03:04:05x").has_value());
}
