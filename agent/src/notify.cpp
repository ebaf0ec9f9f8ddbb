// sd_notify integration (libsystemd) and the start-up timeout extender.
#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstring>

#include "edgepipe/agent/service.h"
#include "edgepipe/core/log.h"

namespace edgepipe::agent {
namespace {

constexpr const char* kLog = "systemd";

class SystemdNotifier final : public ServiceNotifier {
 public:
  void Notify(const std::string& message) override {
    // unset_environment = 0: child processes never see NOTIFY_SOCKET anyway (we start none), and
    // keeping it lets later notifications (STATUS, WATCHDOG, STOPPING) reach systemd.
    int r = sd_notify(0, message.c_str());
    if (r < 0) {
      uint64_t suppressed = 0;
      std::lock_guard<std::mutex> lock(mu_);
      if (error_log_.ShouldLog(MonotonicUs(), &suppressed))
        EP_LOG_WARN(kLog, "sd_notify failed: %s (%llu more failures not logged)", strerror(-r),
                    static_cast<unsigned long long>(suppressed));
    }
  }

  int64_t WatchdogIntervalUs() override {
    uint64_t usec = 0;
    // Returns > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID is unset or equals getpid().
    if (sd_watchdog_enabled(0, &usec) > 0) return static_cast<int64_t>(usec);
    return 0;
  }

 private:
  static int64_t MonotonicUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  std::mutex mu_;
  RateLimitedLog error_log_{600'000'000};
};

}  // namespace

std::unique_ptr<ServiceNotifier> MakeSystemdNotifier() { return std::make_unique<SystemdNotifier>(); }

TimeoutExtender::TimeoutExtender(ServiceNotifier& notifier, std::string what, int64_t delay_us, int64_t period_us)
    : notifier_(notifier), what_(std::move(what)) {
  thread_ = std::thread([this, delay_us, period_us] {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    int64_t wait_us = delay_us;
    while (!cv_.wait_for(lock, std::chrono::microseconds(wait_us), [this] { return done_; })) {
      const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
      // Ask for three periods: one lost or late message does not make systemd give up.
      notifier_.Notify(StrFormat("EXTEND_TIMEOUT_USEC=%lld\nSTATUS=%s (%lld s)", static_cast<long long>(3 * period_us),
                                 what_.c_str(), static_cast<long long>(elapsed.count())));
      ++sent_;
      wait_us = period_us;
    }
  });
}

TimeoutExtender::~TimeoutExtender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int TimeoutExtender::extensions_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

}  // namespace edgepipe::agent
