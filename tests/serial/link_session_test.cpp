// LinkSession (the agent's protocol logic) against the real firmware library in-process: an epfw
// MCU and the session exchange bytes through a scripted link that can damage, drop or withhold
// them, with a ReadingSink fake that commits only on WaitDurable and can "crash". Also the
// ClockMapper.
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/firmware_bridge/clock_mapper.h"
#include "edgepipe/firmware_bridge/protocol.h"
#include "edgepipe/firmware_bridge/serial_link.h"
#include "epfw.h"
#include "serial_test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::fb;
using Bytes = std::vector<uint8_t>;

namespace {

// A ReadingSink that keeps appended work in memory until WaitDurable commits it, like the buffer
// (invariant 1 of buffer/store.h). Crash() forgets everything not committed.
class FakeSink : public ReadingSink {
 public:
  struct Op {
    uint64_t ticket;
    std::vector<Reading> readings;
    std::optional<SourceState> state;
    std::optional<QuarantineRecord> quarantine;
    std::optional<GapRecord> gap;
  };
  Result<uint64_t> Append(std::span<const Reading> r) override { return AppendWithState(r, {}); }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState& s) override {
    if (fail_appends) return ResourceExhaustedError("buffer full");
    Op op{++ticket_, {r.begin(), r.end()}, {}, {}, {}};
    if (!s.key.empty()) op.state = s;
    pending_.push_back(std::move(op));
    return ticket_;
  }
  Result<std::optional<std::string>> LoadState(const std::string& key) override {
    auto it = states.find(key);
    if (it == states.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status WaitDurable(uint64_t ticket) override {
    if (fail_commits) return UnavailableError("disk I/O error");
    while (!pending_.empty() && pending_.front().ticket <= ticket) {
      Op& op = pending_.front();
      readings.insert(readings.end(), op.readings.begin(), op.readings.end());
      if (op.state) states[op.state->key] = op.state->value;
      if (op.quarantine) quarantined.push_back(*op.quarantine);
      if (op.gap) gaps.push_back(*op.gap);
      pending_.pop_front();
    }
    return Status::Ok();
  }
  Result<uint64_t> Quarantine(const QuarantineRecord& q) override {
    Op op{++ticket_, {}, {}, q, {}};
    pending_.push_back(std::move(op));
    return ticket_;
  }
  Result<uint64_t> RecordGap(const GapRecord& g) override {
    Op op{++ticket_, {}, {}, {}, g};
    pending_.push_back(std::move(op));
    return ticket_;
  }
  void CommitAll() { WaitDurable(ticket_).IgnoreError(); }
  void Crash() { pending_.clear(); }

  std::vector<Reading> readings;
  std::map<std::string, std::string> states;
  std::vector<QuarantineRecord> quarantined;
  std::vector<GapRecord> gaps;
  bool fail_appends = false;
  bool fail_commits = false;

 private:
  uint64_t ticket_ = 0;
  std::deque<Op> pending_;
};

const epfw_sensor_t kSensors[] = {{"temperature", "Cel", 1, 100, EPFW_KIND_INT32},
                                  {"door", "", 1, 1, EPFW_KIND_BOOL},
                                  {"flow", "l/min", 1, 1, EPFW_KIND_FLOAT32}};

// One MCU (firmware library), one session, and the wires between them.
struct Rig {
  ManualClock clock{1'700'000'000'000'000, 50'000'000};
  FakeSink sink;
  std::vector<epfw_slot_t> ring;
  epfw_config_t cfg{};
  epfw_retained_t retained{};
  epfw_t fw{};
  uint32_t mcu_ms = 1000;
  std::deque<Bytes> to_mcu;  // frames the session wrote
  std::unique_ptr<LinkSession> session;
  std::mt19937 rng{42};
  // Link behaviour.
  bool mcu_to_agent = true;   // false: the MCU's bytes are lost (cable out)
  bool agent_to_mcu = true;
  std::function<bool(Bytes&)> damage;  // may alter a frame from the MCU; true if it did
  uint64_t damaged = 0;

  explicit Rig(uint16_t ring_size = 256, uint32_t boot = 0xB0070001u) {
    ring.resize(ring_size);
    cfg.fw_id = "rig-fw";
    cfg.fw_version = "2.0";
    cfg.sensors = kSensors;
    cfg.sensor_count = 3;
    cfg.ring = ring.data();
    cfg.ring_capacity = ring_size;
    cfg.boot_id = boot;
    cfg.retransmit_ms = 500;
    cfg.retained = &retained;
    epfw_init(&fw, &cfg, mcu_ms);
    NewSession();
  }

  LinkOptions Options() {
    LinkOptions o;
    o.source = "mcu0";
    o.sensor_prefix = "lab/";
    o.device = "/dev/test";
    return o;
  }

  void NewSession() {
    session = std::make_unique<LinkSession>(Options(), sink, clock, [this](Bytes f) {
      if (agent_to_mcu) to_mcu.push_back(std::move(f));
    });
    CHECK(session->LoadState().ok());
    session->OnOpen();
  }

  void Reboot(uint32_t boot) {
    cfg.boot_id = boot;
    mcu_ms = 500;
    epfw_init(&fw, &cfg, mcu_ms);
  }

  // Advances time by `ms`, exchanging frames until both sides are quiet for this step.
  void Step(uint32_t ms = 10, bool ack = true) {
    clock.Advance(int64_t(ms) * 1000);
    mcu_ms += ms;
    for (int round = 0; round < 200; ++round) {
      bool busy = false;
      while (!to_mcu.empty()) {
        epfw_rx(&fw, to_mcu.front().data(), to_mcu.front().size(), mcu_ms);
        to_mcu.pop_front();
        busy = true;
      }
      uint8_t buf[EPFW_MAX_WIRE_FRAME];
      size_t n = epfw_poll(&fw, mcu_ms, buf, sizeof buf);
      if (n) {
        busy = true;
        Bytes f(buf, buf + n);
        if (damage && damage(f)) ++damaged;
        if (mcu_to_agent) session->OnBytes(f, clock.MonotonicNowUs());
      }
      if (ack)
        while (session->PumpAck(0)) busy = true;
      if (!busy) break;
    }
    session->OnTick();
  }

  void Run(uint32_t total_ms, uint32_t step = 10, bool ack = true) {
    for (uint32_t t = 0; t < total_ms; t += step) Step(step, ack);
  }

  void Add(uint8_t sensor, uint32_t value) { epfw_add(&fw, sensor, value, mcu_ms); }

  uint64_t Counter(const char* name) {
    auto c = session->Counters();
    auto it = c.find(name);
    return it == c.end() ? 0 : it->second;
  }
};

// A flip of one bit that keeps the frame free of 0x00 (one corrupt frame, as mcu-sim does).
bool FlipOneBit(std::mt19937& rng, Bytes& f) {
  std::uniform_int_distribution<size_t> pos(0, f.size() - 2);
  const size_t i = pos(rng);
  int bit = int(rng() % 8);
  if ((f[i] ^ (1u << bit)) == 0) bit = (bit + 1) % 8;
  f[i] = uint8_t(f[i] ^ (1u << bit));
  return true;
}

std::multiset<int64_t> Values(const std::vector<Reading>& rs, const std::string& sensor) {
  std::multiset<int64_t> v;
  for (const Reading& r : rs)
    if (r.sensor == sensor) v.insert(std::llround(r.value * 100));
  return v;
}

}  // namespace

TEST_GROUP(LinkSession){};

TEST(LinkSession, ReadingsAreNamedScaledTimedStoredAndAcknowledgedOnlyWhenDurable) {
  Rig rig;
  rig.Step();
  STRCMP_EQUAL("receiving", rig.session->State().c_str());
  rig.Add(0, 2137);
  rig.Step(20, /*ack=*/false);
  rig.Add(1, 1);
  float flow = 12.5f;
  uint32_t bits;
  std::memcpy(&bits, &flow, 4);
  rig.Add(2, bits);
  rig.Step(0, /*ack=*/false);
  // Appended, not durable: nothing stored yet, and the MCU still holds all three.
  LONGS_EQUAL(0, rig.sink.readings.size());
  LONGS_EQUAL(3, epfw_pending(&rig.fw));
  rig.Step(10);
  LONGS_EQUAL(3, rig.sink.readings.size());
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  const Reading& t = rig.sink.readings[0];
  STRCMP_EQUAL("lab/temperature", t.sensor.c_str());
  STRCMP_EQUAL("Cel", t.unit.c_str());
  STRCMP_EQUAL("mcu0", t.source.c_str());
  CHECK(t.value == 21.37);  // the same double as the text "21.37"
  LONGS_EQUAL(1, t.seq);
  CHECK(rig.sink.readings[1].type == ValueType::kBool);
  DOUBLES_EQUAL(1.0, rig.sink.readings[1].value, 0);
  DOUBLES_EQUAL(12.5, rig.sink.readings[2].value, 0);
  STRCMP_EQUAL("l/min", rig.sink.readings[2].unit.c_str());
  // Timestamps: the reading taken 20 ms before the door reading is 20 ms earlier.
  LONGS_EQUAL(20'000, rig.sink.readings[1].ts_us - t.ts_us);
  // And in wall time: within a few ms of the (manual) system clock at the time it was taken.
  const int64_t expected = rig.clock.SystemNowUs() - 30'000;
  CHECK(std::abs(t.ts_us - expected) <= 10'000);
  // The position is committed with the readings: "<last seq> <MCU uptime ms>".
  STRCMP_EQUAL("3 1030", rig.sink.states["mcu0/boot/b0070001"].c_str());
  LONGS_EQUAL(3, rig.Counter("readings"));
  CHECK(rig.Counter("acks_sent") >= 1);
  CHECK(rig.fw.time_set);  // TIME followed HELLO
}

TEST(LinkSession, FailedCommitsAreNeverAcknowledged) {
  Rig rig;
  rig.Step();
  rig.sink.fail_commits = true;
  for (uint32_t i = 0; i < 5; ++i) rig.Add(0, i);
  rig.Run(100);
  LONGS_EQUAL(5, epfw_pending(&rig.fw));
  CHECK(rig.Counter("sink_errors") > 0);
  CHECK(rig.session->last_error().find("commit failed") != std::string::npos);
  rig.sink.fail_commits = false;
  rig.Run(1000);  // the MCU retransmits; duplicates of what was appended are dropped
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  LONGS_EQUAL(5, rig.sink.readings.size());
}

TEST(LinkSession, RejectedAppendsLeaveReadingsOnTheMcu) {
  Rig rig;
  rig.Step();
  rig.sink.fail_appends = true;
  for (uint32_t i = 0; i < 5; ++i) rig.Add(0, i);
  rig.Run(200);
  LONGS_EQUAL(5, epfw_pending(&rig.fw));
  LONGS_EQUAL(0, rig.Counter("readings"));
  rig.sink.fail_appends = false;
  rig.Run(1000);
  LONGS_EQUAL(5, rig.sink.readings.size());
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
}

TEST(LinkSession, CorruptFramesAreCountedExactlyAndTheirReadingsArriveOnce) {
  Rig rig;
  rig.Step();
  rig.damage = [&](Bytes& f) { return rig.rng() % 5 == 0 && FlipOneBit(rig.rng, f); };
  for (uint32_t i = 1; i <= 2000; ++i) {
    rig.Add(0, i);
    if (i % 2 == 0) rig.Step(3);
  }
  LONGS_EQUAL(0, rig.fw.stats.dropped);  // the ring never overflowed: nothing may be missing
  rig.damage = nullptr;
  rig.Run(3000);
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  std::multiset<int64_t> want;
  for (int64_t i = 1; i <= 2000; ++i) want.insert(i);
  const auto got = Values(rig.sink.readings, "lab/temperature");
  if (got != want) {
    std::string msg = "gaps " + std::to_string(rig.sink.gaps.size()) + " malformed " + std::to_string(rig.Counter("frames_malformed")) + " q " + std::to_string(rig.sink.quarantined.size()) + " stored " + std::to_string(got.size()) + " distinct " + std::to_string(std::set<int64_t>(got.begin(), got.end()).size());
    for (int64_t i = 1; i <= 2000; ++i) if (got.count(i) != 1) { msg += " v" + std::to_string(i) + "x" + std::to_string(got.count(i)); if (msg.size() > 300) break; }
    FAIL(msg.c_str());
  }
  CHECK(rig.damaged > 50);
  LONGS_EQUAL(rig.damaged, rig.Counter("frames_corrupt"));
  CHECK(rig.Counter("resend_requests") > 0);
  LONGS_EQUAL(0, rig.sink.gaps.size());  // transit losses are resent, never recorded as gaps
}

TEST(LinkSession, UnderOverloadStoredPlusRecordedMissingIsEverythingGenerated) {
  Rig rig(/*ring_size=*/128);
  rig.Step();
  // 2000 readings/s into a 128-slot ring over a link that damages a quarter of the frames: the
  // ring overflows while holes are repaired. Whatever is not stored must be in a gap record.
  rig.damage = [&](Bytes& f) { return rig.rng() % 4 == 0 && FlipOneBit(rig.rng, f); };
  for (uint32_t i = 1; i <= 4000; ++i) {
    rig.Add(0, i);
    if (i % 6 == 0) rig.Step(3);
  }
  rig.damage = nullptr;
  rig.Run(3000);
  CHECK(rig.fw.stats.dropped > 0);
  uint64_t missing = 0;
  for (const GapRecord& g : rig.sink.gaps) missing += g.count;
  LONGS_EQUAL(rig.fw.stats.dropped, missing);
  LONGS_EQUAL(4000, rig.sink.readings.size() + missing);
  const auto got = Values(rig.sink.readings, "lab/temperature");
  LONGS_EQUAL(got.size(), std::set<int64_t>(got.begin(), got.end()).size());  // none twice
  LONGS_EQUAL(rig.damaged, rig.Counter("frames_corrupt"));
}

TEST(LinkSession, LostAcknowledgementsCauseDuplicatesThatAreDroppedOnce) {
  Rig rig;
  rig.Step();
  rig.agent_to_mcu = false;  // ACKs vanish
  for (uint32_t i = 1; i <= 50; ++i) rig.Add(0, i);
  rig.Run(1200);             // the MCU times out and sends everything again
  rig.agent_to_mcu = true;
  rig.Run(1200);
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  LONGS_EQUAL(50, rig.sink.readings.size());
  CHECK(rig.Counter("duplicates") >= 50);
}

TEST(LinkSession, AgentCrashBeforeTheCommitLosesNothingAndStoresNothingTwice) {
  Rig rig;
  rig.Step();
  for (uint32_t i = 1; i <= 100; ++i) rig.Add(0, i);
  rig.Run(50);
  LONGS_EQUAL(100, rig.sink.readings.size());
  for (uint32_t i = 101; i <= 200; ++i) rig.Add(0, i);
  rig.Step(10, /*ack=*/false);  // appended, not committed...
  rig.sink.Crash();             // ...and the agent dies (kill -9)
  rig.NewSession();             // restart: state comes from what was committed
  rig.Run(2000);
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  std::multiset<int64_t> want;
  for (int64_t i = 1; i <= 200; ++i) want.insert(i);
  CHECK(Values(rig.sink.readings, "lab/temperature") == want);
}

TEST(LinkSession, AgentCrashAfterTheCommitButBeforeTheAckDropsTheResend) {
  Rig rig;
  rig.Step();
  for (uint32_t i = 1; i <= 30; ++i) rig.Add(0, i);
  rig.agent_to_mcu = false;  // the commit happens, the ACK never reaches the MCU
  rig.Run(50);
  LONGS_EQUAL(30, rig.sink.readings.size());
  LONGS_EQUAL(30, epfw_pending(&rig.fw));
  rig.agent_to_mcu = true;
  rig.NewSession();
  rig.Run(2000);
  LONGS_EQUAL(30, rig.sink.readings.size());
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  // The first resent frame (24 readings) is dropped as duplicates and re-acknowledged at once;
  // the MCU then has nothing left to resend.
  CHECK(rig.Counter("duplicates") >= 24);
}

TEST(LinkSession, RingOverflowWhileDisconnectedIsRecordedAsAGap) {
  Rig rig(/*ring_size=*/64);
  rig.Step();
  for (uint32_t i = 1; i <= 10; ++i) rig.Add(0, i);
  rig.Run(50);
  rig.mcu_to_agent = false;  // unplugged: the MCU keeps sampling
  for (uint32_t i = 11; i <= 110; ++i) {
    rig.Add(0, i);
    rig.Step(5);
  }
  LONGS_EQUAL(36, rig.fw.stats.dropped);  // 100 taken, 64 kept
  rig.mcu_to_agent = true;
  rig.session->OnOpen();
  rig.Run(2000);
  LONGS_EQUAL(0, epfw_pending(&rig.fw));
  LONGS_EQUAL(74, rig.sink.readings.size());
  LONGS_EQUAL(1, rig.sink.gaps.size());
  LONGS_EQUAL(36, rig.sink.gaps[0].count);
  STRCMP_EQUAL("sequence_gap", rig.sink.gaps[0].reason.c_str());
  STRCMP_EQUAL("mcu0", rig.sink.gaps[0].source.c_str());
  CHECK(rig.sink.gaps[0].from_us <= rig.sink.gaps[0].to_us);
  LONGS_EQUAL(36, rig.Counter("readings_missing"));
}

TEST(LinkSession, RebootStartsANewSequenceAndAResetLossBecomesAGap) {
  Rig rig;
  rig.Step();
  for (uint32_t i = 1; i <= 20; ++i) rig.Add(0, i);
  rig.Run(50);
  rig.mcu_to_agent = false;
  for (uint32_t i = 21; i <= 27; ++i) rig.Add(0, i);
  rig.Step();
  rig.mcu_to_agent = true;
  rig.Reboot(0xB0070002u);  // 7 unacknowledged readings die with the RAM
  for (uint32_t i = 101; i <= 120; ++i) rig.Add(0, i);
  rig.Run(1000);
  LONGS_EQUAL(40, rig.sink.readings.size());
  LONGS_EQUAL(0, rig.Counter("duplicates"));  // seq 1.. of the new boot are new
  LONGS_EQUAL(1, rig.sink.readings[20].seq);
  LONGS_EQUAL(1, rig.sink.gaps.size());
  LONGS_EQUAL(7, rig.sink.gaps[0].count);
  STRCMP_EQUAL("mcu_reset", rig.sink.gaps[0].reason.c_str());
  STRCMP_EQUAL("27 0", rig.sink.states["mcu0/boot/b0070001"].c_str());
  rig.session->OnOpen();  // a repeated HELLO does not record the gap again
  rig.Run(100);
  LONGS_EQUAL(1, rig.sink.gaps.size());
}

TEST(LinkSession, AReusedBootIdIsDetected) {
  Rig rig;
  rig.clock.Advance(0);
  rig.Run(3000);  // uptime 4 s
  for (uint32_t i = 1; i <= 5; ++i) rig.Add(0, i);
  rig.Run(50);
  rig.NewSession();
  rig.Reboot(0xB0070001u);  // same id again (broken firmware), uptime back near 0
  for (uint32_t i = 6; i <= 8; ++i) rig.Add(0, i);
  rig.Run(1000);
  LONGS_EQUAL(1, rig.Counter("boot_id_reused"));
  LONGS_EQUAL(8, rig.sink.readings.size());  // not mistaken for duplicates
}

TEST(LinkSession, ReadingsBeforeHelloWaitForTheSensorTable) {
  Rig rig;
  rig.mcu_to_agent = false;
  rig.Step();  // HELLO and SENSORs are lost
  rig.mcu_to_agent = true;
  for (uint32_t i = 1; i <= 10; ++i) rig.Add(0, i);
  rig.Run(3000);
  LONGS_EQUAL(10, rig.sink.readings.size());
  CHECK(rig.Counter("frames_before_hello") >= 1);
  CHECK(rig.Counter("hello_requests") >= 2);
  STRCMP_EQUAL("lab/temperature", rig.sink.readings[0].sensor.c_str());
}

TEST(LinkSession, MalformedFramesAreQuarantinedWithTheirBytes) {
  Rig rig;
  rig.Step();
  using namespace proto;
  SensorInfo s = edgepipe::testing::GoldenSensor(0);
  s.boot_id = rig.cfg.boot_id;
  s.index = 9;  // beyond the 3 announced
  rig.session->OnBytes(EncodeFrame(0x02, 0, EncodeSensor(s)), 0);
  rig.session->OnBytes(EncodeFrame(0x44, 0, Bytes{1, 2, 3}), 0);                    // unknown type
  rig.session->OnBytes(EncodeFrame(0x81, 0, EncodeAck({1, 2, 3, 0})), 0);           // wrong direction
  rig.session->OnBytes(EncodeFrame(0x01, 0, Bytes{1, 0}), 0);                       // short HELLO
  Readings r;
  r.boot_id = rig.cfg.boot_id;
  r.frame_time_ms = rig.mcu_ms;
  r.tail_seq = r.first_seq = 1;
  // Sensor 7 of 3, and a reading older than the MCU's boot: kept in quarantine, consumed.
  r.readings = {{7, 0, 5}, {0, uint32_t(rig.mcu_ms + 10), 6}};
  rig.session->OnBytes(EncodeFrame(0x03, 0, EncodeReadings(r)), rig.clock.MonotonicNowUs());
  rig.sink.CommitAll();
  LONGS_EQUAL(4, rig.Counter("frames_malformed"));
  LONGS_EQUAL(2, rig.Counter("readings_malformed"));
  LONGS_EQUAL(6, rig.sink.quarantined.size());
  STRCMP_EQUAL("lab/temperature", rig.sink.quarantined[5].sensor.c_str());
  CHECK(rig.sink.quarantined[5].reason.find("after the MCU booted") != std::string::npos);
  for (const auto& q : rig.sink.quarantined) {
    STRCMP_EQUAL("serial_protocol", q.rule.c_str());
    CHECK(!q.raw.empty());
  }
  CHECK(rig.sink.quarantined[0].reason.find("sensor index 9") != std::string::npos);
  CHECK(rig.sink.quarantined[1].reason.find("unknown message type 0x44") != std::string::npos);
  CHECK(rig.sink.quarantined[2].reason.find("looped back") != std::string::npos);
  STRCMP_EQUAL("#7", rig.sink.quarantined[4].sensor.c_str());
  STRCMP_EQUAL("2 ", rig.sink.states["mcu0/boot/b0070001"].substr(0, 2).c_str());  // seq 1-2 consumed
}

TEST(LinkSession, CountersArePersistedAndResumed) {
  Rig rig;
  rig.Step();
  rig.session->OnBytes(Bytes{0x05, 0x01, 0x02, 0x00}, 0);  // one corrupt frame
  for (uint32_t i = 1; i <= 5; ++i) rig.Add(0, i);
  rig.Run(50);
  const auto before = rig.session->Counters();
  LONGS_EQUAL(1, before.at("frames_corrupt"));
  CHECK(rig.sink.states.count("mcu0/counters"));
  rig.NewSession();
  LONGS_EQUAL(1, rig.Counter("frames_corrupt"));
  CHECK(rig.Counter("readings") >= 5);
}

TEST(LinkSession, WallClockFramesAreTakenAsTheyAre) {
  Rig rig;
  rig.cfg.flags = EPFW_STAMP_WALL;
  rig.Reboot(0xB0070003u);
  rig.Run(50);  // HELLO, then TIME from the session sets the MCU's clock
  CHECK(rig.fw.time_set);
  rig.clock.SetSystem(rig.clock.SystemNowUs() + 3'600'000'000);  // the host clock steps an hour
  rig.Add(0, 100);
  rig.Run(20);
  LONGS_EQUAL(1, rig.sink.readings.size());
  // The MCU stamped with the wall time it got before the step.
  CHECK(rig.clock.SystemNowUs() - rig.sink.readings[0].ts_us > 3'590'000'000);
}

TEST(LinkSession, IdleLinkIsReportedAndHelloRequested) {
  Rig rig;
  rig.Step();
  rig.mcu_to_agent = false;
  const uint64_t before = rig.Counter("hello_requests");
  rig.clock.Advance(61'000'000);
  rig.session->OnTick();
  STRCMP_EQUAL("idle", rig.session->State().c_str());
  LONGS_EQUAL(before + 1, rig.Counter("hello_requests"));
  rig.mcu_to_agent = true;
  rig.Run(50);
  STRCMP_EQUAL("receiving", rig.session->State().c_str());
}

TEST_GROUP(ClockMapper){};

TEST(ClockMapper, OffsetIsTheSmallestDelay) {
  ClockMapper m;
  std::mt19937 rng(5);
  const int64_t offset = 7'000'000'000;
  for (uint64_t t = 0; t < 20'000; t += 100) {
    const int64_t delay = 2'000 + int64_t(rng() % 30'000);
    m.AddSample(t, int64_t(t) * 1000 + offset + delay);
  }
  CHECK(std::abs(m.ToHostUs(10'000) - (10'000'000 + offset)) < 3'000);
}

TEST(ClockMapper, DriftIsCorrected) {
  ClockMapper m;
  std::mt19937 rng(9);
  const double drift = 150e-6;  // the MCU clock runs 150 ppm slow
  for (uint64_t t = 0; t <= 3'600'000; t += 500) {
    const int64_t host = int64_t(double(t) * 1000 * (1 + drift)) + 1'000'000 + 1'000 + int64_t(rng() % 5'000);
    m.AddSample(t, host);
  }
  DOUBLES_EQUAL(drift, m.rate(), 10e-6);
  // Uncorrected, an hour of 150 ppm is 540 ms; corrected, a few ms.
  const int64_t truth = int64_t(3'600'000.0 * 1000 * (1 + drift)) + 1'000'000;
  CHECK(std::abs(m.ToHostUs(3'600'000) - truth) < 6'000);
  // Extrapolating back an hour (readings retransmitted late) stays within tens of ms.
  CHECK(std::abs(m.ToHostUs(0) - 1'000'000) < 60'000);
}

TEST(ClockMapper, AJumpAheadRestartsTheMapping) {
  ClockMapper m;
  for (uint64_t t = 0; t < 5'000; t += 100) CHECK(m.AddSample(t, int64_t(t) * 1000 + 1'000'000));
  CHECK(m.AddSample(5'000, 5'000'000 + 1'000'000 + 20'000'000));  // late: fine, ignored by the filter
  CHECK_FALSE(m.AddSample(200'000, 5'100'000 + 1'000'000));       // 195 s ahead: jumped
  CHECK(std::abs(m.ToHostUs(200'000) - 6'100'000) < 1'000);
}
