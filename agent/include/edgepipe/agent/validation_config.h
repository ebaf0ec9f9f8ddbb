// The [validation] configuration: data-quality rules and transforms chosen per sensor by glob
// patterns over sensor ids, and the handling of an unsynchronised system clock.
// docs/data-quality.md describes every rule; docs/configuration.md lists every key.
//
// Resolution of a sensor's rules: start from the built-in defaults (only `finite` and
// `duplicate` are on, from [validation].non_finite / .duplicate), apply [validation.default],
// then every [[validation.sensor]] table whose `match` matches the sensor id, in file order. A rule
// or transform set by a later table replaces the same rule from an earlier one; `action = "off"`
// switches an inherited rule off.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "edgepipe/core/reading.h"

namespace edgepipe::agent {

// What a rule does with a reading it catches: quarantine it (with the rule and a reason), keep it
// with a quality flag, or nothing (rule disabled).
enum class RuleAction { kReject, kFlag, kOff };
const char* RuleActionName(RuleAction a);

// ---- Rules (each has an action; the defaults below apply when a table omits a key) ----

struct FiniteRule { RuleAction action = RuleAction::kReject; };

// The reading's type must be the sensor's declared type.
struct TypeRule {
  RuleAction action = RuleAction::kReject;
  ValueType expect = ValueType::kNumber;
};

// Declared missing-value markers (e.g. -200, -99999.992), compared exactly with the value as
// received, before any transform.
struct SentinelRule {
  RuleAction action = RuleAction::kReject;
  std::vector<double> values;
};

// Value must lie in [min, max] (or (min, max) when `exclusive`: a value equal to a bound is an
// instrument's saturation/full-scale value). Checked on the transformed value.
struct RangeRule {
  RuleAction action = RuleAction::kReject;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool exclusive = false;
};

// |value - previous value| / seconds between them must not exceed `max_per_second`. The previous
// value is the sensor's last reading that passed (flagged or not) with an earlier timestamp.
struct RateRule {
  RuleAction action = RuleAction::kFlag;
  double max_per_second = std::numeric_limits<double>::infinity();
};

// The same value (within `delta`) `count` times in a row, or for longer than `duration_us`.
// 0 disables that half; at least one is set.
struct StuckRule {
  RuleAction action = RuleAction::kFlag;
  uint32_t count = 0;
  int64_t duration_us = 0;
  double delta = 0.0;
};

// Hampel filter over the sensor's last `window` passed values: a value is a spike when
// |value - median| > threshold * max(1.4826 * MAD, min_scale). Judged once the window is full.
struct SpikeRule {
  RuleAction action = RuleAction::kFlag;
  uint32_t window = 11;
  double threshold = 3.0;
  double min_scale = 0.0;
};

// Timestamp ahead of the system clock by more than `skew_us` (not judged while the clock is
// known to be unsynchronised).
struct FutureRule {
  RuleAction action = RuleAction::kReject;
  int64_t skew_us = 5 * 60 * 1'000'000ll;
};

// Timestamp before `floor_us` (default 2000-01-01T00:00:00Z: a board without an RTC boots in 1970).
struct TooOldRule {
  RuleAction action = RuleAction::kReject;
  int64_t floor_us = 946'684'800'000'000ll;
};

// The sensor promises monotonic time: a timestamp earlier than one already passed is caught.
struct BackwardsRule { RuleAction action = RuleAction::kReject; };

// Same sensor and timestamp (or sequence, see ValidationConfig::duplicate_by) seen again with a
// different value. Exact repeats are dropped, see ValidationConfig::drop_exact_duplicates.
struct DuplicateRule { RuleAction action = RuleAction::kReject; };

// ---- Transforms ----

// value' = c[0] + c[1]*value + c[2]*value^2 + ... (scale/offset is {offset, scale}).
struct Calibration { std::vector<double> coefficients; };

// Unit declaration and conversion (SenML/UCUM names, table in docs/data-quality.md). `from` is
// the declared unit, used for readings that carry none; `to` is the unit written out. A reading
// whose unit cannot be converted to `to` is caught by the rule named "unit" with `action`.
struct UnitRule {
  RuleAction action = RuleAction::kReject;
  std::string from;
  std::string to;
};

// One [validation.default] or [[validation.sensor]] table. Unset members inherit.
struct SensorRules {
  std::vector<std::string> match;  // glob patterns over sensor ids; empty in [validation.default]
  std::string where;               // "file:line" of the table, for messages
  std::optional<FiniteRule> finite;
  std::optional<TypeRule> type;
  std::optional<SentinelRule> sentinel;
  std::optional<RangeRule> range;
  std::optional<RateRule> rate_of_change;
  std::optional<StuckRule> stuck;
  std::optional<SpikeRule> spike;
  std::optional<FutureRule> future;
  std::optional<TooOldRule> too_old;
  std::optional<BackwardsRule> backwards;
  std::optional<DuplicateRule> duplicate;
  std::optional<Calibration> calibration;
  std::optional<UnitRule> unit;
  std::optional<double> resolution;  // round to a multiple of this (> 0)
};

enum class DuplicateKey { kTimestamp, kSequence, kEither };

// How the system clock's synchronisation is learned.
enum class ClockMode {
  kOff,        // trust the system clock (default; right for boards with an RTC or NTP at boot)
  kAuto,       // synchronised when adjtimex or systemd-timesyncd says so
  kAdjtimex,   // synchronised when adjtimex(2) does not report STA_UNSYNC
  kTimesyncd,  // synchronised once /run/systemd/timesync/synchronized exists
};

// [validation.clock]: while the clock is unsynchronised, readings of the matching sources are
// held durably with their monotonic time and the boot id, and re-stamped when sync happens.
struct ClockConfig {
  ClockMode mode = ClockMode::kOff;
  std::vector<std::string> sources = {"*"};  // globs over source names that stamp with this clock
  int64_t max_hold_us = 24ll * 3600 * 1'000'000;  // then released, flagged clock_unsynced
  uint64_t max_hold_bytes = 64ull << 20;
  int64_t check_interval_us = 1'000'000;
  std::string synchronized_file = "/run/systemd/timesync/synchronized";  // timesyncd's flag file
  std::string hold_path;  // "" = <buffer.path>.clock-hold
};

struct ValidationConfig {
  RuleAction non_finite = RuleAction::kReject;  // the built-in default of the `finite` rule
  // A reading whose sensor and timestamp were seen before with a different value (the built-in
  // default of the `duplicate` rule).
  RuleAction duplicate = RuleAction::kReject;
  // Exact repeats (same sensor, timestamp and value: a peer re-sending what we already stored
  // because it never got our acknowledgement) are dropped and counted.
  bool drop_exact_duplicates = true;
  DuplicateKey duplicate_by = DuplicateKey::kTimestamp;
  SensorRules defaults;              // [validation.default]
  std::vector<SensorRules> sensors;  // [[validation.sensor]], in file order
  ClockConfig clock;                 // [validation.clock]
};

}  // namespace edgepipe::agent
