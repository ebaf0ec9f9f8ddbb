#include "edgepipe/uploader/object.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"

namespace edgepipe::uploader {
namespace {

constexpr std::string_view kPlaceholders[] = {"prefix", "device", "date", "year", "month",
                                              "day",    "hour",   "batch", "ext"};
// S3 limits user metadata to 2 KiB in all; keep the gap list well under that.
constexpr size_t kMaxGapMetadata = 1024;

// S3 user metadata must be ASCII: re-escape the (valid UTF-8) output of AppendJsonString with
// \uXXXX escapes (surrogate pairs above U+FFFF), so the JSON reads back to the same text.
std::string AsciiJson(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
    for (int k = 1; k < len && i + k < in.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3F);
    i += len;
    auto put = [&out](uint32_t u) {
      char buf[16];
      snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u & 0xFFFF));
      out += buf;
    };
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put(0xD800 + (cp >> 10));
      put(0xDC00 + (cp & 0x3FF));
    } else {
      put(cp);
    }
  }
  return out;
}

void Digest(const EVP_MD* md, std::string_view data, unsigned* len_out, unsigned char* buf) {
  EVP_Digest(data.data(), data.size(), buf, len_out, md, nullptr);
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  Digest(EVP_sha256(), data, &n, d);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 15]);
  }
  return out;
}

std::string Md5Base64(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  Digest(EVP_md5(), data, &n, d);
  unsigned char b64[64];
  int len = EVP_EncodeBlock(b64, d, static_cast<int>(n));
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(len));
}

std::string ValidateKeyTemplate(std::string_view t) {
  bool has_batch = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') return "unmatched '}' at offset " + std::to_string(i);
    if (t[i] != '{') continue;
    size_t close = t.find('}', i);
    if (close == std::string_view::npos) return "unclosed '{' at offset " + std::to_string(i);
    std::string_view name = t.substr(i + 1, close - i - 1);
    if (std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) == std::end(kPlaceholders))
      return "unknown placeholder {" + std::string(name) +
             "}; known: {prefix} {device} {date} {year} {month} {day} {hour} {batch} {ext}";
    if (name == "batch") has_batch = true;
    i = close;
  }
  if (!has_batch) return "the template must contain {batch}, or batches would overwrite each other";
  return "";
}

std::string RenderKey(std::string_view t, std::string_view prefix, std::string_view device, int64_t partition_us,
                      std::string_view batch, std::string_view ext) {
  CivilTime c = CivilFromUs(partition_us);
  char date[16], year[8], month[4], day[4], hour[4];
  snprintf(date, sizeof date, "%04d-%02d-%02d", c.year, c.month, c.day);
  snprintf(year, sizeof year, "%04d", c.year);
  snprintf(month, sizeof month, "%02d", c.month);
  snprintf(day, sizeof day, "%02d", c.day);
  snprintf(hour, sizeof hour, "%02d", c.hour);
  std::string raw;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '{') {
      raw.push_back(t[i]);
      continue;
    }
    size_t close = t.find('}', i);
    if (close == std::string_view::npos) {
      raw.append(t.substr(i));
      break;
    }
    std::string_view name = t.substr(i + 1, close - i - 1);
    if (name == "prefix") raw.append(prefix);
    else if (name == "device") raw.append(device);
    else if (name == "date") raw.append(date);
    else if (name == "year") raw.append(year);
    else if (name == "month") raw.append(month);
    else if (name == "day") raw.append(day);
    else if (name == "hour") raw.append(hour);
    else if (name == "batch") raw.append(batch);
    else if (name == "ext") raw.append(ext);
    i = close;
  }
  std::string key;
  for (char ch : raw) {
    if (ch == '/' && (key.empty() || key.back() == '/')) continue;
    key.push_back(ch);
  }
  while (!key.empty() && key.back() == '/') key.pop_back();
  return key;
}

ObjectBuilder::ObjectBuilder(ObjectOptions options) : opt_(std::move(options)), zstd_(opt_.zstd_level, true) {
  std::sort(opt_.context.labels.begin(), opt_.context.labels.end());
}

Result<Object> ObjectBuilder::Build(const Batch& batch) {
  Object obj;
  scratch_.clear();
  const bool quarantine = batch.kind == BatchKind::kQuarantine;
  if (quarantine) EncodeQuarantine(opt_.context, batch, &scratch_);
  else EncodeReadings(opt_.format, opt_.context, batch, &scratch_);
  EP_RETURN_IF_ERROR(zstd_.Compress(scratch_, &obj.body));
  obj.raw_bytes = scratch_.size();
  obj.readings = quarantine ? batch.quarantined.size() : batch.reading_count();
  const Format fmt = quarantine ? Format::kNdjson : opt_.format;
  const std::string ext = std::string(FormatName(fmt)) + ".zst";
  std::string prefix = opt_.prefix;
  if (quarantine) prefix += "/quarantine";
  obj.key = RenderKey(opt_.key_template, prefix, opt_.context.device, batch.partition_us, batch.name, ext);
  obj.content_type = "application/zstd";
  obj.sha256_hex = Sha256Hex(obj.body);
  obj.md5_base64 = Md5Base64(obj.body);

  auto& m = obj.metadata;
  m["edgepipe-schema"] = std::to_string(kObjectSchemaVersion);
  m["edgepipe-batch"] = batch.name;
  m["edgepipe-device"] = opt_.context.device;
  m["edgepipe-kind"] = quarantine ? "quarantine" : "readings";
  m["edgepipe-format"] = FormatName(fmt);
  m["edgepipe-records"] = std::to_string(obj.readings);
  if (!quarantine && batch.reading_count() > 0) {
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (const int64_t ts : batch.columns.ts_us) {
      first = std::min(first, ts);
      last = std::max(last, ts);
    }
    for (const Reading& r : batch.readings) {
      first = std::min(first, r.ts_us);
      last = std::max(last, r.ts_us);
    }
    m["edgepipe-first-ts"] = FormatIso8601Us(first);
    m["edgepipe-last-ts"] = FormatIso8601Us(last);
  }
  const QualitySummary& q = batch.quality;
  std::string qs = "{\"in\":" + std::to_string(q.readings_in) + ",\"passed\":" + std::to_string(q.passed) +
                   ",\"flagged\":" + std::to_string(q.flagged) + ",\"rejected\":{";
  bool first = true;
  for (const auto& [rule, n] : q.rejected) {
    if (!first) qs.push_back(',');
    first = false;
    AppendJsonString(&qs, rule);
    qs += ":" + std::to_string(n);
  }
  qs += "},\"gaps\":" + std::to_string(q.gaps) + ",\"missing\":" + std::to_string(q.missing) + "}";
  m["edgepipe-quality"] = AsciiJson(qs);
  if (!batch.gaps.empty()) {
    std::string gs = "[";
    size_t listed = 0;
    for (const GapRecord& g : batch.gaps) {
      std::string one = "{\"source\":";
      AppendJsonString(&one, g.source);
      one += ",\"sensor\":";
      AppendJsonString(&one, g.sensor);
      one += ",\"from\":\"" + FormatIso8601Ms(g.from_us) + "\",\"to\":\"" + FormatIso8601Ms(g.to_us) +
             "\",\"count\":" + std::to_string(g.count) + ",\"reason\":";
      AppendJsonString(&one, g.reason);
      one += "}";
      one = AsciiJson(one);
      if (gs.size() + one.size() + 2 > kMaxGapMetadata) break;
      if (listed++) gs.push_back(',');
      gs += one;
    }
    gs += "]";
    m["edgepipe-gaps"] = gs;
    if (listed < batch.gaps.size()) m["edgepipe-gaps-truncated"] = std::to_string(batch.gaps.size() - listed);
  }
  return obj;
}

}  // namespace edgepipe::uploader
