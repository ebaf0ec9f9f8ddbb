// Talking to the service manager (systemd, Type=notify): readiness, status text, watchdog
// pings, start-up/shutdown timeout extensions, reload and stop notifications (sd_notify(3)).
//
// What the agent sends, and when (docs/operations.md, "systemd"):
//   READY=1             once the buffer is open, the uploader and every source have started, and
//                       the signal handlers are installed (Agent::Run)
//   STATUS=...          buffer depth, oldest pending reading, last upload, sources connected;
//                       refreshed every agent.stats_interval
//   WATCHDOG=1          every half WatchdogSec, only while the main loop runs and the buffer
//                       writer is not stuck in one commit for longer than agent.writer_stall_timeout
//   EXTEND_TIMEOUT_USEC while the buffer database is opened (checked or recovered) at start, and
//                       when stopping, so a long open or drain is not mistaken for a hang
//   RELOADING=1 ... READY=1   around a SIGHUP configuration reload
//   STOPPING=1          first thing on SIGTERM/SIGINT
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace edgepipe::agent {

class ServiceNotifier {
 public:
  virtual ~ServiceNotifier() = default;
  // Sends one notification: newline-separated VAR=value assignments. Thread-safe. A no-op when
  // the process was not started by a service manager (no $NOTIFY_SOCKET).
  virtual void Notify(const std::string& message) = 0;
  // The interval within which the service manager expects WATCHDOG=1 from this process
  // ($WATCHDOG_USEC when $WATCHDOG_PID is unset or ours), 0 when no watchdog is configured.
  virtual int64_t WatchdogIntervalUs() = 0;
};

// The production notifier: libsystemd's sd_notify / sd_watchdog_enabled.
std::unique_ptr<ServiceNotifier> MakeSystemdNotifier();

// While alive, keeps the service manager from timing out a slow step (opening a large buffer
// database, recovering it): after `delay_us`, and then every `period_us`, sends
// "EXTEND_TIMEOUT_USEC=<3 * period>" with "STATUS=<what> (<elapsed> s)".
class TimeoutExtender {
 public:
  TimeoutExtender(ServiceNotifier& notifier, std::string what, int64_t delay_us = 1'000'000,
                  int64_t period_us = 5'000'000);
  ~TimeoutExtender();  // stops sending (joins its thread)
  TimeoutExtender(const TimeoutExtender&) = delete;
  TimeoutExtender& operator=(const TimeoutExtender&) = delete;
  int extensions_sent() const;

 private:
  ServiceNotifier& notifier_;
  std::string what_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  int sent_ = 0;
  std::thread thread_;
};

}  // namespace edgepipe::agent
