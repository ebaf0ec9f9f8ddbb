#include "datasets.h"

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "edgepipe/core/time_util.h"

namespace edgepipe::datasets {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ParseNumber(std::string s, double* out) {
  for (char& c : s)
    if (c == ',') c = '.';
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto res = std::from_chars(b, e, *out);
  return res.ec == std::errc() && res.ptr == e;
}

int Int(const std::string& s, size_t pos, size_t len) { return std::stoi(s.substr(pos, len)); }

Reading Make(const std::string& sensor, int64_t ts, double v, const std::string& source) {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.source = source;
  return r;
}

}  // namespace

std::vector<std::vector<std::string>> ReadCsv(const std::string& path, char sep) {
  const std::string text = Slurp(path);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') field.push_back(text[++i]);
        else quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == sep) {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field.push_back(c);
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

DataSet LoadNab(const std::string& path, const std::string& sensor) {
  DataSet d;
  d.name = sensor;
  auto rows = ReadCsv(path, ',');
  for (size_t i = 1; i < rows.size(); ++i) {
    ++d.rows;
    const auto& r = rows[i];
    auto ts = ParseIso8601(r.at(0));
    double v;
    if (!ts || !ParseNumber(r.at(1), &v)) {
      ++d.skipped_rows;
      continue;
    }
    d.readings.push_back(Make(sensor, *ts, v, "nab"));
  }
  return d;
}

DataSet LoadUci(const std::string& path) {
  DataSet d;
  d.name = "uci";
  auto rows = ReadCsv(path, ';');
  const auto& header = rows.at(0);
  for (size_t i = 1; i < rows.size(); ++i) {
    ++d.rows;
    const auto& r = rows[i];
    if (r.size() < 15 || r[0].size() != 10 || r[1].size() != 8) {
      ++d.skipped_rows;
      continue;
    }
    // DD/MM/YYYY and HH.MM.SS
    CivilTime c{Int(r[0], 6, 4), Int(r[0], 3, 2), Int(r[0], 0, 2), Int(r[1], 0, 2), Int(r[1], 3, 2), Int(r[1], 6, 2), 0};
    const int64_t ts = UsFromCivil(c);
    for (size_t k = 2; k < 15; ++k) {
      double v;
      if (r[k].empty() || !ParseNumber(r[k], &v)) continue;
      d.readings.push_back(Make("uci/" + header[k], ts, v, "uci"));
    }
  }
  return d;
}

DataSet LoadChicago(const std::string& path) {
  DataSet d;
  d.name = "chicago";
  auto rows = ReadCsv(path, ',');
  const auto& header = rows.at(0);
  for (size_t i = 1; i < rows.size(); ++i) {
    ++d.rows;
    const auto& r = rows[i];
    const std::string& t = r.at(1);  // MM/DD/YYYY hh:mm:ss AM
    if (t.size() != 22) {
      ++d.skipped_rows;
      continue;
    }
    int hour = Int(t, 11, 2) % 12;
    if (t.compare(20, 2, "PM") == 0) hour += 12;
    CivilTime c{Int(t, 6, 4), Int(t, 0, 2), Int(t, 3, 2), hour, Int(t, 14, 2), Int(t, 17, 2), 0};
    const int64_t ts = UsFromCivil(c);
    for (size_t k = 2; k <= 7; ++k) {
      double v;
      if (r[k].empty() || !ParseNumber(r[k], &v)) continue;
      d.readings.push_back(Make("chicago/" + r[0] + "/" + header[k], ts, v, "chicago"));
    }
  }
  return d;
}

DataSet LoadBeijing(const std::string& path) {
  DataSet d;
  auto rows = ReadCsv(path, ',');
  const auto& header = rows.at(0);
  for (size_t i = 1; i < rows.size(); ++i) {
    ++d.rows;
    const auto& r = rows[i];
    if (r.size() < 18) {
      ++d.skipped_rows;
      continue;
    }
    d.name = "beijing/" + r[17];
    CivilTime c{std::stoi(r[1]), std::stoi(r[2]), std::stoi(r[3]), std::stoi(r[4]), 0, 0, 0};
    const int64_t ts = UsFromCivil(c);
    for (size_t k = 5; k <= 16; ++k) {
      if (k == 15) continue;  // wd: a wind direction text, not a measurement
      const std::string sensor = "beijing/" + r[17] + "/" + header[k];
      double v;
      if (ParseNumber(r[k], &v)) {
        d.readings.push_back(Make(sensor, ts, v, "beijing"));
      } else if (!r[k].empty()) {
        Reading s = Make(sensor, ts, 0, "beijing");
        s.type = ValueType::kString;
        s.text = r[k];
        d.readings.push_back(std::move(s));
      }
    }
  }
  return d;
}

}  // namespace edgepipe::datasets
