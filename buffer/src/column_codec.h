// Column encoders of chunk format v2 (docs/buffer-format.md): one series' timestamps, values,
// quality flags and sequence numbers. Private to the buffer; pure functions, no I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "edgepipe/core/decimal.h"
#include "varint.h"

namespace edgepipe::buffer {

// Timestamps: a unit byte k (every timestamp differs from the first by a multiple of 10^k µs),
// the first timestamp as a zigzag delta from `base`, then zigzag delta-of-deltas in that unit.
void EncodeTimestamps(std::string* out, std::span<const int64_t> ts, int64_t base);
bool DecodeTimestamps(ByteReader& in, std::span<int64_t> ts, int64_t base);

// Values: mode byte 0 = decimal (scale exponent e, exceptions stored raw, zigzag deltas of
// value * 10^e), 1 = XOR (raw IEEE bits XOR the previous value's, byte planes most significant
// first). The encoder picks the cheaper one; both are bit-exact for every double, NaN included.
void EncodeValues(std::string* out, std::span<const double> values);
bool DecodeValues(ByteReader& in, std::span<double> values);

// Quality flags: (value, run length) varint pairs.
void EncodeQuality(std::string* out, std::span<const uint32_t> q);
bool DecodeQuality(ByteReader& in, std::span<uint32_t> q);

// Sequence numbers: zigzag deltas from the previous one (wrapping, so any uint64 round-trips).
void EncodeSeq(std::string* out, std::span<const uint64_t> seq);
bool DecodeSeq(ByteReader& in, std::span<uint64_t> seq);

// The decimal exponent used for `value` alone: the smallest e in [0, kMaxDecimalExponent] with
// (double)llround(value * 10^e) / 10^e == value bit for bit, or -1 when none exists.
int MinDecimalExponent(double value);  // (kMaxDecimalExponent: edgepipe/core/decimal.h)

}  // namespace edgepipe::buffer
