#include "edgepipe/uploader/compress.h"

#include <zstd.h>

namespace edgepipe::uploader {

ZstdCompressor::ZstdCompressor(int level, bool checksum)
    : ctx_(ZSTD_createCCtx()), level_(level), checksum_(checksum) {}

ZstdCompressor::~ZstdCompressor() { ZSTD_freeCCtx(ctx_); }

Status ZstdCompressor::Compress(std::string_view in, std::string* out) {
  if (!ctx_) return InternalError("zstd: could not allocate a compression context");
  ZSTD_CCtx_reset(ctx_, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level_);
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, checksum_ ? 1 : 0);
  ZSTD_CCtx_setParameter(ctx_, ZSTD_c_contentSizeFlag, 1);
  const size_t bound = ZSTD_compressBound(in.size());
  if (bound > buf_size_) {
    buf_.reset(new char[bound]);
    buf_size_ = bound;
  }
  size_t n = ZSTD_compress2(ctx_, buf_.get(), bound, in.data(), in.size());
  if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out->assign(buf_.get(), n);
  return Status::Ok();
}

Result<std::string> ZstdDecompress(std::string_view in, size_t max_bytes) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (!ds) return InternalError("zstd: could not allocate a decompression context");
  std::string out;
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  size_t last = 0;
  char buf[1 << 16];
  while (ib.pos < ib.size) {
    ZSTD_outBuffer ob{buf, sizeof buf, 0};
    last = ZSTD_decompressStream(ds, &ob, &ib);
    if (ZSTD_isError(last)) {
      ZSTD_freeDStream(ds);
      return DataLossError(std::string("zstd: ") + ZSTD_getErrorName(last));
    }
    out.append(buf, ob.pos);
    if (out.size() > max_bytes) {
      ZSTD_freeDStream(ds);
      return ResourceExhaustedError("zstd: decompressed size exceeds the limit");
    }
    if (ob.pos == 0 && ib.pos < ib.size && last != 0) continue;
  }
  // Flush what is buffered inside the stream.
  while (last != 0) {
    ZSTD_outBuffer ob{buf, sizeof buf, 0};
    last = ZSTD_decompressStream(ds, &ob, &ib);
    if (ZSTD_isError(last)) {
      ZSTD_freeDStream(ds);
      return DataLossError(std::string("zstd: ") + ZSTD_getErrorName(last));
    }
    out.append(buf, ob.pos);
    if (ob.pos == 0) break;
  }
  ZSTD_freeDStream(ds);
  if (last != 0) return DataLossError("zstd: truncated frame");
  return out;
}

}  // namespace edgepipe::uploader
