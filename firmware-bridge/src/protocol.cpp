#include "edgepipe/firmware_bridge/protocol.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "edgepipe/core/crc32.h"
#include "edgepipe/core/log.h"

namespace edgepipe::fb::proto {
namespace {

uint32_t Load32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Little-endian payload writer.
class Writer {
 public:
  void U8(uint8_t v) { b_.push_back(v); }
  void U16(uint16_t v) {
    U8(uint8_t(v));
    U8(uint8_t(v >> 8));
  }
  void U32(uint32_t v) {
    U16(uint16_t(v));
    U16(uint16_t(v >> 16));
  }
  void U64(uint64_t v) {
    U32(uint32_t(v));
    U32(uint32_t(v >> 32));
  }
  void Str(const std::string& s, size_t max) {
    const size_t n = std::min(s.size(), max);
    U8(uint8_t(n));
    b_.insert(b_.end(), s.begin(), s.begin() + static_cast<long>(n));
  }
  std::vector<uint8_t> Take() { return std::move(b_); }

 private:
  std::vector<uint8_t> b_;
};

// Little-endian payload reader; the first problem sticks and later reads return zeros.
class Reader {
 public:
  Reader(std::span<const uint8_t> p, const char* msg) : p_(p), msg_(msg) {}
  uint8_t U8() { return Need(1) ? p_[off_++] : 0; }
  uint16_t U16() {
    uint16_t lo = U8();
    return uint16_t(lo | U8() << 8);
  }
  uint32_t U32() {
    uint32_t lo = U16();
    return lo | uint32_t(U16()) << 16;
  }
  uint64_t U64() {
    uint64_t lo = U32();
    return lo | uint64_t(U32()) << 32;
  }
  std::string Str(const char* what, size_t min, size_t max) {
    const size_t n = U8();
    if (!Need(n)) return {};
    std::string s(reinterpret_cast<const char*>(p_.data() + off_), n);
    off_ += n;
    if (n < min || n > max) Fail(StrFormat("%s of %zu bytes (allowed %zu to %zu)", what, n, min, max));
    for (unsigned char c : s)
      if (c < 0x20 || c > 0x7E) {
        Fail(StrFormat("%s contains byte 0x%02x (printable ASCII only)", what, c));
        break;
      }
    return s;
  }
  void Fail(const std::string& why) {
    if (err_.empty()) err_ = why;
  }
  Status status() const { return err_.empty() ? Status::Ok() : InvalidArgumentError(std::string(msg_) + ": " + err_); }
  size_t offset() const { return off_; }

 private:
  bool Need(size_t n) {
    if (off_ + n <= p_.size()) return true;
    Fail(StrFormat("payload of %zu bytes ends inside a field at offset %zu", p_.size(), off_));
    off_ = p_.size();
    return false;
  }
  std::span<const uint8_t> p_;
  const char* msg_;
  size_t off_ = 0;
  std::string err_;
};

}  // namespace

const char* MsgTypeName(uint8_t type) {
  switch (type) {
    case 0x01: return "HELLO";
    case 0x02: return "SENSOR";
    case 0x03: return "READINGS";
    case 0x81: return "ACK";
    case 0x82: return "TIME";
    default: return "unknown";
  }
}

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kUnsynced: return "unsynced";
    case DropReason::kCobs: return "cobs";
    case DropReason::kTooShort: return "too_short";
    case DropReason::kTooLong: return "too_long";
    case DropReason::kCrc: return "crc";
    case DropReason::kBadVersion: return "bad_version";
  }
  return "?";
}

uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc) { return Crc32Castagnoli(data.data(), data.size(), crc); }

size_t CobsEncode(std::span<const uint8_t> in, uint8_t* out) {
  // Each block is a code byte (1 + the number of data bytes that follow it) and up to 254
  // non-zero bytes; a code below 0xFF stands for a zero after the block. A frame of at most
  // 254 bytes therefore always encodes to exactly size + 1 bytes.
  size_t code_pos = 0, o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == 0) {
      out[code_pos] = code;
      code_pos = o++;
      code = 1;
      continue;
    }
    out[o++] = in[i];
    if (++code == 0xFF && i + 1 < in.size()) {
      out[code_pos] = code;
      code_pos = o++;
      code = 1;
    }
  }
  out[code_pos] = code;
  return o;
}

long CobsDecode(std::span<const uint8_t> in, uint8_t* out) {
  size_t i = 0, o = 0;
  const size_t n = in.size();
  while (i < n) {
    const uint8_t code = in[i++];
    if (code == 0 || i + code - 1 > n) return -1;
    for (uint8_t k = 1; k < code; ++k) {
      if (in[i] == 0) return -1;
      out[o++] = in[i++];
    }
    if (code != 0xFF && i < n) out[o++] = 0;
  }
  return static_cast<long>(o);
}

// ---- FrameDecoder ----

uint64_t FrameDecoder::Stats::corrupt() const {
  uint64_t n = 0;
  for (int i = 1; i < kDropReasonCount; ++i) n += dropped_segments[i];
  return n;
}

FrameDecoder::FrameDecoder(Reporter* reporter) : reporter_(reporter) {}

void FrameDecoder::Reset() {
  synced_ = false;
  overflow_ = false;
  overflow_bytes_ = 0;
  len_ = 0;
}

void FrameDecoder::Drop(DropReason reason, size_t bytes) {
  if (!synced_) reason = DropReason::kUnsynced;
  stats_.dropped_segments[static_cast<int>(reason)]++;
  stats_.dropped_bytes[static_cast<int>(reason)] += bytes;
  if (reporter_) reporter_->Dropped(reason, bytes, std::span<const uint8_t>(buf_.data(), std::min(len_, buf_.size())));
}

void FrameDecoder::Feed(std::span<const uint8_t> data, const std::function<void(const FrameView&)>& on_frame) {
  stats_.bytes += data.size();
  const uint8_t* p = data.data();
  const uint8_t* const end = p + data.size();
  while (p < end) {
    const uint8_t* zero = static_cast<const uint8_t*>(std::memchr(p, 0, static_cast<size_t>(end - p)));
    const uint8_t* seg_end = zero ? zero : end;
    const size_t n = static_cast<size_t>(seg_end - p);
    if (!overflow_ && len_ + n > kMaxRawFrame + 1) {
      // Longer than any valid encoded frame: keep the start as a sample, count the rest.
      overflow_ = true;
      overflow_bytes_ = len_;
    }
    if (overflow_) {
      const size_t keep = std::min(n, buf_.size() - std::min(len_, buf_.size()));
      std::memcpy(buf_.data() + len_, p, keep);
      len_ += keep;
      overflow_bytes_ += n;
    } else {
      std::memcpy(buf_.data() + len_, p, n);
      len_ += n;
    }
    p = seg_end;
    if (zero) {
      ++p;
      EndSegment(on_frame);
    }
  }
}

void FrameDecoder::EndSegment(const std::function<void(const FrameView&)>& on_frame) {
  auto finish = [this] {
    synced_ = true;
    overflow_ = false;
    overflow_bytes_ = 0;
    len_ = 0;
  };
  if (overflow_) {
    Drop(DropReason::kTooLong, overflow_bytes_ + 1);
    return finish();
  }
  if (len_ == 0) return finish();  // back-to-back delimiters: allowed padding, nothing lost
  const long raw_len = CobsDecode(std::span<const uint8_t>(buf_.data(), len_), raw_.data());
  DropReason reason;
  if (raw_len < 0) {
    reason = DropReason::kCobs;
  } else if (static_cast<size_t>(raw_len) < kMinRawFrame) {
    reason = DropReason::kTooShort;
  } else {
    const size_t body = static_cast<size_t>(raw_len) - kCrcBytes;
    if (Crc32c(std::span<const uint8_t>(raw_.data(), body)) != Load32(raw_.data() + body)) {
      reason = DropReason::kCrc;
    } else if (raw_[0] != kVersion) {
      reason = DropReason::kBadVersion;
    } else {
      FrameView f;
      f.version = raw_[0];
      f.type = raw_[1];
      f.seq = static_cast<uint16_t>(raw_[2] | raw_[3] << 8);
      f.payload = std::span<const uint8_t>(raw_.data() + kHeaderBytes, body - kHeaderBytes);
      f.raw = std::span<const uint8_t>(raw_.data(), static_cast<size_t>(raw_len));
      f.wire_bytes = len_ + 1;
      synced_ = true;
      stats_.frames++;
      finish();
      on_frame(f);
      return;
    }
  }
  Drop(reason, len_ + 1);
  finish();
}

std::vector<uint8_t> EncodeFrame(uint8_t type, uint16_t seq, std::span<const uint8_t> payload) {
  if (payload.size() + kMinRawFrame > kMaxRawFrame) return {};
  uint8_t raw[kMaxRawFrame];
  raw[0] = kVersion;
  raw[1] = type;
  raw[2] = uint8_t(seq);
  raw[3] = uint8_t(seq >> 8);
  if (!payload.empty()) std::memcpy(raw + kHeaderBytes, payload.data(), payload.size());
  const size_t body = kHeaderBytes + payload.size();
  const uint32_t crc = Crc32c(std::span<const uint8_t>(raw, body));
  for (int i = 0; i < 4; ++i) raw[body + i] = uint8_t(crc >> (8 * i));
  std::vector<uint8_t> out(body + kCrcBytes + 2);
  const size_t n = CobsEncode(std::span<const uint8_t>(raw, body + kCrcBytes), out.data());
  out.resize(n + 1);
  out[n] = 0;
  return out;
}

// ---- Messages ----

std::vector<uint8_t> EncodeHello(const Hello& m) {
  Writer w;
  w.U8(m.proto_max);
  w.U8(m.flags);
  w.U32(m.boot_id);
  w.U64(m.uptime_ms);
  w.U32(m.next_seq);
  w.U32(m.tail_seq);
  w.U16(m.ring_capacity);
  w.U8(m.sensor_count);
  w.U32(m.prev_boot_id);
  w.U32(m.prev_last_seq);
  w.Str(m.fw_id, kMaxName);
  w.Str(m.fw_version, kMaxName);
  return w.Take();
}

std::vector<uint8_t> EncodeSensor(const SensorInfo& m) {
  Writer w;
  w.U32(m.boot_id);
  w.U8(m.index);
  w.U8(static_cast<uint8_t>(m.kind));
  w.U32(static_cast<uint32_t>(m.scale_num));
  w.U32(static_cast<uint32_t>(m.scale_den));
  w.Str(m.name, kMaxName);
  w.Str(m.unit, kMaxUnit);
  return w.Take();
}

std::vector<uint8_t> EncodeReadings(const Readings& m) {
  Writer w;
  w.U32(m.boot_id);
  w.U8(m.flags);
  w.U64(m.frame_time_ms);
  w.U32(m.tail_seq);
  w.U32(m.first_seq);
  const size_t n = std::min(m.readings.size(), kMaxReadingsPerFrame);
  w.U8(uint8_t(n));
  for (size_t i = 0; i < n; ++i) {
    w.U8(m.readings[i].sensor);
    w.U32(m.readings[i].age_ms);
    w.U32(m.readings[i].value);
  }
  return w.Take();
}

std::vector<uint8_t> EncodeAck(const Ack& m) {
  Writer w;
  w.U32(m.boot_id);
  w.U32(m.acked_seq);
  w.U32(m.next_seq);
  w.U8(m.flags);
  return w.Take();
}

std::vector<uint8_t> EncodeTime(const Time& m) {
  Writer w;
  w.U64(m.unix_ms);
  w.U8(m.flags);
  return w.Take();
}

Result<Hello> ParseHello(std::span<const uint8_t> payload) {
  Reader r(payload, "HELLO");
  Hello m;
  m.proto_max = r.U8();
  m.flags = r.U8();
  m.boot_id = r.U32();
  m.uptime_ms = r.U64();
  m.next_seq = r.U32();
  m.tail_seq = r.U32();
  m.ring_capacity = r.U16();
  m.sensor_count = r.U8();
  m.prev_boot_id = r.U32();
  m.prev_last_seq = r.U32();
  m.fw_id = r.Str("firmware id", 0, kMaxName);
  m.fw_version = r.Str("firmware version", 0, kMaxName);
  if (r.status().ok()) {
    if (m.boot_id == 0) r.Fail("boot id 0 (must be non-zero)");
    if (m.uptime_ms > kMaxTimeMs) r.Fail(StrFormat("uptime_ms %" PRIu64 " beyond %" PRIu64, m.uptime_ms, kMaxTimeMs));
    if (m.sensor_count == 0) r.Fail("sensor count 0");
    if (SeqDiff(m.next_seq, m.tail_seq) < 0) r.Fail(StrFormat("tail_seq %u after next_seq %u", m.tail_seq, m.next_seq));
  }
  EP_RETURN_IF_ERROR(r.status());
  return m;
}

Result<SensorInfo> ParseSensor(std::span<const uint8_t> payload) {
  Reader r(payload, "SENSOR");
  SensorInfo m;
  m.boot_id = r.U32();
  m.index = r.U8();
  const uint8_t kind = r.U8();
  m.scale_num = static_cast<int32_t>(r.U32());
  m.scale_den = static_cast<int32_t>(r.U32());
  m.name = r.Str("sensor name", 1, kMaxName);
  m.unit = r.Str("unit", 0, kMaxUnit);
  if (r.status().ok()) {
    if (kind > 2) r.Fail(StrFormat("sensor %u: unknown kind %u", m.index, kind));
    if (m.scale_num == 0) r.Fail(StrFormat("sensor %u: scale numerator 0", m.index));
    if (m.scale_den <= 0) r.Fail(StrFormat("sensor %u: scale denominator %d (must be > 0)", m.index, m.scale_den));
  }
  m.kind = static_cast<SensorKind>(kind);
  EP_RETURN_IF_ERROR(r.status());
  return m;
}

Result<Readings> ParseReadings(std::span<const uint8_t> payload) {
  Reader r(payload, "READINGS");
  Readings m;
  m.boot_id = r.U32();
  m.flags = r.U8();
  m.frame_time_ms = r.U64();
  m.tail_seq = r.U32();
  m.first_seq = r.U32();
  const uint8_t n = r.U8();
  if (r.status().ok() && m.frame_time_ms > kMaxTimeMs)
    r.Fail(StrFormat("frame_time_ms %" PRIu64 " beyond %" PRIu64, m.frame_time_ms, kMaxTimeMs));
  if (r.status().ok() && (n == 0 || n > kMaxReadingsPerFrame))
    r.Fail(StrFormat("count %u (allowed 1 to %zu)", n, kMaxReadingsPerFrame));
  if (r.status().ok() && payload.size() < r.offset() + n * 9u)
    r.Fail(StrFormat("payload of %zu bytes too short for %u readings (%zu needed)", payload.size(), n, r.offset() + n * 9u));
  EP_RETURN_IF_ERROR(r.status());
  m.readings.resize(n);
  for (WireReading& w : m.readings) {
    w.sensor = r.U8();
    w.age_ms = r.U32();
    w.value = r.U32();
  }
  if (SeqDiff(m.first_seq, m.tail_seq) < 0)
    r.Fail(StrFormat("first_seq %u before tail_seq %u", m.first_seq, m.tail_seq));
  EP_RETURN_IF_ERROR(r.status());
  return m;
}

Result<Ack> ParseAck(std::span<const uint8_t> payload) {
  Reader r(payload, "ACK");
  Ack m;
  m.boot_id = r.U32();
  m.acked_seq = r.U32();
  m.next_seq = r.U32();
  m.flags = r.U8();
  EP_RETURN_IF_ERROR(r.status());
  return m;
}

Result<Time> ParseTime(std::span<const uint8_t> payload) {
  Reader r(payload, "TIME");
  Time m;
  m.unix_ms = r.U64();
  m.flags = r.U8();
  EP_RETURN_IF_ERROR(r.status());
  return m;
}

std::string Hex(std::span<const uint8_t> bytes, size_t max_bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  const size_t n = std::min(bytes.size(), max_bytes);
  s.reserve(n * 3 + 3);
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kDigits[bytes[i] >> 4];
    s += kDigits[bytes[i] & 15];
  }
  if (bytes.size() > n) s += " ...";
  return s;
}

}  // namespace edgepipe::fb::proto
