// The MQTT source: Paho delivers each message on its delivery thread; the handler parses it,
// hands it to the sink and (QoS >= 1) returns only once it is durable (committed, or in the
// buffer's acknowledgement journal), because Paho
// sends the PUBACK when the handler returns (see the contract in mqtt.h).
//
// Redeliveries: a QoS >= 1 message committed but not yet acknowledged when the agent died comes
// again after the restart, with the DUP flag and its original packet identifier. Any number may
// be in that state (the broker's in-flight window; Paho may also hold back PUBACKs while its
// socket has pending writes): 1,286 were seen in one kill test. So each commit also records, per
// packet identifier, a fingerprint of the message (topic and payload bytes) — a StateCell of the
// table "<source>/mqtt-pid", which the buffer keeps 64 identifiers to a row; a DUP message whose
// identifier and fingerprint match the last message committed under that identifier is
// acknowledged and dropped (docs/operations.md, "MQTT", redeliveries).

// Paho C++ 1.2 keeps the packet identifier of a received message only in the wrapped C struct,
// which it exposes when UNIT_TESTS is defined (an inline accessor; no layout change). This must
// be the first Paho header of this file; if message.h came in earlier, c_struct() is missing and
// the build fails rather than silently losing the identifier.
#define UNIT_TESTS 1
#include <mqtt/message.h>
#undef UNIT_TESTS

#include <atomic>
#include <chrono>
#include <thread>

#include "edgepipe/firmware_bridge/mqtt.h"
#include "edgepipe/firmware_bridge/topic_template.h"
#include "mqtt_session.h"

namespace edgepipe::fb {
namespace {
constexpr const char* kLog = "mqtt";
constexpr int64_t kRetryMinUs = 10'000;
constexpr int64_t kRetryMaxUs = 2'000'000;

// FNV-1a over the topic, a separator and the payload: stable across builds and restarts. Never
// 0, which a StateCell reads as "no value".
uint64_t MessageFingerprint(const std::string& topic, const std::string& payload) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(topic);
  h ^= 0xff;
  h *= 1099511628211ull;
  mix(payload);
  return h ? h : 1;
}
}  // namespace

struct MqttSource::Impl {
  Impl(MqttSourceOptions o, ReadingSink& s, Clock& c)
      : opt(std::move(o)), sink(s), clock(c), parser(opt.payload) {
    mark_cell.table = opt.name + "/mqtt-pid";
  }

  MqttSourceOptions opt;
  ReadingSink& sink;
  Clock& clock;
  std::unique_ptr<MqttSession> session;
  std::optional<TopicTemplate> tmpl;

  // Used only on Paho's delivery thread.
  PayloadParser parser;
  std::vector<Reading> batch;
  std::vector<Reading> no_readings;  // a quarantined message's cell goes with none
  std::string sensor;
  StateCell mark_cell;  // the packet record of the message being handled (table set once)

  std::atomic<bool> stopping{false};
  std::atomic<bool> in_handler{false};
  std::atomic<uint64_t> messages{0}, readings{0}, quarantined{0}, sink_retries{0}, lost_qos0{0};
  std::atomic<uint64_t> redelivered_dropped{0}, redelivered_stored{0};
  mutable std::mutex err_mu;
  std::string last_error;
  RateLimitedLog reject_log{60'000'000};
  RateLimitedLog sink_log{10'000'000};
  RateLimitedLog redelivery_log{60'000'000};

  void SetError(std::string e) {
    std::lock_guard<std::mutex> lock(err_mu);
    last_error = std::move(e);
  }

  void OnMessage(const mqtt::const_message_ptr& msg);
  // The message's readings into `batch` (emptied first), `sensor` from the topic, `now` its arrival.
  bool ParseInto(const std::string& payload, int64_t now, PayloadError* err) {
    batch.clear();
    return parser.Parse(payload, sensor, now, opt.name, &batch, err);
  }
  // `payload` and `now` rebuild `batch` for a retry (the sink takes the readings out of it).
  // `mark` (QoS >= 1: the packet record, else null) is committed with the message.
  Result<uint64_t> Deliver(bool ok, const QuarantineRecord& q, int qos, const StateCell* mark,
                           const std::string& payload, int64_t now);
  bool AlreadyCommitted(const StateCell& mark);
  Status OnConnected(mqtt::async_client& cli, bool session_present);
};

Status MqttSource::Impl::OnConnected(mqtt::async_client& cli, bool session_present) {
  for (const std::string& t : opt.topics) {
    try {
      mqtt::token_ptr tok = cli.subscribe(t, opt.qos);
      // No short timeout: with a resumed session the broker first delivers the backlog, and the
      // SUBACK waits behind it on the same connection. Only a lost link ends the wait.
      if (!session->WaitToken(tok, 3'600'000)) return UnavailableError("subscribe to " + t + " did not complete (connection lost or timed out)");
      // MQTT 3.1.1 reports a refused filter as return code 0x80 in the SUBACK.
      const mqtt::subscribe_response resp = tok->get_subscribe_response();
      const std::vector<mqtt::ReasonCode> codes = resp.get_reason_codes();
      for (mqtt::ReasonCode rc : codes)
        if (static_cast<int>(rc) >= 0x80)
          return FailedPreconditionError(StrFormat("broker refused the subscription to \"%s\" (code 0x%02x): check the ACL",
                                                   t.c_str(), static_cast<int>(rc)));
    } catch (const mqtt::exception& e) {
      return UnavailableError("subscribe to " + t + ": " + e.what());
    }
  }
  if (!opt.status_topic.empty()) {
    try {
      session->WaitToken(cli.publish(opt.status_topic, "online", 6, 1, true), 5000);
    } catch (const mqtt::exception& e) {
      EP_LOG_WARN(kLog, "source %s: publishing status to %s failed: %s", opt.name.c_str(), opt.status_topic.c_str(), e.what());
    }
  }
  EP_LOG_INFO(kLog, "source %s: subscribed to %zu filter(s) at QoS %d (session %s)", opt.name.c_str(),
              opt.topics.size(), opt.qos, session_present ? "resumed" : "new");
  return Status::Ok();
}

// Hands the readings (or the quarantine record) to the sink. A message of QoS >= 1 is retried
// with backoff until the sink takes it: returning would acknowledge it.
// `mark` (QoS >= 1) is committed with the readings, or right after the quarantine record, so a
// crash between the two can only make a redelivery stored twice, never dropped.
Result<uint64_t> MqttSource::Impl::Deliver(bool ok, const QuarantineRecord& q, int qos, const StateCell* mark,
                                            const std::string& payload, int64_t now) {
  int64_t backoff = kRetryMinUs;
  bool quarantine_queued = false;
  for (int attempt = 0;; ++attempt) {
    Result<uint64_t> t = uint64_t{0};
    if (ok) {
      if (attempt > 0) {  // the refused attempt took the readings: parse them again, as they were
        PayloadError again;
        ParseInto(payload, now, &again);
      }
      // Handed over, not copied.
      t = mark ? sink.AppendWithCell(batch, *mark) : sink.AppendWithStateOwned(batch, SourceState{});
    } else {
      if (!quarantine_queued) {
        t = sink.Quarantine(q);
        quarantine_queued = t.ok();
      }
      if (quarantine_queued && mark) {
        no_readings.clear();
        t = sink.AppendWithCell(no_readings, *mark);
      }
    }
    if (t.ok() || qos == 0 || stopping) return t;
    ++sink_retries;
    SetError("buffer refused a message: " + t.status().ToString());
    uint64_t suppressed = 0;
    if (sink_log.ShouldLog(clock.MonotonicNowUs(), &suppressed))
      EP_LOG_WARN(kLog, "source %s: buffer refused a message (%s); holding it (not acknowledged) and retrying",
                  opt.name.c_str(), t.status().ToString().c_str());
    std::this_thread::sleep_for(std::chrono::microseconds(backoff));
    backoff = std::min(backoff * 2, kRetryMaxUs);
  }
}

// True when a message with this packet identifier and fingerprint was committed before: a
// redelivery of it. A lookup error counts as "not committed" (stored twice rather than lost).
bool MqttSource::Impl::AlreadyCommitted(const StateCell& mark) {
  Result<std::optional<uint64_t>> v = sink.LoadCell(mark.table, mark.index);
  if (!v.ok()) {
    EP_LOG_WARN(kLog, "source %s: could not look up a redelivered message (%s); storing it", opt.name.c_str(),
                v.status().ToString().c_str());
    return false;
  }
  return v->has_value() && **v == mark.value;
}

void MqttSource::Impl::OnMessage(const mqtt::const_message_ptr& msg) {
  in_handler = true;
  const std::string& topic = msg->get_topic();
  const std::string& payload = msg->get_payload_str();
  const int qos = msg->get_qos();
  const int64_t now = clock.SystemNowUs();
  const StateCell* mark = nullptr;
  const int packet_id = msg->c_struct().msgid;
  if (qos > 0 && packet_id > 0) {
    mark_cell.index = static_cast<uint32_t>(packet_id);
    mark_cell.value = MessageFingerprint(topic, payload);
    mark = &mark_cell;
    if (msg->is_duplicate()) {
      if (AlreadyCommitted(mark_cell)) {
        ++redelivered_dropped;
        uint64_t suppressed = 0;
        if (redelivery_log.ShouldLog(clock.MonotonicNowUs(), &suppressed))
          EP_LOG_INFO(kLog, "source %s: broker redelivered message %d on %s, already stored: acknowledged, not "
                      "stored again (%llu more suppressed)", opt.name.c_str(), packet_id, topic.c_str(),
                      static_cast<unsigned long long>(suppressed));
        in_handler = false;
        return;  // Paho acknowledges it now
      }
      ++redelivered_stored;
    }
  }
  batch.clear();
  PayloadError err;
  bool ok;
  if (!tmpl->Match(topic, &sensor)) {
    ok = false;
    err.rule = "topic";
    err.reason = "topic does not match topic_template \"" + tmpl->pattern() + "\"";
  } else {
    ok = ParseInto(payload, now, &err);
  }
  QuarantineRecord q;
  if (!ok) {
    q.ts_us = now;
    q.source = opt.name;
    q.sensor = err.sensor;
    q.rule = err.rule;
    q.reason = err.reason + " (topic " + topic + ", " + PayloadFormatName(opt.payload.format) + " payload)";
    q.raw = payload;
    ++quarantined;
    uint64_t suppressed = 0;
    if (reject_log.ShouldLog(clock.MonotonicNowUs(), &suppressed))
      EP_LOG_WARN(kLog, "source %s: message on %s quarantined (%s): %s (%llu more suppressed)", opt.name.c_str(),
                  topic.c_str(), err.rule.c_str(), err.reason.c_str(), static_cast<unsigned long long>(suppressed));
    SetError("quarantined a message on " + topic + ": " + err.reason);
  }
  const size_t n_readings = batch.size();  // Deliver hands `batch` over
  Result<uint64_t> ticket = Deliver(ok, q, qos, mark, payload, now);
  if (!ticket.ok()) {
    // QoS 0 (best effort) or stopping: nothing more can be done for this message.
    ++lost_qos0;
    SetError("message on " + topic + " not stored: " + ticket.status().ToString());
    in_handler = false;
    return;
  }
  if (qos > 0) {
    int64_t backoff = kRetryMinUs;
    while (true) {
      Status s = sink.WaitDurable(*ticket);
      if (s.ok() || stopping) break;
      ++sink_retries;
      SetError("commit failed: " + s.ToString());
      uint64_t suppressed = 0;
      if (sink_log.ShouldLog(clock.MonotonicNowUs(), &suppressed))
        EP_LOG_WARN(kLog, "source %s: commit failed (%s); not acknowledging until it is durable", opt.name.c_str(),
                    s.ToString().c_str());
      std::this_thread::sleep_for(std::chrono::microseconds(backoff));
      backoff = std::min(backoff * 2, kRetryMaxUs);
    }
  }
  ++messages;
  readings += n_readings;
  in_handler = false;
}

MqttSource::MqttSource(MqttSourceOptions options, ReadingSink& sink, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), sink, clock)) {}

MqttSource::~MqttSource() { Stop(); }

const std::string& MqttSource::name() const { return impl_->opt.name; }

Status MqttSource::Start() {
  Impl& im = *impl_;
  if (im.session) return Status::Ok();
  if (im.opt.topics.empty()) return InvalidArgumentError("no topics to subscribe to");
  if (im.opt.qos < 0 || im.opt.qos > 2) return InvalidArgumentError("qos must be 0, 1 or 2");
  Result<TopicTemplate> t = TopicTemplate::Parse(im.opt.topic_template, im.opt.sensor_format);
  if (!t.ok()) return InvalidArgumentError("topic_template: " + t.status().message());
  im.tmpl = std::move(*t);
  SessionConfig sc;
  sc.log_name = "source " + im.opt.name;
  sc.client = im.opt.client;
  sc.clean_session = im.opt.clean_session;
  sc.will_topic = im.opt.status_topic;
  sc.on_connected = [&im](mqtt::async_client& cli, bool present) { return im.OnConnected(cli, present); };
  sc.on_message = [&im](mqtt::const_message_ptr m) { im.OnMessage(m); };
  im.stopping = false;
  im.session = std::make_unique<MqttSession>(std::move(sc), im.clock);
  Status s = im.session->Start();
  if (!s.ok()) im.session.reset();
  return s;
}

void MqttSource::Stop() {
  Impl& im = *impl_;
  if (!im.session) return;
  // Let a message being handled finish its commit first, so it is acknowledged.
  for (int i = 0; i < 200 && im.in_handler; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  im.stopping = true;
  im.session->Stop("offline");
}

SourceHealth MqttSource::Health() const {
  const Impl& im = *impl_;
  SourceHealth h;
  h.name = im.opt.name;
  h.type = "mqtt";
  h.state = im.session ? im.session->state() : "stopped";
  h.readings = im.readings;
  h.errors = im.quarantined + im.lost_qos0 + (im.session ? im.session->failures() : 0);
  h.counters["redelivered_dropped"] = im.redelivered_dropped;
  h.counters["redelivered_stored"] = im.redelivered_stored;
  std::lock_guard<std::mutex> lock(im.err_mu);
  h.last_error = im.last_error;
  if (im.session && !im.session->connected() && !im.session->last_error().empty()) h.last_error = im.session->last_error();
  return h;
}

MqttSourceStats MqttSource::stats() const {
  const Impl& im = *impl_;
  MqttSourceStats s;
  s.messages = im.messages;
  s.readings = im.readings;
  s.quarantined = im.quarantined;
  s.sink_retries = im.sink_retries;
  s.redelivered_dropped = im.redelivered_dropped;
  s.redelivered_stored = im.redelivered_stored;
  if (im.session) {
    s.connects = im.session->connects();
    s.connect_failures = im.session->failures();
  }
  return s;
}

}  // namespace edgepipe::fb
