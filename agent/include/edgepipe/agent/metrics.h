// Live counters of a running agent in the Prometheus text exposition format (version 0.0.4).
// The same text is served by the optional HTTP endpoint (agent.metrics_listen, loopback only),
// written atomically to the status file (agent.status_file, also usable by node_exporter's
// textfile collector) and read back by `edgepipe status`. Every metric is listed, with the alarm
// it feeds, in docs/operations.md ("Metrics").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/agent/agent.h"
#include "edgepipe/core/status.h"

namespace edgepipe::agent {

// A point-in-time view of the agent.
struct AgentSnapshot {
  int64_t time_us = 0;        // wall clock when taken
  int64_t start_time_us = 0;  // wall clock when the agent started
  int64_t pid = 0;
  std::string version;
  std::string device;
  bool running = true;        // false in the final snapshot written on exit
  RunSummary summary;         // readings, buffer, uploads, sources
  uint64_t buffer_max_bytes = 0;
  bool writer_healthy = true; // the buffer writer is not stuck in one commit
  bool watchdog_enabled = false;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  bool last_reload_ok = true;
  int64_t last_reload_time_us = 0;  // 0: never reloaded
};

// The status file of a configuration: agent.status_file (relative to the config file's
// directory), or edgepipe-status.prom in the buffer database's directory.
std::string StatusFilePath(const Config& config);

// A source's state without its detail ("disconnected: EOF" -> "disconnected"), for labels.
std::string SourceStateLabel(const std::string& state);
// False for states that mean "not delivering" (disconnected, connecting, waiting for the peer,
// stopped, error); true otherwise (running, connected, idle, receiving, ...).
bool SourceStateIsUp(const std::string& state);

// Renders every metric with # HELP and # TYPE lines.
std::string RenderPrometheus(const AgentSnapshot& s);

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
// Parses the text format (comments skipped; label values unescaped). kInvalidArgument naming the
// line on a malformed sample.
Result<std::vector<MetricSample>> ParsePrometheusText(std::string_view text);

// Lookup helpers over parsed samples: the first sample with `name` whose labels include all of
// `labels`; `fallback` when there is none.
double SampleValue(const std::vector<MetricSample>& samples, const std::string& name,
                   const std::map<std::string, std::string>& labels = {}, double fallback = 0);

// Parses "127.0.0.1:9464", "[::1]:9464" or "localhost:9464". Only loopback addresses are
// accepted (the endpoint has no authentication). Returns an empty string and fills host/port on
// success, or a message saying what is wrong.
std::string ParseLoopbackListen(const std::string& text, std::string* host, int* port);

}  // namespace edgepipe::agent
