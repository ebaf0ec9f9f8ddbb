#include "edgepipe/core/crc32.h"

#include <array>

namespace edgepipe {
namespace {

using Tables = std::array<std::array<uint32_t, 256>, 8>;

// Built when first used rather than stored in the binary (8 KiB per polynomial): the stripped
// aarch64 binary has a 2 MiB target, and its data segment moves by a whole 64 KiB page when the
// code and constants before it cross a boundary (docs/cross-compiling.md).
Tables Make(uint32_t poly) {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (poly & (0u - (c & 1u)));
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}

uint32_t Load32(const unsigned char* p) {  // little-endian whatever the host
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint32_t Crc(const Tables& t, const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    const uint32_t a = Load32(p) ^ c, b = Load32(p + 4);
    c = t[7][a & 0xFF] ^ t[6][(a >> 8) & 0xFF] ^ t[5][(a >> 16) & 0xFF] ^ t[4][a >> 24] ^ t[3][b & 0xFF] ^
        t[2][(b >> 8) & 0xFF] ^ t[1][(b >> 16) & 0xFF] ^ t[0][b >> 24];
  }
  for (; n > 0; ++p, --n) c = (c >> 8) ^ t[0][(c ^ *p) & 0xFF];
  return ~c;
}

}  // namespace

uint32_t Crc32Ieee(const void* data, size_t n, uint32_t crc) {
  static const Tables t = Make(0xEDB88320u);
  return Crc(t, data, n, crc);
}

uint32_t Crc32Castagnoli(const void* data, size_t n, uint32_t crc) {
  static const Tables t = Make(0x82F63B78u);
  return Crc(t, data, n, crc);
}

}  // namespace edgepipe
