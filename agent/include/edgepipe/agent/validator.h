// Validation and transformation of readings before they are buffered (docs/data-quality.md).
// A reading either passes (possibly with quality flags) or is rejected to quarantine with the
// rule and a reason. Clean data that no rule or transform applies to passes bit for bit.
#pragma once

#include <cstdint>
#include <array>
#include <map>
#include <unordered_map>
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
  uint64_t duplicates_dropped = 0;  // exact repeats dropped (drop_exact_duplicates)
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

  // Primes duplicate detection with readings already stored (e.g. Store::RecentReadings after a
  // restart), without counting them.
  void Seed(const std::vector<Reading>& stored);

  const ValidationStats& stats() const { return stats_; }

  static constexpr int kDuplicateWindow = 64;

 private:
  // The last kDuplicateWindow (timestamp, value fingerprint) pairs of one sensor, FIFO.
  struct History {
    std::array<int64_t, kDuplicateWindow> ts{};
    std::array<uint64_t, kDuplicateWindow> fp{};
    uint8_t size = 0;
    uint8_t next = 0;
  };
  enum class Dup { kNone, kExact, kConflict };
  Dup CheckDuplicate(const Reading& r, History& h, uint64_t fp) const;
  static void Remember(History& h, int64_t ts, uint64_t fp);
  static uint64_t Fingerprint(const Reading& r);

  ValidationConfig config_;
  Clock& clock_;
  ValidationStats stats_;
  std::unordered_map<std::string, History> history_;
};

}  // namespace edgepipe::agent
