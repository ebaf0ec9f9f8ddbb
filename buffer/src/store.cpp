#include "edgepipe/buffer/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "chunk_codec.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "schema.h"
#include "sqlite_util.h"

namespace edgepipe::buffer {

const char* SyncModeName(SyncMode m) { return m == SyncMode::kFull ? "full" : "normal"; }
const char* OnFullName(OnFull p) { return p == OnFull::kDropOldest ? "drop_oldest" : "reject_new"; }

namespace {

constexpr const char* kLog = "buffer";
constexpr int64_t kLedgerRows = 10'000;

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Rough size of the reading as one NDJSON line; used to close batches on max_bytes.
uint64_t EstimateBytes(const Reading& r) {
  return 72 + r.sensor.size() + r.unit.size() + r.source.size() + r.text.size();
}

std::string NewInstanceId() {
  std::random_device rd;
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

// Work queued for the next group commit.
struct Pending {
  std::vector<Reading> readings;
  std::vector<QuarantineRecord> quarantine;
  std::vector<GapRecord> gaps;
  std::map<std::string, std::string> state;  // source state, latest value per key
  bool empty() const { return readings.empty() && quarantine.empty() && gaps.empty() && state.empty(); }
  size_t size() const { return readings.size() + quarantine.size() + gaps.size(); }
};

}  // namespace

struct Store::Impl {
  Options opt;
  Clock* clock = nullptr;
  sqlite3* db = nullptr;
  std::string instance_id;

  // db_mu serialises every use of `db` (the writer's commits and the batch calls).
  std::mutex db_mu;

  // State shared between appenders, waiters and the writer thread, guarded by mu.
  std::mutex mu;
  std::condition_variable writer_cv;
  std::condition_variable durable_cv;
  Pending pending;
  int64_t pending_since_mono = 0;
  uint64_t appended_ticket = 0;  // last ticket handed out
  uint64_t durable_ticket = 0;   // every ticket <= this is committed
  uint64_t error_generation = 0; // bumped on each failed commit
  Status last_error;
  bool urgent = false;
  bool stop = false;
  std::thread writer;

  // Batch bookkeeping, guarded by db_mu.
  std::set<uint64_t> leased;
  std::deque<std::pair<int64_t, int64_t>> chunk_mono;  // (chunk id, monotonic us) this process
  int64_t first_chunk_this_process = INT64_MAX;

  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> commit_errors{0};

  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }

  Status OpenDb();
  void WriterLoop();
  Status CommitPending(Pending& work);
  Status InsertChunks(std::vector<Reading>& readings, int64_t now_mono);
  Status AddCounter(const char* name, int64_t delta);
  Result<std::optional<Batch>> LoadBatch(uint64_t id);
  Result<std::optional<uint64_t>> ClaimReadings(const BatchPolicy& policy, bool flush);
  Result<std::optional<uint64_t>> ClaimQuarantine(const BatchPolicy& policy, bool flush);
  std::string BatchName(uint64_t id) const {
    char buf[32];
    snprintf(buf, sizeof buf, "%s-%010llu", instance_id.c_str(), static_cast<unsigned long long>(id));
    return buf;
  }
  Result<uint64_t> Enqueue(Pending&& add);
};

Status Store::Impl::OpenDb() {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  int rc = sqlite3_open_v2(opt.path.c_str(), &db, flags, opt.vfs_name.empty() ? nullptr : opt.vfs_name.c_str());
  if (rc != SQLITE_OK) return SqliteStatus(rc, db, "open " + opt.path);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  EP_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode=WAL"));
  EP_RETURN_IF_ERROR(Exec(db, opt.sync == SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  EP_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=OFF"));
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion)
    return FailedPreconditionError(StrFormat("%s has schema version %lld, newer than this edgepipe (%d)",
                                             opt.path.c_str(), static_cast<long long>(*version), kSchemaVersion));
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Status s = Exec(db, kSchemaSql);
  if (s.ok()) s = Exec(db, StrFormat("PRAGMA user_version=%d", kSchemaVersion).c_str());
  if (s.ok()) {
    Stmt get(db, "SELECT value FROM meta WHERE key='instance_id'");
    if (get.Step() == SQLITE_ROW) {
      instance_id = get.Text(0);
    } else {
      instance_id = NewInstanceId();
      Stmt put(db, "INSERT INTO meta(key, value) VALUES('instance_id', ?)");
      put.Bind(1, instance_id);
      s = SqliteStatus(put.Step(), db, "store instance id");
    }
  }
  if (!s.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return s;
  }
  return Exec(db, "COMMIT");
}

Status Store::Impl::AddCounter(const char* name, int64_t delta) {
  if (delta == 0) return Status::Ok();
  Stmt st(db, "INSERT INTO counters(name, value) VALUES(?, ?) "
              "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
  st.Bind(1, name).Bind(2, delta);
  return SqliteStatus(st.Step(), db, "update counter");
}

Status Store::Impl::InsertChunks(std::vector<Reading>& readings, int64_t now_mono) {
  // One chunk per UTC hour present in the group, readings kept in arrival order.
  std::map<int64_t, std::vector<size_t>> by_hour;
  for (size_t i = 0; i < readings.size(); ++i) by_hour[FloorToHour(readings[i].ts_us)].push_back(i);
  Stmt ins(db, "INSERT INTO chunks(hour, first_ts, last_ts, count, est_bytes, batch_id, data) "
               "VALUES(?, ?, ?, ?, ?, NULL, ?)");
  if (!ins.valid()) return SqliteStatus(ins.prepare_rc(), db, "prepare chunk insert");
  std::vector<Reading> group;
  for (auto& [hour, idx] : by_hour) {
    group.clear();
    group.reserve(idx.size());
    int64_t first = INT64_MAX, last = INT64_MIN;
    uint64_t est = 0;
    for (size_t i : idx) {
      first = std::min(first, readings[i].ts_us);
      last = std::max(last, readings[i].ts_us);
      est += EstimateBytes(readings[i]);
      group.push_back(std::move(readings[i]));
    }
    std::string blob = EncodeChunk(group);
    ins.Reset();
    ins.Bind(1, hour).Bind(2, first).Bind(3, last).Bind(4, static_cast<int64_t>(group.size()))
        .Bind(5, static_cast<int64_t>(est)).BindBlob(6, blob.data(), blob.size());
    int rc = ins.Step();
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "insert chunk");
    int64_t id = sqlite3_last_insert_rowid(db);
    chunk_mono.emplace_back(id, now_mono);
    first_chunk_this_process = std::min(first_chunk_this_process, id);
    // Give the readings back so a failed transaction can be retried with the same content.
    for (size_t k = 0; k < idx.size(); ++k) readings[idx[k]] = std::move(group[k]);
  }
  return AddCounter("readings_committed", static_cast<int64_t>(readings.size()));
}

Status Store::Impl::CommitPending(Pending& work) {
  std::lock_guard<std::mutex> lock(db_mu);
  const size_t chunk_mark = chunk_mono.size();
  Status s = Exec(db, "BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  if (!work.readings.empty()) s = InsertChunks(work.readings, clock->MonotonicNowUs());
  if (s.ok() && !work.quarantine.empty()) {
    Stmt ins(db, "INSERT INTO quarantine(ts_us, reading_ts, source, sensor, rule, reason, value, raw, batch_id) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, NULL)");
    for (const QuarantineRecord& q : work.quarantine) {
      if (!s.ok()) break;
      ins.Reset();
      std::string_view raw = q.raw;
      if (raw.size() > opt.quarantine_raw_limit) raw = raw.substr(0, opt.quarantine_raw_limit);
      ins.Bind(1, q.ts_us).Bind(2, q.reading_ts_us).Bind(3, q.source).Bind(4, q.sensor).Bind(5, q.rule)
          .Bind(6, q.reason).Bind(7, q.value).BindBlob(8, raw.data(), raw.size());
      s = SqliteStatus(ins.Step(), db, "insert quarantine row");
      if (s.ok()) {
        Stmt rej(db, "INSERT INTO rejected_pending(rule, count) VALUES(?, 1) "
                     "ON CONFLICT(rule) DO UPDATE SET count = count + 1");
        rej.Bind(1, q.rule);
        s = SqliteStatus(rej.Step(), db, "count rejection");
      }
    }
    if (s.ok()) {
      // Bounded: evict the oldest unclaimed rows beyond the limit, and count them.
      Result<int64_t> rows = QueryInt(db, "SELECT COUNT(*) FROM quarantine");
      if (!rows.ok()) s = rows.status();
      else if (static_cast<uint64_t>(*rows) > opt.quarantine_max_rows) {
        int64_t excess = *rows - static_cast<int64_t>(opt.quarantine_max_rows);
        Stmt del(db, "DELETE FROM quarantine WHERE id IN "
                     "(SELECT id FROM quarantine WHERE batch_id IS NULL ORDER BY id LIMIT ?)");
        del.Bind(1, excess);
        s = SqliteStatus(del.Step(), db, "evict quarantine rows");
        if (s.ok()) s = AddCounter("quarantine_evicted", sqlite3_changes(db));
      }
    }
  }
  if (s.ok() && !work.gaps.empty()) {
    Stmt ins(db, "INSERT INTO gaps(source, sensor, from_us, to_us, count, reason, batch_id) "
                 "VALUES(?, ?, ?, ?, ?, ?, NULL)");
    for (const GapRecord& g : work.gaps) {
      if (!s.ok()) break;
      ins.Reset();
      ins.Bind(1, g.source).Bind(2, g.sensor).Bind(3, g.from_us).Bind(4, g.to_us)
          .Bind(5, static_cast<int64_t>(g.count)).Bind(6, g.reason);
      s = SqliteStatus(ins.Step(), db, "insert gap");
    }
  }
  if (s.ok() && !work.state.empty()) {
    Stmt up(db, "INSERT INTO source_state(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    for (const auto& [k, v] : work.state) {
      up.Reset();
      up.Bind(1, k).Bind(2, v);
      s = SqliteStatus(up.Step(), db, "store source state");
      if (!s.ok()) break;
    }
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    chunk_mono.resize(chunk_mark);
  }
  return s;
}

void Store::Impl::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu);
  int64_t backoff_us = 0;
  int shutdown_failures = 0;
  while (true) {
    auto due = [&] {
      if (stop || urgent) return true;
      if (pending.readings.size() >= opt.commit_max_readings) return true;
      return !pending.empty() && clock->MonotonicNowUs() - pending_since_mono >= opt.commit_interval_us;
    };
    if (backoff_us > 0 && !stop) {
      writer_cv.wait_for(lock, std::chrono::microseconds(backoff_us), [&] { return stop; });
    }
    while (!due()) {
      if (pending.empty()) {
        writer_cv.wait(lock);
      } else {
        int64_t left = pending_since_mono + opt.commit_interval_us - clock->MonotonicNowUs();
        writer_cv.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(left, 100)));
      }
    }
    if (pending.empty()) {
      urgent = false;
      durable_ticket = appended_ticket;
      durable_cv.notify_all();
      if (stop) break;
      continue;
    }
    Pending work;
    std::swap(work, pending);
    const uint64_t ticket = appended_ticket;
    urgent = false;
    lock.unlock();
    Status s = CommitPending(work);
    lock.lock();
    if (s.ok()) {
      ++commits;
      backoff_us = 0;
      durable_ticket = ticket;
    } else {
      ++commit_errors;
      ++error_generation;
      last_error = s;
      EP_LOG_ERROR(kLog, "commit of %zu readings failed, keeping them in memory and retrying: %s",
                   work.size(), s.ToString().c_str());
      // Put the work back in front of anything appended meanwhile, preserving order.
      work.readings.insert(work.readings.end(), std::make_move_iterator(pending.readings.begin()),
                           std::make_move_iterator(pending.readings.end()));
      work.quarantine.insert(work.quarantine.end(), std::make_move_iterator(pending.quarantine.begin()),
                             std::make_move_iterator(pending.quarantine.end()));
      work.gaps.insert(work.gaps.end(), pending.gaps.begin(), pending.gaps.end());
      for (auto& [k, v] : pending.state) work.state[k] = std::move(v);  // newer values win
      pending = std::move(work);
      backoff_us = std::min<int64_t>(backoff_us ? backoff_us * 2 : 50'000, 2'000'000);
      if (stop) {
        // Shutting down: one more try happens after the backoff; give up on a persistent error.
        if (++shutdown_failures > 3) {
          EP_LOG_ERROR(kLog, "giving up on %zu uncommitted items at shutdown: %s", pending.size(),
                       s.ToString().c_str());
          durable_cv.notify_all();
          break;
        }
      }
    }
    durable_cv.notify_all();
  }
}

Result<uint64_t> Store::Impl::Enqueue(Pending&& add) {
  std::lock_guard<std::mutex> lock(mu);
  if (stop) return CancelledError("buffer is closing");
  if (pending.size() + add.size() > opt.max_memory_readings)
    return ResourceExhaustedError(StrFormat("buffer has %zu uncommitted items in memory (limit %llu): %s",
                                            pending.size(), static_cast<unsigned long long>(opt.max_memory_readings),
                                            last_error.ok() ? "commits are slow" : last_error.ToString().c_str()));
  const bool was_empty = pending.empty();
  if (was_empty) pending_since_mono = clock->MonotonicNowUs();
  auto move_into = [](auto& dst, auto& src) {
    if (dst.empty()) dst = std::move(src);
    else dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
  };
  move_into(pending.readings, add.readings);
  move_into(pending.quarantine, add.quarantine);
  move_into(pending.gaps, add.gaps);
  for (auto& [k, v] : add.state) pending.state[k] = std::move(v);
  ++appended_ticket;
  // Wake the writer to start the commit timer (first item) or commit at once (group full).
  if (was_empty || pending.readings.size() >= opt.commit_max_readings) writer_cv.notify_one();
  return appended_ticket;
}

Result<std::optional<uint64_t>> Store::Impl::ClaimReadings(const BatchPolicy& policy, bool flush) {
  Stmt oldest(db, "SELECT id, hour FROM chunks WHERE batch_id IS NULL ORDER BY id LIMIT 1");
  int rc = oldest.Step();
  if (rc == SQLITE_DONE) return std::optional<uint64_t>();
  if (rc != SQLITE_ROW) return SqliteStatus(rc, db, "find oldest chunk");
  const int64_t oldest_id = oldest.Int(0);
  const int64_t hour = oldest.Int(1);

  // Candidate chunks of that hour, oldest first, until a limit is reached.
  Stmt cand(db, "SELECT id, count, est_bytes FROM chunks WHERE batch_id IS NULL AND hour = ? ORDER BY id");
  cand.Bind(1, hour);
  std::vector<int64_t> ids;
  uint64_t readings = 0, bytes = 0;
  bool full = false;
  while ((rc = cand.Step()) == SQLITE_ROW) {
    uint64_t n = static_cast<uint64_t>(cand.Int(1)), b = static_cast<uint64_t>(cand.Int(2));
    if (!ids.empty() && (readings + n > policy.max_readings || bytes + b > policy.max_bytes)) {
      full = true;
      break;
    }
    ids.push_back(cand.Int(0));
    readings += n;
    bytes += b;
    if (readings >= policy.max_readings || bytes >= policy.max_bytes) {
      full = true;
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteStatus(rc, db, "list chunks");

  bool old_enough = oldest_id < first_chunk_this_process;  // left from an earlier run
  if (!old_enough) {
    while (!chunk_mono.empty() && chunk_mono.front().first < oldest_id) chunk_mono.pop_front();
    int64_t since = chunk_mono.empty() ? clock->MonotonicNowUs() : chunk_mono.front().second;
    old_enough = clock->MonotonicNowUs() - since >= policy.max_age_us;
  }
  if (!(flush || full || old_enough)) return std::optional<uint64_t>();

  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Status s;
  uint64_t batch_id = 0;
  {
    Stmt ins(db, "INSERT INTO batches(kind, hour, created_us, readings) VALUES(0, ?, ?, ?)");
    ins.Bind(1, hour).Bind(2, clock->SystemNowUs()).Bind(3, static_cast<int64_t>(readings));
    s = SqliteStatus(ins.Step(), db, "insert batch");
    batch_id = static_cast<uint64_t>(sqlite3_last_insert_rowid(db));
  }
  if (s.ok()) {
    Stmt upd(db, "UPDATE chunks SET batch_id = ? WHERE id = ?");
    for (int64_t id : ids) {
      upd.Reset();
      upd.Bind(1, static_cast<int64_t>(batch_id)).Bind(2, id);
      s = SqliteStatus(upd.Step(), db, "claim chunk");
      if (!s.ok()) break;
    }
  }
  if (s.ok()) {
    Stmt gaps(db, "UPDATE gaps SET batch_id = ? WHERE batch_id IS NULL");
    gaps.Bind(1, static_cast<int64_t>(batch_id));
    s = SqliteStatus(gaps.Step(), db, "attach gaps");
  }
  if (s.ok()) {
    Stmt rej(db, "INSERT INTO batch_rejected(batch_id, rule, count) SELECT ?, rule, count FROM rejected_pending");
    rej.Bind(1, static_cast<int64_t>(batch_id));
    s = SqliteStatus(rej.Step(), db, "attach rejection counts");
    if (s.ok()) s = Exec(db, "DELETE FROM rejected_pending");
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return s;
  }
  return std::optional<uint64_t>(batch_id);
}

Result<std::optional<uint64_t>> Store::Impl::ClaimQuarantine(const BatchPolicy& policy, bool flush) {
  Stmt oldest(db, "SELECT ts_us FROM quarantine WHERE batch_id IS NULL ORDER BY id LIMIT 1");
  int rc = oldest.Step();
  if (rc == SQLITE_DONE) return std::optional<uint64_t>();
  if (rc != SQLITE_ROW) return SqliteStatus(rc, db, "find oldest quarantine row");
  const int64_t hour = FloorToHour(oldest.Int(0));
  Result<int64_t> n = QueryInt(db, "SELECT COUNT(*) FROM quarantine WHERE batch_id IS NULL");
  if (!n.ok()) return n.status();
  // Quarantine rows carry their receive time; age them by the system clock.
  const bool old_enough = clock->SystemNowUs() - oldest.Int(0) >= policy.max_age_us;
  if (!(flush || old_enough || static_cast<uint64_t>(*n) >= policy.max_readings)) return std::optional<uint64_t>();

  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Stmt ins(db, "INSERT INTO batches(kind, hour, created_us, readings) VALUES(1, ?, ?, 0)");
  ins.Bind(1, hour).Bind(2, clock->SystemNowUs());
  Status s = SqliteStatus(ins.Step(), db, "insert quarantine batch");
  const uint64_t batch_id = static_cast<uint64_t>(sqlite3_last_insert_rowid(db));
  if (s.ok()) {
    Stmt upd(db, "UPDATE quarantine SET batch_id = ?1 WHERE id IN (SELECT id FROM quarantine "
                 "WHERE batch_id IS NULL AND ts_us >= ?2 AND ts_us < ?3 ORDER BY id LIMIT ?4)");
    upd.Bind(1, static_cast<int64_t>(batch_id)).Bind(2, hour).Bind(3, hour + kUsPerHour)
        .Bind(4, static_cast<int64_t>(policy.max_readings));
    s = SqliteStatus(upd.Step(), db, "claim quarantine rows");
    if (s.ok()) {
      Stmt cnt(db, "UPDATE batches SET readings = ?1 WHERE id = ?2");
      cnt.Bind(1, sqlite3_changes(db)).Bind(2, static_cast<int64_t>(batch_id));
      s = SqliteStatus(cnt.Step(), db, "count quarantine batch");
    }
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return s;
  }
  return std::optional<uint64_t>(batch_id);
}

Result<std::optional<Batch>> Store::Impl::LoadBatch(uint64_t id) {
  Stmt b(db, "SELECT kind, hour, attempts FROM batches WHERE id = ?");
  b.Bind(1, static_cast<int64_t>(id));
  int rc = b.Step();
  if (rc == SQLITE_DONE) return std::optional<Batch>();
  if (rc != SQLITE_ROW) return SqliteStatus(rc, db, "load batch");
  Batch batch;
  batch.id = id;
  batch.name = BatchName(id);
  batch.kind = b.Int(0) == 1 ? BatchKind::kQuarantine : BatchKind::kReadings;
  batch.partition_us = b.Int(1);
  batch.attempts = static_cast<int>(b.Int(2));
  if (batch.kind == BatchKind::kReadings) {
    Stmt c(db, "SELECT id, data FROM chunks WHERE batch_id = ? ORDER BY id");
    c.Bind(1, static_cast<int64_t>(id));
    while ((rc = c.Step()) == SQLITE_ROW) {
      Result<std::vector<Reading>> rs = DecodeChunk(c.Blob(1));
      if (!rs.ok())
        return DataLossError(StrFormat("batch %s, chunk %lld: %s", batch.name.c_str(),
                                       static_cast<long long>(c.Int(0)), rs.status().message().c_str()));
      for (Reading& r : *rs) {
        if (r.quality != 0) ++batch.quality.flagged;
        batch.readings.push_back(std::move(r));
      }
    }
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "load chunks");
    Stmt g(db, "SELECT source, sensor, from_us, to_us, count, reason FROM gaps WHERE batch_id = ? ORDER BY id");
    g.Bind(1, static_cast<int64_t>(id));
    while ((rc = g.Step()) == SQLITE_ROW) {
      GapRecord gap{g.Text(0), g.Text(1), g.Int(2), g.Int(3), static_cast<uint64_t>(g.Int(4)), g.Text(5)};
      batch.quality.missing += gap.count;
      batch.gaps.push_back(std::move(gap));
    }
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "load gaps");
    Stmt r(db, "SELECT rule, count FROM batch_rejected WHERE batch_id = ? ORDER BY rule");
    r.Bind(1, static_cast<int64_t>(id));
    uint64_t rejected = 0;
    while ((rc = r.Step()) == SQLITE_ROW) {
      batch.quality.rejected[r.Text(0)] = static_cast<uint64_t>(r.Int(1));
      rejected += static_cast<uint64_t>(r.Int(1));
    }
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "load rejection counts");
    batch.quality.passed = batch.readings.size();
    batch.quality.readings_in = batch.quality.passed + rejected;
    batch.quality.gaps = batch.gaps.size();
  } else {
    Stmt q(db, "SELECT ts_us, reading_ts, source, sensor, rule, reason, value, raw FROM quarantine "
               "WHERE batch_id = ? ORDER BY id");
    q.Bind(1, static_cast<int64_t>(id));
    while ((rc = q.Step()) == SQLITE_ROW) {
      QuarantineRecord rec{q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Text(6), std::string(q.Blob(7))};
      batch.quality.rejected[rec.rule]++;
      batch.quarantined.push_back(std::move(rec));
    }
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "load quarantine rows");
  }
  return std::optional<Batch>(std::move(batch));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->clock = options.clock ? options.clock : &RealClock::Default();
  if (impl->opt.commit_max_readings == 0) impl->opt.commit_max_readings = 1;
  Status s = impl->OpenDb();
  if (!s.ok()) return s;
  Impl* raw = impl.get();
  raw->writer = std::thread([raw] { raw->WriterLoop(); });
  EP_LOG_INFO(kLog, "opened %s (sync=%s, instance %s)", options.path.c_str(), SyncModeName(options.sync),
              raw->instance_id.c_str());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::~Store() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->writer_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

Result<uint64_t> Store::Append(std::span<const Reading> readings) {
  Pending add;
  add.readings.assign(readings.begin(), readings.end());
  return impl_->Enqueue(std::move(add));
}

Result<uint64_t> Store::AppendWithState(std::span<const Reading> readings, const SourceState& state) {
  Pending add;
  add.readings.assign(readings.begin(), readings.end());
  if (!state.key.empty()) add.state[state.key] = state.value;
  return impl_->Enqueue(std::move(add));
}

Result<std::optional<std::string>> Store::LoadState(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  Stmt st(impl_->db, "SELECT value FROM source_state WHERE key = ?");
  st.Bind(1, key);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(st.Text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return SqliteStatus(rc, impl_->db, "load source state");
}

Result<std::vector<Reading>> Store::RecentReadings(size_t max_readings) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  std::vector<Reading> out;
  Stmt st(impl_->db, "SELECT data FROM chunks ORDER BY id DESC");
  int rc;
  while (out.size() < max_readings && (rc = st.Step()) == SQLITE_ROW) {
    Result<std::vector<Reading>> rs = DecodeChunk(st.Blob(0));
    if (!rs.ok()) continue;  // a damaged chunk is reported when its batch is built
    for (Reading& r : *rs) out.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> Store::Quarantine(const QuarantineRecord& record) {
  Pending add;
  add.quarantine.push_back(record);
  return impl_->Enqueue(std::move(add));
}

Result<uint64_t> Store::RecordGap(const GapRecord& gap) {
  Pending add;
  add.gaps.push_back(gap);
  return impl_->Enqueue(std::move(add));
}

Status Store::WaitDurable(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->durable_ticket >= ticket) return Status::Ok();
  impl_->urgent = true;
  impl_->writer_cv.notify_one();
  const uint64_t gen = impl_->error_generation;
  impl_->durable_cv.wait(lock, [&] {
    return impl_->durable_ticket >= ticket || impl_->error_generation != gen ||
           (impl_->stop && !impl_->writer.joinable());
  });
  if (impl_->durable_ticket >= ticket) return Status::Ok();
  if (impl_->error_generation != gen) return impl_->last_error;
  return CancelledError("buffer closed before the commit");
}

Status Store::Flush() {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ticket = impl_->appended_ticket;
  }
  return WaitDurable(ticket);
}

Result<std::optional<Batch>> Store::LeaseBatch(const BatchPolicy& policy, bool flush) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  sqlite3* db = impl_->db;
  // 1. Batches claimed earlier (possibly before a crash) and not in flight: same id, same content.
  {
    Stmt st(db, "SELECT id FROM batches ORDER BY id");
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      uint64_t id = static_cast<uint64_t>(st.Int(0));
      if (impl_->leased.count(id)) continue;
      Result<std::optional<Batch>> b = impl_->LoadBatch(id);
      if (!b.ok()) return b.status();
      if (b->has_value()) impl_->leased.insert(id);
      return b;
    }
    if (rc != SQLITE_DONE) return SqliteStatus(rc, db, "list batches");
  }
  // 2. Claim a new batch: readings first (oldest chunk decides), then quarantine.
  Result<std::optional<uint64_t>> id = impl_->ClaimReadings(policy, flush);
  if (!id.ok()) return id.status();
  if (!id->has_value()) {
    id = impl_->ClaimQuarantine(policy, flush);
    if (!id.ok()) return id.status();
  }
  if (!id->has_value()) return std::optional<Batch>();
  Result<std::optional<Batch>> b = impl_->LoadBatch(**id);
  if (b.ok() && b->has_value()) impl_->leased.insert(**id);
  return b;
}

Status Store::AckBatch(uint64_t batch_id, const DeliveryReceipt& receipt) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  sqlite3* db = impl_->db;
  const int64_t id = static_cast<int64_t>(batch_id);
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Result<int64_t> readings = QueryInt(db, ("SELECT readings FROM batches WHERE id = " + std::to_string(id)).c_str(), -1);
  Result<int64_t> kind = QueryInt(db, ("SELECT kind FROM batches WHERE id = " + std::to_string(id)).c_str(), -1);
  Status s = readings.ok() ? (kind.ok() ? Status::Ok() : kind.status()) : readings.status();
  if (s.ok() && *readings < 0) s = NotFoundError(StrFormat("batch %llu is not claimed", static_cast<unsigned long long>(batch_id)));
  const char* deletes[] = {"DELETE FROM chunks WHERE batch_id = ?", "DELETE FROM gaps WHERE batch_id = ?",
                           "DELETE FROM quarantine WHERE batch_id = ?", "DELETE FROM batch_rejected WHERE batch_id = ?",
                           "DELETE FROM batches WHERE id = ?"};
  for (const char* sql : deletes) {
    if (!s.ok()) break;
    Stmt d(db, sql);
    d.Bind(1, id);
    s = SqliteStatus(d.Step(), db, sql);
  }
  if (s.ok()) {
    Stmt led(db, "INSERT INTO uploads(batch_name, key, bytes, checksum, etag, time_us) VALUES(?, ?, ?, ?, ?, ?)");
    led.Bind(1, impl_->BatchName(batch_id)).Bind(2, receipt.key).Bind(3, static_cast<int64_t>(receipt.bytes))
        .Bind(4, receipt.checksum).Bind(5, receipt.etag).Bind(6, receipt.time_us);
    s = SqliteStatus(led.Step(), db, "record upload");
  }
  if (s.ok()) {
    Stmt trim(db, "DELETE FROM uploads WHERE id <= (SELECT MAX(id) FROM uploads) - ?");
    trim.Bind(1, kLedgerRows);
    s = SqliteStatus(trim.Step(), db, "trim upload ledger");
  }
  if (s.ok()) s = impl_->AddCounter(*kind == 1 ? "quarantine_acked" : "readings_acked", *readings);
  if (s.ok()) s = impl_->AddCounter("batches_acked", 1);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return s;
  }
  impl_->leased.erase(batch_id);
  return Status::Ok();
}

Status Store::ReleaseBatch(uint64_t batch_id) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  impl_->leased.erase(batch_id);
  Stmt st(impl_->db, "UPDATE batches SET attempts = attempts + 1 WHERE id = ?");
  st.Bind(1, static_cast<int64_t>(batch_id));
  return SqliteStatus(st.Step(), impl_->db, "record attempt");
}

const std::string& Store::instance_id() const { return impl_->instance_id; }

namespace {

Status FillStats(sqlite3* db, Stats* st) {
  struct Q {
    const char* sql;
    uint64_t* out;
  } qs[] = {
      {"SELECT COALESCE(SUM(count),0) FROM chunks WHERE batch_id IS NULL", &st->pending_readings},
      {"SELECT COUNT(*) FROM chunks WHERE batch_id IS NULL", &st->pending_chunks},
      {"SELECT COUNT(*) FROM batches", &st->claimed_batches},
      {"SELECT COALESCE(SUM(readings),0) FROM batches WHERE kind = 0", &st->claimed_readings},
      {"SELECT COUNT(*) FROM quarantine", &st->quarantine_rows},
      {"SELECT COUNT(*) FROM gaps", &st->gap_rows},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_committed'),0)", &st->readings_committed},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_acked'),0)", &st->readings_acked},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='batches_acked'),0)", &st->batches_acked},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_dropped'),0)", &st->readings_dropped},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='quarantine_evicted'),0)", &st->quarantine_evicted},
  };
  for (const Q& q : qs) {
    Result<int64_t> v = QueryInt(db, q.sql);
    if (!v.ok()) return v.status();
    *q.out = static_cast<uint64_t>(*v);
  }
  Result<int64_t> oldest = QueryInt(db, "SELECT MIN(first_ts) FROM chunks WHERE batch_id IS NULL");
  if (!oldest.ok()) return oldest.status();
  st->oldest_pending_ts_us = *oldest;
  Stmt last(db, "SELECT time_us, key FROM uploads ORDER BY id DESC LIMIT 1");
  if (last.Step() == SQLITE_ROW) {
    st->last_ack_time_us = last.Int(0);
    st->last_ack_key = last.Text(1);
  }
  return Status::Ok();
}

}  // namespace

Stats Store::GetStats() {
  Stats st;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    st.memory_readings = impl_->pending.readings.size();
  }
  {
    std::lock_guard<std::mutex> lock(impl_->db_mu);
    Status s = FillStats(impl_->db, &st);
    if (!s.ok()) EP_LOG_WARN(kLog, "reading statistics: %s", s.ToString().c_str());
  }
  st.commits = impl_->commits.load();
  st.commit_errors = impl_->commit_errors.load();
  st.db_bytes = FileSize(impl_->opt.path) + FileSize(impl_->opt.path + "-wal");
  return st;
}

Result<Stats> ReadStats(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) return NotFoundError("no buffer database at " + path);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db, "open " + path + " read-only");
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_busy_timeout(db, 2000);
  Stats st;
  Status s = FillStats(db, &st);
  sqlite3_close_v2(db);
  if (!s.ok()) return s;
  st.db_bytes = FileSize(path) + FileSize(path + "-wal");
  return st;
}

}  // namespace edgepipe::buffer
