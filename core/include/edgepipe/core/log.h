// Leveled logging to stderr. Under systemd (JOURNAL_STREAM set) each line starts with an
// sd-daemon priority prefix ("<3>") so journald keeps the level; otherwise with a UTC time and
// the level name. A sink can be installed to capture lines (tests).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace edgepipe {

// Values are syslog priorities.
enum class LogLevel : int { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

const char* LogLevelName(LogLevel l);
// "error", "warning" ("warn"), "notice", "info", "debug".
bool ParseLogLevel(std::string_view text, LogLevel* out);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level);

// Installs a sink that receives every emitted line instead of stderr; nullptr restores stderr.
using LogSink = std::function<void(LogLevel, std::string_view component, std::string_view message)>;
void SetLogSink(LogSink sink);

void LogMessage(LogLevel level, std::string_view component, std::string_view message);

std::string StrFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

namespace internal {
extern int g_log_level;
}
inline bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= internal::g_log_level; }

// Emits at most once per `interval_us` of monotonic time (and counts what it suppressed), for
// conditions that persist: "one clear actionable message per interval".
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int64_t interval_us) : interval_us_(interval_us) {}
  // True when a message should be logged now; `suppressed` receives how many were skipped.
  bool ShouldLog(int64_t now_mono_us, uint64_t* suppressed);

 private:
  int64_t interval_us_;
  int64_t last_us_ = INT64_MIN;
  uint64_t suppressed_ = 0;
};

}  // namespace edgepipe

#define EP_LOG(level, component, ...)                                                    \
  do {                                                                                   \
    if (::edgepipe::LogEnabled(level))                                                   \
      ::edgepipe::LogMessage(level, component, ::edgepipe::StrFormat(__VA_ARGS__));      \
  } while (0)
#define EP_LOG_ERROR(c, ...) EP_LOG(::edgepipe::LogLevel::kError, c, __VA_ARGS__)
#define EP_LOG_WARN(c, ...) EP_LOG(::edgepipe::LogLevel::kWarning, c, __VA_ARGS__)
#define EP_LOG_NOTICE(c, ...) EP_LOG(::edgepipe::LogLevel::kNotice, c, __VA_ARGS__)
#define EP_LOG_INFO(c, ...) EP_LOG(::edgepipe::LogLevel::kInfo, c, __VA_ARGS__)
#define EP_LOG_DEBUG(c, ...) EP_LOG(::edgepipe::LogLevel::kDebug, c, __VA_ARGS__)
