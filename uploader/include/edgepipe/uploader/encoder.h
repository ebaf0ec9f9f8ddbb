// Turns a Batch into the bytes of one object: NDJSON (default) or CSV, one record per reading.
// Encoding is deterministic: the same batch always gives the same bytes, so a re-sent batch
// overwrites its earlier copy byte for byte. docs/output-format.md describes the records.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "edgepipe/core/pipeline.h"

namespace edgepipe::uploader {

enum class Format { kNdjson, kCsv };

const char* FormatName(Format f);          // "ndjson", "csv"
bool ParseFormat(std::string_view s, Format* out);

// Enrichment written into every record.
struct EncodeContext {
  std::string device;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key
};

// Appends the records of a kReadings batch to `out`.
void EncodeReadings(Format format, const EncodeContext& ctx, const Batch& batch, std::string* out);
// Appends the records of a kQuarantine batch to `out` (always NDJSON).
void EncodeQuarantine(const EncodeContext& ctx, const Batch& batch, std::string* out);

// JSON string escaping (RFC 8259); bytes that are not valid UTF-8 become U+FFFD.
void AppendJsonString(std::string* out, std::string_view s);
// Shortest text that parses back to exactly `v` (finite values only).
void AppendDouble(std::string* out, double v);
bool IsValidUtf8(std::string_view s);

}  // namespace edgepipe::uploader
