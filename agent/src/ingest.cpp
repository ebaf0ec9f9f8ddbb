// Ingest: the validation step between the sources and the buffer, once per message or frame
// (hot: compiled -O2, unlike the Agent's wiring in agent.cpp; cmake/SizeOptimized.cmake). The
// clock guard's part is in ingest_clock.cpp.
#include <algorithm>
#include <mutex>

#include "edgepipe/agent/agent.h"

namespace edgepipe::agent {

Ingest::Ingest(const ValidationConfig& config, Clock& clock, ReadingSink& buffer)
    : validator_(config, clock), buffer_(buffer) {}

Result<uint64_t> Ingest::Append(std::span<const Reading> readings) { return AppendWithState(readings, {}); }

void Ingest::SetAcceptedHook(AcceptedHook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  accepted_hook_ = std::move(hook);
}

void Ingest::Seed(const std::vector<Reading>& stored) {
  std::lock_guard<std::mutex> lock(mu_);
  validator_.Seed(stored);
}

Result<uint64_t> Ingest::AppendWithState(std::span<const Reading> readings, const SourceState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  scratch_passed_.assign(readings.begin(), readings.end());
  return ProcessLocked(state);
}

Result<uint64_t> Ingest::AppendWithStateOwned(std::vector<Reading>& readings, const SourceState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  scratch_passed_.swap(readings);  // the caller gets the previous scratch back: both keep their memory
  return ProcessLocked(state);
}

Result<uint64_t> Ingest::AppendWithCell(std::vector<Reading>& readings, const StateCell& cell) {
  std::lock_guard<std::mutex> lock(mu_);
  scratch_passed_.swap(readings);
  return ProcessLocked(SourceState{}, &cell);
}

Result<uint64_t> Ingest::ProcessLocked(const SourceState& state, const StateCell* cell) {
  // Scratch vectors kept between calls (under the lock): no allocation per message. The
  // readings that pass stay in `passed` (validated in place).
  std::vector<Reading>& passed = scratch_passed_;
  std::vector<QuarantineRecord>& rejected = scratch_rejected_;
  rejected.clear();
  if (guard_) EP_RETURN_IF_ERROR(HoldLocked(passed));  // clock unsynchronised: held, not validated yet
  validator_.Process(passed, &rejected);
  uint64_t ticket = 0;
  // When the buffer refuses, the source keeps (or re-sends) these readings: the validator must
  // forget them, or the retry would be dropped as exact duplicates (silent loss).
  for (const QuarantineRecord& q : rejected) {
    Result<uint64_t> t = buffer_.Quarantine(q);
    if (!t.ok()) {
      validator_.Forget();
      return t.status();
    }
    ticket = std::max(ticket, *t);
  }
  // The state is committed even when every reading was rejected or dropped: the source has
  // still consumed its input up to this point.
  if (!passed.empty() || !state.key.empty() || cell) {
    // The buffer's AppendWithCell reads `passed` without taking it (the hook below needs it).
    Result<uint64_t> t = cell ? buffer_.AppendWithCell(passed, *cell) : buffer_.AppendWithState(passed, state);
    if (!t.ok()) {
      validator_.Forget();
      return t.status();
    }
    ticket = std::max(ticket, *t);
    if (accepted_hook_ && !passed.empty()) accepted_hook_(passed);
  }
  return ticket;
}

Result<uint64_t> Ingest::Quarantine(const QuarantineRecord& record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++source_rejects_[record.rule];
  }
  return buffer_.Quarantine(record);
}

ValidationStats Ingest::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ValidationStats s = validator_.stats();
  for (const auto& [rule, n] : source_rejects_) s.rejected[rule] += n;
  return s;
}

}  // namespace edgepipe::agent
