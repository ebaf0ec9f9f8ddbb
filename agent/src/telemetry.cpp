#include "telemetry.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe::agent {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr const char* kLog = "metrics";
constexpr size_t kMaxRequestBytes = 8192;
constexpr auto kRequestTimeout = std::chrono::seconds(5);
// A scrape reuses a snapshot younger than this instead of querying the buffer again.
constexpr int64_t kScrapeReuseUs = 1'000'000;

std::string Ago(int64_t now_us, int64_t then_us) {
  if (then_us <= 0) return "never";
  int64_t s = std::max<int64_t>(0, (now_us - then_us) / 1'000'000);
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

// One HTTP exchange: read the request head, answer, close. Owned by its own shared_ptr.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::function<std::string()> body)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), body_(std::move(body)), buf_(kMaxRequestBytes) {}

  void Start() {
    auto self = shared_from_this();
    timer_.expires_after(kRequestTimeout);
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->Close();
    });
    asio::async_read_until(socket_, buf_, "\r\n\r\n", [self](const boost::system::error_code& ec, size_t) {
      if (ec) {
        if (ec == asio::error::not_found) self->Respond(431, "Request Header Fields Too Large", "request too large\n");
        else self->Close();
        return;
      }
      std::istream in(&self->buf_);
      std::string method, target;
      in >> method >> target;
      if (method != "GET" && method != "HEAD") {
        self->Respond(405, "Method Not Allowed", "only GET is supported\n", "Allow: GET, HEAD\r\n");
      } else if (target == "/metrics" || target.rfind("/metrics?", 0) == 0) {
        self->Respond(200, "OK", self->body_(), "", "text/plain; version=0.0.4; charset=utf-8", method == "HEAD");
      } else if (target == "/") {
        self->Respond(200, "OK", "edgepipe agent: metrics at /metrics\n");
      } else {
        self->Respond(404, "Not Found", "not found: try /metrics\n");
      }
    });
  }

 private:
  void Respond(int code, const char* reason, const std::string& body, const std::string& extra_headers = "",
               const char* type = "text/plain; charset=utf-8", bool head_only = false) {
    response_ = StrFormat("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                          code, reason, type, body.size(), extra_headers.c_str());
    if (!head_only) response_ += body;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(response_), [self](const boost::system::error_code&, size_t) { self->Close(); });
  }
  void Close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::function<std::string()> body_;
  asio::streambuf buf_;
  std::string response_;
};

}  // namespace

std::string ServiceStatusText(const AgentSnapshot& s) {
  const buffer::Stats& b = s.summary.buffer;
  const uploader::UploaderStats& u = s.summary.uploads;
  size_t up = 0;
  for (const auto& h : s.summary.sources) up += SourceStateIsUp(h.state) ? 1 : 0;
  std::string text = StrFormat("buffer %llu pending", static_cast<unsigned long long>(b.pending_readings + b.claimed_readings));
  if (b.oldest_pending_ts_us) text += " (oldest " + Ago(s.time_us, b.oldest_pending_ts_us) + ")";
  text += StrFormat(", %llu in memory; ", static_cast<unsigned long long>(b.memory_readings));
  text += "last upload " + Ago(s.time_us, std::max(u.last_success_us, b.last_ack_time_us));
  if (u.consecutive_failures) text += StrFormat(" (%llu failing)", static_cast<unsigned long long>(u.consecutive_failures));
  text += StrFormat("; sources %zu/%zu up", up, s.summary.sources.size());
  if (!s.writer_healthy) text += "; BUFFER WRITER STALLED";
  if (!s.last_reload_ok) text += "; last reload FAILED (running on the previous config)";
  return text;
}

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return UnavailableError("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return UnavailableError("cannot write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  // No fsync: the file is a snapshot rewritten every few seconds (usually on tmpfs); after a
  // crash a stale or missing snapshot is harmless, while an fsync per refresh would wear flash.
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return UnavailableError("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  return Status::Ok();
}

struct Telemetry::Impl {
  SnapshotFn take;
  ServiceNotifier& notifier;
  TelemetryOptions opt;  // owned by the telemetry thread after Start()
  asio::io_context io;
  asio::steady_timer timer{io};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::string bound_listen;
  std::atomic<int> port{0};
  std::thread thread;
  bool started = false;
  bool stopped = false;
  RateLimitedLog bind_log{600'000'000};
  RateLimitedLog file_log{600'000'000};

  mutable std::mutex mu;  // guards latest
  AgentSnapshot latest;

  Impl(SnapshotFn t, ServiceNotifier& n, TelemetryOptions o) : take(std::move(t)), notifier(n), opt(std::move(o)) {}

  static int64_t MonoUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  Status Bind(const std::string& listen, std::unique_ptr<tcp::acceptor>* out) {
    std::string host;
    int p = 0;
    std::string err = ParseLoopbackListen(listen, &host, &p);
    if (!err.empty()) return InvalidArgumentError("agent.metrics_listen: " + err);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return InvalidArgumentError("agent.metrics_listen: " + ec.message());
    auto acc = std::make_unique<tcp::acceptor>(io);
    tcp::endpoint ep(addr, static_cast<unsigned short>(p));
    if (!acc->open(ep.protocol(), ec) && !acc->set_option(tcp::acceptor::reuse_address(true), ec) &&
        !acc->bind(ep, ec) && !acc->listen(asio::socket_base::max_listen_connections, ec)) {
      *out = std::move(acc);
      return Status::Ok();
    }
    return UnavailableError("cannot listen on " + listen + " for metrics: " + ec.message());
  }

  void Accept() {
    if (!acceptor) return;
    acceptor->async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor) return;
      if (!ec) std::make_shared<Connection>(std::move(socket), [this] { return Scrape(); })->Start();
      Accept();
    });
  }

  Status Listen(const std::string& listen) {
    if (listen == bound_listen && acceptor) return Status::Ok();
    if (listen.empty()) {
      CloseAcceptor();
      return Status::Ok();
    }
    std::unique_ptr<tcp::acceptor> acc;
    Status s = Bind(listen, &acc);
    if (!s.ok()) return s;
    CloseAcceptor();
    acceptor = std::move(acc);
    bound_listen = listen;
    port = acceptor->local_endpoint().port();
    EP_LOG_NOTICE(kLog, "serving Prometheus metrics on http://%s/metrics", listen.c_str());
    Accept();
    return Status::Ok();
  }

  void CloseAcceptor() {
    if (!acceptor) return;
    boost::system::error_code ignored;
    acceptor->close(ignored);
    acceptor.reset();
    bound_listen.clear();
    port = 0;
  }

  std::string Scrape() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (latest_mono_ && MonoUs() - latest_mono_ < kScrapeReuseUs) return RenderPrometheus(latest);
    }
    return RenderPrometheus(Refresh(true, false));
  }

  // Takes a snapshot; `publish` also sends STATUS= and writes the status file.
  AgentSnapshot Refresh(bool running, bool publish) {
    AgentSnapshot s = take();
    s.running = running;
    {
      std::lock_guard<std::mutex> lock(mu);
      latest = s;
      latest_mono_ = MonoUs();
    }
    if (publish) Publish(s);
    return s;
  }

  void Publish(const AgentSnapshot& s) {
    if (s.running) notifier.Notify("STATUS=" + ServiceStatusText(s));
    if (!opt.status_file.empty()) {
      Status w = WriteFileAtomically(opt.status_file, RenderPrometheus(s));
      uint64_t suppressed = 0;
      if (!w.ok() && file_log.ShouldLog(MonoUs(), &suppressed))
        EP_LOG_WARN(kLog, "status file: %s (`edgepipe status` shows only the buffer without it)", w.ToString().c_str());
    }
  }

  void Tick() {
    if (!opt.metrics_listen.empty() && !acceptor) {
      Status s = Listen(opt.metrics_listen);
      uint64_t suppressed = 0;
      if (!s.ok() && bind_log.ShouldLog(MonoUs(), &suppressed))
        EP_LOG_ERROR(kLog, "%s; retrying every %llds", s.ToString().c_str(),
                     static_cast<long long>(opt.interval_us / 1'000'000));
    }
    Refresh(true, true);
    timer.expires_after(std::chrono::microseconds(opt.interval_us));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Tick();
    });
  }

  int64_t latest_mono_ = 0;  // guarded by mu
};

Telemetry::Telemetry(SnapshotFn take, ServiceNotifier& notifier, TelemetryOptions options)
    : impl_(std::make_unique<Impl>(std::move(take), notifier, std::move(options))) {}

Telemetry::~Telemetry() { Stop(); }

Status Telemetry::Start() {
  Impl& m = *impl_;
  Status bound = m.opt.metrics_listen.empty() ? Status::Ok() : m.Listen(m.opt.metrics_listen);
  if (!bound.ok()) m.bind_log.ShouldLog(Impl::MonoUs(), nullptr);  // the caller logs this one
  m.started = true;
  asio::post(m.io, [&m] { m.Tick(); });
  m.thread = std::thread([&m] { m.io.run(); });
  return bound;
}

void Telemetry::Reconfigure(const TelemetryOptions& options) {
  Impl& m = *impl_;
  if (!m.started || m.stopped) {
    m.opt = options;
    return;
  }
  asio::post(m.io, [&m, options] {
    Status s = m.Listen(options.metrics_listen);
    TelemetryOptions next = options;
    if (!s.ok()) {
      EP_LOG_ERROR(kLog, "reload: %s; %s", s.ToString().c_str(),
                   m.bound_listen.empty() ? "no endpoint" : ("still serving on " + m.bound_listen).c_str());
      next.metrics_listen = m.bound_listen;  // keep the old endpoint (or none)
    }
    const bool interval_changed = next.interval_us != m.opt.interval_us;
    m.opt = next;
    if (interval_changed) {
      m.timer.cancel();
      m.Tick();
    }
  });
}

void Telemetry::Stop() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.stopped = true;
  asio::post(m.io, [&m] {
    m.timer.cancel();
    m.CloseAcceptor();
    m.Refresh(false, true);
    m.io.stop();
  });
  if (m.thread.joinable()) m.thread.join();
}

int Telemetry::bound_port() const { return impl_->port.load(); }

AgentSnapshot Telemetry::Latest() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->latest;
}

}  // namespace edgepipe::agent
