#include "datasets.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "edgepipe/core/log.h"

namespace edgepipe::bench {
namespace {

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '"' && c != '\r') {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

// A reading when the cell holds a number; empty, "NA" and text cells are not readings.
bool ParseCell(std::string cell, bool decimal_comma, double* out) {
  if (cell.empty() || cell == "NA") return false;
  if (decimal_comma)
    for (char& c : cell)
      if (c == ',') c = '.';
  char* end = nullptr;
  double v = std::strtod(cell.c_str(), &end);
  if (end != cell.c_str() + cell.size()) return false;
  *out = v;
  return true;
}

Result<std::vector<std::vector<std::string>>> ReadCsv(const std::string& path, char sep) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read " + path + " (set --data to the shared data directory)");
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) rows.push_back(Split(line, sep));
  if (rows.size() < 2) return DataLossError(path + ": no data rows");
  return rows;
}

Series* FindOrAdd(Dataset& d, std::map<std::string, size_t>& idx, const std::string& name, const std::string& unit) {
  auto [it, added] = idx.try_emplace(name, d.series.size());
  if (added) d.series.push_back(Series{name, unit, {}});
  return &d.series[it->second];
}

}  // namespace

size_t Dataset::readings() const {
  size_t n = 0;
  for (const Series& s : series) n += s.values.size();
  return n;
}

Result<Dataset> LoadNab(const std::string& dir) {
  Dataset d{"nab", {}};
  for (const char* f : {"machine_temperature_system_failure", "ambient_temperature_system_failure"}) {
    auto rows = ReadCsv(dir + "/nab/" + f + ".csv", ',');
    if (!rows.ok()) return rows.status();
    Series s{std::string("nab/") + f, "", {}};
    for (size_t i = 1; i < rows->size(); ++i) {
      double v;
      if ((*rows)[i].size() >= 2 && ParseCell((*rows)[i][1], false, &v)) s.values.push_back(v);
    }
    d.series.push_back(std::move(s));
  }
  return d;
}

Result<Dataset> LoadUci(const std::string& dir) {
  auto rows = ReadCsv(dir + "/uci_air_quality/AirQualityUCI.csv", ';');
  if (!rows.ok()) return rows.status();
  static const char* kUnits[] = {"mg/m3", "", "ug/m3", "ug/m3", "", "ppb", "", "ug/m3", "", "", "Cel", "%RH", ""};
  Dataset d{"uci", {}};
  const auto& header = (*rows)[0];
  for (size_t c = 2; c < 15 && c < header.size(); ++c) d.series.push_back(Series{"uci/" + header[c], kUnits[c - 2], {}});
  for (size_t i = 1; i < rows->size(); ++i) {
    const auto& r = (*rows)[i];
    for (size_t c = 2; c < 15 && c < r.size(); ++c) {
      double v;
      if (ParseCell(r[c], true, &v)) d.series[c - 2].values.push_back(v);
    }
  }
  return d;
}

Result<Dataset> LoadChicago(const std::string& dir) {
  auto rows = ReadCsv(dir + "/chicago_beach/Beach_Water_Quality_-_Automated_Sensors.csv", ',');
  if (!rows.ok()) return rows.status();
  static const char* kUnits[] = {"Cel", "NTU", "m", "m", "s", "V"};
  Dataset d{"chicago", {}};
  std::map<std::string, size_t> idx;
  const auto& header = (*rows)[0];
  for (size_t i = 1; i < rows->size(); ++i) {
    const auto& r = (*rows)[i];
    if (r.size() < 8) continue;
    for (size_t c = 2; c < 8; ++c) {
      double v;
      if (ParseCell(r[c], false, &v)) FindOrAdd(d, idx, "chicago/" + r[0] + "/" + header[c], kUnits[c - 2])->values.push_back(v);
    }
  }
  return d;
}

Result<Dataset> LoadBeijing(const std::string& dir) {
  Dataset d{"beijing", {}};
  static const char* kUnits[] = {"ug/m3", "ug/m3", "ug/m3", "ug/m3", "ug/m3", "ug/m3", "Cel", "hPa", "Cel", "mm", "", "m/s"};
  for (const char* station : {"Aotizhongxin", "Changping", "Dingling", "Guanyuan"}) {
    auto rows = ReadCsv(dir + "/beijing_prsa/PRSA_Data_" + station + "_20130301-20170228.csv", ',');
    if (!rows.ok()) return rows.status();
    const auto& header = (*rows)[0];
    const size_t first = d.series.size();
    // Columns 5..16: PM2.5 .. WSPM; column 15 ("wd") is text and not a reading.
    std::vector<int> cols;
    for (int c = 5; c <= 16; ++c)
      if (c != 15) {
        cols.push_back(c);
        d.series.push_back(Series{std::string("beijing/") + station + "/" + header[c], kUnits[c - 5], {}});
      }
    for (size_t i = 1; i < rows->size(); ++i) {
      const auto& r = (*rows)[i];
      for (size_t k = 0; k < cols.size(); ++k) {
        double v;
        if (static_cast<size_t>(cols[k]) < r.size() && ParseCell(r[cols[k]], false, &v)) d.series[first + k].values.push_back(v);
      }
    }
  }
  return d;
}

Result<std::vector<Dataset>> LoadAll(const std::string& dir) {
  std::vector<Dataset> all;
  for (auto* load : {&LoadNab, &LoadUci, &LoadChicago, &LoadBeijing}) {
    Result<Dataset> d = load(dir);
    if (!d.ok()) return d.status();
    all.push_back(std::move(*d));
  }
  return all;
}

Feed::Feed(std::vector<Sensor> sensors, int64_t t0_us, TimeMode mode, uint32_t seed)
    : sensors_(std::move(sensors)), t0_us_(t0_us), mode_(mode), rng_(seed) {}

void Feed::Second(int64_t i, std::vector<Reading>* out) {
  for (const Sensor& s : sensors_) {
    Reading r;
    r.sensor = s.name;
    r.unit = s.series->unit;
    r.source = "bench";
    r.ts_us = t0_us_ + i * 1'000'000;
    if (mode_ == TimeMode::kJitterMs) r.ts_us += static_cast<int64_t>(rng_() % 50) * 1000;
    const auto& v = s.series->values;
    r.value = v[(static_cast<size_t>(i) + s.offset) % v.size()];
    out->push_back(std::move(r));
  }
}

std::vector<Feed::Sensor> SensorsOf(const Dataset& d) {
  std::vector<Feed::Sensor> out;
  for (const Series& s : d.series)
    if (!s.values.empty()) out.push_back(Feed::Sensor{&s, s.name, 0});
  return out;
}

std::vector<Feed::Sensor> MixedSensors(const std::vector<Dataset>& all, size_t n) {
  std::vector<const Series*> series;
  for (const Dataset& d : all)
    for (const Series& s : d.series)
      if (!s.values.empty()) series.push_back(&s);
  std::vector<Feed::Sensor> out;
  for (size_t k = 0; k < series.size() && out.size() < n; ++k) out.push_back(Feed::Sensor{series[k], series[k]->name, 0});
  std::vector<const Series*> longest = series;
  std::stable_sort(longest.begin(), longest.end(),
                   [](const Series* a, const Series* b) { return a->values.size() > b->values.size(); });
  for (size_t k = 0; out.size() < n && !longest.empty(); ++k) {
    const Series* s = longest[k % longest.size()];
    size_t copy = 1 + k / longest.size();
    out.push_back(Feed::Sensor{s, s->name + "#" + std::to_string(copy), s->values.size() * copy / (copy + 1)});
  }
  return out;
}

}  // namespace edgepipe::bench
