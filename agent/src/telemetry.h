// The agent's telemetry thread: every agent.stats_interval it takes a snapshot of the agent,
// sends it to systemd as STATUS=, and writes it to the status file; it also serves the
// Prometheus endpoint. It runs on its own thread (own io_context) so that a slow database query
// never delays the main loop, which owns the watchdog.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "edgepipe/agent/metrics.h"
#include "edgepipe/agent/service.h"
#include "edgepipe/core/status.h"

namespace edgepipe::agent {

struct TelemetryOptions {
  int64_t interval_us = 5'000'000;  // snapshot, STATUS= and status file refresh
  std::string status_file;          // "" = none
  std::string metrics_listen;       // "" = no endpoint; else a loopback host:port
};

// One line for systemd's STATUS= (shown by `systemctl status edgepipe`).
std::string ServiceStatusText(const AgentSnapshot& s);

// Writes `content` to `path` atomically (temporary file in the same directory, then rename).
Status WriteFileAtomically(const std::string& path, const std::string& content);

class Telemetry {
 public:
  using SnapshotFn = std::function<AgentSnapshot()>;
  Telemetry(SnapshotFn take, ServiceNotifier& notifier, TelemetryOptions options);
  ~Telemetry();  // Stop() if still running

  // Binds the endpoint (when configured) and starts the thread. A failed bind is returned so the
  // caller can log it; the thread still runs (snapshots, STATUS=, status file) and retries the
  // bind at every refresh.
  Status Start();
  // Applies new options (from a reload) on the telemetry thread, without waiting for it (it may
  // be waiting for the database). A new endpoint that cannot be bound is logged and the old one
  // is kept.
  void Reconfigure(const TelemetryOptions& options);
  // Takes and publishes one last snapshot (running = false), closes the endpoint, joins.
  void Stop();

  // The port the endpoint is bound to (0 = none); useful when listening on port 0 in tests.
  int bound_port() const;
  AgentSnapshot Latest() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgepipe::agent
