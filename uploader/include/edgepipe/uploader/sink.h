// Where objects go. A sink reports failures with codes the upload loop acts on:
//   kUnavailable        transient (network, 5xx, 429, timeouts): retry with backoff
//   kFailedPrecondition configuration problem shared by every batch (403 credentials,
//                       404 bucket, unwritable directory): keep data, retry slowly, log once per interval
//   kInvalidArgument    this object can never be accepted (e.g. too large): quarantine after the retry budget
#pragma once

#include <memory>
#include <string>

#include "edgepipe/core/status.h"
#include "edgepipe/uploader/object.h"

namespace edgepipe::uploader {

struct PutResult {
  std::string etag;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Stores the object under its key, replacing any object with that key (so a retried batch
  // overwrites itself). OK only once the object is durably stored as a whole.
  virtual Result<PutResult> Put(const Object& object) = 0;
  // Human-readable destination ("file:///var/lib/edgepipe/outbox").
  virtual std::string Describe() const = 0;
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
