// Two clocks, kept distinct (Envoy's TimeSource): wall time for timestamps and S3 signing,
// monotonic time for intervals, batching and backoff. Edge boards without an RTC boot with a
// wrong wall clock; nothing that measures an interval may use it.
#pragma once

#include <atomic>
#include <cstdint>

namespace edgepipe {

class Clock {
 public:
  virtual ~Clock() = default;
  // UTC wall clock, microseconds since the Unix epoch. May jump.
  virtual int64_t SystemNowUs() const = 0;
  // Monotonic clock (CLOCK_BOOTTIME: keeps counting through suspend), microseconds.
  virtual int64_t MonotonicNowUs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t SystemNowUs() const override;
  int64_t MonotonicNowUs() const override;
  // Process-wide instance; the production default wherever a Clock is injected.
  static Clock& Default();
};

// A clock tests drive by hand. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t system_us = 1'700'000'000'000'000, int64_t mono_us = 1'000'000)
      : system_us_(system_us), mono_us_(mono_us) {}
  int64_t SystemNowUs() const override { return system_us_.load(); }
  int64_t MonotonicNowUs() const override { return mono_us_.load(); }
  // Moves both clocks forward.
  void Advance(int64_t us) { system_us_ += us; mono_us_ += us; }
  // Moves only the wall clock (a clock step, e.g. NTP sync or a lying RTC).
  void SetSystem(int64_t us) { system_us_ = us; }

 private:
  std::atomic<int64_t> system_us_;
  std::atomic<int64_t> mono_us_;
};

}  // namespace edgepipe
