// Maps MQTT topics to sensor ids. A template lists the topic levels: literal text, `{name}`
// (captures one level), `+` (any one level, not captured) or a final `#` (any rest). The sensor id
// is built from a format that refers to the captures, e.g.
//   template "sensors/{site}/{sensor}", format "{site}/{sensor}":
//   "sensors/boiler/t-17" -> "boiler/t-17"; "other/x" -> no match.
// Without captures the sensor id is the whole topic. Immutable after Parse; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/core/status.h"

namespace edgepipe::fb {

class TopicTemplate {
 public:
  // An empty pattern matches every topic and yields the topic itself. An empty `sensor_format`
  // joins the captures with '/', in template order.
  static Result<TopicTemplate> Parse(std::string_view pattern, std::string_view sensor_format = "");

  // True when `topic` matches; then *sensor holds the sensor id (overwritten, capacity reused).
  bool Match(std::string_view topic, std::string* sensor) const;

  // The MQTT subscription filter that covers the template ({x} -> +), e.g. "sensors/+/+".
  std::string Filter() const;
  const std::string& pattern() const { return pattern_; }

 private:
  enum class Kind { kLiteral, kCapture, kAny, kRest };
  struct Level {
    Kind kind;
    std::string text;  // literal text or capture name
  };
  struct Piece {
    bool capture;
    std::string text;  // literal text, or capture name
    int index = -1;    // capture index for capture pieces
  };
  std::string pattern_;
  std::vector<Level> levels_;
  std::vector<std::string> captures_;
  std::vector<Piece> format_;  // empty = join captures (or whole topic when none)
};

}  // namespace edgepipe::fb
