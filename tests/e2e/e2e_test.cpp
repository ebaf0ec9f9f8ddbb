// End-to-end: the built `edgepipe` binary with a temporary config; objects are read back with
// the `zstd` command-line tool (an independent decoder) and parsed as NDJSON.
#include <signal.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::testing;
using nlohmann::json;

namespace {

std::string Config(const std::string& dir, const std::string& source_extra, const std::string& extra = "") {
  return "[device]\nid = \"e2e-gw\"\nlabels = { site = \"lab\" }\n"
         "[agent]\nstatus_interval = \"1s\"\nshutdown_timeout = \"10s\"\n"
         "[buffer]\npath = \"" + dir + "/buffer.db\"\ncommit_interval = \"50ms\"\n"
         "[batch]\nmax_readings = 500\nmax_age = \"300ms\"\n"
         "[upload]\nurl = \"file://" + dir + "/outbox\"\npoll_interval = \"50ms\"\n" + extra +
         "[[source]]\ntype = \"simulator\"\nname = \"sim\"\nsensor_count = 6\ninterval = \"10ms\"\nseed = 7\n" + source_extra;
}

struct Outbox {
  std::vector<json> readings;
  std::vector<json> quarantine;
  std::vector<std::string> keys;
};

Outbox ReadOutbox(const std::string& dir) {
  Outbox o;
  for (const std::string& rel : ListFiles(dir)) {
    CHECK_TRUE(rel.size() > 4 && rel.substr(rel.size() - 4) == ".zst");
    CHECK_TRUE(rel.find("/.") == std::string::npos);  // no temp files left behind
    o.keys.push_back(rel);
    ProcessResult z = RunProcess({"zstd", "-dc", dir + "/" + rel});
    LONGS_EQUAL(0, z.exit_code);
    std::stringstream ss(z.out);
    std::string line;
    while (std::getline(ss, line)) {
      json j = json::parse(line);  // throws (fails the test) on invalid JSON
      (rel.rfind("quarantine/", 0) == 0 ? o.quarantine : o.readings).push_back(j);
    }
  }
  return o;
}

json Summary(const std::string& path) { return json::parse(ReadFile(path)); }

}  // namespace

TEST_GROUP(EndToEnd) {
  TempDir dir;
};

TEST(EndToEnd, SimulatorToFileOutboxCountsMatch) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), "max_readings = 1200\nnan_rate = 0.01\n"));
  ProcessResult r = RunProcess({EdgepipeBinary(), "run", "--config", dir.Join("edgepipe.toml"), "--duration", "4s",
                                "--summary-json", dir.Join("summary.json")});
  if (r.exit_code != 0) FAIL(r.err.c_str());
  json s = Summary(dir.Join("summary.json"));
  Outbox o = ReadOutbox(dir.Join("outbox"));

  const uint64_t accepted = s["readings"]["accepted"];
  const uint64_t rejected = s["readings"]["rejected"].value("finite", 0);
  LONGS_EQUAL(1200, s["readings"]["received"].get<uint64_t>());
  LONGS_EQUAL(1200, accepted + rejected);
  CHECK(rejected > 0);  // nan_rate 1% of 1200
  LONGS_EQUAL(accepted, o.readings.size());
  LONGS_EQUAL(accepted, s["uploads"]["readings"].get<uint64_t>());
  LONGS_EQUAL(rejected, o.quarantine.size());
  LONGS_EQUAL(0, s["buffer"]["pending_readings"].get<uint64_t>());

  // Every reading exactly once; records carry the documented fields.
  std::set<std::pair<std::string, std::string>> seen;
  for (const json& j : o.readings) {
    STRCMP_EQUAL("e2e-gw", j["device"].get<std::string>().c_str());
    STRCMP_EQUAL("lab", j["labels"]["site"].get<std::string>().c_str());
    STRCMP_EQUAL("sim", j["source"].get<std::string>().c_str());
    CHECK_TRUE(j["value"].is_number());
    CHECK_EQUAL(24u, j["ts"].get<std::string>().size());
    const bool fresh = seen.insert({j["sensor"].get<std::string>(), j["ts"].get<std::string>()}).second;
    CHECK_TRUE_TEXT(fresh, ("two readings of " + j["sensor"].get<std::string>() + " at " + j["ts"].get<std::string>()).c_str());
  }
  for (const json& q : o.quarantine) STRCMP_EQUAL("finite", q["rule"].get<std::string>().c_str());
  // Keys follow the Hive layout of the readings' own hour.
  for (const std::string& k : o.keys) {
    if (k.rfind("quarantine/", 0) == 0) continue;
    CHECK(k.rfind("device=e2e-gw/date=", 0) == 0);
    CHECK(k.find("/hour=") != std::string::npos);
    CHECK(k.find(".ndjson.zst") != std::string::npos);
  }
}

TEST(EndToEnd, SigtermDrainsAndExitsZeroAndStatusShowsTheDelivery) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), ""));
  Child agent({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--summary-json", dir.Join("summary.json")}, {},
              dir.Join("out.log"), dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(10000, [&] { return !ListFiles(dir.Join("outbox")).empty(); }));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  json s = Summary(dir.Join("summary.json"));
  Outbox o = ReadOutbox(dir.Join("outbox"));
  CHECK(o.readings.size() > 0);
  LONGS_EQUAL(s["readings"]["accepted"].get<uint64_t>(), o.readings.size());
  CHECK(ReadFile(dir.Join("err.log")).find("received SIGTERM") != std::string::npos);

  ProcessResult st = RunProcess({EdgepipeBinary(), "status", "-c", dir.Join("edgepipe.toml"), "--json"});
  LONGS_EQUAL(0, st.exit_code);
  json sj = json::parse(st.out);
  LONGS_EQUAL(o.readings.size(), sj["readings_acked"].get<uint64_t>());
  LONGS_EQUAL(0, sj["pending_readings"].get<uint64_t>());
  CHECK(sj["last_upload_key"].get<std::string>().find("device=e2e-gw/") == 0);
}

TEST(EndToEnd, DataLeftInTheBufferIsDeliveredOnTheNextRun) {
  // First run: destination not writable (a file where the outbox directory should be), so
  // everything stays in the buffer; second run: destination fixed, backlog delivered.
  WriteFile(dir.Join("outbox"), "not a directory");
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), "max_readings = 300\n", "config_retry = \"1s\"\n"));
  ProcessResult r1 = RunProcess({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--duration", "2s",
                                 "--summary-json", dir.Join("s1.json")});
  LONGS_EQUAL(0, r1.exit_code);
  CHECK(r1.err.find("not a directory") != std::string::npos);
  json s1 = Summary(dir.Join("s1.json"));
  LONGS_EQUAL(0, s1["uploads"]["readings"].get<uint64_t>());
  LONGS_EQUAL(300, s1["buffer"]["pending_readings"].get<uint64_t>() + s1["buffer"]["claimed_readings"].get<uint64_t>());

  std::remove(dir.Join("outbox").c_str());
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), "max_readings = 6\n"));
  ProcessResult r2 = RunProcess({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--duration", "2s",
                                 "--summary-json", dir.Join("s2.json")});
  LONGS_EQUAL(0, r2.exit_code);
  Outbox o = ReadOutbox(dir.Join("outbox"));
  // 300 from the first run + the 6 the second run's simulator produced.
  LONGS_EQUAL(306, o.readings.size());
}

TEST(EndToEnd, BrokenConfigListsEveryProblemWithItsLineAndExits78) {
  WriteFile(dir.Join("bad.toml"), R"([device]
id = "gw 1"
[buffer]
max_size = "lots"
[upload]
url = "file:///tmp/x"
formt = "csv"
[[source]]
type = "simulator"
interval = 5
)");
  ProcessResult r = RunProcess({EdgepipeBinary(), "check-config", dir.Join("bad.toml")});
  LONGS_EQUAL(78, r.exit_code);
  const std::string f = dir.Join("bad.toml");
  CHECK(r.err.find(f + ":2:6: device.id:") != std::string::npos);
  CHECK(r.err.find(f + ":4:12: buffer.max_size: expected a size") != std::string::npos);
  CHECK(r.err.find(f + ":7:1: unknown key 'upload.formt'; did you mean 'format'?") != std::string::npos);
  CHECK(r.err.find(f + ":10:12: source[0].interval:") != std::string::npos);
  CHECK(r.err.find("4 problems found") != std::string::npos);
  // `run` refuses the same file with the same exit status.
  LONGS_EQUAL(78, RunProcess({EdgepipeBinary(), "run", "-c", f}).exit_code);

  // A warning does not refuse the file: it is printed with its place, and the file is OK.
  WriteFile(dir.Join("warn.toml"), R"([device]
id = "gw-1"
[buffer]
commit_readings = 10000
[batch]
max_readings = 5000
[upload]
url = "file:///tmp/x"
[[source]]
type = "simulator"
)");
  r = RunProcess({EdgepipeBinary(), "check-config", dir.Join("warn.toml")});
  LONGS_EQUAL(0, r.exit_code);
  STRCMP_CONTAINS((dir.Join("warn.toml") + ":6:16: warning: batch.max_readings (5000) is less than twice").c_str(), r.err.c_str());
  STRCMP_CONTAINS("OK with 1 warning (device gw-1", r.out.c_str());
}

TEST(EndToEnd, CliUsageErrorsExit64AndHelpWorks) {
  LONGS_EQUAL(64, RunProcess({EdgepipeBinary()}).exit_code);
  LONGS_EQUAL(64, RunProcess({EdgepipeBinary(), "frobnicate"}).exit_code);
  LONGS_EQUAL(64, RunProcess({EdgepipeBinary(), "check-config"}).exit_code);
  LONGS_EQUAL(64, RunProcess({EdgepipeBinary(), "run", "--duration", "soon"}).exit_code);
  for (const char* cmd : {"run", "check-config", "status", "version"}) {
    ProcessResult h = RunProcess({EdgepipeBinary(), cmd, "--help"});
    LONGS_EQUAL(0, h.exit_code);
    CHECK(h.out.find("Usage") != std::string::npos || h.out.find("usage") != std::string::npos);
  }
  ProcessResult v = RunProcess({EdgepipeBinary(), "version"});
  LONGS_EQUAL(0, v.exit_code);
  CHECK(v.out.rfind("edgepipe ", 0) == 0);
}

TEST(EndToEnd, JournaldPrefixesWhenUnderSystemd) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), "max_readings = 6\n"));
  ProcessResult r = RunProcess({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--duration", "1s"},
                               {"JOURNAL_STREAM=8:12345"});
  LONGS_EQUAL(0, r.exit_code);
  CHECK(r.err.find("<5>agent: started") != std::string::npos);
  CHECK(r.err.find("<6>buffer: opened") != std::string::npos);
}
