#include "edgepipe/firmware_bridge/simulator.h"

#include <cmath>
#include <limits>

#include "edgepipe/core/log.h"

namespace edgepipe::fb {

std::vector<SimSensor> DefaultSimSensors(int count) {
  static const SimSensor kKinds[] = {
      {"temperature", "Cel", 21.5, 3.0, 900, 0.05, 2},
      {"humidity", "%RH", 45.0, 8.0, 1800, 0.3, 1},
      {"pressure", "hPa", 1013.2, 2.0, 3600, 0.05, 1},
      {"supply", "V", 12.1, 0.2, 300, 0.01, 3},
  };
  std::vector<SimSensor> out;
  for (int i = 0; i < count; ++i) {
    SimSensor s = kKinds[i % 4];
    s.name = "sim-" + s.name + "-" + std::to_string(i / 4);
    s.base += (i / 4) * 0.5;
    out.push_back(s);
  }
  return out;
}

Simulator::Simulator(SimulatorOptions options, ReadingSink& sink, Clock& clock)
    : opt_(std::move(options)), sink_(sink), clock_(clock), rng_(opt_.seed) {
  if (opt_.sensors.empty()) opt_.sensors = DefaultSimSensors(opt_.sensor_count);
  health_.name = opt_.name;
  health_.type = "simulator";
  health_.state = "stopped";
}

Simulator::~Simulator() { Stop(); }

std::vector<Reading> Simulator::Generate(int64_t ts_us) {
  std::vector<Reading> out;
  out.reserve(opt_.sensors.size());
  const double t = static_cast<double>(ts_us) / 1e6;
  for (const SimSensor& s : opt_.sensors) {
    double v = s.base + s.amplitude * std::sin(2 * M_PI * t / s.period_s) + s.noise * gauss_(rng_);
    const double scale = std::pow(10.0, s.decimals);
    // Rounded like a decimal instrument: the double that the decimal text would parse to.
    v = std::round(v * scale) / scale;
    if (opt_.nan_rate > 0 && uniform_(rng_) < opt_.nan_rate) v = std::numeric_limits<double>::quiet_NaN();
    Reading r;
    r.sensor = s.name;
    r.ts_us = ts_us;
    r.value = v;
    r.unit = s.unit;
    r.source = opt_.name;
    out.push_back(std::move(r));
  }
  return out;
}

Status Simulator::Start() {
  if (opt_.interval_us <= 0) return InvalidArgumentError("simulator interval must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return Status::Ok();
  stop_ = false;
  health_.state = "running";
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Simulator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  health_.state = "stopped";
}

SourceHealth Simulator::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void Simulator::Loop() {
  while (true) {
    // Ticks are at least one interval apart, measured from the moment each tick really started:
    // after a stall (a late wake-up, a slow Append) the next tick waits a full interval instead
    // of firing at once, so one sensor's timestamps never bunch up within a millisecond. Under
    // sustained load the rate drops rather than bursting. The wall clock is read first so that a
    // stall between the two reads can only lengthen the spacing.
    const int64_t ts_us = clock_.SystemNowUs();
    const int64_t tick_mono = clock_.MonotonicNowUs();
    std::vector<Reading> batch = Generate(ts_us);
    if (opt_.max_readings && generated_ + batch.size() > opt_.max_readings)
      batch.resize(opt_.max_readings - generated_);
    generated_ += batch.size();
    if (!batch.empty()) {
      Result<uint64_t> t = sink_.Append(batch);
      std::lock_guard<std::mutex> lock(mu_);
      if (t.ok()) {
        health_.readings += batch.size();
      } else {
        ++health_.errors;
        health_.last_error = t.status().ToString();
        EP_LOG_WARN("simulator", "%s: %s", opt_.name.c_str(), health_.last_error.c_str());
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (opt_.max_readings && generated_ >= opt_.max_readings) {
      health_.state = "finished";
      return;
    }
    // Wait until tick_mono + interval; re-check the clock after each wake-up (spurious or early).
    while (!stop_) {
      const int64_t wait = tick_mono + opt_.interval_us - clock_.MonotonicNowUs();
      if (wait <= 0) break;
      cv_.wait_for(lock, std::chrono::microseconds(wait));
    }
    if (stop_) return;
  }
}

}  // namespace edgepipe::fb
