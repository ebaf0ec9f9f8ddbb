#include "edgepipe/uploader/object.h"

#include <nlohmann/json.hpp>

#include "edgepipe/core/time_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {
Batch SampleBatch() {
  Batch b;
  b.id = 7;
  b.name = "0badf00d-0000000007";
  b.partition_us = DaysFromCivil(2026, 11, 26) * kUsPerDay + 4 * kUsPerHour;
  for (int i = 0; i < 100; ++i) {
    Reading r;
    r.sensor = "t" + std::to_string(i % 5);
    r.ts_us = b.partition_us + i * 1'000'000;
    r.value = 20 + i * 0.25;
    r.unit = "Cel";
    b.readings.push_back(r);
  }
  b.quality.readings_in = 103;
  b.quality.passed = 100;
  b.quality.rejected["range"] = 3;
  b.gaps.push_back({"serial0", "t1", b.partition_us, b.partition_us + 5'000'000, 4, "sequence_gap"});
  b.quality.gaps = 1;
  b.quality.missing = 4;
  return b;
}
}  // namespace

TEST_GROUP(Object){};

TEST(Object, DefaultKeyIsHivePartitionedByReadingTime) {
  std::string key = RenderKey(kDefaultKeyTemplate, "fleet/raw", "gw-1", SampleBatch().partition_us, "abc-01", "ndjson.zst");
  STRCMP_EQUAL("fleet/raw/device=gw-1/date=2026-11-26/hour=04/gw-1-abc-01.ndjson.zst", key.c_str());
  // Empty prefix: no leading slash, no double slash.
  key = RenderKey(kDefaultKeyTemplate, "", "gw-1", 0, "b", "csv.zst");
  STRCMP_EQUAL("device=gw-1/date=1970-01-01/hour=00/gw-1-b.csv.zst", key.c_str());
  key = RenderKey("{prefix}/{year}/{month}/{day}/{hour}/{batch}.{ext}", "p/", "d", SampleBatch().partition_us, "b", "x");
  STRCMP_EQUAL("p/2026/11/26/04/b.x", key.c_str());
}

TEST(Object, TemplateValidation) {
  STRCMP_EQUAL("", ValidateKeyTemplate(kDefaultKeyTemplate).c_str());
  CHECK(ValidateKeyTemplate("{prefix}/{device}.{ext}").find("{batch}") != std::string::npos);
  CHECK(ValidateKeyTemplate("{prefix}/{batchid}").find("unknown placeholder {batchid}") != std::string::npos);
  CHECK(ValidateKeyTemplate("{prefix/{batch}").find("unknown placeholder") != std::string::npos);
  CHECK(ValidateKeyTemplate("{batch}}").find("unmatched") != std::string::npos);
  CHECK(ValidateKeyTemplate("{batch}/{").find("unclosed") != std::string::npos);
}

TEST(Object, BuildIsDeterministicAndCarriesMetadata) {
  ObjectOptions opt;
  opt.prefix = "raw";
  opt.context.device = "gw-1";
  ObjectBuilder a(opt), b(opt);
  Batch batch = SampleBatch();
  Result<Object> o1 = a.Build(batch);
  Result<Object> o2 = b.Build(batch);
  CHECK_TRUE(o1.ok() && o2.ok());
  CHECK_TRUE(o1->body == o2->body);
  STRCMP_EQUAL(o1->key.c_str(), o2->key.c_str());
  STRCMP_EQUAL("raw/device=gw-1/date=2026-11-26/hour=04/gw-1-0badf00d-0000000007.ndjson.zst", o1->key.c_str());
  STRCMP_EQUAL(Sha256Hex(o1->body).c_str(), o1->sha256_hex.c_str());
  LONGS_EQUAL(64, o1->sha256_hex.size());
  LONGS_EQUAL(24, o1->md5_base64.size());
  STRCMP_EQUAL("100", o1->metadata["edgepipe-records"].c_str());
  STRCMP_EQUAL("2026-11-26T04:00:00.000000Z", o1->metadata["edgepipe-first-ts"].c_str());
  STRCMP_EQUAL("2026-11-26T04:01:39.000000Z", o1->metadata["edgepipe-last-ts"].c_str());
  auto q = nlohmann::json::parse(o1->metadata["edgepipe-quality"]);
  LONGS_EQUAL(3, q["rejected"]["range"].get<int>());
  LONGS_EQUAL(103, q["in"].get<int>());
  auto gaps = nlohmann::json::parse(o1->metadata["edgepipe-gaps"]);
  LONGS_EQUAL(4, gaps[0]["count"].get<int>());
  // The body decompresses (checksum verified) to one line per reading.
  Result<std::string> raw = ZstdDecompress(o1->body);
  CHECK_TRUE(raw.ok());
  LONGS_EQUAL(100, std::count(raw->begin(), raw->end(), '\n'));
  LONGS_EQUAL(raw->size(), o1->raw_bytes);
}

TEST(Object, QuarantineBatchesGoUnderTheQuarantinePrefix) {
  ObjectOptions opt;
  opt.prefix = "raw";
  opt.format = Format::kCsv;
  opt.context.device = "gw-1";
  ObjectBuilder builder(opt);
  Batch b;
  b.kind = BatchKind::kQuarantine;
  b.name = "x-1";
  b.quarantined.push_back({1, 0, "mqtt", "t", "parse", "not JSON", "", "{oops"});
  Result<Object> o = builder.Build(b);
  CHECK_TRUE(o.ok());
  STRCMP_EQUAL("raw/quarantine/device=gw-1/date=1970-01-01/hour=00/gw-1-x-1.ndjson.zst", o->key.c_str());
  STRCMP_EQUAL("quarantine", o->metadata["edgepipe-kind"].c_str());
}

TEST(Object, CorruptedBodyIsDetectedByTheFrameChecksum) {
  ObjectOptions opt;
  opt.context.device = "gw";
  ObjectBuilder builder(opt);
  Result<Object> o = builder.Build(SampleBatch());
  std::string body = o->body;
  body[body.size() / 2] ^= 0x40;
  Result<std::string> raw = ZstdDecompress(body);
  CHECK_FALSE(raw.ok());
  CHECK(raw.status().code() == StatusCode::kDataLoss);
  CHECK_FALSE(ZstdDecompress(o->body.substr(0, o->body.size() - 3)).ok());
}

TEST(Object, MetadataIsAsciiEvenForNonAsciiGapsAndRules) {
  edgepipe::Batch b;
  b.id = 1;
  b.name = "n-1";
  edgepipe::Reading r;
  r.sensor = "s";
  r.ts_us = 1'700'000'000'000'000;
  b.readings.push_back(r);
  b.partition_us = edgepipe::FloorToHour(r.ts_us);
  b.gaps.push_back({"m\xC3\xBCnchen", "temp\xC3\xA9rature\xF0\x9F\x8C\xA1", r.ts_us, r.ts_us, 3, "evicted"});
  b.quality.rejected["r\xC3\xA8gle"] = 2;
  edgepipe::uploader::ObjectOptions oo;
  oo.context.device = "gw";
  edgepipe::Result<edgepipe::uploader::Object> o = edgepipe::uploader::ObjectBuilder(oo).Build(b);
  CHECK_TRUE(o.ok());
  for (const auto& [k, v] : o->metadata)
    for (unsigned char c : v) CHECK_TEXT(c >= 0x20 && c < 0x7f, (k + ": " + v).c_str());
  const std::string& gaps = o->metadata.at("edgepipe-gaps");
  CHECK(gaps.find("m\\u00fcnchen") != std::string::npos);
  CHECK(gaps.find("temp\\u00e9rature\\ud83c\\udf21") != std::string::npos);  // U+1F321 as a surrogate pair
  CHECK(o->metadata.at("edgepipe-quality").find("r\\u00e8gle") != std::string::npos);
}
