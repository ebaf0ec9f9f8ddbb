// Serialises a group of readings into one compressed chunk (a BLOB in the chunks table) and
// back. The first byte is the format version; docs/buffer-format.md describes each version.
//
// Version 2 (written) is columnar: readings are grouped into series (sensor, unit, source, type),
// each series stores delta-of-delta timestamps, decimal-scaled integer deltas (or XOR-coded raw
// doubles when no decimal scale fits), run-length quality flags, sequence deltas and text, and the
// stored order is kept by a column of series indexes. Everything is lossless: every field of every
// Reading, and their order, comes back bit for bit. Version 1 (row-wise, the foundation's) is
// still decoded so older databases can be migrated.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chunk_data.h"
#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::buffer {

constexpr uint8_t kChunkFormatV1 = 1;
constexpr uint8_t kChunkFormatV2 = 2;
// Decoders refuse chunks claiming more readings (a damaged count must not allocate gigabytes).
constexpr uint64_t kMaxChunkReadings = 1u << 22;

// Reuses one zstd compression context across calls (allocating one per chunk costs more than
// compressing a small chunk). Not thread-safe: one encoder per thread.
class ChunkEncoder {
 public:
  // `zstd_level` 1..19. `window_log` caps zstd's window (and so its memory) for large chunks.
  explicit ChunkEncoder(int zstd_level = 3, int window_log = 18);
  ~ChunkEncoder();
  ChunkEncoder(const ChunkEncoder&) = delete;
  ChunkEncoder& operator=(const ChunkEncoder&) = delete;

  // Encodes losslessly in the current format (v2). Never fails.
  std::string Encode(const ChunkData& data);
  std::string Encode(std::span<const Reading> readings);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Convenience: a fresh encoder at the default level.
std::string EncodeChunk(std::span<const Reading> readings);
// Encodes in format v1 (only for tests of the migration path and the decoder).
std::string EncodeChunkV1ForTest(std::span<const Reading> readings);

// Decodes a chunk produced by any supported version. kDataLoss when it is damaged (bad version,
// zstd frame or checksum, truncated or inconsistent columns); never crashes on any input.
Result<ChunkData> DecodeChunkData(std::string_view chunk);
// The same into `data` (cleared first, its memory reused, left empty on an error), with the
// decompressed payload in `scratch` when given (reused too): a batch loader decoding chunk after
// chunk allocates nothing once its first chunks have been decoded.
Status DecodeChunkDataInto(std::string_view chunk, ChunkData* data, std::string* scratch);
Result<std::vector<Reading>> DecodeChunk(std::string_view chunk);

// The uncompressed payload of a v2 chunk, for tests and benchmarks that report how much each
// column weighs. Empty on a damaged chunk.
struct ChunkColumnSizes {
  size_t header = 0, order = 0, timestamps = 0, values = 0, quality = 0, seq = 0, text = 0;
};
ChunkColumnSizes MeasureColumns(const ChunkData& data);

}  // namespace edgepipe::buffer
