#include "validation/rules.h"

#include <algorithm>
#include <cmath>

namespace edgepipe::agent::validation {
namespace {

void Apply(CompiledRules& c, const SensorRules& t) {
  if (t.finite) c.finite = t.finite->action;
  if (t.type) {
    c.type = t.type->action;
    c.type_expect = t.type->expect;
  }
  if (t.sentinel) {
    c.sentinel = t.sentinel->action;
    c.sentinels = t.sentinel->values;
  }
  if (t.range) {
    c.range = t.range->action;
    c.range_p = *t.range;
  }
  if (t.rate_of_change) {
    c.rate = t.rate_of_change->action;
    c.rate_p = *t.rate_of_change;
  }
  if (t.stuck) {
    c.stuck = t.stuck->action;
    c.stuck_p = *t.stuck;
  }
  if (t.spike) {
    c.spike = t.spike->action;
    c.spike_p = *t.spike;
  }
  if (t.future) {
    c.future = t.future->action;
    c.future_skew_us = t.future->skew_us;
  }
  if (t.too_old) {
    c.too_old = t.too_old->action;
    c.too_old_floor_us = t.too_old->floor_us;
  }
  if (t.backwards) c.backwards = t.backwards->action;
  if (t.duplicate) c.duplicate = t.duplicate->action;
  if (t.calibration) c.calibration = t.calibration->coefficients;
  if (t.unit) {
    // A later table's unit settings replace the earlier ones as a whole.
    // `action = "off"` switches declaration and conversion off.
    const bool off = t.unit->action == RuleAction::kOff;
    c.unit = t.unit->action;
    c.unit_from = off ? std::string() : t.unit->from;
    c.unit_to = off ? std::string() : t.unit->to;
  }
  if (t.resolution) c.resolution = *t.resolution;
}

}  // namespace

CompiledRules Compile(const ValidationConfig& config, const std::vector<size_t>& hits) {
  CompiledRules c;
  c.finite = config.non_finite;
  c.duplicate = config.duplicate;
  Apply(c, config.defaults);
  for (size_t i : hits) Apply(c, config.sensors[i]);
  // An identity calibration must not touch values (x * 1 + 0 turns -0.0 into +0.0).
  if (c.calibration.size() == 2 && c.calibration[0] == 0.0 && c.calibration[1] == 1.0) c.calibration.clear();
  if (c.unit_to.empty()) c.unit = RuleAction::kOff;
  if (c.resolution > 0) {
    double p = 1;
    for (int d = 0; d <= 15; ++d, p *= 10) {
      if (c.resolution == 1.0 / p) {
        c.resolution_pow10 = p;
        break;
      }
    }
  }
  c.has_transform = !c.calibration.empty() || !c.unit_to.empty() || c.resolution > 0;
  c.has_value_rules = c.range != RuleAction::kOff || c.stuck != RuleAction::kOff || c.rate != RuleAction::kOff ||
                      c.spike != RuleAction::kOff;
  return c;
}

double RoundToResolution(double v, const CompiledRules& r) {
  double out;
  if (r.resolution_pow10 > 0) {
    const double scaled = v * r.resolution_pow10;
    // Beyond 2^52 every double is an integer: rounding would only add error.
    if (std::fabs(scaled) >= 4503599627370496.0) return v;
    out = std::round(scaled) / r.resolution_pow10;
  } else {
    const double scaled = v / r.resolution;
    if (std::fabs(scaled) >= 4503599627370496.0) return v;
    out = std::round(scaled) * r.resolution;
  }
  // A value already on the grid is kept as it came (bit for bit, a received -0 included); a
  // value that rounds to zero becomes +0 (no "-0" made by rounding).
  if (out == v) return v;
  if (out == 0.0) out = 0.0;
  return out;
}

SpikeWindow::SpikeWindow(uint32_t capacity) : ring_(capacity) { sorted_.reserve(capacity); }

void SpikeWindow::Push(double v) {
  const size_t n = sorted_.size();
  if (full()) {
    // Replace the oldest value by `v` in the sorted copy in one pass: find it, then slide the
    // values between its place and v's place over by one.
    const double old = ring_[head_];
    ring_[head_] = v;
    head_ = (head_ + 1) % ring_.size();
    size_t i = static_cast<size_t>(std::lower_bound(sorted_.begin(), sorted_.end(), old) - sorted_.begin());
    if (v > old) {
      while (i + 1 < n && sorted_[i + 1] < v) {
        sorted_[i] = sorted_[i + 1];
        ++i;
      }
    } else {
      while (i > 0 && sorted_[i - 1] > v) {
        sorted_[i] = sorted_[i - 1];
        --i;
      }
    }
    sorted_[i] = v;
    return;
  }
  ring_[(head_ + size_) % ring_.size()] = v;
  ++size_;
  sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), v), v);
}

double SpikeWindow::Median() const {
  const size_t n = sorted_.size();
  if (n % 2) return sorted_[n / 2];
  return (sorted_[n / 2 - 1] + sorted_[n / 2]) / 2;
}

double SpikeWindow::Mad(double median) const {
  // The deviations |x - median| form two ascending sequences: walking left from the median
  // (median - x) and right (x - median). Merge them up to the middle element. `median` is the
  // window's median, so the values below index n/2 are <= it and the others >= it.
  const size_t n = sorted_.size();
  if (n == 0) return 0;
  const double* a = sorted_.data();
  size_t l = n / 2;  // next left element is a[l - 1]
  size_t r = n / 2;  // next right element is a[r]
  const size_t want = n / 2;
  double prev = 0, cur = 0;
  for (size_t k = 0; k <= want; ++k) {
    const double dl = l > 0 ? median - a[l - 1] : INFINITY;
    const double dr = r < n ? a[r] - median : INFINITY;
    const bool left = dl <= dr;
    prev = cur;
    cur = left ? dl : dr;
    l -= left;
    r += !left;
  }
  return n % 2 ? cur : (prev + cur) / 2;
}

}  // namespace edgepipe::agent::validation
