// `edgepipe status [--json]`: what the buffer holds (read-only, straight from the database, so it
// works whether or not the agent runs) plus the running agent's live counters from its status
// file (agent.status_file, Prometheus text refreshed every agent.stats_interval).
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/agent/metrics.h"
#include "edgepipe/agent/quality_report.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/file_util.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe::agent {
namespace {

using nlohmann::json;

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  else if (bytes >= 1024) snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

std::string Ago(double seconds) {
  if (seconds < 0) seconds = 0;
  char buf[32];
  if (seconds < 120) snprintf(buf, sizeof buf, "%.0f s ago", seconds);
  else if (seconds < 7200) snprintf(buf, sizeof buf, "%.0f min ago", seconds / 60);
  else if (seconds < 172800) snprintf(buf, sizeof buf, "%.1f h ago", seconds / 3600);
  else snprintf(buf, sizeof buf, "%.1f days ago", seconds / 86400);
  return buf;
}

std::string Iso(double unix_seconds) {
  return unix_seconds > 0 ? FormatIso8601Ms(static_cast<int64_t>(unix_seconds * 1e6)) : "";
}

unsigned long long U(double v) { return static_cast<unsigned long long>(v); }

// The agent's live view, when its status file exists.
struct Live {
  std::string path;
  bool present = false;
  std::string problem;  // why it could not be read
  std::vector<MetricSample> samples;
  double age_s = 0;     // since the snapshot was taken
  std::string state;    // "running", "stopped", "not responding"

  double V(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    return SampleValue(samples, name, labels, 0);
  }
};

Live ReadLive(const Config& c, int64_t now_us) {
  Live l;
  l.path = StatusFilePath(c);
  Result<std::string> text = ReadWholeFile(l.path);
  if (!text.ok()) {
    l.problem = text.status().code() == StatusCode::kNotFound
                    ? "no status file at " + l.path + " (the agent is not running, or has not written one yet)"
                    : text.status().message();
    return l;
  }
  Result<std::vector<MetricSample>> parsed = ParsePrometheusText(*text);
  if (!parsed.ok()) {
    l.problem = l.path + ": " + parsed.status().message();
    return l;
  }
  l.present = true;
  l.samples = std::move(*parsed);
  l.age_s = (now_us / 1e6) - l.V("edgepipe_snapshot_time_seconds");
  const int64_t pid = static_cast<int64_t>(l.V("edgepipe_process_id"));
  const bool alive = pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  if (l.V("edgepipe_up") < 1) l.state = "stopped";
  else if (!alive) l.state = "not running (exited without a clean stop)";
  else if (l.age_s > 3 * c.agent.stats_interval_us / 1e6 + 5) l.state = "not responding (status file is stale)";
  else l.state = "running";
  return l;
}

std::string VersionOf(const Live& l) {
  for (const MetricSample& s : l.samples)
    if (s.name == "edgepipe_build_info") {
      auto it = s.labels.find("version");
      if (it != s.labels.end()) return it->second;
    }
  return "";
}

// A source's type-specific counters (edgepipe_source_events_total{source=..., counter=...}).
std::map<std::string, unsigned long long> SourceCounters(const Live& l, const std::string& source) {
  std::map<std::string, unsigned long long> out;
  for (const MetricSample& s : l.samples)
    if (s.name == "edgepipe_source_events_total" && s.labels.count("source") && s.labels.at("source") == source &&
        s.labels.count("counter"))
      out[s.labels.at("counter")] = U(s.value);
  return out;
}

json LiveJson(const Live& l) {
  json j;
  j["status_file"] = l.path;
  if (!l.present) {
    j["state"] = "unknown";
    j["problem"] = l.problem;
    return j;
  }
  j["state"] = l.state;
  j["pid"] = static_cast<int64_t>(l.V("edgepipe_process_id"));
  j["version"] = VersionOf(l);
  j["started"] = Iso(l.V("edgepipe_start_time_seconds"));
  j["snapshot_time"] = Iso(l.V("edgepipe_snapshot_time_seconds"));
  j["snapshot_age_s"] = l.age_s;
  json rejected = json::object();
  for (const MetricSample& s : l.samples)
    if (s.name == "edgepipe_readings_rejected_total") rejected[s.labels.count("rule") ? s.labels.at("rule") : ""] = U(s.value);
  j["readings"] = {{"received", U(l.V("edgepipe_readings_received_total"))},
                   {"accepted", U(l.V("edgepipe_readings_accepted_total"))},
                   {"flagged", U(l.V("edgepipe_readings_flagged_total"))},
                   {"rejected", rejected},
                   {"duplicates_dropped", U(l.V("edgepipe_readings_duplicates_dropped_total"))},
                   {"dropped", U(l.V("edgepipe_readings_dropped_total"))}};
  j["uploads"] = {{"succeeded", U(l.V("edgepipe_uploads_succeeded_total"))},
                  {"failed", U(l.V("edgepipe_uploads_failed_total"))},
                  {"consecutive_failures", U(l.V("edgepipe_upload_consecutive_failures"))},
                  {"bytes", U(l.V("edgepipe_upload_bytes_total"))},
                  {"readings", U(l.V("edgepipe_upload_readings_total"))},
                  {"last_success", Iso(l.V("edgepipe_upload_last_success_timestamp_seconds"))}};
  j["buffer"] = {{"bytes", U(l.V("edgepipe_buffer_bytes"))},
                 {"max_bytes", U(l.V("edgepipe_buffer_max_bytes"))},
                 {"depth_readings", U(l.V("edgepipe_buffer_depth_readings"))},
                 {"memory_readings", U(l.V("edgepipe_buffer_memory_readings"))},
                 {"oldest_pending_age_s", l.V("edgepipe_buffer_oldest_pending_age_seconds")},
                 {"commit_errors", U(l.V("edgepipe_buffer_commit_errors_total"))},
                 {"writer_healthy", l.V("edgepipe_buffer_writer_healthy") > 0}};
  j["sources"] = json::array();
  for (const MetricSample& s : l.samples) {
    if (s.name != "edgepipe_source_state") continue;
    std::map<std::string, std::string> key = {{"source", s.labels.at("source")}};
    json counters = json::object();
    for (const auto& [name, value] : SourceCounters(l, s.labels.at("source"))) counters[name] = value;
    j["sources"].push_back({{"name", s.labels.at("source")},
                            {"type", s.labels.count("type") ? s.labels.at("type") : ""},
                            {"state", s.labels.count("state") ? s.labels.at("state") : ""},
                            {"up", l.V("edgepipe_source_up", key) > 0},
                            {"readings", U(l.V("edgepipe_source_readings_total", key))},
                            {"errors", U(l.V("edgepipe_source_errors_total", key))},
                            {"counters", counters}});
  }
  j["config_reload"] = {{"ok", U(l.V("edgepipe_config_reloads_total", {{"result", "ok"}}))},
                        {"failed", U(l.V("edgepipe_config_reloads_total", {{"result", "failed"}}))},
                        {"last_successful", l.V("edgepipe_config_last_reload_successful") > 0}};
  return j;
}

void PrintLive(const Live& l) {
  if (!l.present) {
    printf("agent:             unknown: %s\n", l.problem.c_str());
    return;
  }
  printf("agent:             %s (pid %lld, version %s, started %s; figures from %s)\n", l.state.c_str(),
         static_cast<long long>(l.V("edgepipe_process_id")), VersionOf(l).c_str(),
         Iso(l.V("edgepipe_start_time_seconds")).c_str(), Ago(l.age_s).c_str());
  std::string rejected;
  for (const MetricSample& s : l.samples)
    if (s.name == "edgepipe_readings_rejected_total")
      rejected += (rejected.empty() ? "" : ", ") + (s.labels.count("rule") ? s.labels.at("rule") : std::string("?")) +
                  ": " + std::to_string(U(s.value));
  printf("readings:          %llu received, %llu accepted (%llu flagged), %llu rejected%s, %llu duplicates dropped, "
         "%llu dropped (buffer full)\n",
         U(l.V("edgepipe_readings_received_total")), U(l.V("edgepipe_readings_accepted_total")),
         U(l.V("edgepipe_readings_flagged_total")),
         U([&] {
           double n = 0;
           for (const MetricSample& s : l.samples)
             if (s.name == "edgepipe_readings_rejected_total") n += s.value;
           return n;
         }()),
         rejected.empty() ? "" : (" (" + rejected + ")").c_str(), U(l.V("edgepipe_readings_duplicates_dropped_total")),
         U(l.V("edgepipe_readings_dropped_total")));
  printf("uploads:           %llu succeeded, %llu failed attempts (%llu failing in a row), %s sent\n",
         U(l.V("edgepipe_uploads_succeeded_total")), U(l.V("edgepipe_uploads_failed_total")),
         U(l.V("edgepipe_upload_consecutive_failures")), Human(U(l.V("edgepipe_upload_bytes_total"))).c_str());
  printf("buffer writer:     %s, %llu readings in memory, %llu failed commits\n",
         l.V("edgepipe_buffer_writer_healthy") > 0 ? "healthy" : "STALLED",
         U(l.V("edgepipe_buffer_memory_readings")), U(l.V("edgepipe_buffer_commit_errors_total")));
  bool first = true;
  for (const MetricSample& s : l.samples) {
    if (s.name != "edgepipe_source_state") continue;
    std::map<std::string, std::string> key = {{"source", s.labels.at("source")}};
    std::string extra;  // the source's own counters that are not zero
    for (const auto& [name, value] : SourceCounters(l, s.labels.at("source")))
      if (value) extra += ", " + name + " " + std::to_string(value);
    printf("%s%s (%s): %s, %llu readings, %llu errors%s\n", first ? "sources:           " : "                   ",
           s.labels.at("source").c_str(), s.labels.count("type") ? s.labels.at("type").c_str() : "?",
           s.labels.count("state") ? s.labels.at("state").c_str() : "?",
           U(l.V("edgepipe_source_readings_total", key)), U(l.V("edgepipe_source_errors_total", key)), extra.c_str());
    first = false;
  }
  if (l.V("edgepipe_config_last_reload_successful") < 1)
    printf("config reload:     LAST RELOAD FAILED: the agent runs on the previous configuration (see its log)\n");
}

}  // namespace

int CmdStatus(const std::string& path, bool as_json) {
  ParseResult pr = LoadConfigFile(path);
  if (!pr.config) {
    for (const auto& p : pr.problems) fprintf(stderr, "%s\n", p.ToString().c_str());
    return 78;  // EX_CONFIG, as every command
  }
  const Config& c = *pr.config;
  Result<buffer::Stats> st = buffer::ReadStats(c.buffer.path);
  if (!st.ok()) {
    fprintf(stderr, "edgepipe: %s\n", st.status().ToString().c_str());
    return 1;
  }
  const int64_t now = RealClock::Default().SystemNowUs();
  Live live = ReadLive(c, now);
  if (as_json) {
    json j = {{"device", c.device.id},
              {"buffer_path", c.buffer.path},
              {"pending_readings", st->pending_readings},
              {"claimed_batches", st->claimed_batches},
              {"claimed_readings", st->claimed_readings},
              {"oldest_pending", st->oldest_pending_ts_us ? FormatIso8601Ms(st->oldest_pending_ts_us) : ""},
              {"oldest_pending_age_s", st->oldest_pending_ts_us ? (now - st->oldest_pending_ts_us) / 1e6 : 0.0},
              {"quarantine_rows", st->quarantine_rows},
              {"gap_rows", st->gap_rows},
              {"db_bytes", st->db_bytes},
              {"max_bytes", c.buffer.max_size_bytes},
              {"readings_committed", st->readings_committed},
              {"readings_acked", st->readings_acked},
              {"batches_acked", st->batches_acked},
              {"readings_dropped", st->readings_dropped},
              {"last_upload", st->last_ack_time_us ? FormatIso8601Ms(st->last_ack_time_us) : ""},
              {"last_upload_key", st->last_ack_key},
              {"agent", LiveJson(live)}};
    j["quality"] = json::parse(QualityStatusJson(c.buffer.path));  // issue 7: per sensor per rule
    printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  printf("device:            %s\n", c.device.id.c_str());
  PrintLive(live);
  printf("buffer:            %s (%s on disk of %s)\n", c.buffer.path.c_str(), Human(st->db_bytes).c_str(),
         Human(c.buffer.max_size_bytes).c_str());
  printf("pending readings:  %llu in %llu chunks\n", static_cast<unsigned long long>(st->pending_readings),
         static_cast<unsigned long long>(st->pending_chunks));
  printf("claimed batches:   %llu (%llu readings awaiting confirmation)\n",
         static_cast<unsigned long long>(st->claimed_batches), static_cast<unsigned long long>(st->claimed_readings));
  if (st->oldest_pending_ts_us)
    printf("oldest pending:    %s (%s)\n", FormatIso8601Ms(st->oldest_pending_ts_us).c_str(),
           Ago((now - st->oldest_pending_ts_us) / 1e6).c_str());
  else
    printf("oldest pending:    -\n");
  if (st->last_ack_time_us)
    printf("last upload:       %s (%s) %s\n", FormatIso8601Ms(st->last_ack_time_us).c_str(),
           Ago((now - st->last_ack_time_us) / 1e6).c_str(), st->last_ack_key.c_str());
  else
    printf("last upload:       never\n");
  printf("quarantine rows:   %llu\n", static_cast<unsigned long long>(st->quarantine_rows));
  printf("gap records:       %llu\n", static_cast<unsigned long long>(st->gap_rows));
  printf("lifetime:          %llu committed, %llu delivered in %llu batches, %llu dropped\n",
         static_cast<unsigned long long>(st->readings_committed), static_cast<unsigned long long>(st->readings_acked),
         static_cast<unsigned long long>(st->batches_acked), static_cast<unsigned long long>(st->readings_dropped));
  printf("%s", QualityStatusText(c.buffer.path).c_str());  // issue 7: per sensor per rule
  return 0;
}

}  // namespace edgepipe::agent
