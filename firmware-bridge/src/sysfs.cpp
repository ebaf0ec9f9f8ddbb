#include "edgepipe/firmware_bridge/sysfs.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>

namespace edgepipe::fb {
namespace {

namespace fs = std::filesystem;
constexpr const char* kLog = "sysfs";

struct UnitRule {
  const char* type;
  const char* unit;
  double factor;
};

// IIO channel types after applying _scale (Documentation/ABI/testing/sysfs-bus-iio).
constexpr UnitRule kIioUnits[] = {
    {"temp", "Cel", 1e-3},               // milli degrees Celsius
    {"voltage", "V", 1e-3},              // millivolts
    {"current", "A", 1e-3},              // milliamps
    {"power", "W", 1e-3},                // milliwatts
    {"pressure", "Pa", 1e3},             // kilopascal
    {"humidityrelative", "%RH", 1e-3},   // milli percent
    {"illuminance", "lx", 1.0},          // lux
    {"accel", "m/s2", 1.0},              // m/s^2
    {"anglvel", "rad/s", 1.0},           // radian/s
    {"magn", "T", 1e-4},                 // Gauss
    {"resistance", "Ohm", 1.0},          // ohms
    {"capacitance", "F", 1e-9},          // nanofarad
    {"distance", "m", 1.0},              // metres
    {"velocity", "m/s", 1.0},            // m/s
    {"gravity", "m/s2", 1.0},
    {"concentration", "%", 1.0},         // percent
    {"proximity", "", 1.0},              // unitless
    {"intensity", "", 1.0},              // unitless
};

// hwmon attribute families (Documentation/hwmon/sysfs-interface.rst).
constexpr UnitRule kHwmonUnits[] = {
    {"temp", "Cel", 1e-3},      // millidegree Celsius
    {"in", "V", 1e-3},          // millivolt
    {"curr", "A", 1e-3},        // milliampere
    {"power", "W", 1e-6},       // microwatt
    {"energy", "J", 1e-6},      // microjoule
    {"fan", "1/min", 1.0},      // RPM
    {"humidity", "%RH", 1e-3},  // milli-percent
};

bool ReadSmallFile(const std::string& path, std::string* out, int* err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  *err = n < 0 ? errno : 0;
  close(fd);
  if (n < 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ' || out->back() == '\t')) out->pop_back();
  return true;
}

std::string ReadName(const fs::path& dir, const std::string& file, const std::string& fallback) {
  std::string s;
  int err = 0;
  if (!ReadSmallFile((dir / file).string(), &s, &err) || s.empty()) return fallback;
  for (char& c : s)
    if (c == '/' || c == ' ' || c == '+' || c == '#') c = '_';
  return s;
}

bool ParseDouble(std::string_view s, double* v) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool Selected(const std::string& id, const SysfsOptions& o) {
  auto match = [&](const std::vector<std::string>& pats) {
    return std::any_of(pats.begin(), pats.end(), [&](const std::string& p) { return fnmatch(p.c_str(), id.c_str(), 0) == 0; });
  };
  if (!o.channels.empty() && !match(o.channels)) return false;
  return !match(o.exclude);
}

std::vector<fs::path> ListDir(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.rfind(prefix, 0) == 0) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "in_voltage0_raw" -> channel "voltage0", type "voltage"; "in_accel_x_raw" -> "accel_x", "accel".
bool SplitIio(const std::string& file, std::string* channel, std::string* type, bool* raw) {
  if (file.rfind("in_", 0) != 0) return false;
  std::string_view f(file);
  f.remove_prefix(3);
  if (f.size() > 4 && f.substr(f.size() - 4) == "_raw") {
    *raw = true;
    f.remove_suffix(4);
  } else if (f.size() > 6 && f.substr(f.size() - 6) == "_input") {
    *raw = false;
    f.remove_suffix(6);
  } else {
    return false;
  }
  if (f.empty()) return false;
  *channel = std::string(f);
  size_t n = 0;
  while (n < f.size() && std::isalpha(static_cast<unsigned char>(f[n]))) ++n;
  *type = std::string(f.substr(0, n));
  return !type->empty();
}

void DiscoverIio(const SysfsOptions& o, std::vector<SysfsChannel>* out) {
  fs::path base = fs::path(o.root) / "bus/iio/devices";
  for (const fs::path& dev : ListDir(base, "iio:device")) {
    std::string devname = ReadName(dev, "name", dev.filename().string());
    for (const fs::path& f : ListDir(dev, "in_")) {
      std::string channel, type;
      bool raw = false;
      if (!SplitIio(f.filename().string(), &channel, &type, &raw)) continue;
      SysfsChannel c;
      c.kind = SysfsKind::kIio;
      c.id = "iio/" + devname + "/" + channel;
      c.value_path = f.string();
      if (raw) {
        // Per-channel attribute first, then the one shared by the channel type.
        for (const char* attr : {"scale", "offset"}) {
          std::string path;
          for (const std::string& stem : {channel, type}) {
            fs::path p = dev / ("in_" + stem + "_" + attr);
            std::error_code ec;
            if (fs::exists(p, ec)) {
              path = p.string();
              break;
            }
          }
          (std::strcmp(attr, "scale") == 0 ? c.scale_path : c.offset_path) = path;
        }
      }
      for (const UnitRule& u : kIioUnits)
        if (type == u.type) {
          c.unit = u.unit;
          c.factor = u.factor;
        }
      if (Selected(c.id, o)) out->push_back(std::move(c));
    }
  }
}

void DiscoverHwmon(const SysfsOptions& o, std::vector<SysfsChannel>* out) {
  fs::path base = fs::path(o.root) / "class/hwmon";
  for (const fs::path& dev : ListDir(base, "hwmon")) {
    std::string chip = ReadName(dev, "name", dev.filename().string());
    // Older drivers keep the attributes under device/.
    for (const fs::path& dir : {dev, dev / "device"}) {
      for (const UnitRule& u : kHwmonUnits) {
        for (const fs::path& f : ListDir(dir, u.type)) {
          std::string n = f.filename().string();
          if (n.size() < 7 || n.substr(n.size() - 6) != "_input") continue;
          std::string stem = n.substr(0, n.size() - 6);  // "temp1"
          // "in0" must not match the "in" family through "intrusion0_..." etc.: digits follow the type.
          if (stem.size() <= std::strlen(u.type) || !std::isdigit(static_cast<unsigned char>(stem[std::strlen(u.type)])))
            continue;
          SysfsChannel c;
          c.kind = SysfsKind::kHwmon;
          c.id = "hwmon/" + chip + "/" + stem;
          c.value_path = f.string();
          c.unit = u.unit;
          c.factor = u.factor;
          if (Selected(c.id, o)) out->push_back(std::move(c));
        }
      }
    }
  }
}

void DiscoverThermal(const SysfsOptions& o, std::vector<SysfsChannel>* out) {
  fs::path base = fs::path(o.root) / "class/thermal";
  for (const fs::path& zone : ListDir(base, "thermal_zone")) {
    std::error_code ec;
    if (!fs::exists(zone / "temp", ec)) continue;
    SysfsChannel c;
    c.kind = SysfsKind::kThermal;
    c.id = "thermal/" + ReadName(zone, "type", zone.filename().string());
    c.value_path = (zone / "temp").string();
    c.unit = "Cel";
    c.factor = 1e-3;  // millidegree Celsius
    if (Selected(c.id, o)) out->push_back(std::move(c));
  }
}

Result<double> ReadNumber(const std::string& path, const char* what) {
  std::string s;
  int err = 0;
  if (!ReadSmallFile(path, &s, &err)) {
    if (err == ENOENT || err == ENODEV || err == ENXIO) return NotFoundError(path + ": gone (" + strerror(err) + ")");
    return UnavailableError(std::string("reading ") + what + " " + path + ": " + strerror(err));
  }
  double v = 0;
  if (!ParseDouble(s, &v)) return DataLossError(std::string(what) + " " + path + " holds \"" + s.substr(0, 32) + "\", not a number");
  return v;
}

}  // namespace

std::vector<SysfsChannel> DiscoverSysfsChannels(const SysfsOptions& options) {
  std::vector<SysfsChannel> out;
  DiscoverIio(options, &out);
  DiscoverHwmon(options, &out);
  DiscoverThermal(options, &out);
  // Two devices with the same name: keep ids unique by suffixing the later ones.
  std::sort(out.begin(), out.end(), [](const SysfsChannel& a, const SysfsChannel& b) { return a.id < b.id; });
  std::set<std::string> seen;
  for (SysfsChannel& c : out) {
    std::string id = c.id;
    for (int i = 2; !seen.insert(id).second; ++i) id = c.id + "~" + std::to_string(i);
    c.id = id;
  }
  return out;
}

Result<double> ReadSysfsChannel(const SysfsChannel& c) {
  Result<double> raw = ReadNumber(c.value_path, "value");
  if (!raw.ok()) return raw.status();
  double offset = 0, scale = 1;
  if (!c.offset_path.empty()) {
    Result<double> o = ReadNumber(c.offset_path, "offset");
    if (!o.ok()) return o.status();
    offset = *o;
  }
  if (!c.scale_path.empty()) {
    Result<double> s = ReadNumber(c.scale_path, "scale");
    if (!s.ok()) return s.status();
    scale = *s;
  }
  return (*raw + offset) * scale * c.factor;
}

SysfsSource::SysfsSource(SysfsOptions options, ReadingSink& sink, Clock& clock)
    : opt_(std::move(options)), sink_(sink), clock_(clock) {
  health_.name = opt_.name;
  health_.type = "sysfs";
  health_.state = "stopped";
}

SysfsSource::~SysfsSource() { Stop(); }

void SysfsSource::Rescan() {
  std::vector<SysfsChannel> found = DiscoverSysfsChannels(opt_);
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> before, after;
  for (const auto& c : channels_) before.insert(c.id);
  for (const auto& c : found) after.insert(c.id);
  for (const auto& id : after)
    if (!before.count(id) && !channels_.empty()) EP_LOG_NOTICE(kLog, "source %s: new channel %s", opt_.name.c_str(), id.c_str());
  // Channels that vanished stay in the list: they are reported by every poll until they return.
  for (const auto& c : channels_)
    if (!after.count(c.id)) found.push_back(c);
  std::sort(found.begin(), found.end(), [](const SysfsChannel& a, const SysfsChannel& b) { return a.id < b.id; });
  channels_ = std::move(found);
  last_scan_mono_ = clock_.MonotonicNowUs();
}

std::vector<std::string> SysfsSource::ChannelIds() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& c : channels_) ids.push_back(c.id);
  return ids;
}

void SysfsSource::Report(const std::string& id, const Status& s) {
  // Caller holds mu_. One log line per change of a channel's condition, not one per poll.
  ++health_.errors;
  health_.last_error = id + ": " + s.ToString();
  auto it = failing_.find(id);
  if (it != failing_.end() && it->second == s.message()) return;
  failing_[id] = s.message();
  EP_LOG_WARN(kLog, "source %s: channel %s: %s; retrying every poll", opt_.name.c_str(), id.c_str(),
              s.ToString().c_str());
}

size_t SysfsSource::PollOnce(int64_t now_us) {
  std::vector<Reading> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.reserve(channels_.size());
    for (const SysfsChannel& c : channels_) {
      Result<double> v = ReadSysfsChannel(c);
      if (!v.ok()) {
        Report(c.id, v.status());
        continue;
      }
      if (failing_.erase(c.id)) EP_LOG_NOTICE(kLog, "source %s: channel %s reads again", opt_.name.c_str(), c.id.c_str());
      Reading r;
      r.sensor = c.id;
      r.ts_us = now_us;
      r.value = *v;
      r.unit = c.unit;
      r.source = opt_.name;
      out.push_back(std::move(r));
    }
  }
  if (out.empty()) return 0;
  Result<uint64_t> t = sink_.Append(out);
  std::lock_guard<std::mutex> lock(mu_);
  if (!t.ok()) {
    ++health_.errors;
    health_.last_error = "buffer refused a poll: " + t.status().ToString();
    EP_LOG_WARN(kLog, "source %s: %s", opt_.name.c_str(), health_.last_error.c_str());
    return 0;
  }
  health_.readings += out.size();
  return out.size();
}

Status SysfsSource::Start() {
  if (opt_.interval_us <= 0) return InvalidArgumentError("sysfs interval must be positive");
  std::error_code ec;
  if (!fs::is_directory(opt_.root, ec)) return FailedPreconditionError("sysfs root " + opt_.root + " is not a directory");
  Rescan();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_.joinable()) return Status::Ok();
    if (channels_.empty())
      EP_LOG_WARN(kLog, "source %s: no channel under %s matches the selection yet; rescanning every %llds", opt_.name.c_str(),
                  opt_.root.c_str(), static_cast<long long>(opt_.rescan_interval_us / 1'000'000));
    else
      EP_LOG_INFO(kLog, "source %s: polling %zu channel(s) under %s", opt_.name.c_str(), channels_.size(), opt_.root.c_str());
    stop_ = false;
    health_.state = "running";
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void SysfsSource::Loop() {
  int64_t next = clock_.MonotonicNowUs();
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      int64_t wait = next - clock_.MonotonicNowUs();
      if (wait > 0) cv_.wait_for(lock, std::chrono::microseconds(wait), [&] { return stop_; });
      if (stop_) return;
    }
    if (clock_.MonotonicNowUs() - last_scan_mono_ >= opt_.rescan_interval_us) Rescan();
    PollOnce(clock_.SystemNowUs());
    next += opt_.interval_us;
    const int64_t now = clock_.MonotonicNowUs();
    if (next < now) next = now;  // fell behind (suspend, slow sysfs): no burst of catch-up polls
  }
}

void SysfsSource::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  health_.state = "stopped";
}

SourceHealth SysfsSource::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

}  // namespace edgepipe::fb
