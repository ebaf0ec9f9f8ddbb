// Builds sources and sinks from their configuration. One branch per type.
#include "edgepipe/agent/agent.h"
#include "edgepipe/firmware_bridge/simulator.h"

namespace edgepipe::agent {

Result<std::unique_ptr<uploader::Sink>> MakeSink(const UploadConfig& config) {
  if (config.scheme == "file") return std::unique_ptr<uploader::Sink>(new uploader::FileSink(config.path));
  return FailedPreconditionError("destination " + config.url + ": the s3:// sink is not available in this build");
}

Result<std::unique_ptr<Source>> MakeSource(const SourceConfig& config, ReadingSink& sink, Clock& clock) {
  if (config.type == "simulator") return std::unique_ptr<Source>(new fb::Simulator(config.simulator, sink, clock));
  return InvalidArgumentError("source " + config.name + ": unsupported type " + config.type);
}

}  // namespace edgepipe::agent
