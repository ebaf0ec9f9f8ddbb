// Ingest's side of [validation.clock]: readings stamped while the system clock is unsynchronised
// are held by the ClockGuard (before validation: their timestamps are not yet right), and
// released through validation into the buffer once they can be re-stamped (or once they must
// go out flagged clock_unsynced). See edgepipe/agent/clock_sync.h.
#include "edgepipe/agent/agent.h"
#include "edgepipe/core/log.h"

namespace edgepipe::agent {

Status Ingest::EnableClockGuard(std::unique_ptr<ClockGuard> guard) {
  Result<std::optional<std::string>> state = buffer_.LoadState(ClockGuard::kStateKey);
  if (!state.ok()) return state.status();
  EP_RETURN_IF_ERROR(guard->Open(*state));
  std::lock_guard<std::mutex> lock(mu_);
  guard_ = std::move(guard);
  return ReleaseHeldLocked();
}

Status Ingest::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!guard_) return Status::Ok();
  return ReleaseHeldLocked();
}

std::optional<ClockGuardStats> Ingest::clock_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!guard_) return std::nullopt;
  return guard_->stats();
}

std::vector<SensorQuality> Ingest::SensorReport() const {
  std::lock_guard<std::mutex> lock(mu_);
  return validator_.SensorReport();
}

// Releases what the guard says is due, oldest first, each chunk committed to the buffer with the
// guard's state and waited for before the guard forgets it (so nothing is lost or doubled).
Status Ingest::ReleaseHeldLocked() {
  guard_->Poll();
  validator_.SetClockTrusted(guard_->synchronized());
  while (true) {
    Result<std::optional<HeldRelease>> next = guard_->NextRelease();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return Status::Ok();
    HeldRelease& rel = **next;
    std::vector<Reading> passed;
    std::vector<QuarantineRecord> rejected;
    validator_.Process(rel.readings, &passed, &rejected);
    // On failure the release is retried later with the same readings: forget them (see
    // Ingest::AppendWithState).
    for (const QuarantineRecord& q : rejected) {
      Result<uint64_t> t = buffer_.Quarantine(q);
      if (!t.ok()) {
        validator_.Forget();
        return t.status();
      }
    }
    Result<uint64_t> t = buffer_.AppendWithState(passed, rel.state);
    if (!t.ok()) {
      validator_.Forget();
      return t.status();
    }
    EP_RETURN_IF_ERROR(buffer_.WaitDurable(*t));
    if (accepted_hook_ && !passed.empty()) accepted_hook_(passed);
    EP_RETURN_IF_ERROR(guard_->Released(rel));
  }
}

// Moves the readings the guard must hold out of `in` into the hold file.
Status Ingest::HoldLocked(std::vector<Reading>& in) {
  EP_RETURN_IF_ERROR(ReleaseHeldLocked());
  if (guard_->synchronized()) return Status::Ok();
  std::vector<Reading> held, rest;
  for (Reading& r : in) (guard_->ShouldHold(r) ? held : rest).push_back(std::move(r));
  if (held.empty()) {
    in = std::move(rest);
    return Status::Ok();
  }
  Status s = guard_->Hold(held);
  if (!s.ok()) {
    // Nothing of this call is acknowledged: the source keeps (or re-sends) its readings.
    return Status(s.code(), "cannot hold readings while the clock is unsynchronised: " + s.message());
  }
  in = std::move(rest);
  return Status::Ok();
}

}  // namespace edgepipe::agent
