// End to end with the built `edgepipe` binary: a QoS 1 stream of distinct messages through a real
// Mosquitto (persistence on, max_queued_messages 0) while the agent is killed with SIGKILL three
// times and restarted. Every message must be stored exactly once: none lost (PUBACK only after
// the durable commit; the persistent session queues what arrives while the agent is down), none
// twice (a message committed but not acknowledged before the kill comes again, flagged DUP with
// its packet identifier, and is recognised by the fingerprint recorded with its commit; under
// load over a thousand such messages were seen at one kill). Also: the retained status topic
// says "offline" after a kill (last will).
#include <signal.h>

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "broker.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::testing;
using nlohmann::json;

namespace {

// The issue's 50,000 messages: about 5 s here since QoS 1 messages are acknowledged through the
// acknowledgement journal (about 35 s with a commit per message, sync = normal, before).
// EDGEPIPE_KILL_TEST_MESSAGES overrides it.
int MessageCount() {
  const char* e = getenv("EDGEPIPE_KILL_TEST_MESSAGES");
  return e && *e ? atoi(e) : 50'000;
}

constexpr int kSensors = 8;
constexpr int kWindow = 50;  // publisher's bounded in-flight window (Paho's buffer limit is 100)

std::string Payload(int k) {
  char buf[128];
  // The issue's example message: one small JSON reading, a unique (sensor, ts) per message.
  snprintf(buf, sizeof buf, R"({"sensor":"t-%d","ts":%.3f,"value":%d})", k % kSensors, 1'700'000'000.0 + k * 0.001, k);
  return buf;
}

std::string Config(const std::string& dir, const std::string& url) {
  return "[device]\nid = \"kill-gw\"\n"
         "[agent]\nstatus_interval = \"5s\"\nshutdown_timeout = \"20s\"\n"
         "[buffer]\npath = \"" + dir + "/buffer.db\"\nsync = \"normal\"\ncommit_interval = \"50ms\"\n"
         "[batch]\nmax_readings = 10000\nmax_age = \"500ms\"\n"
         "[upload]\nurl = \"file://" + dir + "/outbox\"\npoll_interval = \"100ms\"\n"
         "[[source]]\ntype = \"mqtt\"\nname = \"mq\"\nurl = \"" + url + "\"\n"
         "topics = [\"load/#\"]\nformat = \"json\"\nqos = 1\n"
         "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n";
}

uint64_t Committed(const std::string& config) {
  ProcessResult r = RunProcess({EdgepipeBinary(), "status", "--config", config, "--json"});
  if (r.exit_code != 0) return 0;
  return json::parse(r.out).value("readings_committed", 0ull);
}

}  // namespace

TEST_GROUP(MqttKill) {
  TempDir dir;
};

TEST(MqttKill, QosOneStreamWithThreeKillsStoredExactlyOnce) {
  const int n = MessageCount();
  Broker broker(dir.Join("broker"));
  broker.Start();
  const std::string config = dir.Join("edgepipe.toml");
  WriteFile(config, Config(dir.path(), broker.Url()));
  auto start_agent = [&] {
    return std::make_unique<Child>(std::vector<std::string>{EdgepipeBinary(), "run", "--config", config},
                                   std::vector<std::string>{}, dir.Join("agent.out"), dir.Join("agent.log"));
  };
  std::unique_ptr<Child> agent = start_agent();
  // The retained status, read by an independent client (mosquitto_sub).
  auto status = [&] {
    ProcessResult r = RunProcess({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t",
                                  "edgepipe/kill-gw/status", "-C", "1", "-W", "2"});
    return r.out;
  };
  // The agent's session must exist before publishing (else the broker has no queue for it).
  CHECK_TRUE(WaitUntil(20'000, [&] { return status() == "online\n"; }));

  // Publisher with a bounded window of unacknowledged QoS 1 messages.
  std::atomic<int> published{0};
  std::thread pub([&] {
    mqtt::async_client p(broker.Url(), "load-publisher", mqtt::create_options(MQTTVERSION_3_1_1, 1000), nullptr);
    p.connect()->wait();
    std::deque<mqtt::delivery_token_ptr> inflight;
    for (int k = 0; k < n; ++k) {
      if (inflight.size() >= kWindow) {
        inflight.front()->wait();
        inflight.pop_front();
      }
      std::string payload = Payload(k);
      inflight.push_back(p.publish("load/gw", payload.data(), payload.size(), 1, false));
      published = k + 1;
    }
    for (auto& t : inflight) t->wait();
    p.disconnect()->wait();
  });

  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{pub};
  // Three SIGKILLs during the stream; the agent stays down for a moment each time.
  for (int kill = 1; kill <= 3; ++kill) {
    const int at = n * kill / 4;
    CHECK_TRUE(WaitUntil(120'000, [&] { return published >= at; }));
    agent->Signal(SIGKILL);
    LONGS_EQUAL(-SIGKILL, agent->Wait(10'000));
    CHECK_TRUE_TEXT(WaitUntil(10'000, [&] { return status() == "offline\n"; }), "the last will did not report offline");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    agent = start_agent();
  }
  pub.join();
  LONGS_EQUAL(n, published.load());
  // Everything queued for the agent's session arrives; then stop it cleanly and read the outbox.
  if (!WaitUntil(180'000, [&] { return Committed(config) >= static_cast<uint64_t>(n); }))
    FAIL(("agent did not store all messages; committed " + std::to_string(Committed(config)) + " of " +
          std::to_string(n) + "\n" + ReadFile(dir.Join("agent.log")).substr(0, 4000))
             .c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // would-be extra copies would land now
  agent->Signal(SIGTERM);
  LONGS_EQUAL(0, agent->Wait(60'000));
  LONGS_EQUAL(n, Committed(config));

  std::vector<int> count(n, 0);
  std::vector<std::vector<std::string>> where(n);  // the objects holding each message
  uint64_t lines = 0;
  for (const std::string& rel : ListFiles(dir.Join("outbox"))) {
    if (rel.rfind("quarantine/", 0) == 0) FAIL(("unexpected quarantine object " + rel).c_str());
    ProcessResult z = RunProcess({"zstd", "-dc", dir.Join("outbox/" + rel)});
    LONGS_EQUAL(0, z.exit_code);
    std::stringstream ss(z.out);
    std::string line;
    while (std::getline(ss, line)) {
      json j = json::parse(line);
      const int k = static_cast<int>(j["value"].get<double>());
      CHECK(k >= 0 && k < n);
      STRCMP_EQUAL(("t-" + std::to_string(k % kSensors)).c_str(), j["sensor"].get<std::string>().c_str());
      ++count[k];
      where[k].push_back(rel);
      ++lines;
    }
  }
  int missing = 0, doubled = 0;
  for (int c : count) {
    missing += c == 0;
    doubled += c > 1;
  }
  if (missing || doubled) {
    // Contiguous runs of missing or doubled messages, with the objects that hold the doubles.
    std::string report;
    for (int k = 0; k < n;) {
      if (count[k] == 1) {
        ++k;
        continue;
      }
      int e = k;
      while (e + 1 < n && count[e + 1] == count[k]) ++e;
      char line[96];
      snprintf(line, sizeof line, "messages %d..%d stored %d times", k, e, count[k]);
      report += line;
      for (const std::string& obj : where[k]) report += " [" + obj + "]";
      for (const std::string& obj : where[e]) report += " [" + obj + "]";
      report += "\n";
      k = e + 1;
    }
    fprintf(stderr, "kill test: %d missing, %d doubled:\n%s", missing, doubled, report.substr(0, 4000).c_str());
  }
  LONGS_EQUAL(0, missing);
  LONGS_EQUAL(0, doubled);
  LONGS_EQUAL(n, lines);
  // The agent's log is of real runs (the redelivery of a committed, unacknowledged message is
  // tested deterministically in mqtt_test: AMessageCommittedButNotAcknowledged...; this stream's
  // kills do not reliably leave one).
  const std::string log = ReadFile(dir.Join("agent.log"));
  fprintf(stderr, "kill test: %d messages, 3 kills, stored exactly once\n", n);
  CHECK(log.find("connected to") != std::string::npos);
}
