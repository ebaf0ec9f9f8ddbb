// The agent: wires sources -> validation -> buffer -> uploader -> sink from a Config and runs
// them until SIGINT/SIGTERM (or a set duration), then shuts down without losing anything that
// was accepted: sources stop, the buffer commits what it holds, the uploader drains what it can.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "edgepipe/agent/config.h"
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
  Result<std::optional<std::string>> LoadState(const std::string& key) override { return buffer_.LoadState(key); }
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

 private:
  mutable std::mutex mu_;
  Validator validator_;
  ReadingSink& buffer_;
  std::map<std::string, uint64_t> source_rejects_;  // quarantined by sources (parse errors, ...)
  AcceptedHook accepted_hook_;
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

class Agent {
 public:
  explicit Agent(Config config, Clock& clock = RealClock::Default());
  ~Agent();

  // Opens the buffer, builds the sink, starts the uploader and the sources.
  Status Start();
  // Blocks until SIGINT/SIGTERM, RequestStop(), or `duration_us` (0 = no limit); then Shutdown().
  Status Run(int64_t duration_us);
  // Thread-safe; wakes Run().
  void RequestStop();
  // Stops sources, commits the buffer, drains uploads for up to agent.shutdown_timeout.
  Status Shutdown();

  RunSummary Summary();
  std::string StatusLine();

 private:
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
};

}  // namespace edgepipe::agent
