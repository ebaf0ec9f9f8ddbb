// Prometheus text rendering and parsing of the agent's live counters (see metrics.h).
#include "edgepipe/agent/metrics.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "edgepipe/core/log.h"

namespace edgepipe::agent {
namespace {

std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Builds the exposition text one metric family at a time.
class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += StrFormat("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  }
  void Int(uint64_t v, const Labels& labels = {}) {
    out_ += name_ + LabelText(labels) + " " + std::to_string(v) + "\n";
  }
  void Int(int64_t v, const Labels& labels = {}) {
    out_ += name_ + LabelText(labels) + " " + std::to_string(v) + "\n";
  }
  void Real(double v, const Labels& labels = {}) {
    out_ += name_ + LabelText(labels) + " " + StrFormat("%.3f", v) + "\n";
  }
  void Seconds(int64_t us, const Labels& labels = {}) { Real(static_cast<double>(us) / 1e6, labels); }
  std::string Take() { return std::move(out_); }

 private:
  static std::string LabelText(const Labels& labels) {
    if (labels.empty()) return "";
    std::string s = "{";
    for (size_t i = 0; i < labels.size(); ++i)
      s += (i ? "," : "") + labels[i].first + "=\"" + EscapeLabel(labels[i].second) + "\"";
    return s + "}";
  }
  std::string name_;
  std::string out_;
};

void RenderProcess(Writer& w, const AgentSnapshot& s) {
  w.Family("edgepipe_build_info", "gauge", "Version and device id of the running agent (always 1).");
  w.Int(uint64_t{1}, {{"version", s.version}, {"device", s.device}});
  w.Family("edgepipe_up", "gauge", "1 while the agent runs; 0 in the final snapshot written when it exits.");
  w.Int(uint64_t{s.running ? 1u : 0u});
  w.Family("edgepipe_process_id", "gauge", "PID of the agent process.");
  w.Int(s.pid);
  w.Family("edgepipe_start_time_seconds", "gauge", "Wall-clock time the agent started (Unix seconds).");
  w.Seconds(s.start_time_us);
  w.Family("edgepipe_snapshot_time_seconds", "gauge", "Wall-clock time these values were taken (Unix seconds).");
  w.Seconds(s.time_us);
}

void RenderReadings(Writer& w, const AgentSnapshot& s) {
  const ValidationStats& v = s.summary.validation;
  w.Family("edgepipe_readings_received_total", "counter", "Readings handed to validation by all sources.");
  w.Int(v.received);
  w.Family("edgepipe_readings_accepted_total", "counter", "Readings that passed validation and went to the buffer.");
  w.Int(v.passed);
  w.Family("edgepipe_readings_flagged_total", "counter", "Accepted readings carrying a quality flag.");
  w.Int(v.flagged);
  w.Family("edgepipe_readings_rejected_total", "counter", "Readings rejected to quarantine, by rule.");
  for (const auto& [rule, n] : v.rejected) w.Int(n, {{"rule", rule}});
  w.Family("edgepipe_readings_duplicates_dropped_total", "counter",
           "Exact repeats of stored readings dropped (a peer re-sending what was already stored).");
  w.Int(v.duplicates_dropped);
  w.Family("edgepipe_readings_dropped_total", "counter",
           "Readings evicted or refused because the buffer was full (lifetime of the buffer; each leaves a gap record).");
  w.Int(s.summary.buffer.readings_dropped);
}

void RenderBuffer(Writer& w, const AgentSnapshot& s) {
  const buffer::Stats& b = s.summary.buffer;
  w.Family("edgepipe_buffer_bytes", "gauge", "Size of the buffer database and its WAL on disk.");
  w.Int(b.db_bytes);
  w.Family("edgepipe_buffer_max_bytes", "gauge", "Disk budget of the buffer (buffer.max_size).");
  w.Int(s.buffer_max_bytes);
  w.Family("edgepipe_buffer_depth_readings", "gauge",
           "Readings not yet delivered: pending + claimed + in memory.");
  w.Int(b.pending_readings + b.claimed_readings + b.memory_readings);
  w.Family("edgepipe_buffer_pending_readings", "gauge", "Committed readings not yet in an upload batch.");
  w.Int(b.pending_readings);
  w.Family("edgepipe_buffer_claimed_readings", "gauge", "Readings in batches waiting for the destination to confirm.");
  w.Int(b.claimed_readings);
  w.Family("edgepipe_buffer_memory_readings", "gauge", "Readings accepted but not yet committed to disk.");
  w.Int(b.memory_readings);
  const int64_t age = b.oldest_pending_ts_us ? std::max<int64_t>(0, s.time_us - b.oldest_pending_ts_us) : 0;
  w.Family("edgepipe_buffer_oldest_pending_age_seconds", "gauge",
           "Age (by its own timestamp) of the oldest reading not yet in a batch; 0 when none is pending.");
  w.Seconds(age);
  w.Family("edgepipe_buffer_oldest_pending_timestamp_seconds", "gauge",
           "Timestamp of the oldest reading not yet in a batch (Unix seconds); 0 when none is pending.");
  w.Seconds(b.oldest_pending_ts_us);
  w.Family("edgepipe_buffer_quarantine_rows", "gauge", "Rejected readings held in the buffer's quarantine table.");
  w.Int(b.quarantine_rows);
  w.Family("edgepipe_buffer_gap_records", "gauge", "Gap records (evicted or missing data) not yet uploaded.");
  w.Int(b.gap_rows);
  w.Family("edgepipe_buffer_commits_total", "counter", "Group commits to the buffer since start.");
  w.Int(b.commits);
  w.Family("edgepipe_buffer_commit_errors_total", "counter",
           "Failed commits since start (disk full, I/O error); readings stay in memory and are retried.");
  w.Int(b.commit_errors);
  w.Family("edgepipe_buffer_journal_writes_total", "counter",
           "Waits for durability (MQTT QoS 1, serial acknowledgements) answered by the acknowledgement journal "
           "instead of a commit, since start.");
  w.Int(b.journal_writes);
  w.Family("edgepipe_buffer_journal_replayed_appends", "gauge",
           "Appends replayed from the acknowledgement journal when the buffer was opened (acknowledged before "
           "the last stop, not yet committed then).");
  w.Int(b.journal_replayed);
  w.Family("edgepipe_buffer_journal_buffer_bytes", "gauge",
           "Appends encoded for the acknowledgement journal and not written to it yet (memory); bounded by the "
           "memory queue.");
  w.Int(b.journal_buffer_bytes);
  w.Family("edgepipe_buffer_writer_healthy", "gauge",
           "1 unless the buffer writer is stuck in one database operation (a commit, merge or reopen) longer "
           "than agent.writer_stall_timeout, or its thread has exited.");
  w.Int(uint64_t{s.writer_healthy ? 1u : 0u});
}

void RenderUploads(Writer& w, const AgentSnapshot& s) {
  const uploader::UploaderStats& u = s.summary.uploads;
  w.Family("edgepipe_uploads_succeeded_total", "counter", "Objects the destination confirmed since start.");
  w.Int(u.objects);
  w.Family("edgepipe_uploads_failed_total", "counter", "Failed upload attempts since start (each is retried).");
  w.Int(u.failures);
  w.Family("edgepipe_upload_bytes_total", "counter", "Compressed bytes the destination confirmed since start.");
  w.Int(u.bytes);
  w.Family("edgepipe_upload_readings_total", "counter", "Readings in confirmed objects since start.");
  w.Int(u.readings);
  w.Family("edgepipe_upload_quarantine_records_total", "counter", "Quarantine records uploaded since start.");
  w.Int(u.quarantine_records);
  w.Family("edgepipe_upload_consecutive_failures", "gauge", "Upload attempts failed in a row (0 after a success).");
  w.Int(u.consecutive_failures);
  // The buffer's ledger survives restarts; the uploader's own time covers a run without acks yet.
  const int64_t last = std::max(u.last_success_us, s.summary.buffer.last_ack_time_us);
  w.Family("edgepipe_upload_last_success_timestamp_seconds", "gauge",
           "Wall-clock time of the last confirmed upload (Unix seconds); 0 when there was none.");
  w.Seconds(last);
}

void RenderSources(Writer& w, const AgentSnapshot& s) {
  w.Family("edgepipe_source_up", "gauge", "1 when the source is connected / running, 0 otherwise.");
  for (const auto& h : s.summary.sources) w.Int(uint64_t{SourceStateIsUp(h.state) ? 1u : 0u}, {{"source", h.name}, {"type", h.type}});
  w.Family("edgepipe_source_state", "gauge", "The source's current state as a label (always 1).");
  for (const auto& h : s.summary.sources)
    w.Int(uint64_t{1}, {{"source", h.name}, {"type", h.type}, {"state", SourceStateLabel(h.state)}});
  w.Family("edgepipe_source_readings_total", "counter", "Readings the source handed to validation since start.");
  for (const auto& h : s.summary.sources) w.Int(h.readings, {{"source", h.name}, {"type", h.type}});
  w.Family("edgepipe_source_errors_total", "counter", "Input errors of the source (malformed input, I/O errors).");
  for (const auto& h : s.summary.sources) w.Int(h.errors, {{"source", h.name}, {"type", h.type}});
  w.Family("edgepipe_source_events_total", "counter",
           "Source-specific counters (serial: frames, CRC errors, resyncs; MQTT: reconnects, ...; docs/operations.md).");
  for (const auto& h : s.summary.sources)
    for (const auto& [name, n] : h.counters) w.Int(n, {{"source", h.name}, {"type", h.type}, {"counter", name}});
}

void RenderService(Writer& w, const AgentSnapshot& s) {
  w.Family("edgepipe_config_reloads_total", "counter", "SIGHUP configuration reloads, by result.");
  w.Int(s.reloads_ok, {{"result", "ok"}});
  w.Int(s.reloads_failed, {{"result", "failed"}});
  w.Family("edgepipe_config_last_reload_successful", "gauge",
           "0 when the last reload found an invalid configuration (the agent runs on the previous one).");
  w.Int(uint64_t{s.last_reload_ok ? 1u : 0u});
  w.Family("edgepipe_systemd_watchdog_enabled", "gauge", "1 when systemd supervises the agent with WatchdogSec=.");
  w.Int(uint64_t{s.watchdog_enabled ? 1u : 0u});
}

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

}  // namespace

std::string SourceStateLabel(const std::string& state) {
  // "disconnected: <reason>" -> "disconnected": reasons would make a new series each time.
  return state.substr(0, state.find(':'));
}

bool SourceStateIsUp(const std::string& state) {
  const std::string s = SourceStateLabel(state);
  for (const char* down : {"disconnected", "connecting", "waiting", "stopped", "error", "failed", "closed"})
    if (s.rfind(down, 0) == 0) return false;
  return !s.empty();
}

std::string RenderPrometheus(const AgentSnapshot& s) {
  Writer w;
  RenderProcess(w, s);
  RenderReadings(w, s);
  RenderBuffer(w, s);
  RenderUploads(w, s);
  RenderSources(w, s);
  RenderService(w, s);
  return w.Take();
}

Result<std::vector<MetricSample>> ParsePrometheusText(std::string_view text) {
  std::vector<MetricSample> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const char* what) {
      return InvalidArgumentError(StrFormat("metrics line %zu: %s: %.*s", line_no, what, static_cast<int>(line.size()),
                                            line.data()));
    };
    MetricSample s;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    if (i == 0) return bad("expected a metric name");
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t k = i;
        while (i < line.size() && IsNameChar(line[i], i == k)) ++i;
        if (i == k || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return bad("malformed label");
        std::string key(line.substr(k, i - k)), value;
        i += 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        if (i >= line.size()) return bad("unterminated label value");
        ++i;  // closing quote
        s.labels[key] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return bad("unterminated label set");
      ++i;  // '}'
    }
    while (i < line.size() && line[i] == ' ') ++i;
    std::string value(line.substr(i));
    size_t sp = value.find(' ');  // an optional timestamp follows
    if (sp != std::string::npos) value.resize(sp);
    if (value.empty()) return bad("missing value");
    char* end = nullptr;
    errno = 0;
    s.value = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') return bad("value is not a number");
    out.push_back(std::move(s));
  }
  return out;
}

double SampleValue(const std::vector<MetricSample>& samples, const std::string& name,
                   const std::map<std::string, std::string>& labels, double fallback) {
  for (const MetricSample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (match) return s.value;
  }
  return fallback;
}

std::string ParseLoopbackListen(const std::string& text, std::string* host, int* port) {
  const std::string example = " (e.g. \"127.0.0.1:9464\" or \"[::1]:9464\")";
  std::string h, p;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "expected [IPv6]:port" + example;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return "expected host:port" + example;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return "port '" + p + "' is not a number" + example;
  int n = std::atoi(p.c_str());
  if (n < 1 || n > 65535) return "port " + p + " is out of range (1 to 65535)";
  if (h == "localhost") h = "127.0.0.1";
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
    if ((ntohl(a4.s_addr) >> 24) != 127)
      return "address " + h + " is not a loopback address: the metrics endpoint has no authentication and "
             "only listens on 127.0.0.0/8 or ::1 (expose it through a reverse proxy or an SSH tunnel)";
  } else if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&a6))
      return "address " + h + " is not a loopback address: the metrics endpoint has no authentication and "
             "only listens on 127.0.0.0/8 or ::1 (expose it through a reverse proxy or an SSH tunnel)";
  } else {
    return "'" + h + "' is not an IP address or 'localhost'" + example;
  }
  *host = h;
  *port = n;
  return "";
}

}  // namespace edgepipe::agent
