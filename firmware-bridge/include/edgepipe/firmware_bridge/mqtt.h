// MQTT input (a subscriber on the gateway's broker) and the optional local republisher of
// validated readings. Both use the Paho MQTT C++ async client; Paho stays a private dependency of
// the fb_mqtt target (no Paho type appears here). Behaviour for operators: docs/operations.md,
// section "MQTT"; payload formats: firmware-bridge/PAYLOADS.md.
//
// Delivery contract of MqttSource at QoS 1 (and 2): Paho sends the acknowledgement of an incoming
// message only after the message handler returns (verified for Debian's Paho C 1.3.12 / C++ 1.2,
// shared/notes/setup-verified.md section 2). The handler parses the payload, hands the readings
// (or the quarantine record) to the sink and returns only after WaitDurable() confirmed that it
// is durable (committed, or written to the buffer's acknowledgement journal, which the next start
// commits: docs/durability.md). So a message is acknowledged only once it is durable. One that was committed but not
// acknowledged when the agent died is sent again by the broker, with the DUP flag and its original
// packet identifier; any number of messages can be in that state. Each commit therefore also
// records (a StateCell of the table "<source>/mqtt-pid", index = packet id) a fingerprint of
// the message's topic and payload bytes, and a DUP message matching the record of its packet
// identifier is acknowledged without being stored again. Identical bytes under the same packet
// identifier cannot be told apart at QoS 1; for payloads with their own timestamps they are the
// same reading. Validation's exact-duplicate rule is a second line. If the sink refuses the readings (buffer
// full, commits failing) the handler retries with backoff and does not return: back-pressure
// reaches the broker, which keeps queueing for our persistent session.
//
// Paho delivers the messages of every client in a process on ONE thread (verified: a handler
// blocked on one client stalls the others), so extra connections or shared subscriptions in one
// process do not add QoS 1 throughput; each QoS 1 message costs one journal write (one commit
// with buffer.ack_journal off).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/reading.h"
#include "edgepipe/core/source.h"
#include "edgepipe/firmware_bridge/payload.h"

namespace edgepipe::fb {

// How to reach a broker (shared by the source and the republisher).
struct MqttClientOptions {
  std::string url = "tcp://127.0.0.1:1883";  // tcp://host:port, ssl://host:port (mqtts:// too)
  std::string client_id;                      // must be stable across restarts (persistent session)
  int version = 4;                            // 4 = MQTT 3.1.1, 5 = MQTT 5
  std::string username;                       // "" = anonymous
  std::string password;                       // the secret itself (loaded by the agent)
  std::string ca_file;                        // TLS: CA bundle that signs the broker's certificate
  std::string cert_file;                      // TLS client certificate (optional)
  std::string key_file;                       // its private key
  bool verify_hostname = true;                // TLS: check the certificate names the host
  int64_t keep_alive_us = 30'000'000;
  int64_t connect_timeout_us = 10'000'000;
  int64_t reconnect_min_us = 500'000;         // backoff after a failed or lost connection...
  int64_t reconnect_max_us = 60'000'000;      // ...doubling (with jitter) up to this
  uint32_t session_expiry_s = 7 * 86'400;     // MQTT 5: how long the broker keeps our session
};

// Checks what can be checked without connecting (URL scheme, version, TLS files readable).
Status CheckMqttClientOptions(const MqttClientOptions& o);

struct MqttSourceOptions {
  std::string name = "mqtt";
  MqttClientOptions client;
  std::vector<std::string> topics;   // subscription filters (wildcards + and #)
  int qos = 1;                       // 0, 1 or 2
  bool clean_session = false;        // false: the broker queues for us while we are away
  std::string topic_template;        // e.g. "sensors/{site}/{sensor}" ("" = the topic is the id)
  std::string sensor_format;         // e.g. "{site}/{sensor}" ("" = captures joined by '/')
  PayloadOptions payload;
  // Retained "online" on connect, "offline" as last will and on a clean stop ("" = none).
  std::string status_topic;
};

struct MqttSourceStats {
  uint64_t messages = 0;          // messages handled (stored or quarantined)
  uint64_t readings = 0;          // readings handed to the sink
  uint64_t quarantined = 0;       // messages rejected to quarantine
  uint64_t connects = 0;          // successful connections (first + reconnects)
  uint64_t connect_failures = 0;
  uint64_t sink_retries = 0;      // times the handler had to wait for the sink (back-pressure)
  uint64_t redelivered_dropped = 0;  // DUP messages already committed: acknowledged, not stored again
  uint64_t redelivered_stored = 0;   // DUP messages not committed before: stored
};

class MqttSource final : public Source {
 public:
  MqttSource(MqttSourceOptions options, ReadingSink& sink, Clock& clock);
  ~MqttSource() override;

  const std::string& name() const override;
  // Validates the options and starts the connection thread; connection problems are retried
  // in the background (reported in Health), not returned here.
  Status Start() override;
  // Publishes "offline" (if configured), disconnects; no handler runs after it returns.
  void Stop() override;
  SourceHealth Health() const override;
  MqttSourceStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct RepublishOptions {
  MqttClientOptions client;
  std::string topic_prefix;          // readings go to <topic_prefix><sensor>, e.g. "edgepipe/gw-1/clean/"
  int qos = 0;
  size_t max_queue = 100'000;        // readings waiting to be published; beyond it they are dropped (counted)
  int64_t linger_us = 5'000;         // gather readings this long before publishing a round of packs
};

struct RepublishStats {
  uint64_t published = 0;  // readings published
  uint64_t messages = 0;   // MQTT messages sent (readings of one sensor queued together share one)
  uint64_t dropped = 0;    // dropped: queue full or broker unreachable
  uint64_t errors = 0;
};

// Publishes validated readings as SenML on a local topic for on-device consumers. Best effort by
// design: it never slows the pipeline (Offer only queues) and never blocks on the broker. A
// sender thread takes whatever is queued and publishes one SenML pack per sensor (one record per
// reading, arrival order): one reading per message when idle, fewer, larger messages under load.
class Republisher {
 public:
  Republisher(RepublishOptions options, Clock& clock);
  ~Republisher();
  Status Start();
  void Stop();
  // Thread-safe, non-blocking: queues the readings for publication (one lock per call).
  void Offer(std::span<const Reading> readings);
  RepublishStats stats() const;
  bool connected() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The SenML pack the republisher sends for one reading, e.g.
// [{"n":"boiler/t-17","t":1700000000.123,"v":21.37,"u":"Cel"}]. Exposed for tests.
std::string SenmlForReading(const Reading& r);
// A pack of several readings (records in the given order), e.g. [{"n":..,"t":..,"v":..},{...}].
std::string SenmlPackForReadings(std::span<const Reading* const> readings);
// "<prefix><sensor>" with MQTT wildcards ('+', '#') in the sensor id replaced by '_'.
std::string RepublishTopic(const std::string& prefix, const std::string& sensor);

}  // namespace edgepipe::fb
