// Data-quality counters per sensor per rule, as the running agent leaves them for
// `edgepipe status` (a JSON file beside the buffer, rewritten every agent.status_interval and at
// shutdown) and as the periodic log line shows them. Counters add up across restarts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/agent/clock_sync.h"
#include "edgepipe/agent/validator.h"
#include "edgepipe/core/status.h"

namespace edgepipe::agent {

struct QualityReport {
  int64_t since_us = 0;    // when counting started (first start of an agent on this buffer)
  int64_t updated_us = 0;  // last write
  QualityCounters total;
  std::vector<SensorQuality> sensors;  // sensor id order
  // [validation.clock], when enabled.
  bool clock_guarded = false;
  bool clock_synchronized = true;
  uint64_t clock_held = 0;       // readings in the hold file
  uint64_t clock_restamped = 0;  // released re-stamped (these counters restart with the agent)
  uint64_t clock_unfixable = 0;  // released flagged clock_unsynced
};

// "<buffer path>.quality.json"
std::string QualityReportPath(const std::string& buffer_path);

std::string QualityReportToJson(const QualityReport& r);
Result<QualityReport> QualityReportFromJson(const std::string& text);
// Written to a temporary file and renamed over `path` (a reader never sees half a file).
Status WriteQualityReport(const std::string& path, const QualityReport& r);
// kNotFound when there is no file yet.
Result<QualityReport> ReadQualityReport(const std::string& path);

// Counters of `base` (an earlier run) plus `now`; times and clock state from `now`, `since`
// from `base`.
QualityReport AddReports(const QualityReport& base, const QualityReport& now);

// Human-readable block for `edgepipe status`: totals per rule, then the `max_sensors` sensors
// with the most caught readings.
std::string QualityReportText(const QualityReport& r, size_t max_sensors = 10);

// The quality part of the periodic log line, e.g.
// "quality: rejected range 12, sentinel 3; flagged stuck 40 (worst: beach/temp 38)". "" when nothing was caught.
std::string QualityLogSummary(const QualityCounters& total, const std::vector<SensorQuality>& sensors,
                              size_t max_sensors = 3);

// For `edgepipe status` (main.cpp): the report of the agent using `buffer_path`, as text (a
// line saying there is none yet when absent) or as JSON ("null" when absent).
std::string QualityStatusText(const std::string& buffer_path);
std::string QualityStatusJson(const std::string& buffer_path);

}  // namespace edgepipe::agent
