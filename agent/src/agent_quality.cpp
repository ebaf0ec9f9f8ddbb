// The agent's data-quality plumbing (issue 7): the [validation.clock] guard and the quality
// report file that `edgepipe status` reads (edgepipe/agent/quality_report.h).
#include "edgepipe/agent/agent.h"
#include "edgepipe/core/log.h"

namespace edgepipe::agent {
namespace {
constexpr const char* kLog = "validation";
}

Status Agent::StartQuality() {
  const std::string path = QualityReportPath(config_.buffer.path);
  Result<QualityReport> base = ReadQualityReport(path);
  if (base.ok()) {
    quality_base_ = *base;
  } else if (base.status().code() != StatusCode::kNotFound) {
    // Only statistics: start counting afresh rather than refuse to run.
    EP_LOG_WARN(kLog, "ignoring the quality counters of earlier runs: %s", base.status().ToString().c_str());
  }
  if (!quality_base_.since_us) quality_base_.since_us = clock_.SystemNowUs();
  if (config_.validation.clock.mode == ClockMode::kOff) return Status::Ok();
  Status s = ingest_->EnableClockGuard(MakeClockGuard(config_.validation.clock, config_.buffer.path,
                                                      config_.buffer.sync == buffer::SyncMode::kFull, clock_));
  if (!s.ok()) return Status(s.code(), "validation.clock: " + s.message());
  return Status::Ok();
}

QualityReport Agent::Quality() {
  QualityReport now;
  now.updated_us = clock_.SystemNowUs();
  if (ingest_) {
    now.total = ingest_->stats();
    now.sensors = ingest_->SensorReport();
    if (auto c = ingest_->clock_stats()) {
      now.clock_guarded = true;
      now.clock_synchronized = c->synchronized;
      now.clock_held = c->held_readings;
      now.clock_restamped = c->restamped;
      now.clock_unfixable = c->unfixable;
    }
  }
  return AddReports(quality_base_, now);
}

// "; quality: rejected range 12; flagged stuck 40 (worst: ...)" for the status line, "" when
// no rule caught anything.
std::string Agent::QualityLogSuffix() {
  if (!ingest_) return "";
  std::string q = QualityLogSummary(ingest_->stats(), ingest_->SensorReport());
  return q.empty() ? q : "; " + q;
}

void Agent::SaveQuality() {
  if (!ingest_) return;
  Status t = ingest_->Tick();
  if (!t.ok()) EP_LOG_WARN(kLog, "releasing held readings failed (retrying later): %s", t.ToString().c_str());
  Status s = WriteQualityReport(QualityReportPath(config_.buffer.path), Quality());
  if (!s.ok()) EP_LOG_WARN(kLog, "cannot write the quality report: %s", s.ToString().c_str());
}

}  // namespace edgepipe::agent
