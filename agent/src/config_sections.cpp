// The configuration table: every section and key the agent accepts. docs/configuration.md is
// generated from these declarations (`edgepipe config-reference`); a test keeps them in sync.
#include <regex>

#include "config_schema.h"
#include "edgepipe/uploader/object.h"

namespace edgepipe::agent::cfg {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;

std::string CheckDeviceId(const std::string& id) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  if (!std::regex_match(id, re))
    return "device id " + Quote(id) +
           " must be 1-64 characters of letters, digits, '.', '_' or '-' (it becomes part of object keys)";
  return "";
}

}  // namespace

const Section<DeviceConfig>& DeviceSection() {
  static const Section<DeviceConfig> s = [] {
    Section<DeviceConfig> sec;
    sec.title = "[device]";
    sec.doc = "Identifies the gateway. The id appears in every record and object key.";
    sec.fields.push_back(StringField<DeviceConfig>("id", &DeviceConfig::id,
        "Unique device id: 1-64 letters, digits, `.`, `_` or `-`.", true, CheckDeviceId));
    sec.fields.push_back(CustomField<DeviceConfig>("labels", "table of strings", "{}",
        "Static labels added to every record, e.g. `{ site = \"plant-a\", line = \"3\" }`.",
        [](DeviceConfig& d, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* t = n.as_table();
          if (!t) {
            r.Add(n.source(), p + ": expected a table of strings such as { site = \"plant-a\" }, got " + Describe(n));
            return;
          }
          static const std::regex key_re("[A-Za-z_][A-Za-z0-9_]{0,63}");
          d.labels.clear();
          for (auto&& [k, v] : *t) {
            std::string key(k.str());
            if (!std::regex_match(key, key_re)) {
              r.Add(k.source(), p + "." + key + ": label names are letters, digits and '_' (not starting with a digit)");
              continue;
            }
            if (auto val = ReadString(v, r, p + "." + key, true)) d.labels.emplace_back(key, *val);
          }
          std::sort(d.labels.begin(), d.labels.end());
        }));
    return sec;
  }();
  return s;
}

const Section<AgentConfig>& AgentSection() {
  static const Section<AgentConfig> s = [] {
    Section<AgentConfig> sec;
    sec.title = "[agent]";
    sec.doc = "Process-wide settings.";
    sec.fields.push_back(EnumField<AgentConfig, LogLevel>("log_level", &AgentConfig::log_level,
        {{"error", LogLevel::kError}, {"warning", LogLevel::kWarning}, {"notice", LogLevel::kNotice},
         {"info", LogLevel::kInfo}, {"debug", LogLevel::kDebug}},
        "Least severe level written to the log (stderr / journald). `--log-level` overrides it."));
    sec.fields.push_back(DurationField<AgentConfig>("status_interval", &AgentConfig::status_interval_us, kSec, kDay,
        "How often a one-line status summary (buffer depth, uploads, rejects) is logged."));
    sec.fields.push_back(DurationField<AgentConfig>("shutdown_timeout", &AgentConfig::shutdown_timeout_us, 0, 10 * kMin,
        "On SIGTERM, how long to keep uploading what is buffered before exiting (data not sent stays in the buffer)."));
    return sec;
  }();
  return s;
}

const Section<buffer::Options>& BufferSection() {
  static const Section<buffer::Options> s = [] {
    using O = buffer::Options;
    Section<O> sec;
    sec.title = "[buffer]";
    sec.doc = "The durable SQLite buffer (see docs/durability.md). Relative paths are relative to the config file.";
    Field<O> path = StringField<O>("path", &O::path, "Database file. Its directory must exist and be writable.");
    path.doc.default_text = "\"/var/lib/edgepipe/buffer.db\"";
    sec.fields.push_back(path);
    sec.fields.push_back(EnumField<O, buffer::SyncMode>("sync", &O::sync,
        {{"full", buffer::SyncMode::kFull}, {"normal", buffer::SyncMode::kNormal}},
        "`full`: an acknowledged reading survives a power cut. `normal`: survives a process crash; a power cut "
        "may roll back the last commits."));
    sec.fields.push_back(DurationField<O>("commit_interval", &O::commit_interval_us, kMs, kMin,
        "Group commit: readings are committed at least this often..."));
    sec.fields.push_back(IntField<O, uint64_t>("commit_readings", &O::commit_max_readings, 1, 1'000'000,
        "...or as soon as this many are waiting."));
    sec.fields.push_back(SizeField<O>("max_size", &O::max_size_bytes, 1ull << 20, 1ull << 40,
        "Disk budget for the database and its WAL together."));
    sec.fields.push_back(EnumField<O, buffer::OnFull>("on_full", &O::on_full,
        {{"drop_oldest", buffer::OnFull::kDropOldest}, {"reject_new", buffer::OnFull::kRejectNew}},
        "When `max_size` is reached: evict the oldest unsent data (leaving gap records), or push back on sources."));
    sec.fields.push_back(IntField<O, uint64_t>("quarantine_max_rows", &O::quarantine_max_rows, 100, 100'000'000,
        "Rejected readings kept for inspection; the oldest are evicted (and counted) beyond this."));
    sec.fields.push_back(SizeField<O>("quarantine_raw_limit", &O::quarantine_raw_limit, 16, 1ull << 20,
        "Raw payload bytes kept per quarantined item."));
    sec.fields.push_back(IntField<O, uint64_t>("max_memory_readings", &O::max_memory_readings, 1000, 100'000'000,
        "Readings held in memory while commits fail (e.g. disk full) before sources are pushed back."));
    return sec;
  }();
  return s;
}

const Section<BatchPolicy>& BatchSection() {
  static const Section<BatchPolicy> s = [] {
    Section<BatchPolicy> sec;
    sec.title = "[batch]";
    sec.doc = "When a batch (one uploaded object) closes. A batch never spans two UTC hours of reading time.";
    sec.fields.push_back(IntField<BatchPolicy, uint64_t>("max_readings", &BatchPolicy::max_readings, 1, 10'000'000,
        "Close a batch at this many readings."));
    sec.fields.push_back(SizeField<BatchPolicy>("max_bytes", &BatchPolicy::max_bytes, 1024, 1ull << 30,
        "Close a batch at this estimated uncompressed size."));
    sec.fields.push_back(DurationField<BatchPolicy>("max_age", &BatchPolicy::max_age_us, 0, 7 * kDay,
        "Close a batch when its oldest reading has waited this long in the buffer."));
    return sec;
  }();
  return s;
}

const Section<UploadConfig>& UploadSection() {
  static const Section<UploadConfig> s = [] {
    using U = UploadConfig;
    Section<U> sec;
    sec.title = "[upload]";
    sec.doc = "Where batches go and how they are encoded. Objects are keyed by the readings' own UTC time.";
    sec.fields.push_back(StringField<U>("url", &U::url,
        "`file:///absolute/dir` (local outbox) or `s3://bucket/prefix`.", true, [](const std::string& url) {
          if (url.rfind("file://", 0) == 0) {
            if (url.size() <= 7 || url[7] != '/') return std::string("a file URL needs an absolute path: file:///var/lib/edgepipe/outbox");
            return std::string();
          }
          if (url.rfind("s3://", 0) == 0) {
            std::string rest = url.substr(5);
            std::string bucket = rest.substr(0, rest.find('/'));
            static const std::regex re("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
            if (!std::regex_match(bucket, re))
              return "bucket name " + Quote(bucket) + " is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')";
            return std::string();
          }
          return std::string("unsupported scheme; use file:///dir or s3://bucket/prefix");
        }));
    sec.fields.push_back(EnumField<U, uploader::Format>("format", &U::format,
        {{"ndjson", uploader::Format::kNdjson}, {"csv", uploader::Format::kCsv}},
        "Object format (zstd-compressed). Quarantine objects are always NDJSON."));
    sec.fields.push_back(IntField<U, int>("zstd_level", &U::zstd_level, 1, 19, "Zstandard compression level."));
    Field<U> tmpl = StringField<U>("key_template", &U::key_template,
        "Object key. Placeholders: `{prefix} {device} {date} {year} {month} {day} {hour} {batch} {ext}`; "
        "must contain `{batch}`.", false, [](const std::string& t) { return uploader::ValidateKeyTemplate(t); });
    tmpl.doc.default_text = uploader::kDefaultKeyTemplate;
    tmpl.show = nullptr;
    sec.fields.push_back(tmpl);
    sec.fields.push_back(DurationField<U>("poll_interval", &U::poll_interval_us, 10 * kMs, kHour,
        "How often the uploader looks for a closed batch when idle."));
    sec.fields.push_back(DurationField<U>("retry_base", &U::retry_base_us, 10 * kMs, kHour,
        "First retry delay after a transient failure (exponential backoff with full jitter)."));
    sec.fields.push_back(DurationField<U>("retry_cap", &U::retry_cap_us, kSec, kDay, "Longest retry delay."));
    sec.fields.push_back(DurationField<U>("config_retry", &U::config_retry_us, kSec, kDay,
        "Retry interval while the destination rejects us for a configuration reason (credentials, bucket, permissions)."));
    sec.check = [](U& u, const toml::table& t, Reporter& r, const std::string& p) {
      if (u.retry_cap_us < u.retry_base_us && t.contains("retry_cap"))
        r.Add(t["retry_cap"].node()->source(), p + ".retry_cap: must not be shorter than retry_base");
    };
    return sec;
  }();
  return s;
}

const Section<ValidationConfig>& ValidationSection() {
  static const Section<ValidationConfig> s = [] {
    Section<ValidationConfig> sec;
    sec.title = "[validation]";
    sec.doc = "Data-quality rules applied to every reading before it is buffered. A rejected reading goes to "
              "quarantine with the rule and the reason; a flagged one is kept with a quality flag.";
    sec.fields.push_back(EnumField<ValidationConfig, RuleAction>("non_finite", &ValidationConfig::non_finite,
        {{"reject", RuleAction::kReject}, {"flag", RuleAction::kFlag}},
        "NaN and infinite values: `reject` to quarantine, or `flag` (kept, written as null)."));
    sec.fields.push_back(EnumField<ValidationConfig, RuleAction>("duplicate", &ValidationConfig::duplicate,
        {{"reject", RuleAction::kReject}, {"flag", RuleAction::kFlag}, {"off", RuleAction::kOff}},
        "A reading whose sensor and timestamp were already seen with a different value (a conflicting "
        "duplicate, e.g. a repeated hour in a log): `reject` to quarantine, `flag` (kept), or `off`. "
        "Checked against each sensor's last 64 timestamps, seeded at start from the newest buffered readings."));
    sec.fields.push_back(BoolField<ValidationConfig>("drop_exact_duplicates", &ValidationConfig::drop_exact_duplicates,
        "Drop (and count) a reading identical to one already stored — same sensor, timestamp and value — "
        "as sent again by a peer that did not get our acknowledgement (MQTT redelivery, serial retransmit)."));
    return sec;
  }();
  return s;
}

}  // namespace edgepipe::agent::cfg
