#include "chunk_codec.h"

#include <zstd.h>

#include <cstring>

#include "varint.h"

namespace edgepipe::buffer {
namespace {

constexpr uint8_t kFormatV1 = 1;
constexpr int kZstdLevel = 3;
constexpr uint64_t kMaxChunkReadings = 1u << 22;
constexpr size_t kMaxDecompressed = 256u << 20;

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s.data(), s.size());
}

}  // namespace

// v1 layout (inside the zstd frame): varint count, then per reading
//   string sensor, zigzag-varint ts delta from the previous reading, byte type,
//   8-byte little-endian double, varint quality, string unit, string text, string source,
//   varint seq. Strings are varint length + bytes.
std::string EncodeChunk(std::span<const Reading> readings) {
  std::string raw;
  raw.reserve(readings.size() * 40 + 8);
  PutVarint(&raw, readings.size());
  int64_t prev_ts = 0;
  for (const Reading& r : readings) {
    PutString(&raw, r.sensor);
    PutVarint(&raw, ZigZag(r.ts_us - prev_ts));
    prev_ts = r.ts_us;
    raw.push_back(static_cast<char>(r.type));
    char d[8];
    std::memcpy(d, &r.value, 8);
    raw.append(d, 8);
    PutVarint(&raw, r.quality);
    PutString(&raw, r.unit);
    PutString(&raw, r.text);
    PutString(&raw, r.source);
    PutVarint(&raw, r.seq);
  }
  std::string out;
  out.resize(1 + ZSTD_compressBound(raw.size()));
  out[0] = static_cast<char>(kFormatV1);
  size_t n = ZSTD_compress(out.data() + 1, out.size() - 1, raw.data(), raw.size(), kZstdLevel);
  if (ZSTD_isError(n)) return std::string();  // cannot happen with a bound-sized buffer
  out.resize(1 + n);
  return out;
}

Result<std::vector<Reading>> DecodeChunk(std::string_view chunk) {
  if (chunk.empty()) return DataLossError("empty chunk");
  if (static_cast<uint8_t>(chunk[0]) != kFormatV1)
    return DataLossError("unknown chunk format version " + std::to_string(static_cast<uint8_t>(chunk[0])));
  std::string_view z = chunk.substr(1);
  unsigned long long size = ZSTD_getFrameContentSize(z.data(), z.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxDecompressed)
    return DataLossError("chunk: bad zstd frame header");
  std::string raw(size, '\0');
  size_t n = ZSTD_decompress(raw.data(), raw.size(), z.data(), z.size());
  if (ZSTD_isError(n) || n != size) return DataLossError("chunk: zstd decompression failed");
  ByteReader in(raw);
  uint64_t count = in.Varint();
  if (!in.ok() || count > kMaxChunkReadings) return DataLossError("chunk: bad reading count");
  std::vector<Reading> out;
  out.reserve(count);
  int64_t ts = 0;
  for (uint64_t i = 0; i < count && in.ok(); ++i) {
    Reading r;
    r.sensor = in.String();
    ts += UnZigZag(in.Varint());
    r.ts_us = ts;
    uint8_t type = in.Byte();
    if (type > static_cast<uint8_t>(ValueType::kString)) return DataLossError("chunk: bad value type");
    r.type = static_cast<ValueType>(type);
    in.Bytes(&r.value, 8);
    r.quality = static_cast<uint32_t>(in.Varint());
    r.unit = in.String();
    r.text = in.String();
    r.source = in.String();
    r.seq = in.Varint();
    out.push_back(std::move(r));
  }
  if (!in.ok() || !in.AtEnd()) return DataLossError("chunk: truncated or trailing bytes");
  return out;
}

}  // namespace edgepipe::buffer
