// Serialises a group of readings into one compressed chunk (a BLOB in the chunks table) and
// back. The first byte is the format version; docs/buffer-format.md describes each version.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::buffer {

// Encodes readings losslessly (every field of Reading round-trips bit for bit).
std::string EncodeChunk(std::span<const Reading> readings);
// Decodes a chunk produced by any supported version. kDataLoss when it is damaged.
Result<std::vector<Reading>> DecodeChunk(std::string_view chunk);

}  // namespace edgepipe::buffer
