// The MCU wire protocol v1 (docs/protocol.md), agent side: a pure bytes <-> frames codec with no
// I/O, so it is unit-tested and fuzzed directly. The firmware side is the C library in
// firmware-bridge/mcu/ (an independent implementation of the same spec; tests cross-check them).
//
// Framing: each frame is COBS-encoded and followed by one 0x00 delimiter. Before COBS a frame is
//   version (u8) | type (u8) | frame_seq (u16 LE) | payload | CRC-32C (u32 LE) of everything before it
// and 8..254 bytes long, so a frame on the wire is at most 256 bytes with its delimiter.
//
// Decoder invariants:
//  1. Every byte fed is either part of a delivered frame, a delimiter, or reported to the Reporter
//     exactly once (as part of one dropped segment) — nothing is skipped silently.
//  2. The decoder resynchronises at the next 0x00 after any error; a bad frame never affects the
//     next one.
//  3. The result does not depend on how the input is split into Feed() calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/status.h"

namespace edgepipe::fb::proto {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 4;
constexpr size_t kCrcBytes = 4;
constexpr size_t kMinRawFrame = kHeaderBytes + kCrcBytes;  // 8
constexpr size_t kMaxRawFrame = 254;
constexpr size_t kMaxWireFrame = kMaxRawFrame + 2;          // COBS code byte + delimiter
constexpr size_t kMaxReadingsPerFrame = 24;
constexpr size_t kMaxName = 32;
constexpr size_t kMaxUnit = 16;
// Times in ms (MCU uptime or Unix time) above this are malformed: 10^13 ms is 317 years of
// uptime or the year 2286, and keeps every later conversion to microseconds far from overflow.
constexpr uint64_t kMaxTimeMs = 10'000'000'000'000ull;

enum class MsgType : uint8_t {
  kHello = 0x01,     // MCU -> agent
  kSensor = 0x02,    // MCU -> agent
  kReadings = 0x03,  // MCU -> agent
  kAck = 0x81,       // agent -> MCU
  kTime = 0x82,      // agent -> MCU
};
const char* MsgTypeName(uint8_t type);  // "HELLO", ..., "unknown"

enum class SensorKind : uint8_t { kInt32 = 0, kFloat32 = 1, kBool = 2 };

// HELLO.flags
constexpr uint8_t kHelloTimeSet = 0x01;     // the MCU has wall-clock time
constexpr uint8_t kHelloStampsWall = 0x02;  // READINGS use wall time once the MCU has it
// READINGS.flags
constexpr uint8_t kReadingsWall = 0x01;     // frame_time_ms is Unix ms (else MCU uptime ms)
// ACK.flags
constexpr uint8_t kAckResend = 0x01;        // resend from next_seq now
// TIME.flags
constexpr uint8_t kTimeHelloRequest = 0x01; // send HELLO + SENSORs, then resend every unacked reading

// CRC-32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF); check("123456789") = 0xE3069283.
// `crc` continues an earlier result (0 to start).
uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc = 0);

// COBS for one frame (input at most kMaxRawFrame bytes): `out` receives input.size() + 1 bytes,
// no delimiter. Returns the number written.
size_t CobsEncode(std::span<const uint8_t> in, uint8_t* out);
// Decodes one COBS block sequence (without delimiter) into `out` (capacity >= in.size()).
// Returns the decoded length, or -1 when `in` is not valid COBS (a zero byte or a code that
// runs past the end).
long CobsDecode(std::span<const uint8_t> in, uint8_t* out);

// ---- Frames ----

// A decoded frame; the spans point into the decoder and are valid only during the callback.
struct FrameView {
  uint8_t version = 0;
  uint8_t type = 0;
  uint16_t seq = 0;
  std::span<const uint8_t> payload;
  std::span<const uint8_t> raw;   // header + payload + CRC
  size_t wire_bytes = 0;          // encoded length including the delimiter
};

enum class DropReason : uint8_t {
  kUnsynced,    // bytes before the first delimiter that do not form a valid frame (not an error)
  kCobs,        // not valid COBS
  kTooShort,    // fewer than 8 bytes after COBS decoding
  kTooLong,     // more than 256 bytes without a delimiter
  kCrc,         // CRC-32C mismatch
  kBadVersion,  // valid CRC, version byte is not 1
};
constexpr int kDropReasonCount = 6;
const char* DropReasonName(DropReason r);  // "unsynced", "cobs", "too_short", "too_long", "crc", "bad_version"

// Told about every byte the decoder could not turn into a frame (LevelDB log::Reader::Reporter).
class Reporter {
 public:
  virtual ~Reporter() = default;
  // One dropped segment: `bytes` counts everything dropped including its delimiter (if seen);
  // `sample` holds its first bytes (at most kMaxWireFrame) for logs and quarantine records.
  virtual void Dropped(DropReason reason, size_t bytes, std::span<const uint8_t> sample) = 0;
};

class FrameDecoder {
 public:
  // `reporter` may be null (drops are then only counted in stats()).
  explicit FrameDecoder(Reporter* reporter = nullptr);

  // Consumes `data` (any split), calling `on_frame` for each valid frame, in order.
  void Feed(std::span<const uint8_t> data, const std::function<void(const FrameView&)>& on_frame);

  // Forgets a partial frame and treats what follows as unsynchronised (after reopening a port).
  void Reset();

  struct Stats {
    uint64_t frames = 0;
    uint64_t bytes = 0;                                // fed
    uint64_t dropped_segments[kDropReasonCount] = {};  // per DropReason
    uint64_t dropped_bytes[kDropReasonCount] = {};
    // Corrupt frames: every dropped segment except kUnsynced.
    uint64_t corrupt() const;
  };
  const Stats& stats() const { return stats_; }

 private:
  void EndSegment(const std::function<void(const FrameView&)>& on_frame);
  void Drop(DropReason reason, size_t bytes);

  Reporter* reporter_;
  bool synced_ = false;   // a delimiter has been seen since construction / Reset()
  bool overflow_ = false; // the current segment exceeded kMaxWireFrame
  size_t overflow_bytes_ = 0;
  size_t len_ = 0;
  std::array<uint8_t, kMaxWireFrame> buf_{};   // encoded bytes of the current segment
  std::array<uint8_t, kMaxWireFrame> raw_{};   // decoded frame
  Stats stats_;
};

// Builds a complete wire frame (COBS + delimiter) around `payload` (at most kMaxRawFrame - 8
// bytes; longer payloads are a programming error and give an empty result).
std::vector<uint8_t> EncodeFrame(uint8_t type, uint16_t seq, std::span<const uint8_t> payload);

// ---- Messages ----

struct Hello {
  uint8_t proto_max = kVersion;
  uint8_t flags = 0;
  uint32_t boot_id = 0;
  uint64_t uptime_ms = 0;
  uint32_t next_seq = 1;
  uint32_t tail_seq = 1;
  uint16_t ring_capacity = 0;
  uint8_t sensor_count = 0;
  uint32_t prev_boot_id = 0;   // the previous boot (0 = unknown)
  uint32_t prev_last_seq = 0;  // last sequence number the previous boot generated
  std::string fw_id;
  std::string fw_version;
  bool operator==(const Hello&) const = default;
};

struct SensorInfo {
  uint32_t boot_id = 0;
  uint8_t index = 0;
  SensorKind kind = SensorKind::kInt32;
  int32_t scale_num = 1;
  int32_t scale_den = 1;
  std::string name;
  std::string unit;
  bool operator==(const SensorInfo&) const = default;
};

struct WireReading {
  uint8_t sensor = 0;
  uint32_t age_ms = 0;  // how long before frame_time_ms it was taken
  uint32_t value = 0;   // int32 / float32 bits / bool, per the sensor's kind
  bool operator==(const WireReading&) const = default;
};

struct Readings {
  uint32_t boot_id = 0;
  uint8_t flags = 0;
  uint64_t frame_time_ms = 0;
  uint32_t tail_seq = 0;   // oldest reading the MCU still holds
  uint32_t first_seq = 0;  // sequence number of readings[0]; the rest follow consecutively
  std::vector<WireReading> readings;
  bool operator==(const Readings&) const = default;
};

struct Ack {
  uint32_t boot_id = 0;
  uint32_t acked_seq = 0;  // highest sequence number durably stored (0 = none yet)
  uint32_t next_seq = 0;   // what the agent expects next
  uint8_t flags = 0;
  bool operator==(const Ack&) const = default;
};

struct Time {
  uint64_t unix_ms = 0;
  uint8_t flags = 0;
  bool operator==(const Time&) const = default;
};

// Payload encoders (the frame header and CRC are added by EncodeFrame).
std::vector<uint8_t> EncodeHello(const Hello& m);
std::vector<uint8_t> EncodeSensor(const SensorInfo& m);
std::vector<uint8_t> EncodeReadings(const Readings& m);  // at most kMaxReadingsPerFrame readings
std::vector<uint8_t> EncodeAck(const Ack& m);
std::vector<uint8_t> EncodeTime(const Time& m);

// Payload parsers: kInvalidArgument naming the message and what is wrong. Bytes after the known
// fields are ignored (room for compatible additions within version 1).
Result<Hello> ParseHello(std::span<const uint8_t> payload);
Result<SensorInfo> ParseSensor(std::span<const uint8_t> payload);
Result<Readings> ParseReadings(std::span<const uint8_t> payload);
Result<Ack> ParseAck(std::span<const uint8_t> payload);
Result<Time> ParseTime(std::span<const uint8_t> payload);

// Sequence numbers are 32-bit serial numbers (RFC 1982): a precedes b when (int32)(a - b) < 0.
inline int32_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

// "0a 00 ff" (for logs and quarantine records), at most `max_bytes` bytes then "...".
std::string Hex(std::span<const uint8_t> bytes, size_t max_bytes = 64);

}  // namespace edgepipe::fb::proto
