#include "edgepipe/agent/agent.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "telemetry.h"  // complete type for ~Agent

namespace edgepipe::agent {
namespace {
constexpr const char* kLog = "agent";
}

// ---- Agent ----

Agent::Agent(Config config, Clock& clock, AgentHooks hooks)
    : config_(std::move(config)), clock_(clock), hooks_(std::move(hooks)) {
  InitService();
}

Agent::~Agent() {
  Shutdown().IgnoreError();
  // After an abandoned upload the thread may still be inside the sink: wait for it here (main
  // exits with _exit instead of getting here, see upload_abandoned()).
  if (upload_thread_.joinable()) upload_thread_.join();
}

Status Agent::Start() {
  started_mono_ = clock_.MonotonicNowUs();
  BlockSignals();
  // Opening (checking, recovering) a large database can outlast systemd's start timeout.
  std::unique_ptr<TimeoutExtender> extend = ExtendStartTimeout();
  buffer::Options bopt = config_.buffer;
  bopt.clock = &clock_;
  bopt.merge_min_age_us = config_.batch.max_age_us;  // see Options::merge_min_age_us
  Result<std::unique_ptr<buffer::Store>> store = buffer::Store::Open(bopt);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  ingest_ = std::make_unique<Ingest>(config_.validation, clock_, *store_);
  // A peer that did not get our acknowledgement before a crash sends again what we stored:
  // seed duplicate detection with the newest stored readings so those repeats are recognised.
  Result<std::vector<Reading>> recent = store_->RecentReadings(50'000);
  if (recent.ok()) ingest_->Seed(*recent);
  else EP_LOG_WARN(kLog, "could not read recent readings for duplicate detection: %s", recent.status().ToString().c_str());
  EP_RETURN_IF_ERROR(StartQuality());  // issue 7: [validation.clock] (may release held readings), quality counters
  extend.reset();

  Result<std::unique_ptr<uploader::Sink>> sink =
      hooks_.make_sink ? hooks_.make_sink(config_.upload) : MakeSink(config_.upload, clock_, config_.device.id);
  if (!sink.ok()) return sink.status();
  sink_ = std::move(*sink);
  uploader::ObjectOptions oopt;
  oopt.format = config_.upload.format;
  oopt.zstd_level = config_.upload.zstd_level;
  oopt.prefix = config_.upload.prefix;
  oopt.key_template = config_.upload.key_template;
  oopt.context.device = config_.device.id;
  oopt.context.labels = config_.device.labels;
  uploader::UploaderOptions uopt = MakeUploaderOptions(config_);
  uploader_ = std::make_unique<uploader::Uploader>(*store_, uploader::ObjectBuilder(oopt), *sink_, clock_, uopt);
  StartUploadThread();

  if (config_.republish.enabled) {  // issue 6: local republish of validated readings
    fb::RepublishOptions ropt = config_.republish.options;
    if (!config_.republish.password.empty()) {
      Result<std::string> pw = LoadSecret(config_.republish.password);
      if (!pw.ok()) return Status(pw.status().code(), "republish password: " + pw.status().message());
      ropt.client.password = *pw;
    }
    republisher_ = std::make_unique<fb::Republisher>(std::move(ropt), clock_);
    Status rs = republisher_->Start();
    if (!rs.ok()) return Status(rs.code(), "republish: " + rs.message());
    fb::Republisher* rp = republisher_.get();
    ingest_->SetAcceptedHook([rp](std::span<const Reading> r) { rp->Offer(r); });
  }

  for (const SourceConfig& sc : config_.sources) {
    Result<std::unique_ptr<Source>> src = MakeSource(sc, *ingest_, clock_);
    if (!src.ok()) return src.status();
    Status s = (*src)->Start();
    if (!s.ok()) return Status(s.code(), "source " + sc.name + ": " + s.message());
    sources_.push_back(std::move(*src));
  }
  StartTelemetry();
  EP_LOG_NOTICE(kLog, "started: device %s, %zu source(s), buffer %s, destination %s", config_.device.id.c_str(),
                sources_.size(), config_.buffer.path.c_str(), sink_->Describe().c_str());
  return Status::Ok();
}

void Agent::RequestStop() {
  stop_requested_ = true;
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (wake_) wake_();
}

Status Agent::Run(int64_t duration_us) {
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        Reload().IgnoreError();  // Reload logs and counts every outcome itself
        wait_signal();
        return;
      }
      EP_LOG_NOTICE(kLog, "received %s, shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      io.stop();
    });
  };
  wait_signal();
  UnblockSignals();  // signals that arrived during Start() are delivered now, to the handler above
  // Watchdog: pings only from this loop, and only while the buffer writer is healthy.
  boost::asio::steady_timer health_timer(io);
  std::function<void()> arm_health = [&] {
    HealthCheck();
    health_timer.expires_after(std::chrono::microseconds(HealthIntervalUs()));
    health_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) arm_health();
    });
  };
  boost::asio::steady_timer deadline(io);
  if (duration_us > 0) {
    deadline.expires_after(std::chrono::microseconds(duration_us));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) io.stop();
    });
  }
  boost::asio::steady_timer status_timer(io);
  std::function<void()> arm_status = [&] {
    status_timer.expires_after(std::chrono::microseconds(config_.agent.status_interval_us));
    status_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      EP_LOG_INFO(kLog, "%s", (PeriodicStatusLine() + QualityLogSuffix()).c_str());
      SaveQuality();  // issue 7: also releases held readings that are due
      arm_status();
    });
  };
  arm_status();
  arm_health();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    wake_ = [&io] { boost::asio::post(io, [&io] { io.stop(); }); };
  }
  NotifyReady();
  if (!stop_requested_) io.run();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    wake_ = nullptr;
  }
  return Shutdown();
}

Status Agent::Shutdown() {
  if (shut_down_) return Status::Ok();
  shut_down_ = true;
  NotifyStopping();
  stopped_mono_ = clock_.MonotonicNowUs();
  // 1. Inputs first: once Stop() returns a source makes no further calls into the buffer.
  for (auto& s : sources_) s->Stop();
  if (republisher_) {
    ingest_->SetAcceptedHook(nullptr);
    republisher_->Stop();
  }
  // 2. Commit everything held in memory.
  Status result;
  if (store_) {
    Status s = store_->Flush();
    if (!s.ok()) {
      EP_LOG_ERROR(kLog, "final commit failed: %s", s.ToString().c_str());
      result = s;
    }
  }
  // 3. Let the in-flight upload finish and drain the buffer, within agent.shutdown_timeout; what
  //    is still in flight then is abandoned (it stays claimed in the buffer for the next start).
  if (uploader_) WaitForUploads(clock_.MonotonicNowUs() + config_.agent.shutdown_timeout_us).IgnoreError();
  StopTelemetry();
  SaveQuality();  // issue 7
  EP_LOG_NOTICE(kLog, "stopped. %s", StatusLine().c_str());
  RestoreSignals();
  return result;
}

RunSummary Agent::Summary() {
  RunSummary s;
  s.duration_us = (stopped_mono_ ? stopped_mono_ : clock_.MonotonicNowUs()) - started_mono_;
  if (sink_) s.destination = sink_->Describe();
  if (ingest_) s.validation = ingest_->stats();
  if (uploader_) s.uploads = uploader_->stats();
  if (store_) s.buffer = store_->GetStats();
  for (auto& src : sources_) s.sources.push_back(src->Health());
  return s;
}

std::string Agent::StatusLine() { return StatusLineFor(Summary()) + QualityLogSuffix(); }

std::string StatusLineFor(const RunSummary& s) {
  std::string line = StrFormat(
      "readings in %llu, accepted %llu, rejected %llu; buffer %llu pending + %llu in memory; delivered %llu objects "
      "(%llu readings, %llu bytes)",
      static_cast<unsigned long long>(s.validation.received), static_cast<unsigned long long>(s.validation.passed),
      static_cast<unsigned long long>(s.validation.rejected_total()),
      static_cast<unsigned long long>(s.buffer.pending_readings + s.buffer.claimed_readings),
      static_cast<unsigned long long>(s.buffer.memory_readings),
      static_cast<unsigned long long>(s.uploads.reading_objects()), static_cast<unsigned long long>(s.uploads.readings),
      static_cast<unsigned long long>(s.uploads.reading_bytes()));
  if (s.uploads.quarantine_objects)
    line += StrFormat(" + %llu quarantine objects (%llu records, %llu bytes)",
                      static_cast<unsigned long long>(s.uploads.quarantine_objects),
                      static_cast<unsigned long long>(s.uploads.quarantine_records),
                      static_cast<unsigned long long>(s.uploads.quarantine_bytes));
  if (!s.uploads.last_error.empty()) line += "; last upload error: " + s.uploads.last_error;
  if (s.uploads.set_aside_objects)
    line += StrFormat("; %llu object(s) set aside (last: %s)", static_cast<unsigned long long>(s.uploads.set_aside_objects),
                      s.uploads.last_set_aside.c_str());
  if (s.uploads.outside_window) line += "; outside the upload windows";
  return line;
}

}  // namespace edgepipe::agent
