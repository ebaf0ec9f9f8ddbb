// Statistics: from the live store (GetStats) and read-only from another process (ReadStats,
// used by `edgepipe status` while the agent runs).
#include <sys/stat.h>

#include "edgepipe/core/log.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace edgepipe::buffer {
namespace {

constexpr const char* kLog = "buffer";

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

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
      {"SELECT COUNT(*) FROM damaged_chunks", &st->damaged_chunks},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_acked'),0)", &st->readings_acked},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='batches_acked'),0)", &st->batches_acked},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_evicted'),0)", &st->readings_evicted},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_dropped_memory'),0)", &st->readings_dropped_memory},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_rejected'),0)", &st->readings_rejected},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='readings_corrupt'),0)", &st->readings_corrupt},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='quarantine_evicted'),0)", &st->quarantine_evicted},
      {"SELECT COALESCE((SELECT value FROM counters WHERE name='corrupt_recoveries'),0)", &st->corrupt_recoveries},
  };
  for (const Q& q : qs) {
    Result<int64_t> v = QueryInt(db, q.sql);
    if (!v.ok()) return v.status();
    *q.out = static_cast<uint64_t>(*v);
  }
  Result<int64_t> stored = QueryInt(db, "SELECT COALESCE(SUM(count),0) FROM chunks");
  if (!stored.ok()) return stored.status();
  // Every committed reading is stored, acknowledged, evicted or was lost to a damaged chunk.
  st->readings_committed = static_cast<uint64_t>(*stored) + st->readings_acked + st->readings_evicted + st->readings_corrupt;
  st->readings_dropped = st->readings_evicted + st->readings_dropped_memory + st->readings_rejected;
  Result<int64_t> oldest = QueryInt(db, "SELECT MIN(first_ts) FROM chunks WHERE batch_id IS NULL");
  if (!oldest.ok()) return oldest.status();
  st->oldest_pending_ts_us = *oldest;
  Stmt last(db, "SELECT time_us, key FROM uploads ORDER BY id DESC LIMIT 1");
  if (last.Step() == SQLITE_ROW) {
    st->last_ack_time_us = last.Int(0);
    st->last_ack_key = last.Text(1);
  }
  Stmt rec(db, "SELECT value FROM meta WHERE key = 'recovered_from'");
  if (rec.Step() == SQLITE_ROW) st->recovered_from = rec.Text(0);
  return Status::Ok();
}

}  // namespace

Stats Store::GetStats() {
  Stats st;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    st.memory_readings = impl_->pending.readings;
    st.journal_buffer_bytes = impl_->journal.buf.size();
    st.last_error = impl_->last_error.ok() ? "" : impl_->last_error.ToString();
  }
  {
    std::lock_guard<std::mutex> lock(impl_->db_mu);
    st.chunks_loaded_from_memory = impl_->chunks_loaded_from_memory;
    st.chunks_loaded_decoded = impl_->chunks_loaded_decoded;
    st.recent_chunk_bytes = impl_->recent_bytes;
    if (impl_->io_failed) {
      st.last_error = impl_->io_error.ToString();
    } else {
      Status s = FillStats(impl_->db, &st);
      if (!s.ok()) EP_LOG_WARN(kLog, "reading statistics: %s", s.ToString().c_str());
    }
  }
  st.max_bytes = impl_->opt.max_size_bytes;
  st.commits = impl_->commits.load();
  st.commits_by_waiters = impl_->commits_by_waiters.load();
  st.journal_writes = impl_->journal_writes.load();
  st.journal_replayed = impl_->journal_replayed;
  st.commit_errors = impl_->commit_errors.load();
  st.merges = impl_->merges.load();
  st.evictions = impl_->evictions.load();
  st.reopens = impl_->reopens.load();
  st.state = WriterStateName(impl_->state.load());
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
  FinalizeKeptStatements(db);
  sqlite3_close_v2(db);
  if (!s.ok()) return s;
  st.state = "unknown";  // the writer's state lives in the agent's process
  st.db_bytes = FileSize(path) + FileSize(path + "-wal");
  return st;
}

}  // namespace edgepipe::buffer
