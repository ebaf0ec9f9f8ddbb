// An object ready for a sink: key, compressed body, metadata. ObjectBuilder makes one from a
// Batch: encode -> zstd -> checksums -> key from the template.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "edgepipe/core/pipeline.h"
#include "edgepipe/uploader/compress.h"
#include "edgepipe/uploader/encoder.h"

namespace edgepipe::uploader {

struct Object {
  std::string key;                              // relative key, no leading '/'
  std::string body;                             // compressed bytes
  std::string content_type;
  std::map<std::string, std::string> metadata;  // user metadata (x-amz-meta-<name> on S3)
  std::string sha256_hex;                       // of body
  std::string md5_base64;                       // of body (Content-MD5)
  uint64_t readings = 0;                        // records in the object
  uint64_t raw_bytes = 0;                       // uncompressed size
};

// Placeholders: {prefix} {device} {date} {year} {month} {day} {hour} {batch} {ext}.
constexpr const char* kDefaultKeyTemplate = "{prefix}/device={device}/date={date}/hour={hour}/{device}-{batch}.{ext}";

// Checks a key template: known placeholders only, balanced braces, {batch} present (keys
// must be unique per batch). Returns a message naming the problem, or "" when valid.
std::string ValidateKeyTemplate(std::string_view tmpl);
// Renders a key: repeated '/' collapsed, no leading '/'. {ext} is e.g. "ndjson.zst".
std::string RenderKey(std::string_view tmpl, std::string_view prefix, std::string_view device,
                      int64_t partition_us, std::string_view batch, std::string_view ext);

struct ObjectOptions {
  Format format = Format::kNdjson;
  int zstd_level = 1;
  std::string prefix;                           // from the destination URL
  std::string key_template = kDefaultKeyTemplate;
  EncodeContext context;                        // device id and labels
};

constexpr int kObjectSchemaVersion = 1;

class ObjectBuilder {
 public:
  explicit ObjectBuilder(ObjectOptions options);
  // Deterministic: the same batch gives the same key and the same bytes.
  Result<Object> Build(const Batch& batch);
  const ObjectOptions& options() const { return opt_; }

 private:
  ObjectOptions opt_;
  ZstdCompressor zstd_;
  std::string scratch_;
};

std::string Sha256Hex(std::string_view data);
std::string Md5Base64(std::string_view data);

}  // namespace edgepipe::uploader
