#include "edgepipe/core/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe {
namespace internal {
int g_log_level = static_cast<int>(LogLevel::kInfo);
}

namespace {
std::mutex g_sink_mu;
LogSink g_sink;
bool JournalMode() {
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  return journal;
}
}  // namespace

const char* LogLevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kNotice: return "notice";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

bool ParseLogLevel(std::string_view t, LogLevel* out) {
  if (t == "error") *out = LogLevel::kError;
  else if (t == "warning" || t == "warn") *out = LogLevel::kWarning;
  else if (t == "notice") *out = LogLevel::kNotice;
  else if (t == "info") *out = LogLevel::kInfo;
  else if (t == "debug") *out = LogLevel::kDebug;
  else return false;
  return true;
}

void SetLogLevel(LogLevel level) { internal::g_log_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(internal::g_log_level); }

void SetLogSink(LogSink sink) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  g_sink = std::move(sink);
}

void LogMessage(LogLevel level, std::string_view component, std::string_view message) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  if (g_sink) {
    g_sink(level, component, message);
    return;
  }
  std::string line;
  line.reserve(message.size() + 64);
  if (JournalMode()) {
    line += '<';
    line += static_cast<char>('0' + static_cast<int>(level));
    line += '>';
  } else {
    line += FormatIso8601Ms(RealClock::Default().SystemNowUs());
    line += ' ';
    line += LogLevelName(level);
    line += ' ';
  }
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  fwrite(line.data(), 1, line.size(), stderr);
}

std::string StrFormat(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return std::string();
  if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, static_cast<size_t>(n));
  std::string out(static_cast<size_t>(n), '\0');
  va_start(ap, fmt);
  vsnprintf(out.data(), out.size() + 1, fmt, ap);
  va_end(ap);
  return out;
}

bool RateLimitedLog::ShouldLog(int64_t now_mono_us, uint64_t* suppressed) {
  if (last_us_ != INT64_MIN && now_mono_us - last_us_ < interval_us_) {
    ++suppressed_;
    return false;
  }
  last_us_ = now_mono_us;
  if (suppressed) *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace edgepipe
