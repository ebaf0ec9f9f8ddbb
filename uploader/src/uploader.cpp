#include "edgepipe/uploader/uploader.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "edgepipe/core/time_util.h"

namespace edgepipe::uploader {
namespace {

constexpr const char* kLog = "uploader";
// Outside the windows, look at the clock at least this often (it may be stepped by NTP).
constexpr int64_t kWindowRecheckUs = 60'000'000;

std::string ReasonJson(const Batch& batch, const Object& obj, const Status& why, int attempts, int64_t now_us) {
  std::string j = "{\"key\":";
  AppendJsonString(&j, obj.key);
  j += ",\"batch\":";
  AppendJsonString(&j, batch.name);
  j += ",\"records\":" + std::to_string(obj.readings) + ",\"bytes\":" + std::to_string(obj.body.size()) +
       ",\"sha256\":\"" + obj.sha256_hex + "\",\"attempts\":" + std::to_string(attempts) + ",\"set_aside_at\":\"" +
       FormatIso8601Ms(now_us) + "\",\"error\":";
  AppendJsonString(&j, why.ToString());
  j += ",\"metadata\":{";
  bool first = true;
  for (const auto& [k, v] : obj.metadata) {
    if (!first) j.push_back(',');
    first = false;
    AppendJsonString(&j, k);
    j.push_back(':');
    AppendJsonString(&j, v);
  }
  return j + "}}\n";
}

}  // namespace

Uploader::Uploader(BatchSource& source, ObjectBuilder builder, Sink& sink, Clock& clock, UploaderOptions options)
    : source_(source),
      builder_(std::move(builder)),
      sink_(sink),
      clock_(clock),
      opt_(std::move(options)),
      limiter_(opt_.bandwidth_bytes_per_s),
      rng_(opt_.seed ? opt_.seed : std::random_device{}()) {
  if (opt_.concurrency < 1) opt_.concurrency = 1;
}

int64_t Uploader::BackoffUs(uint64_t failures, StatusCode code) {
  if (code == StatusCode::kFailedPrecondition) return opt_.config_retry_us;
  // Exponential with full jitter: uniform in [0, min(cap, base * 2^(n-1))], at least 10 ms.
  int64_t ceiling = opt_.retry_base_us;
  for (uint64_t i = 1; i < failures && ceiling < opt_.retry_cap_us; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, opt_.retry_cap_us);
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(ceiling, 1));
  std::lock_guard<std::mutex> lock(rng_mu_);
  return std::max<int64_t>(dist(rng_), 10'000);
}

Result<bool> Uploader::DeliverOne(bool flush) {
  std::lock_guard<std::mutex> lock(builder_mu_);
  return DeliverWith(builder_, flush, INT64_MAX);
}

Result<bool> Uploader::DeliverWith(ObjectBuilder& builder, bool flush, int64_t deadline_mono_us) {
  BatchPolicy policy = opt_.policy;
  policy.columns = true;  // the encoders read columns: no Reading (and its strings) per reading
  Result<std::optional<Batch>> leased = source_.LeaseBatch(policy, flush);
  if (!leased.ok()) return leased.status();
  if (!leased->has_value()) return false;
  const Batch& batch = **leased;
  Result<Object> obj = builder.Build(batch);
  if (!obj.ok()) {
    source_.ReleaseBatch(batch.id).IgnoreError();
    return obj.status();
  }
  // Bandwidth cap: reserve this object's bytes; wait until the link has room for them.
  const int64_t now = clock_.MonotonicNowUs();
  if (int64_t wait = limiter_.Reserve(obj->body.size(), now); wait > 0) {
    if (deadline_mono_us != INT64_MAX && now + wait > deadline_mono_us) {
      source_.ReleaseBatch(batch.id).IgnoreError();
      return UnavailableError("the bandwidth cap (upload.bandwidth_limit) leaves no time to send more before the deadline");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.bandwidth_wait_us += wait;
    }
    if (!WaitFor(wait)) {
      source_.ReleaseBatch(batch.id).IgnoreError();
      return CancelledError("stopping");
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.in_flight;
  }
  Result<PutResult> put = sink_.Put(*obj);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --stats_.in_flight;
  }
  if (!put.ok()) return HandlePutFailure(batch, *obj, put.status());

  DeliveryReceipt receipt{obj->key, obj->body.size(), obj->sha256_hex, put->etag, clock_.SystemNowUs()};
  Status s = source_.AckBatch(batch.id, receipt);
  if (!s.ok()) {
    // The object is stored; the batch will be sent again under the same key (idempotent).
    EP_LOG_ERROR(kLog, "delivered %s but could not acknowledge it in the buffer: %s", obj->key.c_str(),
                 s.ToString().c_str());
    source_.ReleaseBatch(batch.id).IgnoreError();
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  refusals_.erase(batch.id);
  ++stats_.objects;
  if (batch.kind == BatchKind::kQuarantine) {
    ++stats_.quarantine_objects;
    stats_.quarantine_records += obj->readings;
    stats_.quarantine_bytes += obj->body.size();
    stats_.quarantine_raw_bytes += obj->raw_bytes;
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

Result<bool> Uploader::HandlePutFailure(const Batch& batch, const Object& obj, const Status& s) {
  int refusals = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failures;
    ++stats_.consecutive_failures;
    stats_.last_error = s.ToString();
    // Only a refusal of this object charges its budget; transient and shared failures never do.
    if (s.code() == StatusCode::kInvalidArgument) refusals = ++refusals_[batch.id];
  }
  if (refusals > 0 && !opt_.set_aside_dir.empty() && refusals >= opt_.poison_retry_budget) {
    // Before giving up on the object, make sure the destination accepts others: if the probe
    // fails too, the problem is shared (e.g. a proxy refusing everything) and the budget resets.
    ProbeReport probe = sink_.Probe();
    if (!probe.ran || probe.put.ok()) return SetAside(batch, obj, s, refusals);
    EP_LOG_WARN(kLog, "batch %s was refused %d times, but the destination refuses a probe object too (%s): treating "
                      "it as a destination problem, not setting the batch aside",
                batch.name.c_str(), refusals, probe.put.ToString().c_str());
    {
      std::lock_guard<std::mutex> lock(mu_);
      refusals_[batch.id] = 0;
    }
    source_.ReleaseBatch(batch.id).IgnoreError();
    return probe.put.code() == StatusCode::kInvalidArgument ? UnavailableError(probe.put.message()) : probe.put;
  }
  source_.ReleaseBatch(batch.id).IgnoreError();
  return s;
}

Result<bool> Uploader::SetAside(const Batch& batch, const Object& obj, const Status& why, int attempts) {
  FileSink local(opt_.set_aside_dir);
  const int64_t now = clock_.SystemNowUs();
  Object reason;
  reason.key = obj.key + ".reason.json";
  reason.body = ReasonJson(batch, obj, why, attempts, now);
  // The reason first: a crash in between leaves a reason without object, and the batch (still in
  // the buffer) is set aside again, overwriting both.
  Result<PutResult> r = local.Put(reason);
  if (r.ok()) r = local.Put(obj);
  if (!r.ok()) {
    EP_LOG_ERROR(kLog, "could not set batch %s aside in %s: %s; it stays in the buffer", batch.name.c_str(),
                 opt_.set_aside_dir.c_str(), r.status().ToString().c_str());
    source_.ReleaseBatch(batch.id).IgnoreError();
    return r.status();
  }
  const std::string path = local.root() + "/" + obj.key;
  DeliveryReceipt receipt{"set-aside:" + path, obj.body.size(), obj.sha256_hex, "", now};
  Status s = source_.AckBatch(batch.id, receipt);
  if (!s.ok()) {
    source_.ReleaseBatch(batch.id).IgnoreError();
    return s;
  }
  EP_LOG_ERROR(kLog, "set batch %s aside (%llu records) after the destination refused it %d times: %s. The object is "
                     "kept at %s (reason beside it); upload it by hand once the cause is fixed (docs/operations.md, "
                     "\"Uploads\")",
               batch.name.c_str(), static_cast<unsigned long long>(obj.readings), attempts, why.ToString().c_str(),
               path.c_str());
  std::lock_guard<std::mutex> lock(mu_);
  refusals_.erase(batch.id);
  ++stats_.set_aside_objects;
  stats_.set_aside_records += obj.readings;
  stats_.last_set_aside = path;
  stats_.consecutive_failures = 0;
  return true;
}

bool Uploader::WaitFor(int64_t us) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::microseconds(us), [&] { return stop_; });
  return !stop_;
}

bool Uploader::WaitForWindow() {
  while (true) {
    const int64_t until = opt_.windows.UntilOpenUs(clock_.SystemNowUs());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return false;
      stats_.outside_window = until > 0;
    }
    if (until == 0) return true;
    uint64_t suppressed = 0;
    if (window_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
      EP_LOG_NOTICE(kLog, "outside the upload windows (%s): next upload in %s; data stays in the buffer",
                    opt_.windows.Describe().c_str(), StrFormat("%.0f min", until / 60e6).c_str());
    if (!WaitFor(std::min(until, kWindowRecheckUs))) return false;
  }
}

void Uploader::OnFailure(const Status& s) {
  int64_t delay;
  uint64_t failures;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures = ++run_failures_;
  }
  if (s.code() == StatusCode::kInvalidArgument) {
    // This object only: retry it soon (its budget decides when it is set aside); others wait less.
    delay = opt_.retry_base_us;
  } else {
    delay = BackoffUs(failures, s.code());
  }
  if (s.code() == StatusCode::kFailedPrecondition) {
    uint64_t suppressed = 0;
    if (config_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
      EP_LOG_ERROR(kLog, "cannot deliver to %s: %s. The data stays in the buffer; fix the destination "
                   "settings (see docs/s3.md and docs/operations.md). Retrying every %llds (%llu similar failures not logged).",
                   sink_.Describe().c_str(), s.ToString().c_str(), static_cast<long long>(delay / 1'000'000),
                   static_cast<unsigned long long>(suppressed));
  } else if (s.code() != StatusCode::kCancelled) {
    EP_LOG_WARN(kLog, "delivery to %s failed (attempt %llu): %s; retrying in %.1fs", sink_.Describe().c_str(),
                static_cast<unsigned long long>(failures), s.ToString().c_str(), delay / 1e6);
  }
  std::lock_guard<std::mutex> lock(mu_);
  pause_until_mono_us_ = std::max(pause_until_mono_us_, clock_.MonotonicNowUs() + delay);
  cv_.notify_all();
}

void Uploader::Worker(int index) {
  ObjectBuilder builder(builder_.options());  // each worker compresses with its own context
  while (true) {
    if (!WaitForWindow()) return;
    int64_t pause;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pause = pause_until_mono_us_ - clock_.MonotonicNowUs();
    }
    if (pause > 0) {
      if (!WaitFor(pause)) return;
      continue;
    }
    Result<bool> r = DeliverWith(builder, false, INT64_MAX);
    if (r.ok()) {
      bool recovered = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (*r && run_failures_ > 0) {
          recovered = true;
          run_failures_ = 0;
        }
      }
      if (recovered) EP_LOG_NOTICE(kLog, "delivery to %s works again (worker %d)", sink_.Describe().c_str(), index);
      if (*r) continue;  // more may be ready
      if (!WaitFor(opt_.poll_interval_us)) return;
      continue;
    }
    if (r.status().code() == StatusCode::kCancelled) return;
    OnFailure(r.status());
  }
}

void Uploader::Run() {
  if (!WaitForWindow()) return;
  if (opt_.probe) {
    ProbeReport p = sink_.Probe();
    if (p.ran) {
      if (p.put.ok()) EP_LOG_NOTICE(kLog, "%s", p.summary.c_str());
      else EP_LOG_ERROR(kLog, "%s", p.summary.c_str());
      std::lock_guard<std::mutex> lock(mu_);
      stats_.probe = p.summary;
      stats_.clock_skew_us = p.clock_skew_us.value_or(0);
    }
  }
  std::vector<std::thread> helpers;
  for (int i = 1; i < opt_.concurrency; ++i) helpers.emplace_back([this, i] { Worker(i); });
  Worker(0);
  for (auto& t : helpers) t.join();
}

void Uploader::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

Status Uploader::Drain(int64_t deadline_mono_us) {
  {
    // Run() has returned (Stop() came first); waits inside the drain must work again.
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  if (int64_t until = opt_.windows.UntilOpenUs(clock_.SystemNowUs()); until > 0)
    return UnavailableError("outside the upload windows (" + opt_.windows.Describe() + "); nothing sent");
  std::lock_guard<std::mutex> lock(builder_mu_);
  while (clock_.MonotonicNowUs() < deadline_mono_us) {
    Result<bool> r = DeliverWith(builder_, true, deadline_mono_us);
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
