#include "edgepipe/firmware_bridge/serial_source.h"

#include <sys/ioctl.h>
#include <termios.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/serial_port.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <random>
#include <thread>

#include "edgepipe/core/log.h"
#include "edgepipe/firmware_bridge/serial_link.h"

namespace edgepipe::fb {
namespace {

namespace asio = boost::asio;
constexpr const char* kLog = "serial";
constexpr int64_t kTickUs = 250'000;

// What an operator should do about an open/read error.
std::string Hint(const boost::system::error_code& ec) {
  switch (ec.value()) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return " (device not present: unplugged, or a different name; prefer /dev/serial/by-id/...)";
    case EACCES:
    case EPERM:
      return " (permission denied: add the service user to the 'dialout' group)";
    case EBUSY:
      return " (busy: another program has it open, e.g. a terminal or ModemManager)";
    case EIO:
      return " (I/O error: the device went away)";
    default:
      return "";
  }
}

}  // namespace

const std::vector<uint32_t>& StandardBaudRates() {
  static const std::vector<uint32_t> rates = {50,     75,     110,    134,    150,    200,     300,     600,
                                              1200,   1800,   2400,   4800,   9600,   19200,   38400,   57600,
                                              115200, 230400, 460800, 500000, 576000, 921600,  1000000, 1152000,
                                              1500000, 2000000, 2500000, 3000000, 3500000, 4000000};
  return rates;
}

struct SerialSource::Impl {
  Impl(SerialOptions o, ReadingSink& sink, Clock& c)
      : opt(std::move(o)),
        clock(c),
        session(MakeLinkOptions(opt), sink, c, [this](std::vector<uint8_t> f) { Write(std::move(f)); }),
        rng(std::random_device{}()) {
    backoff_us = opt.reconnect_min_us;
  }

  static LinkOptions MakeLinkOptions(const SerialOptions& o) {
    LinkOptions l;
    l.source = o.name;
    l.device = o.device;
    l.baud = o.baud;
    l.sensor_prefix = o.sensor_prefix;
    l.time_sync_interval_us = o.time_sync_interval_us;
    l.hello_retry_us = o.hello_retry_us;
    l.idle_timeout_us = o.idle_timeout_us;
    l.quarantine_corrupt_frames = o.quarantine_corrupt_frames;
    return l;
  }

  // ---- I/O thread ----

  void TryOpen() {
    if (stopping) return;
    boost::system::error_code ec;
    port.open(opt.device, ec);
    std::string what = "open";
    if (!ec) ec = Configure(&what);
    if (ec) {
      ++open_failures;
      boost::system::error_code ignored;
      port.close(ignored);
      SetDisconnected(what + ": " + ec.message() + Hint(ec));
      uint64_t suppressed = 0;
      if (open_log.ShouldLog(clock.MonotonicNowUs(), &suppressed))
        EP_LOG_WARN(kLog, "%s: cannot %s %s: %s%s; retrying with backoff up to every %.0f s (logged once a minute)",
                    opt.name.c_str(), what.c_str(), opt.device.c_str(), ec.message().c_str(), Hint(ec).c_str(),
                    opt.reconnect_max_us / 1e6);
      return ScheduleReconnect();
    }
    if (open_failures || ever_connected)
      EP_LOG_NOTICE(kLog, "%s: %s is back (after %llu failed attempt%s)", opt.name.c_str(), opt.device.c_str(),
                    static_cast<unsigned long long>(open_failures), open_failures == 1 ? "" : "s");
    else
      EP_LOG_INFO(kLog, "%s: opened %s at %u baud", opt.name.c_str(), opt.device.c_str(), opt.baud);
    open_failures = 0;
    ever_connected = true;
    connected = true;
    frames_at_open = session.Counters()["frames"];
    session.OnOpen();
    StartRead();
    if (!txq.empty() && !writing) WriteNext();
  }

  boost::system::error_code Configure(std::string* what) {
    boost::system::error_code ec;
    using B = asio::serial_port_base;
    auto step = [&](const char* name, auto option) {
      if (ec) return;
      port.set_option(option, ec);
      if (ec) *what = std::string("set ") + name + " on";
    };
    step("baud rate", B::baud_rate(opt.baud));
    step("character size", B::character_size(8));
    step("parity", B::parity(opt.parity == Parity::kOdd    ? B::parity::odd
                             : opt.parity == Parity::kEven ? B::parity::even
                                                           : B::parity::none));
    step("stop bits", B::stop_bits(opt.stop_bits == StopBits::kTwo            ? B::stop_bits::two
                                   : opt.stop_bits == StopBits::kOnePointFive ? B::stop_bits::onepointfive
                                                                              : B::stop_bits::one));
    step("flow control", B::flow_control(opt.flow_control == FlowControl::kHardware   ? B::flow_control::hardware
                                         : opt.flow_control == FlowControl::kSoftware ? B::flow_control::software
                                                                                      : B::flow_control::none));
    if (ec) return ec;
    const int fd = port.native_handle();
    if (opt.exclusive && ioctl(fd, TIOCEXCL) != 0) {
      *what = "lock (TIOCEXCL)";
      return {errno, boost::system::system_category()};
    }
    tcflush(fd, TCIFLUSH);  // bytes queued before we opened are stale; the MCU resends what matters
    return ec;
  }

  void StartRead() {
    port.async_read_some(asio::buffer(rx), [this](const boost::system::error_code& ec, size_t n) {
      if (ec) return OnError("read", ec);
      session.OnBytes(std::span<const uint8_t>(rx.data(), n), clock.MonotonicNowUs());
      StartRead();
    });
  }

  void OnError(const char* what, const boost::system::error_code& ec) {
    if (stopping || ec == asio::error::operation_aborted || !connected) return;
    connected = false;
    boost::system::error_code ignored;
    port.close(ignored);
    txq.clear();
    writing = false;
    session.Count("io_errors");
    const std::string why = std::string(what) + ": " + (ec == asio::error::eof ? "end of file" : ec.message());
    SetDisconnected(why);
    EP_LOG_WARN(kLog, "%s: %s %s%s; reconnecting", opt.name.c_str(), opt.device.c_str(), why.c_str(), Hint(ec).c_str());
    ScheduleReconnect();
  }

  void SetDisconnected(const std::string& why) {
    session.OnClose(why);
    std::lock_guard<std::mutex> lock(mu);
    last_error = why;
  }

  void ScheduleReconnect() {
    // Exponential backoff with +-20 % jitter, so a fleet of gateways does not retry in step.
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const int64_t delay = static_cast<int64_t>(static_cast<double>(backoff_us) * jitter(rng));
    backoff_us = std::min(backoff_us * 2, opt.reconnect_max_us);
    reconnect_timer.expires_after(std::chrono::microseconds(delay));
    reconnect_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) TryOpen();
    });
  }

  void Tick() {
    tick_timer.expires_after(std::chrono::microseconds(kTickUs));
    tick_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      if (connected) {
        session.OnTick();
        // A device that delivers valid frames is healthy: the next outage starts from the minimum.
        if (session.Counters()["frames"] > frames_at_open) backoff_us = opt.reconnect_min_us;
      }
      Tick();
    });
  }

  // Any thread.
  void Write(std::vector<uint8_t> frame) {
    asio::post(io, [this, f = std::move(frame)]() mutable {
      if (!connected || stopping) return;  // the MCU asks again (or resends) after a reconnect
      if (txq.size() >= 256) return;       // a stuck writer must not grow memory; acks are cumulative
      txq.push_back(std::move(f));
      if (!writing) WriteNext();
    });
  }

  void WriteNext() {
    if (txq.empty() || !connected) {
      writing = false;
      return;
    }
    writing = true;
    asio::async_write(port, asio::buffer(txq.front()), [this](const boost::system::error_code& ec, size_t) {
      writing = false;
      if (ec) return OnError("write", ec);
      if (!txq.empty()) txq.pop_front();
      WriteNext();
    });
  }

  SerialOptions opt;
  Clock& clock;
  LinkSession session;
  asio::io_context io;
  asio::serial_port port{io};
  asio::steady_timer reconnect_timer{io};
  asio::steady_timer tick_timer{io};
  std::array<uint8_t, 4096> rx{};
  std::deque<std::vector<uint8_t>> txq;
  bool writing = false;
  bool connected = false;
  bool ever_connected = false;
  uint64_t open_failures = 0;
  uint64_t frames_at_open = 0;
  int64_t backoff_us;
  std::mt19937 rng;
  RateLimitedLog open_log{60'000'000};
  std::atomic<bool> stopping{false};

  std::thread io_thread;
  std::thread ack_thread;
  mutable std::mutex mu;
  std::string last_error;
  bool running = false;
  uint64_t readings_at_start = 0;
  uint64_t errors_at_start = 0;
};

namespace {
uint64_t ErrorCount(const std::map<std::string, uint64_t>& c) {
  uint64_t n = 0;
  for (const char* k : {"frames_corrupt", "frames_malformed", "io_errors", "sink_errors"}) {
    auto it = c.find(k);
    if (it != c.end()) n += it->second;
  }
  return n;
}
}  // namespace

SerialSource::SerialSource(SerialOptions options, ReadingSink& sink, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), sink, clock)) {}

SerialSource::~SerialSource() { Stop(); }

const std::string& SerialSource::name() const { return impl_->opt.name; }

Status SerialSource::Start() {
  Impl& m = *impl_;
  if (m.running) return Status::Ok();
  if (m.opt.device.empty()) return InvalidArgumentError("serial source " + m.opt.name + ": no device given");
  const auto& rates = StandardBaudRates();
  if (std::find(rates.begin(), rates.end(), m.opt.baud) == rates.end())
    return InvalidArgumentError(StrFormat("serial source %s: baud rate %u is not a standard rate", m.opt.name.c_str(), m.opt.baud));
  Status s = m.session.LoadState();
  if (!s.ok()) return Status(s.code(), "serial source " + m.opt.name + ": cannot load its state: " + s.message());
  const auto c = m.session.Counters();
  m.readings_at_start = m.session.readings_stored();
  m.errors_at_start = ErrorCount(c);
  m.stopping = false;
  m.running = true;
  asio::post(m.io, [&m] {
    m.TryOpen();
    m.Tick();
  });
  m.io_thread = std::thread([&m] { m.io.run(); });
  m.ack_thread = std::thread([&m] {
    while (!m.stopping) m.session.PumpAck(200'000);
  });
  return Status::Ok();
}

void SerialSource::Stop() {
  Impl& m = *impl_;
  if (!m.running) return;
  m.stopping = true;
  asio::post(m.io, [&m] {
    boost::system::error_code ignored;
    m.reconnect_timer.cancel();
    m.tick_timer.cancel();
    m.port.close(ignored);
    m.connected = false;
    m.io.stop();
  });
  if (m.io_thread.joinable()) m.io_thread.join();
  m.session.Shutdown();
  if (m.ack_thread.joinable()) m.ack_thread.join();
  m.session.PersistCounters();
  m.session.OnClose("stopped");
  m.running = false;
}

SourceHealth SerialSource::Health() const {
  const Impl& m = *impl_;
  SourceHealth h;
  h.name = m.opt.name;
  h.type = "serial";
  h.state = m.running ? m.session.State() : "stopped";
  h.counters = m.session.Counters();
  h.readings = m.session.readings_stored() - m.readings_at_start;
  h.errors = ErrorCount(h.counters) - m.errors_at_start;
  h.last_error = m.session.last_error();
  if (h.last_error.empty()) {
    std::lock_guard<std::mutex> lock(m.mu);
    h.last_error = m.last_error;
  }
  return h;
}

}  // namespace edgepipe::fb
