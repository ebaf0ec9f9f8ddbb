// The agent-side codec (firmware_bridge/protocol.h): CRC, COBS, the frame decoder's corruption
// handling, resynchronisation and limits, message layouts, and golden frames (tests/data/frames/).
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"
#include "serial_test_util.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;
using namespace edgepipe::fb::proto;
using namespace edgepipe::testing;
using Bytes = std::vector<uint8_t>;

namespace {

struct Drop {
  DropReason reason;
  size_t bytes;
};

// Collects frames and drops.
struct Collector : Reporter {
  std::vector<Bytes> frames;  // raw frames (header + payload + CRC)
  std::vector<Drop> drops;
  size_t frame_wire_bytes = 0;
  FrameDecoder decoder{this};
  void Dropped(DropReason r, size_t b, std::span<const uint8_t>) override { drops.push_back({r, b}); }
  void Feed(const Bytes& b) { Feed(b.data(), b.size()); }
  void Feed(const uint8_t* p, size_t n) {
    decoder.Feed(std::span<const uint8_t>(p, n), [&](const FrameView& f) {
      frames.emplace_back(f.raw.begin(), f.raw.end());
      frame_wire_bytes += f.wire_bytes;
    });
  }
  size_t dropped_bytes() const {
    size_t n = 0;
    for (const Drop& d : drops) n += d.bytes;
    return n;
  }
};

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Frame(uint8_t type, uint16_t seq, const Bytes& payload) { return EncodeFrame(type, seq, payload); }

Bytes SampleReadingsFrame(uint16_t seq = 3) { return Frame(0x03, seq, EncodeReadings(GoldenReadings())); }

// Raw (pre-COBS) bytes of a wire frame.
Bytes RawOf(const Bytes& wire) {
  Bytes raw(wire.size());
  long n = CobsDecode(std::span<const uint8_t>(wire.data(), wire.size() - 1), raw.data());
  CHECK(n >= 0);
  raw.resize(static_cast<size_t>(n));
  return raw;
}

}  // namespace

TEST_GROUP(Crc32c){};

TEST(Crc32c, CheckValueAndIncremental) {
  const std::string s = "123456789";
  const Bytes b(s.begin(), s.end());
  UNSIGNED_LONGS_EQUAL(0xE3069283u, Crc32c(b));
  UNSIGNED_LONGS_EQUAL(0xE3069283u, Crc32c(std::span<const uint8_t>(b).subspan(4), Crc32c(std::span<const uint8_t>(b).first(4))));
  UNSIGNED_LONGS_EQUAL(0u, Crc32c({}));
  // Slicing-by-8 and the byte loop agree on every length and alignment.
  std::mt19937 rng(1);
  Bytes data(300);
  for (auto& x : data) x = uint8_t(rng());
  for (size_t off = 0; off < 8; ++off)
    for (size_t len = 0; len + off <= data.size(); len += 7) {
      uint32_t slow = ~0u;
      for (size_t i = off; i < off + len; ++i) {
        slow ^= data[i];
        for (int k = 0; k < 8; ++k) slow = (slow >> 1) ^ (0x82F63B78u & (0u - (slow & 1u)));
      }
      UNSIGNED_LONGS_EQUAL(~slow, Crc32c(std::span<const uint8_t>(data.data() + off, len)));
    }
}

TEST_GROUP(Cobs){};

TEST(Cobs, KnownVectors) {
  // Vectors from the COBS paper / Wikipedia.
  const std::vector<std::pair<Bytes, Bytes>> cases = {
      {{0x00}, {0x01, 0x01}},
      {{0x00, 0x00}, {0x01, 0x01, 0x01}},
      {{0x11, 0x22, 0x00, 0x33}, {0x03, 0x11, 0x22, 0x02, 0x33}},
      {{0x11, 0x22, 0x33, 0x44}, {0x05, 0x11, 0x22, 0x33, 0x44}},
      {{0x11, 0x00, 0x00, 0x00}, {0x02, 0x11, 0x01, 0x01, 0x01}},
      {{}, {0x01}},
  };
  for (const auto& [in, want] : cases) {
    Bytes out(in.size() + 2);
    out.resize(CobsEncode(in, out.data()));
    CHECK(want == out);
    Bytes back(out.size());
    LONGS_EQUAL(static_cast<long>(in.size()), CobsDecode(out, back.data()));
    back.resize(in.size());
    CHECK(in == back);
  }
}

TEST(Cobs, RoundTripsEveryLengthUpToTheFrameLimitWithOneByteOverhead) {
  std::mt19937 rng(7);
  for (size_t len = 0; len <= kMaxRawFrame; ++len) {
    for (int variant = 0; variant < 3; ++variant) {
      Bytes in(len);
      for (auto& b : in) b = variant == 0 ? uint8_t(1 + rng() % 255) : variant == 1 ? 0 : uint8_t(rng() % 4);
      Bytes enc(len + 2);
      const size_t n = CobsEncode(in, enc.data());
      LONGS_EQUAL(len + 1, n);  // frames up to 254 bytes: always exactly one byte of overhead
      for (size_t i = 0; i < n; ++i) CHECK(enc[i] != 0);
      Bytes dec(n);
      LONGS_EQUAL(static_cast<long>(len), CobsDecode(std::span<const uint8_t>(enc.data(), n), dec.data()));
      dec.resize(len);
      CHECK(in == dec);
    }
  }
}

TEST(Cobs, RejectsInvalidInput) {
  Bytes out(16);
  LONGS_EQUAL(-1, CobsDecode(Bytes{0x05, 0x11, 0x22}, out.data()));        // code runs past the end
  LONGS_EQUAL(-1, CobsDecode(Bytes{0x03, 0x11, 0x00, 0x01}, out.data()));  // zero inside
  LONGS_EQUAL(-1, CobsDecode(Bytes{0x00}, out.data()));
}

TEST_GROUP(FrameDecoder){};

TEST(FrameDecoder, RoundTripsEveryMessageType) {
  Collector c;
  const Bytes stream = Concat({Frame(0x01, 0, EncodeHello(GoldenHello())), Frame(0x02, 1, EncodeSensor(GoldenSensor(0))),
                               SampleReadingsFrame(), Frame(0x81, 9, EncodeAck({1, 2, 3, 1})),
                               Frame(0x82, 10, EncodeTime({1764129600123ull, 1}))});
  c.Feed(stream);
  LONGS_EQUAL(5, c.frames.size());
  LONGS_EQUAL(0, c.drops.size());
  LONGS_EQUAL(stream.size(), c.frame_wire_bytes);
  CHECK(ParseHello(std::span<const uint8_t>(c.frames[0]).subspan(4, c.frames[0].size() - 8)).value() == GoldenHello());
  CHECK(ParseSensor(std::span<const uint8_t>(c.frames[1]).subspan(4, c.frames[1].size() - 8)).value() == GoldenSensor(0));
  CHECK(ParseReadings(std::span<const uint8_t>(c.frames[2]).subspan(4, c.frames[2].size() - 8)).value() == GoldenReadings());
  CHECK((ParseAck(std::span<const uint8_t>(c.frames[3]).subspan(4, 13)).value() == Ack{1, 2, 3, 1}));
  CHECK((ParseTime(std::span<const uint8_t>(c.frames[4]).subspan(4, 9)).value() == Time{1764129600123ull, 1}));
  LONGS_EQUAL(5, c.decoder.stats().frames);
  LONGS_EQUAL(0, c.decoder.stats().corrupt());
}

TEST(FrameDecoder, EverySingleBitFlipIsDetectedAndTheNextFrameSurvives) {
  const Bytes good = SampleReadingsFrame();
  const Bytes next = Frame(0x81, 1, EncodeAck({7, 8, 9, 0}));
  for (size_t i = 0; i + 1 < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = good;
      bad[i] ^= uint8_t(1u << bit);
      Collector c;
      c.Feed(next);  // synchronise first, so drops are counted as corrupt, not unsynced
      c.Feed(bad);
      c.Feed(next);
      LONGS_EQUAL(2, c.frames.size());  // the damaged frame never comes out, in any form
      CHECK(c.frames[1] == RawOf(next));
      CHECK(!c.drops.empty());
      // A flip that creates a 0x00 splits the frame in two segments (the first empty when the
      // flip hit byte 0: an empty segment is just a delimiter). Every other byte is accounted for.
      size_t segments = 0, bytes = 0, len = 0;
      for (uint8_t b : bad) {
        if (b != 0) {
          ++len;
          continue;
        }
        if (len) ++segments, bytes += len + 1;
        len = 0;
      }
      LONGS_EQUAL(segments, c.drops.size());
      LONGS_EQUAL(bytes, c.dropped_bytes());
      LONGS_EQUAL(bad[i] == 0 && i > 0 ? 2 : 1, segments);
      for (const Drop& d : c.drops) CHECK(d.reason != DropReason::kUnsynced);
    }
  }
}

TEST(FrameDecoder, EveryDroppedByteIsDetected) {
  const Bytes good = SampleReadingsFrame();
  for (size_t i = 0; i + 1 < good.size(); ++i) {
    Bytes bad = good;
    bad.erase(bad.begin() + static_cast<long>(i));
    Collector c;
    c.Feed(Bytes{0});
    c.Feed(bad);
    c.Feed(good);
    LONGS_EQUAL(1, c.frames.size());
    LONGS_EQUAL(1, c.drops.size());
    LONGS_EQUAL(bad.size(), c.drops[0].bytes);
  }
}

TEST(FrameDecoder, EachCorruptionReasonWithExactByteCounts) {
  const Bytes good = SampleReadingsFrame();
  Collector c;
  c.Feed(Bytes{0});  // synchronised

  Bytes crc = good;  // flip a payload bit that does not make a zero
  crc[10] = crc[10] == 0x01 ? 0x03 : uint8_t(crc[10] ^ 0x01);
  c.Feed(crc);
  Bytes short_frame = Frame(0x81, 0, {});  // 8 bytes raw: the minimum is fine...
  c.Feed(short_frame);
  c.Feed(Bytes{0x04, 0x01, 0x01, 0x01, 0x00});  // ...3 raw bytes are too short
  c.Feed(Bytes{0x09, 0x11, 0x22, 0x00});        // COBS code runs past the end
  Bytes too_long(300, 0x55);
  too_long.push_back(0);
  c.Feed(too_long);
  Bytes raw = RawOf(good);  // version 2 with a valid CRC
  raw[0] = 2;
  const uint32_t crc2 = Crc32c(std::span<const uint8_t>(raw.data(), raw.size() - 4));
  for (int i = 0; i < 4; ++i) raw[raw.size() - 4 + i] = uint8_t(crc2 >> (8 * i));
  Bytes v2(raw.size() + 2);
  v2.resize(CobsEncode(raw, v2.data()));
  v2.push_back(0);
  c.Feed(v2);
  c.Feed(good);

  LONGS_EQUAL(2, c.frames.size());
  LONGS_EQUAL(5, c.drops.size());
  const std::vector<std::pair<DropReason, size_t>> want = {{DropReason::kCrc, crc.size()},
                                                           {DropReason::kTooShort, 5},
                                                           {DropReason::kCobs, 4},
                                                           {DropReason::kTooLong, 301},
                                                           {DropReason::kBadVersion, v2.size()}};
  for (size_t i = 0; i < want.size(); ++i) {
    STRCMP_EQUAL(DropReasonName(want[i].first), DropReasonName(c.drops[i].reason));
    LONGS_EQUAL(want[i].second, c.drops[i].bytes);
  }
  LONGS_EQUAL(5, c.decoder.stats().corrupt());
  LONGS_EQUAL(301, c.decoder.stats().dropped_bytes[static_cast<int>(DropReason::kTooLong)]);
}

TEST(FrameDecoder, GarbageBeforeTheFirstDelimiterIsUnsyncedNotCorrupt) {
  Collector c;
  c.Feed(Bytes{0x13, 0x37, 0x42});   // the tail of a frame cut when the port opened
  c.Feed(SampleReadingsFrame());     // its delimiter ends the unsynchronised part
  LONGS_EQUAL(0, c.frames.size());
  LONGS_EQUAL(1, c.drops.size());
  CHECK(c.drops[0].reason == DropReason::kUnsynced);
  LONGS_EQUAL(0, c.decoder.stats().corrupt());
  c.Feed(SampleReadingsFrame());
  LONGS_EQUAL(1, c.frames.size());

  Collector aligned;  // the port opened exactly at a frame boundary: nothing is lost
  aligned.Feed(SampleReadingsFrame());
  LONGS_EQUAL(1, aligned.frames.size());
  LONGS_EQUAL(0, aligned.drops.size());

  Collector reset;  // Reset() (port reopened) drops back to unsynchronised
  reset.Feed(Bytes{0});
  reset.Feed(Bytes{0x05, 0x01});
  reset.decoder.Reset();
  reset.Feed(Bytes{0x07, 0x00});
  LONGS_EQUAL(1, reset.drops.size());
  CHECK(reset.drops[0].reason == DropReason::kUnsynced);
  LONGS_EQUAL(2, reset.drops[0].bytes);  // the partial frame before Reset() is forgotten, not counted
}

TEST(FrameDecoder, ResynchronisesAfterGarbageBetweenFrames) {
  std::mt19937 rng(3);
  Bytes stream{0};
  size_t garbage_segments = 0;
  for (int i = 0; i < 200; ++i) {
    if (i % 3 == 0) {
      Bytes g(1 + rng() % 400);
      for (auto& b : g) b = uint8_t(1 + rng() % 255);
      g.push_back(0);
      stream.insert(stream.end(), g.begin(), g.end());
      ++garbage_segments;
    }
    Bytes f = Frame(0x03, uint16_t(i), EncodeReadings(GoldenReadings()));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  Collector c;
  c.Feed(stream);
  LONGS_EQUAL(200, c.frames.size());
  LONGS_EQUAL(garbage_segments, c.drops.size());
  LONGS_EQUAL(stream.size(), c.frame_wire_bytes + c.dropped_bytes() + 1);  // + the leading delimiter
}

TEST(FrameDecoder, SameResultForEverySplitOfTheInput) {
  Bytes bad = SampleReadingsFrame(4);
  bad[5] ^= 0x10;
  if (bad[5] == 0) bad[5] = 0x77;
  const Bytes stream = Concat({Bytes{0x42, 0x43, 0}, Frame(0x01, 0, EncodeHello(GoldenHello())), Bytes{0, 0},
                               SampleReadingsFrame(), bad, Bytes(280, 0x61), Bytes{0}, SampleReadingsFrame(5)});
  Collector whole;
  whole.Feed(stream);
  LONGS_EQUAL(3, whole.frames.size());
  LONGS_EQUAL(3, whole.drops.size());
  for (size_t split = 0; split <= stream.size(); ++split) {
    Collector c;
    c.Feed(stream.data(), split);
    c.Feed(stream.data() + split, stream.size() - split);
    CHECK(c.frames == whole.frames);
    LONGS_EQUAL(whole.drops.size(), c.drops.size());
    for (size_t i = 0; i < c.drops.size(); ++i) LONGS_EQUAL(whole.drops[i].bytes, c.drops[i].bytes);
  }
  Collector bytewise;
  for (uint8_t b : stream) bytewise.Feed(&b, 1);
  CHECK(bytewise.frames == whole.frames);
  LONGS_EQUAL(whole.dropped_bytes(), bytewise.dropped_bytes());
}

TEST(FrameDecoder, LimitsAtTheMaximumFrameSize) {
  // The largest payload fits (254 raw bytes -> 255 encoded + delimiter = 256 on the wire).
  Bytes payload(kMaxRawFrame - kMinRawFrame, 0xA5);
  const Bytes max = Frame(0x7F, 1, payload);
  LONGS_EQUAL(kMaxWireFrame, max.size());
  Collector c;
  c.Feed(max);
  LONGS_EQUAL(1, c.frames.size());
  LONGS_EQUAL(kMaxRawFrame, c.frames[0].size());
  // One byte more cannot be encoded...
  payload.push_back(0xA5);
  CHECK(Frame(0x7F, 1, payload).empty());
  // ...and a 256-byte segment without a delimiter is too long for any valid frame.
  Bytes seg(kMaxWireFrame, 0x11);
  seg.push_back(0);
  c.Feed(seg);
  LONGS_EQUAL(1, c.drops.size());
  CHECK(c.drops[0].reason == DropReason::kTooLong);
  // A long run of garbage is one drop, and the decoder's memory stays bounded.
  Bytes huge(1 << 20, 0x33);
  c.Feed(huge);
  c.Feed(Bytes{0});
  LONGS_EQUAL(2, c.drops.size());
  LONGS_EQUAL(huge.size() + 1, c.drops[1].bytes);
  c.Feed(max);
  LONGS_EQUAL(2, c.frames.size());
}

TEST_GROUP(Messages){};

TEST(Messages, TruncatedPayloadsAreRejectedWithTheMessageName) {
  const Bytes hello = EncodeHello(GoldenHello()), sensor = EncodeSensor(GoldenSensor(0)),
              readings = EncodeReadings(GoldenReadings()), ack = EncodeAck({1, 2, 3, 0}), time = EncodeTime({5, 0});
  for (size_t n = 0; n < hello.size(); ++n) {
    auto r = ParseHello(std::span<const uint8_t>(hello.data(), n));
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().rfind("HELLO: ", 0) == 0);
  }
  for (size_t n = 0; n < sensor.size(); ++n) CHECK_FALSE(ParseSensor(std::span<const uint8_t>(sensor.data(), n)).ok());
  for (size_t n = 0; n < readings.size(); ++n) {
    auto r = ParseReadings(std::span<const uint8_t>(readings.data(), n));
    CHECK_FALSE(r.ok());
    CHECK(r.status().message().rfind("READINGS: ", 0) == 0);
  }
  for (size_t n = 0; n < ack.size(); ++n) CHECK_FALSE(ParseAck(std::span<const uint8_t>(ack.data(), n)).ok());
  for (size_t n = 0; n < time.size(); ++n) CHECK_FALSE(ParseTime(std::span<const uint8_t>(time.data(), n)).ok());
  // Bytes after the known fields are ignored (compatible additions within version 1).
  Bytes longer = ack;
  longer.push_back(0xEE);
  CHECK(ParseAck(longer).ok());
}

TEST(Messages, FieldRulesAreEnforced) {
  auto hello = GoldenHello();
  hello.boot_id = 0;
  CHECK(ParseHello(EncodeHello(hello)).status().message().find("boot id 0") != std::string::npos);
  hello = GoldenHello();
  hello.sensor_count = 0;
  CHECK_FALSE(ParseHello(EncodeHello(hello)).ok());
  hello = GoldenHello();
  hello.tail_seq = hello.next_seq + 1;
  CHECK_FALSE(ParseHello(EncodeHello(hello)).ok());
  hello = GoldenHello();
  hello.uptime_ms = kMaxTimeMs + 1;  // found by serial_link_fuzz: would overflow the clock mapping
  CHECK(ParseHello(EncodeHello(hello)).status().message().find("uptime_ms") != std::string::npos);
  auto far = GoldenReadings();
  far.frame_time_ms = ~0ull;
  CHECK(ParseReadings(EncodeReadings(far)).status().message().find("frame_time_ms") != std::string::npos);
  far.frame_time_ms = kMaxTimeMs;
  CHECK(ParseReadings(EncodeReadings(far)).ok());

  auto s = GoldenSensor(0);
  s.scale_den = 0;
  CHECK(ParseSensor(EncodeSensor(s)).status().message().find("denominator") != std::string::npos);
  s = GoldenSensor(0);
  s.scale_num = 0;
  CHECK_FALSE(ParseSensor(EncodeSensor(s)).ok());
  s = GoldenSensor(0);
  s.name = "";
  CHECK(ParseSensor(EncodeSensor(s)).status().message().find("sensor name of 0 bytes") != std::string::npos);
  s = GoldenSensor(0);
  s.name = "bad\nname";
  CHECK(ParseSensor(EncodeSensor(s)).status().message().find("printable") != std::string::npos);
  Bytes kind = EncodeSensor(GoldenSensor(0));
  kind[5] = 3;
  CHECK(ParseSensor(kind).status().message().find("unknown kind 3") != std::string::npos);
  Bytes long_name = EncodeSensor(GoldenSensor(0));  // a length byte above the limit
  long_name[14] = 40;
  long_name.insert(long_name.begin() + 15, 40 - 11, 'x');
  CHECK_FALSE(ParseSensor(long_name).ok());

  Bytes r = EncodeReadings(GoldenReadings());
  r[21] = 0;  // count 0
  CHECK(ParseReadings(r).status().message().find("count 0") != std::string::npos);
  r[21] = 25;
  CHECK_FALSE(ParseReadings(r).ok());
  auto rd = GoldenReadings();
  rd.first_seq = 0;
  rd.tail_seq = 1;
  CHECK(ParseReadings(EncodeReadings(rd)).status().message().find("before tail_seq") != std::string::npos);
}

TEST(Messages, SerialNumberArithmeticWraps) {
  LONGS_EQUAL(1, SeqDiff(0, 0xFFFFFFFFu));
  LONGS_EQUAL(-1, SeqDiff(0xFFFFFFFFu, 0));
  LONGS_EQUAL(5, SeqDiff(7, 2));
  STRCMP_EQUAL("0a 00 ff", Hex(Bytes{0x0a, 0x00, 0xff}).c_str());
  STRCMP_EQUAL("01 02 ...", Hex(Bytes{1, 2, 3}, 2).c_str());
}

TEST_GROUP(GoldenFrames){};

// The encoder's bytes for the golden messages are fixed; EDGEPIPE_REGEN_GOLDEN=1 rewrites the
// files (review the diff: it changes the wire format).
TEST(GoldenFrames, EncoderMatchesTheFilesAndTheFilesDecode) {
  const std::map<std::string, Bytes> golden = GoldenFrameSet();
  const bool regen = std::getenv("EDGEPIPE_REGEN_GOLDEN") != nullptr;
  for (const auto& [name, bytes] : golden) {
    const std::string path = SourceDir() + "/tests/data/frames/" + name;
    if (regen) WriteFile(path, std::string(bytes.begin(), bytes.end()));
    const std::string file = ReadFile(path);
    if (Bytes(file.begin(), file.end()) != bytes) FAIL(("golden frame differs: " + path).c_str());
  }
  // Valid goldens decode to exactly one frame; damaged ones to the documented drop.
  const std::map<std::string, std::pair<size_t, std::string>> expect = {
      {"hello.bin", {1, ""}},           {"sensor-0.bin", {1, ""}},       {"sensor-1.bin", {1, ""}},
      {"readings.bin", {1, ""}},        {"ack.bin", {1, ""}},            {"ack-resend.bin", {1, ""}},
      {"time.bin", {1, ""}},            {"time-hello-request.bin", {1, ""}},
      {"bad-crc.bin", {0, "crc"}},      {"truncated.bin", {0, "crc"}},   {"bad-cobs.bin", {0, "cobs"}},
      {"too-long.bin", {0, "too_long"}}, {"bad-version.bin", {0, "bad_version"}},
      {"garbage-then-readings.bin", {1, "too_long"}}, {"stream.bin", {4, ""}}};
  for (const auto& [name, want] : expect) {
    const std::string file = ReadFile(SourceDir() + "/tests/data/frames/" + name);
    Collector c;
    c.Feed(Bytes{0});
    c.Feed(Bytes(file.begin(), file.end()));
    LONGS_EQUAL(want.first, c.frames.size());
    if (want.second.empty()) {
      LONGS_EQUAL(0, c.drops.size());
    } else {
      LONGS_EQUAL(1, c.drops.size());
      STRCMP_EQUAL(want.second.c_str(), DropReasonName(c.drops[0].reason));
    }
  }
}
