// The built-in sensor simulator: smooth periodic signals with seeded noise, for demos, tests
// and benchmarks. Deterministic for a given seed and sequence of tick times.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/source.h"

namespace edgepipe::fb {

struct SimSensor {
  std::string name;
  std::string unit;
  double base = 20.0;        // mean value
  double amplitude = 5.0;    // of the sine wave
  double period_s = 600.0;   // of the sine wave
  double noise = 0.1;        // standard deviation of the Gaussian noise
  int decimals = 2;          // values are rounded to this many decimals (like a real ADC)
};

struct SimulatorOptions {
  std::string name = "sim";
  std::vector<SimSensor> sensors;  // empty: `sensor_count` generated sensors
  int sensor_count = 4;
  int64_t interval_us = 1'000'000; // one reading per sensor per interval
  uint64_t seed = 1;
  double nan_rate = 0.0;           // probability that a reading is NaN (exercises validation)
  uint64_t max_readings = 0;       // stop after this many (0 = unbounded)
};

// The generated default sensor table: temperature, humidity, pressure, voltage, ...
std::vector<SimSensor> DefaultSimSensors(int count);

class Simulator final : public Source {
 public:
  Simulator(SimulatorOptions options, ReadingSink& sink, Clock& clock);
  ~Simulator() override;

  const std::string& name() const override { return opt_.name; }
  Status Start() override;
  void Stop() override;
  SourceHealth Health() const override;

  // One reading per sensor stamped `ts_us` (used by the thread, and by tests directly).
  std::vector<Reading> Generate(int64_t ts_us);

 private:
  void Loop();

  SimulatorOptions opt_;
  ReadingSink& sink_;
  Clock& clock_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> gauss_{0.0, 1.0};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};

  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  SourceHealth health_;
  uint64_t generated_ = 0;
};

}  // namespace edgepipe::fb
