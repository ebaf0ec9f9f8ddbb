// Where objects go. A sink reports failures with codes the upload loop acts on:
//   kUnavailable        transient (network, 5xx, 429, timeouts): retry with backoff
//   kFailedPrecondition configuration problem shared by every batch (403 credentials,
//                       404 bucket, unwritable directory): keep data, retry slowly, log once per interval
//   kInvalidArgument    this object can never be accepted (e.g. too large, a digest the server keeps
//                       rejecting): set aside after the retry budget (UploaderOptions::poison_retry_budget)
// Sinks are thread-safe: the uploader may have several Put()s in flight.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "edgepipe/core/status.h"
#include "edgepipe/uploader/object.h"

namespace edgepipe::uploader {

struct PutResult {
  std::string etag;
};

// What a start-up probe of the destination found (Sink::Probe).
struct ProbeReport {
  bool ran = false;                       // false: the sink has nothing to probe (file://)
  Status put, head, del;                  // each step's outcome (head/del are not run when put fails)
  std::optional<int64_t> clock_skew_us;   // server time minus device time, from the Date header
  std::string summary;                    // one line for the log: what works and what does not
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Stores the object under its key, replacing any object with that key (so a retried batch
  // overwrites itself). OK only once the object is durably stored as a whole.
  virtual Result<PutResult> Put(const Object& object) = 0;
  // Human-readable destination ("file:///var/lib/edgepipe/outbox").
  virtual std::string Describe() const = 0;
  // Writes, reads back and deletes a small probe object and reports what works. Never touches
  // batch objects. The default does nothing (ran = false).
  virtual ProbeReport Probe() { return {}; }
};

// file:///dir — writes each object atomically: temp file in the target directory, fsync,
// rename over the final name, fsync of the directory. Directories are created as needed.
class FileSink final : public Sink {
 public:
  explicit FileSink(std::string root);
  Result<PutResult> Put(const Object& object) override;
  std::string Describe() const override { return "file://" + root_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace edgepipe::uploader
