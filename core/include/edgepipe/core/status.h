// Status and Result<T>: errors as values with a small set of codes, each of which tells the
// caller what to do (see docs/architecture.md, "Errors"). Modelled on LevelDB's Status and
// Abseil's StatusOr. OK is cheap (no allocation).
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace edgepipe {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // bad config, malformed frame or payload: do not retry
  kNotFound,            // the thing asked for does not exist
  kUnavailable,         // transient (network, HTTP 5xx/429, SQLITE_BUSY): retry with backoff
  kResourceExhausted,   // disk full, queue full: apply back-pressure or the eviction policy
  kFailedPrecondition,  // do not retry until something changes (bad credentials, clock unsynced)
  kDataLoss,            // corruption detected (CRC mismatch, SQLITE_CORRUPT): quarantine, alert, count
  kInternal,            // an invariant was broken
  kCancelled,           // the operation was stopped because the process is shutting down
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Unavailable: connection refused" or "OK".
  std::string ToString() const;
  // Marks a status as deliberately ignored (LevelDB habit: make it visible).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

// True for codes where retrying the same call later can succeed (kUnavailable only).
// The uploader's retry policy is the one place that should branch on it.
bool IsRetryable(const Status& s);

// A value or a non-OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = InternalError("Result built from OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace edgepipe

// Propagates a non-OK Status from an expression returning Status.
#define EP_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::edgepipe::Status _ep_s = (expr);       \
    if (!_ep_s.ok()) return _ep_s;           \
  } while (0)
