// Validation and transformation of readings before they are buffered (docs/data-quality.md).
// A reading either passes (possibly with quality flags, possibly transformed) or is rejected to
// quarantine with the rule and a reason; exact repeats of stored readings are dropped and counted.
// Clean data that no rule catches and no transform changes passes bit for bit.
//
// Order of evaluation for each reading (the first rule that rejects ends it; flags accumulate):
//   finite -> type -> sentinel                    on the value as received
//   calibration -> unit conversion -> resolution  transforms (numbers only)
//   future -> too_old -> duplicate -> backwards   on the timestamp
//   range -> stuck -> rate_of_change -> spike     on the transformed value (numbers only)
// Stateful rules (duplicate, backwards, stuck, rate_of_change, spike) keep per-sensor history
// that only readings which passed update (a rejected reading never becomes a reference).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgepipe/agent/validation_config.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/reading.h"

namespace edgepipe::agent {

// Counters of one sensor or of all. Rule names are the quality flag names (QualityFlagName).
struct QualityCounters {
  uint64_t received = 0;
  uint64_t passed = 0;              // flagged ones included
  uint64_t flagged = 0;             // passed with any quality flag
  uint64_t duplicates_dropped = 0;  // exact repeats dropped (drop_exact_duplicates)
  std::map<std::string, uint64_t> rejected;  // rule -> readings rejected to quarantine
  std::map<std::string, uint64_t> flags;     // flag -> readings passed with it
  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (const auto& [rule, c] : rejected) n += c;
    return n;
  }
};

struct ValidationStats : QualityCounters {};

struct SensorQuality {
  std::string sensor;
  QualityCounters counters;
};

class Validator {
 public:
  // REQUIRES: `config` was accepted by the config parser (globs and units are valid).
  Validator(const ValidationConfig& config, Clock& clock);
  ~Validator();
  Validator(const Validator&) = delete;
  Validator& operator=(const Validator&) = delete;

  // Moves each reading of `in` to `passed` (possibly transformed and flagged) or turns it into a
  // quarantine record in `rejected`; exact duplicates are dropped. `in` is left empty.
  // Not thread-safe: the caller serialises (stateful rules keep per-sensor history).
  void Process(std::vector<Reading>& in, std::vector<Reading>* passed, std::vector<QuarantineRecord>* rejected);
  // The same, keeping the readings that pass in `readings` itself, in their order (no move to
  // another vector).
  void Process(std::vector<Reading>& readings, std::vector<QuarantineRecord>* rejected);

  // Forgets the last Process() call as if it had not happened: every sensor it touched gets back
  // its history (duplicate window, latest time, previous value, stuck run, spike window) and its
  // counters, and the totals are restored. The caller calls it when what Process() returned could
  // not be stored (the buffer refused the append or the quarantine records): otherwise the
  // source's retry of the same readings would be dropped as exact duplicates (silent loss) or
  // misjudged as going backwards or stuck. Does nothing when called twice, or after Seed() only.
  void Forget();

  // Primes the per-sensor history (duplicates, latest time, previous value, stuck run, spike
  // window) with readings already stored (e.g. Store::RecentReadings after a restart), without
  // counting them.
  void Seed(const std::vector<Reading>& stored);

  // While false, the `future` rule is not judged (the system clock cannot be trusted).
  void SetClockTrusted(bool trusted);

  ValidationStats stats() const;
  // Per-sensor counters, sensors in id order; only sensors with at least one reading.
  std::vector<SensorQuality> SensorReport() const;
  size_t sensor_count() const;

  static constexpr int kDuplicateWindow = 64;

  struct State;  // private (agent/src/validator.cpp)

 private:
  std::unique_ptr<State> s_;
};

}  // namespace edgepipe::agent
