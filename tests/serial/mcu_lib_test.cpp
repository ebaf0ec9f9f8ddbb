// Host tests of the C firmware library (firmware-bridge/mcu/epfw.c): framing against the
// golden frames of the agent's codec (two independent implementations of docs/protocol.md), the
// ring of unacknowledged readings, ACK/TIME handling, retransmission, limits and wrap-around.
#include <cstring>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"
#include "epfw.h"
#include "serial_test_util.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;
using namespace edgepipe::testing;
using Bytes = std::vector<uint8_t>;

namespace {

struct Decoded {
  uint8_t type;
  uint16_t seq;
  Bytes payload;
};

// Decodes the frames an epfw_poll produced with the agent's decoder.
std::vector<Decoded> Decode(const Bytes& wire) {
  std::vector<Decoded> out;
  proto::FrameDecoder d;
  d.Feed(Bytes{0}, [](const proto::FrameView&) {});
  d.Feed(wire, [&](const proto::FrameView& f) { out.push_back({f.type, f.seq, Bytes(f.payload.begin(), f.payload.end())}); });
  CHECK_EQUAL(0u, d.stats().corrupt());
  return out;
}

Bytes File(const std::string& name) {
  std::string s = ReadFile(SourceDir() + "/tests/data/frames/" + name);
  return Bytes(s.begin(), s.end());
}

const epfw_sensor_t kSensors[] = {{"temperature", "Cel", 1, 100, EPFW_KIND_INT32}, {"door", "", 1, 1, EPFW_KIND_BOOL}};

}  // namespace

TEST_GROUP(McuLibrary) {
  epfw_slot_t ring[64];
  epfw_config_t cfg;
  epfw_t fw;
  uint8_t buf[EPFW_MAX_WIRE_FRAME];

  void setup() override {
    std::memset(&cfg, 0, sizeof cfg);
    cfg.fw_id = "demo-fw";
    cfg.fw_version = "1.0.0";
    cfg.sensors = kSensors;
    cfg.sensor_count = 2;
    cfg.ring = ring;
    cfg.ring_capacity = 64;
    cfg.boot_id = kGoldenBoot;
    cfg.retransmit_ms = 1000;
    LONGS_EQUAL(0, epfw_init(&fw, &cfg, 5000));
  }
  Bytes Poll(uint32_t now, size_t cap = EPFW_MAX_WIRE_FRAME) {
    size_t n = epfw_poll(&fw, now, buf, cap);
    return Bytes(buf, buf + n);
  }
  // Polls HELLO and the SENSOR frames away.
  void Announce(uint32_t now) {
    for (int i = 0; i < 3; ++i) CHECK(!Poll(now).empty());
  }
  proto::Readings NextReadings(uint32_t now, size_t cap = EPFW_MAX_WIRE_FRAME) {
    Bytes w = Poll(now, cap);
    auto f = Decode(w);
    LONGS_EQUAL(1, f.size());
    LONGS_EQUAL(0x03, f[0].type);
    return proto::ParseReadings(f[0].payload).value();
  }
  void Rx(const Bytes& wire, uint32_t now) { epfw_rx(&fw, wire.data(), wire.size(), now); }
  void Ack(uint32_t acked, uint32_t next, uint8_t flags, uint32_t now, uint32_t boot = kGoldenBoot) {
    Rx(proto::EncodeFrame(0x81, 0, proto::EncodeAck({boot, acked, next, flags})), now);
  }
};

TEST(McuLibrary, ProducesTheGoldenFramesByteForByte) {
  CHECK(Poll(5000) == File("hello.bin"));
  CHECK(Poll(5000) == File("sensor-0.bin"));
  CHECK(Poll(5000) == File("sensor-1.bin"));
  CHECK(Poll(5000).empty());
  LONGS_EQUAL(0, epfw_add_at(&fw, 0, 2137, 5000, 5000));
  LONGS_EQUAL(0, epfw_add_at(&fw, 1, 1, 5500, 5500));
  LONGS_EQUAL(0, epfw_add_at(&fw, 0, static_cast<uint32_t>(-512), 6000, 6000));
  CHECK(Poll(6000) == File("readings.bin"));
  CHECK(Poll(6000).empty());
  UNSIGNED_LONGS_EQUAL(0xE3069283u, epfw_crc32c(0, reinterpret_cast<const uint8_t*>("123456789"), 9));
}

TEST(McuLibrary, AppliesTheGoldenAgentFrames) {
  Announce(5000);
  for (int i = 0; i < 5; ++i) epfw_add(&fw, 0, uint32_t(i), 5000);
  LONGS_EQUAL(5, NextReadings(5000).readings.size());
  Rx(File("ack.bin"), 5100);  // acked 3
  LONGS_EQUAL(2, epfw_pending(&fw));
  LONGS_EQUAL(1, fw.stats.acks);
  Rx(File("time.bin"), 5200);
  UNSIGNED_LONGLONGS_EQUAL(1764129600000ull + 300, epfw_wall_ms(&fw, 5500));
  Rx(File("time-hello-request.bin"), 5200);
  auto f = Decode(Poll(5200));
  LONGS_EQUAL(0x01, f[0].type);  // HELLO again
  auto h = proto::ParseHello(f[0].payload).value();
  LONGS_EQUAL(1, h.flags & proto::kHelloTimeSet);
  LONGS_EQUAL(4, h.tail_seq);
  LONGS_EQUAL(6, h.next_seq);
  LONGS_EQUAL(0, fw.stats.rx_errors);
  LONGS_EQUAL(3, fw.stats.rx_frames);
}

TEST(McuLibrary, RejectsInvalidConfigurations) {
  epfw_config_t bad = cfg;
  bad.boot_id = 0;
  LONGS_EQUAL(-1, epfw_init(&fw, &bad, 0));
  bad = cfg;
  bad.sensor_count = 0;
  LONGS_EQUAL(-1, epfw_init(&fw, &bad, 0));
  bad = cfg;
  bad.ring = nullptr;
  LONGS_EQUAL(-1, epfw_init(&fw, &bad, 0));
  LONGS_EQUAL(0, epfw_init(&fw, &cfg, 0));
  LONGS_EQUAL(-1, epfw_add(&fw, 2, 0, 0));  // unknown sensor index
}

TEST(McuLibrary, ReadingsStayUntilAcknowledgedAndAreResentAfterTheTimeout) {
  Announce(5000);
  for (uint32_t i = 0; i < 30; ++i) epfw_add_at(&fw, uint8_t(i % 2), i, 4000 + i, 5000);
  proto::Readings a = NextReadings(5000), b = NextReadings(5000);
  LONGS_EQUAL(24, a.readings.size());
  LONGS_EQUAL(1, a.first_seq);
  LONGS_EQUAL(6, b.readings.size());
  LONGS_EQUAL(25, b.first_seq);
  LONGS_EQUAL(1000, a.readings[0].age_ms);  // taken at 4000, sent at 5000
  CHECK(Poll(5999).empty());                // nothing new, not yet timed out
  proto::Readings again = NextReadings(6000);
  LONGS_EQUAL(1, again.first_seq);          // go back to the oldest unacknowledged reading
  LONGS_EQUAL(2000, again.readings[0].age_ms);
  LONGS_EQUAL(1, fw.stats.retransmits);
  Ack(24, 25, 0, 6100);
  LONGS_EQUAL(6, epfw_pending(&fw));
  LONGS_EQUAL(25, NextReadings(6100).first_seq);  // the rest of the resend continues after the ACK
  Ack(30, 31, 0, 6200);
  LONGS_EQUAL(0, epfw_pending(&fw));
  CHECK(Poll(9000).empty());  // nothing unacknowledged: no retransmission
}

TEST(McuLibrary, AckResendGoesBackToWhatTheAgentExpects) {
  Announce(5000);
  for (uint32_t i = 0; i < 10; ++i) epfw_add(&fw, 0, i, 5000);
  NextReadings(5000);
  Ack(3, 6, proto::kAckResend, 5010);  // stored 1..3, lost the frame with 6..: resend from 6
  LONGS_EQUAL(7, epfw_pending(&fw));
  proto::Readings r = NextReadings(5010);
  LONGS_EQUAL(6, r.first_seq);
  LONGS_EQUAL(4, r.tail_seq);
  LONGS_EQUAL(5, r.readings.size());
  Ack(3, 2, proto::kAckResend, 5020);  // a resend point below the tail is not applied
  CHECK(Poll(5020).empty());
}

TEST(McuLibrary, StaleAndForeignAcksAreIgnored) {
  Announce(5000);
  for (uint32_t i = 0; i < 5; ++i) epfw_add(&fw, 0, i, 5000);
  NextReadings(5000);
  Ack(5, 6, 0, 5010, kGoldenBoot + 1);  // another boot
  LONGS_EQUAL(5, epfw_pending(&fw));
  Ack(9, 10, 0, 5010);  // beyond what was generated
  LONGS_EQUAL(5, epfw_pending(&fw));
  Ack(2, 3, 0, 5010);
  LONGS_EQUAL(3, epfw_pending(&fw));
  Ack(1, 2, 0, 5010);  // older than the tail: nothing comes back
  LONGS_EQUAL(3, epfw_pending(&fw));
}

TEST(McuLibrary, FullRingOverwritesTheOldestAndTheTailTellsTheAgent) {
  Announce(5000);
  for (uint32_t i = 0; i < 64; ++i) LONGS_EQUAL(0, epfw_add(&fw, 0, i, 5000));
  LONGS_EQUAL(1, epfw_add(&fw, 0, 64, 5000));
  LONGS_EQUAL(1, epfw_add(&fw, 0, 65, 5000));
  LONGS_EQUAL(2, fw.stats.dropped);
  LONGS_EQUAL(64, epfw_pending(&fw));
  proto::Readings r = NextReadings(5000);
  LONGS_EQUAL(3, r.tail_seq);
  LONGS_EQUAL(3, r.first_seq);
  LONGS_EQUAL(2u, r.readings[0].value);  // value of the 3rd reading
}

TEST(McuLibrary, SmallTransmitBuffersCarryFewerReadings) {
  CHECK(Poll(5000, EPFW_TX_MIN - 1).empty());
  Announce(5000);
  for (uint32_t i = 0; i < 30; ++i) epfw_add(&fw, 0, i, 5000);
  proto::Readings r = NextReadings(5000, EPFW_TX_MIN);
  // 2 + 4 + 22 + 4 + 9n <= 128
  LONGS_EQUAL(10, r.readings.size());
  CHECK(Poll(5000, EPFW_TX_MIN).size() <= EPFW_TX_MIN);
}

TEST(McuLibrary, WallClockStampingAfterTime) {
  cfg.flags = EPFW_STAMP_WALL;
  epfw_init(&fw, &cfg, 5000);
  Announce(5000);
  epfw_add(&fw, 0, 1, 5000);
  proto::Readings before = NextReadings(5000);
  LONGS_EQUAL(0, before.flags & proto::kReadingsWall);  // no time yet: uptime
  UNSIGNED_LONGLONGS_EQUAL(5000, before.frame_time_ms);
  UNSIGNED_LONGLONGS_EQUAL(0, epfw_wall_ms(&fw, 5000));
  Rx(proto::EncodeFrame(0x82, 0, proto::EncodeTime({1'700'000'000'000ull, 0})), 6000);
  epfw_add(&fw, 0, 2, 6500);
  proto::Readings after = NextReadings(7000);
  LONGS_EQUAL(proto::kReadingsWall, after.flags & proto::kReadingsWall);
  UNSIGNED_LONGLONGS_EQUAL(1'700'000'001'000ull, after.frame_time_ms);
  LONGS_EQUAL(500, after.readings.back().age_ms);
  epfw_set_wall_ms(&fw, 1'800'000'000'000ull, 8000);  // a local RTC does the same
  UNSIGNED_LONGLONGS_EQUAL(1'800'000'000'010ull, epfw_wall_ms(&fw, 8010));
}

TEST(McuLibrary, UptimeWrapsPast32Bits) {
  epfw_init(&fw, &cfg, 0xFFFFFF00u);
  Announce(0xFFFFFF00u);
  epfw_add(&fw, 0, 1, 0xFFFFFFF0u);
  epfw_add(&fw, 0, 2, 0x00000010u);  // the caller's counter wrapped
  proto::Readings r = NextReadings(0x00000020u);
  UNSIGNED_LONGLONGS_EQUAL(0x100000020ull, r.frame_time_ms);
  LONGS_EQUAL(0x30, r.readings[0].age_ms);
  LONGS_EQUAL(0x10, r.readings[1].age_ms);
}

TEST(McuLibrary, SequenceNumbersWrapPast32Bits) {
  Announce(5000);
  fw.tail_seq = fw.next_seq = fw.send_seq = 0xFFFFFFFEu;
  for (uint32_t i = 0; i < 4; ++i) epfw_add(&fw, 0, i, 5000);
  proto::Readings r = NextReadings(5000);
  UNSIGNED_LONGS_EQUAL(0xFFFFFFFEu, r.first_seq);
  Ack(0, 1, 0, 5010);  // 0xFFFFFFFE, 0xFFFFFFFF and 0 stored
  LONGS_EQUAL(1, epfw_pending(&fw));
  UNSIGNED_LONGS_EQUAL(1u, fw.tail_seq);
}

TEST(McuLibrary, CorruptOrOversizedInputIsCountedAndIgnored) {
  Announce(5000);
  for (uint32_t i = 0; i < 5; ++i) epfw_add(&fw, 0, i, 5000);
  NextReadings(5000);
  Bytes ack = proto::EncodeFrame(0x81, 0, proto::EncodeAck({kGoldenBoot, 5, 6, 0}));
  for (size_t i = 0; i + 1 < ack.size(); ++i) {
    Bytes bad = ack;
    bad[i] ^= 0x20;
    if (bad[i] == 0) continue;
    Rx(bad, 5010);
  }
  LONGS_EQUAL(5, epfw_pending(&fw));  // no damaged ACK was applied
  CHECK(fw.stats.rx_errors >= ack.size() - 2);
  const uint32_t errors = fw.stats.rx_errors;
  Bytes big(100, 0x42);
  big.push_back(0);
  Rx(big, 5010);
  LONGS_EQUAL(errors + 1, fw.stats.rx_errors);
  Rx(proto::EncodeFrame(0x03, 0, proto::EncodeReadings(GoldenReadings())), 5010);  // wrong direction
  LONGS_EQUAL(errors + 2, fw.stats.rx_errors);
  for (uint8_t b : ack) Rx(Bytes{b}, 5020);  // a good ACK one byte at a time
  LONGS_EQUAL(0, epfw_pending(&fw));
}

TEST(McuLibrary, RetainedStateReportsThePreviousBoot) {
  epfw_retained_t retained;
  std::memset(&retained, 0xA5, sizeof retained);  // power-on garbage: not a previous boot
  cfg.retained = &retained;
  epfw_init(&fw, &cfg, 100);
  auto h = proto::ParseHello(Decode(Poll(100))[0].payload).value();
  LONGS_EQUAL(0, h.prev_boot_id);
  for (uint32_t i = 0; i < 7; ++i) epfw_add(&fw, 0, i, 100);
  // Reset: RAM is lost except the retained block; a new boot id.
  cfg.boot_id = kGoldenBoot + 7;
  epfw_init(&fw, &cfg, 50);
  h = proto::ParseHello(Decode(Poll(50))[0].payload).value();
  UNSIGNED_LONGS_EQUAL(kGoldenBoot, h.prev_boot_id);
  LONGS_EQUAL(7, h.prev_last_seq);
  LONGS_EQUAL(1, h.next_seq);
  LONGS_EQUAL(50, h.uptime_ms);
}

TEST(McuLibrary, LinkUpAnnouncesAndResendsEverything) {
  Announce(5000);
  for (uint32_t i = 0; i < 3; ++i) epfw_add(&fw, 0, i, 5000);
  NextReadings(5000);
  epfw_link_up(&fw, 5100);
  for (uint8_t type : {0x01, 0x02, 0x02}) LONGS_EQUAL(type, Decode(Poll(5100))[0].type);
  proto::Readings r = NextReadings(5100);
  LONGS_EQUAL(1, r.first_seq);
  LONGS_EQUAL(3, r.readings.size());
  CHECK(Poll(5100).empty());
}
