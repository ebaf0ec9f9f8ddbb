// Validation and transformation of readings before they are buffered (docs/data-quality.md).
// A reading either passes (possibly with quality flags) or is rejected to quarantine with the
// rule and a reason. Clean data that no rule or transform applies to passes bit for bit.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "edgepipe/agent/config.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/reading.h"

namespace edgepipe::agent {

struct ValidationStats {
  uint64_t received = 0;
  uint64_t passed = 0;
  uint64_t flagged = 0;
  std::map<std::string, uint64_t> rejected;  // rule -> count
  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (const auto& [rule, c] : rejected) n += c;
    return n;
  }
};

class Validator {
 public:
  Validator(const ValidationConfig& config, Clock& clock);

  // Moves each reading of `in` to `passed` or turns it into a quarantine record in `rejected`.
  // Not thread-safe: the caller serialises (stateful rules keep per-sensor history).
  void Process(std::vector<Reading>& in, std::vector<Reading>* passed, std::vector<QuarantineRecord>* rejected);

  const ValidationStats& stats() const { return stats_; }

 private:
  ValidationConfig config_;
  Clock& clock_;
  ValidationStats stats_;
};

}  // namespace edgepipe::agent
