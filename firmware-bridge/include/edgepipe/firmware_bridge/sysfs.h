// The sysfs poller: Linux IIO channels (/sys/bus/iio/devices/iio:deviceN/in_*_raw with _scale and
// _offset, or in_*_input), hwmon sensors (/sys/class/hwmon/hwmonN/{temp,in,curr,power,energy,
// fan,humidity}*_input) and thermal zones (/sys/class/thermal/thermal_zoneN/temp). Values are
// converted from the units the kernel documents (millidegrees, millivolts, microwatts, kPa, ...)
// to SI/SenML units (Cel, V, A, W, J, Pa, %RH, ...). The root is configurable so tests run on a
// generated tree. A channel that disappears or fails to read (EIO, ...) is reported (log, Health)
// and retried on the next poll; the source never stops for it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/source.h"

namespace edgepipe::fb {

struct SysfsOptions {
  std::string name = "sysfs";
  std::string root = "/sys";                 // tests point this at a generated tree
  int64_t interval_us = 10'000'000;          // one poll of every channel per interval
  int64_t rescan_interval_us = 60'000'000;   // look for new / returning devices this often
  std::vector<std::string> channels;         // glob patterns on channel ids ("" list = all)
  std::vector<std::string> exclude;          // glob patterns removed from the selection
};

enum class SysfsKind : uint8_t { kIio, kHwmon, kThermal };

// One readable value. `id` is the sensor id: "iio/<device name>/<channel>",
// "hwmon/<chip name>/<channel>" or "thermal/<zone type>", e.g. "iio/bme280/temp",
// "hwmon/coretemp/temp1", "thermal/cpu-thermal".
struct SysfsChannel {
  std::string id;
  SysfsKind kind = SysfsKind::kHwmon;
  std::string value_path;    // *_raw, *_input or temp
  std::string scale_path;    // IIO *_scale ("" = 1)
  std::string offset_path;   // IIO *_offset ("" = 0)
  std::string unit;          // SenML unit after conversion ("" = unknown / dimensionless)
  double factor = 1.0;       // kernel unit -> SI unit
};

// Scans `root` and returns the selected channels, sorted by id.
std::vector<SysfsChannel> DiscoverSysfsChannels(const SysfsOptions& options);

// Reads one channel: (raw + offset) * scale * factor. kNotFound when the file vanished;
// kUnavailable for a read error (EIO, ...); kDataLoss for unparseable content.
Result<double> ReadSysfsChannel(const SysfsChannel& channel);

class SysfsSource final : public Source {
 public:
  SysfsSource(SysfsOptions options, ReadingSink& sink, Clock& clock);
  ~SysfsSource() override;

  const std::string& name() const override { return opt_.name; }
  Status Start() override;
  void Stop() override;
  SourceHealth Health() const override;

  // One poll of every channel, stamped `now_us` (the thread's body; tests call it directly).
  // Returns the number of readings handed to the sink.
  size_t PollOnce(int64_t now_us);
  // Re-discovers channels now (also done every rescan_interval by the thread).
  void Rescan();
  std::vector<std::string> ChannelIds() const;

 private:
  void Loop();
  void Report(const std::string& id, const Status& s);

  SysfsOptions opt_;
  ReadingSink& sink_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::vector<SysfsChannel> channels_;
  std::map<std::string, std::string> failing_;  // channel id -> last error (reported once per change)
  int64_t last_scan_mono_ = 0;
  SourceHealth health_;
};

}  // namespace edgepipe::fb
