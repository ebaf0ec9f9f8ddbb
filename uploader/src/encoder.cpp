#include "edgepipe/uploader/encoder.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "edgepipe/core/decimal.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe::uploader {

const char* FormatName(Format f) { return f == Format::kCsv ? "csv" : "ndjson"; }

bool ParseFormat(std::string_view s, Format* out) {
  if (s == "ndjson") *out = Format::kNdjson;
  else if (s == "csv") *out = Format::kCsv;
  else return false;
  return true;
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) { ++p; continue; }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

namespace {

// 0: copy as is; 1: needs escaping; 2: start of a multi-byte sequence (validate).
constexpr uint8_t Class(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' ? 1 : (c >= 0x80 ? 2 : 0); }

size_t Utf8SeqLen(const unsigned char* p, const unsigned char* end) {
  unsigned char c = *p;
  size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || static_cast<size_t>(end - p) < n) return 0;
  return IsValidUtf8(std::string_view(reinterpret_cast<const char*>(p), n)) ? n : 0;
}

}  // namespace

namespace {

char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Most bytes WriteJsonString writes for `s`: every byte escaped as \u00XX (an invalid UTF-8 byte
// becomes the 3 bytes of U+FFFD).
size_t JsonStringBound(std::string_view s) { return 2 + 6 * s.size(); }

// AppendJsonString's bytes written at `p` (JsonStringBound(s) bytes available); returns the end.
char* WriteJsonString(char* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  *out++ = '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;
  while (p < end) {
    uint8_t cls = Class(*p);
    if (cls == 0) { ++p; continue; }
    out = Put(out, std::string_view(reinterpret_cast<const char*>(run), p - run));
    if (cls == 1) {
      switch (*p) {
        case '"': out = Put(out, "\\\""); break;
        case '\\': out = Put(out, "\\\\"); break;
        case '\n': out = Put(out, "\\n"); break;
        case '\r': out = Put(out, "\\r"); break;
        case '\t': out = Put(out, "\\t"); break;
        default:
          out = Put(out, "\\u00");
          *out++ = kHex[*p >> 4];
          *out++ = kHex[*p & 15];
      }
      ++p;
    } else {
      size_t n = Utf8SeqLen(p, end);
      if (n) {
        out = Put(out, std::string_view(reinterpret_cast<const char*>(p), n));
        p += n;
      } else {
        out = Put(out, "\xEF\xBF\xBD");  // U+FFFD
        ++p;
      }
    }
    run = p;
  }
  out = Put(out, std::string_view(reinterpret_cast<const char*>(run), p - run));
  *out++ = '"';
  return out;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  const size_t old = out->size();
  out->resize(old + JsonStringBound(s));
  char* end = WriteJsonString(out->data() + old, s);
  out->resize(static_cast<size_t>(end - out->data()));
}

namespace {

// The text std::to_chars(double) writes for `v` when v is a decimal with at most 9 digits after
// the point (most sensor readings: 21.37, -4.5, 1013): found without the general shortest-digits
// search, and exactly the same bytes. Returns 0 when `v` is not such a value (the caller then uses
// std::to_chars). For k = 0, 1, ... the closest k-decimal number n / 10^k is tried; the first
// that parses back to v (n and 10^k are exact doubles and IEEE division rounds correctly, as
// parsing does) has the fewest digits that round-trip. std::to_chars writes the shorter of fixed
// and scientific notation (fixed on a tie): when scientific would be shorter, 0 is returned.
constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t FastDecimal(double v, char* buf) {
  const double a = std::fabs(v);
  if (!(a >= 1e-3 && a < 1e15)) return 0;  // also NaN; zero, tiny and huge values: to_chars
  for (int k = 0; k <= 9; ++k) {
    // Below 2^50 after scaling, n is the closest k-decimal to a (edgepipe/core/decimal.h).
    int64_t n;
    if (!ScaledDecimal(a, k, 0x1p50, &n)) continue;
    // The digits of n, most significant first, two at a time, at the end of `digits`.
    char digits[20];
    char* const end = digits + sizeof digits;
    char* d = end;
    uint64_t u = static_cast<uint64_t>(n);
    for (; u >= 100; u /= 100) {
      d -= 2;
      std::memcpy(d, kTwoDigits + 2 * (u % 100), 2);
    }
    if (u >= 10) {
      d -= 2;
      std::memcpy(d, kTwoDigits + 2 * u, 2);
    } else {
      *--d = static_cast<char>('0' + u);
    }
    const int len = static_cast<int>(end - d);
    // Significant digits: without the trailing zeros (only an integer, k = 0, can have them; n
    // is never 0 here).
    int zeros = 0;
    while (zeros < len && end[-1 - zeros] == '0') ++zeros;
    const int sig = len - zeros;
    const int fixed_len = k == 0 ? len : (len > k ? len + 1 : k + 2);
    const int sci_len = sig + (sig > 1 ? 1 : 0) + 4;  // d[.ddd]e±XX (|exponent| < 100 here)
    if (fixed_len > sci_len) return 0;
    char* p = buf;
    if (v < 0) *p++ = '-';
    if (len > k) {
      std::memcpy(p, d, len - k);
      p += len - k;
      if (k > 0) {
        *p++ = '.';
        std::memcpy(p, end - k, k);
        p += k;
      }
    } else {
      *p++ = '0';
      *p++ = '.';
      std::memset(p, '0', k - len);
      p += k - len;
      std::memcpy(p, d, len);
      p += len;
    }
    return static_cast<size_t>(p - buf);
  }
  return 0;
}

// AppendDouble's text at `out` (32 bytes available); returns the end.
char* WriteDouble(char* out, double v) {
  const size_t n = FastDecimal(v, out);
  return n != 0 ? out + n : std::to_chars(out, out + 32, v).ptr;
}

}  // namespace

void AppendDouble(std::string* out, double v) {
  char buf[32];
  out->append(buf, static_cast<size_t>(WriteDouble(buf, v) - buf));
}

namespace {

// One reading as the encoders see it, from either form a batch holds (Batch::readings or
// Batch::columns): no copy of its strings.
struct RowView {
  std::string_view sensor, unit, source, text;
  int64_t ts_us;
  double value;
  ValueType type;
  uint32_t quality;
  int64_t series;  // index in batch.columns.series, or -1 for a reading of batch.readings
};

template <typename Fn>
void ForEachRow(const Batch& batch, Fn&& fn) {
  const ReadingColumns& c = batch.columns;
  for (size_t i = 0; i < c.size(); ++i) {
    const ReadingColumns::Series& s = c.SeriesOf(i);
    fn(RowView{s.sensor, s.unit, s.source, c.TextOf(i), c.ts_us[i], c.value[i], s.type, c.quality[i], c.series_of[i]});
  }
  for (const Reading& r : batch.readings)
    fn(RowView{r.sensor, r.unit, r.source, r.text, r.ts_us, r.value, r.type, r.quality, -1});
}

// `,"quality":["flag",...]` for the flags set in `q` (q != 0), at `out`; returns the end.
char* WriteQualityJson(char* out, uint32_t q) {
  out = Put(out, ",\"quality\":[");
  bool first = true;
  for (int bit = 0; bit < kQualityFlagCount; ++bit) {
    if (!(q & (1u << bit))) continue;
    if (!first) *out++ = ',';
    first = false;
    *out++ = '"';
    out = Put(out, QualityFlagName(bit));
    *out++ = '"';
  }
  *out++ = ']';
  return out;
}

// Most bytes WriteQualityJson writes: every flag set.
size_t QualityJsonBound() {
  static const size_t bound = [] {
    size_t n = std::strlen(",\"quality\":[]");
    for (int bit = 0; bit < kQualityFlagCount; ++bit) n += std::strlen(QualityFlagName(bit)) + 3;
    return n;
  }();
  return bound;
}

// Pre-rendered `{"device":"...","labels":{...},` common to every record of a batch.
std::string RecordPrefix(const EncodeContext& ctx) {
  std::string p = "{\"device\":";
  AppendJsonString(&p, ctx.device);
  if (!ctx.labels.empty()) {
    p.append(",\"labels\":{");
    for (size_t i = 0; i < ctx.labels.size(); ++i) {
      if (i) p.push_back(',');
      AppendJsonString(&p, ctx.labels[i].first);
      p.push_back(':');
      AppendJsonString(&p, ctx.labels[i].second);
    }
    p.push_back('}');
  }
  return p;
}

// ISO 8601 with milliseconds, reusing the date and time of day of the previous call when the
// second is the same (consecutive rows of a batch mostly are): only the milliseconds change.
class TimestampText {
 public:
  std::string_view Format(int64_t us) {
    const int64_t sec = us >= 0 ? us / 1'000'000 : -((-us + 999'999) / 1'000'000);
    if (sec != sec_ || len_ == 0) {
      len_ = FormatIso8601Ms(us, buf_);
      sec_ = sec;
      return {buf_, len_};
    }
    const int ms = static_cast<int>((us - sec * 1'000'000) / 1000);
    buf_[20] = static_cast<char>('0' + ms / 100);
    buf_[21] = static_cast<char>('0' + (ms / 10) % 10);
    buf_[22] = static_cast<char>('0' + ms % 10);
    return {buf_, len_};
  }

 private:
  char buf_[24];
  size_t len_ = 0;
  int64_t sec_ = 0;
};

// The parts of an NDJSON record that are the same for every reading of a series: everything up
// to the timestamp (`{"device":...,"sensor":"...","ts":"`), from the timestamp to the value
// (`","value":`), and after the value (unit and source). Rendered once per series, one after
// the other into one string (EncodeNdjson's `text`); these are their offset and lengths there.
struct SeriesText {
  size_t at = 0;
  uint32_t head = 0, mid = 0, tail = 0;
};

SeriesText RenderSeries(std::string* text, const std::string& prefix, std::string_view sensor, std::string_view unit,
                        std::string_view source, ValueType type) {
  SeriesText t;
  t.at = text->size();
  text->append(prefix);
  text->append(",\"sensor\":");
  AppendJsonString(text, sensor);
  text->append(",\"ts\":\"");
  t.head = static_cast<uint32_t>(text->size() - t.at);
  text->append(type == ValueType::kNumber ? "\",\"value\":" : type == ValueType::kString ? "\",\"value_text\":" : "\"");
  t.mid = static_cast<uint32_t>(text->size() - t.at - t.head);
  if (!unit.empty()) {
    text->append(",\"unit\":");
    AppendJsonString(text, unit);
  }
  if (!source.empty()) {
    text->append(",\"source\":");
    AppendJsonString(text, source);
  }
  t.tail = static_cast<uint32_t>(text->size() - t.at - t.head - t.mid);
  return t;
}

// Most bytes WriteNdjsonRow writes for `r`.
size_t NdjsonRowBound(const SeriesText& t, const RowView& r) {
  size_t n = t.head + 24 + t.mid + t.tail + 2;  // 24: the timestamp
  n += r.type == ValueType::kString ? JsonStringBound(r.text) : 32;  // a number (<= 24), null, a boolean
  if (r.quality) n += QualityJsonBound();
  return n;
}

// One record at `out` (NdjsonRowBound bytes available); returns the end.
char* WriteNdjsonRow(char* out, const char* series, const SeriesText& t, TimestampText& ts, const RowView& r) {
  out = Put(out, std::string_view(series, t.head));
  out = Put(out, ts.Format(r.ts_us));
  out = Put(out, std::string_view(series + t.head, t.mid));
  switch (r.type) {
    case ValueType::kNumber:
      if (std::isfinite(r.value)) out = WriteDouble(out, r.value);
      else out = Put(out, "null");
      break;
    case ValueType::kBool:
      out = Put(out, r.value != 0 ? ",\"value_bool\":true" : ",\"value_bool\":false");
      break;
    case ValueType::kString:
      out = WriteJsonString(out, r.text);
      break;
  }
  out = Put(out, std::string_view(series + t.head + t.mid, t.tail));
  if (r.quality) out = WriteQualityJson(out, r.quality);
  *out++ = '}';
  *out++ = '\n';
  return out;
}

void EncodeNdjson(const EncodeContext& ctx, const Batch& batch, std::string* out) {
  const std::string prefix = RecordPrefix(ctx);
  TimestampText ts;
  // Each series' fixed text rendered on its first reading (readings of batch.readings: per row,
  // after the series' texts, and taken away again).
  std::string text;
  std::vector<SeriesText> series(batch.columns.series.size());
  std::vector<bool> rendered(batch.columns.series.size());
  // A record is written through a pointer into a buffer on the stack, then appended in one
  // piece; one that may not fit there (long texts) straight into `out`, grown to its bound and
  // cut back to what was written.
  out->reserve(out->size() + batch.reading_count() * (prefix.size() + 96));
  char row[512];
  auto write = [&](const char* series_text, const SeriesText& t, const RowView& r) {
    const size_t bound = NdjsonRowBound(t, r);
    if (bound <= sizeof row) {
      out->append(row, static_cast<size_t>(WriteNdjsonRow(row, series_text, t, ts, r) - row));
      return;
    }
    const size_t old = out->size();
    out->resize(old + bound);
    out->resize(static_cast<size_t>(WriteNdjsonRow(out->data() + old, series_text, t, ts, r) - out->data()));
  };
  ForEachRow(batch, [&](const RowView& r) {
    if (r.series < 0) {
      const size_t keep = text.size();
      const SeriesText t = RenderSeries(&text, prefix, r.sensor, r.unit, r.source, r.type);
      write(text.data() + t.at, t, r);
      text.resize(keep);
      return;
    }
    if (!rendered[r.series]) {
      series[r.series] = RenderSeries(&text, prefix, r.sensor, r.unit, r.source, r.type);
      rendered[r.series] = true;
    }
    write(text.data() + series[r.series].at, series[r.series], r);
  });
}

// RFC 4180 field: quoted when it holds a separator, quote or line break.
void AppendCsvField(std::string* out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void EncodeCsv(const EncodeContext& ctx, const Batch& batch, std::string* out) {
  out->append("device,sensor,ts,value,value_bool,value_text,unit,source,quality");
  for (const auto& [k, v] : ctx.labels) {
    out->append(",label_");
    AppendCsvField(out, k);
  }
  out->append("\n");
  std::string labels;
  for (const auto& [k, v] : ctx.labels) {
    labels.push_back(',');
    AppendCsvField(&labels, v);
  }
  char ts[24];
  ForEachRow(batch, [&](const RowView& r) {
    AppendCsvField(out, ctx.device);
    out->push_back(',');
    AppendCsvField(out, r.sensor);
    out->push_back(',');
    out->append(ts, FormatIso8601Ms(r.ts_us, ts));
    out->push_back(',');
    if (r.type == ValueType::kNumber && std::isfinite(r.value)) AppendDouble(out, r.value);
    out->push_back(',');
    if (r.type == ValueType::kBool) out->append(r.value != 0 ? "true" : "false");
    out->push_back(',');
    if (r.type == ValueType::kString) AppendCsvField(out, r.text);
    out->push_back(',');
    AppendCsvField(out, r.unit);
    out->push_back(',');
    AppendCsvField(out, r.source);
    out->push_back(',');
    bool first = true;
    for (int bit = 0; bit < kQualityFlagCount; ++bit) {
      if (!(r.quality & (1u << bit))) continue;
      if (!first) out->push_back('|');
      first = false;
      out->append(QualityFlagName(bit));
    }
    out->append(labels);
    out->push_back('\n');
  });
}

}  // namespace

void EncodeReadings(Format format, const EncodeContext& ctx, const Batch& batch, std::string* out) {
  if (format == Format::kCsv) EncodeCsv(ctx, batch, out);
  else EncodeNdjson(ctx, batch, out);
}

void EncodeQuarantine(const EncodeContext& ctx, const Batch& batch, std::string* out) {
  const std::string prefix = RecordPrefix(ctx);
  for (const QuarantineRecord& q : batch.quarantined) {
    out->append(prefix);
    out->append(",\"received\":\"");
    out->append(FormatIso8601Ms(q.ts_us));
    out->push_back('"');
    if (q.reading_ts_us != 0) {
      out->append(",\"ts\":\"");
      out->append(FormatIso8601Ms(q.reading_ts_us));
      out->push_back('"');
    }
    out->append(",\"source\":");
    AppendJsonString(out, q.source);
    out->append(",\"sensor\":");
    AppendJsonString(out, q.sensor);
    out->append(",\"rule\":");
    AppendJsonString(out, q.rule);
    out->append(",\"reason\":");
    AppendJsonString(out, q.reason);
    out->append(",\"value\":");
    AppendJsonString(out, q.value);
    if (IsValidUtf8(q.raw)) {
      out->append(",\"raw\":");
      AppendJsonString(out, q.raw);
    } else {
      // Binary payloads (serial frames, ...) are kept exactly, as hex.
      out->append(",\"raw_hex\":\"");
      static const char kHex[] = "0123456789abcdef";
      for (unsigned char c : q.raw) {
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
      }
      out->push_back('"');
    }
    out->append("}\n");
  }
}

}  // namespace edgepipe::uploader
