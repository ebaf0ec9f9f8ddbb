// When and how fast uploads may go out, for metered links: upload windows ("01:00-05:00") and
// a bandwidth cap shared by all uploads in flight. Both are pure functions of the times passed
// in, so tests drive them with a ManualClock.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/core/status.h"

namespace edgepipe::uploader {

// A set of daily time windows. A window "HH:MM-HH:MM" includes its start and excludes its end;
// an end at or before the start crosses midnight ("22:00-06:00"); "24:00" is accepted as an end.
class UploadWindows {
 public:
  // Offset of local time from UTC at a given instant (µs); null = UTC.
  using OffsetFn = std::function<int64_t(int64_t unix_us)>;

  UploadWindows() = default;  // no windows: always open
  // kInvalidArgument naming the bad entry. `local_time`: windows are in the system's local time
  // zone (TZ / /etc/localtime, daylight saving included); otherwise UTC.
  static Result<UploadWindows> Parse(const std::vector<std::string>& specs, bool local_time);
  // Same, with an explicit offset function (tests).
  static Result<UploadWindows> ParseWithOffset(const std::vector<std::string>& specs, OffsetFn offset);
  // "" when `spec` is a valid window, else what is wrong with it.
  static std::string Validate(std::string_view spec);

  bool always_open() const { return windows_.empty(); }
  // 0 when uploads may run at `unix_us`, else µs until the next window opens.
  int64_t UntilOpenUs(int64_t unix_us) const;
  std::string Describe() const;  // "01:00-05:00, 22:30-23:00 (local time)" or "always"

 private:
  struct Window {
    int start_min, end_min;  // minutes of the day; end_min in (0, 1440]
  };
  std::vector<Window> windows_;
  OffsetFn offset_;
  bool local_ = false;
};

// Offset of the system's local time zone at `unix_us` (tm_gmtoff).
int64_t LocalUtcOffsetUs(int64_t unix_us);

// Average-rate cap over all uploads (GCRA / virtual scheduling): each object reserves its size
// and waits until the link "has room", allowing a burst of `burst_us` worth of bytes. Over any
// long interval no more than rate × (interval + burst) bytes start. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_s = 0, int64_t burst_us = 1'000'000)
      : rate_(bytes_per_s), burst_us_(burst_us) {}
  bool unlimited() const { return rate_ == 0; }
  uint64_t rate() const { return rate_; }
  // Reserves `bytes` at monotonic time `now_us`; returns how long to wait before sending them.
  int64_t Reserve(uint64_t bytes, int64_t now_us);

 private:
  uint64_t rate_;
  int64_t burst_us_;
  std::mutex mu_;
  int64_t tat_us_ = INT64_MIN;  // theoretical arrival time of the next byte
};

}  // namespace edgepipe::uploader
