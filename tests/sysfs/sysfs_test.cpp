// The sysfs poller on generated trees laid out like the kernel's (IIO, hwmon, thermal), including
// a device that vanishes and comes back, and a channel whose read fails.
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/firmware_bridge/sysfs.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;
using edgepipe::testing::TempDir;
using edgepipe::testing::WriteFile;

namespace {

// Keeps what the source appends.
class MemorySink final : public ReadingSink {
 public:
  Result<uint64_t> Append(std::span<const Reading> r) override {
    std::lock_guard<std::mutex> lock(mu);
    readings.insert(readings.end(), r.begin(), r.end());
    return ++ticket;
  }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState&) override { return Append(r); }
  Result<std::optional<std::string>> LoadState(const std::string&) override { return std::optional<std::string>(); }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  Result<uint64_t> Quarantine(const QuarantineRecord&) override { return ++ticket; }
  Result<uint64_t> RecordGap(const GapRecord&) override { return ++ticket; }
  const Reading* Find(const std::string& sensor) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = readings.rbegin(); it != readings.rend(); ++it)
      if (it->sensor == sensor) return &*it;
    return nullptr;
  }
  std::mutex mu;
  std::vector<Reading> readings;
  uint64_t ticket = 0;
};

// A tree like a Raspberry Pi with a BME280 on I2C, an ADC, a hwmon chip and a thermal zone.
void MakeTree(const std::string& root) {
  const std::string iio0 = root + "/bus/iio/devices/iio:device0/";
  WriteFile(iio0 + "name", "bme280\n");
  WriteFile(iio0 + "in_temp_input", "21375\n");                  // milli degC (processed)
  WriteFile(iio0 + "in_pressure_input", "101.325\n");            // kPa
  WriteFile(iio0 + "in_humidityrelative_input", "45123\n");      // milli percent
  const std::string iio1 = root + "/bus/iio/devices/iio:device1/";
  WriteFile(iio1 + "name", "ads1015\n");
  WriteFile(iio1 + "in_voltage0_raw", "1000\n");
  WriteFile(iio1 + "in_voltage1_raw", "500\n");
  WriteFile(iio1 + "in_voltage_scale", "3.0\n");                 // shared by the type: mV per LSB
  WriteFile(iio1 + "in_voltage1_scale", "2.0\n");                // per-channel scale wins
  WriteFile(iio1 + "in_voltage1_offset", "-100\n");
  WriteFile(iio1 + "sampling_frequency", "128\n");               // not a channel
  const std::string hw = root + "/class/hwmon/hwmon0/";
  WriteFile(hw + "name", "coretemp\n");
  WriteFile(hw + "temp1_input", "45000\n");                      // millidegree
  WriteFile(hw + "temp1_crit", "100000\n");                      // not an _input
  WriteFile(hw + "in0_input", "1200\n");                         // mV
  WriteFile(hw + "power1_input", "2500000\n");                   // uW
  WriteFile(hw + "fan1_input", "1800\n");                        // RPM
  WriteFile(hw + "curr1_input", "250\n");                        // mA
  const std::string tz = root + "/class/thermal/thermal_zone0/";
  WriteFile(tz + "type", "cpu-thermal\n");
  WriteFile(tz + "temp", "52300\n");
}

}  // namespace

TEST_GROUP(Sysfs) {
  TempDir dir;
  ManualClock clock;
  MemorySink sink;
  SysfsOptions Options() {
    SysfsOptions o;
    o.root = dir.path();
    o.interval_us = 50'000;
    return o;
  }
};

TEST(Sysfs, DiscoversChannelsWithIdsAndUnits) {
  MakeTree(dir.path());
  std::vector<SysfsChannel> ch = DiscoverSysfsChannels(Options());
  std::vector<std::string> ids;
  for (const auto& c : ch) ids.push_back(c.id);
  const std::vector<std::string> want = {"hwmon/coretemp/curr1", "hwmon/coretemp/fan1",     "hwmon/coretemp/in0",
                                         "hwmon/coretemp/power1", "hwmon/coretemp/temp1",   "iio/ads1015/voltage0",
                                         "iio/ads1015/voltage1",  "iio/bme280/humidityrelative", "iio/bme280/pressure",
                                         "iio/bme280/temp",       "thermal/cpu-thermal"};
  LONGS_EQUAL(want.size(), ids.size());
  for (size_t i = 0; i < want.size(); ++i) STRCMP_EQUAL(want[i].c_str(), ids[i].c_str());
}

TEST(Sysfs, ConvertsKernelUnitsToSenml) {
  MakeTree(dir.path());
  SysfsSource src(Options(), sink, clock);
  src.Rescan();
  LONGS_EQUAL(11, src.PollOnce(clock.SystemNowUs()));
  struct Want {
    const char* id;
    double value;
    const char* unit;
  } wants[] = {
      {"iio/bme280/temp", 21.375, "Cel"},
      {"iio/bme280/pressure", 101325, "Pa"},
      {"iio/bme280/humidityrelative", 45.123, "%RH"},
      {"iio/ads1015/voltage0", 3.0, "V"},      // 1000 * 3.0 mV
      {"iio/ads1015/voltage1", 0.8, "V"},      // (500 - 100) * 2.0 mV
      {"hwmon/coretemp/temp1", 45.0, "Cel"},
      {"hwmon/coretemp/in0", 1.2, "V"},
      {"hwmon/coretemp/power1", 2.5, "W"},
      {"hwmon/coretemp/fan1", 1800, "1/min"},
      {"hwmon/coretemp/curr1", 0.25, "A"},
      {"thermal/cpu-thermal", 52.3, "Cel"},
  };
  for (const Want& w : wants) {
    const Reading* r = sink.Find(w.id);
    CHECK_TEXT(r != nullptr, w.id);
    DOUBLES_EQUAL_TEXT(w.value, r->value, 1e-9 * std::max(1.0, std::fabs(w.value)), w.id);
    STRCMP_EQUAL_TEXT(w.unit, r->unit.c_str(), w.id);
    LONGS_EQUAL(clock.SystemNowUs(), r->ts_us);
    STRCMP_EQUAL("sysfs", r->source.c_str());
  }
}

TEST(Sysfs, SelectionAndExclusion) {
  MakeTree(dir.path());
  SysfsOptions o = Options();
  o.channels = {"hwmon/*", "thermal/*"};
  o.exclude = {"hwmon/*/fan*"};
  std::vector<SysfsChannel> ch = DiscoverSysfsChannels(o);
  LONGS_EQUAL(5, ch.size());
  for (const auto& c : ch) CHECK(c.id.find("fan") == std::string::npos && c.id.rfind("iio", 0) != 0);
}

TEST(Sysfs, VanishingDeviceIsReportedAndPickedUpAgain) {
  MakeTree(dir.path());
  SysfsSource src(Options(), sink, clock);
  src.Rescan();
  LONGS_EQUAL(11, src.PollOnce(clock.SystemNowUs()));
  // The ADC is unplugged: its directory disappears.
  std::filesystem::rename(dir.Join("bus/iio/devices/iio:device1"), dir.Join("gone"));
  src.Rescan();
  LONGS_EQUAL(9, src.PollOnce(clock.SystemNowUs()));
  SourceHealth h = src.Health();
  CHECK(h.errors >= 2);
  CHECK(h.last_error.find("iio/ads1015/voltage") != std::string::npos);
  CHECK(h.last_error.find("NotFound") != std::string::npos);
  STRCMP_EQUAL("stopped", h.state.c_str());
  // Keeps polling the rest; the device comes back and is read again without a restart.
  LONGS_EQUAL(9, src.PollOnce(clock.SystemNowUs()));
  std::filesystem::rename(dir.Join("gone"), dir.Join("bus/iio/devices/iio:device1"));
  clock.Advance(1'000'000);
  LONGS_EQUAL(11, src.PollOnce(clock.SystemNowUs()));
  const Reading* r = sink.Find("iio/ads1015/voltage0");
  LONGS_EQUAL(clock.SystemNowUs(), r->ts_us);
}

TEST(Sysfs, ReadErrorAndGarbageAreReportedNotFatal) {
  MakeTree(dir.path());
  SysfsSource src(Options(), sink, clock);
  src.Rescan();
  // A read that fails (EISDIR here; EIO on real hardware takes the same path) and a value that
  // is not a number.
  std::filesystem::remove(dir.Join("class/hwmon/hwmon0/temp1_input"));
  std::filesystem::create_directory(dir.Join("class/hwmon/hwmon0/temp1_input"));
  WriteFile(dir.Join("class/thermal/thermal_zone0/temp"), "garbage\n");
  LONGS_EQUAL(9, src.PollOnce(clock.SystemNowUs()));
  SourceHealth h = src.Health();
  LONGS_EQUAL(2, h.errors);
  std::filesystem::remove(dir.Join("class/hwmon/hwmon0/temp1_input"));
  WriteFile(dir.Join("class/hwmon/hwmon0/temp1_input"), "46000\n");
  WriteFile(dir.Join("class/thermal/thermal_zone0/temp"), "50000\n");
  LONGS_EQUAL(11, src.PollOnce(clock.SystemNowUs()));
  DOUBLES_EQUAL(46.0, sink.Find("hwmon/coretemp/temp1")->value, 1e-9);
}

TEST(Sysfs, ThreadPollsOnItsIntervalAndStops) {
  MakeTree(dir.path());
  RealClock& real = static_cast<RealClock&>(RealClock::Default());
  SysfsSource src(Options(), sink, real);
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(edgepipe::testing::WaitUntil(5000, [&] { return src.Health().readings >= 33; }));
  STRCMP_EQUAL("running", src.Health().state.c_str());
  src.Stop();
  uint64_t n = src.Health().readings;
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  LONGS_EQUAL(n, src.Health().readings);
  STRCMP_EQUAL("stopped", src.Health().state.c_str());
}

TEST(Sysfs, MissingRootIsAConfigurationError) {
  SysfsOptions o = Options();
  o.root = dir.Join("nope");
  SysfsSource src(o, sink, clock);
  Status s = src.Start();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("not a directory") != std::string::npos);
}
