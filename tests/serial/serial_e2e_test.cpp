// End to end over real kernel pseudo-terminals: mcu-sim (the firmware library behind a pty it
// creates) -> the built edgepipe binary (serial source) -> buffer -> file:// outbox, with
// corruption, MCU reboots, the agent killed with SIGKILL mid-stream, the device unplugged and a
// stalled link. Every reading carries a unique value (mcu-sim --counter-values), so "exactly once"
// is a set comparison; the simulator counts every fault it injected, the agent every corrupt frame.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::testing;
using nlohmann::json;

namespace {

std::string Config(const std::string& dir, const std::string& serial_extra = "") {
  return "[device]\nid = \"serial-gw\"\n"
         "[agent]\nstatus_interval = \"1s\"\nshutdown_timeout = \"10s\"\n"
         "[buffer]\npath = \"" + dir + "/buffer.db\"\ncommit_interval = \"50ms\"\n"
         "[batch]\nmax_readings = 2000\nmax_age = \"300ms\"\n"
         "[upload]\nurl = \"file://" + dir + "/outbox\"\npoll_interval = \"100ms\"\n"
         "[[source]]\ntype = \"serial\"\nname = \"mcu0\"\ndevice = \"" + dir + "/tty\"\nbaud = 230400\n"
         "sensor_prefix = \"lab/\"\nreconnect_min = \"50ms\"\nreconnect_max = \"400ms\"\n" + serial_extra;
}

std::vector<json> ReadReadings(const std::string& dir) {
  std::vector<json> out;
  for (const std::string& rel : ListFiles(dir)) {
    if (rel.rfind("quarantine/", 0) == 0) continue;
    ProcessResult z = RunProcess({"zstd", "-dc", dir + "/" + rel});
    LONGS_EQUAL(0, z.exit_code);
    std::stringstream ss(z.out);
    std::string line;
    while (std::getline(ss, line)) out.push_back(json::parse(line));
  }
  return out;
}

// Lines of mcu-sim's event file with this event name.
std::vector<json> Events(const std::string& path, const std::string& name) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.back() != '}') continue;  // a line being written
    json j = json::parse(line);
    if (j["event"] == name) out.push_back(j);
  }
  return out;
}

uint64_t Generated(const std::string& events) {
  uint64_t g = 0;
  std::ifstream in(events);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line.back() == '}') g = std::max<uint64_t>(g, json::parse(line)["generated"].get<uint64_t>());
  return g;
}

std::string McuSim() { return MCU_SIM_BINARY; }

// CPU time (user + system) of a process, in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(in, s);
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::vector<std::string> f;
  std::string x;
  while (rest >> x) f.push_back(x);
  return std::stol(f[11]) + std::stol(f[12]);  // utime, stime (fields 14, 15)
}

void CheckExactlyOnce(const std::vector<json>& readings, uint64_t generated) {
  std::map<int64_t, int> seen;
  for (const json& r : readings) {
    STRCMP_EQUAL("mcu0", r["source"].get<std::string>().c_str());
    CHECK(r["sensor"].get<std::string>().rfind("lab/", 0) == 0);
    // Counter values are stored scaled by the sensor's 1/100 .. 1/1000: undo it per sensor.
    const std::string sensor = r["sensor"];
    const double scale = sensor.find("temperature") != std::string::npos ? 100
                         : sensor.find("supply") != std::string::npos    ? 1000
                                                                         : 10;
    seen[std::llround(r["value"].get<double>() * scale)]++;
  }
  uint64_t missing = 0, twice = 0;
  std::string example;
  for (int64_t v = 1; v <= static_cast<int64_t>(generated); ++v) {
    auto it = seen.find(v);
    if (it == seen.end()) ++missing, example += " -" + std::to_string(v);
    else if (it->second > 1) ++twice, example += " +" + std::to_string(v);
    if (example.size() > 200) break;
  }
  if (missing || twice || seen.size() != generated)
    FAIL(("missing " + std::to_string(missing) + ", stored twice " + std::to_string(twice) + ", distinct " +
          std::to_string(seen.size()) + " of " + std::to_string(generated) + ":" + example).c_str());
}

}  // namespace

TEST_GROUP(SerialEndToEnd) {
  TempDir dir;
  std::string events() { return dir.Join("events.jsonl"); }
  void WaitGenerated(uint64_t n, int timeout_ms = 30000) {
    CHECK_TRUE(WaitUntil(timeout_ms, [&] { return Generated(events()) >= n; }));
  }
  size_t HelloRequests() { return Events(events(), "hello_request").size(); }
};

TEST(SerialEndToEnd, CorruptionRebootsAndKillNineStoreEveryReadingExactlyOnce) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path()));
  const uint64_t kCount = 3000;
  Child sim({McuSim(), "--pty", dir.Join("tty"), "--baud", "230400", "--rate", "500", "--counter-values", "--count",
             std::to_string(kCount), "--exit-when-acked", "--ring", "4096", "--seed", "11", "--bitflip", "0.03",
             "--drop-byte", "0.02", "--garbage", "0.02", "--truncate", "0.02", "--reboot-every", "1100",
             "--retransmit-ms", "500", "--summary", dir.Join("sim.json"), "--events", events()},
            {}, "", dir.Join("sim.err"));
  CHECK_TRUE(WaitUntil(5000, [&] { return FileExists(dir.Join("tty")); }));
  auto start_agent = [&](int n) {
    return std::make_unique<Child>(std::vector<std::string>{EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"),
                                                            "--summary-json", dir.Join("summary.json")},
                                   std::vector<std::string>{}, dir.Join("out" + std::to_string(n) + ".log"),
                                   dir.Join("err" + std::to_string(n) + ".log"));
  };
  auto agent = start_agent(1);
  for (int kill = 0; kill < 2; ++kill) {
    WaitGenerated(900 * (kill + 1));
    // Quiesce the faults so that every corrupt frame sent so far has been counted durably (the
    // counters are committed before the ACK the "quiesced" event waits for), then SIGKILL.
    const size_t quiesced = Events(events(), "quiesced").size();
    sim.Signal(SIGUSR1);
    CHECK_TRUE(WaitUntil(20000, [&] { return Events(events(), "quiesced").size() > quiesced; }));
    agent->Signal(SIGKILL);
    LONGS_EQUAL(-SIGKILL, agent->Wait(10000));
    const size_t hellos = HelloRequests();
    agent = start_agent(kill + 2);
    CHECK_TRUE(WaitUntil(20000, [&] { return HelloRequests() > hellos; }));  // the new agent is listening
    sim.Signal(SIGUSR2);
  }
  LONGS_EQUAL(0, sim.Wait(90000));  // every reading generated was acknowledged
  agent->Signal(SIGTERM);
  LONGS_EQUAL(0, agent->Wait(30000));

  json s = json::parse(ReadFile(dir.Join("sim.json")));
  LONGS_EQUAL(kCount, s["generated"].get<uint64_t>());
  LONGS_EQUAL(3, s["boots"].get<uint64_t>());  // two reboots
  LONGS_EQUAL(0, s["lost_in_reset"].get<uint64_t>());
  LONGS_EQUAL(0, s["mcu"]["dropped"].get<uint64_t>());
  CHECK(s["corrupted"].get<uint64_t>() > 20);
  CheckExactlyOnce(ReadReadings(dir.Join("outbox")), kCount);

  // The agent's lifetime counters (persisted across the kills) account for every damaged frame.
  json a = json::parse(ReadFile(dir.Join("summary.json")));
  const json c = a["sources"][0]["counters"];
  const std::string dump = "agent counters " + c.dump() + "\nsimulator " + s.dump();
  if (s["corrupted"].get<uint64_t>() != c.value("frames_corrupt", uint64_t(0))) FAIL(dump.c_str());
  LONGS_EQUAL(0, c.value("readings_missing", 0));
  LONGS_EQUAL(0, c.value("frames_malformed", 0));
  CHECK_TEXT(c.value("resend_requests", 0) > 0, dump.c_str());  // holes left by damaged frames were asked for
  CHECK_TEXT(c.value("hellos", 0) >= 5, dump.c_str());          // 3 boots + 2 agent restarts
  STRCMP_EQUAL("serial", a["sources"][0]["type"].get<std::string>().c_str());
}

TEST(SerialEndToEnd, HardResetsLoseOnlyWhatIsRecordedAsMissing) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path()));
  Child agent({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--summary-json", dir.Join("summary.json")},
              {}, dir.Join("out.log"), dir.Join("err.log"));
  Child sim({McuSim(), "--pty", dir.Join("tty"), "--baud", "230400", "--rate", "400", "--counter-values", "--count",
             "1600", "--exit-when-acked", "--reboot-every", "500", "--reboot-hard", "--retransmit-ms", "300",
             "--summary", dir.Join("sim.json"), "--events", events()},
            {}, "", dir.Join("sim.err"));
  LONGS_EQUAL(0, sim.Wait(60000));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(30000));
  json s = json::parse(ReadFile(dir.Join("sim.json")));
  const uint64_t lost = s["lost_in_reset"];
  LONGS_EQUAL(4, s["boots"].get<uint64_t>());
  json a = json::parse(ReadFile(dir.Join("summary.json")));
  const json& c = a["sources"][0]["counters"];
  // The resets destroyed unacknowledged readings; the next HELLO (with retained state) told the
  // agent how many, and it recorded exactly that many as missing ("mcu_reset" gaps).
  // mcu-sim counts as lost what was unacknowledged at the reset; some of it may have been stored
  // already (the ACK was on its way), so the agent's count can only be lower.
  const uint64_t missing = c.value("readings_missing", 0);
  CHECK(missing <= lost);
  CHECK(missing > 0);
  LONGS_EQUAL(3, c.value("gaps", 0));  // one per reset
  std::vector<json> readings = ReadReadings(dir.Join("outbox"));
  LONGS_EQUAL(1600, readings.size() + missing);  // stored + recorded as missing = generated
  std::set<double> distinct;
  for (const json& r : readings) distinct.insert(r["value"].get<double>() * 1e3 + r["sensor"].get<std::string>().size());
  LONGS_EQUAL(readings.size(), distinct.size());
  CHECK(ReadFile(dir.Join("err.log")).find("the MCU reset") != std::string::npos);
}

TEST(SerialEndToEnd, AbsentUnpluggedAndStalledDevicesAreWaitedForWithoutSpinning) {
  WriteFile(dir.Join("edgepipe.toml"), Config(dir.path(), "idle_timeout = \"1s\"\n"));
  Child agent({EdgepipeBinary(), "run", "-c", dir.Join("edgepipe.toml"), "--summary-json", dir.Join("summary.json")},
              {}, dir.Join("out.log"), dir.Join("err.log"));
  // No device yet: the agent retries with backoff and stays (nearly) idle.
  CHECK_TRUE(WaitUntil(10000, [&] { return ReadFile(dir.Join("err.log")).find("cannot open") != std::string::npos; }));
  const long cpu0 = CpuTicks(agent.pid());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long cpu = CpuTicks(agent.pid()) - cpu0;
  CHECK_TRUE(agent.Running());
  if (cpu > sysconf(_SC_CLK_TCK) / 4) FAIL(("agent used " + std::to_string(cpu) + " ticks in 2 s without a device").c_str());

  Child sim({McuSim(), "--pty", dir.Join("tty"), "--baud", "115200", "--rate", "200", "--counter-values", "--count",
             "1200", "--exit-when-acked", "--unplug-every", "2", "--unplug-for", "0.5", "--stall-every", "3.1",
             "--stall-for", "1.5", "--retransmit-ms", "400", "--summary", dir.Join("sim.json"), "--events", events()},
            {}, "", dir.Join("sim.err"));
  LONGS_EQUAL(0, sim.Wait(60000));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(30000));
  json s = json::parse(ReadFile(dir.Join("sim.json")));
  CHECK(s["unplugs"].get<uint64_t>() >= 2);
  CHECK(s["stalls"].get<uint64_t>() >= 1);
  CheckExactlyOnce(ReadReadings(dir.Join("outbox")), 1200);
  json a = json::parse(ReadFile(dir.Join("summary.json")));
  const json& c = a["sources"][0]["counters"];
  CHECK(c["opens"].get<uint64_t>() >= 3);      // first open + one per replug
  CHECK(c["io_errors"].get<uint64_t>() >= 2);  // each unplug ended a read
  const std::string log = ReadFile(dir.Join("err.log"));
  CHECK(log.find("is back") != std::string::npos);
  CHECK(log.find("no valid frame for 1 s") != std::string::npos);  // the stall was noticed
  CHECK(log.find("No such file or directory") != std::string::npos);
}
