// Unit tests of the service integration: metrics text (render, parse), loopback-only listen
// addresses, config diffs for SIGHUP, the start-timeout extender, the status file writer, and
// the Agent's SIGTERM path in-process with a sink that blocks (abandon vs. finish in-flight).
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/agent/metrics.h"
#include "edgepipe/agent/service.h"
#include "edgepipe/buffer/store.h"
#include "reload.h"
#include "telemetry.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;

namespace {

class RecordingNotifier final : public ServiceNotifier {
 public:
  explicit RecordingNotifier(int64_t watchdog_us = 0) : watchdog_us_(watchdog_us) {}
  void Notify(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(message);
  }
  int64_t WatchdogIntervalUs() override { return watchdog_us_; }
  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  size_t Count(const std::string& needle) const {
    size_t n = 0;
    for (const auto& m : messages())
      if (m.find(needle) != std::string::npos) ++n;
    return n;
  }

 private:
  int64_t watchdog_us_;
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
};

// A sink whose Put blocks until released (a stalled network upload), or sleeps a fixed time.
class SlowSink final : public uploader::Sink {
 public:
  explicit SlowSink(int64_t delay_ms = -1) : delay_ms_(delay_ms) {}
  Result<uploader::PutResult> Put(const uploader::Object& object) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++in_put_;
      cv_.notify_all();
      if (delay_ms_ < 0) cv_.wait(lock, [&] { return released_; });
    }
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    std::lock_guard<std::mutex> lock(mu_);
    readings_ += object.readings;
    ++puts_;
    return uploader::PutResult{"etag"};
  }
  std::string Describe() const override { return "slow://test"; }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool WaitInPut(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return in_put_ > 0; });
  }
  uint64_t readings() const {
    std::lock_guard<std::mutex> lock(mu_);
    return readings_;
  }

 private:
  int64_t delay_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  int in_put_ = 0;
  int puts_ = 0;
  uint64_t readings_ = 0;
};

Config TestConfig(const TempDir& dir, const std::string& extra_agent = "", uint64_t max_readings = 400) {
  std::string text = "[device]\nid = \"unit-gw\"\n[agent]\n" + extra_agent +
                     "[buffer]\npath = \"" + dir.Join("buffer.db") + "\"\ncommit_interval = \"20ms\"\n"
                     "[batch]\nmax_readings = 100\nmax_age = \"50ms\"\n"
                     "[upload]\nurl = \"file://" + dir.Join("outbox") + "\"\npoll_interval = \"20ms\"\n"
                     "[[source]]\ntype = \"simulator\"\nsensor_count = 4\ninterval = \"5ms\"\nmax_readings = " +
                     std::to_string(max_readings) + "\n";
  ParseResult pr = ParseConfigText(text, dir.Join("edgepipe.toml"));
  if (!pr.config) FAIL(pr.problems.at(0).ToString().c_str());
  return *pr.config;
}

AgentSnapshot SampleSnapshot() {
  AgentSnapshot s;
  s.time_us = 1'700'000'100'000'000;
  s.start_time_us = 1'700'000'000'000'000;
  s.pid = 4242;
  s.version = "1.2.3";
  s.device = "gw \"quoted\"\\x";
  s.summary.validation.received = 1000;
  s.summary.validation.passed = 990;
  s.summary.validation.flagged = 7;
  s.summary.validation.rejected = {{"finite", 6}, {"range", 4}};
  s.summary.buffer.pending_readings = 120;
  s.summary.buffer.claimed_readings = 30;
  s.summary.buffer.memory_readings = 5;
  s.summary.buffer.oldest_pending_ts_us = 1'700'000'040'000'000;  // 60 s before time_us
  s.summary.buffer.db_bytes = 123456;
  s.summary.buffer.readings_dropped = 2;
  s.summary.buffer.last_ack_time_us = 1'700'000'090'000'000;
  s.summary.uploads.objects = 9;
  s.summary.uploads.failures = 3;
  s.summary.uploads.bytes = 4567;
  s.summary.uploads.last_success_us = 0;
  s.summary.sources.push_back({"serial0", "serial", "receiving", 500, 1, "", {{"crc_errors", 3}}});
  s.summary.sources.push_back({"mqtt", "mqtt", "disconnected: connection refused", 490, 0, "", {}});
  s.buffer_max_bytes = 1 << 20;
  s.reloads_failed = 1;
  s.last_reload_ok = false;
  return s;
}

}  // namespace

TEST_GROUP(StatusLine) {};

// "delivered" counts reading objects only; quarantine objects follow after "+" when there are any.
TEST(StatusLine, QuarantineObjectsAreReportedApartFromReadingObjects) {
  RunSummary s;
  s.validation.received = 8000;
  s.validation.passed = 7992;
  s.uploads.objects = 14;
  s.uploads.readings = 7792;
  s.uploads.bytes = 60210;
  s.uploads.quarantine_objects = 2;
  s.uploads.quarantine_records = 8;
  s.uploads.quarantine_bytes = 800;
  std::string line = StatusLineFor(s);
  CHECK_TEXT(line.find("; delivered 12 objects (7792 readings, 59410 bytes) + 2 quarantine objects (8 records, "
                       "800 bytes)") != std::string::npos,
             line.c_str());
  s.uploads.objects = 12;
  s.uploads.bytes = 59410;
  s.uploads.quarantine_objects = s.uploads.quarantine_records = s.uploads.quarantine_bytes = 0;
  line = StatusLineFor(s);
  CHECK_TEXT(line.find("; delivered 12 objects (7792 readings, 59410 bytes)") != std::string::npos &&
                 line.find("quarantine") == std::string::npos,
             line.c_str());
}

TEST_GROUP(Metrics) {};

TEST(Metrics, RenderedTextParsesBackWithEveryValue) {
  AgentSnapshot s = SampleSnapshot();
  const std::string text = RenderPrometheus(s);
  Result<std::vector<MetricSample>> parsed = ParsePrometheusText(text);
  CHECK_TRUE_TEXT(parsed.ok(), parsed.status().ToString().c_str());
  const auto& m = *parsed;
  DOUBLES_EQUAL(1000, SampleValue(m, "edgepipe_readings_received_total"), 0);
  DOUBLES_EQUAL(990, SampleValue(m, "edgepipe_readings_accepted_total"), 0);
  DOUBLES_EQUAL(6, SampleValue(m, "edgepipe_readings_rejected_total", {{"rule", "finite"}}), 0);
  DOUBLES_EQUAL(4, SampleValue(m, "edgepipe_readings_rejected_total", {{"rule", "range"}}), 0);
  DOUBLES_EQUAL(2, SampleValue(m, "edgepipe_readings_dropped_total"), 0);
  DOUBLES_EQUAL(155, SampleValue(m, "edgepipe_buffer_depth_readings"), 0);
  DOUBLES_EQUAL(60, SampleValue(m, "edgepipe_buffer_oldest_pending_age_seconds"), 1e-6);
  DOUBLES_EQUAL(123456, SampleValue(m, "edgepipe_buffer_bytes"), 0);
  DOUBLES_EQUAL(9, SampleValue(m, "edgepipe_uploads_succeeded_total"), 0);
  DOUBLES_EQUAL(3, SampleValue(m, "edgepipe_uploads_failed_total"), 0);
  DOUBLES_EQUAL(4567, SampleValue(m, "edgepipe_upload_bytes_total"), 0);
  // The buffer's ledger provides the last success when this run has none yet.
  DOUBLES_EQUAL(1'700'000'090.0, SampleValue(m, "edgepipe_upload_last_success_timestamp_seconds"), 1e-3);
  DOUBLES_EQUAL(1, SampleValue(m, "edgepipe_source_up", {{"source", "serial0"}}), 0);
  DOUBLES_EQUAL(0, SampleValue(m, "edgepipe_source_up", {{"source", "mqtt"}}), 0);
  DOUBLES_EQUAL(1, SampleValue(m, "edgepipe_source_state", {{"source", "mqtt"}, {"state", "disconnected"}}), 0);
  DOUBLES_EQUAL(3, SampleValue(m, "edgepipe_source_events_total", {{"source", "serial0"}, {"counter", "crc_errors"}}), 0);
  DOUBLES_EQUAL(1, SampleValue(m, "edgepipe_config_reloads_total", {{"result", "failed"}}), 0);
  DOUBLES_EQUAL(0, SampleValue(m, "edgepipe_config_last_reload_successful", {}, -1), 0);
  // Label values with quotes and backslashes survive the round trip.
  DOUBLES_EQUAL(1, SampleValue(m, "edgepipe_build_info", {{"device", "gw \"quoted\"\\x"}, {"version", "1.2.3"}}), 0);
  // Every sample has HELP and TYPE lines before it.
  for (const MetricSample& sample : m) {
    CHECK_TEXT(text.find("# TYPE " + sample.name + " ") != std::string::npos, sample.name.c_str());
    CHECK_TEXT(text.find("# HELP " + sample.name + " ") != std::string::npos, sample.name.c_str());
  }
}

TEST(Metrics, MalformedLinesAreRejectedWithTheirLineNumber) {
  Result<std::vector<MetricSample>> r = ParsePrometheusText("# ok\na 1\nb{x=\"1\" 2\n");
  CHECK_FALSE(r.ok());
  CHECK(r.status().message().find("metrics line 3") != std::string::npos);
  CHECK_FALSE(ParsePrometheusText("a one\n").ok());
  CHECK_FALSE(ParsePrometheusText("{x=\"1\"} 1\n").ok());
  Result<std::vector<MetricSample>> ts = ParsePrometheusText("a{b=\"c\\nd\"} 2.5 1700000000000\n");
  CHECK_TRUE(ts.ok());
  STRCMP_EQUAL("c\nd", ts->at(0).labels.at("b").c_str());
  DOUBLES_EQUAL(2.5, ts->at(0).value, 0);
}

TEST(Metrics, SourceStatesMapToUpOrDown) {
  for (const char* up : {"running", "connected", "idle", "receiving", "finished"}) CHECK_TRUE_TEXT(SourceStateIsUp(up), up);
  for (const char* down : {"disconnected: EOF", "connecting", "waiting for HELLO", "stopped", ""})
    CHECK_FALSE_TEXT(SourceStateIsUp(down), down);
  STRCMP_EQUAL("disconnected", SourceStateLabel("disconnected: EOF on /dev/ttyUSB0").c_str());
}

TEST(Metrics, ListenAddressMustBeLoopback) {
  std::string host;
  int port = 0;
  STRCMP_EQUAL("", ParseLoopbackListen("127.0.0.1:9464", &host, &port).c_str());
  STRCMP_EQUAL("127.0.0.1", host.c_str());
  LONGS_EQUAL(9464, port);
  STRCMP_EQUAL("", ParseLoopbackListen("[::1]:80", &host, &port).c_str());
  STRCMP_EQUAL("::1", host.c_str());
  STRCMP_EQUAL("", ParseLoopbackListen("localhost:1", &host, &port).c_str());
  STRCMP_EQUAL("", ParseLoopbackListen("127.10.0.2:65535", &host, &port).c_str());
  CHECK(ParseLoopbackListen("0.0.0.0:9464", &host, &port).find("not a loopback address") != std::string::npos);
  CHECK(ParseLoopbackListen("[::]:9464", &host, &port).find("not a loopback address") != std::string::npos);
  CHECK(ParseLoopbackListen("192.168.1.5:9464", &host, &port).find("not a loopback") != std::string::npos);
  CHECK(ParseLoopbackListen("127.0.0.1:0", &host, &port).find("out of range") != std::string::npos);
  CHECK(ParseLoopbackListen("127.0.0.1:99999", &host, &port).find("out of range") != std::string::npos);
  CHECK(ParseLoopbackListen("127.0.0.1", &host, &port).find("host:port") != std::string::npos);
  CHECK(ParseLoopbackListen("gateway:9464", &host, &port).find("not an IP address") != std::string::npos);
}

TEST(Metrics, ConfigRejectsAPublicMetricsAddressAtItsLocation) {
  ParseResult pr = ParseConfigText("[device]\nid = \"a\"\n[agent]\nmetrics_listen = \"0.0.0.0:9464\"\n"
                                   "[upload]\nurl = \"file:///tmp/x\"\n[[source]]\ntype = \"simulator\"\n",
                                   "f.toml");
  CHECK_FALSE(pr.config.has_value());
  LONGS_EQUAL(1, pr.problems.size());
  const std::string p = pr.problems[0].ToString();
  CHECK_TEXT(p.rfind("f.toml:4:18: agent.metrics_listen: address 0.0.0.0 is not a loopback", 0) == 0, p.c_str());
}

TEST(Metrics, StatusFileDefaultsBesideTheBufferAndRelativePathsFollowTheConfig) {
  TempDir dir;
  Config c = TestConfig(dir);
  STRCMP_EQUAL(dir.Join("edgepipe-status.prom").c_str(), StatusFilePath(c).c_str());
  c.agent.status_file = "run/status.prom";
  STRCMP_EQUAL(dir.Join("run/status.prom").c_str(), StatusFilePath(c).c_str());
  c.agent.status_file = "/run/edgepipe/status.prom";
  STRCMP_EQUAL("/run/edgepipe/status.prom", StatusFilePath(c).c_str());
}

TEST(Metrics, ServiceStatusLineNamesDepthLastUploadSourcesAndProblems) {
  AgentSnapshot s = SampleSnapshot();
  std::string line = ServiceStatusText(s);
  CHECK_TEXT(line.find("buffer 150 pending (oldest 60s ago), 5 in memory") != std::string::npos, line.c_str());
  CHECK_TEXT(line.find("last upload 10s ago") != std::string::npos, line.c_str());
  CHECK(line.find("sources 1/2 up") != std::string::npos);
  CHECK(line.find("last reload FAILED") != std::string::npos);
  CHECK(line.find("STALLED") == std::string::npos);
  s.writer_healthy = false;
  CHECK(ServiceStatusText(s).find("BUFFER WRITER STALLED") != std::string::npos);
}

TEST(Metrics, StatusFileIsReplacedAtomicallyAndFailuresNameThePath) {
  TempDir dir;
  const std::string path = dir.Join("status.prom");
  CHECK_TRUE(WriteFileAtomically(path, "a 1\n").ok());
  CHECK_TRUE(WriteFileAtomically(path, "a 2\n").ok());
  STRCMP_EQUAL("a 2\n", ReadFile(path).c_str());
  CHECK_FALSE(FileExists(path + ".tmp"));
  Status bad = WriteFileAtomically(dir.Join("missing/dir/status.prom"), "x");
  CHECK_TRUE(bad.code() == StatusCode::kUnavailable);
  CHECK(bad.message().find(dir.Join("missing/dir/status.prom")) != std::string::npos);
}

TEST_GROUP(Reload) {};

TEST(Reload, DiffListsChangedAddedAndRemovedKeysPerSource) {
  const std::string a = "[agent]\nlog_level = \"info\"\nstatus_interval = \"1m\"\n[upload]\nurl = \"file:///a\"\n"
                        "[[source]]\ntype = \"simulator\"\ninterval = \"1s\"\n";
  const std::string b = "[agent]\nlog_level = \"debug\"\n[upload]\nurl = \"file:///a\"\nformat = \"csv\"\n"
                        "[[source]]\ntype = \"simulator\"\ninterval = \"2s\"\n[[source]]\ntype = \"simulator\"\n";
  std::vector<ConfigChange> d = DiffConfigText(a, b);
  std::vector<std::string> keys;
  for (const auto& c : d) keys.push_back(c.key);
  const std::vector<std::string> expected = {"agent.log_level", "agent.status_interval", "source[0].interval",
                                             "source[1]", "upload.format"};
  LONGS_EQUAL(expected.size(), keys.size());
  for (size_t i = 0; i < expected.size(); ++i) STRCMP_EQUAL(expected[i].c_str(), keys[i].c_str());
  STRCMP_EQUAL("'info'", d[0].old_value.c_str());
  STRCMP_EQUAL("'debug'", d[0].new_value.c_str());
  STRCMP_EQUAL("", d[1].new_value.c_str());  // removed
  STRCMP_EQUAL("", d[4].old_value.c_str());  // added
  LONGS_EQUAL(0, DiffConfigText(a, a).size());
}

TEST(Reload, OnlyAgentServiceKeysApplyLive) {
  CHECK_TRUE(AppliesLive("agent.log_level"));
  CHECK_TRUE(AppliesLive("agent.metrics_listen"));
  CHECK_TRUE(AppliesLive("agent.shutdown_timeout"));
  CHECK_FALSE(AppliesLive("upload.url"));
  CHECK_FALSE(AppliesLive("buffer.path"));
  CHECK_FALSE(AppliesLive("source[0].interval"));
  CHECK_FALSE(AppliesLive("agent"));
}

TEST(Reload, InvalidFileChangesNothingAndIsCounted) {
  TempDir dir;
  Config c = TestConfig(dir, "log_level = \"info\"\n");
  const std::string text = "[device]\nid = \"unit-gw\"\n[agent]\nlog_level = \"info\"\n[upload]\nurl = \"file://" +
                           dir.Join("outbox") + "\"\n[[source]]\ntype = \"simulator\"\nmax_readings = 1\n";
  WriteFile(dir.Join("edgepipe.toml"), text);
  RecordingNotifier notifier;
  AgentHooks hooks;
  hooks.notifier = &notifier;
  Agent agent(c, RealClock::Default(), hooks);
  WriteFile(dir.Join("edgepipe.toml"), text + "[agent]\n");  // duplicate table: a syntax error
  Status s = agent.Reload();
  CHECK_TRUE(s.code() == StatusCode::kInvalidArgument);
  LONGS_EQUAL(1, notifier.Count("RELOADING=1"));
  LONGS_EQUAL(1, notifier.Count("reload FAILED"));
  WriteFile(dir.Join("edgepipe.toml"), text);
  CHECK_TRUE(agent.Reload().ok());
  LONGS_EQUAL(2, notifier.Count("READY=1"));
}

TEST_GROUP(Extender) {};

TEST(Extender, SendsExtensionsWhileAliveAndStopsAfter) {
  RecordingNotifier n;
  {
    TimeoutExtender ext(n, "opening buffer x", 20'000, 50'000);
    CHECK_TRUE(WaitUntil(3000, [&] { return ext.extensions_sent() >= 3; }));
  }
  const size_t sent = n.messages().size();
  CHECK(sent >= 3);
  for (const auto& m : n.messages()) {
    CHECK_TEXT(m.rfind("EXTEND_TIMEOUT_USEC=150000\nSTATUS=opening buffer x (", 0) == 0, m.c_str());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  LONGS_EQUAL(sent, n.messages().size());
}

TEST(Extender, QuickStepsSendNothing) {
  RecordingNotifier n;
  { TimeoutExtender ext(n, "fast", 1'000'000, 1'000'000); }
  LONGS_EQUAL(0, n.messages().size());
}

TEST_GROUP(AgentShutdown) {
  TempDir dir;
};

// SIGTERM while an upload hangs: Shutdown returns within shutdown_timeout (plus a little grace),
// reports the abandonment, and the batch is still in the buffer, claimed, for the next start.
TEST(AgentShutdown, AbandonsAHungUploadWithinTheTimeoutAndKeepsItsBatch) {
  RecordingNotifier notifier;
  auto sink = std::make_unique<SlowSink>();
  SlowSink* raw = sink.get();
  AgentHooks hooks;
  hooks.notifier = &notifier;
  hooks.make_sink = [&sink](const UploadConfig&) -> Result<std::unique_ptr<uploader::Sink>> {
    return std::unique_ptr<uploader::Sink>(std::move(sink));
  };
  Config c = TestConfig(dir, "shutdown_timeout = \"1s\"\n");
  auto agent = std::make_unique<Agent>(c, RealClock::Default(), hooks);
  CHECK_TRUE(agent->Start().ok());
  CHECK_TRUE(raw->WaitInPut(10000));
  CHECK_TRUE(WaitUntil(10000, [&] { return agent->Summary().validation.received == 400; }));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_TRUE(agent->Shutdown().ok());
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_TEXT(took >= 0.9 && took < 3.0, std::to_string(took).c_str());
  CHECK_TRUE(agent->upload_abandoned());
  LONGS_EQUAL(1, notifier.Count("STOPPING=1"));
  LONGS_EQUAL(1, notifier.Count("EXTEND_TIMEOUT_USEC=11000000"));
  // Everything accepted is committed: claimed (the hung batch) + pending.
  Result<buffer::Stats> st = buffer::ReadStats(c.buffer.path);
  CHECK_TRUE(st.ok());
  const uint64_t accepted = agent->Summary().validation.passed;
  LONGS_EQUAL(accepted, st->pending_readings + st->claimed_readings);
  CHECK(st->claimed_readings > 0);
  raw->Release();  // the hung upload returns; the destructor joins its thread
  agent.reset();
}

TEST(AgentShutdown, LetsTheInFlightUploadFinishAndDrainsEverything) {
  RecordingNotifier notifier;
  auto sink = std::make_unique<SlowSink>(150);
  SlowSink* raw = sink.get();
  AgentHooks hooks;
  hooks.notifier = &notifier;
  hooks.make_sink = [&sink](const UploadConfig&) -> Result<std::unique_ptr<uploader::Sink>> {
    return std::unique_ptr<uploader::Sink>(std::move(sink));
  };
  Config c = TestConfig(dir, "shutdown_timeout = \"30s\"\n");
  Agent agent(c, RealClock::Default(), hooks);
  CHECK_TRUE(agent.Start().ok());
  CHECK_TRUE(raw->WaitInPut(10000));
  CHECK_TRUE(WaitUntil(10000, [&] { return agent.Summary().validation.received == 400; }));
  CHECK_TRUE(agent.Shutdown().ok());
  CHECK_FALSE(agent.upload_abandoned());
  LONGS_EQUAL(agent.Summary().validation.passed, raw->readings());
  Result<buffer::Stats> st = buffer::ReadStats(c.buffer.path);
  LONGS_EQUAL(0, st->pending_readings + st->claimed_readings);
}

TEST(AgentShutdown, WritesAFinalStatusFileMarkedStopped) {
  Config c = TestConfig(dir, "stats_interval = \"100ms\"\n", 40);
  RecordingNotifier notifier;
  AgentHooks hooks;
  hooks.notifier = &notifier;
  Agent agent(c, RealClock::Default(), hooks);
  CHECK_TRUE(agent.Start().ok());
  CHECK_TRUE(WaitUntil(5000, [&] { return FileExists(StatusFilePath(c)); }));
  Result<std::vector<MetricSample>> live = ParsePrometheusText(ReadFile(StatusFilePath(c)));
  CHECK_TRUE(live.ok());
  DOUBLES_EQUAL(1, SampleValue(*live, "edgepipe_up"), 0);
  CHECK(notifier.Count("STATUS=buffer ") > 0);
  CHECK_TRUE(WaitUntil(10000, [&] { return agent.Summary().validation.received == 40; }));
  CHECK_TRUE(agent.Shutdown().ok());
  Result<std::vector<MetricSample>> last = ParsePrometheusText(ReadFile(StatusFilePath(c)));
  CHECK_TRUE(last.ok());
  DOUBLES_EQUAL(0, SampleValue(*last, "edgepipe_up", {}, -1), 0);
  DOUBLES_EQUAL(40, SampleValue(*last, "edgepipe_readings_received_total"), 0);
}
