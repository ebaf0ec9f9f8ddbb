// CRC-32 in its two common reflected forms, eight bytes per step (slicing-by-8). Chainable: the
// CRC of a+b is Crc(b, Crc(a)); Crc(empty, 0) = 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgepipe {

// CRC-32 of IEEE 802.3 / zlib's crc32 (polynomial 0xEDB88320): the buffer's journal records.
uint32_t Crc32Ieee(const void* data, size_t n, uint32_t crc = 0);
// CRC-32C, Castagnoli (polynomial 0x82F63B78): the serial protocol's frames (docs/protocol.md).
uint32_t Crc32Castagnoli(const void* data, size_t n, uint32_t crc = 0);

}  // namespace edgepipe
