// The real data sets of ../shared/data with their known faults (README there): each fault is
// caught by the rule meant for it, and the expected counts are worked out here independently, by
// scanning the raw CSV text, and checked against the README where it states them.
#include <algorithm>
#include <cmath>
#include <map>
#include <cstring>
#include <set>

#include "datasets.h"
#include "edgepipe/core/time_util.h"
#include "test_util.h"
#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::vtest;
using edgepipe::testing::DataFile;

namespace {

std::map<std::string, uint64_t> RejectedBy(const Out& o, const std::string& rule) {
  std::map<std::string, uint64_t> m;
  for (const auto& q : o.rejected)
    if (q.rule == rule) ++m[q.sensor];
  return m;
}

uint64_t Sum(const std::map<std::string, uint64_t>& m) {
  uint64_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// Each sensor's readings in time order (what a sensor that sends in order would deliver),
// sensors one after the other.
std::vector<Reading> TimeOrdered(std::vector<Reading> in) {
  std::stable_sort(in.begin(), in.end(), [](const Reading& a, const Reading& b) {
    return a.sensor != b.sensor ? a.sensor < b.sensor : a.ts_us < b.ts_us;
  });
  return in;
}

int64_t At(const char* iso) { return *ParseIso8601(iso); }

}  // namespace

TEST_GROUP(DataSets) {
  ManualClock clock{At("2024-01-01T00:00:00Z")};
};

TEST(DataSets, NabRepeatedHourIsCaughtAsDuplicatesAndTheRestConverted) {
  const std::string path = DataFile("nab/machine_temperature_system_failure.csv");
  datasets::DataSet d = datasets::LoadNab(path, "nab/machine_temperature");
  LONGS_EQUAL(22695, d.readings.size());
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "nab/*"
unit = { from = "[degF]", to = "Cel" }
resolution = 0.01
range = { min = -30, max = 80 }
backwards = "reject"
too_old = "reject"
)");
  Validator v(cfg, clock);
  Out o = Run(v, d.readings);
  // README: the hour 2014-01-07 02:00 .. 02:55 appears twice: twelve timestamps repeated, time
  // going backwards at line 10,151 (reading index 10,149).
  LONGS_EQUAL(12, o.rejected.size());
  for (const auto& q : o.rejected) STRCMP_EQUAL("duplicate", q.rule.c_str());
  LONGS_EQUAL(d.readings[10149].ts_us, o.rejected[0].reading_ts_us);
  LONGS_EQUAL(At("2014-01-07T02:00:00"), o.rejected[0].reading_ts_us);
  LONGS_EQUAL(At("2014-01-07T02:55:00"), o.rejected[11].reading_ts_us);
  LONGS_EQUAL(22695 - 12, o.passed.size());
  // 73.96732207 degF = 23.3151789... Cel, rounded to 0.01.
  DOUBLES_EQUAL(23.32, o.passed[0].value, 0);
  STRCMP_EQUAL("Cel", o.passed[0].unit.c_str());
  // The shutdown (values near 2 degF = -16.7 Cel) is real data: in range, kept.
  CHECK(std::any_of(o.passed.begin(), o.passed.end(), [](const Reading& r) { return r.value < -16; }));

  // With the duplicate rule off, `backwards` (the sensor promises monotonic time) catches the
  // repeat from line 10,151 up to 02:50; the repeated 02:55 equals the latest time, which is not
  // backwards but `duplicate`'s business (off here), so it passes.
  Validator b(ParseValidation(R"(
[validation]
drop_exact_duplicates = false
[[validation.sensor]]
match = "nab/*"
duplicate = "off"
backwards = "reject"
)"),
              clock);
  o = Run(b, d.readings);
  LONGS_EQUAL(11, o.rejected.size());
  for (const auto& q : o.rejected) STRCMP_EQUAL("backwards", q.rule.c_str());
  LONGS_EQUAL(d.readings[10149].ts_us, o.rejected[0].reading_ts_us);
  LONGS_EQUAL(At("2014-01-07T02:50:00"), o.rejected[10].reading_ts_us);
  LONGS_EQUAL(22695 - 11, o.passed.size());
}

TEST(DataSets, UciMissingValueSentinelsAreCaughtExactly) {
  const std::string path = DataFile("uci_air_quality/AirQualityUCI.csv");
  datasets::DataSet d = datasets::LoadUci(path);
  // README: 9,357 rows with data + 114 empty records; 121,641 readings... minus the -200 cells
  // which are readings too (a device really sends them).
  LONGS_EQUAL(9357 + 114, d.rows);
  LONGS_EQUAL(114, d.skipped_rows);
  // Independent count of -200 cells per column from the raw text ("-200" or "-200,0").
  auto rows = datasets::ReadCsv(path, ';');
  std::map<std::string, uint64_t> expected;
  for (size_t i = 1; i < rows.size(); ++i)
    for (size_t k = 2; k < 15 && k < rows[i].size(); ++k)
      if (rows[i][k] == "-200" || rows[i][k] == "-200,0") ++expected["uci/" + rows[0][k]];
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "uci/*"
sentinel = [-200]
[[validation.sensor]]
match = "uci/T"
unit = { from = "Cel" }
range = { min = -30, max = 50 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, d.readings);
  std::map<std::string, uint64_t> caught = RejectedBy(o, "sentinel");
  CHECK(caught == expected);
  LONGS_EQUAL(o.rejected.size(), Sum(caught));  // nothing else rejected
  // The counts the README states.
  LONGS_EQUAL(8443, caught["uci/NMHC(GT)"]);
  LONGS_EQUAL(1683, caught["uci/CO(GT)"]);
  LONGS_EQUAL(1639, caught["uci/NOx(GT)"]);
  LONGS_EQUAL(1642, caught["uci/NO2(GT)"]);
  LONGS_EQUAL(366, caught["uci/T"]);
  // The 13 plausible winter temperatures below 0 pass.
  LONGS_EQUAL(13, std::count_if(o.passed.begin(), o.passed.end(),
                                [](const Reading& r) { return r.sensor == "uci/T" && r.value < 0; }));
}

TEST(DataSets, ChicagoSentinelsNegativeDepthStuckTemperatureAndTurbiditySpikes) {
  const std::string path = DataFile("chicago_beach/Beach_Water_Quality_-_Automated_Sensors.csv");
  datasets::DataSet d = datasets::LoadChicago(path);
  LONGS_EQUAL(34923, d.rows);
  LONGS_EQUAL(6, d.skipped_rows);  // README: six rows without timestamp and values
  auto raw = datasets::ReadCsv(path, ',');
  uint64_t wave_sentinels = 0;
  for (size_t i = 1; i < raw.size(); ++i)
    wave_sentinels += (raw[i][5] == "-99999.992") + (raw[i][6] == "-100000");
  LONGS_EQUAL(2 * 526, wave_sentinels);  // README: 526 rows

  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = ["chicago/*/Wave Height", "chicago/*/Wave Period"]
sentinel = [-99999.992, -100000]
[[validation.sensor]]
match = "chicago/*/Transducer Depth"
range = { min = 0 }
[[validation.sensor]]
match = "chicago/*/Water Temperature"
unit = { from = "Cel" }
stuck = { count = 6 }
[[validation.sensor]]
match = "chicago/*/Turbidity"
spike = { window = 11, threshold = 3, min_scale = 1 }
)");
  Validator v(cfg, clock);
  Out o = Run(v, TimeOrdered(d.readings));
  LONGS_EQUAL(wave_sentinels, Sum(RejectedBy(o, "sentinel")));
  std::map<std::string, uint64_t> depth = RejectedBy(o, "range");
  LONGS_EQUAL(2, Sum(depth));  // README: -0.082 and -0.072
  LONGS_EQUAL(1, depth["chicago/Osterman Beach/Transducer Depth"]);
  LONGS_EQUAL(1, depth["chicago/63rd Street Beach/Transducer Depth"]);
  LONGS_EQUAL(o.rejected.size(), wave_sentinels + 2);

  // Rainbow Beach reads 0 for 63 hours from 2014-07-23: from the 6th on, all flagged stuck.
  std::vector<const Reading*> zeros;
  for (const auto& r : o.passed)
    if (r.sensor == "chicago/Rainbow Beach/Water Temperature" && r.value == 0) zeros.push_back(&r);
  LONGS_EQUAL(63, zeros.size());
  for (size_t i = 0; i < zeros.size(); ++i) CHECK_EQUAL(i >= 5, (zeros[i]->quality & kQualityStuck) != 0);
  LONGS_EQUAL(At("2014-07-23T03:00:00"), zeros[0]->ts_us);

  // The turbidity spikes the README points at.
  std::set<std::pair<std::string, double>> spikes;
  for (const auto& r : o.passed)
    if (r.quality & kQualitySpike) spikes.insert({r.sensor, r.value});
  CHECK(spikes.count({"chicago/63rd Street Beach/Turbidity", 1683.48}));
  CHECK(spikes.count({"chicago/63rd Street Beach/Turbidity", 1680.92}));
  CHECK(spikes.count({"chicago/Rainbow Beach/Turbidity", 1362.8}));
  CHECK(spikes.count({"chicago/Ohio Street Beach/Turbidity", 1190.02}));
  // The robust scale keeps flags a small share of the turbidity readings (README: it is spiky).
  uint64_t turbidity = 0, flagged = 0;
  for (const auto& r : o.passed)
    if (r.sensor.find("/Turbidity") != std::string::npos) {
      ++turbidity;
      flagged += (r.quality & kQualitySpike) != 0;
    }
  CHECK(flagged * 20 < turbidity);
}

TEST(DataSets, ChicagoRowsOutOfTimeOrderAreCaughtByBackwards) {
  datasets::DataSet d = datasets::LoadChicago(DataFile("chicago_beach/Beach_Water_Quality_-_Automated_Sensors.csv"));
  // Independent count: readings earlier than the latest earlier reading of their sensor.
  std::map<std::string, int64_t> latest;
  uint64_t expected = 0;
  for (const auto& r : d.readings) {
    auto it = latest.find(r.sensor);
    if (it != latest.end() && r.ts_us < it->second) ++expected;
    else latest[r.sensor] = r.ts_us;
  }
  CHECK(expected > 3669);  // README: 3,669 adjacent rows go backwards; per sensor it is more
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "chicago/*"
backwards = "flag"
)");
  Validator v(cfg, clock);
  Out o = Run(v, d.readings);
  LONGS_EQUAL(0, o.rejected.size());
  uint64_t flagged = 0;
  for (const auto& r : o.passed) flagged += (r.quality & kQualityBackwards) != 0;
  LONGS_EQUAL(expected, flagged);
  LONGS_EQUAL(expected, v.stats().flags.at("backwards"));
}

TEST(DataSets, BeijingNaCellsSaturationAndOffGridValues) {
  ValidationConfig cfg = ParseValidation(R"(
[[validation.sensor]]
match = "beijing/*"
type = "reject"
[[validation.sensor]]
match = "beijing/*/CO"
range = { min = 0, max = 10000, exclusive = true, action = "flag" }
[[validation.sensor]]
match = "beijing/*/PM10"
range = { min = 0, max = 999, exclusive = true, action = "flag" }
[[validation.sensor]]
match = ["beijing/*/TEMP", "beijing/*/PRES", "beijing/*/DEWP", "beijing/*/RAIN", "beijing/*/WSPM"]
resolution = 0.1
)");
  Validator v(cfg, clock);
  uint64_t na_numeric = 0, na_wd = 0, off_grid = 0, co_ceiling = 0, pm10_ceiling = 0, readings = 0;
  uint64_t rejected = 0, passed = 0, co_flags = 0, pm_flags = 0, changed = 0, negative_zero = 0;
  const std::set<std::string> grid01 = {"TEMP", "PRES", "DEWP", "RAIN", "WSPM"};
  // One station at a time (one validator throughout), so the test stays small in memory.
  for (const char* station : {"Aotizhongxin", "Changping", "Dingling", "Guanyuan"}) {
    const std::string path = DataFile(std::string("beijing_prsa/PRSA_Data_") + station + "_20130301-20170228.csv");
    datasets::DataSet d = datasets::LoadBeijing(path);
    LONGS_EQUAL(35064, d.rows);
    readings += d.readings.size();
    {
      auto raw = datasets::ReadCsv(path, ',');
      for (size_t i = 1; i < raw.size(); ++i) {
        for (size_t k = 5; k <= 16; ++k) {
          const std::string& cell = raw[i][k];
          if (k == 15) {
            na_wd += cell == "NA";
            continue;
          }
          if (cell == "NA") {
            ++na_numeric;
            continue;
          }
          const double x = std::stod(cell);
          if (grid01.count(raw[0][k]) && std::round(x * 10) / 10 != x) ++off_grid;
          co_ceiling += raw[0][k] == "CO" && x == 10000;
          pm10_ceiling += raw[0][k] == "PM10" && x == 999;
        }
      }
    }
    Out o = Run(v, d.readings);
    rejected += o.rejected.size();
    for (const auto& q : o.rejected) STRCMP_EQUAL("type", q.rule.c_str());
    passed += o.passed.size();
    size_t j = 0;
    for (const Reading& in : d.readings) {
      if (in.type != ValueType::kNumber) continue;
      const Reading& out = o.passed.at(j++);
      if (in.sensor != out.sensor || in.ts_us != out.ts_us) FAIL(("reading out of order: " + out.sensor).c_str());
      if (out.quality & kQualityRange) (out.sensor.find("/CO") != std::string::npos ? co_flags : pm_flags)++;
      if (std::memcmp(&in.value, &out.value, sizeof(double)) != 0) ++changed;
      negative_zero += std::signbit(out.value) && out.value == 0;
    }
    LONGS_EQUAL(o.passed.size(), j);
  }
  LONGS_EQUAL(24731, na_numeric + na_wd);  // README
  LONGS_EQUAL(15, co_ceiling);             // README: CO reaches its ceiling of 10000 in 15 rows
  LONGS_EQUAL(2, pm10_ceiling);            // README: PM10 reaches 999 twice
  LONGS_EQUAL(1518527 + na_numeric, readings);
  LONGS_EQUAL(na_numeric, rejected);
  LONGS_EQUAL(1518527, passed);
  LONGS_EQUAL(15, co_flags);
  LONGS_EQUAL(2, pm_flags);
  // Only the values off the 0.1 grid change (e.g. 4.66666666666667 -> 4.7); -2.8e-17 becomes 0.
  LONGS_EQUAL(off_grid, changed);
  LONGS_EQUAL(0, negative_zero);
}
