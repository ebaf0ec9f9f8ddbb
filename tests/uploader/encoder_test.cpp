#include "edgepipe/uploader/encoder.h"
#include "edgepipe/core/time_util.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {
Batch MakeBatch() {
  Batch b;
  Reading r;
  r.sensor = "boiler/t-17";
  r.ts_us = 1'764'129'949'123'456LL;  // 2025-11-26T04:05:49.123456Z
  r.value = 21.37;
  r.unit = "Cel";
  r.source = "sim";
  b.readings.push_back(r);
  Reading s = r;
  s.type = ValueType::kString;
  s.text = "line1\n\"quoted\",comma";
  s.unit = "";
  s.quality = kQualityStuck | kQualitySpike;
  b.readings.push_back(s);
  Reading t = r;
  t.type = ValueType::kBool;
  t.value = 1;
  b.readings.push_back(t);
  return b;
}
std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}
// The same readings in the column form the buffer hands the uploader (one series per distinct
// sensor, unit, source and type).
ReadingColumns ToColumns(const std::vector<Reading>& rs) {
  ReadingColumns c;
  bool any_text = false;
  for (const Reading& r : rs) any_text = any_text || !r.text.empty();
  for (const Reading& r : rs) {
    uint32_t si = 0;
    while (si < c.series.size() && !(c.series[si].sensor == r.sensor && c.series[si].unit == r.unit &&
                                     c.series[si].source == r.source && c.series[si].type == r.type))
      ++si;
    if (si == c.series.size()) c.series.push_back({r.sensor, r.unit, r.source, r.type});
    c.series_of.push_back(si);
    c.ts_us.push_back(r.ts_us);
    c.value.push_back(r.value);
    c.quality.push_back(r.quality);
    c.seq.push_back(r.seq);
    if (any_text) c.text.push_back(r.text);
  }
  return c;
}
}  // namespace

TEST_GROUP(Encoder){};

TEST(Encoder, ColumnsAndReadingsOfABatchEncodeToTheSameBytes) {
  // Random readings over every value type, with and without units, texts needing escapes,
  // invalid UTF-8, quality flags and non-finite values.
  std::mt19937_64 rng(11);
  std::vector<Reading> rs;
  const char* units[] = {"", "Cel", "%RH", "m/s"};
  const char* texts[] = {"", "ok", "line1\n\"q\",c", "\xff\xfe bad", "caf\xc3\xa9"};
  for (int i = 0; i < 2000; ++i) {
    Reading r;
    r.sensor = "s/" + std::to_string(rng() % 7) + (rng() % 5 == 0 ? "/a-rather-long-sensor-name" : "");
    r.ts_us = 1'764'129'949'000'000LL + static_cast<int64_t>(rng() % 10'000'000'000ull);
    r.type = static_cast<ValueType>(rng() % 3);
    r.value = r.type == ValueType::kBool ? static_cast<double>(rng() % 2)
              : (rng() % 50 == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(rng() % 100'000) / 7.0);
    if (r.type == ValueType::kString) r.text = texts[rng() % 5];
    r.unit = units[rng() % 4];
    r.source = rng() % 2 ? "mq" : "serial0";
    r.quality = rng() % 4 == 0 ? static_cast<uint32_t>(rng() % (1u << kQualityFlagCount)) : 0;
    r.seq = rng() % 1000;
    rs.push_back(r);
  }
  Batch rows, cols;
  rows.readings = rs;
  cols.columns = ToColumns(rs);
  LONGS_EQUAL(rs.size(), cols.reading_count());
  for (size_t i = 0; i < rs.size(); ++i) {  // NaN != NaN: compare values bit for bit
    Reading a = cols.columns.At(i), b = rs[i];
    CHECK_TRUE(std::memcmp(&a.value, &b.value, sizeof a.value) == 0);
    a.value = b.value = 0;
    CHECK_TRUE(a == b);
  }
  EncodeContext ctx{"gw-1", {{"site", "plant-a"}}};
  for (Format f : {Format::kNdjson, Format::kCsv}) {
    std::string a, b;
    EncodeReadings(f, ctx, rows, &a);
    EncodeReadings(f, ctx, cols, &b);
    CHECK(a.size() > rs.size() * 40);
    CHECK_TRUE_TEXT(a == b, FormatName(f));
  }
}

TEST(Encoder, NdjsonHasOneValidObjectPerReading) {
  EncodeContext ctx{"gw-1", {{"line", "3"}, {"site", "plant-a"}}};
  std::string out;
  EncodeReadings(Format::kNdjson, ctx, MakeBatch(), &out);
  auto lines = Lines(out);
  LONGS_EQUAL(3, lines.size());
  auto j0 = nlohmann::json::parse(lines[0]);
  STRCMP_EQUAL("gw-1", j0["device"].get<std::string>().c_str());
  STRCMP_EQUAL("boiler/t-17", j0["sensor"].get<std::string>().c_str());
  STRCMP_EQUAL("2025-11-26T04:05:49.123Z", j0["ts"].get<std::string>().c_str());
  DOUBLES_EQUAL(21.37, j0["value"].get<double>(), 0);
  STRCMP_EQUAL("Cel", j0["unit"].get<std::string>().c_str());
  STRCMP_EQUAL("plant-a", j0["labels"]["site"].get<std::string>().c_str());
  CHECK_FALSE(j0.contains("quality"));
  auto j1 = nlohmann::json::parse(lines[1]);
  STRCMP_EQUAL("line1\n\"quoted\",comma", j1["value_text"].get<std::string>().c_str());
  CHECK_FALSE(j1.contains("value"));
  CHECK(j1["quality"] == nlohmann::json::array({"stuck", "spike"}));
  auto j2 = nlohmann::json::parse(lines[2]);
  CHECK_TRUE(j2["value_bool"].get<bool>());
}

// The records are written through a pointer into space grown ahead of them: a batch of many
// growth steps, texts at their worst expansion (every byte escaped as \u00XX, or invalid UTF-8
// replaced), every quality flag, appended after what `out` already held: each record parses
// back to its reading.
TEST(Encoder, NdjsonOfALargeBatchParsesBackToItsReadings) {
  std::mt19937_64 rng(5);
  std::vector<Reading> rs;
  const std::string worst_escaped(3000, '\x01'), worst_invalid(2000, '\xff');
  std::string replaced;  // what worst_invalid becomes: U+FFFD per byte
  for (int k = 0; k < 2000; ++k) replaced += "\xEF\xBF\xBD";
  for (int i = 0; i < 5000; ++i) {
    Reading r;
    r.sensor = "plant/line-" + std::to_string(i % 37) + (i % 11 == 0 ? "/\"quoted\"" : "");
    r.ts_us = 1'764'129'949'000'000LL + int64_t{i} * 37'000;
    r.type = i % 50 == 7 ? ValueType::kString : i % 50 == 8 ? ValueType::kBool : ValueType::kNumber;
    r.value = r.type == ValueType::kBool ? i % 2 : static_cast<double>(rng() % 2'000'000) / 1000.0 - 1000.0;
    if (r.type == ValueType::kString) r.text = i % 100 == 7 ? worst_escaped : worst_invalid;
    r.unit = i % 3 ? "Cel" : "";
    r.source = i % 5 ? "mq" : "";
    r.quality = i % 13 == 0 ? (1u << kQualityFlagCount) - 1 : 0;
    rs.push_back(r);
  }
  for (bool columns : {false, true}) {
    Batch b;
    if (columns) b.columns = ToColumns(rs);
    else b.readings = rs;
    std::string out = "already here\n";
    EncodeReadings(Format::kNdjson, {"gw-1", {}}, b, &out);
    CHECK(out.size() > 1'000'000);
    auto lines = Lines(out);
    LONGS_EQUAL(rs.size() + 1, lines.size());
    STRCMP_EQUAL("already here", lines[0].c_str());
    for (size_t i = 0; i < rs.size(); ++i) {
      const Reading& r = rs[i];
      auto j = nlohmann::json::parse(lines[i + 1]);
      STRCMP_EQUAL(r.sensor.c_str(), j["sensor"].get<std::string>().c_str());
      STRCMP_EQUAL(FormatIso8601Ms(r.ts_us).c_str(), j["ts"].get<std::string>().c_str());
      if (r.type == ValueType::kNumber) CHECK_TRUE(j["value"].get<double>() == r.value);
      if (r.type == ValueType::kBool) CHECK_EQUAL(r.value != 0, j["value_bool"].get<bool>());
      if (r.type == ValueType::kString)
        CHECK_TRUE(j["value_text"].get<std::string>() == (r.text == worst_escaped ? r.text : replaced));
      CHECK_EQUAL(!r.unit.empty(), j.contains("unit"));
      CHECK_EQUAL(!r.source.empty(), j.contains("source"));
      CHECK_EQUAL(r.quality != 0, j.contains("quality"));
      if (r.quality) LONGS_EQUAL(kQualityFlagCount, j["quality"].size());
    }
  }
}

TEST(Encoder, EveryRowKeepsItsOwnMillisecondsWhenRowsShareASecond) {
  // The encoder reuses the text of the previous row's second: rows 37 ms apart (many in one
  // second, some across a second or a day boundary, before and after 1970) each get exactly
  // the timestamp formatted on its own.
  for (int64_t base : {int64_t{-1'500'000}, int64_t{1'764'115'199'000'000LL}, int64_t{1'764'129'949'999'000LL}}) {
    std::vector<Reading> rs;
    for (int k = 0; k < 120; ++k) {
      Reading r;
      r.sensor = k % 3 ? "a" : "b";
      r.ts_us = base + int64_t{k} * 37'123;
      r.value = k;
      rs.push_back(r);
    }
    Batch b;
    b.columns = ToColumns(rs);
    std::string out;
    EncodeReadings(Format::kNdjson, EncodeContext{"gw", {}}, b, &out);
    auto lines = Lines(out);
    LONGS_EQUAL(rs.size(), lines.size());
    for (size_t i = 0; i < rs.size(); ++i) {
      auto j = nlohmann::json::parse(lines[i]);
      STRCMP_EQUAL(FormatIso8601Ms(rs[i].ts_us).c_str(), j["ts"].get<std::string>().c_str());
      STRCMP_EQUAL(rs[i].sensor.c_str(), j["sensor"].get<std::string>().c_str());
      DOUBLES_EQUAL(rs[i].value, j["value"].get<double>(), 0);
    }
  }
}

TEST(Encoder, DoublesRoundTripExactly) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> d(-1e6, 1e6);
  for (int i = 0; i < 20000; ++i) {
    double v = i % 2 ? d(rng) : std::round(d(rng) * 100) / 100;
    std::string s;
    AppendDouble(&s, v);
    CHECK_EQUAL(v, std::stod(s));
  }
  std::string s;
  AppendDouble(&s, 21.37);
  STRCMP_EQUAL("21.37", s.c_str());
}

TEST(Encoder, DoublesAreWrittenExactlyAsToCharsWritesThem) {
  // AppendDouble has a fast path for values with few decimals; it must write the very bytes
  // std::to_chars does (shortest round trip, fixed or scientific, whichever is shorter), for
  // decimals of every length and magnitude, around the edges of the fast path (1e-3, 1e15, 2^50
  // after scaling, 9 decimals), for integers with trailing zeros (1e5 is "1e+05"), and for
  // arbitrary doubles.
  std::mt19937_64 rng(17);
  std::vector<double> vs = {0.001, 0.0011, 0.000999, 0.01, 0.1, 0.5, 1, 10, 100, 1000, 10000, 100000, 1e6, 1234500,
                            120000, 999999999999999.0, 1e15, 1e15 - 1, 999999999999999.9, 123456789.123456789,
                            0.123456789, 0.1234567891, 4503599627370495.5, 1125899906842623.0, 112589990684262.3,
                            21.37, 20.1, 2.675, 1.005, 0.3, 0.30000000000000004, 5e-324, 1.7976931348623157e308,
                            9007199254740993.0, 0.0, -0.0};
  for (int i = 0; i < 300000; ++i) {
    const int k = static_cast<int>(rng() % 12);
    const double scale = std::pow(10.0, static_cast<double>(rng() % 19) - 3);
    switch (i % 4) {
      case 0: vs.push_back(static_cast<double>(static_cast<int64_t>(rng() % 2'000'000'000) - 1'000'000'000) / std::pow(10.0, k)); break;
      case 1: vs.push_back(std::round(std::uniform_real_distribution<double>(-1, 1)(rng) * scale * std::pow(10.0, k)) / std::pow(10.0, k)); break;
      case 2: vs.push_back(std::uniform_real_distribution<double>(-1, 1)(rng) * scale); break;
      default: {
        uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        if (std::isfinite(d)) vs.push_back(d);
      }
    }
  }
  for (double v : vs) {
    char want[64];
    const std::string w(want, std::to_chars(want, want + sizeof want, v).ptr);
    std::string got;
    AppendDouble(&got, v);
    if (got != w) FAIL(("AppendDouble wrote \"" + got + "\" where to_chars writes \"" + w + "\"").c_str());
  }
}

TEST(Encoder, NonFiniteBecomesNull) {
  Batch b = MakeBatch();
  b.readings.resize(1);
  b.readings[0].value = std::numeric_limits<double>::quiet_NaN();
  b.readings[0].quality = kQualityNonFinite;
  std::string out;
  EncodeReadings(Format::kNdjson, {"d", {}}, b, &out);
  auto j = nlohmann::json::parse(out);
  CHECK_TRUE(j["value"].is_null());
}

TEST(Encoder, JsonStringEscapesControlAndRepairsInvalidUtf8) {
  std::string out;
  AppendJsonString(&out, std::string("a\x01\tb\xff\xc3\xa9", 7));
  STRCMP_EQUAL("\"a\\u0001\\tb\xEF\xBF\xBD\xC3\xA9\"", out.c_str());
  CHECK_TRUE(nlohmann::json::parse(out).is_string());
  CHECK_TRUE(IsValidUtf8("h\xC3\xA9llo"));
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));        // overlong
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));    // surrogate
}

TEST(Encoder, CsvQuotesFieldsAndHasLabelColumns) {
  std::string out;
  EncodeReadings(Format::kCsv, {"gw-1", {{"site", "a,b"}}}, MakeBatch(), &out);
  auto lines = Lines(out);
  STRCMP_EQUAL("device,sensor,ts,value,value_bool,value_text,unit,source,quality,label_site", lines[0].c_str());
  STRCMP_EQUAL("gw-1,boiler/t-17,2025-11-26T04:05:49.123Z,21.37,,,Cel,sim,,\"a,b\"", lines[1].c_str());
  // The string value holds a newline, so its record spans two physical lines.
  CHECK(out.find(",,,\"line1\n\"\"quoted\"\",comma\",,sim,stuck|spike,\"a,b\"\n") != std::string::npos);
  CHECK(out.find(",,true,,Cel,sim,,") != std::string::npos);
}

TEST(Encoder, QuarantineRecordsKeepBinaryRawAsHex) {
  Batch b;
  b.kind = BatchKind::kQuarantine;
  QuarantineRecord q{1'000'000, 2'000'000, "serial0", "", "crc", "CRC mismatch", "", std::string("\x00\xff\x10", 3)};
  b.quarantined.push_back(q);
  std::string out;
  EncodeQuarantine({"gw", {}}, b, &out);
  auto j = nlohmann::json::parse(out);
  STRCMP_EQUAL("00ff10", j["raw_hex"].get<std::string>().c_str());
  STRCMP_EQUAL("crc", j["rule"].get<std::string>().c_str());
  STRCMP_EQUAL("1970-01-01T00:00:02.000Z", j["ts"].get<std::string>().c_str());
  STRCMP_EQUAL("1970-01-01T00:00:01.000Z", j["received"].get<std::string>().c_str());
}
