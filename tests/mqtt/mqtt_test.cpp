// The MQTT source and the republisher against a real Mosquitto started by the test: plain TCP,
// password from a file, TLS with a CA and a client certificate, MQTT 3.1.1 and 5, persistent
// sessions, reconnects after a broker restart, malformed payloads, the status topic.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <mqtt/async_client.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker.h"
#include "fault_vfs.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/firmware_bridge/mqtt.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;
using namespace edgepipe::testing;

namespace {

// Records what the source hands over; WaitDurable counts the waits (one per QoS 1 message).
class RecordingSink final : public ReadingSink {
 public:
  Result<uint64_t> Append(std::span<const Reading> r) override {
    std::lock_guard<std::mutex> lock(mu);
    readings.insert(readings.end(), r.begin(), r.end());
    return ++ticket;
  }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState&) override { return Append(r); }
  // Takes the readings as the agent's Ingest does (the caller's vector is left with something
  // else), and refuses the first `refuse_owned` calls after taking them (a full buffer).
  Result<uint64_t> AppendWithStateOwned(std::vector<Reading>& r, const SourceState& st) override {
    std::vector<Reading> taken;
    taken.swap(r);
    r.emplace_back().sensor = "left-over";
    {
      std::lock_guard<std::mutex> lock(mu);
      ++owned_calls;
      if (refuse_owned > 0) {
        --refuse_owned;
        return Status(StatusCode::kResourceExhausted, "buffer full (test)");
      }
    }
    return AppendWithState(taken, st);
  }
  Result<std::optional<std::string>> LoadState(const std::string&) override { return std::optional<std::string>(); }
  Status WaitDurable(uint64_t t) override {
    std::lock_guard<std::mutex> lock(mu);
    if (t > ticket) return InternalError("waiting for a ticket never handed out");
    ++waits;
    return Status::Ok();
  }
  Result<uint64_t> Quarantine(const QuarantineRecord& q) override {
    std::lock_guard<std::mutex> lock(mu);
    quarantine.push_back(q);
    return ++ticket;
  }
  Result<uint64_t> RecordGap(const GapRecord&) override { return ++ticket; }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    return readings.size();
  }
  size_t QuarantineCount() {
    std::lock_guard<std::mutex> lock(mu);
    return quarantine.size();
  }
  std::mutex mu;
  std::vector<Reading> readings;
  std::vector<QuarantineRecord> quarantine;
  uint64_t ticket = 0;
  uint64_t waits = 0;
  int refuse_owned = 0;
  int owned_calls = 0;
};

// A plain Paho client for publishing and observing.
class TestClient {
 public:
  explicit TestClient(const std::string& url, const std::string& id = "test-client")
      : cli_(url, id, mqtt::create_options(MQTTVERSION_3_1_1, 10'000), nullptr) {
    cli_.set_message_callback([this](mqtt::const_message_ptr m) {
      std::lock_guard<std::mutex> lock(mu_);
      got_[m->get_topic()].push_back(m->to_string());
    });
  }
  ~TestClient() {
    try {
      if (cli_.is_connected()) cli_.disconnect()->wait();
    } catch (...) {
    }
  }
  void Connect(const std::string& user = "", const std::string& pass = "", const std::string& ca = "") {
    mqtt::connect_options o;
    o.set_clean_session(true);
    if (!user.empty()) {
      o.set_user_name(user);
      o.set_password(pass);
    }
    if (!ca.empty()) {
      mqtt::ssl_options s;
      s.set_trust_store(ca);
      o.set_ssl(s);
    }
    cli_.connect(o)->wait();
  }
  void Publish(const std::string& topic, const std::string& payload, int qos = 1, bool retained = false) {
    cli_.publish(topic, payload.data(), payload.size(), qos, retained)->wait();
  }
  void Subscribe(const std::string& filter) { cli_.subscribe(filter, 1)->wait(); }
  std::vector<std::string> Got(const std::string& topic) {
    std::lock_guard<std::mutex> lock(mu_);
    return got_[topic];
  }

 private:
  mqtt::async_client cli_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> got_;
};

MqttSourceOptions SourceOptions(const std::string& url, const std::string& id = "edgepipe-test") {
  MqttSourceOptions o;
  o.name = "mqtt";
  o.client.url = url;
  o.client.client_id = id;
  o.client.reconnect_min_us = 100'000;
  o.client.reconnect_max_us = 500'000;
  o.topics = {"sensors/#"};
  o.topic_template = "sensors/{site}/{sensor}";
  o.status_topic = "edgepipe/gw-test/status";
  return o;
}

bool Connected(MqttSource& s) { return WaitUntil(10'000, [&] { return s.Health().state == "connected"; }); }

}  // namespace

TEST_GROUP(Mqtt) {
  TempDir dir;
  RecordingSink sink;
};

TEST(Mqtt, SenmlOverTcpStoredMalformedQuarantinedStatusOnlineOffline) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  TestClient watch(broker.Url(), "watcher");
  watch.Connect();
  watch.Subscribe("edgepipe/gw-test/status");
  MqttSource src(SourceOptions(broker.Url()), sink, RealClock::Default());
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(Connected(src));
  CHECK_TRUE(WaitUntil(5000, [&] { auto g = watch.Got("edgepipe/gw-test/status"); return !g.empty() && g.back() == "online"; }));

  TestClient pub(broker.Url(), "publisher");
  pub.Connect();
  pub.Publish("sensors/plant/x", R"([{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","n":"voltage","u":"V","v":120.1},
                                    {"n":"current","t":-5,"v":1.2},{"n":"current","v":1.7}])");
  pub.Publish("sensors/plant/x", "not json");                         // parse
  pub.Publish("sensors/plant/x", R"([{"n":"t","v":"21.5"}])");        // wrong type
  pub.Publish("sensors/plant", R"([{"v":1}])");                      // topic does not match the template
  pub.Publish("sensors/plant/t-17", R"([{"v":21.5,"u":"Cel","t":1.7e9}])");  // name from the topic
  CHECK_TRUE(WaitUntil(10'000, [&] { return sink.Count() == 4 && sink.QuarantineCount() == 3; }));

  std::lock_guard<std::mutex> lock(sink.mu);
  STRCMP_EQUAL("urn:dev:ow:10e2073a0108006:voltage", sink.readings[0].sensor.c_str());
  LONGS_EQUAL(1'276'020'076'001'000, sink.readings[0].ts_us);
  LONGS_EQUAL(1'276'020'071'001'000, sink.readings[1].ts_us);
  STRCMP_EQUAL("A", sink.readings[2].unit.c_str());
  STRCMP_EQUAL("plant/t-17", sink.readings[3].sensor.c_str());
  LONGS_EQUAL(1'700'000'000'000'000, sink.readings[3].ts_us);
  STRCMP_EQUAL("parse", sink.quarantine[0].rule.c_str());
  STRCMP_EQUAL("not json", sink.quarantine[0].raw.c_str());
  CHECK(sink.quarantine[0].reason.find("sensors/plant/x") != std::string::npos);
  STRCMP_EQUAL("schema", sink.quarantine[1].rule.c_str());
  STRCMP_EQUAL("topic", sink.quarantine[2].rule.c_str());
  // Every QoS 1 message was made durable before it was acknowledged.
  LONGS_EQUAL(5, sink.waits);
  sink.mu.unlock();
  MqttSourceStats st = src.stats();
  LONGS_EQUAL(5, st.messages);
  LONGS_EQUAL(3, st.quarantined);
  src.Stop();
  sink.mu.lock();
  CHECK_TRUE(WaitUntil(5000, [&] { auto g = watch.Got("edgepipe/gw-test/status"); return g.back() == "offline"; }));
  STRCMP_EQUAL("stopped", src.Health().state.c_str());
}

TEST(Mqtt, AMessageTheBufferRefusedIsParsedAgainAndStoredWholeOnTheRetry) {
  // The source hands a message's readings over to the sink (no copy), so a refused attempt
  // leaves it without them: the retry must parse the payload again, with the arrival time of
  // the first attempt (relative SenML times resolve to the same instants), and store the whole
  // message once.
  Broker broker(dir.Join("broker"));
  broker.Start();
  MqttSource src(SourceOptions(broker.Url()), sink, RealClock::Default());
  sink.refuse_owned = 2;
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(Connected(src));
  TestClient pub(broker.Url(), "publisher");
  pub.Connect();
  const int64_t before = RealClock::Default().SystemNowUs();
  pub.Publish("sensors/plant/x", R"([{"bn":"p/","n":"a","v":1.5,"t":-2},{"n":"b","v":2.5,"t":-1},{"n":"c","v":3.5}])");
  CHECK_TRUE(WaitUntil(10'000, [&] { return sink.Count() == 3; }));
  const int64_t after = RealClock::Default().SystemNowUs();
  std::lock_guard<std::mutex> lock(sink.mu);
  LONGS_EQUAL(3, sink.owned_calls);  // two refused, one taken
  LONGS_EQUAL(3, sink.readings.size());
  const char* names[] = {"p/a", "p/b", "p/c"};
  for (int i = 0; i < 3; ++i) {
    STRCMP_EQUAL(names[i], sink.readings[i].sensor.c_str());
    DOUBLES_EQUAL(1.5 + i, sink.readings[i].value, 0);
  }
  // One arrival time for all three: the retries did not take a later "now".
  LONGS_EQUAL(1'000'000, sink.readings[1].ts_us - sink.readings[0].ts_us);
  LONGS_EQUAL(1'000'000, sink.readings[2].ts_us - sink.readings[1].ts_us);
  CHECK(sink.readings[2].ts_us >= before && sink.readings[2].ts_us <= after);
  LONGS_EQUAL(1, sink.waits);
  sink.mu.unlock();
  MqttSourceStats st = src.stats();
  LONGS_EQUAL(1, st.messages);
  LONGS_EQUAL(3, st.readings);
  LONGS_EQUAL(2, st.sink_retries);
  src.Stop();
  sink.mu.lock();
}

TEST(Mqtt, PasswordFromFileAndWrongPasswordReported) {
  Broker broker(dir.Join("broker"), {.password = true});
  broker.Start();
  WriteFile(dir.Join("mqtt.pass"), std::string(Broker::kPassword) + "\n");
  Result<std::string> pw = agent::LoadSecret(agent::SecretRef{"", dir.Join("mqtt.pass"), ""});
  CHECK_TRUE(pw.ok());

  MqttSourceOptions bad = SourceOptions(broker.Url(), "bad-one");
  bad.client.username = Broker::kUser;
  bad.client.password = "wrong";
  MqttSource wrong(bad, sink, RealClock::Default());
  CHECK_TRUE(wrong.Start().ok());  // connection problems are retried in the background
  CHECK_TRUE(WaitUntil(10'000, [&] { return wrong.stats().connect_failures >= 2; }));
  SourceHealth h = wrong.Health();
  STRCMP_EQUAL("disconnected", h.state.c_str());
  CHECK_TEXT(h.last_error.find("not authorised") != std::string::npos || h.last_error.find("password") != std::string::npos,
             h.last_error.c_str());
  wrong.Stop();

  MqttSourceOptions good = SourceOptions(broker.Url(), "good-one");
  good.client.username = Broker::kUser;
  good.client.password = *pw;
  MqttSource src(good, sink, RealClock::Default());
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(Connected(src));
  TestClient pub(broker.Url(), "publisher");
  pub.Connect(Broker::kUser, Broker::kPassword);
  pub.Publish("sensors/a/b", R"([{"v":3}])");
  CHECK_TRUE(WaitUntil(5000, [&] { return sink.Count() == 1; }));
}

TEST(Mqtt, TlsWithCaAndClientCertificate) {
  Broker broker(dir.Join("broker"), {.tls = true, .require_client_cert = true});
  broker.Start();
  MqttSourceOptions o = SourceOptions(broker.TlsUrl(), "tls-client");
  o.client.ca_file = broker.ca_file();
  o.client.cert_file = broker.client_cert();
  o.client.key_file = broker.client_key();
  MqttSource src(o, sink, RealClock::Default());
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(Connected(src));
  TestClient pub(broker.Url(), "publisher");  // plain listener, same broker
  pub.Connect();
  pub.Publish("sensors/a/tls", R"([{"v":42}])");
  CHECK_TRUE(WaitUntil(5000, [&] { return sink.Count() == 1; }));
  src.Stop();

  // A broker signed by a CA we do not trust is refused.
  MqttSourceOptions untrusted = o;
  untrusted.client.client_id = "tls-untrusted";
  untrusted.client.ca_file = broker.OtherCa();
  MqttSource bad(untrusted, sink, RealClock::Default());
  CHECK_TRUE(bad.Start().ok());
  CHECK_TRUE(WaitUntil(10'000, [&] { return bad.stats().connect_failures >= 1; }));
  CHECK(bad.Health().state != "connected");
  CHECK(bad.Health().last_error.find("connect") != std::string::npos);

  // A missing CA file is a start-up error, not a retry loop.
  MqttSourceOptions missing = o;
  missing.client.ca_file = dir.Join("nope.crt");
  MqttSource m(missing, sink, RealClock::Default());
  Status s = m.Start();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("nope.crt") != std::string::npos);
}

// Persistent session: what is published while the source is stopped (or the broker restarts)
// arrives when it comes back, with MQTT 3.1.1 and with MQTT 5.
TEST(Mqtt, PersistentSessionAcrossStopAndBrokerRestartBothVersions) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  for (int version : {4, 5}) {
    RecordingSink s;
    MqttSourceOptions o = SourceOptions(broker.Url(), "persist-v" + std::to_string(version));
    o.client.version = version;
    o.topics = {"sensors/v" + std::to_string(version) + "/#"};
    auto src = std::make_unique<MqttSource>(o, s, RealClock::Default());
    CHECK_TRUE(src->Start().ok());
    CHECK_TRUE(Connected(*src));
    src->Stop();
    src.reset();
    {
      TestClient pub(broker.Url(), "publisher");
      pub.Connect();
      for (int i = 0; i < 20; ++i)
        pub.Publish("sensors/v" + std::to_string(version) + "/s", "[{\"v\":" + std::to_string(i) + "}]");
    }
    EP_LOG_INFO("test", "published 20 while stopped; restarting the broker");
    broker.Stop();  // the queue survives a broker restart (persistence)
    broker.Start();
    EP_LOG_INFO("test", "broker restarted; starting the source again");
    src = std::make_unique<MqttSource>(o, s, RealClock::Default());
    CHECK_TRUE(src->Start().ok());
    CHECK_TRUE_TEXT(WaitUntil(10'000, [&] { return s.Count() == 20; }), ("MQTT version " + std::to_string(version)).c_str());
    // Reconnects by itself when the broker goes away and comes back.
    EP_LOG_INFO("test", "got 20; stopping the broker");
    broker.Stop();
    EP_LOG_INFO("test", "broker stopped");
    CHECK_TRUE(WaitUntil(10'000, [&] { return src->Health().state != "connected"; }));
    broker.Start();
    if (!Connected(*src)) FAIL(broker.Log().c_str());
    TestClient pub(broker.Url(), "publisher2");
    pub.Connect();
    pub.Publish("sensors/v" + std::to_string(version) + "/s", "[{\"v\":99}]");
    if (!WaitUntil(10'000, [&] {
          std::lock_guard<std::mutex> lock(s.mu);
          return !s.readings.empty() && s.readings.back().value == 99;
        }))
      FAIL(("not delivered after the reconnect; broker log:\n" + broker.Log()).c_str());
    std::lock_guard<std::mutex> lock(s.mu);
    for (int i = 0; i < 20; ++i) DOUBLES_EQUAL(i, s.readings[i].value, 0);
    // The broker was stopped right after the 20th delivery: PUBACKs it had not yet recorded make
    // it send those messages again (at-least-once); in the agent, validation drops such repeats.
    for (size_t i = 20; i + 1 < s.readings.size(); ++i) CHECK(s.readings[i].value < 20);
  }
}

namespace {

// Every reading the store holds, by value, leasing (and acknowledging) all batches.
std::map<double, int> StoredValues(buffer::Store& store) {
  std::map<double, int> n;
  BatchPolicy p;
  p.max_age_us = 0;
  while (true) {
    Result<std::optional<Batch>> b = store.LeaseBatch(p, true);
    if (!b.ok() || !b->has_value()) break;
    for (const Reading& r : (*b)->readings) ++n[r.value];
    if (!store.AckBatch((*b)->id, {}).ok()) break;
  }
  return n;
}

}  // namespace

// A child process commits the first message and is killed with SIGKILL before its handler
// returns, so the message is durable but not acknowledged. The restarted source gets it again
// with DUP set and the same packet identifier: it is acknowledged and not stored twice, while
// the message behind it is stored once. Without the packet-identifier record value 1 was stored
// twice (the kill test saw 1,286 such repeats, beyond validation's duplicate window).
// MQTT 5: the record is a state cell (a state_cells row); MQTT 3.1.1: a plain source_state row
// per packet, as edgepipe stored it before buffer schema 3 (an upgrade between the kill and the
// restart), which the buffer still finds.
TEST(Mqtt, AMessageCommittedButNotAcknowledgedBeforeAKillIsNotStoredTwiceBothVersions) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  for (int version : {4, 5}) {
    const std::string v = std::to_string(version);
    const std::string db = dir.Join("redeliver-v" + v + ".db");
    const std::string client_id = "redeliver-v" + v, filter = "sensors/r" + v + "/#", topic = "sensors/r" + v + "/s";
    const bool cells = version == 5;
    Child child({MQTT_REDELIVER_CHILD, broker.Url(), client_id, v, db, filter, cells ? "cells" : "plain"}, {},
                dir.Join("child-v" + v + ".out"),
                dir.Join("child-v" + v + ".log"));
    auto child_says = [&](const char* what) {
      return WaitUntil(20'000, [&] { return ReadFile(dir.Join("child-v" + v + ".out")).find(what) != std::string::npos; });
    };
    if (!child_says("connected")) FAIL(("child did not connect: " + ReadFile(dir.Join("child-v" + v + ".log"))).c_str());
    for (const char* payload : {"[{\"v\":1}]", "[{\"v\":2}]"})
      LONGS_EQUAL(0, RunProcess({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-q", "1", "-t",
                                 topic, "-m", payload}).exit_code);
    if (!child_says("held")) FAIL(("child did not commit: " + ReadFile(dir.Join("child-v" + v + ".log"))).c_str());
    child.Signal(SIGKILL);
    LONGS_EQUAL(-SIGKILL, child.Wait(10'000));
    {  // where the child's record is (the journal is off in this buffer: it is committed)
      sqlite3* raw = nullptr;
      CHECK_EQUAL(SQLITE_OK, sqlite3_open(db.c_str(), &raw));
      auto count = [&](const char* sql) {
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(raw, sql, -1, &st, nullptr);
        const int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        return n;
      };
      LONGS_EQUAL(cells ? 1 : 0, count("SELECT COUNT(*) FROM state_cells WHERE key = 'mqtt/mqtt-pid'"));
      LONGS_EQUAL(cells ? 0 : 1, count("SELECT COUNT(*) FROM source_state WHERE key LIKE 'mqtt/mqtt-pid/%'"));
      sqlite3_close(raw);
    }

    buffer::Options bo;
    bo.path = db;
    Result<std::unique_ptr<buffer::Store>> store = buffer::Store::Open(bo);
    CHECK_TRUE(store.ok());
    MqttSourceOptions o = SourceOptions(broker.Url(), client_id);
    o.client.version = version;
    o.status_topic.clear();
    o.topics = {filter};
    MqttSource src(o, **store, RealClock::Default());
    CHECK_TRUE(src.Start().ok());
    if (!WaitUntil(20'000, [&] { return src.stats().redelivered_dropped + src.stats().messages >= 2; }))
      FAIL(("the session's messages did not come back; broker log:\n" + broker.Log()).c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a wrongly repeated message would land now
    src.Stop();
    LONGS_EQUAL(1, src.stats().redelivered_dropped);
    LONGS_EQUAL(1, src.stats().messages);  // value 2, which the child never got to commit
    std::map<double, int> stored = StoredValues(**store);
    LONGS_EQUAL(2, stored.size());
    LONGS_EQUAL(1, stored[1]);
    LONGS_EQUAL(1, stored[2]);
  }
}

// A QoS 1 message waits for its commit while commits fail (here: every WAL write fails) and
// another source (plain appends, as QoS 0 or sysfs) keeps filling the memory queue past its
// bound: drop_oldest drops that source's oldest readings, never the waiting message's (it would
// have been acknowledged once a later commit passed it, the readings only a gap). When writes
// work again the message is stored and acknowledged.
TEST(Mqtt, AQosOneMessageWaitingForACommitIsNotDroppedFromAFullMemoryQueue) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  FaultVfs& vfs = FaultVfs::Get();
  buffer::Options bo;
  bo.path = dir.Join("held.db");
  bo.vfs_name = FaultVfs::kName;
  bo.max_memory_readings = 1'000;
  bo.commit_interval_us = 5'000;
  Result<std::unique_ptr<buffer::Store>> store = buffer::Store::Open(bo);
  CHECK_TRUE(store.ok());
  buffer::Store& st = **store;
  MqttSourceOptions o = SourceOptions(broker.Url(), "held-test");
  o.status_topic.clear();
  MqttSource src(o, st, RealClock::Default());
  CHECK_TRUE(src.Start().ok());
  CHECK_TRUE(Connected(src));
  // SQLITE_FULL (not an I/O error, after which the failed work waits aside until the database is
  // reopened): the failed commit's readings go back to the memory queue, where drop_oldest acts.
  FaultSpec spec;
  spec.ops = kFaultWrite;
  spec.file = FaultFile::kWal;
  spec.error = SQLITE_FULL;
  spec.persistent = true;
  vfs.Arm(spec);
  struct Disarm {
    FaultVfs& v;
    ~Disarm() { v.Disarm(); }
  } disarm{vfs};
  // Published from another process: in this one, Paho's single receive thread is the handler
  // that waits, so a client here would not get its PUBACK.
  LONGS_EQUAL(0, RunProcess({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-q", "1", "-t",
                             "sensors/plant/held", "-m", R"([{"n":"a","v":7001},{"n":"b","v":7002},{"n":"c","v":7003}])"})
                     .exit_code);
  // Appended, its wait failed at least once: held by the handler, not acknowledged.
  CHECK_TRUE(WaitUntil(10'000, [&] { return src.stats().sink_retries > 0; }));
  CHECK_TRUE(WaitUntil(10'000, [&] { return st.GetStats().memory_readings == 3; }));
  // The other source: 6,000 readings through a 1,000-reading queue, all after the message.
  uint64_t dropped_other = 0;
  for (int i = 0; i < 20; ++i) {
    std::vector<Reading> rs(300);
    for (int k = 0; k < 300; ++k) {
      rs[k].sensor = "other";
      rs[k].ts_us = RealClock::Default().SystemNowUs();
      rs[k].value = i * 300 + k;
      rs[k].source = "sysfs";
    }
    CHECK_TRUE(st.Append(rs).ok());
  }
  CHECK(st.GetStats().memory_readings <= 1'000);
  LONGS_EQUAL(0, src.stats().messages);  // still waiting: not acknowledged
  vfs.Disarm();
  CHECK_TRUE(WaitUntil(30'000, [&] { return src.stats().messages == 1; }));
  src.Stop();
  CHECK_TRUE(st.Flush().ok());
  const buffer::Stats stats = st.GetStats();
  dropped_other = stats.readings_dropped_memory;
  CHECK(dropped_other >= 5'000);  // the other source's readings did overflow the queue
  std::map<double, int> stored = StoredValues(st);
  for (double v : {7001.0, 7002.0, 7003.0}) LONGS_EQUAL_TEXT(1, stored[v], ("value " + std::to_string(v)).c_str());
}

namespace {

// TCP_NODELAY of each of this process's sockets connected to `port`.
std::vector<int> NoDelayOfSocketsTo(int port) {
  std::vector<int> out;
  DIR* d = opendir("/proc/self/fd");
  CHECK(d != nullptr);
  while (const dirent* e = readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d)) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 || peer.sin_family != AF_INET ||
        ntohs(peer.sin_port) != port)
      continue;
    int v = -1;
    socklen_t vlen = sizeof v;
    CHECK_EQUAL(0, getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vlen));
    out.push_back(v != 0);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Paho leaves Nagle's algorithm on; the republisher's small packs then waited for the broker's
// delayed ACK (docs/benchmarks.md: added p99 27-38 ms at 10 k readings/s, 6 ms without). Its
// connection, and only its connection, gets TCP_NODELAY, also after a reconnect.
TEST(Mqtt, RepublisherTurnsNagleOffOnItsOwnConnectionOnly) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  TestClient watch(broker.Url(), "consumer");  // another client of this process, same broker
  watch.Connect();
  CHECK(NoDelayOfSocketsTo(broker.port()) == std::vector<int>({0}));
  RepublishOptions o;
  o.client.url = broker.Url();
  o.client.client_id = "republisher";
  o.client.reconnect_min_us = 100'000;
  Republisher rp(o, RealClock::Default());
  CHECK_TRUE(rp.Start().ok());
  CHECK_TRUE(WaitUntil(5000, [&] { return rp.connected(); }));
  CHECK(NoDelayOfSocketsTo(broker.port()) == std::vector<int>({0, 1}));
  broker.Stop();
  broker.Start();  // same port: the republisher reconnects (the watcher does not)
  CHECK_TRUE(WaitUntil(10'000, [&] { return rp.connected() && NoDelayOfSocketsTo(broker.port()) == std::vector<int>({1}); }));
  rp.Stop();
}

TEST(Mqtt, RepublisherSendsSenmlPerReading) {
  Broker broker(dir.Join("broker"));
  broker.Start();
  TestClient watch(broker.Url(), "consumer");
  watch.Connect();
  watch.Subscribe("edgepipe/gw/clean/#");
  RepublishOptions o;
  o.client.url = broker.Url();
  o.client.client_id = "republisher";
  o.topic_prefix = "edgepipe/gw/clean/";
  Republisher rp(o, RealClock::Default());
  CHECK_TRUE(rp.Start().ok());
  CHECK_TRUE(WaitUntil(5000, [&] { return rp.connected(); }));
  Reading a;
  a.sensor = "boiler/t-17";
  a.ts_us = 1'700'000'000'123'456;
  a.value = 21.37;
  a.unit = "Cel";
  Reading b;
  b.sensor = "door+1";
  b.ts_us = 1'700'000'001'000'000;
  b.type = ValueType::kBool;
  b.value = 1;
  std::vector<Reading> v = {a, b};
  rp.Offer(v);
  CHECK_TRUE(WaitUntil(5000, [&] { return watch.Got("edgepipe/gw/clean/boiler/t-17").size() == 1 &&
                                          watch.Got("edgepipe/gw/clean/door_1").size() == 1; }));
  STRCMP_EQUAL(R"([{"n":"boiler/t-17","t":1700000000.123456,"v":21.37,"u":"Cel"}])",
               watch.Got("edgepipe/gw/clean/boiler/t-17")[0].c_str());
  STRCMP_EQUAL(R"([{"n":"door+1","t":1700000001.000000,"vb":true}])", watch.Got("edgepipe/gw/clean/door_1")[0].c_str());
  LONGS_EQUAL(2, rp.stats().published);
  rp.Stop();
}
