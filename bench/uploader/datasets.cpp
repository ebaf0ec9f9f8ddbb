#include "datasets.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "edgepipe/core/time_util.h"

namespace edgepipe::bench {
namespace {

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (c == sep && !quoted) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    if (c != '\r') cur.push_back(c);
  }
  out.push_back(cur);
  return out;
}

bool ParseNumber(std::string s, double* out) {
  if (s.empty() || s == "NA") return false;
  for (char& c : s)
    if (c == ',') c = '.';  // UCI: decimal comma
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

Result<std::ifstream> Open(const std::string& dir, const std::string& rel) {
  std::ifstream in(dir + "/" + rel);
  if (!in) return NotFoundError("data set file " + dir + "/" + rel + " is missing (set EDGEPIPE_DATA_DIR to the shared data directory)");
  return in;
}

Reading Make(const std::string& sensor, int64_t ts, double v, const std::string& unit, const std::string& source) {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.unit = unit;
  r.source = source;
  return r;
}

Result<Dataset> Nab(const std::string& dir, const std::string& file, const std::string& name) {
  Result<std::ifstream> in = Open(dir, "nab/" + file);
  if (!in.ok()) return in.status();
  Dataset d{name, {}};
  std::string line;
  std::getline(*in, line);
  while (std::getline(*in, line)) {
    std::vector<std::string> f = Split(line, ',');
    double v;
    std::optional<int64_t> ts = ParseIso8601(f[0]);
    if (f.size() < 2 || !ts || !ParseNumber(f[1], &v)) continue;
    d.readings.push_back(Make(name == "nab-machine" ? "machine/temperature" : "office/temperature", *ts, v, "[degF]", "nab"));
  }
  return d;
}

Result<Dataset> Uci(const std::string& dir) {
  Result<std::ifstream> in = Open(dir, "uci_air_quality/AirQualityUCI.csv");
  if (!in.ok()) return in.status();
  Dataset d{"uci-air", {}};
  std::string line;
  std::getline(*in, line);
  std::vector<std::string> head = Split(line, ';');
  while (std::getline(*in, line)) {
    std::vector<std::string> f = Split(line, ';');
    if (f.size() < 15 || f[0].empty()) continue;
    int dd, mm, yy, h, mi, s;
    if (sscanf(f[0].c_str(), "%d/%d/%d", &dd, &mm, &yy) != 3 || sscanf(f[1].c_str(), "%d.%d.%d", &h, &mi, &s) != 3) continue;
    int64_t ts = UsFromCivil(CivilTime{yy, mm, dd, h, mi, s, 0});
    for (size_t c = 2; c < 15; ++c) {
      double v;
      if (ParseNumber(f[c], &v)) d.readings.push_back(Make("air/" + head[c], ts, v, "", "uci"));
    }
  }
  return d;
}

Result<Dataset> Chicago(const std::string& dir) {
  Result<std::ifstream> in = Open(dir, "chicago_beach/Beach_Water_Quality_-_Automated_Sensors.csv");
  if (!in.ok()) return in.status();
  Dataset d{"chicago-beach", {}};
  const char* units[] = {"Cel", "[NTU]", "m", "m", "s", "V"};
  std::string line;
  std::getline(*in, line);
  std::vector<std::string> head = Split(line, ',');
  while (std::getline(*in, line)) {
    std::vector<std::string> f = Split(line, ',');
    if (f.size() < 8 || f[1].empty()) continue;
    int mo, dd, yy, h, mi, s;
    char ampm[3] = {0};
    if (sscanf(f[1].c_str(), "%d/%d/%d %d:%d:%d %2s", &mo, &dd, &yy, &h, &mi, &s, ampm) != 7) continue;
    if (h == 12) h = 0;
    if (ampm[0] == 'P') h += 12;
    int64_t ts = UsFromCivil(CivilTime{yy, mo, dd, h, mi, s, 0});
    std::string beach = f[0];
    for (char& c : beach)
      if (c == ' ') c = '-';
    for (size_t c = 2; c < 8; ++c) {
      double v;
      if (ParseNumber(f[c], &v)) d.readings.push_back(Make(beach + "/" + head[c], ts, v, units[c - 2], "chicago"));
    }
  }
  return d;
}

Result<Dataset> Beijing(const std::string& dir) {
  Dataset d{"beijing", {}};
  const char* stations[] = {"Aotizhongxin", "Changping", "Dingling", "Guanyuan"};
  for (const char* st : stations) {
    Result<std::ifstream> in = Open(dir, std::string("beijing_prsa/PRSA_Data_") + st + "_20130301-20170228.csv");
    if (!in.ok()) return in.status();
    std::string line;
    std::getline(*in, line);
    std::vector<std::string> head = Split(line, ',');
    while (std::getline(*in, line)) {
      std::vector<std::string> f = Split(line, ',');
      if (f.size() < 18) continue;
      int64_t ts = UsFromCivil(CivilTime{std::atoi(f[1].c_str()), std::atoi(f[2].c_str()), std::atoi(f[3].c_str()),
                                         std::atoi(f[4].c_str()), 0, 0, 0});
      for (size_t c = 5; c < 17; ++c) {
        if (head[c] == "wd") continue;  // wind direction is text
        double v;
        if (ParseNumber(f[c], &v)) d.readings.push_back(Make(std::string(st) + "/" + head[c], ts, v, "", "beijing"));
      }
    }
  }
  return d;
}

}  // namespace

std::string DataDir(const std::string& fallback) {
  const char* env = std::getenv("EDGEPIPE_DATA_DIR");
  return env && *env ? env : fallback;
}

std::vector<std::string> DatasetNames() { return {"nab-machine", "nab-ambient", "uci-air", "chicago-beach", "beijing"}; }

Result<Dataset> Load(const std::string& dir, const std::string& name) {
  if (name == "nab-machine") return Nab(dir, "machine_temperature_system_failure.csv", name);
  if (name == "nab-ambient") return Nab(dir, "ambient_temperature_system_failure.csv", name);
  if (name == "uci-air") return Uci(dir);
  if (name == "chicago-beach") return Chicago(dir);
  if (name == "beijing") return Beijing(dir);
  return NotFoundError("unknown data set " + name);
}

Result<std::vector<Dataset>> LoadAll(const std::string& dir) {
  std::vector<Dataset> out;
  for (const std::string& n : DatasetNames()) {
    Result<Dataset> d = Load(dir, n);
    if (!d.ok()) return d.status();
    out.push_back(std::move(*d));
  }
  return out;
}

}  // namespace edgepipe::bench
