// mcu-sim: a simulated microcontroller built on the firmware library (firmware-bridge/mcu/epfw.c),
// speaking the edgepipe wire protocol to a serial device or to a pseudo-terminal it creates.
// It generates readings at a given rate and can damage its own transmissions (bit flips, dropped
// bytes, garbage, truncated frames), reboot, stall the link or "unplug" the pty, counting every
// fault so tests can check that the agent accounts for each one.
//
//   mcu-sim --pty /tmp/x/tty --rate 200 --sensors 4 --bitflip 0.01 --summary sum.json
//   mcu-sim --device /dev/ttyUSB0 --baud 115200 --rate 10
//
// Signals: SIGUSR1 pauses fault injection (an event "quiesced" follows once a reading generated
// after the pause was acknowledged, i.e. the agent has processed every earlier byte); SIGUSR2
// resumes it; SIGTERM/SIGINT stop (summary written).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "epfw.h"

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_pause = 0;   // set by SIGUSR1
volatile sig_atomic_t g_resume = 0;  // set by SIGUSR2

void OnSignal(int signo) {
  if (signo == SIGUSR1) g_pause = 1;
  else if (signo == SIGUSR2) g_resume = 1;
  else g_stop = 1;
}

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

struct SensorSpec {
  std::string name, unit;
  int32_t num = 1, den = 100;
  uint8_t kind = EPFW_KIND_INT32;
  double base = 20, amplitude = 5, period_s = 60;
};

struct Options {
  std::string device, pty_link, summary_path, events_path;
  uint32_t baud = 115200;        // pacing: baud / 10 bytes per second (0 = as fast as possible)
  double rate = 10;              // readings per second (all sensors together); 0 = as fast as the link takes
  int sensor_count = 4;
  std::vector<SensorSpec> sensors;
  double noise = 0.05;
  bool counter_values = false;   // value of the i-th reading generated (across boots) = i
  uint64_t count = 0;            // stop generating after this many (0 = never)
  bool exit_when_acked = false;  // with --count: exit once everything generated was acknowledged (or lost)
  double duration_s = 0;
  uint64_t seed = 1;
  uint16_t ring = 1024;
  uint32_t retransmit_ms = 1000;
  bool stamp_wall = false;
  bool retained = true;
  double bitflip = 0, drop_byte = 0, garbage = 0, truncate = 0;
  uint64_t reboot_every = 0;     // readings between reboots
  bool reboot_hard = false;      // lose what is unacknowledged (default: drain first, like a planned reset)
  double stall_every_s = 0, stall_for_s = 0;
  double unplug_every_s = 0, unplug_for_s = 0;
  std::string fw_id = "mcu-sim", fw_version = "1.0.0";
};

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr, "mcu-sim: %s\n", why);
  fprintf(stderr,
          "usage: mcu-sim (--pty LINK | --device PATH) [options]\n"
          "  --baud N            pace output to N/10 bytes/s (default 115200; 0 = unpaced)\n"
          "  --rate R            readings per second in total (default 10; 0 = as fast as the link drains)\n"
          "  --sensors N         generated sensor table size (default 4)\n"
          "  --sensor SPEC       name:unit:num/den[:int|float|bool] (repeatable; replaces --sensors)\n"
          "  --noise SD          Gaussian noise added to generated values (default 0.05)\n"
          "  --counter-values    the i-th reading generated has value i (exactly-once checks)\n"
          "  --count N           generate N readings, then only serve retransmissions\n"
          "  --exit-when-acked   with --count: exit 0 once all were acknowledged\n"
          "  --duration S        exit after S seconds\n"
          "  --seed N --ring N --retransmit-ms N --stamp-wall --no-retained --fw-id S --fw-version S\n"
          "  faults: --bitflip P --drop-byte P --garbage P --truncate P   (per frame probabilities)\n"
          "          --reboot-every N [--reboot-hard]   --stall-every S --stall-for S\n"
          "          --unplug-every S --unplug-for S   (pty only: the device disappears)\n"
          "  --summary FILE      JSON summary at exit; --events FILE  one JSON line per event\n");
  exit(64);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto num = [&]() { return std::strtod(val().c_str(), nullptr); };
    if (a == "--device") o.device = val();
    else if (a == "--pty") o.pty_link = val();
    else if (a == "--baud") o.baud = uint32_t(num());
    else if (a == "--rate") o.rate = num();
    else if (a == "--sensors") o.sensor_count = int(num());
    else if (a == "--sensor") {
      SensorSpec s;
      std::string spec = val();
      std::vector<std::string> parts;
      size_t pos = 0;
      while (true) {
        size_t c = spec.find(':', pos);
        parts.push_back(spec.substr(pos, c - pos));
        if (c == std::string::npos) break;
        pos = c + 1;
      }
      if (parts.size() < 3) Usage("--sensor wants name:unit:num/den[:kind]");
      s.name = parts[0];
      s.unit = parts[1];
      if (sscanf(parts[2].c_str(), "%d/%d", &s.num, &s.den) != 2) Usage("--sensor scale must be num/den");
      if (parts.size() > 3) s.kind = parts[3] == "float" ? EPFW_KIND_FLOAT32 : parts[3] == "bool" ? EPFW_KIND_BOOL : EPFW_KIND_INT32;
      o.sensors.push_back(s);
    } else if (a == "--noise") o.noise = num();
    else if (a == "--counter-values") o.counter_values = true;
    else if (a == "--count") o.count = uint64_t(num());
    else if (a == "--exit-when-acked") o.exit_when_acked = true;
    else if (a == "--duration") o.duration_s = num();
    else if (a == "--seed") o.seed = uint64_t(num());
    else if (a == "--ring") o.ring = uint16_t(num());
    else if (a == "--retransmit-ms") o.retransmit_ms = uint32_t(num());
    else if (a == "--stamp-wall") o.stamp_wall = true;
    else if (a == "--no-retained") o.retained = false;
    else if (a == "--fw-id") o.fw_id = val();
    else if (a == "--fw-version") o.fw_version = val();
    else if (a == "--bitflip") o.bitflip = num();
    else if (a == "--drop-byte") o.drop_byte = num();
    else if (a == "--garbage") o.garbage = num();
    else if (a == "--truncate") o.truncate = num();
    else if (a == "--reboot-every") o.reboot_every = uint64_t(num());
    else if (a == "--reboot-hard") o.reboot_hard = true;
    else if (a == "--stall-every") o.stall_every_s = num();
    else if (a == "--stall-for") o.stall_for_s = num();
    else if (a == "--unplug-every") o.unplug_every_s = num();
    else if (a == "--unplug-for") o.unplug_for_s = num();
    else if (a == "--summary") o.summary_path = val();
    else if (a == "--events") o.events_path = val();
    else if (a == "--help" || a == "-h") Usage("help");
    else Usage(("unknown option " + a).c_str());
  }
  if (o.device.empty() == o.pty_link.empty()) Usage("give exactly one of --pty and --device");
  if (!o.unplug_every_s && o.unplug_for_s) Usage("--unplug-for needs --unplug-every");
  if (o.unplug_every_s && o.pty_link.empty()) Usage("--unplug-every needs --pty");
  if (o.ring == 0) Usage("--ring must be > 0");
  if (o.sensors.empty()) {
    static const SensorSpec kKinds[] = {{"temperature", "Cel", 1, 100, EPFW_KIND_INT32, 21.5, 3, 900},
                                        {"humidity", "%RH", 1, 10, EPFW_KIND_INT32, 45, 8, 1800},
                                        {"pressure", "hPa", 1, 10, EPFW_KIND_INT32, 1013.2, 2, 3600},
                                        {"supply", "V", 1, 1000, EPFW_KIND_INT32, 12.1, 0.2, 300}};
    for (int i = 0; i < o.sensor_count; ++i) {
      SensorSpec s = kKinds[i % 4];
      s.name = s.name + "-" + std::to_string(i / 4);
      o.sensors.push_back(s);
    }
  }
  if (o.sensors.empty() || o.sensors.size() > 255) Usage("1 to 255 sensors");
  return o;
}

struct Stats {
  uint64_t generated = 0, boots = 0, lost_in_reset = 0, frames = 0, bytes = 0;
  uint64_t bitflips = 0, dropped_bytes = 0, garbage = 0, truncated = 0;
  uint64_t stalls = 0, unplugs = 0, hello_requests = 0;
  uint64_t corrupted() const { return bitflips + dropped_bytes + garbage + truncated; }
};

class Sim {
 public:
  explicit Sim(Options o) : opt_(std::move(o)), rng_(opt_.seed) {
    ring_.resize(opt_.ring);
    for (const SensorSpec& s : opt_.sensors) table_.push_back({s.name.c_str(), s.unit.c_str(), s.num, s.den, s.kind});
    if (!opt_.events_path.empty()) events_ = fopen(opt_.events_path.c_str(), "a");
    start_us_ = run_start_us_ = NowUs();
  }

  int Run() {
    if (!OpenLink()) return 1;
    Boot();
    next_reading_us_ = NowUs();
    int64_t next_stall = opt_.stall_every_s > 0 ? NowUs() + int64_t(opt_.stall_every_s * 1e6) : INT64_MAX;
    int64_t next_unplug = opt_.unplug_every_s > 0 ? NowUs() + int64_t(opt_.unplug_every_s * 1e6) : INT64_MAX;
    int64_t stall_until = 0;
    double credit = 0;  // bytes the pacing allows now
    int64_t last_pace_us = NowUs();
    while (!g_stop) {
      const int64_t now_us = NowUs();
      if (opt_.duration_s > 0 && now_us - run_start_us_ >= int64_t(opt_.duration_s * 1e6)) break;
      HandleSignals();
      // Receive.
      pollfd p{fd_, short(POLLIN | (tx_.empty() ? 0 : POLLOUT)), 0};
      const bool want_more = !tx_.empty() && (opt_.baud == 0 || credit >= 1);
      poll(&p, 1, want_more ? 0 : 1);
      if (p.revents & POLLIN) {
        uint8_t buf[512];
        ssize_t n = read(fd_, buf, sizeof buf);
        if (n > 0) {
          const uint8_t hello_before = fw_.hello;
          epfw_rx(&fw_, buf, size_t(n), Ms());
          if (fw_.hello == 1 && hello_before != 1) {
            stats_.hello_requests++;
            Event("hello_request");
          }
        }
      }
      CheckQuiesced();
      // Generate.
      if (draining_) next_reading_us_ = now_us;  // a draining MCU does not sample
      if (!draining_ && (opt_.count == 0 || stats_.generated < opt_.count)) {
        if (opt_.rate > 0) {
          const int64_t period = int64_t(1e6 / opt_.rate);
          int burst = 0;
          while (next_reading_us_ <= now_us && burst++ < 1000 && (opt_.count == 0 || stats_.generated < opt_.count)) {
            if (!Generate(next_reading_us_)) break;  // stamped when it was due, not when the loop got to it
            next_reading_us_ += period;
          }
          if (next_reading_us_ < now_us - 1'000'000) next_reading_us_ = now_us;  // do not catch up a long pause
        } else {
          while (epfw_pending(&fw_) < uint32_t(opt_.ring) / 2 && (opt_.count == 0 || stats_.generated < opt_.count))
            if (!Generate(now_us)) break;
        }
      }
      // Reboots.
      if (opt_.reboot_every && readings_this_boot_ >= opt_.reboot_every && !draining_) {
        if (opt_.reboot_hard) Reboot();
        else draining_ = true, drain_deadline_us_ = now_us + 10'000'000;
      }
      if (draining_ && (epfw_pending(&fw_) == 0 || now_us >= drain_deadline_us_)) {
        draining_ = false;
        Reboot();
      }
      // Link faults.
      if (now_us >= next_stall) {
        stall_until = now_us + int64_t(opt_.stall_for_s * 1e6);
        next_stall = now_us + int64_t(opt_.stall_every_s * 1e6);
        stats_.stalls++;
        Event("stall");
      }
      if (now_us >= next_unplug) {
        Unplug();
        next_unplug = NowUs() + int64_t(opt_.unplug_every_s * 1e6);
        last_pace_us = NowUs();
        continue;
      }
      // Transmit.
      const bool stalled = now_us < stall_until;
      if (opt_.baud) {
        credit = std::min(credit + double(now_us - last_pace_us) * opt_.baud / 10 / 1e6, 4096.0);
        last_pace_us = now_us;
      }
      // Queue frames for what the line can carry before the next turn of the loop (a UART
      // driver with a TX FIFO/DMA does the same), at least one frame.
      while (!stalled && (tx_.empty() || (opt_.baud && double(tx_.size()) < credit))) {
        uint8_t frame[EPFW_MAX_WIRE_FRAME];
        size_t n = epfw_poll(&fw_, Ms(), frame, sizeof frame);
        if (!n) break;
        Damage(frame, n);
      }
      if (!tx_.empty() && !stalled) Flush(opt_.baud ? size_t(credit) : tx_.size(), &credit);
      if (opt_.exit_when_acked && opt_.count && stats_.generated >= opt_.count && epfw_pending(&fw_) == 0 &&
          tx_.empty() && !draining_) {
        Event("all_acked");
        break;
      }
    }
    WriteSummary();
    return 0;
  }

 private:
  uint32_t Ms() const { return uint32_t((NowUs() - start_us_) / 1000) + ms_offset_; }

  bool OpenLink() {
    if (!opt_.pty_link.empty()) {
      int slave;
      if (openpty(&fd_, &slave, nullptr, nullptr, nullptr) != 0) {
        perror("mcu-sim: openpty");
        return false;
      }
      termios t;
      tcgetattr(slave, &t);
      cfmakeraw(&t);
      tcsetattr(slave, TCSANOW, &t);
      // The slave stays open here, as a UART does: bytes sent while nobody reads wait in the
      // tty queue instead of the line hanging up.
      slave_ = slave;
      unlink(opt_.pty_link.c_str());
      if (symlink(ttyname(slave), opt_.pty_link.c_str()) != 0) {
        perror("mcu-sim: symlink");
        return false;
      }
    } else {
      fd_ = open(opt_.device.c_str(), O_RDWR | O_NOCTTY);
      if (fd_ < 0) {
        fprintf(stderr, "mcu-sim: %s: %s\n", opt_.device.c_str(), strerror(errno));
        return false;
      }
      termios t;
      tcgetattr(fd_, &t);
      cfmakeraw(&t);
      tcsetattr(fd_, TCSANOW, &t);
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
    return true;
  }

  void Unplug() {
    stats_.unplugs++;
    Event("unplug");
    unlink(opt_.pty_link.c_str());
    close(fd_);
    close(slave_);
    tx_.clear();  // a frame cut by the unplug never arrives; the MCU resends it
    const int64_t until = NowUs() + int64_t(opt_.unplug_for_s * 1e6);
    while (NowUs() < until && !g_stop) {
      usleep(10'000);
      // The MCU keeps sampling while unplugged.
      if (opt_.rate > 0 && (opt_.count == 0 || stats_.generated < opt_.count)) {
        static double carry = 0;
        carry += opt_.rate * 0.01;
        while (carry >= 1 && Generate(NowUs())) carry -= 1;
      }
    }
    if (!OpenLink()) exit(1);
    epfw_link_up(&fw_, Ms());  // USB CDC sees DTR again: announce and resend
    Event("replug");
  }

  void Boot() {
    std::uniform_int_distribution<uint32_t> id(1, 0xFFFFFFFFu);
    cfg_ = {};
    cfg_.fw_id = opt_.fw_id.c_str();
    cfg_.fw_version = opt_.fw_version.c_str();
    cfg_.sensors = table_.data();
    cfg_.sensor_count = uint8_t(table_.size());
    cfg_.flags = opt_.stamp_wall ? EPFW_STAMP_WALL : 0;
    cfg_.ring_capacity = opt_.ring;
    cfg_.ring = ring_.data();
    cfg_.boot_id = id(rng_);
    cfg_.retransmit_ms = opt_.retransmit_ms;
    cfg_.retained = opt_.retained ? &retained_ : nullptr;
    // A rebooted MCU's uptime starts again near 0.
    ms_offset_ = 0;
    start_us_ = NowUs() - 5'000;
    epfw_init(&fw_, &cfg_, Ms());
    stats_.boots++;
    next_reading_us_ = std::max(next_reading_us_, NowUs());  // nothing is due from before the boot
    readings_this_boot_ = 0;
    last_t_.assign(table_.size(), 0);
    pause_seq_ = 0;
    if (faults_paused_ && pause_pending_) pause_seq_ = fw_.next_seq;
    char buf[64];
    snprintf(buf, sizeof buf, "\"boot_id\":%u", cfg_.boot_id);
    Event("boot", buf);
  }

  void Reboot() {
    stats_.lost_in_reset += epfw_pending(&fw_);
    tx_.clear();  // a reset cuts the frame being sent
    Boot();
  }

  // One reading of the next sensor in turn, taken at `at_us` (monotonic). Timestamps have
  // millisecond resolution, so a sensor never gets two readings in the same millisecond (the
  // agent would take the second for a conflicting duplicate).
  // Returns false (generating nothing) when that sensor already has a reading this millisecond.
  bool Generate(int64_t at_us) {
    const uint8_t s = uint8_t(stats_.generated % table_.size());
    const uint32_t now = Ms();
    uint32_t t_ms = uint32_t((std::max(at_us, start_us_) - start_us_) / 1000) + ms_offset_;
    if (last_t_[s] != 0 && int32_t(t_ms - last_t_[s]) <= 0) t_ms = last_t_[s] + 1;
    if (int32_t(t_ms - now) > 0) return false;
    last_t_[s] = t_ms;
    const SensorSpec& spec = opt_.sensors[s];
    uint32_t raw;
    if (opt_.counter_values) {
      raw = uint32_t(stats_.generated + 1);
    } else {
      const double t = double(NowUs()) / 1e6;
      double v = spec.base + spec.amplitude * std::sin(2 * M_PI * t / spec.period_s) + opt_.noise * gauss_(rng_);
      if (spec.kind == EPFW_KIND_FLOAT32) {
        float f = float(v * spec.den / spec.num);
        memcpy(&raw, &f, sizeof raw);
      } else if (spec.kind == EPFW_KIND_BOOL) {
        raw = v > spec.base ? 1 : 0;
      } else {
        raw = uint32_t(int32_t(std::lround(v * spec.den / spec.num)));
      }
    }
    epfw_add_at(&fw_, s, raw, t_ms, now);
    stats_.generated++;
    readings_this_boot_++;
    return true;
  }

  bool Chance(double p) { return p > 0 && uni_(rng_) < p; }

  // Applies at most one fault to a frame and queues the bytes to send. Faults never touch the
  // delimiter and never create a 0x00, so each damaged frame is exactly one bad segment.
  void Damage(uint8_t* f, size_t n) {
    stats_.frames++;
    std::vector<uint8_t> out(f, f + n);
    if (!faults_paused_ && stats_.hello_requests > 0) {  // only while an agent listens
      std::uniform_int_distribution<size_t> pos(0, n - 2);
      if (Chance(opt_.garbage)) {
        std::uniform_int_distribution<int> len(1, 300), byte(1, 255);
        std::vector<uint8_t> g(size_t(len(rng_)));
        for (auto& b : g) b = uint8_t(byte(rng_));
        g.push_back(0);
        out.insert(out.begin(), g.begin(), g.end());
        stats_.garbage++;
      } else if (Chance(opt_.bitflip)) {
        const size_t i = pos(rng_);
        int bit = std::uniform_int_distribution<int>(0, 7)(rng_);
        if ((out[i] ^ (1u << bit)) == 0) bit = (bit + 1) % 8;
        out[i] = uint8_t(out[i] ^ (1u << bit));
        stats_.bitflips++;
      } else if (Chance(opt_.drop_byte)) {
        out.erase(out.begin() + long(pos(rng_)));
        stats_.dropped_bytes++;
      } else if (Chance(opt_.truncate)) {
        const size_t keep = std::uniform_int_distribution<size_t>(1, n - 2)(rng_);
        out.resize(keep);
        out.push_back(0);
        stats_.truncated++;
      }
    }
    tx_.insert(tx_.end(), out.begin(), out.end());
  }

  void Flush(size_t max, double* credit) {
    while (max > 0 && !tx_.empty()) {
      uint8_t buf[4096];
      size_t n = 0;
      while (n < sizeof buf && n < max && n < tx_.size()) buf[n] = tx_[n], n++;
      ssize_t w = write(fd_, buf, n);
      if (w <= 0) return;  // EAGAIN: the tty queue is full (nobody reads); try again later
      tx_.erase(tx_.begin(), tx_.begin() + w);
      stats_.bytes += size_t(w);
      max -= size_t(w);
      *credit -= double(w);
    }
  }

  void HandleSignals() {
    if (g_pause) {
      g_pause = 0;
      faults_paused_ = true;
      pause_pending_ = true;
      pause_seq_ = fw_.next_seq;
      pause_boot_ = cfg_.boot_id;
      Event("faults_paused");
    }
    if (g_resume) {
      g_resume = 0;
      faults_paused_ = false;
      pause_pending_ = false;
      Event("faults_resumed");
    }
  }

  // "quiesced": a reading generated after the pause was acknowledged, so the agent has read and
  // counted every byte sent before it.
  void CheckQuiesced() {
    if (!pause_pending_) return;
    if (pause_boot_ != cfg_.boot_id) {
      pause_boot_ = cfg_.boot_id;
      pause_seq_ = fw_.next_seq;
    }
    if (int32_t(fw_.tail_seq - pause_seq_) > 0) {
      pause_pending_ = false;
      Event("quiesced");
    }
  }

  void Event(const char* name, const char* extra = nullptr) {
    if (!events_) return;
    fprintf(events_, "{\"event\":\"%s\",\"t\":%.3f,\"generated\":%llu,\"corrupted\":%llu%s%s}\n", name,
            double(NowUs()) / 1e6, (unsigned long long)stats_.generated, (unsigned long long)stats_.corrupted(),
            extra ? "," : "", extra ? extra : "");
    fflush(events_);
  }

  void WriteSummary() {
    if (opt_.summary_path.empty()) return;
    FILE* f = fopen(opt_.summary_path.c_str(), "w");
    if (!f) return;
    const epfw_stats_t& s = fw_.stats;
    fprintf(f,
            "{\"generated\":%llu,\"pending\":%u,\"boots\":%llu,\"lost_in_reset\":%llu,\"frames\":%llu,"
            "\"bytes\":%llu,\"corrupted\":%llu,\"bitflips\":%llu,\"dropped_bytes\":%llu,\"garbage\":%llu,"
            "\"truncated\":%llu,\"stalls\":%llu,\"unplugs\":%llu,\"hello_requests\":%llu,"
            "\"mcu\":{\"frames_sent\":%u,\"readings_sent\":%u,\"retransmits\":%u,\"dropped\":%u,\"acks\":%u,"
            "\"time_syncs\":%u,\"rx_frames\":%u,\"rx_errors\":%u}}\n",
            (unsigned long long)stats_.generated, epfw_pending(&fw_), (unsigned long long)stats_.boots,
            (unsigned long long)stats_.lost_in_reset, (unsigned long long)stats_.frames,
            (unsigned long long)stats_.bytes, (unsigned long long)stats_.corrupted(),
            (unsigned long long)stats_.bitflips, (unsigned long long)stats_.dropped_bytes,
            (unsigned long long)stats_.garbage, (unsigned long long)stats_.truncated,
            (unsigned long long)stats_.stalls, (unsigned long long)stats_.unplugs,
            (unsigned long long)stats_.hello_requests, s.frames_sent, s.readings_sent, s.retransmits, s.dropped,
            s.acks, s.time_syncs, s.rx_frames, s.rx_errors);
    fclose(f);
  }

  Options opt_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> gauss_{0, 1};
  std::uniform_real_distribution<double> uni_{0, 1};
  std::vector<epfw_sensor_t> table_;
  std::vector<epfw_slot_t> ring_;
  std::vector<uint32_t> last_t_;  // per sensor: time of its last reading (ms)
  epfw_config_t cfg_{};
  epfw_retained_t retained_{};  // survives Reboot(), like .noinit RAM
  epfw_t fw_{};
  int fd_ = -1, slave_ = -1;
  std::deque<uint8_t> tx_;
  Stats stats_;
  FILE* events_ = nullptr;
  int64_t start_us_ = 0;      // this boot's uptime zero
  int64_t run_start_us_ = 0;
  uint32_t ms_offset_ = 0;
  uint64_t readings_this_boot_ = 0;
  int64_t next_reading_us_ = 0;
  bool draining_ = false;
  int64_t drain_deadline_us_ = 0;
  bool faults_paused_ = false, pause_pending_ = false;
  uint32_t pause_seq_ = 0, pause_boot_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return Sim(std::move(o)).Run();
}
