// The SenML scanner (firmware-bridge/src/senml_pack.h): where it accepts a payload it must give
// exactly what simdjson gives (same records, keys, strings, and numbers bit for bit), and it must
// decline whatever it does not read itself, so that simdjson decides (and words the error).
// tests/fuzz/senml_scan_fuzz.cpp checks the same property on generated inputs.
#include <simdjson.h>

#include <cstring>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/payload.h"
#include "senml_pack.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;

namespace {

// The pack simdjson gives for `json`, or a failed check when simdjson rejects it.
SenmlPack ViaSimdjson(const std::string& json) {
  static simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  const simdjson::error_code ec = parser.parse(padded).get(root);
  if (ec != simdjson::SUCCESS) FAIL((json + ": simdjson rejects it: " + simdjson::error_message(ec)).c_str());
  SenmlPack pack;
  FlattenSenmlPack(root, &pack);
  return pack;
}

void CheckScannedLikeSimdjson(const std::string& json) {
  SenmlPack scanned;
  if (!ScanSenmlPack(json, &scanned)) FAIL((json + ": the scanner declined it").c_str());
  const SenmlPack expected = ViaSimdjson(json);
  const std::string diff = ComparePacks(scanned, expected);
  if (!diff.empty()) FAIL((json + ": " + diff).c_str());
}

void CheckDeclined(const std::string& json) {
  SenmlPack pack;
  if (ScanSenmlPack(json, &pack)) FAIL((json + ": the scanner accepted it").c_str());
}

}  // namespace

TEST_GROUP(SenmlScan){};

TEST(SenmlScan, CommonPacksReadAsSimdjsonReadsThem) {
  CheckScannedLikeSimdjson(R"([{"bn":"gw/pack3/","bt":1700000042,"bu":"Cel","n":"t0","v":21.37},{"n":"t1","t":0.001,"v":-4.5}])");
  CheckScannedLikeSimdjson(" \t\r\n[ { \"n\" : \"a\" , \"v\" : 1 } , {\"n\":\"b\",\"vb\":true},{\"n\":\"c\",\"vb\":false} ] \n");
  CheckScannedLikeSimdjson(R"([{"n":"s","vs":"text with spaces / and : _ - .","u":""}])");
  CheckScannedLikeSimdjson(R"([])");
  CheckScannedLikeSimdjson(R"([{}])");
  CheckScannedLikeSimdjson(R"([{"n":"dup","v":1,"v":2}])");  // duplicate keys: both, in order
  CheckScannedLikeSimdjson(R"([{"":0,"x_":1}])");
}

TEST(SenmlScan, NumbersAreBitForBitSimdjsons) {
  const char* numbers[] = {
      "0", "-0", "0.0", "-0.0", "1", "-1", "21.37", "-4.5", "0.001", "1700000000.123", "1700000000.123456",
      "1e5", "1E5", "1e+5", "1e-5", "1.5E+3", "-2.5e-3", "1e22", "1e-22", "9007199254740992", "9007199254740993",
      "123456789012345678", "-123456789012345678", "0.1", "0.2", "0.3", "4503599627370497.5", "1234567.891",
      "0.000000000000000001", "0e5", "-0e-5", "99999999999999.9999", "9007199254740.991", "9007199254740.992"};
  for (const char* n : numbers) {
    const std::string json = std::string("[{\"v\":") + n + "}]";
    SenmlPack scanned;
    if (!ScanSenmlPack(json, &scanned)) continue;  // declined: simdjson reads it (checked below)
    const std::string diff = ComparePacks(scanned, ViaSimdjson(json));
    if (!diff.empty()) FAIL((json + ": " + diff).c_str());
  }
  // The common ones are read by the scanner, not left to simdjson.
  for (const char* n : {"21.37", "-0", "-0.0", "1700000000.123456", "1e22", "123456789012345678"})
    CheckScannedLikeSimdjson(std::string("[{\"v\":") + n + "}]");
}

TEST(SenmlScan, DeclinesWhatItDoesNotReadItself) {
  // Valid JSON outside its subset: escapes, non-ASCII, null, nesting, long or inexact numbers.
  CheckDeclined(R"([{"n":"a\"b","v":1}])");
  CheckDeclined(R"([{"n":"a\u0041","v":1}])");
  CheckDeclined("[{\"n\":\"caf\xC3\xA9\",\"v\":1}]");
  CheckDeclined(R"([{"n":"a","v":null}])");
  CheckDeclined(R"([{"n":"a","v":[1]}])");
  CheckDeclined(R"([{"n":"a","v":{"x":1}}])");
  CheckDeclined(R"([1])");
  CheckDeclined(R"({"n":"a","v":1})");
  CheckDeclined(R"([{"v":1234567890123456789}])");    // 19 digits
  CheckDeclined(R"([{"v":12345678901234567.5}])");    // beyond 2^53 as digits
  CheckDeclined(R"([{"v":9007199254740.992}])");      // digits of exactly 2^53: simdjson's slow path
  CheckDeclined(R"([{"v":1e23}])");                    // beyond 10^22
  CheckDeclined(R"([{"v":1e-23}])");
  // Not JSON at all: simdjson words the error.
  for (const char* bad : {"", "[", "[{", "[{}", "[{},]", "[,{}]", "[{\"v\":01}]", "[{\"v\":1.}]", "[{\"v\":.5}]",
                          "[{\"v\":+1}]", "[{\"v\":-}]", "[{\"v\":1e}]", "[{\"v\":1x}]", "[{\"v\":tru}]",
                          "[{\"v\":truex}]", "[{\"v\" 1}]", "[{\"v\":1,}]", "[{\"n\":\"a\tb\"}]", "[] []", "[]x",
                          "[{\"n\":\"unterminated}]", "\xEF\xBB\xBF[]", "[{\"v\":t", "[{\"v\":fals", "[{\"v\":tr"})
    CheckDeclined(bad);
}

// Declined payloads still parse (through simdjson) to the same readings as their scanned twins,
// and invalid JSON keeps simdjson's error.
TEST(SenmlScan, DeclinedPayloadsParseThroughSimdjson) {
  PayloadParser parser{PayloadOptions{}};
  std::vector<Reading> plain, escaped;
  PayloadError err;
  CHECK_TRUE(parser.Parse(R"([{"bn":"gw/","n":"ab","u":"Cel","v":21.37,"t":1700000000.5}])", "", 0, "m", &plain, &err));
  CHECK_TRUE(parser.Parse(R"([{"bn":"gw/","n":"a\u0062","u":"C\u0065l","v":21.37,"t":1700000000.5}])", "", 0, "m",
                          &escaped, &err));
  LONGS_EQUAL(1, plain.size());
  LONGS_EQUAL(1, escaped.size());
  STRCMP_EQUAL("gw/ab", escaped[0].sensor.c_str());
  CHECK(plain[0].sensor == escaped[0].sensor && plain[0].unit == escaped[0].unit &&
        plain[0].ts_us == escaped[0].ts_us && plain[0].value == escaped[0].value);
  std::vector<Reading> none;
  CHECK_FALSE(parser.Parse(R"([{"n":"a","v":01}])", "t", 0, "m", &none, &err));
  STRCMP_EQUAL("parse", err.rule.c_str());
  CHECK(err.reason.find("not valid JSON") == 0);
  CHECK_TRUE(none.empty());
  // A record that is not an object is found by either path, at the same index.
  CHECK_FALSE(parser.Parse(R"([{"n":"a","v":1},{"n":"b\u0062","v":2},7])", "", 0, "m", &none, &err));
  STRCMP_EQUAL("record 2: a SenML record is a JSON object, got a number", err.reason.c_str());
  CHECK_FALSE(parser.Parse(R"({"n":"a","v":1})", "", 0, "m", &none, &err));
  STRCMP_EQUAL("a SenML pack is a JSON array of records, got an object", err.reason.c_str());
  CHECK_TRUE(none.empty());
}

// The scratch stays between ordinary packs and is freed after an unusually large one; a pack
// scanned after either reads the same.
TEST(SenmlScan, ScratchIsKeptForOrdinaryPacksAndFreedAfterALargeOne) {
  SenmlPack pack;
  const std::string small = R"([{"n":"a","v":1},{"n":"b","v":2}])";
  CHECK_TRUE(ScanSenmlPack(small, &pack));
  pack.TrimScratch();
  CHECK(!pack.fields.empty());  // kept: the next pack allocates nothing
  CHECK_TRUE(pack.ends.empty());  // and the pack is empty: nothing refers to the scratch
  std::string large = "[";
  for (int i = 0; i < 3000; ++i) large += std::string(i ? "," : "") + "{\"n\":\"s" + std::to_string(i) + "\",\"v\":" + std::to_string(i) + "}";
  large += "]";
  CHECK_TRUE(ScanSenmlPack(large, &pack));
  LONGS_EQUAL(3000, pack.ends.size());
  LONGS_EQUAL(6000, pack.ends.back());
  pack.TrimScratch();
  CHECK_TRUE(pack.fields.empty());
  CHECK_TRUE(pack.scan_copy.capacity() <= 64 * 1024);
  CheckScannedLikeSimdjson(small);
  CheckScannedLikeSimdjson(large);
}
