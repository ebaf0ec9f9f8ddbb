#include "edgepipe/agent/quality_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "edgepipe/core/file_util.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe::agent {
namespace {

using nlohmann::json;

json CountersJson(const QualityCounters& c) {
  return json{{"received", c.received},     {"passed", c.passed},   {"flagged", c.flagged},
              {"duplicates_dropped", c.duplicates_dropped}, {"rejected", c.rejected}, {"flags", c.flags}};
}

QualityCounters CountersFrom(const json& j) {
  QualityCounters c;
  c.received = j.value("received", uint64_t{0});
  c.passed = j.value("passed", uint64_t{0});
  c.flagged = j.value("flagged", uint64_t{0});
  c.duplicates_dropped = j.value("duplicates_dropped", uint64_t{0});
  if (j.contains("rejected")) c.rejected = j.at("rejected").get<std::map<std::string, uint64_t>>();
  if (j.contains("flags")) c.flags = j.at("flags").get<std::map<std::string, uint64_t>>();
  return c;
}

void Add(QualityCounters& a, const QualityCounters& b) {
  a.received += b.received;
  a.passed += b.passed;
  a.flagged += b.flagged;
  a.duplicates_dropped += b.duplicates_dropped;
  for (const auto& [k, v] : b.rejected) a.rejected[k] += v;
  for (const auto& [k, v] : b.flags) a.flags[k] += v;
}

uint64_t Caught(const QualityCounters& c) {
  uint64_t n = c.rejected_total();
  for (const auto& [k, v] : c.flags) n += v;
  return n;
}

std::string RuleList(const std::map<std::string, uint64_t>& m) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string s;
  for (const auto& [k, n] : v) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(n);
  return s;
}

std::vector<const SensorQuality*> Worst(const std::vector<SensorQuality>& sensors, size_t n) {
  std::vector<const SensorQuality*> v;
  for (const auto& s : sensors)
    if (Caught(s.counters)) v.push_back(&s);
  std::stable_sort(v.begin(), v.end(),
                   [](const SensorQuality* a, const SensorQuality* b) { return Caught(a->counters) > Caught(b->counters); });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace

std::string QualityReportPath(const std::string& buffer_path) { return buffer_path + ".quality.json"; }

std::string QualityReportToJson(const QualityReport& r) {
  json j;
  j["since"] = r.since_us ? FormatIso8601Ms(r.since_us) : "";
  j["since_us"] = r.since_us;
  j["updated"] = r.updated_us ? FormatIso8601Ms(r.updated_us) : "";
  j["updated_us"] = r.updated_us;
  j["total"] = CountersJson(r.total);
  json sensors = json::object();
  for (const auto& s : r.sensors) sensors[s.sensor] = CountersJson(s.counters);
  j["sensors"] = sensors;
  if (r.clock_guarded)
    j["clock"] = {{"synchronized", r.clock_synchronized}, {"held_readings", r.clock_held},
                  {"restamped", r.clock_restamped}, {"unfixable", r.clock_unfixable}};
  return j.dump(1);
}

Result<QualityReport> QualityReportFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return DataLossError("quality report is not a JSON object");
  try {
    QualityReport r;
    r.since_us = j.value("since_us", int64_t{0});
    r.updated_us = j.value("updated_us", int64_t{0});
    if (j.contains("total")) r.total = CountersFrom(j.at("total"));
    if (j.contains("sensors"))
      for (const auto& [name, c] : j.at("sensors").items()) r.sensors.push_back({name, CountersFrom(c)});
    if (j.contains("clock")) {
      const json& c = j.at("clock");
      r.clock_guarded = true;
      r.clock_synchronized = c.value("synchronized", true);
      r.clock_held = c.value("held_readings", uint64_t{0});
      r.clock_restamped = c.value("restamped", uint64_t{0});
      r.clock_unfixable = c.value("unfixable", uint64_t{0});
    }
    return r;
  } catch (const json::exception& e) {
    return DataLossError(std::string("quality report is malformed: ") + e.what());
  }
}

Status WriteQualityReport(const std::string& path, const QualityReport& r) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << QualityReportToJson(r) << "\n";
    out.flush();
    if (!out) return UnavailableError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return UnavailableError("cannot rename " + tmp + " to " + path);
  return Status::Ok();
}

Result<QualityReport> ReadQualityReport(const std::string& path) {
  Result<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return NotFoundError("no quality report at " + path);
    return text.status();
  }
  Result<QualityReport> r = QualityReportFromJson(*text);
  if (!r.ok()) return Status(r.status().code(), path + ": " + r.status().message());
  return r;
}

QualityReport AddReports(const QualityReport& base, const QualityReport& now) {
  QualityReport out = now;
  out.since_us = base.since_us ? base.since_us : now.since_us;
  Add(out.total, base.total);
  std::map<std::string, QualityCounters> merged;
  for (const auto& s : base.sensors) Add(merged[s.sensor], s.counters);
  for (const auto& s : now.sensors) Add(merged[s.sensor], s.counters);
  out.sensors.clear();
  for (auto& [name, c] : merged) out.sensors.push_back({name, std::move(c)});
  return out;
}

std::string QualityReportText(const QualityReport& r, size_t max_sensors) {
  const QualityCounters& t = r.total;
  std::string s = StrFormat("quality:           since %s: %llu received, %llu passed (%llu flagged), %llu rejected, "
                            "%llu exact duplicates dropped\n",
                            r.since_us ? FormatIso8601Ms(r.since_us).c_str() : "-",
                            static_cast<unsigned long long>(t.received), static_cast<unsigned long long>(t.passed),
                            static_cast<unsigned long long>(t.flagged), static_cast<unsigned long long>(t.rejected_total()),
                            static_cast<unsigned long long>(t.duplicates_dropped));
  if (!t.rejected.empty()) s += "  rejected by rule: " + RuleList(t.rejected) + "\n";
  if (!t.flags.empty()) s += "  flagged by rule:  " + RuleList(t.flags) + "\n";
  std::vector<const SensorQuality*> worst = Worst(r.sensors, max_sensors);
  if (!worst.empty()) {
    s += StrFormat("  sensors with most caught readings (%zu of %zu sensors):\n", worst.size(), r.sensors.size());
    for (const SensorQuality* q : worst) {
      std::string detail;
      if (!q->counters.rejected.empty()) detail += "rejected " + RuleList(q->counters.rejected);
      if (!q->counters.flags.empty()) detail += std::string(detail.empty() ? "" : "; ") + "flagged " + RuleList(q->counters.flags);
      s += StrFormat("    %-28s %llu received: %s\n", q->sensor.c_str(),
                     static_cast<unsigned long long>(q->counters.received), detail.c_str());
    }
  }
  if (r.clock_guarded)
    s += StrFormat("clock:             %s; %llu readings held, %llu re-stamped, %llu released unfixable\n",
                   r.clock_synchronized ? "synchronised" : "NOT synchronised (holding readings)",
                   static_cast<unsigned long long>(r.clock_held), static_cast<unsigned long long>(r.clock_restamped),
                   static_cast<unsigned long long>(r.clock_unfixable));
  if (r.updated_us) s += "  (as of " + FormatIso8601Ms(r.updated_us) + ")\n";
  return s;
}

std::string QualityLogSummary(const QualityCounters& total, const std::vector<SensorQuality>& sensors,
                              size_t max_sensors) {
  if (total.rejected.empty() && total.flags.empty()) return "";
  std::string s = "quality:";
  if (!total.rejected.empty()) s += " rejected " + RuleList(total.rejected);
  if (!total.flags.empty()) s += std::string(total.rejected.empty() ? "" : ";") + " flagged " + RuleList(total.flags);
  std::vector<const SensorQuality*> worst = Worst(sensors, max_sensors);
  if (!worst.empty()) {
    s += " (worst:";
    for (size_t i = 0; i < worst.size(); ++i)
      s += (i ? ", " : " ") + worst[i]->sensor + " " + std::to_string(Caught(worst[i]->counters));
    s += ")";
  }
  return s;
}

std::string QualityStatusText(const std::string& buffer_path) {
  Result<QualityReport> r = ReadQualityReport(QualityReportPath(buffer_path));
  if (r.ok()) return QualityReportText(*r);
  if (r.status().code() == StatusCode::kNotFound)
    return "quality:           no report yet (a running agent writes " + QualityReportPath(buffer_path) +
           " every agent.status_interval)\n";
  return "quality:           unreadable: " + r.status().ToString() + "\n";
}

std::string QualityStatusJson(const std::string& buffer_path) {
  Result<QualityReport> r = ReadQualityReport(QualityReportPath(buffer_path));
  return r.ok() ? QualityReportToJson(*r) : "null";
}

}  // namespace edgepipe::agent
