#include "edgepipe/uploader/uploader.h"

#include <deque>
#include <map>
#include <set>

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
    for (auto& [id, b] : batches)
      if (!leased.count(id)) {
        leased.insert(id);
        return std::optional<Batch>(b);
      }
    return std::optional<Batch>();
  }
  Status AckBatch(uint64_t id, const DeliveryReceipt& r) override {
    acked.push_back(id);
    receipts.push_back(r);
    batches.erase(id);
    leased.erase(id);
    return Status::Ok();
  }
  Status ReleaseBatch(uint64_t id) override {
    released.push_back(id);
    leased.erase(id);
    return Status::Ok();
  }
  std::map<uint64_t, Batch> batches;
  std::set<uint64_t> leased;
  std::vector<uint64_t> acked, released;
  std::vector<DeliveryReceipt> receipts;
};

// A sink that replays scripted outcomes, then succeeds.
class ScriptedSink : public Sink {
 public:
  Result<PutResult> Put(const Object& o) override {
    keys.push_back(o.key);
    bodies.push_back(o.body);
    if (!script.empty()) {
      Status s = script.front();
      script.pop_front();
      if (!s.ok()) return s;
    }
    return PutResult{"\"etag\""};
  }
  std::string Describe() const override { return "scripted://"; }
  std::deque<Status> script;
  std::vector<std::string> keys, bodies;
};

Uploader Make(FakeSource& src, ScriptedSink& sink, Clock& clock) {
  ObjectOptions oo;
  oo.context.device = "gw";
  UploaderOptions uo;
  uo.seed = 1;
  uo.retry_base_us = 1'000'000;
  uo.retry_cap_us = 8'000'000;
  uo.config_retry_us = 60'000'000;
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
