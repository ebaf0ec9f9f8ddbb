// The built `edgepipe` binary with per-sensor rules and with clock handling: what the outbox
// holds (quality flags, quarantine reasons, re-stamped readings) and what `edgepipe status`
// reports, across a kill -9 while the clock is unsynchronised.
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/time_util.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::testing;
using nlohmann::json;

namespace {

const char* kGenerated = "sensor_count = 4\n";
const char* kRoom = R"(
[[source.sensor]]
name = "room/temperature"
unit = "Cel"
base = 20
amplitude = 0
noise = 1
decimals = 2
[[source.sensor]]
name = "room/humidity"
unit = "%RH"
base = 45
amplitude = 0
noise = 1
decimals = 1
)";

std::string Config(const std::string& dir, const std::string& sensors, const std::string& extra) {
  return "[device]\nid = \"val-gw\"\nlabels = { site = \"lab\" }\n"
         "[agent]\nstatus_interval = \"1s\"\nshutdown_timeout = \"10s\"\n"
         "[buffer]\npath = \"" + dir + "/buffer.db\"\ncommit_interval = \"50ms\"\n"
         "[batch]\nmax_readings = 500\nmax_age = \"300ms\"\n"
         "[upload]\nurl = \"file://" + dir + "/outbox\"\npoll_interval = \"50ms\"\n"
         "[[source]]\ntype = \"simulator\"\nname = \"sim\"\ninterval = \"20ms\"\nseed = 11\n"
         "nan_rate = 0.05\n" + sensors + extra;
}

struct Outbox {
  std::vector<json> readings;
  std::vector<json> quarantine;
};

Outbox ReadOutbox(const std::string& dir) {
  Outbox o;
  if (!FileExists(dir)) return o;
  for (const std::string& rel : ListFiles(dir)) {
    ProcessResult z = RunProcess({"zstd", "-dc", dir + "/" + rel});
    LONGS_EQUAL(0, z.exit_code);
    std::stringstream ss(z.out);
    std::string line;
    while (std::getline(ss, line)) (rel.rfind("quarantine/", 0) == 0 ? o.quarantine : o.readings).push_back(json::parse(line));
  }
  return o;
}

bool HasFlag(const json& r, const std::string& flag) {
  if (!r.contains("quality")) return false;
  for (const auto& f : r["quality"])
    if (f == flag) return true;
  return false;
}

json Report(const std::string& dir) {
  const std::string path = dir + "/buffer.db.quality.json";
  if (!FileExists(path)) return json();
  json j = json::parse(ReadFile(path), nullptr, false);
  return j.is_discarded() ? json() : j;
}

}  // namespace

TEST_GROUP(ValidationEndToEnd) {
  TempDir dir;
};

TEST(ValidationEndToEnd, RulesFlagAndQuarantineAndStatusReportsPerSensor) {
  // A room temperature of 20 +/- 1 Cel, and NaNs at 5 %. The range is judged on the converted
  // value, so its bound is in degF: 68 [degF] = 20 Cel.
  WriteFile(dir.Join("c.toml"), Config(dir.path(), kRoom, R"(
[[validation.sensor]]
match = "*temperature*"
range = { max = 68, action = "flag" }
unit = { from = "Cel", to = "[degF]" }
resolution = 0.1
)"));
  ProcessResult r = RunProcess({EdgepipeBinary(), "run", "--config", dir.Join("c.toml"), "--duration", "3s"});
  LONGS_EQUAL(0, r.exit_code);
  // The periodic status line (every second here) and the final one end with the quality part.
  CHECK(r.err.find("; quality: rejected finite ") != std::string::npos);
  CHECK(r.err.find("flagged range ") != std::string::npos);
  Outbox o = ReadOutbox(dir.Join("outbox"));
  CHECK(o.readings.size() > 100);
  uint64_t temps = 0, flagged = 0;
  for (const json& rec : o.readings) {
    STRCMP_EQUAL("val-gw", rec["device"].get<std::string>().c_str());
    STRCMP_EQUAL("lab", rec["labels"]["site"].get<std::string>().c_str());
    STRCMP_EQUAL("sim", rec["source"].get<std::string>().c_str());
    const std::string sensor = rec["sensor"];
    if (sensor.find("temperature") == std::string::npos) continue;
    ++temps;
    STRCMP_EQUAL("[degF]", rec["unit"].get<std::string>().c_str());
    const double f = rec["value"];
    CHECK(f > 50 && f < 90);  // 20 +/- 1 Cel in degF
    if (HasFlag(rec, "range")) {
      ++flagged;
      CHECK(f > 68);
    } else {
      CHECK(f <= 68);
    }
  }
  CHECK(temps > 10);
  CHECK(flagged > 0 && flagged < temps);
  CHECK(!o.quarantine.empty());
  for (const json& q : o.quarantine) {
    STRCMP_EQUAL("finite", q["rule"].get<std::string>().c_str());
    STRCMP_EQUAL("value is NaN", q["reason"].get<std::string>().c_str());
  }

  ProcessResult st = RunProcess({EdgepipeBinary(), "status", "--config", dir.Join("c.toml"), "--json"});
  LONGS_EQUAL(0, st.exit_code);
  json j = json::parse(st.out);
  const json& q = j["quality"];
  CHECK(q.is_object());
  LONGS_EQUAL(o.quarantine.size(), q["total"]["rejected"]["finite"].get<uint64_t>());
  LONGS_EQUAL(flagged, q["total"]["flags"]["range"].get<uint64_t>());
  uint64_t per_sensor = 0;
  for (const auto& [name, c] : q["sensors"].items())
    if (c.contains("flags") && c["flags"].contains("range")) per_sensor += c["flags"]["range"].get<uint64_t>();
  LONGS_EQUAL(flagged, per_sensor);
  ProcessResult text = RunProcess({EdgepipeBinary(), "status", "--config", dir.Join("c.toml")});
  CHECK(text.out.find("rejected by rule: finite") != std::string::npos);
  CHECK(text.out.find("flagged by rule:  range") != std::string::npos);
  // Counters add up across restarts.
  r = RunProcess({EdgepipeBinary(), "run", "--config", dir.Join("c.toml"), "--duration", "1s"});
  LONGS_EQUAL(0, r.exit_code);
  json again = Report(dir.path());
  CHECK(again["total"]["received"].get<uint64_t>() > q["total"]["received"].get<uint64_t>());
  STRCMP_EQUAL(q["since"].get<std::string>().c_str(), again["since"].get<std::string>().c_str());
}

TEST(ValidationEndToEnd, HeldWhileUnsyncedSurvivesKillNineAndIsRestampedAtSync) {
  const int64_t start = RealClock::Default().SystemNowUs();
  WriteFile(dir.Join("c.toml"), Config(dir.path(), kGenerated, "[validation.clock]\nmode = \"timesyncd\"\nsynchronized_file = \"" +
                                                       dir.Join("synced") + "\"\ncheck_interval = \"100ms\"\n"));
  uint64_t held_before_kill = 0;
  {
    Child agent({EdgepipeBinary(), "run", "--config", dir.Join("c.toml")}, {}, dir.Join("out1"), dir.Join("err1"));
    CHECK_TRUE(WaitUntil(20000, [&] {
      json rep = Report(dir.path());
      if (rep.is_null() || !rep.contains("clock")) return false;
      held_before_kill = rep["clock"]["held_readings"].get<uint64_t>();
      return held_before_kill >= 200;
    }));
    CHECK_FALSE(Report(dir.path())["clock"]["synchronized"].get<bool>());
    LONGS_EQUAL(0, ReadOutbox(dir.Join("outbox")).readings.size());  // nothing goes out with a wrong time
    agent.Signal(SIGKILL);
    agent.Wait(5000);
  }
  CHECK(ReadFile(dir.Join("buffer.db.clock-hold")).size() > 16);
  {
    Child agent({EdgepipeBinary(), "run", "--config", dir.Join("c.toml")}, {}, dir.Join("out2"), dir.Join("err2"));
    CHECK_TRUE(WaitUntil(20000, [&] {
      json rep = Report(dir.path());
      return !rep.is_null() && rep.contains("clock") && rep["clock"]["held_readings"].get<uint64_t>() > held_before_kill;
    }));
    WriteFile(dir.Join("synced"), "");  // systemd-timesyncd signals sync
    CHECK_TRUE(WaitUntil(20000, [&] {
      json rep = Report(dir.path());
      return !rep.is_null() && rep["clock"]["synchronized"].get<bool>() && rep["clock"]["held_readings"] == 0 &&
             rep["clock"]["restamped"].get<uint64_t>() > held_before_kill;
    }));
    agent.Signal(SIGTERM);
    LONGS_EQUAL(0, agent.Wait(30000));
  }
  const int64_t end = RealClock::Default().SystemNowUs();
  Outbox o = ReadOutbox(dir.Join("outbox"));
  uint64_t restamped = 0;
  std::set<std::pair<std::string, std::string>> seen;
  for (const json& rec : o.readings) {
    const bool first_time = seen.insert(std::make_pair(rec["sensor"].get<std::string>(), rec["ts"].get<std::string>())).second;
    CHECK_TRUE(first_time);  // nothing stored twice
    if (!HasFlag(rec, "restamped")) continue;
    ++restamped;
    // This machine's clock is right, so re-stamped times land where the readings were taken.
    const int64_t ts = *ParseIso8601(rec["ts"].get<std::string>());
    CHECK(ts >= start - 1'000'000 && ts <= end);
  }
  CHECK(restamped > held_before_kill);
  CHECK(ReadFile(dir.Join("err2")).find("re-stamping") != std::string::npos);
}
