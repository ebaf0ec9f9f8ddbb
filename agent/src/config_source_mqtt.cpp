// [[source]] type = "mqtt" and the [republish] section (issue 6).
#include "config_schema.h"
#include "edgepipe/firmware_bridge/topic_template.h"

namespace edgepipe::agent::cfg {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 86'400 * kSec;

const char* kDefaultUrl = "tcp://127.0.0.1:1883";

// The broker connection keys, shared by the source and [republish]. `C` maps a section target to
// its fb::MqttClientOptions, `P` to its SecretRef for the password.
template <class T, class C, class P>
void AddClientFields(Section<T>& sec, C client, P password, const std::string& default_client_id) {
  sec.fields.push_back(CustomField<T>("url", "string", std::string("\"") + kDefaultUrl + "\"",
      "Broker URL: `tcp://host:port` or `ssl://host:port` (TLS; `mqtt://`, `mqtts://` also accepted).",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).url = *v;
      }));
  sec.fields.push_back(CustomField<T>("client_id", "string", default_client_id,
      "MQTT client id. Must be stable across restarts: the broker keeps the persistent session (and the "
      "messages queued while the agent is down) under it. `{device}` and `{name}` are replaced.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).client_id = *v;
      }));
  sec.fields.push_back(CustomField<T>("version", "one of \"3.1.1\", \"5\"", "`\"3.1.1\"`", "MQTT protocol version.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        auto v = ReadString(n, r, p);
        if (!v) return;
        if (*v == "3.1.1" || *v == "4") client(t).version = 4;
        else if (*v == "5" || *v == "5.0") client(t).version = 5;
        else r.Add(n.source(), p + ": " + Quote(*v) + " is not one of \"3.1.1\", \"5\"");
      }));
  sec.fields.push_back(CustomField<T>("username", "string", "", "User name (none: anonymous).",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).username = *v;
      }));
  sec.fields.push_back(CustomField<T>("password", "secret", "",
      "Password: `{ file = \"/etc/edgepipe/mqtt.pass\" }`, `{ credential = \"mqtt-pass\" }` (systemd "
      "LoadCredential=) or an inline string (discouraged).",
      [password](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadSecret(n, r, p)) password(t) = *v;
      }));
  sec.fields.push_back(CustomField<T>("ca_file", "string", "", "TLS: CA certificate(s) that sign the broker's certificate (PEM).",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).ca_file = *v;
      }));
  sec.fields.push_back(CustomField<T>("cert_file", "string", "", "TLS: client certificate (PEM), with `key_file`.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).cert_file = *v;
      }));
  sec.fields.push_back(CustomField<T>("key_file", "string", "", "TLS: private key of the client certificate (PEM).",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadString(n, r, p)) client(t).key_file = *v;
      }));
  sec.fields.push_back(CustomField<T>("verify_hostname", "boolean", "`true`",
      "TLS: check that the broker's certificate names the host in `url`.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadBool(n, r, p)) client(t).verify_hostname = *v;
      }));
  sec.fields.push_back(CustomField<T>("keep_alive", "duration (1s to 1h)", "`\"30s\"`", "MQTT keep-alive interval.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadDuration(n, r, p, kSec, 3600 * kSec)) client(t).keep_alive_us = *v;
      }));
  sec.fields.push_back(CustomField<T>("reconnect_min", "duration (10ms to 1h)", "`\"500ms\"`",
      "First wait after a failed or lost connection; doubles (with jitter) on each failure...",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadDuration(n, r, p, 10 * kMs, 3600 * kSec)) client(t).reconnect_min_us = *v;
      }));
  sec.fields.push_back(CustomField<T>("reconnect_max", "duration (10ms to 1h)", "`\"1m\"`", "...up to this.",
      [client](T& t, const toml::node& n, Reporter& r, const std::string& p) {
        if (auto v = ReadDuration(n, r, p, 10 * kMs, 3600 * kSec)) client(t).reconnect_max_us = *v;
      }));
}

template <class T, class C>
void CheckClient(T& t, C client, const toml::table& table, Reporter& r, const std::string& path) {
  const fb::MqttClientOptions& c = client(t);
  const bool tls = c.url.rfind("ssl://", 0) == 0 || c.url.rfind("mqtts://", 0) == 0 || c.url.rfind("wss://", 0) == 0;
  auto at = [&](const char* key) { const toml::node* n = table.get(key); return n ? n->source() : table.source(); };
  if (!(c.url.rfind("tcp://", 0) == 0 || c.url.rfind("mqtt://", 0) == 0 || c.url.rfind("ws://", 0) == 0 || tls))
    r.Add(at("url"), path + ".url: " + Quote(c.url) + " must start with tcp:// or ssl:// (mqtt://, mqtts://, ws://, wss://)");
  if (!tls && (!c.ca_file.empty() || !c.cert_file.empty() || !c.key_file.empty()))
    r.Add(at("ca_file"), path + ": TLS files are set but url " + Quote(c.url) + " is not TLS; use ssl://host:8883");
  if (c.cert_file.empty() != c.key_file.empty())
    r.Add(at(c.cert_file.empty() ? "key_file" : "cert_file"), path + ": a client certificate needs both cert_file and key_file");
  if (c.reconnect_min_us > c.reconnect_max_us)
    r.Add(at("reconnect_min"), path + ": reconnect_min is larger than reconnect_max");
}

std::string CheckFilter(const std::string& f) {
  if (f.empty()) return "empty topic filter";
  size_t pos = 0;
  while (true) {
    size_t slash = f.find('/', pos);
    std::string lvl = f.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (lvl.find('#') != std::string::npos && (lvl != "#" || slash != std::string::npos))
      return "'#' must be a whole level and the last one";
    if (lvl.find('+') != std::string::npos && lvl != "+") return "'+' must be a whole level";
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return "";
}

const Section<fb::MqttSourceOptions>& MqttSection() {
  static const Section<fb::MqttSourceOptions> s = [] {
    using O = fb::MqttSourceOptions;
    Section<O> sec;
    sec.title = "[[source]] type = \"mqtt\"";
    sec.doc = "Subscribes to topics on an MQTT broker (Paho MQTT C++). At QoS 1 a message is acknowledged "
              "only after its readings are durably committed, with a persistent session, so messages sent "
              "while the agent is down or killed are delivered after it restarts (see docs/operations.md, "
              "\"MQTT\", for the broker settings this needs). Payload formats: firmware-bridge/PAYLOADS.md.";
    auto client = [](O& o) -> fb::MqttClientOptions& { return o.client; };
    // The password lives beside the options, in SourceConfig; parsed by the source type below.
    sec.fields.push_back(CustomField<O>("topics", "array of strings", "(the filter of `topic_template`)",
        "Subscription filters; `+` and `#` wildcards allowed.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          auto v = ReadStringArray(n, r, p);
          if (!v) return;
          for (const std::string& f : *v) {
            std::string err = CheckFilter(f);
            if (!err.empty()) r.Add(n.source(), p + ": " + Quote(f) + ": " + err);
          }
          o.topics = *v;
        }));
    sec.fields.push_back(IntField<O, int>("qos", &O::qos, 0, 2,
        "Subscription QoS. 1 (or 2): acknowledged after the durable commit, nothing lost. 0: best effort."));
    sec.fields.push_back(BoolField<O>("clean_session", &O::clean_session,
        "`false` keeps a persistent session: the broker queues messages for the agent while it is away."));
    sec.fields.push_back(StringField<O>("topic_template", &O::topic_template,
        "Maps a topic to a sensor id: levels are literal, `{name}` (captured), `+` or a final `#`, e.g. "
        "`sensors/{site}/{sensor}`. Messages on topics that do not match are quarantined. Empty: the topic is the id."));
    sec.fields.push_back(StringField<O>("sensor_format", &O::sensor_format,
        "Sensor id built from the captures, e.g. `{site}/{sensor}` (default: the captures joined by `/`)."));
    sec.fields.push_back(CustomField<O>("format", "one of \"senml\", \"number\", \"json\"", "`\"senml\"`",
        "Payload format: SenML JSON (RFC 8428), a plain number, or a JSON object/array read with the `*_pointer` keys.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          auto v = ReadString(n, r, p);
          if (!v) return;
          if (*v == "senml") o.payload.format = fb::PayloadFormat::kSenml;
          else if (*v == "number") o.payload.format = fb::PayloadFormat::kNumber;
          else if (*v == "json") o.payload.format = fb::PayloadFormat::kJson;
          else {
            std::string hint = DidYouMean(*v, {"senml", "number", "json"});
            r.Add(n.source(), p + ": " + Quote(*v) + " is not one of senml, number, json" +
                                  (hint.empty() ? "" : "; did you mean " + Quote(hint) + "?"));
          }
        }));
    auto pointer = [](std::string fb::PayloadOptions::*m, const char* key, const char* def, const char* doc) {
      return CustomField<O>(key, "JSON pointer", def, doc, [m](O& o, const toml::node& n, Reporter& r, const std::string& p) {
        auto v = ReadString(n, r, p, true);
        if (!v) return;
        std::string err = fb::CheckJsonPointer(*v);
        if (!err.empty()) r.Add(n.source(), p + ": " + Quote(*v) + ": " + err);
        else o.payload.*m = *v;
      });
    };
    sec.fields.push_back(pointer(&fb::PayloadOptions::value_pointer, "value_pointer", "`\"/value\"`",
                                 "`format = \"json\"`: where the value is (number, boolean or string)."));
    sec.fields.push_back(pointer(&fb::PayloadOptions::time_pointer, "time_pointer", "`\"/ts\"`",
                                 "`format = \"json\"`: where the timestamp is (number in `time_unit`, or ISO 8601); "
                                 "`\"\"` or absent in a message: time of arrival."));
    sec.fields.push_back(pointer(&fb::PayloadOptions::sensor_pointer, "sensor_pointer", "`\"/sensor\"`",
                                 "`format = \"json\"`: where the sensor id is; absent: the id from the topic."));
    sec.fields.push_back(pointer(&fb::PayloadOptions::unit_pointer, "unit_pointer", "",
                                 "`format = \"json\"`: where the unit is (optional)."));
    sec.fields.push_back(CustomField<O>("time_unit", "one of \"s\", \"ms\", \"us\"", "`\"s\"`",
        "`format = \"json\"`: unit of numeric timestamps (Unix epoch).",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          auto v = ReadString(n, r, p);
          if (!v) return;
          if (*v == "s") o.payload.time_unit = fb::TimeUnit::kSeconds;
          else if (*v == "ms") o.payload.time_unit = fb::TimeUnit::kMilliseconds;
          else if (*v == "us") o.payload.time_unit = fb::TimeUnit::kMicroseconds;
          else r.Add(n.source(), p + ": " + Quote(*v) + " is not one of s, ms, us");
        }));
    sec.fields.push_back(CustomField<O>("unit", "string", "", "`number`/`json`: SenML unit when the payload gives none, e.g. `Cel`.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadString(n, r, p)) o.payload.unit = *v;
        }));
    sec.fields.push_back(CustomField<O>("max_payload", "size (16B to 16MiB)", "`\"256kB\"`",
        "Larger messages are quarantined (`oversize`), first bytes kept.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadSize(n, r, p, 16, 16ull << 20)) o.payload.max_bytes = *v;
        }));
    sec.fields.push_back(CustomField<O>("max_readings_per_message", "integer (1 to 1000000)", "`10000`",
        "A message with more readings (SenML records, JSON array elements) is quarantined (`oversize`).",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadInt(n, r, p, 1, 1'000'000)) o.payload.max_readings = static_cast<size_t>(*v);
        }));
    sec.fields.push_back(CustomField<O>("status_topic", "string", "`\"edgepipe/{device}/status\"`",
        "Retained `online` on connect, `offline` as last will and on a clean stop; `\"\"` disables. `{device}` and `{name}` are replaced.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadString(n, r, p, true)) o.status_topic = *v;
        }));
    sec.fields.push_back(CustomField<O>("session_expiry", "duration (1s to 365d)", "`\"7d\"`",
        "MQTT 5: how long the broker keeps the session (and its queue) while the agent is away.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadDuration(n, r, p, kSec, 365 * kDay)) o.client.session_expiry_s = static_cast<uint32_t>(*v / kSec);
        }));
    // The password is read by MqttSourceType() into SourceConfig::mqtt_password (and removed from
    // the table first), so this accessor only serves the documentation.
    AddClientFields(sec, client, [](O&) -> SecretRef& { thread_local SecretRef unused; return unused; },
                    "`\"edgepipe-{device}-{name}\"`");
    sec.fields.insert(sec.fields.begin(),
                      {HandledField<O>("type", "string", "", "`\"mqtt\"`.", true),
                       HandledField<O>("name", "string", "(the type, plus an index if repeated)",
                                       "Source name, unique; recorded with every reading it produces.")});
    sec.check = [client](O& o, const toml::table& t, Reporter& r, const std::string& p) {
      CheckClient(o, client, t, r, p);
      Result<fb::TopicTemplate> tmpl = fb::TopicTemplate::Parse(o.topic_template, o.sensor_format);
      if (!tmpl.ok()) {
        const toml::node* n = t.get(t.contains("sensor_format") ? "sensor_format" : "topic_template");
        r.Add(n ? n->source() : t.source(), p + ".topic_template: " + tmpl.status().message());
      } else if (o.topics.empty()) {
        if (o.topic_template.empty())
          r.Add(t.source(), p + ": give 'topics' (subscription filters) or a 'topic_template' to subscribe to");
        else
          o.topics.push_back(tmpl->Filter());
      }
    };
    return sec;
  }();
  return s;
}

std::string Substitute(std::string s, const std::string& device, const std::string& name) {
  for (auto [key, val] : {std::pair<std::string, std::string>{"{device}", device}, {"{name}", name}}) {
    for (size_t pos; (pos = s.find(key)) != std::string::npos;) s.replace(pos, key.size(), val);
  }
  return s;
}

}  // namespace

SourceType MqttSourceType() {
  return {"mqtt", MqttSection().doc,
          [](SourceConfig& src, const toml::table& t, Reporter& r, const std::string& p) {
            src.mqtt.client.client_id = "edgepipe-{device}-{name}";
            src.mqtt.status_topic = "edgepipe/{device}/status";
            // The password is a SecretRef kept in SourceConfig: read it here, the rest by the section.
            toml::table rest = t;
            if (const toml::node* pw = t.get("password")) {
              if (auto v = ReadSecret(*pw, r, p + ".password")) src.mqtt_password = *v;
              rest.erase("password");
            }
            MqttSection().Parse(src.mqtt, rest, r, p);
            src.mqtt.name = src.name;
          },
          [] { return MqttSection().Markdown(); }};
}

const Section<RepublishConfig>& RepublishSection() {
  static const Section<RepublishConfig> s = [] {
    using R = RepublishConfig;
    Section<R> sec;
    sec.title = "[republish]";
    sec.doc = "Optional local republish: every validated reading is published as a one-record SenML pack to "
              "`<topic_prefix><sensor>` on a local broker, for on-device consumers (e.g. an inference process). "
              "Best effort: it never slows the pipeline; readings are dropped (and counted) while the broker is unreachable.";
    auto client = [](R& o) -> fb::MqttClientOptions& { return o.options.client; };
    sec.fields.push_back(BoolField<R>("enabled", &R::enabled, "Turns the republisher on."));
    sec.fields.push_back(CustomField<R>("topic_prefix", "string", "`\"edgepipe/{device}/clean/\"`",
        "Topic prefix; the sensor id follows (`+` and `#` in ids become `_`). `{device}` is replaced.",
        [](R& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadString(n, r, p)) o.options.topic_prefix = *v;
        }));
    sec.fields.push_back(CustomField<R>("qos", "integer (0 to 2)", "`0`", "QoS of the republished messages.",
        [](R& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadInt(n, r, p, 0, 2)) o.options.qos = static_cast<int>(*v);
        }));
    sec.fields.push_back(CustomField<R>("max_queue", "integer (1 to 10000000)", "`100000`",
        "Readings waiting to be published; beyond it new ones are dropped and counted.",
        [](R& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadInt(n, r, p, 1, 10'000'000)) o.options.max_queue = static_cast<size_t>(*v);
        }));
    sec.fields.push_back(CustomField<R>("linger", "duration (0s to 1s)", "`\"5ms\"`",
        "Readings arriving within this time of each other leave together, one SenML pack per sensor: fewer "
        "messages under load, at most this much added latency. `0s`: publish at once.",
        [](R& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadDuration(n, r, p, 0, kSec)) o.options.linger_us = *v;
        }));
    AddClientFields(sec, client, [](R& o) -> SecretRef& { return o.password; }, "`\"edgepipe-{device}-republish\"`");
    sec.check = [client](R& o, const toml::table& t, Reporter& r, const std::string& p) { CheckClient(o, client, t, r, p); };
    return sec;
  }();
  return s;
}

void FinishInputs(Config& c) {
  for (SourceConfig& s : c.sources) {
    if (s.type != "mqtt") continue;
    s.mqtt.client.client_id = Substitute(s.mqtt.client.client_id, c.device.id, s.name);
    s.mqtt.status_topic = Substitute(s.mqtt.status_topic, c.device.id, s.name);
  }
  fb::RepublishOptions& o = c.republish.options;
  if (o.client.client_id.empty()) o.client.client_id = "edgepipe-{device}-republish";
  if (o.topic_prefix.empty()) o.topic_prefix = "edgepipe/{device}/clean/";
  o.client.client_id = Substitute(o.client.client_id, c.device.id, "republish");
  o.topic_prefix = Substitute(o.topic_prefix, c.device.id, "republish");
}

}  // namespace edgepipe::agent::cfg
