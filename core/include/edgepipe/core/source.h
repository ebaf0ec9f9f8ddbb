// A source of readings (simulator, serial, MQTT, sysfs). Each source runs on its own thread(s)
// and pushes what it reads into a ReadingSink (in the agent: validation -> buffer).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "edgepipe/core/status.h"

namespace edgepipe {

struct SourceHealth {
  std::string name;
  std::string type;              // "simulator", "serial", "mqtt", "sysfs"
  std::string state;             // "running", "connected", "disconnected", "stopped", ...
  uint64_t readings = 0;         // readings handed to the sink
  uint64_t errors = 0;           // malformed input, I/O errors, ...
  std::string last_error;
  std::map<std::string, uint64_t> counters;  // type-specific counters (serial: docs/operations.md)
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& name() const = 0;
  // Starts producing in the background. Errors here are configuration problems.
  virtual Status Start() = 0;
  // Stops producing. When it returns, the source makes no further calls into its sink.
  virtual void Stop() = 0;
  virtual SourceHealth Health() const = 0;
};

}  // namespace edgepipe
