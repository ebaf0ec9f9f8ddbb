#include "edgepipe/buffer/store.h"

#include <sqlite3.h>

#include <cmath>
#include <atomic>
#include <limits>
#include <set>
#include <thread>

#include "edgepipe/core/time_util.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::buffer;
using edgepipe::testing::TempDir;

namespace {

constexpr int64_t kHour0 = 1'700'000'000'000'000LL / kUsPerHour * kUsPerHour;  // an hour boundary

Reading R(const std::string& sensor, int64_t ts, double v) {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.unit = "Cel";
  r.source = "test";
  return r;
}

std::unique_ptr<Store> OpenStore(const std::string& path, Clock* clock) {
  Options o;
  o.path = path;
  o.clock = clock;
  o.commit_interval_us = 10'000;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  if (!s.ok()) FAIL(s.status().ToString().c_str());
  return std::move(*s);
}

BatchPolicy Policy(uint64_t max_readings = 1000, int64_t max_age_us = 60'000'000) {
  BatchPolicy p;
  p.max_readings = max_readings;
  p.max_age_us = max_age_us;
  return p;
}

}  // namespace

TEST_GROUP(Store) {
  TempDir dir;
  ManualClock clock{kHour0 + 10 * kUsPerSecond};
  std::string path() { return dir.Join("buffer.db"); }
};

TEST(Store, AppendedReadingsComeBackInABatchAndAckDeletesThem) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> in;
  for (int i = 0; i < 50; ++i) in.push_back(R("t" + std::to_string(i % 3), kHour0 + i * 1000, 20.0 + i * 0.01));
  in[7].quality = kQualityStuck;
  in[8].type = ValueType::kString;
  in[8].text = "open";
  in[9].type = ValueType::kBool;
  in[9].value = 1;
  Result<uint64_t> t = store->Append(in);
  CHECK_TRUE(t.ok());
  CHECK_TRUE(store->WaitDurable(*t).ok());

  auto b = store->LeaseBatch(Policy(), /*flush=*/true);
  CHECK_TRUE(b.ok());
  CHECK_TRUE(b->has_value());
  const Batch& batch = **b;
  LONGS_EQUAL(50, batch.readings.size());
  for (size_t i = 0; i < in.size(); ++i) CHECK_TRUE(in[i] == batch.readings[i]);
  LONGS_EQUAL(kHour0, batch.partition_us);
  LONGS_EQUAL(1, batch.quality.flagged);
  LONGS_EQUAL(50, batch.quality.passed);

  // Nothing else to hand out while it is leased.
  auto none = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(none.ok());
  CHECK_FALSE(none->has_value());

  CHECK_TRUE(store->AckBatch(batch.id, DeliveryReceipt{"k", 10, "abc", "", 1}).ok());
  Stats st = store->GetStats();
  LONGS_EQUAL(0, st.pending_readings);
  LONGS_EQUAL(0, st.claimed_batches);
  LONGS_EQUAL(50, st.readings_committed);
  LONGS_EQUAL(50, st.readings_acked);
  STRCMP_EQUAL("k", st.last_ack_key.c_str());
}

TEST(Store, ABatchNeverSpansTwoHours) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> in = {R("a", kHour0 + 1, 1), R("a", kHour0 + kUsPerHour + 1, 2), R("a", kHour0 + 2, 3),
                             R("a", kHour0 + kUsPerHour + 2, 4)};
  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  auto b1 = store->LeaseBatch(Policy(), true);
  auto b2 = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(b1->has_value() && b2->has_value());
  LONGS_EQUAL(kHour0, (*b1)->partition_us);
  LONGS_EQUAL(kHour0 + kUsPerHour, (*b2)->partition_us);
  LONGS_EQUAL(2, (*b1)->readings.size());
  DOUBLES_EQUAL(1, (*b1)->readings[0].value, 0);
  DOUBLES_EQUAL(3, (*b1)->readings[1].value, 0);
  for (const Reading& r : (*b2)->readings) LONGS_EQUAL(kHour0 + kUsPerHour, FloorToHour(r.ts_us));
}

TEST(Store, BatchesCloseOnMaxReadingsAndMaxAgeButNotBefore) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> in;
  for (int i = 0; i < 10; ++i) in.push_back(R("a", kHour0 + i, i));
  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  // Fewer readings than max and younger than max_age: not ready.
  auto none = store->LeaseBatch(Policy(100, 5'000'000), false);
  CHECK_FALSE(none->has_value());
  // Exactly at max_readings: ready.
  auto full = store->LeaseBatch(Policy(10, 5'000'000), false);
  CHECK_TRUE(full->has_value());
  LONGS_EQUAL(10, (*full)->readings.size());

  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  clock.Advance(4'999'999);
  CHECK_FALSE(store->LeaseBatch(Policy(100, 5'000'000), false)->has_value());
  clock.Advance(1);
  auto aged = store->LeaseBatch(Policy(100, 5'000'000), false);
  CHECK_TRUE(aged->has_value());
  LONGS_EQUAL(10, (*aged)->readings.size());
}

TEST(Store, ClaimedBatchIsReofferedUnchangedAfterReopen) {
  std::string name;
  uint64_t id;
  std::vector<Reading> first;
  {
    auto store = OpenStore(path(), &clock);
    std::vector<Reading> in;
    for (int i = 0; i < 30; ++i) in.push_back(R("s", kHour0 + i * 7, i * 1.5));
    CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
    auto b = store->LeaseBatch(Policy(), true);
    name = (*b)->name;
    id = (*b)->id;
    first = (*b)->readings;
    // Crash before the ack: the store is closed without AckBatch.
  }
  auto store = OpenStore(path(), &clock);
  // New readings arrive after the restart; the old batch still comes first, unchanged.
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0 + 999, 9)})).ok());
  auto b = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(b->has_value());
  LONGS_EQUAL(id, (*b)->id);
  STRCMP_EQUAL(name.c_str(), (*b)->name.c_str());
  CHECK_TRUE(first == (*b)->readings);
}

TEST(Store, ReleasedBatchIsOfferedAgainAndCountsAttempts) {
  auto store = OpenStore(path(), &clock);
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0, 1)})).ok());
  auto b = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(store->ReleaseBatch((*b)->id).ok());
  auto again = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(again->has_value());
  LONGS_EQUAL((*b)->id, (*again)->id);
  LONGS_EQUAL(1, (*again)->attempts);
}

TEST(Store, BatchNamesAreNeverReused) {
  auto store = OpenStore(path(), &clock);
  std::set<std::string> names;
  for (int i = 0; i < 5; ++i) {
    CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0 + i, i)})).ok());
    auto b = store->LeaseBatch(Policy(), true);
    CHECK_TRUE(names.insert((*b)->name).second);
    CHECK_TRUE(store->AckBatch((*b)->id, {}).ok());
  }
  LONGS_EQUAL(5, names.size());
}

TEST(Store, QuarantineRowsBecomeTheirOwnBatchAndCountInTheQualitySummary) {
  auto store = OpenStore(path(), &clock);
  QuarantineRecord q;
  q.ts_us = clock.SystemNowUs();
  q.reading_ts_us = kHour0 + 5;
  q.source = "mqtt";
  q.sensor = "t1";
  q.rule = "range";
  q.reason = "above max";
  q.value = "999";
  q.raw = std::string(5000, 'x');
  CHECK_TRUE(store->Quarantine(q).ok());
  CHECK_TRUE(store->Quarantine(q).ok());
  GapRecord g{"serial", "", kHour0, kHour0 + 10, 3, "sequence_gap"};
  CHECK_TRUE(store->RecordGap(g).ok());
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0, 1)})).ok());

  auto rb = store->LeaseBatch(Policy(), true);
  CHECK(rb->has_value() && (*rb)->kind == BatchKind::kReadings);
  LONGS_EQUAL(2, (*rb)->quality.rejected.at("range"));
  LONGS_EQUAL(3, (*rb)->quality.readings_in);
  LONGS_EQUAL(1, (*rb)->gaps.size());
  CHECK_TRUE(g == (*rb)->gaps[0]);
  LONGS_EQUAL(3, (*rb)->quality.missing);

  auto qb = store->LeaseBatch(Policy(), true);
  CHECK(qb->has_value() && (*qb)->kind == BatchKind::kQuarantine);
  LONGS_EQUAL(2, (*qb)->quarantined.size());
  LONGS_EQUAL(1024, (*qb)->quarantined[0].raw.size());  // truncated to quarantine_raw_limit
  STRCMP_EQUAL("above max", (*qb)->quarantined[0].reason.c_str());
  CHECK_TRUE(store->AckBatch((*qb)->id, {}).ok());
  LONGS_EQUAL(0, store->GetStats().quarantine_rows);
}

TEST(Store, WaitDurableForcesAnEarlyCommit) {
  Options o;
  o.path = path();
  o.commit_interval_us = 3'600'000'000LL;  // the timer alone would take an hour
  o.commit_max_readings = 1'000'000;
  auto opened = Store::Open(o);
  auto store = std::move(*opened);
  Result<uint64_t> t = store->Append(std::vector<Reading>{R("s", kHour0, 1)});
  CHECK_TRUE(store->WaitDurable(*t).ok());
  LONGS_EQUAL(1, store->GetStats().pending_readings);
}

TEST(Store, ConcurrentAppendersAndABatchReaderLoseNothing) {
  auto store = OpenStore(path(), &clock);
  constexpr int kThreads = 4, kPer = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; i += 10) {
        std::vector<Reading> rs;
        for (int k = 0; k < 10; ++k) rs.push_back(R("t" + std::to_string(t), kHour0 + i + k, i + k));
        (void)store->Append(rs);
      }
    });
  }
  std::set<std::pair<std::string, int64_t>> seen;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (true) {
      bool finished = done.load();
      auto b = store->LeaseBatch(Policy(500), finished);
      if (b.ok() && b->has_value()) {
        for (const Reading& r : (*b)->readings) CHECK_TRUE(seen.insert({r.sensor, r.ts_us}).second);
        CHECK_TRUE(store->AckBatch((*b)->id, {}).ok());
      } else if (finished) {
        break;
      }
    }
  });
  for (auto& th : threads) th.join();
  CHECK_TRUE(store->Flush().ok());
  done = true;
  reader.join();
  LONGS_EQUAL(kThreads * kPer, seen.size());
}

TEST(Store, RefusesADatabaseFromANewerVersion) {
  { auto store = OpenStore(path(), &clock); }
  sqlite3* db;
  sqlite3_open(path().c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  Options o;
  o.path = path();
  auto s = Store::Open(o);
  CHECK_FALSE(s.ok());
  CHECK(s.status().code() == StatusCode::kFailedPrecondition);
  CHECK(s.status().message().find("schema version 99") != std::string::npos);
}

TEST(Store, ReadStatsSeesWhatAnotherConnectionCommitted) {
  auto store = OpenStore(path(), &clock);
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0, 1), R("s", kHour0 + 1, 2)})).ok());
  Result<Stats> st = ReadStats(path());
  CHECK_TRUE(st.ok());
  LONGS_EQUAL(2, st->pending_readings);
  LONGS_EQUAL(kHour0, st->oldest_pending_ts_us);
  CHECK(ReadStats(dir.Join("nope.db")).status().code() == StatusCode::kNotFound);
}

TEST(Store, SourceStateIsCommittedWithTheReadingsAndSurvivesReopen) {
  {
    auto store = OpenStore(path(), &clock);
    CHECK_FALSE(store->LoadState("serial0/boot/1")->has_value());
    Result<uint64_t> t1 = store->AppendWithState(std::vector<Reading>{R("s", kHour0, 1)}, {"serial0/boot/1", "41"});
    Result<uint64_t> t2 = store->AppendWithState(std::vector<Reading>{R("s", kHour0 + 1, 2)}, {"serial0/boot/1", "42"});
    CHECK_TRUE(store->WaitDurable(*t2).ok());
    CHECK(*t2 > *t1);
    STRCMP_EQUAL("42", store->LoadState("serial0/boot/1")->value().c_str());
    // State alone (no readings) is committed too.
    CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, {"mqtt/x", "y"})).ok());
  }
  auto store = OpenStore(path(), &clock);
  STRCMP_EQUAL("42", store->LoadState("serial0/boot/1")->value().c_str());
  STRCMP_EQUAL("y", store->LoadState("mqtt/x")->value().c_str());
  LONGS_EQUAL(2, store->GetStats().pending_readings);
}

TEST(Store, RecentReadingsReturnsTheNewestChunksFirst) {
  auto store = OpenStore(path(), &clock);
  for (int i = 0; i < 5; ++i)
    CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0 + i, i), R("t", kHour0 + i, i)})).ok());
  Result<std::vector<Reading>> recent = store->RecentReadings(4);
  CHECK_TRUE(recent.ok());
  LONGS_EQUAL(4, recent->size());
  LONGS_EQUAL(kHour0 + 4, (*recent)[0].ts_us);
  LONGS_EQUAL(kHour0 + 3, (*recent)[2].ts_us);
}
