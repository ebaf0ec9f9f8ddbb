// Loads the real sensor data sets of ../shared/data (see its README) into value series, and
// replays them as a steady 1 Hz feed of many sensors, the way a gateway would collect them.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::bench {

// One sensor's values in file order. Empty and "NA" cells are not readings and are skipped;
// sentinels (-200, -99999.992) are kept: devices really send them.
struct Series {
  std::string name;  // "beijing/Aotizhongxin/PM2.5"
  std::string unit;  // UCUM-ish, "" when the data set does not say
  std::vector<double> values;
};

struct Dataset {
  std::string name;  // "nab", "uci", "chicago", "beijing"
  std::vector<Series> series;
  size_t readings() const;
};

// Parses each file with strtod on the published decimal text (the UCI decimal comma becomes a
// point), so values are exactly what a parser on the gateway would produce.
Result<Dataset> LoadNab(const std::string& data_dir);
Result<Dataset> LoadUci(const std::string& data_dir);
Result<Dataset> LoadChicago(const std::string& data_dir);
Result<Dataset> LoadBeijing(const std::string& data_dir);
// All four, in that order.
Result<std::vector<Dataset>> LoadAll(const std::string& data_dir);

enum class TimeMode {
  kExact,     // reading i of every sensor at t0 + i seconds exactly
  kJitterMs,  // plus 0..49 ms of uniform jitter, millisecond precision (a busy poll loop)
};

// Replays series as sensors sampled at 1 Hz: sensor k's i-th reading is its series' value
// (i + offset_k) mod length. Deterministic for a given seed.
class Feed {
 public:
  struct Sensor {
    const Series* series;
    std::string name;
    size_t offset;
  };
  Feed(std::vector<Sensor> sensors, int64_t t0_us, TimeMode mode, uint32_t seed = 1);
  // The readings of second `i` (one per sensor), appended to `out`.
  void Second(int64_t i, std::vector<Reading>* out);
  size_t sensors() const { return sensors_.size(); }

 private:
  std::vector<Sensor> sensors_;
  int64_t t0_us_;
  TimeMode mode_;
  std::mt19937 rng_;
};

// Every series of one data set, one sensor each.
std::vector<Feed::Sensor> SensorsOf(const Dataset& d);
// `n` sensors drawn from all data sets: every series once, then further copies of the longest
// series started half their length later (so no two sensors replay the same stretch together).
std::vector<Feed::Sensor> MixedSensors(const std::vector<Dataset>& all, size_t n);

}  // namespace edgepipe::bench
