// The field configuration (TOML). Every key is declared once in a table (agent/src/config_*.cpp)
// with its type, default, bounds and documentation; the parser checks a file against the table
// and reports every problem with file:line:column, and docs/configuration.md is generated from
// the same table (`edgepipe config-reference`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgepipe/agent/validation_config.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/status.h"
#include "edgepipe/firmware_bridge/serial_source.h"
#include "edgepipe/firmware_bridge/simulator.h"
#include "edgepipe/firmware_bridge/mqtt.h"   // issue 6
#include "edgepipe/firmware_bridge/sysfs.h"  // issue 6
#include "edgepipe/uploader/encoder.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/s3_sink.h"

namespace edgepipe::agent {

// Where a configuration problem is.
struct ConfigProblem {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;
  std::string ToString() const;  // "file:line:col: message"
};

// A secret given inline, by file path, or by the name of a systemd credential
// ($CREDENTIALS_DIRECTORY/<name>, see LoadCredential= in packaging/edgepipe.service).
struct SecretRef {
  std::string value;       // inline (discouraged; allowed for tests and demos)
  std::string file;        // path of a file holding the secret
  std::string credential;  // systemd credential name
  bool empty() const { return value.empty() && file.empty() && credential.empty(); }
};
// Reads the secret (trailing newline stripped). kNotFound / kFailedPrecondition with a message
// that names the file or credential but never the secret.
Result<std::string> LoadSecret(const SecretRef& ref);

struct DeviceConfig {
  std::string id;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key
};

struct AgentConfig {
  LogLevel log_level = LogLevel::kInfo;
  int64_t status_interval_us = 60'000'000;   // periodic status line in the log
  int64_t shutdown_timeout_us = 20'000'000;  // time allowed to drain on SIGTERM
  // Service integration (docs/operations.md, "systemd" and "Metrics").
  int64_t stats_interval_us = 5'000'000;        // STATUS=, status file refresh
  int64_t writer_stall_timeout_us = 30'000'000; // watchdog pings stop when one commit takes longer
  std::string metrics_listen;                   // "" = no endpoint; loopback host:port
  std::string status_file;                      // "" = edgepipe-status.prom beside the buffer
};

struct UploadConfig {
  std::string url;                      // "file:///dir" or "s3://bucket/prefix"
  std::string scheme;                   // "file" or "s3" (derived)
  std::string path;                     // directory (file) or bucket (s3) (derived)
  std::string prefix;                   // key prefix (derived)
  uploader::Format format = uploader::Format::kNdjson;
  int zstd_level = 1;
  std::string key_template = uploader::kDefaultKeyTemplate;
  int64_t poll_interval_us = 1'000'000;
  int64_t retry_base_us = 1'000'000;
  int64_t retry_cap_us = 300'000'000;
  int64_t config_retry_us = 60'000'000;
  // Delivery (every destination).
  int concurrency = 2;                  // uploads in flight
  uint64_t bandwidth_limit = 0;         // bytes/s over all uploads, 0 = unlimited
  std::vector<std::string> windows;     // "HH:MM-HH:MM", empty = always
  bool windows_local_time = false;      // windows in local time (else UTC)
  int retry_budget = 5;                 // refusals of one object before it is set aside
  std::string set_aside_dir;            // "" = <buffer dir>/set-aside
  bool probe = true;                    // start-up probe of the destination
  // s3:// only (docs/s3.md).
  std::string endpoint;                 // "" = https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  uploader::Addressing addressing = uploader::Addressing::kAuto;
  uploader::ChecksumMode checksum = uploader::ChecksumMode::kContentMd5;
  std::string credentials_file;
  std::string credential_name = "s3";
  std::string profile;
  bool tls_verify = true;
  std::string ca_file;
  int64_t connect_timeout_us = 10'000'000;
  int64_t request_timeout_us = 300'000'000;
  int64_t stall_timeout_us = 30'000'000;
};

struct SourceConfig {
  std::string type;  // "simulator", ...
  std::string name;
  fb::SimulatorOptions simulator;
  fb::MqttSourceOptions mqtt;   // type "mqtt" (password loaded from mqtt_password at start)
  SecretRef mqtt_password;
  fb::SysfsOptions sysfs;       // type "sysfs"
  fb::SerialOptions serial;     // type "serial" (issue 5)
};

// [republish]: validated readings published as SenML to a local broker (off by default).
struct RepublishConfig {
  bool enabled = false;
  fb::RepublishOptions options;  // client.password loaded from `password` at start
  SecretRef password;
};

struct Config {
  std::string file;  // where it was read from ("<embedded>" for the default)
  DeviceConfig device;
  AgentConfig agent;
  buffer::Options buffer;
  BatchPolicy batch;
  UploadConfig upload;
  std::vector<SourceConfig> sources;
  ValidationConfig validation;
  RepublishConfig republish;  // issue 6
};

// Parses and checks a configuration. On failure every problem found is returned (not only the
// first); a TOML syntax error stops parsing at that point.
// A configuration with problems has no `config`. Warnings do not stop it: they name settings
// that are accepted but probably not meant (the agent logs them at start and on reload,
// `edgepipe check-config` prints them).
struct ParseResult {
  std::optional<Config> config;
  std::vector<ConfigProblem> problems;
  std::vector<ConfigProblem> warnings;
};
ParseResult ParseConfigText(const std::string& text, const std::string& file_name);
ParseResult LoadConfigFile(const std::string& path);

// The embedded default: simulated sensors -> validation -> buffer -> file:// outbox, all
// under `state_dir`.
std::string DefaultConfigText(const std::string& state_dir);

// Markdown reference of every section and key, generated from the same table the parser uses.
std::string ConfigReferenceMarkdown();

// Human units, exposed for tests: "512MiB", "64kB", "1000" -> bytes; "250ms", "5m", "1h30m" -> us.
std::optional<uint64_t> ParseSize(std::string_view text);
std::optional<int64_t> ParseDuration(std::string_view text);
std::string FormatSize(uint64_t bytes);
std::string FormatDuration(int64_t us);

}  // namespace edgepipe::agent
