// LEB128 varints and zigzag, private helpers of the buffer's chunk codec.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace edgepipe::buffer {

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
// A varint length, then the bytes (ByteReader::String reads it back).
inline void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s.data(), s.size());
}
inline uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// Reads from a string_view, tracking failure instead of throwing.
class ByteReader {
 public:
  explicit ByteReader(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return p_ == end_; }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) { ok_ = false; return 0; }
      uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  uint8_t Byte() {
    if (p_ == end_) { ok_ = false; return 0; }
    return static_cast<uint8_t>(*p_++);
  }
  // The next n bytes in place, or nullptr (and not ok) when fewer are left.
  const uint8_t* Take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) { ok_ = false; return nullptr; }
    const auto* b = reinterpret_cast<const uint8_t*>(p_);
    p_ += n;
    return b;
  }
  bool Bytes(void* dst, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) { ok_ = false; return false; }
    std::memcpy(dst, p_, n);
    p_ += n;
    return true;
  }
  std::string_view String() {
    uint64_t n = Varint();
    if (!ok_ || static_cast<uint64_t>(end_ - p_) < n) { ok_ = false; return {}; }
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

 private:
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace edgepipe::buffer
