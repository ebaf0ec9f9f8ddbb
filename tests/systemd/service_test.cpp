// The agent as systemd runs it: the built binary under a NOTIFY_SOCKET listener (READY, STATUS,
// WATCHDOG, EXTEND_TIMEOUT_USEC, RELOADING, STOPPING), SIGTERM with data in flight, SIGHUP with a
// broken and then a changed configuration, the metrics endpoint and `edgepipe status`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "notify_listener.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Opts {
  std::string agent = "";        // extra [agent] keys
  std::string buffer = "commit_interval = \"50ms\"\n";
  std::string batch = "max_readings = 500\nmax_age = \"300ms\"\n";
  std::string outbox = "outbox";
  std::string source = "sensor_count = 6\ninterval = \"10ms\"\nseed = 7\n";
};

std::string Config(const std::string& dir, const Opts& o = {}) {
  return "[device]\nid = \"svc-gw\"\n"
         "[agent]\nshutdown_timeout = \"10s\"\nstats_interval = \"200ms\"\n" + o.agent +
         "[buffer]\npath = \"" + dir + "/buffer.db\"\n" + o.buffer +
         "[batch]\n" + o.batch +
         "[upload]\nurl = \"file://" + dir + "/" + o.outbox + "\"\npoll_interval = \"50ms\"\n"
         "[[source]]\ntype = \"simulator\"\nname = \"sim\"\n" + o.source;
}

// Readings in the outbox, by (sensor, ts), read with the zstd command-line tool.
std::multiset<std::pair<std::string, std::string>> OutboxReadings(const std::string& dir) {
  std::multiset<std::pair<std::string, std::string>> out;
  for (const std::string& rel : ListFiles(dir)) {
    if (rel.rfind("quarantine/", 0) == 0) continue;
    ProcessResult z = RunProcess({"zstd", "-dc", dir + "/" + rel});
    LONGS_EQUAL(0, z.exit_code);
    std::stringstream ss(z.out);
    std::string line;
    while (std::getline(ss, line)) {
      json j = json::parse(line);
      out.insert({j["sensor"].get<std::string>(), j["ts"].get<std::string>()});
    }
  }
  return out;
}

json StatusJson(const std::string& config) {
  ProcessResult st = RunProcess({EdgepipeBinary(), "status", "-c", config, "--json"});
  if (st.exit_code != 0) FAIL(st.err.c_str());
  return json::parse(st.out);
}

// "FILE:LINE:COL" of the first occurrence of `needle` in `text` (1-based, as the config parser reports).
std::string Where(const std::string& file, const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) return "?";
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
  size_t bol = text.rfind('\n', at);
  size_t col = at - (bol == std::string::npos ? 0 : bol + 1) + 1;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Longest gap between consecutive messages in [from, to].
double LongestGap(const std::vector<NotifyListener::Message>& msgs, Clock::time_point from, Clock::time_point to) {
  double longest = 0;
  Clock::time_point prev = from;
  for (const auto& m : msgs) {
    if (m.at < from || m.at > to) continue;
    longest = std::max(longest, Seconds(m.at - prev));
    prev = m.at;
  }
  return std::max(longest, Seconds(to - prev));
}

// A raw HTTP/1.1 request to 127.0.0.1:port; returns the whole response.
std::string Http(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Holds SQLite's write lock on the buffer from another connection, as a stuck disk or an
// operator's open transaction would: the agent's next commit waits inside SQLite.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) {
    CHECK_EQUAL(SQLITE_OK, sqlite3_open(path.c_str(), &db_));
    sqlite3_busy_timeout(db_, 5000);
    CHECK_EQUAL(SQLITE_OK, sqlite3_exec(db_, "PRAGMA journal_mode=WAL; BEGIN IMMEDIATE", nullptr, nullptr, nullptr));
  }
  ~WriteLock() { Release(); }
  void Release() {
    if (!db_) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

TEST_GROUP(Systemd) {
  TempDir dir;
  std::string config;
  void setup() override { config = dir.Join("edgepipe.toml"); }
};

TEST(Systemd, NotifiesReadyStatusWatchdogAndStopping) {
  WriteFile(config, Config(dir.path()));
  NotifyListener notify(dir.Join("notify.sock"));
  CHECK_TRUE(notify.ok());
  Child agent({EdgepipeBinary(), "run", "-c", config}, {notify.Env(), "WATCHDOG_USEC=1000000"}, "", dir.Join("err.log"));

  CHECK_TRUE_TEXT(WaitUntil(15000, [&] { return notify.Count("READY=1") > 0; }), notify.Dump().c_str());
  // READY comes once the buffer is open and the source runs, with a STATUS line in the same message.
  CHECK(FileExists(dir.Join("buffer.db")));
  CHECK(ReadFile(dir.Join("err.log")).find("agent: started") != std::string::npos);
  CHECK(notify.With("READY=1")[0].text.find("STATUS=buffer ") != std::string::npos);

  // Pings every WATCHDOG_USEC / 2 while healthy, and STATUS= lines with depth and last upload.
  CHECK_TRUE_TEXT(WaitUntil(10000, [&] { return notify.Count("WATCHDOG=1") >= 4; }), notify.Dump().c_str());
  CHECK_TRUE(WaitUntil(10000, [&] {
    for (const auto& m : notify.With("STATUS="))
      if (m.text.find("pending") != std::string::npos && m.text.find("last upload ") != std::string::npos &&
          m.text.find("last upload never") == std::string::npos && m.text.find("sources 1/1 up") != std::string::npos)
        return true;
    return false;
  }));
  CHECK(ReadFile(dir.Join("err.log")).find("systemd watchdog: pinging every 0.5 s") != std::string::npos);

  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  const int ready = notify.IndexOf("READY=1");
  const int stopping = notify.IndexOf("STOPPING=1");
  CHECK_TEXT(stopping > ready, notify.Dump().c_str());
  const std::string stop_msg = notify.Messages()[stopping].text;
  // Asks systemd for shutdown_timeout (10 s) + 10 s.
  CHECK(stop_msg.find("EXTEND_TIMEOUT_USEC=20000000") != std::string::npos);
  CHECK(stop_msg.find("STATUS=stopping") != std::string::npos);
  CHECK_EQUAL(-1, notify.IndexOf("WATCHDOG=1", stopping));  // no ping once stopping
}

TEST(Systemd, NoWatchdogPingsWithoutWatchdogUsec) {
  WriteFile(config, Config(dir.path()));
  NotifyListener notify(dir.Join("notify.sock"));
  Child agent({EdgepipeBinary(), "run", "-c", config}, {notify.Env()}, "", dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return notify.Count("READY=1") > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  LONGS_EQUAL(0, notify.Count("WATCHDOG=1"));
  CHECK(notify.Count("STOPPING=1") == 1);
}

TEST(Systemd, WatchdogPingsStopWhileTheBufferWriterIsStuck) {
  Opts o;
  o.agent = "writer_stall_timeout = \"1s\"\n";
  WriteFile(config, Config(dir.path(), o));
  NotifyListener notify(dir.Join("notify.sock"));
  Child agent({EdgepipeBinary(), "run", "-c", config}, {notify.Env(), "WATCHDOG_USEC=1000000"}, "", dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return notify.Count("WATCHDOG=1") >= 2; }));

  const auto held = Clock::now();
  WriteLock lock(dir.Join("buffer.db"));  // the next commit (<= 50 ms away) now waits inside SQLite
  CHECK_TRUE_TEXT(WaitUntil(4000, [&] { return notify.Count("STATUS=STALLED") > 0; }), notify.Dump().c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const auto released = Clock::now();
  lock.Release();

  // No ping for well over the 1 s stall timeout while the lock was held...
  const double gap = LongestGap(notify.With("WATCHDOG=1"), held, released);
  CHECK_TEXT(gap >= 2.0, ("longest watchdog gap while stuck: " + std::to_string(gap) + " s\n" + notify.Dump()).c_str());
  // ...and pings resume once the commit goes through.
  CHECK_TRUE(WaitUntil(5000, [&] {
    for (const auto& m : notify.With("WATCHDOG=1"))
      if (m.at > released) return true;
    return false;
  }));
  CHECK_TRUE(WaitUntil(5000, [&] { return ReadFile(dir.Join("err.log")).find("making progress again") != std::string::npos; }));
  const std::string log = ReadFile(dir.Join("err.log"));
  CHECK(log.find("inside one commit") != std::string::npos);
  CHECK(log.find("no longer pinging the systemd watchdog") != std::string::npos);
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
}

TEST(Systemd, ExtendsTheStartTimeoutWhileTheBufferOpensSlowly) {
  WriteFile(config, Config(dir.path()));
  NotifyListener notify(dir.Join("notify.sock"));
  // An existing buffer whose write lock is held: opening it takes as long as the lock is held.
  WriteLock lock(dir.Join("buffer.db"));
  Child agent({EdgepipeBinary(), "run", "-c", config}, {notify.Env()}, "", dir.Join("err.log"));
  CHECK_TRUE_TEXT(WaitUntil(4000, [&] { return notify.Count("EXTEND_TIMEOUT_USEC=") > 0; }), notify.Dump().c_str());
  LONGS_EQUAL(0, notify.Count("READY=1"));
  lock.Release();
  CHECK_TRUE(WaitUntil(15000, [&] { return notify.Count("READY=1") > 0; }));
  const std::string ext = notify.With("EXTEND_TIMEOUT_USEC=")[0].text;
  CHECK(ext.find("EXTEND_TIMEOUT_USEC=15000000") != std::string::npos);
  CHECK(ext.find("STATUS=opening buffer " + dir.Join("buffer.db")) != std::string::npos);
  CHECK(notify.IndexOf("EXTEND_TIMEOUT_USEC=") < notify.IndexOf("READY=1"));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
}

// SIGTERM while readings sit in memory (a 3 s group commit), batches are being built and
// uploaded: everything accepted is either in the outbox or committed in the buffer, and the next
// start delivers the rest exactly once.
TEST(Systemd, SigtermWithDataInFlightLosesNothing) {
  Opts o;
  o.agent = "";
  o.buffer = "commit_interval = \"3s\"\ncommit_readings = 1000000\n";
  o.batch = "max_readings = 200\nmax_age = \"100ms\"\n";
  o.source = "sensor_count = 20\ninterval = \"5ms\"\nseed = 11\nnan_rate = 0.01\n";
  std::string text = Config(dir.path(), o);
  text.replace(text.find("shutdown_timeout = \"10s\""), 24, "shutdown_timeout = \"0s\"");  // no drain: commit only
  WriteFile(config, text);
  NotifyListener notify(dir.Join("notify.sock"));
  Child agent({EdgepipeBinary(), "run", "-c", config, "--summary-json", dir.Join("summary.json")}, {notify.Env()}, "",
              dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return notify.Count("READY=1") > 0; }));
  // Let the first commit happen and uploads start, then stop with ~1-3 s of readings in memory.
  CHECK_TRUE(WaitUntil(15000, [&] { return !ListFiles(dir.Join("outbox")).empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const auto t0 = Clock::now();
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  CHECK(Seconds(Clock::now() - t0) < 10);

  json s = json::parse(ReadFile(dir.Join("summary.json")));
  const uint64_t accepted = s["readings"]["accepted"];
  const uint64_t received = s["readings"]["received"];
  CHECK(accepted > 1000);
  // (Counts, not sets: under load the simulator can emit two readings of a sensor within one
  // millisecond, which the outbox's millisecond timestamps do not tell apart.)
  auto delivered = OutboxReadings(dir.Join("outbox"));
  json st = StatusJson(config);
  const uint64_t buffered = st["pending_readings"].get<uint64_t>() + st["claimed_readings"].get<uint64_t>();
  LONGS_EQUAL(accepted, delivered.size() + buffered);
  LONGS_EQUAL(accepted, st["readings_committed"].get<uint64_t>());
  // Rejected readings are committed to quarantine too.
  CHECK(received > accepted);
  LONGS_EQUAL(received - accepted, st["quarantine_rows"].get<uint64_t>() +
                                       s["uploads"]["quarantine_records"].get<uint64_t>());
  CHECK(ReadFile(dir.Join("err.log")).find("received SIGTERM") != std::string::npos);
  // There were readings only in memory when SIGTERM came: the last STATUS= before STOPPING says so.
  const int stopping = notify.IndexOf("STOPPING=1");
  std::string last_status;
  for (int i = 0; i < stopping; ++i)
    if (notify.Messages()[i].text.rfind("STATUS=buffer", 0) == 0) last_status = notify.Messages()[i].text;
  CHECK_TEXT(last_status.find(", 0 in memory") == std::string::npos && last_status.find(" in memory") != std::string::npos,
             last_status.c_str());

  // The next start delivers the rest; every reading exactly once in total.
  Opts again = o;
  again.source = "sensor_count = 1\ninterval = \"1s\"\nmax_readings = 1\nseed = 99\n";
  WriteFile(config, Config(dir.path(), again));
  ProcessResult r = RunProcess({EdgepipeBinary(), "run", "-c", config, "--duration", "1s"});
  LONGS_EQUAL(0, r.exit_code);
  auto all = OutboxReadings(dir.Join("outbox"));
  LONGS_EQUAL(accepted + 1, all.size());  // nothing lost, nothing delivered twice
}

TEST(Systemd, SigtermDrainsTheBufferWithinTheShutdownTimeout) {
  Opts o;
  o.buffer = "commit_interval = \"2s\"\ncommit_readings = 1000000\n";
  o.batch = "max_readings = 300\nmax_age = \"1m\"\n";  // only full batches go out before SIGTERM
  o.source = "sensor_count = 20\ninterval = \"10ms\"\nseed = 5\n";
  WriteFile(config, Config(dir.path(), o));
  Child agent({EdgepipeBinary(), "run", "-c", config, "--summary-json", dir.Join("summary.json")}, {}, "",
              dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return !ListFiles(dir.Join("outbox")).empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  json s = json::parse(ReadFile(dir.Join("summary.json")));
  auto delivered = OutboxReadings(dir.Join("outbox"));
  LONGS_EQUAL(s["readings"]["accepted"].get<uint64_t>(), delivered.size());
  json st = StatusJson(config);
  LONGS_EQUAL(0, st["pending_readings"].get<uint64_t>() + st["claimed_readings"].get<uint64_t>());
}

TEST(Systemd, SighupWithABrokenConfigKeepsTheOldOne) {
  const int port = FreePort();
  Opts o;
  o.agent = "metrics_listen = \"127.0.0.1:" + std::to_string(port) + "\"\n";
  WriteFile(config, Config(dir.path(), o));
  // `edgepipe status` refuses an invalid file too, so it reads a copy of the good one.
  const std::string good = dir.Join("good.toml");
  WriteFile(good, Config(dir.path(), o));
  NotifyListener notify(dir.Join("notify.sock"));
  Child agent({EdgepipeBinary(), "run", "-c", config}, {notify.Env()}, "", dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return notify.Count("READY=1") > 0; }));
  CHECK_TRUE(WaitUntil(10000, [&] { return !ListFiles(dir.Join("outbox")).empty(); }));

  // Two located problems; the file is otherwise the same.
  std::string broken = Config(dir.path(), o);
  broken.replace(broken.find("stats_interval = \"200ms\""), 24, "stats_interval = \"often\"");
  broken += "colour = \"blue\"\n";
  WriteFile(config, broken);
  agent.Signal(SIGHUP);
  CHECK_TRUE(WaitUntil(10000, [&] { return ReadFile(dir.Join("err.log")).find("still running on the previous") != std::string::npos; }));
  std::string log = ReadFile(dir.Join("err.log"));
  CHECK_TEXT(log.find("reload: " + Where(config, broken, "\"often\"") + ": agent.stats_interval:") != std::string::npos,
             log.c_str());
  CHECK_TEXT(log.find("reload: " + Where(config, broken, "colour") + ": unknown key 'source[0].colour'") != std::string::npos,
             log.c_str());
  CHECK(log.find("is invalid (2 problems)") != std::string::npos);
  CHECK_TRUE(agent.Running());
  CHECK_TRUE(WaitUntil(5000, [&] { return notify.Count("RELOADING=1") == 1 && notify.Count("READY=1\nSTATUS=reload FAILED") == 1; }));
  CHECK(notify.IndexOf("READY=1", notify.IndexOf("RELOADING=1")) >= 0);

  // Still collecting and delivering on the old configuration.
  const size_t objects = ListFiles(dir.Join("outbox")).size();
  CHECK_TRUE(WaitUntil(10000, [&] { return ListFiles(dir.Join("outbox")).size() > objects + 2; }));
  CHECK_TRUE(WaitUntil(5000, [&] {
    json st = StatusJson(good);
    return st["agent"]["config_reload"]["failed"] == 1 && st["agent"]["config_reload"]["last_successful"] == false;
  }));
  CHECK_TRUE(WaitUntil(5000, [&] {
    const std::string metrics = Http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    return metrics.find("edgepipe_config_reloads_total{result=\"failed\"} 1") != std::string::npos &&
           metrics.find("edgepipe_config_last_reload_successful 0") != std::string::npos;
  }));

  // A valid file: the log level applies live; the destination needs a restart and is not touched.
  Opts changed = o;
  changed.agent += "log_level = \"debug\"\n";
  changed.outbox = "outbox2";
  WriteFile(config, Config(dir.path(), changed));
  agent.Signal(SIGHUP);
  CHECK_TRUE(WaitUntil(10000, [&] { return ReadFile(dir.Join("err.log")).find("re-read: 1 change applied, 1 waiting") != std::string::npos; }));
  log = ReadFile(dir.Join("err.log"));
  CHECK_TEXT(log.find("reload: agent.log_level: (default) -> 'debug' (applied)") != std::string::npos, log.c_str());
  CHECK_TEXT(log.find("reload: upload.url changed") != std::string::npos, log.c_str());
  CHECK(log.find("takes effect only after a restart") != std::string::npos);
  CHECK_TRUE(WaitUntil(10000, [&] { return ReadFile(dir.Join("err.log")).find(" debug ") != std::string::npos; }));
  CHECK_FALSE(FileExists(dir.Join("outbox2")));
  CHECK_TRUE(WaitUntil(5000, [&] { return StatusJson(good)["agent"]["config_reload"]["ok"] == 1; }));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
}

TEST(Systemd, MetricsEndpointAndStatusShowTheLiveCounters) {
  const int port = FreePort();
  Opts o;
  o.agent = "metrics_listen = \"127.0.0.1:" + std::to_string(port) + "\"\nstatus_file = \"live.prom\"\n";
  o.source = "sensor_count = 4\ninterval = \"10ms\"\nseed = 3\nnan_rate = 0.05\n";
  WriteFile(config, Config(dir.path(), o));
  Child agent({EdgepipeBinary(), "run", "-c", config}, {}, "", dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(15000, [&] { return !ListFiles(dir.Join("outbox")).empty(); }));

  std::string r = Http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK_TEXT(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, r.c_str());
  CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  for (const char* family :
       {"edgepipe_readings_received_total", "edgepipe_readings_accepted_total", "edgepipe_readings_rejected_total{rule=\"finite\"}",
        "edgepipe_readings_dropped_total", "edgepipe_buffer_bytes", "edgepipe_buffer_depth_readings",
        "edgepipe_buffer_oldest_pending_age_seconds", "edgepipe_uploads_succeeded_total", "edgepipe_uploads_failed_total",
        "edgepipe_upload_bytes_total", "edgepipe_upload_last_success_timestamp_seconds",
        "edgepipe_source_up{source=\"sim\",type=\"simulator\"} 1", "edgepipe_source_state{source=\"sim\",type=\"simulator\",state=\"running\"} 1"})
    CHECK_TEXT(r.find(family) != std::string::npos, family);
  CHECK(Http(port, "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
  CHECK(Http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);

  // `edgepipe status` joins the buffer (read-only) with the live counters from the status file.
  CHECK(FileExists(dir.Join("live.prom")));
  CHECK_TRUE(WaitUntil(5000, [&] { return StatusJson(config)["agent"]["uploads"]["succeeded"].get<uint64_t>() > 0; }));
  json st = StatusJson(config);
  STRCMP_EQUAL("running", st["agent"]["state"].get<std::string>().c_str());
  LONGS_EQUAL(agent.pid(), st["agent"]["pid"].get<int64_t>());
  CHECK(st["agent"]["readings"]["received"].get<uint64_t>() >= st["agent"]["readings"]["accepted"].get<uint64_t>());
  CHECK(st["agent"]["readings"]["rejected"]["finite"].get<uint64_t>() > 0);
  STRCMP_EQUAL("sim", st["agent"]["sources"][0]["name"].get<std::string>().c_str());
  CHECK_TRUE(st["agent"]["sources"][0]["up"].get<bool>());
  ProcessResult human = RunProcess({EdgepipeBinary(), "status", "-c", config});
  LONGS_EQUAL(0, human.exit_code);
  CHECK_TEXT(human.out.find("agent:             running (pid " + std::to_string(agent.pid())) != std::string::npos, human.out.c_str());
  CHECK(human.out.find("sim (simulator): running") != std::string::npos);
  CHECK(human.out.find("uploads:           ") != std::string::npos);

  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(20000));
  // The final snapshot says the agent stopped, with the final counters.
  json after = StatusJson(config);
  STRCMP_EQUAL("stopped", after["agent"]["state"].get<std::string>().c_str());
  LONGS_EQUAL(after["readings_acked"].get<uint64_t>(), after["agent"]["uploads"]["readings"].get<uint64_t>());
  CHECK(Http(port, "GET /metrics HTTP/1.1\r\n\r\n").empty());  // endpoint closed
}
