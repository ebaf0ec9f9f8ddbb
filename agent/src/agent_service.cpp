// The Agent's service integration: systemd notifications and watchdog, signals, SIGTERM
// shutdown of the upload thread, SIGHUP reload, and the telemetry thread (STATUS=, status file,
// metrics endpoint). Kept apart from agent.cpp, which wires the data path.
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>


#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/metrics.h"
#include "edgepipe/core/file_util.h"
#include "edgepipe/core/log.h"
#include "reload.h"
#include "telemetry.h"

#ifndef EDGEPIPE_VERSION
#define EDGEPIPE_VERSION "0.0.0"
#endif

namespace edgepipe::agent {
namespace {

constexpr const char* kLog = "agent";
constexpr int64_t kSec = 1'000'000;
// Health checks run at least this often, even without a watchdog (stall logging, metrics).
constexpr int64_t kHealthIntervalUs = 5 * kSec;

sigset_t ServiceSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

std::string ReadText(const std::string& path) {
  Result<std::string> text = ReadWholeFile(path);
  return text.ok() ? std::move(*text) : std::string();
}

std::string DirName(const std::string& file) {
  size_t slash = file.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : file.substr(0, slash);
}

TelemetryOptions TelemetryFor(const Config& c) {
  TelemetryOptions t;
  t.interval_us = c.agent.stats_interval_us;
  t.status_file = StatusFilePath(c);
  t.metrics_listen = c.agent.metrics_listen;
  return t;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

std::string StatusFilePath(const Config& c) {
  const std::string& f = c.agent.status_file;
  if (!f.empty()) {
    if (f.front() == '/' || c.file == "<embedded>") return f;
    return DirName(c.file) + "/" + f;
  }
  return DirName(c.buffer.path) + "/edgepipe-status.prom";
}

void Agent::InitService() {
  if (hooks_.notifier) {
    notifier_ = hooks_.notifier;
  } else {
    own_notifier_ = MakeSystemdNotifier();
    notifier_ = own_notifier_.get();
  }
  start_time_us_ = clock_.SystemNowUs();
  watchdog_us_ = notifier_->WatchdogIntervalUs();
  if (config_.file != "<embedded>") config_text_started_ = config_text_applied_ = ReadText(config_.file);
}

// Signals are blocked from Start() until Run() has its handlers, in this thread and therefore in
// every thread Start() creates (they inherit the mask): a SIGTERM during start-up then waits
// for the handler instead of killing the process with readings still in memory, and Asio's
// handler always runs on the main loop.
void Agent::BlockSignals() {
  if (signals_blocked_) return;
  sigset_t set = ServiceSignals();
  if (pthread_sigmask(SIG_BLOCK, &set, &saved_sigmask_) == 0) signals_blocked_ = true;
}

void Agent::UnblockSignals() {
  sigset_t set = ServiceSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void Agent::RestoreSignals() {
  if (!signals_blocked_) return;
  pthread_sigmask(SIG_SETMASK, &saved_sigmask_, nullptr);
  signals_blocked_ = false;
}

std::unique_ptr<TimeoutExtender> Agent::ExtendStartTimeout() {
  const uint64_t bytes = FileBytes(config_.buffer.path) + FileBytes(config_.buffer.path + "-wal");
  return std::make_unique<TimeoutExtender>(
      *notifier_, StrFormat("opening buffer %s (%.1f MiB)", config_.buffer.path.c_str(), bytes / 1048576.0));
}

// ---- upload thread and SIGTERM ----

void Agent::StartUploadThread() {
  upload_thread_ = std::thread([this] {
    uploader_->Run();  // returns after Stop()
    const int64_t deadline = drain_deadline_mono_.load();
    if (deadline > clock_.MonotonicNowUs()) {
      Status d = uploader_->Drain(deadline);
      if (!d.ok())
        EP_LOG_WARN(kLog, "not everything was delivered before exit (it stays in the buffer for next time): %s",
                    d.ToString().c_str());
    }
    std::lock_guard<std::mutex> lock(upload_mu_);
    upload_done_ = true;
    upload_cv_.notify_all();
  });
}

Status Agent::WaitForUploads(int64_t deadline_mono_us) {
  drain_deadline_mono_ = deadline_mono_us;
  uploader_->Stop();
  // The wait is on a real steady clock: shutdown_timeout is a promise to systemd's TimeoutStopSec.
  const int64_t budget_us = std::max<int64_t>(0, deadline_mono_us - clock_.MonotonicNowUs());
  bool done;
  {
    std::unique_lock<std::mutex> lock(upload_mu_);
    // A little grace beyond the deadline for the drain to notice it and return.
    done = upload_cv_.wait_for(lock, std::chrono::microseconds(budget_us + 500'000), [this] { return upload_done_; });
  }
  if (done) {
    if (upload_thread_.joinable()) upload_thread_.join();
    return Status::Ok();
  }
  upload_abandoned_ = true;
  EP_LOG_WARN(kLog, "an upload was still in flight %.1f s after SIGTERM (agent.shutdown_timeout): abandoning it. "
              "Its batch stays claimed in the buffer and is sent again, under the same object key, at the next start",
              budget_us / 1e6);
  return CancelledError("upload abandoned at shutdown");
}

// ---- systemd notifications and watchdog ----

void Agent::NotifyReady() {
  notifier_->Notify("READY=1\nSTATUS=" + ServiceStatusText(Snapshot()));
  if (watchdog_us_ > 0)
    EP_LOG_INFO(kLog, "systemd watchdog: pinging every %.1f s while healthy (WatchdogSec=%.0fs)",
                HealthIntervalUs() / 1e6, watchdog_us_ / 1e6);
}

void Agent::NotifyStopping() {
  // Systemd may wait longer than TimeoutStopSec= for the drain we promise (shutdown_timeout).
  notifier_->Notify(StrFormat("STOPPING=1\nEXTEND_TIMEOUT_USEC=%lld\nSTATUS=stopping: committing and delivering "
                              "what is buffered (up to %.0f s)",
                              static_cast<long long>(config_.agent.shutdown_timeout_us + 10 * kSec),
                              config_.agent.shutdown_timeout_us / 1e6));
}

int64_t Agent::HealthIntervalUs() const {
  if (watchdog_us_ > 0) return std::max<int64_t>(std::min(watchdog_us_ / 2, kHealthIntervalUs), 10'000);
  return kHealthIntervalUs;
}

// Runs on the main loop: that it runs at all is the main loop's health. The buffer writer is
// healthy unless it has been inside a single commit attempt for longer than the stall timeout
// (a hung disk, NFS, a lock held elsewhere). Failing commits (disk full) are not a stall: the
// writer is alive and retrying, and a restart would not help; they show in the metrics.
void Agent::HealthCheck() {
  bool healthy = true;
  int64_t busy_us = 0;
  if (store_) {
    buffer::Store::WriterHealth h = store_->GetWriterHealth();
    busy_us = h.busy_since_mono_us ? clock_.MonotonicNowUs() - h.busy_since_mono_us : 0;
    healthy = h.running && busy_us <= config_.agent.writer_stall_timeout_us;
    if (!h.running) busy_us = -1;
  }
  const bool was = writer_healthy_.exchange(healthy);
  if (!healthy && was) {
    std::string why = busy_us < 0 ? std::string("the buffer writer thread has exited")
                                  : StrFormat("the buffer writer has been inside one commit for %.1f s "
                                              "(agent.writer_stall_timeout %.0f s)",
                                              busy_us / 1e6, config_.agent.writer_stall_timeout_us / 1e6);
    EP_LOG_ERROR(kLog, "%s: %s", why.c_str(),
                 watchdog_us_ > 0 ? "no longer pinging the systemd watchdog; systemd restarts the service if this lasts"
                                  : "check the disk holding the buffer (see docs/operations.md)");
    notifier_->Notify("STATUS=STALLED: " + why);
  } else if (healthy && !was) {
    EP_LOG_NOTICE(kLog, "the buffer writer is making progress again%s", watchdog_us_ > 0 ? "; watchdog pings resume" : "");
  }
  if (healthy && watchdog_us_ > 0) notifier_->Notify("WATCHDOG=1");
}

// ---- telemetry ----

void Agent::StartTelemetry() {
  telemetry_ = std::make_unique<Telemetry>([this] { return Snapshot(); }, *notifier_, TelemetryFor(config_));
  Status s = telemetry_->Start();
  if (!s.ok())
    EP_LOG_ERROR("metrics", "%s; collecting continues, the endpoint is retried every %.0f s", s.ToString().c_str(),
                 config_.agent.stats_interval_us / 1e6);
}

void Agent::StopTelemetry() {
  if (telemetry_) telemetry_->Stop();
}

// From the telemetry thread's latest snapshot: the main loop never waits for the database (a
// stuck commit holds it), so the watchdog logic keeps running whatever the buffer does.
std::string Agent::PeriodicStatusLine() {
  return telemetry_ ? StatusLineFor(telemetry_->Latest().summary) : StatusLine();
}

int Agent::metrics_port() const { return telemetry_ ? telemetry_->bound_port() : 0; }

AgentSnapshot Agent::Snapshot() {
  AgentSnapshot s;
  s.time_us = clock_.SystemNowUs();
  s.start_time_us = start_time_us_;
  s.pid = static_cast<int64_t>(getpid());
  s.version = EDGEPIPE_VERSION;
  s.device = config_.device.id;
  s.summary = Summary();
  s.buffer_max_bytes = config_.buffer.max_size_bytes;
  s.writer_healthy = writer_healthy_;
  s.watchdog_enabled = watchdog_us_ > 0;
  s.reloads_ok = reloads_ok_;
  s.reloads_failed = reloads_failed_;
  s.last_reload_ok = last_reload_ok_;
  s.last_reload_time_us = last_reload_time_us_;
  return s;
}

// ---- SIGHUP ----

Status Agent::Reload() {
  if (config_.file == "<embedded>") {
    EP_LOG_WARN(kLog, "reload: running the embedded demo configuration, there is no file to re-read "
                "(start with --config FILE)");
    return FailedPreconditionError("no configuration file to reload");
  }
  notifier_->Notify("RELOADING=1\nSTATUS=reloading " + config_.file);
  last_reload_time_us_ = clock_.SystemNowUs();
  const std::string text = ReadText(config_.file);
  ParseResult pr = text.empty() ? LoadConfigFile(config_.file) : ParseConfigText(text, config_.file);
  if (!pr.config) {
    ++reloads_failed_;
    last_reload_ok_ = false;
    for (const ConfigProblem& p : pr.problems) EP_LOG_ERROR(kLog, "reload: %s", p.ToString().c_str());
    EP_LOG_ERROR(kLog, "reload: %s is invalid (%zu problem%s): nothing changed, still running on the previous "
                 "configuration. Fix it and reload again (`edgepipe check-config %s`).",
                 config_.file.c_str(), pr.problems.size(), pr.problems.size() == 1 ? "" : "s", config_.file.c_str());
    notifier_->Notify(StrFormat("READY=1\nSTATUS=reload FAILED: %zu problem(s) in %s; running on the previous "
                                "configuration", pr.problems.size(), config_.file.c_str()));
    return InvalidArgumentError(StrFormat("%zu problems in %s", pr.problems.size(), config_.file.c_str()));
  }
  for (const ConfigProblem& w : pr.warnings) EP_LOG_WARN(kLog, "reload: %s", w.ToString().c_str());
  // Live keys: applied when they differ from what runs now. Other keys: reported while they
  // differ from what the agent started with (they need a restart, however often one reloads).
  std::vector<ConfigChange> since_applied = DiffConfigText(config_text_applied_, text);
  std::vector<ConfigChange> since_start = DiffConfigText(config_text_started_, text);
  size_t applied = 0, pending = 0;
  for (const ConfigChange& c : since_applied) {
    if (!AppliesLive(c.key)) continue;
    ++applied;
    EP_LOG_NOTICE(kLog, "reload: %s: %s -> %s (applied)", c.key.c_str(), c.old_value.empty() ? "(default)" : c.old_value.c_str(),
                  c.new_value.empty() ? "(default)" : c.new_value.c_str());
  }
  for (const ConfigChange& c : since_start) {
    if (AppliesLive(c.key)) continue;
    ++pending;
    EP_LOG_WARN(kLog, "reload: %s changed (%s -> %s): takes effect only after a restart "
                "(systemctl restart edgepipe)", c.key.c_str(), c.old_value.empty() ? "unset" : c.old_value.c_str(),
                c.new_value.empty() ? "unset" : c.new_value.c_str());
  }
  ApplyLive(*pr.config);
  config_text_applied_ = text;
  ++reloads_ok_;
  last_reload_ok_ = true;
  EP_LOG_NOTICE(kLog, "reload: %s re-read: %zu change%s applied, %zu waiting for a restart", config_.file.c_str(),
                applied, applied == 1 ? "" : "s", pending);
  std::string status = telemetry_ ? ServiceStatusText(telemetry_->Latest()) : "running";
  notifier_->Notify(StrFormat("READY=1\nSTATUS=%s%s", status.c_str(),
                              pending ? " (config changes waiting for a restart)" : ""));
  return Status::Ok();
}

void Agent::ApplyLive(const Config& next) {
  AgentConfig& a = config_.agent;
  if (!hooks_.log_level_from_command_line && next.agent.log_level != a.log_level) SetLogLevel(next.agent.log_level);
  a.log_level = next.agent.log_level;
  a.status_interval_us = next.agent.status_interval_us;  // the status timer re-reads it when it fires
  a.shutdown_timeout_us = next.agent.shutdown_timeout_us;
  a.writer_stall_timeout_us = next.agent.writer_stall_timeout_us;
  a.stats_interval_us = next.agent.stats_interval_us;
  a.metrics_listen = next.agent.metrics_listen;
  a.status_file = next.agent.status_file;
  if (telemetry_) telemetry_->Reconfigure(TelemetryFor(config_));
}

}  // namespace edgepipe::agent
