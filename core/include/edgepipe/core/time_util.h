// Calendar arithmetic without the C library's time-zone machinery (fast and thread-safe):
// the encoders format ~millions of timestamps per second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgepipe {

constexpr int64_t kUsPerSecond = 1'000'000;
constexpr int64_t kUsPerHour = 3'600 * kUsPerSecond;
constexpr int64_t kUsPerDay = 24 * kUsPerHour;

struct CivilTime {
  int year, month, day, hour, minute, second, micros;
};

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int year, int month, int day);
CivilTime CivilFromUs(int64_t us);
int64_t UsFromCivil(const CivilTime& c);

// Start of the UTC hour containing `us` (floor, also for negative times).
int64_t FloorToHour(int64_t us);

// "2026-11-26T04:05:49.123Z" (24 chars, millisecond precision, truncated toward -inf).
// `out` must hold at least 24 bytes; returns the number of bytes written (24).
size_t FormatIso8601Ms(int64_t us, char* out);
std::string FormatIso8601Ms(int64_t us);
// "2026-11-26T04:05:49.123456Z": microsecond precision (for logs and metadata).
std::string FormatIso8601Us(int64_t us);

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.frac]]" with "Z", "+HH:MM" or no suffix (UTC),
// and "T" or a space between date and time. nullopt on anything else.
std::optional<int64_t> ParseIso8601(std::string_view text);

}  // namespace edgepipe
