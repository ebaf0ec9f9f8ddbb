#include "edgepipe/uploader/uploader.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "edgepipe/core/time_util.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {

// An in-memory BatchSource with the buffer's lease semantics.
class FakeSource : public BatchSource {
 public:
  void Add(uint64_t id, int readings) {
    Batch b;
    b.id = id;
    b.name = "b" + std::to_string(id);
    for (int i = 0; i < readings; ++i) {
      Reading r;
      r.sensor = "s";
      r.ts_us = i;
      r.value = i;
      b.readings.push_back(r);
    }
    batches[id] = b;
  }
  Result<std::optional<Batch>> LeaseBatch(const BatchPolicy&, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    ++leases;
    for (auto& [id, b] : batches)
      if (!leased.count(id)) {
        leased.insert(id);
        return std::optional<Batch>(b);
      }
    return std::optional<Batch>();
  }
  Status AckBatch(uint64_t id, const DeliveryReceipt& r) override {
    std::lock_guard<std::mutex> lock(mu);
    acked.push_back(id);
    receipts.push_back(r);
    batches.erase(id);
    leased.erase(id);
    return Status::Ok();
  }
  Status ReleaseBatch(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu);
    released.push_back(id);
    leased.erase(id);
    return Status::Ok();
  }
  size_t AckedCount() {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  }
  std::mutex mu;
  int leases = 0;
  std::map<uint64_t, Batch> batches;
  std::set<uint64_t> leased;
  std::vector<uint64_t> acked, released;
  std::vector<DeliveryReceipt> receipts;
};

// A sink that replays scripted outcomes, then succeeds. Keys containing `refuse` are always
// refused (kInvalidArgument). Thread-safe; records the most puts seen at once.
class ScriptedSink : public Sink {
 public:
  Result<PutResult> Put(const Object& o) override {
    int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {}
    if (put_delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(put_delay_ms));
    --in_flight;
    std::lock_guard<std::mutex> lock(mu);
    keys.push_back(o.key);
    bodies.push_back(o.body);
    if (!refuse.empty() && o.key.find(refuse) != std::string::npos)
      return InvalidArgumentError("HTTP 400 EntityTooLarge; the server refuses this object");
    if (!script.empty()) {
      Status s = script.front();
      script.pop_front();
      if (!s.ok()) return s;
    }
    return PutResult{"\"etag\""};
  }
  std::string Describe() const override { return "scripted://"; }
  ProbeReport Probe() override {
    ++probes;
    ProbeReport p;
    p.ran = probe_runs;
    p.put = probe_put;
    p.summary = "scripted probe";
    p.clock_skew_us = 1500;
    return p;
  }
  std::mutex mu;
  std::deque<Status> script;
  std::vector<std::string> keys, bodies;
  std::string refuse;
  int put_delay_ms = 0;
  std::atomic<int> in_flight{0}, max_in_flight{0}, probes{0};
  bool probe_runs = true;
  Status probe_put;
};

UploaderOptions Options() {
  UploaderOptions uo;
  uo.seed = 1;
  uo.retry_base_us = 1'000'000;
  uo.retry_cap_us = 8'000'000;
  uo.config_retry_us = 60'000'000;
  return uo;
}

Uploader Make(FakeSource& src, ScriptedSink& sink, Clock& clock, UploaderOptions uo = Options()) {
  ObjectOptions oo;
  oo.context.device = "gw";
  return Uploader(src, ObjectBuilder(oo), sink, clock, uo);
}

}  // namespace

TEST_GROUP(Uploader) {
  FakeSource src;
  ScriptedSink sink;
  ManualClock clock;
};

TEST(Uploader, AcksOnlyAfterTheSinkConfirms) {
  src.Add(1, 10);
  Uploader up = Make(src, sink, clock);
  Result<bool> r = up.DeliverOne(false);
  CHECK_TRUE(r.ok() && *r);
  LONGS_EQUAL(1, src.acked.size());
  STRCMP_EQUAL(sink.keys[0].c_str(), src.receipts[0].key.c_str());
  STRCMP_EQUAL("\"etag\"", src.receipts[0].etag.c_str());
  LONGS_EQUAL(sink.bodies[0].size(), src.receipts[0].bytes);
  LONGS_EQUAL(10, up.stats().readings);
  r = up.DeliverOne(false);
  CHECK_TRUE(r.ok() && !*r);  // nothing left
}

// The run summary and the status line report reading objects and quarantine objects apart
// (docs/operations.md): the quarantine part of the byte counts is kept on its own.
TEST(Uploader, QuarantineObjectsAreCountedApartFromReadingObjects) {
  src.Add(1, 10);
  Batch q;
  q.id = 2;
  q.name = "q2";
  q.kind = BatchKind::kQuarantine;
  for (int i = 0; i < 3; ++i) {
    QuarantineRecord rec;
    rec.ts_us = i;
    rec.sensor = "s";
    rec.rule = "finite";
    rec.reason = "value is NaN";
    q.quarantined.push_back(rec);
  }
  src.batches[2] = q;
  Uploader up = Make(src, sink, clock);
  for (int i = 0; i < 2; ++i) {
    Result<bool> r = up.DeliverOne(false);
    CHECK_TRUE(r.ok() && *r);
  }
  LONGS_EQUAL(2, sink.bodies.size());
  const bool quarantine_first = sink.keys[0].find("quarantine") != std::string::npos;
  const size_t q_bytes = sink.bodies[quarantine_first ? 0 : 1].size();
  const size_t r_bytes = sink.bodies[quarantine_first ? 1 : 0].size();
  UploaderStats st = up.stats();
  LONGS_EQUAL(2, st.objects);
  LONGS_EQUAL(1, st.quarantine_objects);
  LONGS_EQUAL(10, st.readings);
  LONGS_EQUAL(3, st.quarantine_records);
  LONGS_EQUAL(q_bytes + r_bytes, st.bytes);
  LONGS_EQUAL(q_bytes, st.quarantine_bytes);
  CHECK(st.quarantine_raw_bytes > 0 && st.quarantine_raw_bytes < st.raw_bytes);
}

TEST(Uploader, AFailedPutReleasesTheBatchAndTheRetrySendsTheSameKeyAndBytes) {
  src.Add(1, 10);
  sink.script = {UnavailableError("HTTP 503 SlowDown"), FailedPreconditionError("HTTP 403 InvalidAccessKeyId")};
  Uploader up = Make(src, sink, clock);
  Result<bool> r = up.DeliverOne(false);
  CHECK(r.status().code() == StatusCode::kUnavailable);
  LONGS_EQUAL(0, src.acked.size());
  LONGS_EQUAL(1, src.released.size());
  r = up.DeliverOne(false);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  r = up.DeliverOne(false);
  CHECK_TRUE(r.ok() && *r);
  LONGS_EQUAL(3, sink.keys.size());
  STRCMP_EQUAL(sink.keys[0].c_str(), sink.keys[2].c_str());
  CHECK_TRUE(sink.bodies[0] == sink.bodies[2]);
  LONGS_EQUAL(2, up.stats().failures);
  STRCMP_EQUAL("", up.stats().last_error.c_str());
}

TEST(Uploader, BackoffIsJitteredExponentialCappedAndSlowForConfigErrors) {
  Uploader up = Make(src, sink, clock);
  for (uint64_t n = 1; n <= 10; ++n) {
    int64_t ceiling = std::min<int64_t>(1'000'000LL << (n - 1), 8'000'000);
    for (int k = 0; k < 50; ++k) {
      int64_t d = up.BackoffUs(n, StatusCode::kUnavailable);
      CHECK(d >= 10'000 && d <= ceiling);
    }
  }
  LONGS_EQUAL(60'000'000, up.BackoffUs(1, StatusCode::kFailedPrecondition));
  LONGS_EQUAL(60'000'000, up.BackoffUs(7, StatusCode::kFailedPrecondition));
}

TEST(Uploader, DrainDeliversEverythingOrStopsAtTheFirstFailure) {
  for (uint64_t i = 1; i <= 5; ++i) src.Add(i, 3);
  Uploader up = Make(src, sink, clock);
  sink.script = {Status::Ok(), Status::Ok(), UnavailableError("down")};
  Status s = up.Drain(clock.MonotonicNowUs() + 1'000'000);
  CHECK(s.code() == StatusCode::kUnavailable);
  LONGS_EQUAL(2, src.acked.size());
  CHECK_TRUE(up.Drain(clock.MonotonicNowUs() + 1'000'000).ok());
  LONGS_EQUAL(5, src.acked.size());
  LONGS_EQUAL(0, src.batches.size());
}

TEST_GROUP(UploaderPoison) {
  FakeSource src;
  ScriptedSink sink;
  ManualClock clock;
  edgepipe::testing::TempDir dir;
  UploaderOptions Opts() {
    UploaderOptions uo = Options();
    uo.poison_retry_budget = 3;
    uo.set_aside_dir = dir.Join("set-aside");
    return uo;
  }
};

TEST(UploaderPoison, ARefusedBatchIsSetAsideAfterItsBudgetAndTheQueueMovesOn) {
  src.Add(1, 4);
  src.Add(2, 5);
  sink.refuse = "gw-b1.";
  Uploader up = Make(src, sink, clock, Opts());
  for (int i = 0; i < 2; ++i) CHECK(up.DeliverOne(false).status().code() == StatusCode::kInvalidArgument);
  LONGS_EQUAL(0, src.acked.size());
  LONGS_EQUAL(0, sink.probes.load());
  Result<bool> r = up.DeliverOne(false);  // third refusal: probe ok -> set aside
  CHECK_TRUE(r.ok() && *r);
  LONGS_EQUAL(1, sink.probes.load());
  LONGS_EQUAL(1, src.acked.size());
  LONGS_EQUAL(1, src.acked[0]);
  const std::string key = sink.keys[0];
  const std::string path = dir.Join("set-aside/") + key;
  STRCMP_EQUAL(("set-aside:" + path).c_str(), src.receipts[0].key.c_str());
  CHECK(edgepipe::testing::ReadFile(path) == sink.bodies[0]);  // the very bytes that were refused
  std::string reason = edgepipe::testing::ReadFile(path + ".reason.json");
  CHECK(reason.find("EntityTooLarge") != std::string::npos);
  CHECK(reason.find("\"attempts\":3") != std::string::npos);
  CHECK(reason.find("\"records\":4") != std::string::npos);
  UploaderStats st = up.stats();
  LONGS_EQUAL(1, st.set_aside_objects);
  LONGS_EQUAL(4, st.set_aside_records);
  LONGS_EQUAL(0, st.objects);
  r = up.DeliverOne(false);
  CHECK_TRUE(r.ok() && *r);
  LONGS_EQUAL(2, src.acked.size());
  LONGS_EQUAL(1, up.stats().objects);
}

TEST(UploaderPoison, TransientAndSharedFailuresNeverBurnTheBudget) {
  src.Add(1, 4);
  for (int i = 0; i < 10; ++i) sink.script.push_back(UnavailableError("HTTP 503 SlowDown"));
  for (int i = 0; i < 10; ++i) sink.script.push_back(FailedPreconditionError("HTTP 403 InvalidAccessKeyId"));
  sink.script.push_back(InvalidArgumentError("HTTP 400 BadDigest"));
  sink.script.push_back(InvalidArgumentError("HTTP 400 BadDigest"));
  Uploader up = Make(src, sink, clock, Opts());
  for (int i = 0; i < 22; ++i) CHECK_FALSE(up.DeliverOne(false).ok());
  Result<bool> r = up.DeliverOne(false);
  CHECK_TRUE(r.ok() && *r);
  LONGS_EQUAL(0, up.stats().set_aside_objects);
  LONGS_EQUAL(1, up.stats().objects);
  LONGS_EQUAL(0, sink.probes.load());
  STRCMP_EQUAL(sink.keys[0].c_str(), src.receipts[0].key.c_str());
}

TEST(UploaderPoison, WhenTheProbeIsRefusedTooTheProblemIsSharedAndNothingIsSetAside) {
  src.Add(1, 4);
  sink.refuse = "gw-b1.";
  sink.probe_put = FailedPreconditionError("HTTP 403 AccessDenied");
  Uploader up = Make(src, sink, clock, Opts());
  for (int i = 0; i < 2; ++i) CHECK(up.DeliverOne(false).status().code() == StatusCode::kInvalidArgument);
  CHECK(up.DeliverOne(false).status().code() == StatusCode::kFailedPrecondition);
  LONGS_EQUAL(1, sink.probes.load());
  LONGS_EQUAL(0, src.acked.size());
  LONGS_EQUAL(0, up.stats().set_aside_objects);
  CHECK_FALSE(edgepipe::testing::FileExists(dir.Join("set-aside")));
  // The budget started over: two more refusals do not set it aside.
  for (int i = 0; i < 2; ++i) CHECK(up.DeliverOne(false).status().code() == StatusCode::kInvalidArgument);
  LONGS_EQUAL(1, sink.probes.load());
}

TEST(UploaderPoison, WithoutASetAsideDirARefusedBatchIsRetriedForever) {
  src.Add(1, 4);
  sink.refuse = "gw-b1.";
  UploaderOptions o = Opts();
  o.set_aside_dir = "";
  Uploader up = Make(src, sink, clock, o);
  for (int i = 0; i < 10; ++i) CHECK(up.DeliverOne(false).status().code() == StatusCode::kInvalidArgument);
  LONGS_EQUAL(0, src.acked.size());
  LONGS_EQUAL(1, src.batches.size());
}

TEST_GROUP(UploaderRun) {
  FakeSource src;
  ScriptedSink sink;
  ManualClock clock;
};

TEST(UploaderRun, SeveralUploadsInFlightDeliverEverythingOnce) {
  for (uint64_t i = 1; i <= 24; ++i) src.Add(i, 3);
  sink.put_delay_ms = 40;
  UploaderOptions o = Options();
  o.concurrency = 4;
  o.poll_interval_us = 10'000;
  Uploader up = Make(src, sink, clock, o);
  std::thread t([&] { up.Run(); });
  CHECK_TRUE(edgepipe::testing::WaitUntil(20'000, [&] { return src.AckedCount() == 24; }));
  up.Stop();
  t.join();
  LONGS_EQUAL(4, sink.max_in_flight.load());
  std::set<uint64_t> ids(src.acked.begin(), src.acked.end());
  LONGS_EQUAL(24, ids.size());
  std::set<std::string> keys(sink.keys.begin(), sink.keys.end());
  LONGS_EQUAL(24, keys.size());  // nothing sent twice
  LONGS_EQUAL(24, up.stats().objects);
  LONGS_EQUAL(1, sink.probes.load());  // the start-up probe
  STRCMP_EQUAL("scripted probe", up.stats().probe.c_str());
  LONGS_EQUAL(1500, up.stats().clock_skew_us);
}

TEST(UploaderRun, OutsideTheUploadWindowNothingIsLeasedOrProbed) {
  src.Add(1, 3);
  clock.SetSystem(UsFromCivil(CivilTime{2026, 11, 26, 12, 0, 0, 0}));
  UploaderOptions o = Options();
  o.windows = *UploadWindows::Parse({"01:00-05:00"}, false);
  Uploader up = Make(src, sink, clock, o);
  std::thread t([&] { up.Run(); });
  CHECK_TRUE(edgepipe::testing::WaitUntil(5'000, [&] { return up.stats().outside_window; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  up.Stop();
  t.join();
  LONGS_EQUAL(0, src.leases);
  LONGS_EQUAL(0, sink.probes.load());
  Status d = up.Drain(clock.MonotonicNowUs() + 1'000'000);
  CHECK(d.code() == StatusCode::kUnavailable);
  CHECK(d.message().find("01:00-05:00") != std::string::npos);
  LONGS_EQUAL(0, src.leases);
  // Inside the window the drain sends it.
  clock.SetSystem(UsFromCivil(CivilTime{2026, 11, 27, 1, 30, 0, 0}));
  CHECK_TRUE(up.Drain(clock.MonotonicNowUs() + 1'000'000).ok());
  LONGS_EQUAL(1, src.acked.size());
}

TEST(UploaderRun, TheBandwidthCapDelaysObjectsByTheirSize) {
  for (uint64_t i = 1; i <= 18; ++i) src.Add(i, 50);
  ObjectOptions oo;
  oo.context.device = "gw";
  const uint64_t size = ObjectBuilder(oo).Build(src.batches[1])->body.size();
  UploaderOptions o = Options();
  // Cap at 10 objects per second: after the 1 s burst allowance (10 objects), each waits 100 ms.
  o.bandwidth_bytes_per_s = size * 10;
  Uploader up = Make(src, sink, clock, o);  // the monotonic clock stands still: reservations add up
  auto start = std::chrono::steady_clock::now();
  CHECK_TRUE(up.Drain(clock.MonotonicNowUs() + 60'000'000).ok());
  auto elapsed = std::chrono::steady_clock::now() - start;
  LONGS_EQUAL(18, src.acked.size());
  // Objects 1..11 go at once (burst), 12..18 wait 0.1 .. 0.7 s (sizes differ by a few bytes):
  // 2.8 s in all, and the drain takes at least the last wait.
  UploaderStats st = up.stats();
  CHECK(st.bandwidth_wait_us > 2'500'000 && st.bandwidth_wait_us < 3'100'000);
  CHECK(elapsed >= std::chrono::milliseconds(600));
  // A deadline the cap cannot meet stops the drain instead of overrunning it.
  for (uint64_t i = 30; i < 40; ++i) src.Add(i, 50);
  Status d = up.Drain(clock.MonotonicNowUs() + 100'000);
  CHECK(d.code() == StatusCode::kUnavailable);
  CHECK(d.message().find("bandwidth") != std::string::npos);
}
