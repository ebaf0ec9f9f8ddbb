#include "edgepipe/buffer/store.h"

#include <sqlite3.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <filesystem>
#include <random>
#include <limits>
#include <set>
#include <tuple>
#include <thread>

#include "chunk_codec.h"
#include "chunk_data.h"
#include "edgepipe/core/log.h"
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

// OpenStore's options, for a test that changes one of them.
Options StoreOptions(const std::string& path, Clock* clock) {
  Options o;
  o.path = path;
  o.clock = clock;
  o.commit_interval_us = 10'000;
  return o;
}

std::unique_ptr<Store> OpenStore(const std::string& path, Clock* clock) {
  Result<std::unique_ptr<Store>> s = Store::Open(StoreOptions(path, clock));
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

namespace {
int64_t CellRows(const std::string& db_path) {
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*), COALESCE(SUM(length(cells)), 0) FROM state_cells", -1, &st, nullptr);
  int64_t rows = -1;
  if (sqlite3_step(st) == SQLITE_ROW) rows = sqlite3_column_int64(st, 0) * 1'000'000 + sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;  // rows * 1e6 + total bytes
}
}  // namespace

TEST(Store, StateCellsAreCommittedSixtyFourToARowAndSurviveReopen) {
  {
    auto store = OpenStore(path(), &clock);
    CHECK_FALSE(store->LoadCell("mq/pid", 5)->has_value());
    // 200 cells (1..200: rows 0..3) with readings, in one group commit; index 5 written twice.
    std::vector<Reading> none;
    uint64_t last = 0;
    for (uint32_t i = 1; i <= 200; ++i) {
      std::vector<Reading> rs{R("s", kHour0 + i, i)};
      last = *store->AppendWithCell(rs, StateCell{"mq/pid", i, 1000 + i});
      LONGS_EQUAL(1, rs.size());  // read, not taken
    }
    CHECK_TRUE(store->AppendWithCell(none, StateCell{"mq/pid", 5, 77}).ok());
    // Found while queued, before any commit (a redelivery may come before it).
    LONGS_EQUAL(77, store->LoadCell("mq/pid", 5)->value());
    LONGS_EQUAL(1200, store->LoadCell("mq/pid", 200)->value());
    CHECK_TRUE(store->WaitDurable(last + 1).ok());
    LONGS_EQUAL(4 * 1'000'000 + 4 * 64 * 8, CellRows(path()));  // 4 rows of 64 cells, not 200 rows
    // Another commit rewrites one row and adds one (index 65535: block 1023).
    CHECK_TRUE(store->WaitDurable(*store->AppendWithCell(none, StateCell{"mq/pid", 6, 66})).ok());
    CHECK_TRUE(store->WaitDurable(*store->AppendWithCell(none, StateCell{"mq/pid", 65535, 9})).ok());
    LONGS_EQUAL(5 * 1'000'000 + 5 * 64 * 8, CellRows(path()));
    // Tables are separate.
    CHECK_TRUE(store->WaitDurable(*store->AppendWithCell(none, StateCell{"other/pid", 5, 3})).ok());
  }
  auto store = OpenStore(path(), &clock);
  LONGS_EQUAL(77, store->LoadCell("mq/pid", 5)->value());
  LONGS_EQUAL(66, store->LoadCell("mq/pid", 6)->value());
  LONGS_EQUAL(1007, store->LoadCell("mq/pid", 7)->value());
  LONGS_EQUAL(1064, store->LoadCell("mq/pid", 64)->value());  // first cell of row 1
  LONGS_EQUAL(9, store->LoadCell("mq/pid", 65535)->value());
  LONGS_EQUAL(3, store->LoadCell("other/pid", 5)->value());
  CHECK_FALSE(store->LoadCell("mq/pid", 201)->has_value());  // in a stored row, never written
  CHECK_FALSE(store->LoadCell("mq/pid", 0)->has_value());
  CHECK_FALSE(store->LoadCell("mq/pid", 4000)->has_value());  // no row
  LONGS_EQUAL(200, store->GetStats().pending_readings);
}

TEST(Store, ACellStoredAsPlainStateBeforeCellsIsStillFound) {
  // How edgepipe before buffer schema 3 kept the MQTT packet records: one source_state row each.
  auto store = OpenStore(path(), &clock);
  CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, StateCell{"mq/mqtt-pid", 12, 0x1234abcdull}.AsState())).ok());
  STRCMP_EQUAL("000000001234abcd", store->LoadState("mq/mqtt-pid/12")->value().c_str());
  LONGS_EQUAL(0x1234abcd, store->LoadCell("mq/mqtt-pid", 12)->value());
  CHECK_FALSE(store->LoadCell("mq/mqtt-pid", 13)->has_value());
  // A cell written since takes precedence.
  std::vector<Reading> none;
  CHECK_TRUE(store->WaitDurable(*store->AppendWithCell(none, StateCell{"mq/mqtt-pid", 12, 5})).ok());
  LONGS_EQUAL(5, store->LoadCell("mq/mqtt-pid", 12)->value());
  // A value that is not 16 hex digits is no cell.
  CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, {"mq/mqtt-pid/14", "xyz"})).ok());
  CHECK_FALSE(store->LoadCell("mq/mqtt-pid", 14)->has_value());
}

TEST(Store, ACellWrittenRemovesThePlainRowOfItsIndexAndNoOther) {
  // Rows from before schema 3 do not stay for good: a cell written for an index supersedes its
  // row, which goes in the same commit; rows of other indexes and other tables stay.
  std::vector<Reading> none;
  {
    auto store = OpenStore(path(), &clock);
    for (uint32_t i : {1u, 2u, 70u})
      CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, StateCell{"mq/mqtt-pid", i, 0x100u + i}.AsState())).ok());
    CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, StateCell{"mq/mqtt-pid-x", 1, 7}.AsState())).ok());
    CHECK_TRUE(store->WaitDurable(*store->AppendWithState({}, {"mq/other/1", "kept"})).ok());
    CHECK_TRUE(store->AppendWithCell(none, StateCell{"mq/mqtt-pid", 1, 0x501}).ok());
    CHECK_TRUE(store->WaitDurable(*store->AppendWithCell(none, StateCell{"mq/mqtt-pid", 70, 0x570})).ok());
  }
  auto store = OpenStore(path(), &clock);  // what was committed
  CHECK_FALSE(store->LoadState("mq/mqtt-pid/1")->has_value());
  CHECK_FALSE(store->LoadState("mq/mqtt-pid/70")->has_value());
  STRCMP_EQUAL("0000000000000102", store->LoadState("mq/mqtt-pid/2")->value().c_str());
  STRCMP_EQUAL("0000000000000007", store->LoadState("mq/mqtt-pid-x/1")->value().c_str());
  STRCMP_EQUAL("kept", store->LoadState("mq/other/1")->value().c_str());
  LONGS_EQUAL(0x501, store->LoadCell("mq/mqtt-pid", 1)->value());
  LONGS_EQUAL(0x570, store->LoadCell("mq/mqtt-pid", 70)->value());
  LONGS_EQUAL(0x102, store->LoadCell("mq/mqtt-pid", 2)->value());  // still its plain row
  LONGS_EQUAL(7, store->LoadCell("mq/mqtt-pid-x", 1)->value());
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

// ---- columnar chunks, merging, splitting, migration, recovery, the disk budget ----

namespace {

std::unique_ptr<Store> OpenWith(Options o) {
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  if (!s.ok()) FAIL(s.status().ToString().c_str());
  return std::move(*s);
}

// Leases and acknowledges everything (flushing partial batches), returning the readings and gaps
// and, when asked, the size of each batch of readings.
void Drain(Store& store, const BatchPolicy& policy, std::vector<Reading>* readings, std::vector<GapRecord>* gaps,
           std::vector<size_t>* sizes = nullptr) {
  while (true) {
    auto b = store.LeaseBatch(policy, true);
    CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
    if (!b->has_value()) return;
    if ((*b)->kind == BatchKind::kReadings) {
      readings->insert(readings->end(), (*b)->readings.begin(), (*b)->readings.end());
      gaps->insert(gaps->end(), (*b)->gaps.begin(), (*b)->gaps.end());
      if (sizes) sizes->push_back((*b)->readings.size());
    }
    CHECK_TRUE(store.AckBatch((*b)->id, {}).ok());
  }
}

int64_t DbFilesSize(const std::string& path) {
  int64_t n = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto sz = std::filesystem::file_size(path + suffix, ec);
    if (!ec) n += static_cast<int64_t>(sz);
  }
  return n;
}

}  // namespace

TEST(Store, SmallCommitsAreMergedAndComeBackUnchangedAndInOrder) {
  Options o;
  o.path = path();
  o.clock = &clock;
  o.merge_target_readings = 1000;
  auto store = OpenWith(o);
  std::vector<Reading> all;
  auto commit = [&](int c, int64_t hour) {
    std::vector<Reading> rs;
    for (int s = 0; s < 10; ++s) rs.push_back(R("t" + std::to_string(s), hour + c * kUsPerSecond, 20 + 0.1 * ((c * 7 + s) % 13)));
    all.insert(all.end(), rs.begin(), rs.end());
    CHECK_TRUE(store->WaitDurable(*store->Append(rs)).ok());
  };
  for (int c = 0; c < 150; ++c) commit(c, kHour0);
  (void)store->MergeNow();
  // 100 commits of 10 readings made a full chunk; the last 50 wait for more (the hour is open).
  LONGS_EQUAL(51, store->GetStats().pending_chunks);
  commit(0, kHour0 + kUsPerHour);  // the hour is over: its small chunks are merged too
  (void)store->MergeNow();
  Stats st = store->GetStats();
  LONGS_EQUAL(3, st.pending_chunks);
  CHECK(st.merges >= 2);
  LONGS_EQUAL(1510, st.pending_readings);
  LONGS_EQUAL(1510, st.readings_committed);
  std::vector<Reading> out;
  std::vector<GapRecord> gaps;
  Drain(*store, Policy(10'000), &out, &gaps);
  CHECK_TRUE(all == out);
  // The merges read their chunks from memory (and so took them out of it); the merged chunks
  // were decoded from their rows, the unmerged one of the second hour came from memory.
  st = store->GetStats();
  LONGS_EQUAL(0, st.recent_chunk_bytes);
  LONGS_EQUAL(1, st.chunks_loaded_from_memory);
  LONGS_EQUAL(2, st.chunks_loaded_decoded);
}

TEST(Store, ABatchLeasedAsColumnsHoldsTheSameReadingsAsOneLeasedAsReadings) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> all;
  // Several chunks (one per commit), texts in some of them only, flags on some readings.
  for (int c = 0; c < 6; ++c) {
    std::vector<Reading> rs;
    for (int s = 0; s < 25; ++s) {
      Reading r = R("t" + std::to_string((s * 7 + c) % 9), kHour0 + (c * 25 + s) * kUsPerSecond, 20 + 0.25 * s);
      if (c % 3 == 1 && s % 4 == 0) {
        r.type = ValueType::kString;
        r.text = "state-" + std::to_string(s);
      }
      if (s % 6 == 0) r.quality = kQualitySpike;
      r.seq = static_cast<uint64_t>(c * 100 + s);
      rs.push_back(r);
    }
    all.insert(all.end(), rs.begin(), rs.end());
    CHECK_TRUE(store->WaitDurable(*store->Append(rs)).ok());
  }
  LONGS_EQUAL(6, store->GetStats().pending_chunks);  // one batch of six chunks
  BatchPolicy p = Policy(10'000);
  p.columns = true;
  auto b = store->LeaseBatch(p, true);
  CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
  CHECK_TRUE(b->has_value());
  const Batch& cols = **b;
  CHECK_TRUE(cols.readings.empty());
  LONGS_EQUAL(all.size(), cols.reading_count());
  CHECK_TRUE(cols.columns.ToReadings() == all);
  LONGS_EQUAL(all.size(), cols.quality.passed);
  // Each series is named once in the batch, not once per chunk it appears in.
  std::set<std::tuple<std::string, std::string, std::string, ValueType>> distinct;
  for (const Reading& r : all) distinct.emplace(r.sensor, r.unit, r.source, r.type);
  LONGS_EQUAL(distinct.size(), cols.columns.series.size());
  // Released and leased again as readings: the same batch, the same readings and counts.
  CHECK_TRUE(store->ReleaseBatch(cols.id).ok());
  auto again = store->LeaseBatch(Policy(10'000), true);
  CHECK_TRUE(again.ok() && again->has_value());
  LONGS_EQUAL(cols.id, (*again)->id);
  CHECK_TRUE((*again)->columns.empty());
  CHECK_TRUE((*again)->readings == all);
  CHECK_TRUE((*again)->quality == cols.quality);
  CHECK(cols.quality.flagged > 0);
}

TEST(Store, AWaiterCommitsOnItsOwnThreadWithoutWakingTheWriter) {
  Options o;
  o.path = path();
  o.commit_interval_us = 3'600'000'000LL;
  o.commit_max_readings = 1'000'000;
  auto store = OpenWith(o);
  for (int i = 0; i < 5; ++i) {
    Result<uint64_t> t = store->AppendWithState(std::vector<Reading>{R("s", kHour0 + i, i)}, {"mark", std::to_string(i)});
    CHECK_TRUE(store->WaitDurable(*t).ok());
  }
  Stats st = store->GetStats();
  LONGS_EQUAL(5, st.commits);
  LONGS_EQUAL(5, st.commits_by_waiters);
  LONGS_EQUAL(5, st.pending_readings);
  STRCMP_EQUAL("4", store->LoadState("mark")->value_or("").c_str());
}

TEST(Store, AQueuedItemNobodyWaitsForIsCommittedByTheWritersTimer) {
  // Appends do not wake the writer (a waiter commits itself); the idle writer must still find
  // the queued item within about one commit interval.
  Options o;
  o.path = path();
  o.commit_interval_us = 20'000;
  auto store = OpenWith(o);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the writer is idle now
  CHECK_TRUE(store->Append(std::vector<Reading>{R("s", kHour0, 1)}).ok());
  // (commits is counted just after the chunk is indexed: wait for both)
  CHECK_TRUE(testing::WaitUntil(5'000, [&] {
    Stats st = store->GetStats();
    return st.pending_readings == 1 && st.commits == 1;
  }));
  LONGS_EQUAL(0, store->GetStats().commits_by_waiters);
}

TEST(Store, TheWriterMergesOnlyChunksOlderThanMergeMinAge) {
  Options o;
  o.path = path();
  o.clock = &clock;
  o.merge_target_readings = 1000;
  o.merge_min_age_us = 10 * kUsPerSecond;
  auto store = OpenWith(o);
  auto commit = [&](int c) {
    std::vector<Reading> rs;
    for (int s = 0; s < 10; ++s) rs.push_back(R("t" + std::to_string(s), kHour0 + c * kUsPerSecond, 20 + 0.1 * s));
    CHECK_TRUE(store->WaitDurable(*store->Append(rs)).ok());
  };
  // Enough small chunks for a full merge, all younger than merge_min_age: the writer (which
  // tries a merge after every commit) leaves them alone.
  for (int c = 0; c < 120; ++c) commit(c);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  LONGS_EQUAL(0, store->GetStats().merges);
  LONGS_EQUAL(120, store->GetStats().pending_chunks);
  // Once they are that old, the next commit's maintenance merges them.
  clock.Advance(10 * kUsPerSecond);
  commit(200);
  CHECK_TRUE(testing::WaitUntil(10'000, [&] { return store->GetStats().merges >= 1; }));
  CHECK(store->GetStats().pending_chunks < 121);
  LONGS_EQUAL(1210, store->GetStats().pending_readings);
}

TEST(Store, ABatchLimitInsideAChunkSplitsItAndEveryReadingIsDeliveredOnce) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> in;
  for (int i = 0; i < 5000; ++i) in.push_back(R("s" + std::to_string(i % 4), kHour0 + i * 1000, i));
  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  LONGS_EQUAL(1, store->GetStats().pending_chunks);
  auto first = store->LeaseBatch(Policy(1200), false);
  CHECK_TRUE(first.ok() && first->has_value());
  LONGS_EQUAL(1200, (*first)->readings.size());
  CHECK_TRUE(std::vector<Reading>(in.begin(), in.begin() + 1200) == (*first)->readings);
  const Batch claimed = **first;
  // Crash before the ack: the split batch comes back identical after a reopen.
  store.reset();
  store = OpenStore(path(), &clock);
  auto again = store->LeaseBatch(Policy(1200), false);
  LONGS_EQUAL(claimed.id, (*again)->id);
  CHECK_TRUE(claimed.readings == (*again)->readings);
  CHECK_TRUE(store->AckBatch(claimed.id, {}).ok());
  std::vector<Reading> out = claimed.readings;
  std::vector<GapRecord> gaps;
  std::vector<size_t> sizes;
  Drain(*store, Policy(1200), &out, &gaps, &sizes);
  CHECK_TRUE((std::vector<size_t>{1200, 1200, 1200, 200}) == sizes);
  CHECK_TRUE(in == out);
  // max_bytes splits too: ~80 estimated bytes per reading here.
  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  BatchPolicy by_bytes = Policy(100'000);
  by_bytes.max_bytes = 80'000;
  auto b = store->LeaseBatch(by_bytes, false);
  CHECK_TRUE(b->has_value());
  CHECK((*b)->readings.size() < 1100 && (*b)->readings.size() > 900);
}

// A batch at least half full closes before a chunk that would take it over its limit, rather
// than split the chunk (a decode and two encodes); a batch less than half full still splits it.
// Chunks of 700/700/300/1100 readings against a limit of 1200 readings' worth (`policy` sets it
// by count or by estimated bytes), then 300/1100.
static void CheckTheHalfFullRule(const std::string& path, ManualClock* clock, const BatchPolicy& policy) {
  Options o = StoreOptions(path, clock);
  o.merge_target_readings = 1;  // no merge: one chunk per commit
  auto store = OpenWith(o);
  std::vector<Reading> in;
  auto commit = [&](int n) {
    std::vector<Reading> part;
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(in.size());
      part.push_back(R("s" + std::to_string(k % 4), kHour0 + k * 1000, k * 0.25));
      in.push_back(part.back());
    }
    CHECK_TRUE(store->WaitDurable(*store->Append(part)).ok());
  };
  commit(700);
  commit(700);
  commit(300);
  commit(1100);
  LONGS_EQUAL(4, store->GetStats().pending_chunks);
  std::vector<Reading> out;
  std::vector<GapRecord> gaps;
  std::vector<size_t> sizes;
  Drain(*store, policy, &out, &gaps, &sizes);
  // 700 (700 more would pass 1200; 700 is half full: closed), 700 + 300 (1100 more would pass
  // it at 1000: closed), then the 1100 whole. Nothing was split: every chunk came from memory.
  CHECK_TRUE((std::vector<size_t>{700, 1000, 1100}) == sizes);
  CHECK_TRUE(in == out);
  Stats st = store->GetStats();
  LONGS_EQUAL(4, st.chunks_loaded_from_memory);
  LONGS_EQUAL(0, st.chunks_loaded_decoded);
  // Less than half full: 300 then 1100 with a limit of 1200 splits the 1100 (900 join the batch).
  commit(300);
  commit(1100);
  auto b = store->LeaseBatch(policy, true);
  CHECK_TRUE(b.ok() && b->has_value());
  LONGS_EQUAL(1200, (*b)->readings.size());
  CHECK_TRUE(std::vector<Reading>(in.end() - 1400, in.end() - 200) == (*b)->readings);
  CHECK_TRUE(store->AckBatch((*b)->id, {}).ok());
  b = store->LeaseBatch(policy, true);
  CHECK_TRUE(b.ok() && b->has_value());
  CHECK_TRUE(std::vector<Reading>(in.end() - 200, in.end()) == (*b)->readings);
}

TEST(Store, ABatchHalfFullClosesBeforeAChunkThatDoesNotFitAndALessFullOneSplitsIt) {
  CheckTheHalfFullRule(path(), &clock, Policy(1200));
}

TEST(Store, TheHalfFullRuleAppliesToTheByteLimitToo) {
  BatchPolicy p = Policy(1'000'000);  // the count never limits
  // Every reading of the scenario has the same estimate: a 2-byte sensor, "Cel", "test".
  p.max_bytes = 1200 * edgepipe::buffer::EstimateReadingBytes(2, 3, 4, 0);
  CheckTheHalfFullRule(path(), &clock, p);
}

TEST(Store, ASchemaVersion1DatabaseIsMigratedWithItsContent) {
  {
    sqlite3* db = nullptr;
    sqlite3_open(path().c_str(), &db);
    std::string sql = edgepipe::testing::ReadFile(edgepipe::testing::SourceDir() + "/tests/data/buffer/v1-ok.sql");
    LONGS_EQUAL(SQLITE_OK, sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr));
    sqlite3_close(db);
  }
  auto store = OpenStore(path(), &clock);
  STRCMP_EQUAL("18df11d1", store->instance_id().c_str());
  STRCMP_EQUAL("30", store->LoadState("fixture/seq")->value().c_str());
  Stats st = store->GetStats();
  LONGS_EQUAL(20, st.pending_readings);
  LONGS_EQUAL(1, st.claimed_batches);
  LONGS_EQUAL(30, st.readings_committed);
  // The batch claimed by the old version comes first, unchanged (v1 chunk format).
  auto b1 = store->LeaseBatch(Policy(), true);
  CHECK_TRUE(b1.ok() && b1->has_value());
  LONGS_EQUAL(1, (*b1)->id);
  STRCMP_EQUAL("18df11d1-0000000001", (*b1)->name.c_str());
  LONGS_EQUAL(10, (*b1)->readings.size());
  STRCMP_EQUAL("open", (*b1)->readings[4].text.c_str());
  LONGS_EQUAL(kQualityStuck, (*b1)->readings[3].quality);
  DOUBLES_EQUAL(20.5, (*b1)->readings[0].value, 0);
  CHECK_TRUE(store->AckBatch((*b1)->id, {}).ok());
  // New readings go into v2 chunks beside the v1 ones; everything comes out once, in order.
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("t9", kHour0 + 59 * kUsPerSecond, 9)})).ok());
  (void)store->MergeNow();
  auto b2 = store->LeaseBatch(Policy(), true);
  LONGS_EQUAL(21, (*b2)->readings.size());
  LONGS_EQUAL(1, (*b2)->gaps.size());
  STRCMP_EQUAL("sequence_gap", (*b2)->gaps[0].reason.c_str());
  LONGS_EQUAL(1, (*b2)->quality.rejected.at("range"));
  STRCMP_EQUAL("t9", (*b2)->readings.back().sensor.c_str());
  auto q = store->LeaseBatch(Policy(), true);
  CHECK(q->has_value() && (*q)->kind == BatchKind::kQuarantine);
  STRCMP_EQUAL("{\"t9\":250}", (*q)->quarantined[0].raw.c_str());
  sqlite3* db = nullptr;
  sqlite3_open(path().c_str(), &db);
  sqlite3_stmt* st2 = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st2, nullptr);
  sqlite3_step(st2);
  LONGS_EQUAL(3, sqlite3_column_int(st2, 0));
  sqlite3_finalize(st2);
  sqlite3_close(db);
}

TEST(Store, ADamagedDatabaseIsMovedAsideCountedAndAFreshOneStarted) {
  {
    auto store = OpenStore(path(), &clock);
    CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0, 1)})).ok());
  }
  // Overwrite the SQLite header: the file is no longer a database.
  std::string bytes = edgepipe::testing::ReadFile(path());
  for (size_t i = 0; i < 100; ++i) bytes[i] = static_cast<char>(0xA5);
  edgepipe::testing::WriteFile(path(), bytes);
  auto store = OpenStore(path(), &clock);
  Stats st = store->GetStats();
  LONGS_EQUAL(1, st.corrupt_recoveries);
  CHECK(st.recovered_from.find(path() + ".corrupt-") == 0);
  CHECK_TRUE(edgepipe::testing::FileExists(st.recovered_from));
  STRCMP_EQUAL(bytes.c_str(), edgepipe::testing::ReadFile(st.recovered_from).c_str());  // kept as it was
  LONGS_EQUAL(0, st.pending_readings);
  CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("s", kHour0, 2)})).ok());
  LONGS_EQUAL(1, store->GetStats().pending_readings);
}

TEST(Store, ATruncatedDatabaseFailsQuickCheckAndIsMovedAside) {
  {
    auto store = OpenStore(path(), &clock);
    std::vector<Reading> in;
    for (int i = 0; i < 20'000; ++i) in.push_back(R("s" + std::to_string(i % 50), kHour0 + i, std::bit_cast<double>(uint64_t(i) * 0x9E3779B97F4A7C15ull)));
    for (int i = 0; i < 10; ++i) CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  }
  {
    sqlite3* db = nullptr;  // fold the WAL into the file first, so the damage is in the main file
    sqlite3_open(path().c_str(), &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  std::filesystem::resize_file(path(), std::filesystem::file_size(path()) / 2);
  auto store = OpenStore(path(), &clock);
  LONGS_EQUAL(1, store->GetStats().corrupt_recoveries);
  LONGS_EQUAL(0, store->GetStats().pending_readings);
}

TEST(Store, DropOldestKeepsTheFilesWithinMaxSizeAndGapsAccountForEveryEvictedReading) {
  Options o;
  o.path = path();
  o.clock = &clock;
  o.max_size_bytes = 2 << 20;
  o.commit_interval_us = 10'000;
  auto store = OpenWith(o);
  // Random doubles do not compress: about 8 bytes per reading, so 2 MiB holds ~200,000.
  std::mt19937_64 rng(5);
  uint64_t appended = 0;
  int64_t max_seen = 0;
  for (int c = 0; c < 120; ++c) {
    std::vector<Reading> rs;
    for (int i = 0; i < 5000; ++i) {
      rs.push_back(R("s" + std::to_string(i % 20), kHour0 + c * 10'000'000LL + i, std::bit_cast<double>(rng())));
      rs.back().seq = appended + i + 1;
    }
    CHECK_TRUE(store->WaitDurable(*store->Append(rs)).ok());
    appended += rs.size();
    max_seen = std::max(max_seen, DbFilesSize(path()));
    CHECK_TEXT(DbFilesSize(path()) <= static_cast<int64_t>(o.max_size_bytes),
               StrFormat("%lld bytes after commit %d", static_cast<long long>(DbFilesSize(path())), c).c_str());
  }
  CHECK(max_seen > static_cast<int64_t>(o.max_size_bytes) * 3 / 4);  // it did fill the budget
  Stats st = store->GetStats();
  CHECK(st.readings_evicted > 0);
  LONGS_EQUAL(appended, st.pending_readings + st.readings_evicted);
  LONGS_EQUAL(appended, st.readings_committed);
  std::vector<Reading> out;
  std::vector<GapRecord> gaps;
  Drain(*store, Policy(100'000), &out, &gaps);
  uint64_t gap_total = 0;
  for (const GapRecord& g : gaps) {
    STRCMP_EQUAL("evicted", g.reason.c_str());
    gap_total += g.count;
  }
  LONGS_EQUAL(st.readings_evicted, gap_total);
  LONGS_EQUAL(appended, out.size() + gap_total);
  // What was evicted is the oldest: the kept readings are the newest, each exactly once.
  std::set<uint64_t> seqs;
  for (const Reading& r : out) CHECK_TRUE(seqs.insert(r.seq).second);
  LONGS_EQUAL(appended, *seqs.rbegin());
  LONGS_EQUAL(gap_total + 1, *seqs.begin());
}

TEST(Store, RejectNewPushesBackWhenFullAndAcceptsAgainAfterAcks) {
  Options o;
  o.path = path();
  o.clock = &clock;
  o.max_size_bytes = 2 << 20;
  o.on_full = OnFull::kRejectNew;
  o.commit_interval_us = 10'000;
  auto store = OpenWith(o);
  std::mt19937_64 rng(9);
  uint64_t accepted = 0, refused = 0;
  for (int c = 0; c < 100 && refused == 0; ++c) {
    std::vector<Reading> rs;
    for (int i = 0; i < 5000; ++i) rs.push_back(R("s" + std::to_string(i % 20), kHour0 + c * 10'000'000LL + i, std::bit_cast<double>(rng())));
    Result<uint64_t> t = store->Append(rs);
    if (!t.ok()) {
      CHECK(t.status().code() == StatusCode::kResourceExhausted);
      CHECK(t.status().message().find("reject_new") != std::string::npos);
      refused += rs.size();
      continue;
    }
    Status s = store->WaitDurable(*t);
    if (s.ok()) accepted += rs.size();
    CHECK(DbFilesSize(path()) <= static_cast<int64_t>(o.max_size_bytes));
  }
  CHECK(refused > 0);
  Stats st = store->GetStats();
  STRCMP_EQUAL("full", st.state.c_str());
  LONGS_EQUAL(0, st.readings_evicted);
  // Delivering frees space: new readings are accepted again.
  std::vector<Reading> out;
  std::vector<GapRecord> gaps;
  Drain(*store, Policy(100'000), &out, &gaps);
  CHECK_TRUE(gaps.empty());
  STRCMP_EQUAL("ok", store->GetStats().state.c_str());
  Result<uint64_t> t = store->Append(std::vector<Reading>{R("s", kHour0 + kUsPerHour, 1)});
  CHECK_TRUE(t.ok());
  CHECK_TRUE(store->WaitDurable(*t).ok());
  CHECK(store->GetStats().readings_rejected >= refused);
  CHECK(out.size() >= accepted);
}

TEST(Store, AnUndecodableChunkIsSetAsideAsAGapAndTheBatchStillGoesOut) {
  {
    auto store = OpenStore(path(), &clock);
    CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("a", kHour0, 1), R("a", kHour0 + 1, 2)})).ok());
    CHECK_TRUE(store->WaitDurable(*store->Append(std::vector<Reading>{R("b", kHour0 + 2, 3)})).ok());
  }
  {
    sqlite3* db = nullptr;
    sqlite3_open(path().c_str(), &db);
    LONGS_EQUAL(SQLITE_OK, sqlite3_exec(db, "UPDATE chunks SET data = X'02DEADBEEF' WHERE id = (SELECT MIN(id) FROM chunks)",
                                        nullptr, nullptr, nullptr));
    sqlite3_close(db);
  }
  Options o;
  o.path = path();
  o.clock = &clock;
  o.merge_target_readings = 1;  // no merge touches the damaged chunk first
  auto store = OpenWith(o);
  auto b = store->LeaseBatch(Policy(), true);
  CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
  LONGS_EQUAL(1, (*b)->readings.size());
  STRCMP_EQUAL("b", (*b)->readings[0].sensor.c_str());
  LONGS_EQUAL(1, (*b)->gaps.size());
  STRCMP_EQUAL("corrupt_chunk", (*b)->gaps[0].reason.c_str());
  LONGS_EQUAL(2, (*b)->gaps[0].count);
  LONGS_EQUAL(kHour0, (*b)->gaps[0].from_us);
  Stats st = store->GetStats();
  LONGS_EQUAL(1, st.damaged_chunks);
  LONGS_EQUAL(2, st.readings_corrupt);
  LONGS_EQUAL(3, st.readings_committed);
}

// LoadBatch takes the chunks this process committed from memory (Store::Impl::recent_chunks)
// rather than decoding their rows again: the batch must hold exactly the readings appended.
TEST(Store, ABatchOfChunksCommittedByThisProcessComesFromMemoryWithTheSameReadings) {
  Options o = StoreOptions(path(), &clock);
  // No idle merge: hour 0's two chunks would be merged into a new row (decoded when loaded)
  // whenever the writer thread looks before the lease, as it does under qemu on the CI.
  o.merge_target_readings = 1;
  auto store = OpenWith(o);
  std::vector<Reading> in;  // two hours, two commits: four chunks
  for (int commit = 0; commit < 2; ++commit) {
    std::vector<Reading> part;
    for (int i = 0; i < 40; ++i) {
      const int k = commit * 40 + i;
      Reading r = R("s" + std::to_string(k % 5), kHour0 + (k % 2) * kUsPerHour + k * 1000, 20.0 + k * 0.125);
      if (k % 7 == 0) r.quality = kQualityStuck;
      if (k % 11 == 0) {
        r.type = ValueType::kString;
        r.text = "state " + std::to_string(k);
      }
      part.push_back(r);
    }
    CHECK_TRUE(store->WaitDurable(*store->Append(part)).ok());
    in.insert(in.end(), part.begin(), part.end());
  }
  CHECK_TRUE(store->GetStats().recent_chunk_bytes > 0);
  for (int hour = 0; hour < 2; ++hour) {
    std::vector<Reading> want;
    for (const Reading& r : in)
      if (r.ts_us / kUsPerHour == kHour0 / kUsPerHour + hour) want.push_back(r);
    BatchPolicy p = Policy();
    p.columns = hour == 1;  // both ways of loading
    auto b = store->LeaseBatch(p, true);
    CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
    CHECK_TRUE(b->has_value());
    std::vector<Reading> got = p.columns ? (*b)->columns.ToReadings() : (*b)->readings;
    LONGS_EQUAL(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK_TRUE_TEXT(want[i] == got[i], want[i].sensor.c_str());
    size_t flagged = 0;
    for (const Reading& r : want) flagged += r.quality != 0;
    LONGS_EQUAL(flagged, (*b)->quality.flagged);
  }
  Stats st = store->GetStats();
  LONGS_EQUAL(4, st.chunks_loaded_from_memory);
  LONGS_EQUAL(0, st.chunks_loaded_decoded);
  LONGS_EQUAL(0, st.recent_chunk_bytes);  // handed over, nothing kept
}

// The memory copy is used only while the row holds exactly the bytes written: a chunk changed
// since (here by another connection) is decoded from its row.
TEST(Store, AChunkChangedOnDiskAfterItsCommitIsReadFromTheRowNotFromMemory) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> written, replaced;
  for (int i = 0; i < 20; ++i) {
    written.push_back(R("s", kHour0 + i * 1000, i));
    replaced.push_back(R("s", kHour0 + i * 1000, 100 + i));
  }
  CHECK_TRUE(store->WaitDurable(*store->Append(written)).ok());
  {
    ChunkEncoder enc;
    const std::string blob = enc.Encode(replaced);
    sqlite3* db = nullptr;
    LONGS_EQUAL(SQLITE_OK, sqlite3_open(path().c_str(), &db));
    sqlite3_stmt* st = nullptr;
    LONGS_EQUAL(SQLITE_OK, sqlite3_prepare_v2(db, "UPDATE chunks SET data = ? WHERE id = (SELECT MIN(id) FROM chunks)",
                                              -1, &st, nullptr));
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    LONGS_EQUAL(SQLITE_DONE, sqlite3_step(st));
    sqlite3_finalize(st);
    LONGS_EQUAL(1, sqlite3_changes(db));
    sqlite3_close(db);
  }
  auto b = store->LeaseBatch(Policy(), true);
  CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
  CHECK_TRUE(b->has_value());
  CHECK_TRUE(replaced == (*b)->readings);
  Stats st = store->GetStats();
  LONGS_EQUAL(0, st.chunks_loaded_from_memory);
  LONGS_EQUAL(1, st.chunks_loaded_decoded);
  LONGS_EQUAL(0, st.recent_chunk_bytes);  // the stale copy is dropped
}

// A chunk split by a smaller batch keeps its id with new bytes (the tail) and gives a new row
// (the head): neither matches what was committed, both are decoded, nothing is lost or doubled.
TEST(Store, ASplitChunkIsDecodedFromItsRowsAndEveryReadingComesOnce) {
  auto store = OpenStore(path(), &clock);
  std::vector<Reading> in;
  for (int i = 0; i < 25; ++i) in.push_back(R("s" + std::to_string(i % 3), kHour0 + i * 1000, i * 0.5));
  CHECK_TRUE(store->WaitDurable(*store->Append(in)).ok());
  std::vector<Reading> got;
  for (int k = 0; k < 2; ++k) {
    auto b = store->LeaseBatch(Policy(15), true);
    CHECK_TRUE_TEXT(b.ok(), b.status().ToString().c_str());
    CHECK_TRUE(b->has_value());
    got.insert(got.end(), (*b)->readings.begin(), (*b)->readings.end());
    CHECK_TRUE(store->AckBatch((*b)->id, DeliveryReceipt{"k", 1, "x", "", 1}).ok());
  }
  CHECK_TRUE(in == got);
  Stats st = store->GetStats();
  LONGS_EQUAL(0, st.chunks_loaded_from_memory);
  LONGS_EQUAL(2, st.chunks_loaded_decoded);
}
