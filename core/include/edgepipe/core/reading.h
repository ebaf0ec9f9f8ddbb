// The value types that flow through the pipeline: a Reading, rejected payloads
// (QuarantineRecord), records of data known to be missing (GapRecord) and the quality flags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace edgepipe {

enum class ValueType : uint8_t { kNumber = 0, kBool = 1, kString = 2 };

const char* ValueTypeName(ValueType t);

// Quality flags set by validation rules whose action is "flag": the reading is kept and the
// flag travels with it into the output record ("quality":["stuck",...]).
enum QualityFlag : uint32_t {
  kQualityRange = 1u << 0,          // outside [min, max]
  kQualityRateOfChange = 1u << 1,   // changed faster than max_rate per second
  kQualityStuck = 1u << 2,          // same value N times or for longer than T
  kQualitySpike = 1u << 3,          // outlier against the sliding window (Hampel)
  kQualityFuture = 1u << 4,         // timestamp ahead of the clock beyond the allowed skew
  kQualityTooOld = 1u << 5,         // timestamp before the floor date
  kQualityBackwards = 1u << 6,      // time went backwards for a monotonic sensor
  kQualityDuplicate = 1u << 7,      // same sensor and timestamp/sequence seen before
  kQualityClockUnsynced = 1u << 8,  // stamped while the clock was unsynchronised and not fixable
  kQualityRestamped = 1u << 9,      // stamped from the monotonic clock, re-stamped after sync
  kQualityType = 1u << 10,          // value type differs from the sensor's declaration
  kQualityNonFinite = 1u << 11,     // NaN or infinity (only when the rule's action is "flag")
  kQualitySentinel = 1u << 12,      // a declared missing-value marker (e.g. -200)
  kQualityUnit = 1u << 13,          // unit unknown or not convertible to the configured one (value as received)
};
constexpr int kQualityFlagCount = 14;
// Stable lower-case names used in output records and config ("range", "stuck", ...).
const char* QualityFlagName(int bit);

// One timestamped value of one sensor. Timestamps are UTC microseconds since the Unix epoch.
struct Reading {
  std::string sensor;               // sensor id, e.g. "boiler/t-17"
  int64_t ts_us = 0;                // UTC, microseconds since 1970-01-01T00:00:00Z
  double value = 0.0;               // kNumber; kBool stores 0 or 1
  ValueType type = ValueType::kNumber;
  uint32_t quality = 0;             // QualityFlag bits
  std::string unit;                 // SenML/UCUM unit name, "" when unknown
  std::string text;                 // the value when type == kString
  std::string source;               // name of the source instance that produced it
  uint64_t seq = 0;                 // source sequence number, 0 when the source has none

  bool operator==(const Reading& o) const = default;
};

// A reading or payload that failed validation or parsing. Kept, never silently dropped.
struct QuarantineRecord {
  int64_t ts_us = 0;       // when it was received (system clock)
  int64_t reading_ts_us = 0;  // the reading's own timestamp, 0 when unknown (unparseable payload)
  std::string source;      // source instance name
  std::string sensor;      // "" when the payload could not be attributed
  std::string rule;        // rule or parser that rejected it, e.g. "finite", "range", "parse"
  std::string reason;      // human-readable explanation
  std::string value;       // the offending value as text, if any
  std::string raw;         // the raw payload, truncated to the configured limit

  bool operator==(const QuarantineRecord& o) const = default;
};

// Data known to be missing: evicted from a full buffer, sequence gaps on a serial link, ...
struct GapRecord {
  std::string source;
  std::string sensor;      // "" = all sensors of the source
  int64_t from_us = 0;     // first missing (or first evicted) timestamp
  int64_t to_us = 0;       // last missing timestamp
  uint64_t count = 0;      // readings known to be missing (0 when unknown)
  std::string reason;      // "evicted", "sequence_gap", "disk_full", ...

  bool operator==(const GapRecord& o) const = default;
};

}  // namespace edgepipe
