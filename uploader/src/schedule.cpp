#include "edgepipe/uploader/schedule.h"

#include <time.h>

#include <algorithm>
#include <cstdio>

#include "edgepipe/core/time_util.h"

namespace edgepipe::uploader {
namespace {

constexpr int kMinutesPerDay = 24 * 60;
constexpr int64_t kUsPerMinute = 60 * kUsPerSecond;

// "HH:MM" -> minutes; -1 when malformed. `allow_24` accepts "24:00".
int ParseClock(std::string_view s, bool allow_24) {
  if (s.size() != 5 || s[2] != ':') return -1;
  for (size_t i : {0, 1, 3, 4})
    if (s[i] < '0' || s[i] > '9') return -1;
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59) return -1;
  if (h == 24 && m == 0 && allow_24) return kMinutesPerDay;
  if (h > 23) return -1;
  return h * 60 + m;
}

}  // namespace

std::string UploadWindows::Validate(std::string_view spec) {
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos)
    return "upload window \"" + std::string(spec) + "\" must look like \"01:00-05:00\" (HH:MM-HH:MM, 24-hour clock)";
  int a = ParseClock(spec.substr(0, dash), false);
  int b = ParseClock(spec.substr(dash + 1), true);
  if (a < 0 || b < 0)
    return "upload window \"" + std::string(spec) + "\" must look like \"01:00-05:00\" (HH:MM-HH:MM, 24-hour clock)";
  if (a == b) return "upload window \"" + std::string(spec) + "\" is empty (start equals end)";
  return "";
}

Result<UploadWindows> UploadWindows::ParseWithOffset(const std::vector<std::string>& specs, OffsetFn offset) {
  UploadWindows w;
  w.offset_ = std::move(offset);
  for (const std::string& s : specs) {
    std::string err = Validate(s);
    if (!err.empty()) return InvalidArgumentError(err);
    size_t dash = s.find('-');
    w.windows_.push_back({ParseClock(s.substr(0, dash), false), ParseClock(s.substr(dash + 1), true)});
  }
  return w;
}

Result<UploadWindows> UploadWindows::Parse(const std::vector<std::string>& specs, bool local_time) {
  Result<UploadWindows> w = ParseWithOffset(specs, local_time ? OffsetFn(LocalUtcOffsetUs) : OffsetFn());
  if (w.ok()) w->local_ = local_time;
  return w;
}

int64_t UploadWindows::UntilOpenUs(int64_t unix_us) const {
  if (windows_.empty()) return 0;
  const int64_t local_us = unix_us + (offset_ ? offset_(unix_us) : 0);
  int64_t day_us = local_us % kUsPerDay;
  if (day_us < 0) day_us += kUsPerDay;
  int64_t best = INT64_MAX;
  for (const Window& w : windows_) {
    const int64_t start = w.start_min * kUsPerMinute, end = w.end_min * kUsPerMinute;
    const bool open = w.start_min < w.end_min ? (day_us >= start && day_us < end) : (day_us >= start || day_us < end);
    if (open) return 0;
    int64_t wait = start - day_us;
    if (wait <= 0) wait += kUsPerDay;
    best = std::min(best, wait);
  }
  return best;
}

std::string UploadWindows::Describe() const {
  if (windows_.empty()) return "always";
  std::string out;
  for (const Window& w : windows_) {
    char buf[32];
    snprintf(buf, sizeof buf, "%02d:%02d-%02d:%02d", w.start_min / 60, w.start_min % 60, w.end_min / 60, w.end_min % 60);
    out += (out.empty() ? "" : ", ") + std::string(buf);
  }
  return out + (local_ ? " (local time)" : " (UTC)");
}

int64_t LocalUtcOffsetUs(int64_t unix_us) {
  time_t t = static_cast<time_t>(unix_us / kUsPerSecond);
  struct tm tm;
  if (!localtime_r(&t, &tm)) return 0;
  return static_cast<int64_t>(tm.tm_gmtoff) * kUsPerSecond;
}

int64_t RateLimiter::Reserve(uint64_t bytes, int64_t now_us) {
  if (rate_ == 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (tat_us_ < now_us) tat_us_ = now_us;
  const int64_t wait = std::max<int64_t>(0, tat_us_ - burst_us_ - now_us);
  tat_us_ += static_cast<int64_t>(static_cast<double>(bytes) * 1e6 / static_cast<double>(rate_));
  return wait;
}

}  // namespace edgepipe::uploader
