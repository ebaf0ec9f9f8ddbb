// Builds sources and sinks from their configuration. One branch per type.
#include "edgepipe/agent/agent.h"
#include "edgepipe/firmware_bridge/serial_source.h"
#include "edgepipe/firmware_bridge/simulator.h"
#include "edgepipe/firmware_bridge/mqtt.h"
#include "edgepipe/firmware_bridge/sysfs.h"
#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/http.h"
#include "edgepipe/uploader/s3_sink.h"

#ifndef EDGEPIPE_AGENT_VERSION
#define EDGEPIPE_AGENT_VERSION "0"
#endif

namespace edgepipe::agent {

Result<std::unique_ptr<uploader::Sink>> MakeSink(const UploadConfig& config, Clock& clock, const std::string& probe_tag) {
  if (config.scheme == "file") return std::unique_ptr<uploader::Sink>(new uploader::FileSink(config.path));
  if (config.scheme != "s3") return InvalidArgumentError("destination " + config.url + ": unsupported scheme");
  uploader::CurlTransportOptions t;
  t.connect_timeout_us = config.connect_timeout_us;
  t.request_timeout_us = config.request_timeout_us;
  t.stall_timeout_us = config.stall_timeout_us;
  t.tls_verify = config.tls_verify;
  t.ca_file = config.ca_file;
  t.max_send_bytes_per_s = config.bandwidth_limit;
  t.user_agent = "edgepipe/" EDGEPIPE_AGENT_VERSION;
  uploader::CredentialChainOptions c;
  c.credentials_file = config.credentials_file;
  c.credential_name = config.credential_name;
  c.profile = config.profile;
  uploader::S3Options o;
  o.bucket = config.path;
  o.endpoint = config.endpoint;
  o.region = config.region;
  o.addressing = config.addressing;
  o.checksum = config.checksum;
  o.probe_prefix = config.prefix;
  o.probe_tag = probe_tag.empty() ? "probe" : probe_tag;
  return std::unique_ptr<uploader::Sink>(new uploader::S3Sink(
      o, uploader::MakeCurlTransport(t),
      std::make_shared<uploader::CredentialChain>(c, uploader::CredentialEnvironment::Process(), clock), clock));
}

uploader::UploaderOptions MakeUploaderOptions(const Config& config) {
  const UploadConfig& u = config.upload;
  uploader::UploaderOptions o;
  o.policy = config.batch;
  o.poll_interval_us = u.poll_interval_us;
  o.retry_base_us = u.retry_base_us;
  o.retry_cap_us = u.retry_cap_us;
  o.config_retry_us = u.config_retry_us;
  o.concurrency = u.concurrency;
  o.bandwidth_bytes_per_s = u.bandwidth_limit;
  // The config check validated every window already.
  if (Result<uploader::UploadWindows> w = uploader::UploadWindows::Parse(u.windows, u.windows_local_time); w.ok())
    o.windows = *w;
  o.poison_retry_budget = u.retry_budget;
  o.set_aside_dir = u.set_aside_dir;
  if (o.set_aside_dir.empty()) {
    const std::string& db = config.buffer.path;
    const size_t slash = db.find_last_of('/');
    o.set_aside_dir = (slash == std::string::npos ? std::string(".") : db.substr(0, std::max<size_t>(slash, 1))) + "/set-aside";
  }
  o.probe = u.probe;
  return o;
}

Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config, ReadingSink& sink, Clock& clock) {
  if (config.type == "simulator") return std::unique_ptr<Source>(new fb::Simulator(config.simulator, sink, clock));
  if (config.type == "mqtt") {  // issue 6
    fb::MqttSourceOptions o = config.mqtt;
    if (!config.mqtt_password.empty()) {
      Result<std::string> pw = LoadSecret(config.mqtt_password);
      if (!pw.ok()) return Status(pw.status().code(), "password: " + pw.status().message());
      o.client.password = *pw;
    }
    return std::unique_ptr<Source>(new fb::MqttSource(std::move(o), sink, clock));
  }
  if (config.type == "sysfs") return std::unique_ptr<Source>(new fb::SysfsSource(config.sysfs, sink, clock));  // issue 6
  if (config.type == "serial") return std::unique_ptr<Source>(new fb::SerialSource(config.serial, sink, clock));
  return InvalidArgumentError("source " + config.name + ": unsupported type " + config.type);
}

}  // namespace edgepipe::agent
