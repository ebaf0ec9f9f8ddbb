// The built-in simulator: per-sensor timestamps stay at least one interval apart even when the
// host stalls, so NDJSON output (millisecond timestamps) never holds two readings of one sensor
// at the same instant.
#include "edgepipe/firmware_bridge/simulator.h"

#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include <CppUTest/TestHarness.h>

using namespace edgepipe;

namespace {

// Real time plus a staircase: every `period_us` of real time the clock jumps `step_us` ahead
// (both wall and monotonic), which looks to the simulator exactly like a wake-up that came late
// because the host was busy.
class StallingClock final : public Clock {
 public:
  StallingClock(int64_t period_us, int64_t step_us) : period_us_(period_us), step_us_(step_us) {}
  int64_t SystemNowUs() const override { return real_.SystemNowUs() + Offset(); }
  int64_t MonotonicNowUs() const override { return real_.MonotonicNowUs() + Offset(); }

 private:
  int64_t Offset() const { return (real_.MonotonicNowUs() - start_) / period_us_ * step_us_; }
  RealClock real_;
  const int64_t start_ = real_.MonotonicNowUs();
  const int64_t period_us_;
  const int64_t step_us_;
};

class RecordingSink final : public ReadingSink {
 public:
  Result<uint64_t> Append(std::span<const Reading> readings) override {
    std::lock_guard<std::mutex> lock(mu);
    for (const Reading& r : readings) ts[r.sensor].push_back(r.ts_us);
    return ++tickets;
  }
  Result<uint64_t> AppendWithState(std::span<const Reading> readings, const SourceState&) override {
    return Append(readings);
  }
  Result<std::optional<std::string>> LoadState(const std::string&) override { return std::optional<std::string>(); }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  Result<uint64_t> Quarantine(const QuarantineRecord&) override { return ++tickets; }
  Result<uint64_t> RecordGap(const GapRecord&) override { return ++tickets; }

  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> ts;
  uint64_t tickets = 0;
};

}  // namespace

TEST_GROUP(Simulator){};

TEST(Simulator, TicksStayOneIntervalApartWhenWakeUpsComeLate) {
  const int64_t interval = 5'000;
  StallingClock clock(/*period_us=*/7 * interval + 1'300, /*step_us=*/interval * 9 / 10);
  RecordingSink sink;
  fb::SimulatorOptions opt;
  opt.sensor_count = 3;
  opt.interval_us = interval;
  opt.max_readings = 3 * 80;
  fb::Simulator sim(opt, sink, clock);
  CHECK_TRUE(sim.Start().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sim.Health().state != "finished" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  STRCMP_EQUAL("finished", sim.Health().state.c_str());
  sim.Stop();

  std::lock_guard<std::mutex> lock(sink.mu);
  LONGS_EQUAL(3, sink.ts.size());
  for (const auto& [sensor, ts] : sink.ts) {
    LONGS_EQUAL(80, ts.size());
    for (size_t i = 1; i < ts.size(); ++i) {
      if (ts[i] - ts[i - 1] < interval) {
        FAIL((sensor + ": readings " + std::to_string(i - 1) + " and " + std::to_string(i) + " only " +
              std::to_string(ts[i] - ts[i - 1]) + " us apart (interval " + std::to_string(interval) + " us)")
                 .c_str());
      }
    }
  }
}
