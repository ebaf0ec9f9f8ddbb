// Maps an MCU's uptime clock (milliseconds since its boot) to the host's monotonic clock, with
// drift correction, from (MCU time, host arrival time) pairs taken from the frames it sends.
//
// Every sample's host time is the MCU time plus the true offset plus a transmission delay >= 0,
// so the smallest (host - MCU) seen in a window is the best estimate of the offset (the NTP
// minimum-delay filter). The MCU's crystal runs fast or slow by tens of ppm (an RC oscillator by up
// to a few per cent): the rate is the least-squares slope through the per-bucket minima, once
// they span long enough. Pure and deterministic: tests feed samples directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace edgepipe::fb {

struct ClockMapperOptions {
  int64_t bucket_us = 10'000'000;      // one minimum per bucket of host time
  size_t max_buckets = 360;            // rate window (1 h with 10 s buckets)
  size_t offset_buckets = 6;           // offset = minimum over the newest buckets (1 min)
  int64_t min_rate_span_us = 60'000'000;  // no rate correction before the minima span this long
  double max_rate = 0.05;              // |rate| is clamped to 5 %
  int64_t jump_us = 10'000'000;        // a sample this far ahead of the model means the MCU clock jumped
};

class ClockMapper {
 public:
  explicit ClockMapper(ClockMapperOptions options = {});

  // Forgets everything (new MCU boot).
  void Reset();
  // Adds one observation. Returns false (and resets, keeping only this sample) when it lies more
  // than jump_us before the model (no transmission delay explains that: the MCU clock jumped).
  bool AddSample(uint64_t mcu_ms, int64_t host_mono_us);
  bool has_samples() const { return !buckets_.empty(); }

  // Host monotonic time (us) of an MCU time. REQUIRES: has_samples().
  int64_t ToHostUs(uint64_t mcu_ms) const;

  // Estimated MCU clock rate error: +100e-6 means the MCU clock runs 100 ppm slow
  // (host time advances faster than MCU time).
  double rate() const { return rate_; }
  // Spread between the newest sample's delay and the best one (us): link jitter.
  int64_t last_delay_us() const { return last_delay_us_; }

 private:
  struct Bucket {
    int64_t start_us;  // host time the bucket opened
    uint64_t mcu_ms;   // the sample with the smallest delay in the bucket
    int64_t host_us;
  };
  void Refit();
  // host - mcu*1000 - rate*(mcu - ref)*1000 for a sample.
  double Residual(uint64_t mcu_ms, int64_t host_us) const;

  ClockMapperOptions opt_;
  std::deque<Bucket> buckets_;
  uint64_t ref_mcu_ms_ = 0;
  double rate_ = 0.0;
  double offset_us_ = 0.0;
  int64_t last_delay_us_ = 0;
};

}  // namespace edgepipe::fb
