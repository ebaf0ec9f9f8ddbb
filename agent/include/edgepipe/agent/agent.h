// The agent: wires sources -> validation -> buffer -> uploader -> sink from a Config and runs
// them until SIGINT/SIGTERM (or a set duration), then shuts down without losing anything that
// was accepted: sources stop, the buffer commits what it holds, the uploader drains what it can.
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "edgepipe/agent/clock_sync.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/agent/quality_report.h"
#include "edgepipe/agent/service.h"
#include "edgepipe/agent/validator.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/source.h"
#include "edgepipe/firmware_bridge/mqtt.h"
#include "edgepipe/uploader/sink.h"
#include "edgepipe/uploader/uploader.h"

namespace edgepipe::agent {

// The ReadingSink handed to every source: validation, then the buffer. Thread-safe; one lock
// per call (a call carries a whole message or poll worth of readings), none per reading.
class Ingest final : public ReadingSink {
 public:
  Ingest(const ValidationConfig& config, Clock& clock, ReadingSink& buffer);
  Result<uint64_t> Append(std::span<const Reading> readings) override;
  Result<uint64_t> AppendWithState(std::span<const Reading> readings, const SourceState& state) override;
  // Validates `readings` in place (swapped with the scratch vector, not copied).
  Result<uint64_t> AppendWithStateOwned(std::vector<Reading>& readings, const SourceState& state) override;
  Result<std::optional<std::string>> LoadState(const std::string& key) override { return buffer_.LoadState(key); }
  // Validates `readings` in place, like AppendWithStateOwned.
  Result<uint64_t> AppendWithCell(std::vector<Reading>& readings, const StateCell& cell) override;
  Result<std::optional<uint64_t>> LoadCell(const std::string& table, uint32_t index) override {
    return buffer_.LoadCell(table, index);
  }
  Status WaitDurable(uint64_t ticket) override { return buffer_.WaitDurable(ticket); }
  Result<uint64_t> Quarantine(const QuarantineRecord& record) override;
  Result<uint64_t> RecordGap(const GapRecord& gap) override { return buffer_.RecordGap(gap); }
  ValidationStats stats() const;
  // Primes duplicate detection with readings already in the buffer.
  void Seed(const std::vector<Reading>& stored);
  // Called (under the ingest lock, so in commit order) with the readings that passed validation
  // and were queued in the buffer. Must not block: the local republisher only queues them.
  using AcceptedHook = std::function<void(std::span<const Reading>)>;
  void SetAcceptedHook(AcceptedHook hook);

  // [validation.clock] (clock_sync.h, ingest_clock.cpp): from now on readings stamped while the
  // clock is unsynchronised are held and re-stamped at sync. Opens the hold file and releases
  // what can be released at once. Call before sources start.
  Status EnableClockGuard(std::unique_ptr<ClockGuard> guard);
  // Re-checks the clock and releases held readings that are due (also done on every Append).
  Status Tick();
  std::optional<ClockGuardStats> clock_stats() const;
  std::vector<SensorQuality> SensorReport() const;

 private:
  Status ReleaseHeldLocked();
  Status HoldLocked(std::vector<Reading>& in);
  // Validates scratch_passed_ (filled by the caller) and hands it to the buffer; mu_ held.
  // `cell` (may be null) goes with the readings instead of `state`.
  Result<uint64_t> ProcessLocked(const SourceState& state, const StateCell* cell = nullptr);

  mutable std::mutex mu_;
  std::unique_ptr<ClockGuard> guard_;
  Validator validator_;
  ReadingSink& buffer_;
  std::map<std::string, uint64_t> source_rejects_;  // quarantined by sources (parse errors, ...)
  AcceptedHook accepted_hook_;
  std::vector<Reading> scratch_passed_;  // AppendWithState's, reused under mu_
  std::vector<QuarantineRecord> scratch_rejected_;
};

// Builds the sink for a destination URL (s3:// signs with `clock`; `probe_tag`, e.g. the device
// id, names the start-up probe object).
Result<std::unique_ptr<uploader::Sink>> MakeSink(const UploadConfig& config, Clock& clock = RealClock::Default(),
                                                 const std::string& probe_tag = "");
// The upload loop's options from the configuration ([upload] and [batch]).
uploader::UploaderOptions MakeUploaderOptions(const Config& config);
// Builds a source from its configuration.
Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config, ReadingSink& sink, Clock& clock);

struct RunSummary {
  int64_t duration_us = 0;
  std::string destination;
  ValidationStats validation;
  uploader::UploaderStats uploads;
  buffer::Stats buffer;
  std::vector<SourceHealth> sources;
};

struct AgentSnapshot;
class Telemetry;

// Seams for the service integration (docs/operations.md, "systemd"). Defaults are production.
struct AgentHooks {
  ServiceNotifier* notifier = nullptr;  // nullptr: sd_notify (a no-op outside systemd)
  // Builds the sink instead of MakeSink (tests: a sink that blocks or fails).
  std::function<Result<std::unique_ptr<uploader::Sink>>(const UploadConfig&)> make_sink;
  bool log_level_from_command_line = false;  // --log-level was given: reloads leave the level alone
};

// The one-line status summary logged periodically and on exit.
std::string StatusLineFor(const RunSummary& s);

class Agent {
 public:
  explicit Agent(Config config, Clock& clock = RealClock::Default(), AgentHooks hooks = {});
  ~Agent();

  // Opens the buffer (extending systemd's start timeout while that takes long), builds the sink,
  // starts the uploader, the sources and the telemetry thread (status file, metrics endpoint).
  // Blocks SIGINT/SIGTERM/SIGHUP in the calling thread (and so in every thread it creates) until
  // Run() handles them, so a signal arriving during start-up is not lost.
  Status Start();
  // Sends READY=1, then runs the main loop until SIGINT/SIGTERM, RequestStop(), or `duration_us`
  // (0 = no limit); then Shutdown(). SIGHUP reloads the configuration (Reload()). While the loop
  // runs and the buffer writer is healthy it pings the systemd watchdog.
  Status Run(int64_t duration_us);
  // Thread-safe; wakes Run().
  void RequestStop();
  // SIGTERM semantics: STOPPING=1; stops the sources; commits everything held in memory; lets
  // the in-flight upload finish and drains the buffer until agent.shutdown_timeout, then
  // abandons what is still in flight (it stays claimed in the buffer and is sent again, under
  // the same key, at the next start). Returns an error only when the final commit failed.
  Status Shutdown();

  // Re-reads the configuration file (SIGHUP). An invalid file changes nothing: every problem is
  // logged and the agent keeps running on the configuration it has. A valid one is applied where
  // that is possible live (LiveKeys() in reload.h); every other change is logged as needing a
  // restart. kInvalidArgument when the file was invalid; kFailedPrecondition without a file.
  Status Reload();

  RunSummary Summary();
  std::string StatusLine();
  AgentSnapshot Snapshot();
  // True when Shutdown() gave up waiting for an upload (the caller should exit without
  // destroying the Agent, e.g. with _exit, since that upload may still be using it).
  bool upload_abandoned() const { return upload_abandoned_; }
  // Port of the metrics endpoint (0 when none), for tests.
  int metrics_port() const;
  // Whether the last health check found the buffer writer healthy (the watchdog condition).
  bool writer_healthy() const { return writer_healthy_; }

  // Data-quality counters per sensor per rule since the first start on this buffer (issue 7).
  QualityReport Quality();

 private:
  // agent_quality.cpp (issue 7): clock guard and the quality report file for `edgepipe status`.
  Status StartQuality();
  void SaveQuality();
  std::string QualityLogSuffix();

  // Service integration (agent_service.cpp).
  void InitService();
  void BlockSignals();
  void UnblockSignals();
  void RestoreSignals();
  std::unique_ptr<TimeoutExtender> ExtendStartTimeout();
  void StartUploadThread();
  void StartTelemetry();
  void StopTelemetry();
  void NotifyReady();
  void NotifyStopping();
  void HealthCheck();
  std::string PeriodicStatusLine();
  int64_t HealthIntervalUs() const;
  void ApplyLive(const Config& next);
  Status WaitForUploads(int64_t deadline_mono_us);

  Config config_;
  Clock& clock_;
  std::unique_ptr<buffer::Store> store_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<uploader::Sink> sink_;
  std::unique_ptr<uploader::Uploader> uploader_;
  std::thread upload_thread_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::unique_ptr<fb::Republisher> republisher_;  // [republish], issue 6
  int64_t started_mono_ = 0;
  int64_t stopped_mono_ = 0;
  std::atomic<bool> stop_requested_{false};
  std::mutex stop_mu_;
  std::function<void()> wake_;
  bool shut_down_ = false;

  // Service integration (agent_service.cpp).
  AgentHooks hooks_;
  std::unique_ptr<ServiceNotifier> own_notifier_;
  ServiceNotifier* notifier_ = nullptr;
  std::unique_ptr<Telemetry> telemetry_;
  std::string config_text_started_;  // the file as it was when the agent started
  std::string config_text_applied_;  // the file as last successfully (re)loaded
  int64_t start_time_us_ = 0;
  int64_t watchdog_us_ = 0;
  std::atomic<bool> writer_healthy_{true};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  std::atomic<bool> last_reload_ok_{true};
  std::atomic<int64_t> last_reload_time_us_{0};
  std::atomic<int64_t> drain_deadline_mono_{0};  // set by Shutdown before it stops the uploader
  std::mutex upload_mu_;
  std::condition_variable upload_cv_;
  bool upload_done_ = false;
  bool upload_abandoned_ = false;
  bool signals_blocked_ = false;
  sigset_t saved_sigmask_;
  QualityReport quality_base_;  // counters of earlier runs (issue 7)
};

}  // namespace edgepipe::agent
