#include "edgepipe/uploader/uploader.h"

#include <algorithm>

namespace edgepipe::uploader {
namespace {
constexpr const char* kLog = "uploader";
}

Uploader::Uploader(BatchSource& source, ObjectBuilder builder, Sink& sink, Clock& clock, UploaderOptions options)
    : source_(source),
      builder_(std::move(builder)),
      sink_(sink),
      clock_(clock),
      opt_(options),
      rng_(options.seed ? options.seed : std::random_device{}()) {}

int64_t Uploader::BackoffUs(uint64_t failures, StatusCode code) {
  if (code == StatusCode::kFailedPrecondition) return opt_.config_retry_us;
  // Exponential with full jitter: uniform in [0, min(cap, base * 2^(n-1))], at least 10 ms.
  int64_t ceiling = opt_.retry_base_us;
  for (uint64_t i = 1; i < failures && ceiling < opt_.retry_cap_us; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, opt_.retry_cap_us);
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(ceiling, 1));
  return std::max<int64_t>(dist(rng_), 10'000);
}

Result<bool> Uploader::DeliverOne(bool flush) {
  Result<std::optional<Batch>> leased = source_.LeaseBatch(opt_.policy, flush);
  if (!leased.ok()) return leased.status();
  if (!leased->has_value()) return false;
  const Batch& batch = **leased;
  Result<Object> obj = builder_.Build(batch);
  Status s = obj.ok() ? Status::Ok() : obj.status();
  Result<PutResult> put = s.ok() ? sink_.Put(*obj) : Result<PutResult>(s);
  if (put.ok()) {
    DeliveryReceipt receipt{obj->key, obj->body.size(), obj->sha256_hex, put->etag, clock_.SystemNowUs()};
    s = source_.AckBatch(batch.id, receipt);
    if (!s.ok()) {
      // The object is stored; the batch will be sent again under the same key (idempotent).
      EP_LOG_ERROR(kLog, "delivered %s but could not acknowledge it in the buffer: %s", obj->key.c_str(),
                   s.ToString().c_str());
      source_.ReleaseBatch(batch.id).IgnoreError();
      return s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.objects;
    if (batch.kind == BatchKind::kQuarantine) {
      ++stats_.quarantine_objects;
      stats_.quarantine_records += obj->readings;
    } else {
      stats_.readings += obj->readings;
    }
    stats_.bytes += obj->body.size();
    stats_.raw_bytes += obj->raw_bytes;
    stats_.last_success_us = receipt.time_us;
    stats_.last_key = obj->key;
    stats_.last_error.clear();
    stats_.consecutive_failures = 0;
    EP_LOG_DEBUG(kLog, "stored %s (%llu records, %zu bytes)", obj->key.c_str(),
                 static_cast<unsigned long long>(obj->readings), obj->body.size());
    return true;
  }
  s = put.status();
  source_.ReleaseBatch(batch.id).IgnoreError();
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.failures;
  ++stats_.consecutive_failures;
  stats_.last_error = s.ToString();
  return s;
}

bool Uploader::WaitFor(int64_t us) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::microseconds(us), [&] { return stop_; });
  return !stop_;
}

void Uploader::Run() {
  uint64_t failures = 0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    Result<bool> r = DeliverOne(false);
    if (r.ok()) {
      if (failures > 0) EP_LOG_NOTICE(kLog, "delivery to %s works again", sink_.Describe().c_str());
      failures = 0;
      if (*r) continue;  // more may be ready
      if (!WaitFor(opt_.poll_interval_us)) return;
      continue;
    }
    ++failures;
    const Status& s = r.status();
    int64_t delay = BackoffUs(failures, s.code());
    if (s.code() == StatusCode::kFailedPrecondition) {
      uint64_t suppressed = 0;
      if (config_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
        EP_LOG_ERROR(kLog, "cannot deliver to %s: %s. The data stays in the buffer; fix the destination "
                     "settings (see docs/operations.md). Retrying every %llds (%llu similar failures not logged).",
                     sink_.Describe().c_str(), s.ToString().c_str(), static_cast<long long>(delay / 1'000'000),
                     static_cast<unsigned long long>(suppressed));
    } else {
      EP_LOG_WARN(kLog, "delivery to %s failed (attempt %llu): %s; retrying in %.1fs", sink_.Describe().c_str(),
                  static_cast<unsigned long long>(failures), s.ToString().c_str(), delay / 1e6);
    }
    if (!WaitFor(delay)) return;
  }
}

void Uploader::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

Status Uploader::Drain(int64_t deadline_mono_us) {
  while (clock_.MonotonicNowUs() < deadline_mono_us) {
    Result<bool> r = DeliverOne(true);
    if (!r.ok()) return r.status();
    if (!*r) return Status::Ok();
  }
  return UnavailableError("drain deadline reached with batches left in the buffer");
}

UploaderStats Uploader::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace edgepipe::uploader
