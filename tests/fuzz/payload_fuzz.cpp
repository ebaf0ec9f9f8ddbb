// libFuzzer target for the MQTT payload parsers (SenML, number, JSON pointers) and topic
// templates. Built and run by scripts/test.d/30-fuzz.sh. The first byte picks the format and
// options; the rest is the payload (and, split at the first newline, a topic).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/payload.h"
#include "edgepipe/firmware_bridge/topic_template.h"

using namespace edgepipe;
using namespace edgepipe::fb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t sel = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  PayloadOptions o;
  o.format = static_cast<PayloadFormat>(sel % 3);
  o.max_bytes = (sel & 0x08) ? 64 : 4096;
  o.max_readings = (sel & 0x10) ? 3 : 1000;
  o.time_unit = static_cast<TimeUnit>((sel >> 5) % 3);
  if (sel & 0x80) {
    o.value_pointer = "/a/0/v";
    o.time_pointer = "/t";
    o.sensor_pointer = "/s~1x";
    o.unit_pointer = "/u";
  }
  PayloadParser parser(o);
  std::string topic_sensor;
  size_t nl = rest.find('\n');
  if (nl != std::string_view::npos) {
    Result<TopicTemplate> t = TopicTemplate::Parse("s/{site}/+/{sensor}/#", "{sensor}@{site}");
    if (!t.ok()) abort();
    t->Match(rest.substr(0, nl), &topic_sensor);
    rest = rest.substr(nl + 1);
  }
  std::vector<Reading> out(1);  // a reading already there must survive a rejection untouched
  PayloadError err;
  bool ok = parser.Parse(rest, topic_sensor, 1'700'000'000'000'000, "fuzz", &out, &err);
  if (ok) {
    if (out.size() < 2) abort();  // success means at least one reading
    for (size_t i = 1; i < out.size(); ++i) {
      if (out[i].sensor.empty() || out[i].source != "fuzz") abort();
    }
  } else {
    if (out.size() != 1 || err.rule.empty() || err.reason.empty()) abort();
  }
  // Reuse after any input must keep working.
  std::vector<Reading> again;
  PayloadError e2;
  PayloadOptions so;
  PayloadParser senml(so);
  if (!senml.Parse("[{\"n\":\"x\",\"v\":1}]", "", 0, "f", &again, &e2) || again.size() != 1) abort();
  return 0;
}
