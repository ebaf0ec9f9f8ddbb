// The upload loop: lease a batch from the buffer, build its object, put it to the sink, and
// acknowledge it only after the sink confirmed exactly those bytes. Never drops a batch because
// of an upload error: transient errors back off (exponential, full jitter), configuration errors
// retry slowly with one log line per interval.
//
// Batch states: PENDING (in buffer) -> LEASED (LeaseBatch) -> BUILT (ObjectBuilder::Build)
//   -> PUT OK -> ACKED (AckBatch: deleted from the buffer)
//   -> PUT failed -> RELEASED (ReleaseBatch: offered again later, same content) + BACKOFF
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/sink.h"

namespace edgepipe::uploader {

struct UploaderOptions {
  BatchPolicy policy;
  int64_t poll_interval_us = 250'000;         // how often to look for a ready batch when idle
  int64_t retry_base_us = 1'000'000;          // first backoff after a transient failure
  int64_t retry_cap_us = 300'000'000;         // backoff ceiling
  int64_t config_retry_us = 60'000'000;       // retry interval while the destination is misconfigured
  uint64_t seed = 0;                          // jitter seed (0 = random)
};

struct UploaderStats {
  uint64_t objects = 0;             // objects confirmed by the sink
  uint64_t readings = 0;            // readings in those objects
  uint64_t quarantine_objects = 0;
  uint64_t quarantine_records = 0;
  uint64_t bytes = 0;               // compressed bytes confirmed
  uint64_t raw_bytes = 0;           // uncompressed bytes confirmed
  uint64_t failures = 0;            // failed put attempts
  int64_t last_success_us = 0;      // system time
  std::string last_key;
  std::string last_error;           // "" after a success
  uint64_t consecutive_failures = 0;
};

class Uploader {
 public:
  Uploader(BatchSource& source, ObjectBuilder builder, Sink& sink, Clock& clock, UploaderOptions options);

  // One attempt. true: a batch was delivered; false: none was ready. A failed delivery
  // releases the batch (it stays in the buffer) and returns the sink's status.
  Result<bool> DeliverOne(bool flush);

  // Delivers ready batches until Stop(); sleeps when idle, backs off after failures.
  void Run();
  // Wakes Run() and makes it return after the current attempt.
  void Stop();

  // Delivers everything the buffer holds (partial batches too) until nothing is left, a
  // delivery fails, or the monotonic deadline passes.
  Status Drain(int64_t deadline_mono_us);

  UploaderStats stats() const;
  // Delay before the next attempt after `failures` consecutive failures of class `code`.
  int64_t BackoffUs(uint64_t failures, StatusCode code);

 private:
  bool WaitFor(int64_t us);  // false when stopped

  BatchSource& source_;
  ObjectBuilder builder_;
  Sink& sink_;
  Clock& clock_;
  UploaderOptions opt_;
  std::mt19937_64 rng_;
  RateLimitedLog config_log_{600'000'000};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  UploaderStats stats_;
};

}  // namespace edgepipe::uploader
