// The upload loop: lease a batch from the buffer, build its object, put it to the sink, and
// acknowledge it only after the sink confirmed exactly those bytes. Never drops a batch because
// of an upload error: transient errors back off (exponential, full jitter), configuration errors
// retry slowly with one log line per interval, and a batch the server refuses on its own is set
// aside locally (kept on disk, counted) so it cannot block the queue.
//
// Batch states (each transition names the function doing it):
//   PENDING (in buffer) --LeaseBatch--> LEASED --ObjectBuilder::Build--> BUILT
//   BUILT --RateLimiter::Reserve (bandwidth cap)--> SENDING --Sink::Put--> PUT OK --AckBatch--> ACKED
//   Put failed, kUnavailable / kFailedPrecondition (shared by all batches)
//       --ReleaseBatch--> PENDING, whole uploader pauses (BACKOFF); the retry budget is untouched
//   Put failed, kInvalidArgument (this object only)
//       --ReleaseBatch--> PENDING, budget charged; once the budget is used up and a probe shows
//       the destination accepts other objects --SetAside--> SET ASIDE (object + reason written to
//       set_aside_dir, fsynced) --AckBatch (receipt key "set-aside:<path>")--> ACKED
//
// Invariants:
//  1. AckBatch is called only after Sink::Put returned OK for the object built from that batch,
//     or after the set-aside copy of that object is durable on local disk.
//  2. A retried batch is rebuilt from the same buffer content: same key, same bytes.
//  3. Uploads run only inside the upload windows (checked before each lease), and the bytes
//     started per second stay under the bandwidth cap on average.
//  4. Up to `concurrency` batches are in flight; leases are handed out oldest first.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/schedule.h"
#include "edgepipe/uploader/sink.h"

namespace edgepipe::uploader {

struct UploaderOptions {
  BatchPolicy policy;
  int64_t poll_interval_us = 250'000;         // how often to look for a ready batch when idle
  int64_t retry_base_us = 1'000'000;          // first backoff after a transient failure
  int64_t retry_cap_us = 300'000'000;         // backoff ceiling
  int64_t config_retry_us = 60'000'000;       // retry interval while the destination is misconfigured
  uint64_t seed = 0;                          // jitter seed (0 = random)
  int concurrency = 1;                        // uploads in flight in Run()
  uint64_t bandwidth_bytes_per_s = 0;         // average cap over all uploads (0 = unlimited)
  UploadWindows windows;                      // when uploads may run (default: always)
  int poison_retry_budget = 5;                // attempts refused by the server for this object alone
  std::string set_aside_dir;                  // where refused objects go; "" = never set aside (retry forever)
  bool probe = true;                          // Run() probes the sink once before the first upload
};

struct UploaderStats {
  uint64_t objects = 0;             // objects confirmed by the sink
  uint64_t readings = 0;            // readings in those objects
  uint64_t quarantine_objects = 0;
  uint64_t quarantine_records = 0;
  uint64_t bytes = 0;               // compressed bytes confirmed (reading and quarantine objects)
  uint64_t raw_bytes = 0;           // uncompressed bytes confirmed (reading and quarantine objects)
  uint64_t quarantine_bytes = 0;    // the part of `bytes` in quarantine objects
  uint64_t quarantine_raw_bytes = 0;  // the part of `raw_bytes` in quarantine objects
  // The objects of readings alone (what the status line and the run summary call "delivered").
  uint64_t reading_objects() const { return objects - quarantine_objects; }
  uint64_t reading_bytes() const { return bytes - quarantine_bytes; }
  uint64_t reading_raw_bytes() const { return raw_bytes - quarantine_raw_bytes; }
  uint64_t failures = 0;            // failed put attempts
  int64_t last_success_us = 0;      // system time
  std::string last_key;
  std::string last_error;           // "" after a success
  uint64_t consecutive_failures = 0;
  uint64_t set_aside_objects = 0;   // batches refused by the server and kept in set_aside_dir
  uint64_t set_aside_records = 0;
  std::string last_set_aside;       // path of the last set-aside object
  int in_flight = 0;                // puts running now
  bool outside_window = false;      // waiting for an upload window to open
  int64_t bandwidth_wait_us = 0;    // total time spent waiting for the bandwidth cap
  std::string probe;                // the start-up probe's summary ("" before it ran / without probe)
  int64_t clock_skew_us = 0;        // server minus device clock, measured by the probe
};

class Uploader {
 public:
  Uploader(BatchSource& source, ObjectBuilder builder, Sink& sink, Clock& clock, UploaderOptions options);

  // One attempt. true: a batch was delivered (or set aside); false: none was ready. A failed
  // delivery releases the batch (it stays in the buffer) and returns the sink's status.
  // Ignores upload windows (Run() and Drain() check them).
  Result<bool> DeliverOne(bool flush);

  // Probes the sink, then delivers ready batches with `concurrency` workers until Stop(); sleeps
  // when idle or outside the upload windows, backs off after failures.
  void Run();
  // Wakes Run() (and any wait) and makes it return after the current attempts.
  void Stop();

  // Delivers everything the buffer holds (partial batches too) until nothing is left, a
  // delivery fails, or the monotonic deadline passes. Outside the upload windows it sends
  // nothing and returns kUnavailable.
  Status Drain(int64_t deadline_mono_us);

  UploaderStats stats() const;
  // Delay before the next attempt after `failures` consecutive failures of class `code`.
  int64_t BackoffUs(uint64_t failures, StatusCode code);

 private:
  Result<bool> DeliverWith(ObjectBuilder& builder, bool flush, int64_t deadline_mono_us);
  Result<bool> HandlePutFailure(const Batch& batch, const Object& obj, const Status& s);
  Result<bool> SetAside(const Batch& batch, const Object& obj, const Status& why, int attempts);
  void Worker(int index);
  void OnFailure(const Status& s);
  bool WaitForWindow();       // false when stopped
  bool WaitFor(int64_t us);   // false when stopped

  BatchSource& source_;
  std::mutex builder_mu_;     // guards builder_ (DeliverOne / Drain)
  ObjectBuilder builder_;
  Sink& sink_;
  Clock& clock_;
  UploaderOptions opt_;
  RateLimiter limiter_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  RateLimitedLog config_log_{600'000'000};
  RateLimitedLog window_log_{3'600'000'000};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  UploaderStats stats_;
  uint64_t run_failures_ = 0;            // consecutive failures seen by Run() workers
  int64_t pause_until_mono_us_ = 0;      // workers wait until then after a failure
  std::map<uint64_t, int> refusals_;     // batch id -> kInvalidArgument failures (this process)
};

}  // namespace edgepipe::uploader
