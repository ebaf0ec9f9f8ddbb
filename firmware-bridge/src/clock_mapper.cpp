#include "edgepipe/firmware_bridge/clock_mapper.h"

#include <algorithm>
#include <cmath>

namespace edgepipe::fb {

ClockMapper::ClockMapper(ClockMapperOptions options) : opt_(options) {}

void ClockMapper::Reset() {
  buckets_.clear();
  rate_ = 0.0;
  offset_us_ = 0.0;
  last_delay_us_ = 0;
}

double ClockMapper::Residual(uint64_t mcu_ms, int64_t host_us) const {
  const double since_ref_us = (static_cast<double>(mcu_ms) - static_cast<double>(ref_mcu_ms_)) * 1000.0;
  return static_cast<double>(host_us) - static_cast<double>(mcu_ms) * 1000.0 - rate_ * since_ref_us;
}

bool ClockMapper::AddSample(uint64_t mcu_ms, int64_t host_mono_us) {
  bool consistent = true;
  if (!buckets_.empty()) {
    const double delay = Residual(mcu_ms, host_mono_us) - offset_us_;
    // Late samples (positive delay) are normal: queues, a stalled link. A sample far *before*
    // the model cannot be explained by any delay: the MCU clock jumped forward.
    if (delay < -static_cast<double>(opt_.jump_us)) {
      Reset();
      consistent = false;
    } else {
      last_delay_us_ = static_cast<int64_t>(delay);
    }
  }
  if (buckets_.empty()) ref_mcu_ms_ = mcu_ms;
  if (buckets_.empty() || host_mono_us - buckets_.back().start_us >= opt_.bucket_us) {
    buckets_.push_back({host_mono_us, mcu_ms, host_mono_us});
    if (buckets_.size() > opt_.max_buckets) buckets_.pop_front();
  } else {
    Bucket& b = buckets_.back();
    const int64_t d_new = host_mono_us - static_cast<int64_t>(mcu_ms) * 1000;
    const int64_t d_old = b.host_us - static_cast<int64_t>(b.mcu_ms) * 1000;
    if (d_new < d_old) {
      b.mcu_ms = mcu_ms;
      b.host_us = host_mono_us;
    }
  }
  Refit();
  return consistent;
}

void ClockMapper::Refit() {
  // Rate: least-squares slope of delay-free offset (host - mcu) against MCU time.
  rate_ = 0.0;
  const Bucket& first = buckets_.front();
  const Bucket& last = buckets_.back();
  if (buckets_.size() >= 3 && last.host_us - first.host_us >= opt_.min_rate_span_us) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const double n = static_cast<double>(buckets_.size());
    for (const Bucket& b : buckets_) {
      const double x = (static_cast<double>(b.mcu_ms) - static_cast<double>(ref_mcu_ms_)) * 1000.0;
      const double y = static_cast<double>(b.host_us) - static_cast<double>(b.mcu_ms) * 1000.0;
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double den = n * sxx - sx * sx;
    if (den > 0) rate_ = std::clamp((n * sxy - sx * sy) / den, -opt_.max_rate, opt_.max_rate);
  }
  // Offset: the smallest residual among the newest buckets (the line lies under them).
  offset_us_ = INFINITY;
  const size_t from = buckets_.size() > opt_.offset_buckets ? buckets_.size() - opt_.offset_buckets : 0;
  for (size_t i = from; i < buckets_.size(); ++i)
    offset_us_ = std::min(offset_us_, Residual(buckets_[i].mcu_ms, buckets_[i].host_us));
}

int64_t ClockMapper::ToHostUs(uint64_t mcu_ms) const {
  const double since_ref_us = (static_cast<double>(mcu_ms) - static_cast<double>(ref_mcu_ms_)) * 1000.0;
  return static_cast<int64_t>(std::llround(static_cast<double>(mcu_ms) * 1000.0 + rate_ * since_ref_us + offset_us_));
}

}  // namespace edgepipe::fb
