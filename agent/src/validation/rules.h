// The rules of one sensor, resolved from the configuration (built-in defaults, then
// [validation.default], then the matching [[validation.sensor]] tables in file order) into one flat
// struct, and the per-sensor state the stateful rules keep.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/agent/validation_config.h"
#include "validation/units.h"

namespace edgepipe::agent::validation {

struct CompiledRules {
  RuleAction finite = RuleAction::kReject;
  RuleAction type = RuleAction::kOff;
  RuleAction sentinel = RuleAction::kOff;
  RuleAction unit = RuleAction::kOff;  // conversion failures (only when unit_to is set)
  RuleAction future = RuleAction::kOff;
  RuleAction too_old = RuleAction::kOff;
  RuleAction duplicate = RuleAction::kReject;
  RuleAction backwards = RuleAction::kOff;
  RuleAction range = RuleAction::kOff;
  RuleAction stuck = RuleAction::kOff;
  RuleAction rate = RuleAction::kOff;
  RuleAction spike = RuleAction::kOff;

  ValueType type_expect = ValueType::kNumber;
  std::vector<double> sentinels;
  std::vector<double> calibration;  // empty = none (an identity calibration is dropped)
  std::string unit_from;            // declared unit, "" = none
  std::string unit_to;              // conversion target, "" = none
  double resolution = 0;            // 0 = no rounding
  double resolution_pow10 = 0;      // 10^d when resolution == 10^-d (exact decimal rounding)
  RangeRule range_p;
  RateRule rate_p;
  StuckRule stuck_p;
  SpikeRule spike_p;
  int64_t future_skew_us = 0;
  int64_t too_old_floor_us = 0;

  bool has_transform = false;  // calibration, conversion or rounding
  bool has_value_rules = false;  // range, stuck, rate or spike
};

// Resolves the rules for one sensor from the matching tables (`hits`: indexes into
// config.sensors, in file order).
CompiledRules Compile(const ValidationConfig& config, const std::vector<size_t>& hits);

// Rounds to a multiple of the resolution; values already on the grid come back bit for bit.
double RoundToResolution(double v, const CompiledRules& r);

// The last `capacity` values of a sensor kept in arrival order and sorted, for the Hampel test.
class SpikeWindow {
 public:
  explicit SpikeWindow(uint32_t capacity);
  bool full() const { return size_ == ring_.size(); }
  uint32_t size() const { return size_; }
  void Push(double v);
  double Median() const;
  // Median absolute deviation from `median`.
  double Mad(double median) const;

 private:
  std::vector<double> ring_;    // arrival order, ring_[head_] is the oldest once full
  std::vector<double> sorted_;  // the same values, ascending
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

}  // namespace edgepipe::agent::validation
