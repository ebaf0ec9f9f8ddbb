#include "chunk_codec.h"

#include <zstd.h>

#include <memory>

#include <cstring>
#include <string_view>

#include "column_codec.h"
#include "varint.h"

namespace edgepipe::buffer {
namespace {

// Far above any chunk the store writes (merged chunks stay near 1 MiB uncompressed), low enough
// that a damaged size field cannot make the decoder allocate much.
constexpr size_t kMaxDecompressed = 32u << 20;


// Builds the uncompressed v2 payload; records section sizes when `sizes` is given.
std::string BuildPayload(const ChunkData& data, ChunkColumnSizes* sizes) {
  const auto& series = data.series();
  const auto& order = data.order();
  std::string out;
  out.reserve(data.size() * 6 + series.size() * 32 + 16);
  size_t mark = 0;
  auto section = [&](size_t* field) {
    if (sizes) *field = out.size() - mark;
    mark = out.size();
  };
  const uint64_t nseries = series.size();
  PutVarint(&out, data.size());
  PutVarint(&out, nseries);
  for (const SeriesColumns& s : series) {
    PutString(&out, s.sensor);
    PutString(&out, s.unit);
    PutString(&out, s.source);
    out.push_back(static_cast<char>(s.type));
  }
  const int64_t base = data.empty() ? 0 : series[order[0]].ts[0];
  if (!data.empty()) PutVarint(&out, ZigZag(base));
  section(sizes ? &sizes->header : nullptr);
  // Stored order: each reading's series as a delta from the previous reading's, modulo the
  // series count (a round-robin poll of many sensors becomes a run of 1s).
  if (nseries > 1) {
    uint64_t prev = 0;
    for (uint32_t s : order) {
      PutVarint(&out, (s + nseries - prev) % nseries);
      prev = s;
    }
  }
  section(sizes ? &sizes->order : nullptr);
  for (const SeriesColumns& s : series) EncodeTimestamps(&out, s.ts, base);
  section(sizes ? &sizes->timestamps : nullptr);
  for (const SeriesColumns& s : series) EncodeValues(&out, s.value);
  section(sizes ? &sizes->values : nullptr);
  for (const SeriesColumns& s : series) EncodeQuality(&out, s.quality);
  section(sizes ? &sizes->quality : nullptr);
  for (const SeriesColumns& s : series) EncodeSeq(&out, s.seq);
  section(sizes ? &sizes->seq : nullptr);
  for (const SeriesColumns& s : series) {
    out.push_back(s.text.empty() ? 0 : 1);
    for (const std::string& t : s.text) PutString(&out, t);
  }
  section(sizes ? &sizes->text : nullptr);
  return out;
}

// Into `raw` (its memory reused; resized to the content size).
Status Decompress(std::string_view z, std::string& raw) {
  unsigned long long size = ZSTD_getFrameContentSize(z.data(), z.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxDecompressed)
    return DataLossError("chunk: bad zstd frame header");
  raw.resize(size);
  // One context per thread, reused: ZSTD_decompress() allocates and initialises a fresh one
  // (about 100 KiB) per call, which cost more than decoding a small chunk.
  struct DCtxFree {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return ResourceExhaustedError("chunk: could not allocate a zstd decompression context");
  size_t n = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), z.data(), z.size());
  if (ZSTD_isError(n) || n != size)
    return DataLossError(std::string("chunk: zstd decompression failed: ") +
                         (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch"));
  return Status::Ok();
}

// Into `data`, which is empty.
Status DecodeV2(std::string_view raw, ChunkData& data) {
  ByteReader in(raw);
  const uint64_t n = in.Varint();
  const uint64_t nseries = in.Varint();
  // Every reading takes at least two payload bytes (a timestamp and a sequence delta), so a
  // count beyond that is damage, caught before allocating for it.
  if (!in.ok() || n > kMaxChunkReadings || n > raw.size() / 2 + 1 || nseries > n || (n > 0 && nseries == 0))
    return DataLossError("chunk: bad reading or series count");
  for (uint64_t i = 0; i < nseries; ++i) {
    std::string_view sensor = in.String(), unit = in.String(), source = in.String();
    uint8_t type = in.Byte();
    if (!in.ok() || type > static_cast<uint8_t>(ValueType::kString)) return DataLossError("chunk: bad series header");
    data.AddSeries(sensor, unit, source, static_cast<ValueType>(type));
  }
  const int64_t base = n > 0 ? UnZigZag(in.Varint()) : 0;
  std::vector<uint32_t>& order = data.mutable_order();
  std::vector<SeriesColumns>& series = data.mutable_series();
  std::vector<size_t> counts(nseries, 0);
  order.resize(n);
  uint64_t prev = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (nseries > 1) {
      uint64_t d = in.Varint();
      if (!in.ok() || d >= nseries) return DataLossError("chunk: bad order column");
      prev = (prev + d) % nseries;
    }
    order[i] = static_cast<uint32_t>(prev);
    ++counts[prev];
  }
  for (size_t c : counts)
    if (c == 0) return DataLossError("chunk: series without readings");
  for (size_t i = 0; i < nseries; ++i) {
    series[i].ts.resize(counts[i]);
    if (!DecodeTimestamps(in, series[i].ts, base)) return DataLossError("chunk: bad timestamp column");
  }
  for (size_t i = 0; i < nseries; ++i) {
    series[i].value.resize(counts[i]);
    if (!DecodeValues(in, series[i].value)) return DataLossError("chunk: bad value column");
  }
  for (size_t i = 0; i < nseries; ++i) {
    series[i].quality.resize(counts[i]);
    if (!DecodeQuality(in, series[i].quality)) return DataLossError("chunk: bad quality column");
  }
  for (size_t i = 0; i < nseries; ++i) {
    series[i].seq.resize(counts[i]);
    if (!DecodeSeq(in, series[i].seq)) return DataLossError("chunk: bad sequence column");
  }
  for (size_t i = 0; i < nseries; ++i) {
    uint8_t has = in.Byte();
    if (!in.ok() || has > 1) return DataLossError("chunk: bad text column");
    if (!has) continue;
    series[i].text.reserve(counts[i]);
    for (size_t k = 0; k < counts[i] && in.ok(); ++k) series[i].text.emplace_back(in.String());
  }
  if (!in.ok() || !in.AtEnd()) return DataLossError("chunk: truncated or trailing bytes");
  data.Reindex();
  return Status::Ok();
}

Result<std::vector<Reading>> DecodeV1(std::string_view raw) {
  ByteReader in(raw);
  uint64_t count = in.Varint();
  if (!in.ok() || count > kMaxChunkReadings || count > raw.size() / 16) return DataLossError("chunk: bad reading count");
  std::vector<Reading> out;
  out.reserve(count);
  int64_t ts = 0;
  for (uint64_t i = 0; i < count && in.ok(); ++i) {
    Reading r;
    r.sensor = in.String();
    ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(UnZigZag(in.Varint())));
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

}  // namespace

struct ChunkEncoder::Ctx {
  ZSTD_CCtx* cctx = nullptr;
  ~Ctx() { ZSTD_freeCCtx(cctx); }
};

ChunkEncoder::ChunkEncoder(int zstd_level, int window_log) : ctx_(std::make_unique<Ctx>()) {
  ctx_->cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_compressionLevel, zstd_level);
  ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_windowLog, window_log);
  // Bounded tables keep the encoder's memory flat whatever the chunk size (see benchmarks).
  ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_hashLog, std::min(window_log, 17));
  ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_chainLog, std::min(window_log, 17));
  ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_checksumFlag, 1);
}

ChunkEncoder::~ChunkEncoder() = default;

std::string ChunkEncoder::Encode(std::span<const Reading> readings) {
  ChunkData data;
  data.Append(readings);
  return Encode(data);
}

std::string ChunkEncoder::Encode(const ChunkData& data) {
  std::string raw = BuildPayload(data, nullptr);
  std::string out;
  out.resize(1 + ZSTD_compressBound(raw.size()));
  out[0] = static_cast<char>(kChunkFormatV2);
  size_t n = ZSTD_compress2(ctx_->cctx, out.data() + 1, out.size() - 1, raw.data(), raw.size());
  if (ZSTD_isError(n)) {
    // Cannot happen with a bound-sized buffer; a zstd "raw" block would still be valid, but an
    // empty string makes the caller's decode-after-encode check fail loudly instead.
    return std::string();
  }
  out.resize(1 + n);
  return out;
}

std::string EncodeChunk(std::span<const Reading> readings) {
  ChunkEncoder enc;
  return enc.Encode(readings);
}

std::string EncodeChunkV1ForTest(std::span<const Reading> readings) {
  std::string raw;
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
  std::string out(1 + ZSTD_compressBound(raw.size()), '\0');
  out[0] = static_cast<char>(kChunkFormatV1);
  size_t n = ZSTD_compress(out.data() + 1, out.size() - 1, raw.data(), raw.size(), 3);
  out.resize(ZSTD_isError(n) ? 0 : 1 + n);
  return out;
}

Status DecodeChunkDataInto(std::string_view chunk, ChunkData* data, std::string* scratch) {
  data->Clear();
  if (chunk.empty()) return DataLossError("empty chunk");
  const uint8_t version = static_cast<uint8_t>(chunk[0]);
  if (version != kChunkFormatV1 && version != kChunkFormatV2)
    return DataLossError("unknown chunk format version " + std::to_string(version));
  std::string own;
  std::string& raw = scratch ? *scratch : own;
  EP_RETURN_IF_ERROR(Decompress(chunk.substr(1), raw));
  Status s;
  if (version == kChunkFormatV2) {
    s = DecodeV2(raw, *data);
  } else {
    Result<std::vector<Reading>> rs = DecodeV1(raw);
    if (rs.ok()) data->Append(*rs);
    else s = rs.status();
  }
  if (!s.ok()) data->Clear();  // nothing half-decoded is left for the caller
  return s;
}

Result<ChunkData> DecodeChunkData(std::string_view chunk) {
  ChunkData data;
  EP_RETURN_IF_ERROR(DecodeChunkDataInto(chunk, &data, nullptr));
  return data;
}

Result<std::vector<Reading>> DecodeChunk(std::string_view chunk) {
  Result<ChunkData> data = DecodeChunkData(chunk);
  if (!data.ok()) return data.status();
  return data->ToReadings();
}

ChunkColumnSizes MeasureColumns(const ChunkData& data) {
  ChunkColumnSizes sizes;
  BuildPayload(data, &sizes);
  return sizes;
}

}  // namespace edgepipe::buffer
