// The configuration table: every section and key the agent accepts. docs/configuration.md is
// generated from these declarations (`edgepipe config-reference`); a test keeps them in sync.
#include <regex>

#include "config_schema.h"
#include "edgepipe/agent/metrics.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/schedule.h"

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
        "On SIGTERM, how long to keep uploading what is buffered before exiting (data not sent stays in the buffer). "
        "Keep it below the unit's TimeoutStopSec= (30 s in packaging/edgepipe.service)."));
    sec.fields.push_back(DurationField<AgentConfig>("stats_interval", &AgentConfig::stats_interval_us, 100 * kMs, kHour,
        "How often the live counters are refreshed: systemd's STATUS= line, the status file and the metrics gauges."));
    sec.fields.push_back(DurationField<AgentConfig>("writer_stall_timeout", &AgentConfig::writer_stall_timeout_us, kSec,
        kHour, "When one database operation of the buffer writer (a commit, a merge, a reopen) takes longer than "
        "this, or the writer thread has exited, the agent stops pinging the systemd watchdog (which then restarts "
        "it after WatchdogSec=) and reports the writer as stalled."));
    sec.fields.push_back(StringField<AgentConfig>("metrics_listen", &AgentConfig::metrics_listen,
        "Serve Prometheus metrics at http://ADDRESS/metrics, e.g. `\"127.0.0.1:9464\"`. Loopback addresses only "
        "(127.0.0.0/8, `[::1]`, `localhost`); empty = no endpoint.", false, [](const std::string& v) {
          std::string host;
          int port = 0;
          return v.empty() ? std::string() : ParseLoopbackListen(v, &host, &port);
        }));
    Field<AgentConfig> status_file = StringField<AgentConfig>("status_file", &AgentConfig::status_file,
        "Where the live counters are written (Prometheus text, replaced atomically every `stats_interval`) for "
        "`edgepipe status` and node_exporter's textfile collector. Relative paths are relative to the config file.");
    status_file.doc.default_text = "(edgepipe-status.prom beside buffer.path)";
    sec.fields.push_back(status_file);
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
    Field<O> journal = BoolField<O>("ack_journal", &O::ack_journal,
        "A source that acknowledges only durable data (MQTT QoS 1, serial) is answered once its message is "
        "appended to a journal beside the database (`<path>.ack0`, `.ack1`: one write, plus an fdatasync at "
        "`sync = full`) instead of after a database commit of its own; the group commit keeps its pace and the "
        "journal is replayed at the next start (docs/durability.md). `false`: one commit per acknowledged message.");
    journal.doc.default_text = "true";
    sec.fields.push_back(journal);
    sec.fields.push_back(DurationField<O>("commit_interval", &O::commit_interval_us, kMs, kMin,
        "Group commit: readings are committed at least this often..."));
    sec.fields.push_back(IntField<O, uint64_t>("commit_readings", &O::commit_max_readings, 1, 1'000'000,
        "...or as soon as this many are waiting (large groups are what makes ingest cheap at high rates; a source "
        "that waits for durability, e.g. MQTT QoS 1 or serial, is answered by `ack_journal`, or with it off gets "
        "its commit at once)."));
    sec.fields.push_back(SizeField<O>("max_size", &O::max_size_bytes, 1ull << 20, 1ull << 40,
        "Hard disk budget for the database and its WAL together: the file never grows past it (an eighth, "
        "256 KiB to 32 MiB, is kept for the WAL). What happens when it is reached is `on_full`."));
    sec.fields.push_back(EnumField<O, buffer::OnFull>("on_full", &O::on_full,
        {{"drop_oldest", buffer::OnFull::kDropOldest}, {"reject_new", buffer::OnFull::kRejectNew}},
        "When `max_size` is reached: evict the oldest unsent data (leaving gap records), or push back on sources."));
    sec.fields.push_back(IntField<O, uint64_t>("quarantine_max_rows", &O::quarantine_max_rows, 100, 100'000'000,
        "Rejected readings kept for inspection; the oldest are evicted (and counted) beyond this."));
    sec.fields.push_back(SizeField<O>("quarantine_raw_limit", &O::quarantine_raw_limit, 16, 1ull << 20,
        "Raw payload bytes kept per quarantined item."));
    sec.fields.push_back(IntField<O, uint64_t>("max_memory_readings", &O::max_memory_readings, 1000, 100'000'000,
        "Readings held in memory while commits fail (disk full, I/O error). Beyond it, `drop_oldest` drops the "
        "oldest of them (gap records, reason `memory_full`) — never those of an MQTT QoS 1 message or a serial "
        "frame, whose sources keep them until they are durable (new readings are refused instead once only those "
        "are left) — and `reject_new` refuses new ones."));
    sec.fields.push_back(IntField<O, uint64_t>("merge_readings", &O::merge_target_readings, 100, 1'000'000,
        "Small chunks (one per commit) are merged in the background into chunks of up to this many readings: "
        "bigger chunks compress better (docs/buffer-format.md). Only chunks committed at least `batch.max_age` ago "
        "are merged: younger ones are normally claimed for upload first."));
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
        "Close a batch at this many readings. A batch at least half full closes before a stored chunk that would "
        "take it over this limit (or `max_bytes`), rather than split the chunk (a decode and two encodes). Keep it "
        "at least twice `buffer.commit_readings`: a backlog drained at full rate commits groups of just over that "
        "many, and a smaller batch splits one in every batch (~30 % more CPU at 10,000 against 20,000); "
        "`edgepipe check-config` and the agent's log warn when it is smaller."));
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
    sec.fields.push_back(IntField<U, int>("zstd_level", &U::zstd_level, 1, 19, "Zstandard compression level. 1 (the default) is both smaller and cheaper than 3 on the shared real data sets; 9 saves a further ~11 % for ~9x the CPU (metered links); 19 is for offline re-compression only (docs/benchmarks.md, Uploader)."));
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
    // Delivery settings (every destination).
    sec.fields.push_back(IntField<U, int>("concurrency", &U::concurrency, 1, 32,
        "Uploads in flight at once. A backlog drains oldest first at up to this many objects in parallel."));
    sec.fields.push_back(SizeField<U>("bandwidth_limit", &U::bandwidth_limit, 0, 10ull << 30,
        "Average upload rate cap in bytes per second over all uploads (e.g. `\"64kB\"`), with a 1 s burst; `0` = unlimited."));
    sec.fields.push_back(CustomField<U>("windows", "array of strings", "[] (always)",
        "Upload windows for metered links, e.g. `[\"01:00-05:00\", \"22:00-23:30\"]` (start included, end excluded; "
        "a window may cross midnight). Outside them nothing is sent and data stays in the buffer.",
        [](U& u, const toml::node& n, Reporter& r, const std::string& p) {
          auto v = ReadStringArray(n, r, p);
          if (!v) return;
          const auto* a = n.as_array();
          bool ok = true;
          for (size_t i = 0; i < v->size(); ++i) {
            std::string err = uploader::UploadWindows::Validate((*v)[i]);
            if (!err.empty()) {
              r.Add(a->get(i)->source(), p + "[" + std::to_string(i) + "]: " + err);
              ok = false;
            }
          }
          if (ok) u.windows = *v;
        }));
    sec.fields.push_back(EnumField<U, bool>("windows_timezone", &U::windows_local_time, {{"utc", false}, {"local", true}},
        "Whether `windows` are UTC or the system's local time (TZ, /etc/localtime; daylight saving applies)."));
    sec.fields.push_back(IntField<U, int>("retry_budget", &U::retry_budget, 1, 1000,
        "How often the destination may refuse one object for a reason of its own (e.g. 400 EntityTooLarge) before "
        "that batch is set aside locally so it cannot block the queue. Network errors, 5xx and credential/bucket "
        "problems never count."));
    Field<U> set_aside = StringField<U>("set_aside_dir", &U::set_aside_dir,
        "Where set-aside objects are kept (with a `.reason.json` beside each); relative to the config file.");
    set_aside.doc.default_text = "(buffer directory)/set-aside";
    sec.fields.push_back(set_aside);
    sec.fields.push_back(BoolField<U>("probe", &U::probe,
        "At start-up, PUT, HEAD and DELETE a small probe object and log what works and the clock skew to the server."));
    // S3 settings.
    sec.fields.push_back(StringField<U>("endpoint", &U::endpoint,
        "s3:// only. `https://host[:port]` or `http://host[:port]` of an S3-compatible server (MinIO, Ceph RGW, "
        "Garage, SeaweedFS); empty = AWS (`https://s3.<region>.amazonaws.com`).",
        false, [](const std::string& e) { return uploader::ValidateEndpoint(e); }));
    sec.fields.push_back(StringField<U>("region", &U::region,
        "s3:// only. Signing region (SigV4 credential scope). Most non-AWS servers accept `us-east-1`.", false,
        [](const std::string& reg) {
          static const std::regex re("[a-z0-9][a-z0-9-]{0,62}");
          return std::regex_match(reg, re) ? std::string() : "region " + Quote(reg) + " must be lower-case letters, digits and '-' (e.g. eu-west-1)";
        }));
    sec.fields.push_back(EnumField<U, uploader::Addressing>("addressing", &U::addressing,
        {{"auto", uploader::Addressing::kAuto}, {"path", uploader::Addressing::kPath}, {"virtual", uploader::Addressing::kVirtual}},
        "s3:// only. `path`: `endpoint/bucket/key`; `virtual`: `bucket.endpoint/key`; `auto`: virtual-hosted for "
        "`*.amazonaws.com` when the bucket name has no `.`, path-style otherwise."));
    sec.fields.push_back(EnumField<U, uploader::ChecksumMode>("checksum", &U::checksum,
        {{"content-md5", uploader::ChecksumMode::kContentMd5}, {"sha256", uploader::ChecksumMode::kSha256},
         {"none", uploader::ChecksumMode::kNone}},
        "s3:// only. Body checksum besides the always-signed payload SHA-256: `content-md5` (checked by every S3 "
        "server), `sha256` (`x-amz-checksum-sha256`, AWS flexible checksums) or `none`. Uploads are never aws-chunked."));
    sec.fields.push_back(StringField<U>("credentials_file", &U::credentials_file,
        "s3:// only. AWS-style credentials file (INI: `aws_access_key_id`, `aws_secret_access_key`, "
        "`aws_session_token`). When set it must exist; otherwise the chain continues with `$CREDENTIALS_DIRECTORY`, "
        "the AWS environment variables and `~/.aws/credentials` (docs/s3.md)."));
    sec.fields.push_back(StringField<U>("credential_name", &U::credential_name,
        "s3:// only. Name of the systemd credential (`LoadCredential=NAME:/path`) read from `$CREDENTIALS_DIRECTORY`, "
        "same format as `credentials_file`."));
    sec.fields.push_back(StringField<U>("profile", &U::profile,
        "s3:// only. Profile in the credentials files; empty = `$AWS_PROFILE`, else `default`."));
    sec.fields.push_back(BoolField<U>("tls_verify", &U::tls_verify,
        "s3:// only. Verify the server's TLS certificate and host name. `false` is logged loudly at start-up: "
        "anyone on the path could read and change uploads."));
    sec.fields.push_back(StringField<U>("ca_file", &U::ca_file,
        "s3:// only. PEM file of the CA(s) to trust instead of the system store (private CAs); relative to the config file."));
    sec.fields.push_back(DurationField<U>("connect_timeout", &U::connect_timeout_us, 100 * kMs, 10 * kMin,
        "s3:// only. TCP + TLS connection set-up limit."));
    sec.fields.push_back(DurationField<U>("request_timeout", &U::request_timeout_us, kSec, kDay,
        "s3:// only. Limit for one whole request (upload of one object)."));
    sec.fields.push_back(DurationField<U>("stall_timeout", &U::stall_timeout_us, kSec, kHour,
        "s3:// only. Abort a request that moved less than 1 byte/s for this long (a dead link); it is retried."));
    sec.check = [](U& u, const toml::table& t, Reporter& r, const std::string& p) {
      if (u.retry_cap_us < u.retry_base_us && t.contains("retry_cap"))
        r.Add(t["retry_cap"].node()->source(), p + ".retry_cap: must not be shorter than retry_base");
      // Keys that only mean something for s3:// destinations.
      if (u.url.rfind("file://", 0) == 0) {
        for (const char* k : {"endpoint", "region", "addressing", "checksum", "credentials_file", "credential_name",
                              "profile", "tls_verify", "ca_file", "connect_timeout", "request_timeout", "stall_timeout"})
          if (t.contains(k))
            r.Add(t[k].node()->source(), p + "." + k + ": only applies to s3:// destinations, but upload.url is " + u.url);
      }
      // Relative paths are relative to the directory of the configuration file.
      const std::string& file = r.file();
      const size_t slash = file.find_last_of('/');
      const std::string dir = slash == std::string::npos ? "." : file.substr(0, std::max<size_t>(slash, 1));
      for (std::string* path : {&u.credentials_file, &u.ca_file, &u.set_aside_dir})
        if (!path->empty() && path->front() != '/' && file != "<embedded>") *path = dir + "/" + *path;
    };
    return sec;
  }();
  return s;
}

}  // namespace edgepipe::agent::cfg
