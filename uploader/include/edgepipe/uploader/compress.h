// Zstandard compression of whole objects. Frames carry the content size and, when asked, a
// content checksum (XXH64), so `zstd -t` and every reader can verify an object on its own.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "edgepipe/core/status.h"

struct ZSTD_CCtx_s;

namespace edgepipe::uploader {

class ZstdCompressor {
 public:
  explicit ZstdCompressor(int level = 3, bool checksum = true);
  ~ZstdCompressor();
  ZstdCompressor(const ZstdCompressor&) = delete;
  ZstdCompressor& operator=(const ZstdCompressor&) = delete;
  ZstdCompressor(ZstdCompressor&& o) noexcept
      : ctx_(o.ctx_), level_(o.level_), checksum_(o.checksum_), buf_(std::move(o.buf_)), buf_size_(o.buf_size_) {
    o.ctx_ = nullptr;
    o.buf_size_ = 0;
  }

  // Replaces `out` with one complete zstd frame holding `in`.
  Status Compress(std::string_view in, std::string* out);
  int level() const { return level_; }

 private:
  ZSTD_CCtx_s* ctx_;
  int level_;
  bool checksum_;
  // Output scratch of ZSTD_compressBound size, kept between calls and never zero-filled: a
  // std::string resized to the bound would clear megabytes per object for nothing.
  std::unique_ptr<char[]> buf_;
  size_t buf_size_ = 0;
};

// Decompresses every frame in `in`; kDataLoss on a damaged frame or checksum mismatch,
// kResourceExhausted beyond `max_bytes`.
Result<std::string> ZstdDecompress(std::string_view in, size_t max_bytes = 1ull << 30);

}  // namespace edgepipe::uploader
