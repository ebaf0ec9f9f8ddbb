// Validation cost per reading with every rule on, over the shared real data sets (about 1.85
// million readings: NAB, UCI, Chicago beaches, four Beijing stations), on one core.
//
// Both loops hand the readings to the stage in chunks of 256 (one source message's worth, as
// Ingest does) and collect what comes out into vectors: the baseline moves every reading through
// unchanged, the validator runs the rules. Each is run --rounds times on a fresh copy (the copy is
// not timed); the best round counts. Times are the thread's CPU time (the machine may be
// shared). Output: ns/reading of both, the validator's cost above the
// baseline, and the ratio.
//
//   build/bench/validation_bench [--data DIR] [--rounds N] [--config FILE]
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "datasets.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/agent/validator.h"

using namespace edgepipe;
using namespace edgepipe::agent;

namespace {

// Every rule and transform on for every sensor, with tolerances for these data, plus the
// data-set specific rules of tests/validation/datasets_test.cpp.
const char* kConfig = R"(
[device]
id = "bench"
[upload]
url = "file:///tmp/outbox"
[[source]]
type = "simulator"

[validation]
duplicate_by = "timestamp"

[validation.default]
type = "reject"
sentinel = [-200, -99999.992, -100000]
range = { min = -1000, max = 100000 }
rate_of_change = { max = 1000 }
stuck = { count = 24, duration = "1d" }
spike = { window = 11, threshold = 3, min_scale = 1 }
future = { skew = "5m" }
too_old = { floor = "2000-01-01" }
backwards = "flag"
calibration = { scale = 1.0001, offset = 0 }
resolution = 0.001

[[validation.sensor]]
match = "nab/*"
unit = { from = "[degF]", to = "Cel" }

[[validation.sensor]]
match = ["chicago/*/Water Temperature", "uci/T", "beijing/*/TEMP"]
unit = { from = "Cel", to = "Cel" }

[[validation.sensor]]
match = "beijing/*/CO"
range = { min = 0, max = 10000, exclusive = true, action = "flag" }
)";

constexpr size_t kChunk = 256;

// CPU time of this thread: on a shared machine, time spent preempted by other processes is not
// counted (cache pollution by them still is; the best of several rounds counts).
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = getenv("EDGEPIPE_DATA_DIR") ? getenv("EDGEPIPE_DATA_DIR") : EDGEPIPE_DATA_DIR_DEFAULT;
  int rounds = 5;
  std::string config_path;  // another configuration instead of kConfig (its [validation] is used)
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, atoi(argv[++i]));
    else if (!strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--data DIR] [--rounds N] [--config FILE]\n", argv[0]);
      return 64;
    }
  }
  std::vector<Reading> all;
  try {
    auto add = [&](const datasets::DataSet& d) { all.insert(all.end(), d.readings.begin(), d.readings.end()); };
    add(datasets::LoadNab(dir + "/nab/machine_temperature_system_failure.csv", "nab/machine_temperature"));
    add(datasets::LoadNab(dir + "/nab/ambient_temperature_system_failure.csv", "nab/ambient_temperature"));
    add(datasets::LoadUci(dir + "/uci_air_quality/AirQualityUCI.csv"));
    add(datasets::LoadChicago(dir + "/chicago_beach/Beach_Water_Quality_-_Automated_Sensors.csv"));
    for (const char* s : {"Aotizhongxin", "Changping", "Dingling", "Guanyuan"})
      add(datasets::LoadBeijing(dir + "/beijing_prsa/PRSA_Data_" + s + "_20130301-20170228.csv"));
  } catch (const std::exception& e) {
    fprintf(stderr, "validation_bench: %s\nThe shared data sets live in ../shared/data (or $EDGEPIPE_DATA_DIR).\n", e.what());
    return 1;
  }
  ParseResult pr = config_path.empty() ? ParseConfigText(kConfig, "<bench>") : LoadConfigFile(config_path);
  if (!pr.config) {
    for (const auto& p : pr.problems) fprintf(stderr, "%s\n", p.ToString().c_str());
    return 1;
  }
  ManualClock clock(1'735'689'600'000'000ll);  // 2025-01-01

  double best_base = 1e30, best_val = 1e30;
  uint64_t passed = 0, rejected = 0, flagged = 0;
  for (int round = 0; round < rounds; ++round) {
    // Baseline: the same chunking and vectors, readings moved through unchanged.
    {
      std::vector<Reading> in = all;
      std::vector<Reading> chunk, out;
      chunk.reserve(kChunk);
      out.reserve(kChunk);
      uint64_t sink = 0;
      const double t0 = CpuSeconds();
      for (size_t i = 0; i < in.size(); i += kChunk) {
        const size_t end = std::min(in.size(), i + kChunk);
        chunk.assign(std::make_move_iterator(in.begin() + i), std::make_move_iterator(in.begin() + end));
        out.clear();
        for (Reading& r : chunk) out.push_back(std::move(r));
        chunk.clear();
        sink += out.size();
      }
      best_base = std::min(best_base, CpuSeconds() - t0);
      if (sink != all.size()) return 2;
    }
    // Validator with every rule on.
    {
      std::vector<Reading> in = all;
      Validator v(pr.config->validation, clock);
      std::vector<Reading> chunk, out;
      std::vector<QuarantineRecord> rej;
      chunk.reserve(kChunk);
      out.reserve(kChunk);
      const double t0 = CpuSeconds();
      for (size_t i = 0; i < in.size(); i += kChunk) {
        const size_t end = std::min(in.size(), i + kChunk);
        chunk.assign(std::make_move_iterator(in.begin() + i), std::make_move_iterator(in.begin() + end));
        out.clear();
        rej.clear();
        v.Process(chunk, &out, &rej);
      }
      best_val = std::min(best_val, CpuSeconds() - t0);
      ValidationStats s = v.stats();
      passed = s.passed;
      rejected = s.rejected_total();
      flagged = s.flagged;
    }
  }
  const double n = static_cast<double>(all.size());
  const double base_ns = best_base * 1e9 / n, val_ns = best_val * 1e9 / n;
  printf("validation_bench: %zu readings (%llu passed, %llu flagged, %llu rejected), best of %d rounds\n", all.size(),
         static_cast<unsigned long long>(passed), static_cast<unsigned long long>(flagged),
         static_cast<unsigned long long>(rejected), rounds);
  printf("  baseline pass-through   %7.1f ns/reading\n", base_ns);
  printf("  validator, all rules on %7.1f ns/reading\n", val_ns);
  printf("  validation cost         %7.1f ns/reading above the baseline (target < 200)\n", val_ns - base_ns);
  printf("  ratio validator/baseline %6.2f\n", val_ns / base_ns);
  return val_ns - base_ns < 200 ? 0 : 3;
}
