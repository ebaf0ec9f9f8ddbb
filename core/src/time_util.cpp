#include "edgepipe/core/time_util.h"

#include <cstring>

namespace edgepipe {

int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

CivilTime CivilFromUs(int64_t us) {
  const int64_t days = FloorDiv(us, kUsPerDay);
  int64_t rem = us - days * kUsPerDay;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  CivilTime c;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = static_cast<int>(yoe + era * 400 + (c.month <= 2));
  c.hour = static_cast<int>(rem / kUsPerHour);
  rem -= c.hour * kUsPerHour;
  c.minute = static_cast<int>(rem / (60 * kUsPerSecond));
  rem -= c.minute * 60 * kUsPerSecond;
  c.second = static_cast<int>(rem / kUsPerSecond);
  c.micros = static_cast<int>(rem - c.second * kUsPerSecond);
  return c;
}

int64_t UsFromCivil(const CivilTime& c) {
  return DaysFromCivil(c.year, c.month, c.day) * kUsPerDay + c.hour * kUsPerHour +
         c.minute * 60 * kUsPerSecond + c.second * kUsPerSecond + c.micros;
}

int64_t FloorToHour(int64_t us) { return FloorDiv(us, kUsPerHour) * kUsPerHour; }

static inline void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

size_t FormatIso8601Ms(int64_t us, char* out) {
  CivilTime c = CivilFromUs(us);
  int y = c.year;
  if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;  // outside ISO basic range: clamp, never overflow
  out[0] = static_cast<char>('0' + y / 1000);
  out[1] = static_cast<char>('0' + (y / 100) % 10);
  out[2] = static_cast<char>('0' + (y / 10) % 10);
  out[3] = static_cast<char>('0' + y % 10);
  out[4] = '-';
  Put2(out + 5, c.month);
  out[7] = '-';
  Put2(out + 8, c.day);
  out[10] = 'T';
  Put2(out + 11, c.hour);
  out[13] = ':';
  Put2(out + 14, c.minute);
  out[16] = ':';
  Put2(out + 17, c.second);
  out[19] = '.';
  const int ms = c.micros / 1000;
  out[20] = static_cast<char>('0' + ms / 100);
  out[21] = static_cast<char>('0' + (ms / 10) % 10);
  out[22] = static_cast<char>('0' + ms % 10);
  out[23] = 'Z';
  return 24;
}

std::string FormatIso8601Ms(int64_t us) {
  char buf[24];
  return std::string(buf, FormatIso8601Ms(us, buf));
}

std::string FormatIso8601Us(int64_t us) {
  char buf[32];
  FormatIso8601Ms(us, buf);
  CivilTime c = CivilFromUs(us);
  char* p = buf + 20;
  int v = c.micros;
  for (int i = 5; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  p[6] = 'Z';
  return std::string(buf, 27);
}

namespace {
bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char ch = s[pos + i];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *out = v;
  return true;
}
}  // namespace

std::optional<int64_t> ParseIso8601(std::string_view s) {
  CivilTime c{};
  if (!Digits(s, 0, 4, &c.year) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &c.month) ||
      s[7] != '-' || !Digits(s, 8, 2, &c.day))
    return std::nullopt;
  if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > 31) return std::nullopt;
  size_t pos = 10;
  int64_t offset_us = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!Digits(s, pos, 2, &c.hour) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !Digits(s, pos + 3, 2, &c.minute))
      return std::nullopt;
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, &c.second)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int scale = 100000;
        size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          c.micros += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return std::nullopt;
      }
    }
    if (c.hour > 23 || c.minute > 59 || c.second > 60) return std::nullopt;
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        ++pos;
      } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
        int oh, om;
        if (!Digits(s, pos + 1, 2, &oh) || !Digits(s, pos + 4, 2, &om)) return std::nullopt;
        offset_us = (oh * 60 + om) * 60 * kUsPerSecond * (s[pos] == '+' ? 1 : -1);
        pos += 6;
      } else {
        return std::nullopt;
      }
    }
  }
  if (pos != s.size()) return std::nullopt;
  return UsFromCivil(c) - offset_us;
}

}  // namespace edgepipe
