// Payload parsers for message-based inputs (MQTT): SenML JSON (RFC 8428), a plain number, and a
// JSON object (or array of objects) whose value, time, sensor and unit are found by JSON pointers
// (RFC 6901). Parsing is done with simdjson, except SenML packs in their common shape, which a
// single-pass scanner reads to the same records (PAYLOADS.md, "Cost"); a parser keeps
// its buffers between messages, so a steady stream allocates only the Readings it produces. The format is documented in
// firmware-bridge/PAYLOADS.md.
//
// Contract: Parse() either appends every reading of the message to `out` or appends nothing and
// fills `error` (a message is accepted or rejected as a whole, so a rejected message can be kept
// in quarantine exactly as it came). Not thread-safe: one parser per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/core/reading.h"

namespace edgepipe::fb {

enum class PayloadFormat : uint8_t {
  kSenml,   // RFC 8428 JSON pack: [{"bn":..,"bt":..,"n":..,"v":..}, ...]
  kNumber,  // "21.37": one reading, sensor from the topic, time of arrival
  kJson,    // {"sensor":"t-17","ts":1700000000.123,"value":21.37} or an array of such objects
};
const char* PayloadFormatName(PayloadFormat f);

enum class TimeUnit : uint8_t { kSeconds, kMilliseconds, kMicroseconds };

struct PayloadOptions {
  PayloadFormat format = PayloadFormat::kSenml;
  // kJson: JSON pointers (RFC 6901). "" = not present in the payload.
  std::string value_pointer = "/value";
  std::string time_pointer = "/ts";      // number in `time_unit`, or an ISO 8601 string
  std::string sensor_pointer = "/sensor";
  std::string unit_pointer;
  TimeUnit time_unit = TimeUnit::kSeconds;
  // kNumber / kJson: unit when the payload gives none ("" = unknown).
  std::string unit;
  size_t max_bytes = 256 * 1024;         // larger payloads are rejected ("oversize")
  size_t max_readings = 10'000;          // per message
};

// Why a payload was rejected. `rule` is the quarantine rule name: "oversize", "parse" (not valid
// JSON / not a number), "schema" (valid JSON of the wrong shape or type), "senml" (breaks an
// RFC 8428 rule), "topic" (no sensor id: neither payload nor topic gives one).
struct PayloadError {
  std::string rule;
  std::string reason;
  std::string sensor;  // when known
};

class PayloadParser {
 public:
  explicit PayloadParser(PayloadOptions options);
  ~PayloadParser();
  PayloadParser(PayloadParser&&) noexcept;
  PayloadParser& operator=(PayloadParser&&) noexcept;

  // Parses one message. `topic_sensor` is the sensor id derived from the topic ("" if none); it
  // names readings whose payload carries no sensor (kNumber, kJson without a sensor field, SenML
  // records whose resolved name is empty). `now_us` is the arrival time (system clock): readings
  // without a timestamp, and SenML relative times, are resolved against it. `source` is copied
  // into every reading. Returns true and appends to `out`, or returns false and fills `error`.
  bool Parse(std::string_view payload, std::string_view topic_sensor, int64_t now_us, std::string_view source,
             std::vector<Reading>* out, PayloadError* error);

  const PayloadOptions& options() const { return opt_; }

 private:
  struct Impl;
  PayloadOptions opt_;
  std::unique_ptr<Impl> impl_;
};

// RFC 8428 section 4.5.1: a resolved name is 1+ characters of A-Z a-z 0-9 - : . / _ and starts
// with a letter or digit.
bool IsValidSenmlName(std::string_view name);

// Checks a JSON pointer (RFC 6901): "" or "/a/b~1c"; returns "" when valid, else the problem.
std::string CheckJsonPointer(std::string_view pointer);

}  // namespace edgepipe::fb
