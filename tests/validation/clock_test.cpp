// The unsynchronised-clock path ([validation.clock]) driven by an injected clock and probe, with
// a real buffer database and a real hold file: readings are held while unsynchronised,
// re-stamped from their monotonic time at sync, survive restarts, are flagged when a reboot
// makes them unfixable, and are released exactly once across a crash.
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>

#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/clock_sync.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "test_util.h"
#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;
using namespace edgepipe::vtest;

namespace {

struct ProbeState {
  std::atomic<bool> synced{false};
  std::string boot = "boot-A";
};

class FakeProbe final : public ClockSyncProbe {
 public:
  explicit FakeProbe(std::shared_ptr<ProbeState> s) : s_(std::move(s)) {}
  bool Synchronized() override { return s_->synced; }
  std::string BootId() override { return s_->boot; }

 private:
  std::shared_ptr<ProbeState> s_;
};

// A board that booted without an RTC: the wall clock says 1970-01-01T00:01:40Z.
constexpr int64_t kBootWall = 100 * kSec;

struct Rig {
  TempDir dir;
  ManualClock clock{kBootWall, 5 * kSec};
  std::shared_ptr<ProbeState> probe = std::make_shared<ProbeState>();
  ValidationConfig vcfg;
  std::unique_ptr<buffer::Store> store;
  std::unique_ptr<Ingest> ingest;

  Rig() {
    vcfg = ParseValidation(R"(
[validation.clock]
mode = "auto"
sources = ["sim*"]
check_interval = "1s"
max_hold = "10m"
)");
  }
  std::string HoldPath() const { return dir.Join("hold"); }

  ClockGuard* guard_raw = nullptr;
  void Open() {
    store = OpenStore(dir.Join("buffer.db"), clock);
    ingest = std::make_unique<Ingest>(vcfg, clock, *store);
    ClockGuard::Options go;
    go.config = vcfg.clock;
    go.hold_path = HoldPath();
    auto g = std::make_unique<ClockGuard>(go, clock, std::make_unique<FakeProbe>(probe));
    Status st = ingest->EnableClockGuard(std::move(g));
    if (!st.ok()) FAIL(st.ToString().c_str());
  }
  void Close() {
    ingest.reset();
    store.reset();
  }
  // Everything committed so far, in order.
  std::vector<Reading> Stored() {
    CHECK_TRUE(store->Flush().ok());
    std::vector<Reading> out;
    while (true) {
      auto b = store->LeaseBatch(BatchPolicy{}, true);
      CHECK_TRUE(b.ok());
      if (!b->has_value()) break;
      Batch& batch = **b;
      out.insert(out.end(), batch.readings.begin(), batch.readings.end());
      CHECK_TRUE(store->AckBatch(batch.id, DeliveryReceipt{}).ok());
    }
    return out;
  }
  // A reading stamped by this gateway's (possibly wrong) wall clock now.
  Reading Stamped(const std::string& sensor, double v, const std::string& source = "sim") {
    Reading r = R(sensor, clock.SystemNowUs(), v);
    r.source = source;
    return r;
  }
  void Append(std::vector<Reading> rs) {
    auto t = ingest->Append(rs);
    if (!t.ok()) FAIL(t.status().ToString().c_str());
    CHECK_TRUE(ingest->WaitDurable(*t).ok());
  }
  uint64_t HoldSize() {
    struct stat st;
    return ::stat(HoldPath().c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
};

}  // namespace

TEST_GROUP(ClockSync) {
  void setup() override { SetLogLevel(LogLevel::kError); }
  void teardown() override { SetLogLevel(LogLevel::kInfo); }
};

TEST(ClockSync, HeldWhileUnsyncedThenRestampedFromTheMonotonicClock) {
  Rig rig;
  rig.vcfg.defaults.too_old = TooOldRule{};  // proves held readings are judged only after re-stamping
  rig.Open();
  std::vector<int64_t> monos;
  for (int i = 0; i < 3; ++i) {
    monos.push_back(rig.clock.MonotonicNowUs());
    rig.Append({rig.Stamped("t", i)});
    rig.clock.Advance(2 * kSec);
  }
  // A device that keeps its own (correct) time is not held.
  Reading dev = R("dev", kT0, 1);
  dev.source = "mqtt";
  rig.Append({dev});
  std::vector<Reading> stored = rig.Stored();
  LONGS_EQUAL(1, stored.size());
  STRCMP_EQUAL("dev", stored[0].sensor.c_str());
  CHECK(rig.HoldSize() > 16);
  LONGS_EQUAL(3, rig.ingest->clock_stats()->held_readings);
  CHECK_FALSE(rig.ingest->clock_stats()->synchronized);

  // NTP steps the clock and the kernel reports sync.
  rig.clock.SetSystem(kT0 + 1000 * kSec);
  rig.probe->synced = true;
  rig.clock.Advance(kSec);
  const int64_t offset = rig.clock.SystemNowUs() - rig.clock.MonotonicNowUs();
  rig.Append({rig.Stamped("t", 99)});
  stored = rig.Stored();
  LONGS_EQUAL(4, stored.size());
  for (int i = 0; i < 3; ++i) {
    LONGS_EQUAL(monos[i] + offset, stored[i].ts_us);
    CHECK_EQUAL(kQualityRestamped, stored[i].quality);
    DOUBLES_EQUAL(i, stored[i].value, 0);
  }
  CHECK_EQUAL(0u, stored[3].quality);
  LONGS_EQUAL(rig.clock.SystemNowUs(), stored[3].ts_us);
  LONGS_EQUAL(16, rig.HoldSize());  // emptied
  ClockGuardStats cs = *rig.ingest->clock_stats();
  LONGS_EQUAL(3, cs.restamped);
  LONGS_EQUAL(0, cs.held_readings);
  std::vector<SensorQuality> rep = rig.ingest->SensorReport();
  LONGS_EQUAL(3, rep[1].counters.flags.at("restamped"));
}

TEST(ClockSync, FutureIsNotJudgedWhileUnsynced) {
  Rig rig;
  rig.vcfg.defaults.future = FutureRule{};
  rig.Open();
  Reading dev = R("dev", kT0, 1);  // 54 years ahead of the unsynchronised clock, but right
  dev.source = "mqtt";
  rig.Append({dev});
  LONGS_EQUAL(1, rig.Stored().size());
}

TEST(ClockSync, HeldReadingsSurviveARestartWithinTheSameBoot) {
  Rig rig;
  rig.Open();
  const int64_t m0 = rig.clock.MonotonicNowUs();
  rig.Append({rig.Stamped("t", 1), rig.Stamped("u", 2)});
  rig.Close();
  rig.clock.Advance(30 * kSec);  // the process restarts; CLOCK_BOOTTIME goes on
  rig.Open();
  LONGS_EQUAL(0, rig.Stored().size());
  LONGS_EQUAL(2, rig.ingest->clock_stats()->held_readings);
  rig.clock.SetSystem(kT0);
  rig.probe->synced = true;
  rig.clock.Advance(2 * kSec);
  CHECK_TRUE(rig.ingest->Tick().ok());
  std::vector<Reading> stored = rig.Stored();
  LONGS_EQUAL(2, stored.size());
  LONGS_EQUAL(m0 + (rig.clock.SystemNowUs() - rig.clock.MonotonicNowUs()), stored[0].ts_us);
  CHECK_EQUAL(kQualityRestamped, stored[1].quality);
}

TEST(ClockSync, AReadingOfAnEarlierBootIsFlaggedNotSilentlyWrong) {
  Rig rig;
  rig.Open();
  Reading held = rig.Stamped("t", 1);
  rig.Append({held});
  rig.Close();
  // Power cut before sync; the board boots again, monotonic time starts over.
  rig.probe->boot = "boot-B";
  rig.clock.SetSystem(kBootWall);
  rig.Open();
  std::vector<Reading> stored = rig.Stored();
  LONGS_EQUAL(1, stored.size());
  CHECK_EQUAL(kQualityClockUnsynced, stored[0].quality);
  LONGS_EQUAL(held.ts_us, stored[0].ts_us);  // the time it was stamped with, flagged as such
  LONGS_EQUAL(1, rig.ingest->clock_stats()->unfixable);
}

TEST(ClockSync, UnfixableReadingsMeetTheOtherRules) {
  Rig rig;
  rig.vcfg.defaults.too_old = TooOldRule{};
  rig.Open();
  rig.Append({rig.Stamped("t", 1)});
  rig.Close();
  rig.probe->boot = "boot-B";
  rig.Open();
  // Stamped 1970 by the clock that never synchronised: the floor date rule quarantines it.
  LONGS_EQUAL(0, rig.Stored().size());
  LONGS_EQUAL(1, rig.ingest->stats().rejected.at("too_old"));
}

TEST(ClockSync, HeldLongerThanMaxHoldIsReleasedFlagged) {
  Rig rig;
  rig.Open();
  rig.Append({rig.Stamped("t", 1)});
  rig.clock.Advance(9 * 60 * kSec);
  rig.Append({rig.Stamped("t", 2)});
  CHECK_TRUE(rig.ingest->Tick().ok());
  LONGS_EQUAL(0, rig.Stored().size());
  rig.clock.Advance(61 * kSec);  // the first is now held 10m1s
  CHECK_TRUE(rig.ingest->Tick().ok());
  std::vector<Reading> stored = rig.Stored();
  LONGS_EQUAL(1, stored.size());
  DOUBLES_EQUAL(1, stored[0].value, 0);
  CHECK_EQUAL(kQualityClockUnsynced, stored[0].quality);
  LONGS_EQUAL(1, rig.ingest->clock_stats()->held_readings);
}

TEST(ClockSync, OverTheHoldBudgetTheOldestAreReleasedFlagged) {
  Rig rig;
  rig.vcfg.clock.max_hold_bytes = 64 * 1024;
  rig.Open();
  for (int i = 0; i < 40; ++i) {
    std::vector<Reading> batch;
    for (int k = 0; k < 50; ++k) batch.push_back(rig.Stamped("sensor-with-a-long-id/" + std::to_string(k), i));
    rig.Append(batch);
    rig.clock.Advance(kSec);
  }
  CHECK_TRUE(rig.ingest->Tick().ok());
  ClockGuardStats cs = *rig.ingest->clock_stats();
  CHECK(cs.held_bytes <= 64 * 1024);
  CHECK(cs.unfixable > 0);
  std::vector<Reading> stored = rig.Stored();
  LONGS_EQUAL(cs.unfixable, stored.size());
  LONGS_EQUAL(2000, stored.size() + cs.held_readings);
  DOUBLES_EQUAL(0, stored[0].value, 0);  // oldest first
}

TEST(ClockSync, ACrashDuringReleaseNeitherLosesNorDoubles) {
  TempDir dir;
  ManualClock clock{kBootWall, 5 * kSec};
  auto probe = std::make_shared<ProbeState>();
  ValidationConfig vcfg = ParseValidation("[validation.clock]\nmode = \"auto\"\n");
  buffer::Options bo;
  bo.path = dir.Join("b.db");
  bo.clock = &clock;
  ClockGuard::Options go;
  go.config = vcfg.clock;
  go.hold_path = dir.Join("hold");
  auto open_guard = [&](buffer::Store& store) {
    auto g = std::make_unique<ClockGuard>(go, clock, std::make_unique<FakeProbe>(probe));
    auto st = store.LoadState(ClockGuard::kStateKey);
    CHECK_TRUE(st.ok());
    CHECK_TRUE(g->Open(*st).ok());
    return g;
  };
  {
    auto store = buffer::Store::Open(bo).value();
    auto g = open_guard(*store);
    std::vector<Reading> rs;
    for (int i = 0; i < 5; ++i) rs.push_back(R("t", clock.SystemNowUs() + i, i));
    for (auto& r : rs) r.source = "sim";
    CHECK_TRUE(g->Hold(rs).ok());
  }
  probe->synced = true;
  clock.SetSystem(kT0);
  int64_t first_ts = 0;
  {
    // Crash 1: the release is computed but never committed.
    auto store = buffer::Store::Open(bo).value();
    auto g = open_guard(*store);
    auto rel = g->NextRelease();
    CHECK_TRUE(rel.ok() && rel->has_value());
    LONGS_EQUAL(5, (*rel)->readings.size());
    first_ts = (*rel)->readings[0].ts_us;
  }
  clock.Advance(3 * kSec);  // NTP slews a little more: the recorded sync offset must win
  clock.SetSystem(clock.SystemNowUs() + 1234);
  {
    // Crash 2: committed with its state, but the guard never heard back.
    auto store = buffer::Store::Open(bo).value();
    auto g = open_guard(*store);
    auto rel = g->NextRelease();
    CHECK_TRUE(rel.ok() && rel->has_value());
    LONGS_EQUAL(first_ts, (*rel)->readings[0].ts_us);
    auto t = store->AppendWithState((*rel)->readings, (*rel)->state);
    CHECK_TRUE(t.ok() && store->WaitDurable(*t).ok());
  }
  {
    auto store = buffer::Store::Open(bo).value();
    auto g = open_guard(*store);
    auto rel = g->NextRelease();
    CHECK_TRUE(rel.ok());
    CHECK_FALSE(rel->has_value());
    LONGS_EQUAL(0, g->stats().held_readings);
    auto recent = store->RecentReadings(100);
    LONGS_EQUAL(5, recent->size());
  }
}

TEST(ClockSync, ATornTailIsCutAndTheRestKept) {
  Rig rig;
  rig.Open();
  rig.Append({rig.Stamped("t", 1)});
  rig.Append({rig.Stamped("t", 2)});
  const uint64_t good = rig.HoldSize();
  rig.Close();
  {
    std::ofstream f(rig.HoldPath(), std::ios::binary | std::ios::app);
    f << std::string("\x40\x00\x00\x00garbage", 11);  // a record header promising 64 bytes, then nothing
  }
  rig.Open();
  LONGS_EQUAL(good, rig.HoldSize());
  LONGS_EQUAL(2, rig.ingest->clock_stats()->held_readings);
}

TEST(ClockSync, AForeignHoldFileIsRefusedAndLeftAlone) {
  TempDir dir;
  WriteFile(dir.Join("hold"), "precious data");
  ManualClock clock;
  ClockGuard::Options go;
  go.hold_path = dir.Join("hold");
  go.config.mode = ClockMode::kAuto;
  ClockGuard g(go, clock, std::make_unique<FakeProbe>(std::make_shared<ProbeState>()));
  Status s = g.Open(std::nullopt);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message().find("not an edgepipe hold file") != std::string::npos);
  STRCMP_EQUAL("precious data", ReadFile(dir.Join("hold")).c_str());
}

TEST(ClockSync, SystemProbeReadsTheKernelAndTimesyncd) {
  TempDir dir;
  WriteFile(dir.Join("boot_id"), "0f9b2c8e-1111-2222-3333-444455556666\n");
  auto p = MakeSystemClockSyncProbe(ClockMode::kTimesyncd, dir.Join("synchronized"), dir.Join("boot_id"));
  STRCMP_EQUAL("0f9b2c8e-1111-2222-3333-444455556666", p->BootId().c_str());
  CHECK_FALSE(p->Synchronized());
  WriteFile(dir.Join("synchronized"), "");
  CHECK_TRUE(p->Synchronized());
  // adjtimex: compare with the kernel's answer read here independently.
  struct timex tx {};
  const bool kernel_synced = ::adjtimex(&tx) >= 0 && !(tx.status & STA_UNSYNC);
  auto adj = MakeSystemClockSyncProbe(ClockMode::kAdjtimex, dir.Join("absent"));
  CHECK_EQUAL(kernel_synced, adj->Synchronized());
  auto real = MakeSystemClockSyncProbe(ClockMode::kAuto, dir.Join("absent"));
  LONGS_EQUAL(36, real->BootId().size());
}
