// Upload windows and the bandwidth cap, driven by explicit times.
#include "edgepipe/uploader/schedule.h"

#include "edgepipe/core/time_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {
int64_t At(int h, int m, int s = 0) { return UsFromCivil(CivilTime{2026, 11, 26, h, m, s, 0}); }
constexpr int64_t kMin = 60'000'000;
}  // namespace

TEST_GROUP(UploadWindows) {};

TEST(UploadWindows, NoWindowsMeansAlwaysOpen) {
  UploadWindows w;
  CHECK_TRUE(w.always_open());
  LONGS_EQUAL(0, w.UntilOpenUs(At(13, 0)));
  STRCMP_EQUAL("always", w.Describe().c_str());
}

TEST(UploadWindows, StartIsInsideEndIsOutside) {
  UploadWindows w = *UploadWindows::Parse({"01:00-05:00"}, false);
  LONGS_EQUAL(0, w.UntilOpenUs(At(1, 0)));
  LONGS_EQUAL(0, w.UntilOpenUs(At(4, 59, 59)));
  CHECK(w.UntilOpenUs(At(5, 0)) == 20 * 60 * kMin);  // opens again tomorrow 01:00
  CHECK(w.UntilOpenUs(At(0, 30)) == 30 * kMin);
  STRCMP_EQUAL("01:00-05:00 (UTC)", w.Describe().c_str());
}

TEST(UploadWindows, CrossingMidnightAndSeveralWindows) {
  UploadWindows w = *UploadWindows::Parse({"22:00-02:00", "12:00-12:30"}, false);
  LONGS_EQUAL(0, w.UntilOpenUs(At(23, 0)));
  LONGS_EQUAL(0, w.UntilOpenUs(At(1, 59)));
  CHECK(w.UntilOpenUs(At(2, 0)) == 10 * 60 * kMin);   // next: 12:00
  CHECK(w.UntilOpenUs(At(12, 30)) == 570 * kMin);     // next: 22:00
  UploadWindows all = *UploadWindows::Parse({"00:00-24:00"}, false);
  LONGS_EQUAL(0, all.UntilOpenUs(At(23, 59, 59)));
}

TEST(UploadWindows, LocalTimeUsesTheOffset) {
  // UTC+2: the local window 01:00-05:00 is 23:00-03:00 UTC.
  UploadWindows w = *UploadWindows::ParseWithOffset({"01:00-05:00"}, [](int64_t) { return 2 * 60 * kMin; });
  LONGS_EQUAL(0, w.UntilOpenUs(At(23, 30)));
  CHECK(w.UntilOpenUs(At(3, 0)) > 0);
}

TEST(UploadWindows, InvalidSpecsAreRejectedWithTheirText) {
  for (const char* bad : {"1:00-5:00", "01:00", "25:00-26:00", "01:60-02:00", "03:00-03:00", "24:00-01:00", "ab:cd-ef:gh"}) {
    Result<UploadWindows> w = UploadWindows::Parse({bad}, false);
    CHECK_FALSE(w.ok());
    CHECK(w.status().message().find(bad) != std::string::npos);
  }
  STRCMP_EQUAL("", UploadWindows::Validate("23:30-00:30").c_str());
}

TEST_GROUP(RateLimiter) {};

TEST(RateLimiter, UnlimitedNeverWaits) {
  RateLimiter r;
  CHECK_TRUE(r.unlimited());
  LONGS_EQUAL(0, r.Reserve(1ull << 30, 0));
}

TEST(RateLimiter, AverageRateIsCappedWithAOneSecondBurst) {
  RateLimiter r(1000);  // 1000 bytes/s
  int64_t now = 1'000'000;
  LONGS_EQUAL(0, r.Reserve(1000, now));   // first second's worth goes at once
  LONGS_EQUAL(0, r.Reserve(1000, now));   // the burst allowance
  LONGS_EQUAL(1'000'000, r.Reserve(1000, now));
  LONGS_EQUAL(2'000'000, r.Reserve(1000, now));
  // Sending 100 objects of 500 bytes back to back: the last one starts no earlier than
  // (total - burst) / rate after the first.
  RateLimiter s(1000);
  int64_t t = 0, last_wait = 0;
  for (int i = 0; i < 100; ++i) last_wait = s.Reserve(500, t);
  CHECK(last_wait >= 49'000'000 - 1'000'000 && last_wait <= 49'000'000);
  // After an idle period the allowance does not accumulate beyond the burst.
  t += 3'600'000'000LL;
  LONGS_EQUAL(0, s.Reserve(1000, t));
  LONGS_EQUAL(0, s.Reserve(1000, t));
  CHECK(s.Reserve(1000, t) > 0);
}
