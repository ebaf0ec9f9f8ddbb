// Builds sources and sinks from their configuration. One branch per type.
#include "edgepipe/agent/agent.h"
#include "edgepipe/firmware_bridge/serial_source.h"
#include "edgepipe/firmware_bridge/simulator.h"
#include "edgepipe/firmware_bridge/mqtt.h"
#include "edgepipe/firmware_bridge/sysfs.h"

namespace edgepipe::agent {

Result<std::unique_ptr<uploader::Sink>> MakeSink(const UploadConfig& config) {
  if (config.scheme == "file") return std::unique_ptr<uploader::Sink>(new uploader::FileSink(config.path));
  return FailedPreconditionError("destination " + config.url + ": the s3:// sink is not available in this build");
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
