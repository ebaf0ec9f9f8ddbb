// Payload parsers: the SenML examples of RFC 8428 section 5, plain numbers, JSON pointers, and
// malformed / oversized / wrong-typed payloads (rejected as a whole, with a rule and a reason).
#include <cmath>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/payload.h"
#include "edgepipe/firmware_bridge/topic_template.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;

namespace {

constexpr int64_t kNow = 1'700'000'000'000'000;  // arrival time used by every test

struct Parsed {
  bool ok = false;
  std::vector<Reading> readings;
  PayloadError error;
};

Parsed Run(PayloadParser& p, const std::string& payload, const std::string& topic_sensor = "") {
  Parsed r;
  r.ok = p.Parse(payload, topic_sensor, kNow, "mqtt", &r.readings, &r.error);
  return r;
}

PayloadOptions Senml() { return PayloadOptions{}; }

}  // namespace

TEST_GROUP(Senml) {
  PayloadParser parser{Senml()};
};

// RFC 8428 5.1.1: a single reading without time is "now".
TEST(Senml, Rfc5_1_1SingleDatapoint) {
  Parsed r = Run(parser, R"([{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(1, r.readings.size());
  STRCMP_EQUAL("urn:dev:ow:10e2073a01080063", r.readings[0].sensor.c_str());
  STRCMP_EQUAL("Cel", r.readings[0].unit.c_str());
  DOUBLES_EQUAL(23.1, r.readings[0].value, 0);
  LONGS_EQUAL(kNow, r.readings[0].ts_us);
  STRCMP_EQUAL("mqtt", r.readings[0].source.c_str());
}

// RFC 8428 5.1.2: base name concatenated with each name.
TEST(Senml, Rfc5_1_2MultipleDatapoints) {
  Parsed r = Run(parser, R"([
     {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
     {"n":"current","u":"A","v":1.2}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(2, r.readings.size());
  STRCMP_EQUAL("urn:dev:ow:10e2073a01080063:voltage", r.readings[0].sensor.c_str());
  STRCMP_EQUAL("V", r.readings[0].unit.c_str());
  STRCMP_EQUAL("urn:dev:ow:10e2073a01080063:current", r.readings[1].sensor.c_str());
  STRCMP_EQUAL("A", r.readings[1].unit.c_str());
  DOUBLES_EQUAL(1.2, r.readings[1].value, 0);
}

// RFC 8428 5.1.3: base time + relative times, base unit, version.
TEST(Senml, Rfc5_1_3MultipleMeasurements) {
  Parsed r = Run(parser, R"([
     {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
     {"n":"current","t":-5,"v":1.2},
     {"n":"current","t":-4,"v":1.3},
     {"n":"current","t":-3,"v":1.4},
     {"n":"current","t":-2,"v":1.5},
     {"n":"current","t":-1,"v":1.6},
     {"n":"current","v":1.7}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(7, r.readings.size());
  STRCMP_EQUAL("urn:dev:ow:10e2073a0108006:voltage", r.readings[0].sensor.c_str());
  STRCMP_EQUAL("V", r.readings[0].unit.c_str());
  LONGS_EQUAL(1'276'020'076'001'000, r.readings[0].ts_us);
  for (int i = 1; i <= 6; ++i) {
    STRCMP_EQUAL("urn:dev:ow:10e2073a0108006:current", r.readings[i].sensor.c_str());
    STRCMP_EQUAL("A", r.readings[i].unit.c_str());  // base unit
    LONGS_EQUAL(1'276'020'076'001'000 - (6 - i) * 1'000'000, r.readings[i].ts_us);
  }
  DOUBLES_EQUAL(1.7, r.readings[6].value, 0);
}

// RFC 8428 5.1.4: records without a name take the base name; base unit overridden per record.
TEST(Senml, Rfc5_1_4BaseNameOnly) {
  Parsed r = Run(parser, R"([
     {"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,"bu":"%RH","v":20},
     {"u":"lon","v":24.30621},
     {"u":"lat","v":60.07965},
     {"t":60,"v":20.3},
     {"u":"lon","t":60,"v":24.30622}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(5, r.readings.size());
  for (const Reading& x : r.readings) STRCMP_EQUAL("urn:dev:ow:10e2073a01080063", x.sensor.c_str());
  STRCMP_EQUAL("%RH", r.readings[0].unit.c_str());
  STRCMP_EQUAL("lon", r.readings[1].unit.c_str());
  STRCMP_EQUAL("%RH", r.readings[3].unit.c_str());
  LONGS_EQUAL(1'320'067'464'000'000, r.readings[0].ts_us);
  LONGS_EQUAL(1'320'067'524'000'000, r.readings[3].ts_us);
}

// RFC 8428 5.1.6: the value types.
TEST(Senml, Rfc5_1_6MultipleDataTypes) {
  Parsed r = Run(parser, R"([
     {"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},
     {"n":"label","vs":"Machine Room"},
     {"n":"open","vb":false},
     {"n":"nfc-reader","vd":"aGkgCg"}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(4, r.readings.size());
  CHECK(r.readings[0].type == ValueType::kNumber);
  CHECK(r.readings[1].type == ValueType::kString);
  STRCMP_EQUAL("Machine Room", r.readings[1].text.c_str());
  CHECK(r.readings[2].type == ValueType::kBool);
  DOUBLES_EQUAL(0, r.readings[2].value, 0);
  CHECK(r.readings[3].type == ValueType::kString);
  STRCMP_EQUAL("aGkgCg", r.readings[3].text.c_str());
  STRCMP_EQUAL("urn:dev:ow:10e2073a01080063:nfc-reader", r.readings[3].sensor.c_str());
}

// 4.5.3: small positive times are in the future relative to now; base value and base sum add.
TEST(Senml, RelativeFutureTimeBaseValueAndSum) {
  Parsed r = Run(parser, R"([{"bn":"m/","bt":10,"bv":100,"bs":1000,"n":"a","v":5,"t":2},{"n":"e","s":7}])");
  CHECK_TRUE(r.ok);
  LONGS_EQUAL(2, r.readings.size());
  LONGS_EQUAL(kNow + 12'000'000, r.readings[0].ts_us);
  DOUBLES_EQUAL(105, r.readings[0].value, 0);
  STRCMP_EQUAL("m/e/sum", r.readings[1].sensor.c_str());
  DOUBLES_EQUAL(1007, r.readings[1].value, 0);
}

TEST(Senml, EmptyNameUsesTopicSensor) {
  Parsed r = Run(parser, R"([{"v":1}])", "site-a/t-1");
  CHECK_TRUE(r.ok);
  STRCMP_EQUAL("site-a/t-1", r.readings[0].sensor.c_str());
  Parsed none = Run(parser, R"([{"v":1}])");
  CHECK_FALSE(none.ok);
  STRCMP_EQUAL("topic", none.error.rule.c_str());
}

TEST(Senml, RejectsTheWholePack) {
  struct Case {
    const char* payload;
    const char* rule;
    const char* reason_part;
  } cases[] = {
      {R"([{"n":"a","v":1},{"n":"b","v":"x"}])", "schema", "record 1: field \"v\" must be a number"},
      {R"([{"n":"a","v":1,"vs":"x"}])", "senml", "more than one value field"},
      {R"([{"n":"a"}])", "senml", "no value"},
      {R"([{"n":"a","v":1,"foo_":2}])", "senml", "must-understand"},
      {R"([{"n":"a","v":1,"bver":11}])", "senml", "version 11"},
      // Found by the fuzzer: a version beyond any integer (its message once cast it to one).
      {R"([{"n":"a","v":1,"bver":1.0026e+79}])", "senml", "version 1.0026e+79 is newer"},
      {R"([{"n":"-bad","v":1}])", "senml", "invalid SenML name"},
      {R"([{"n":"a b","v":1}])", "senml", "invalid SenML name"},
      // bn + n as one name: the base name is checked once per pack, the names after it each time.
      {R"([{"bn":"gw/","n":"t 1","v":1}])", "senml", "invalid SenML name \"gw/t 1\""},
      {R"([{"bn":"-gw/","n":"t1","v":1}])", "senml", "invalid SenML name \"-gw/t1\""},
      {R"([{"bn":"g w/","n":"t1","v":1}])", "senml", "invalid SenML name"},
      {R"([{"bn":"gw/","n":"t1","v":1},{"bn":"_gw/","n":"t1","v":2}])", "senml", "record 1: invalid SenML name"},
      {R"([{"bn":"gw/","n":"t1","v":1},{"n":"t\u00e9","v":2}])", "senml", "record 1: invalid SenML name"},
      {R"([{"bn":"-gw","v":1}])", "senml", "invalid SenML name"},
      {R"({"n":"a","v":1})", "senml", "JSON array"},
      {R"([1,2])", "senml", "JSON object"},
      {R"([])", "senml", "empty"},
      {R"([{"n":"a","v":1})", "parse", "not valid JSON"},
      {"", "parse", "not valid JSON"},
      {R"([{"n":"a","v":1,"t":1e300}])", "senml", "out of range"},
  };
  for (const Case& c : cases) {
    Parsed r = Run(parser, c.payload);
    CHECK_FALSE_TEXT(r.ok, c.payload);
    CHECK_TRUE_TEXT(r.readings.empty(), c.payload);
    STRCMP_EQUAL_TEXT(c.rule, r.error.rule.c_str(), c.payload);
    CHECK_TEXT(r.error.reason.find(c.reason_part) != std::string::npos, (std::string(c.payload) + " -> " + r.error.reason).c_str());
  }
}

// Only the whole name's first character must be a letter or digit: a name after a base name
// may start with any name character; a base name changed part way applies from its record on.
TEST(Senml, NamesAfterABaseNameAndABaseNameChangedInThePack) {
  Parsed r = Run(parser, R"([{"bn":"gw/","n":"-t1","v":1},{"n":"_x.y:z","v":2},{"bn":"Gw2/","n":"a","v":3},)"
                         R"({"v":4},{"bn":"","n":"9b","v":5}])");
  CHECK_TRUE_TEXT(r.ok, r.error.reason.c_str());
  LONGS_EQUAL(5, r.readings.size());
  STRCMP_EQUAL("gw/-t1", r.readings[0].sensor.c_str());
  STRCMP_EQUAL("gw/_x.y:z", r.readings[1].sensor.c_str());
  STRCMP_EQUAL("Gw2/a", r.readings[2].sensor.c_str());
  STRCMP_EQUAL("Gw2/", r.readings[3].sensor.c_str());
  STRCMP_EQUAL("9b", r.readings[4].sensor.c_str());
  // An empty base name again: the name alone must start with a letter or digit.
  Parsed bad = Run(parser, R"([{"bn":"gw/","n":"a","v":1},{"bn":"","n":"-a","v":2}])");
  CHECK_FALSE(bad.ok);
  CHECK_TEXT(bad.error.reason.find("record 1: invalid SenML name \"-a\"") != std::string::npos, bad.error.reason.c_str());
}

// The rejection names the record's sensor (the quarantine row's `sensor`), also when the
// reading being built for it was dropped with the pack.
TEST(Senml, ARejectedRecordNamesItsSensor) {
  Parsed bad_name = Run(parser, R"([{"bn":"gateway-with-a-long-name/","n":"a","v":1},{"n":"t 1","v":2}])");
  CHECK_FALSE(bad_name.ok);
  STRCMP_EQUAL("gateway-with-a-long-name/t 1", bad_name.error.sensor.c_str());
  Parsed no_value = Run(parser, R"([{"bn":"gateway-with-a-long-name/","n":"b"}])");
  CHECK_FALSE(no_value.ok);
  STRCMP_EQUAL("gateway-with-a-long-name/b", no_value.error.sensor.c_str());
  Parsed bad_time = Run(parser, R"([{"n":"a-sensor-name-past-sixteen","v":1,"t":1e300}])");
  CHECK_FALSE(bad_time.ok);
  STRCMP_EQUAL("a-sensor-name-past-sixteen", bad_time.error.sensor.c_str());
}

TEST(Senml, OversizePayloadAndTooManyRecords) {
  PayloadOptions o;
  o.max_bytes = 64;
  o.max_readings = 2;
  PayloadParser p(o);
  Parsed big = Run(p, "[" + std::string(100, ' ') + "]");
  CHECK_FALSE(big.ok);
  STRCMP_EQUAL("oversize", big.error.rule.c_str());
  Parsed many = Run(p, R"([{"n":"a","v":1},{"n":"a","v":2},{"n":"a","v":3}])");
  CHECK_FALSE(many.ok);
  STRCMP_EQUAL("oversize", many.error.rule.c_str());
}

TEST(Senml, ParserIsReusableAfterErrors) {
  CHECK_FALSE(Run(parser, "{{{").ok);
  Parsed r = Run(parser, R"([{"n":"a","v":2}])");
  CHECK_TRUE(r.ok);
  DOUBLES_EQUAL(2, r.readings[0].value, 0);
}

TEST_GROUP(NumberPayload) {};

TEST(NumberPayload, ParsesAndRejects) {
  PayloadOptions o;
  o.format = PayloadFormat::kNumber;
  o.unit = "Cel";
  PayloadParser p(o);
  Parsed r = Run(p, " 21.37\n", "boiler/t-17");
  CHECK_TRUE(r.ok);
  DOUBLES_EQUAL(21.37, r.readings[0].value, 0);
  STRCMP_EQUAL("boiler/t-17", r.readings[0].sensor.c_str());
  STRCMP_EQUAL("Cel", r.readings[0].unit.c_str());
  LONGS_EQUAL(kNow, r.readings[0].ts_us);
  CHECK_TRUE(Run(p, "-4e2", "x").ok);
  Parsed bad = Run(p, "21.3x", "x");
  CHECK_FALSE(bad.ok);
  STRCMP_EQUAL("parse", bad.error.rule.c_str());
  CHECK_FALSE(Run(p, "", "x").ok);
  Parsed nosensor = Run(p, "1", "");
  CHECK_FALSE(nosensor.ok);
  STRCMP_EQUAL("topic", nosensor.error.rule.c_str());
}

TEST_GROUP(JsonPayload) {};

TEST(JsonPayload, DefaultPointersReadTheIssueExample) {
  PayloadParser p{[] {
    PayloadOptions o;
    o.format = PayloadFormat::kJson;
    return o;
  }()};
  Parsed r = Run(p, R"({"sensor":"t-17","ts":1700000000.123,"value":21.37})", "ignored");
  CHECK_TRUE(r.ok);
  STRCMP_EQUAL("t-17", r.readings[0].sensor.c_str());
  LONGS_EQUAL(1'700'000'000'123'000, r.readings[0].ts_us);
  DOUBLES_EQUAL(21.37, r.readings[0].value, 0);
}

TEST(JsonPayload, NestedPointersUnitsMillisIsoAndArrays) {
  PayloadOptions o;
  o.format = PayloadFormat::kJson;
  o.value_pointer = "/data/v";
  o.time_pointer = "/meta/t";
  o.sensor_pointer = "/meta/id";
  o.unit_pointer = "/data/unit";
  o.time_unit = TimeUnit::kMilliseconds;
  PayloadParser p(o);
  Parsed r = Run(p, R"({"meta":{"id":"a/b","t":1700000000123},"data":{"v":true,"unit":"1"}})");
  CHECK_TRUE(r.ok);
  STRCMP_EQUAL("a/b", r.readings[0].sensor.c_str());
  LONGS_EQUAL(1'700'000'000'123'000, r.readings[0].ts_us);
  CHECK(r.readings[0].type == ValueType::kBool);
  STRCMP_EQUAL("1", r.readings[0].unit.c_str());
  Parsed iso = Run(p, R"({"meta":{"id":"x","t":"2023-11-14T22:13:20.5Z"},"data":{"v":"on"}})");
  CHECK_TRUE(iso.ok);
  LONGS_EQUAL(1'700'000'000'500'000, iso.readings[0].ts_us);
  STRCMP_EQUAL("on", iso.readings[0].text.c_str());
  Parsed arr = Run(p, R"([{"meta":{"id":"x","t":1},"data":{"v":1}},{"meta":{"id":"y"},"data":{"v":2}}])");
  CHECK_TRUE(arr.ok);
  LONGS_EQUAL(2, arr.readings.size());
  LONGS_EQUAL(kNow, arr.readings[1].ts_us);  // no time: arrival
  // One bad element rejects the whole message.
  Parsed bad = Run(p, R"([{"meta":{"id":"x"},"data":{"v":1}},{"meta":{"id":"y"},"data":{"v":[1]}}])");
  CHECK_FALSE(bad.ok);
  CHECK_TRUE(bad.readings.empty());
  STRCMP_EQUAL("schema", bad.error.rule.c_str());
  CHECK(bad.error.reason.find("element 1") != std::string::npos);
  Parsed novalue = Run(p, R"({"meta":{"id":"x"}})");
  CHECK_FALSE(novalue.ok);
  CHECK(novalue.error.reason.find("no value at /data/v") != std::string::npos);
  Parsed badtime = Run(p, R"({"meta":{"id":"x","t":"yesterday"},"data":{"v":1}})");
  CHECK_FALSE(badtime.ok);
  CHECK(badtime.error.reason.find("ISO 8601") != std::string::npos);
}

TEST(JsonPayload, PointerChecks) {
  STRCMP_EQUAL("", CheckJsonPointer("/a/b~1c").c_str());
  STRCMP_EQUAL("", CheckJsonPointer("").c_str());
  CHECK(!CheckJsonPointer("value").empty());
  CHECK(!CheckJsonPointer("/a~2").empty());
}

TEST_GROUP(TopicTemplate) {};

TEST(TopicTemplate, CapturesFormatsAndFilters) {
  Result<TopicTemplate> t = TopicTemplate::Parse("sensors/{site}/{sensor}");
  CHECK_TRUE(t.ok());
  std::string id;
  CHECK_TRUE(t->Match("sensors/boiler/t-17", &id));
  STRCMP_EQUAL("boiler/t-17", id.c_str());
  CHECK_FALSE(t->Match("sensors/boiler", &id));
  CHECK_FALSE(t->Match("sensors/boiler/t-17/extra", &id));
  CHECK_FALSE(t->Match("other/boiler/t-17", &id));
  CHECK_FALSE(t->Match("sensors//t-17", &id));
  STRCMP_EQUAL("sensors/+/+", t->Filter().c_str());

  Result<TopicTemplate> f = TopicTemplate::Parse("site/{site}/+/{sensor}/#", "{sensor}@{site}");
  CHECK_TRUE(f.ok());
  CHECK_TRUE(f->Match("site/a/x/t1/y/z", &id));
  STRCMP_EQUAL("t1@a", id.c_str());
  CHECK_TRUE(f->Match("site/a/x/t1", &id));
  STRCMP_EQUAL("site/+/+/+/#", f->Filter().c_str());

  Result<TopicTemplate> whole = TopicTemplate::Parse("");
  CHECK_TRUE(whole->Match("a/b/c", &id));
  STRCMP_EQUAL("a/b/c", id.c_str());

  CHECK_FALSE(TopicTemplate::Parse("a/#/b").ok());
  CHECK_FALSE(TopicTemplate::Parse("a/x{y}").ok());
  CHECK_FALSE(TopicTemplate::Parse("a/{x}/{x}").ok());
  CHECK_FALSE(TopicTemplate::Parse("a/{x}", "{y}").ok());
}
