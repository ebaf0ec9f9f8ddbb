// Opening the buffer database: pragmas, the disk budget, PRAGMA quick_check, moving a damaged
// file aside, schema migrations and the in-memory index of pending chunks.
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <random>
#include <thread>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "schema.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace edgepipe::buffer {
namespace {

constexpr const char* kLog = "buffer";
// New databases use 4 KiB pages: the size of a flash page on most cards, so a page write is
// not a read-modify-write inside the card (docs/benchmarks.md compares 1 KiB).
constexpr int kPageSize = 4096;
// SQLite's page cache for this connection (KiB). Chunks are read once (batches, merges), so a
// small cache costs little and keeps the agent's memory flat.
constexpr int kCacheKiB = 512;

std::string NewInstanceId() {
  std::random_device rd;
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// "20261126T064111Z" for file names.
std::string CompactUtc(int64_t us) {
  CivilTime c = CivilFromUs(us);
  char buf[24];
  snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

}  // namespace

int LastSqliteCode(sqlite3* db) { return db ? sqlite3_extended_errcode(db) : 0; }

bool IsIoWriteError(int code) {
  if ((code & 0xff) != SQLITE_IOERR) return false;
  return code != SQLITE_IOERR_READ && code != SQLITE_IOERR_SHORT_READ && code != SQLITE_IOERR_NOMEM;
}

bool IsCorruptionCode(int code) {
  const int primary = code & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || code == SQLITE_IOERR_READ ||
         code == SQLITE_IOERR_SHORT_READ;
}

// Checkpoints from the WAL hook (instead of SQLite's automatic checkpoint, whose errors are
// silent) so that a failed write or fsync of the database file puts the store into IO_ERROR like
// any other. The commit that ran the hook has succeeded either way, so the hook never returns an
// error (that would make the caller believe the commit failed and commit its work twice).
//
// The WAL must also fit the file system: a WAL that filled the disk cannot be checkpointed (the
// main file has no room to take its pages) and nothing could be written again. So past a few
// frames the hook also checkpoints once the WAL holds more than a quarter of the free space.
static int WalHook(void* arg, sqlite3*, const char*, int frames) {
  auto* impl = static_cast<Store::Impl*>(arg);
  if (impl->io_failed) return SQLITE_OK;
  constexpr int kMinFrames = 16;
  bool due = frames >= impl->checkpoint_frames;
  if (!due && frames >= kMinFrames) {
    uint64_t free_bytes = 0;
    if (impl->FileSystemFree(&free_bytes))
      due = static_cast<uint64_t>(frames) * static_cast<uint64_t>(impl->page_size + 24) > free_bytes / 4;
  }
  if (!due) return SQLITE_OK;
  int rc = impl->Checkpoint(SQLITE_CHECKPOINT_PASSIVE);  // on impl->db, the hook's connection
  if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
    impl->NoteFailure(Status(StatusCode::kUnavailable, StrFormat("checkpoint: %s (sqlite code %d)", sqlite3_errstr(rc), rc)), rc);
  return SQLITE_OK;
}

Stmt& Store::Impl::Cached(const char* sql) {
  std::unique_ptr<Stmt>& st = stmt_cache[sql];
  if (!st || !st->valid()) st = std::make_unique<Stmt>(db, sql);
  else st->Reset();
  return *st;
}

void Store::Impl::CloseDb() {
  stmt_cache.clear();  // finalize before closing
  main_file_bytes = -1;
  fs_checked_mono = 0;
  page_counts = PageCounts();  // a new connection counts its changes from zero
  recent_chunks.clear();       // what this connection committed (a reopen may find another file)
  recent_bytes = 0;
  if (!db) return;
  // After an I/O error nothing may be written through this connection, not even the
  // checkpoint SQLite runs when the last connection closes; the next open recovers from the WAL.
  if (io_failed) sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  FinalizeKeptStatements(db);
  sqlite3_close_v2(db);
  db = nullptr;
}

Status Store::Impl::OpenAndCheck(bool* corrupt) {
  *corrupt = false;
  instance_id.clear();
  ClearLastFailedSqliteCode();
  auto fail = [&](Status s) {
    *corrupt = IsCorruptionCode(LastFailedSqliteCode());
    return s;
  };
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  int rc = sqlite3_open_v2(opt.path.c_str(), &db, flags, opt.vfs_name.empty() ? nullptr : opt.vfs_name.c_str());
  if (rc != SQLITE_OK) return fail(SqliteStatus(rc, db, "open " + opt.path));
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  // page_size only takes effect on a new database, and must come before WAL mode.
  Status s = Exec(db, StrFormat("PRAGMA page_size=%d", kPageSize).c_str());
  if (s.ok()) s = Exec(db, "PRAGMA journal_mode=WAL");
  if (!s.ok()) return fail(s);
  // Startup check (docs/durability.md): a damaged database is moved aside by OpenDatabase.
  {
    Stmt qc(db, "PRAGMA quick_check(3)");
    if (!qc.valid()) return fail(SqliteStatus(qc.prepare_rc(), db, "prepare quick_check"));
    std::string problems;
    while ((rc = qc.Step()) == SQLITE_ROW) {
      std::string row = qc.Text(0);
      if (row != "ok") problems += (problems.empty() ? "" : "; ") + row;
    }
    if (rc != SQLITE_DONE) return fail(SqliteStatus(rc, db, "quick_check"));
    if (!problems.empty()) {
      *corrupt = true;
      return DataLossError("quick_check of " + opt.path + " failed: " + problems);
    }
  }
  s = Exec(db, opt.sync == SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  if (s.ok()) s = Exec(db, StrFormat("PRAGMA cache_size=-%d", kCacheKiB).c_str());
  if (s.ok()) s = Exec(db, "PRAGMA foreign_keys=OFF");
  // Debian and others build SQLite with SECURE_DELETE: every freed page would be overwritten
  // with zeros, so an ack or an eviction would write as much as it deletes (flash wear), and on
  // a full file system an eviction could not even commit (its WAL frames need room).
  if (s.ok()) s = Exec(db, "PRAGMA secure_delete=OFF");
  if (!s.ok()) return fail(s);
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return fail(version.status());
  if (*version > kSchemaVersion)
    return FailedPreconditionError(StrFormat("%s has schema version %lld, newer than this edgepipe (%d)",
                                             opt.path.c_str(), static_cast<long long>(*version), kSchemaVersion));
  if (*version > 0 && *version < kSchemaVersion) {
    s = Migrate(static_cast<int>(*version));
    if (!s.ok()) return fail(s);
  }
  if (*version == kSchemaVersion) {  // the usual case: nothing to write at open
    Stmt get(db, "SELECT value FROM meta WHERE key='instance_id'");
    int grc = get.Step();
    if (grc == SQLITE_ROW) instance_id = get.Text(0);
    else if (grc != SQLITE_DONE) return fail(SqliteStatus(grc, db, "read instance id"));
  }
  if (instance_id.empty()) s = CreateSchema();
  if (!s.ok()) return fail(s);
  return ApplyBudget(corrupt);
}

Status Store::Impl::CreateSchema() {
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
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) Rollback(db);
  return s;
}

Status Store::Impl::ApplyBudget(bool* corrupt) {
  auto fail = [&](Status s) {
    *corrupt = IsCorruptionCode(LastFailedSqliteCode());
    return s;
  };
  Status s;
  // The budget: the WAL gets an allowance (checkpointed to stay within it), the main file the
  // rest, enforced by SQLite itself through max_page_count (inserts beyond it fail with
  // SQLITE_FULL, which the writer answers with the on_full policy).
  Result<int64_t> ps = QueryInt(db, "PRAGMA page_size", kPageSize);
  if (!ps.ok()) return fail(ps.status());
  page_size = *ps;
  wal_allowance = std::clamp<int64_t>(static_cast<int64_t>(opt.max_size_bytes / 8), 256 << 10, 32 << 20);
  max_pages = std::max<int64_t>(16, (static_cast<int64_t>(opt.max_size_bytes) - wal_allowance) / page_size);
  checkpoint_frames = std::max<int64_t>(8, wal_allowance / (page_size + 24) / 2);
  page_limit = max_pages;
  reserve_path = opt.path + ".reserve";
  db_dir = opt.path.substr(0, opt.path.find_last_of('/') + 1);
  if (db_dir.empty()) db_dir = ".";
  sqlite3_wal_hook(db, WalHook, this);  // replaces wal_autocheckpoint
  s = Exec(db, StrFormat("PRAGMA journal_size_limit=%lld", static_cast<long long>(wal_allowance)).c_str());
  if (s.ok()) s = Exec(db, StrFormat("PRAGMA max_page_count=%lld", static_cast<long long>(max_pages)).c_str());
  if (!s.ok()) return fail(s);
  Result<int64_t> pages = QueryInt(db, "PRAGMA page_count");
  if (!pages.ok()) return fail(pages.status());
  if (*pages > max_pages)
    EP_LOG_WARN(kLog, "%s holds %lld bytes, more than buffer.max_size allows for the file (%lld): it will not grow, "
                "and eviction reuses its free pages, but SQLite does not shrink it (VACUUM offline to do so)",
                opt.path.c_str(), static_cast<long long>(*pages * page_size), static_cast<long long>(max_pages * page_size));
  s = LoadPendingIndex();
  if (!s.ok()) return fail(s);
  return Status::Ok();
}

Status Store::Impl::Migrate(int from) {
  for (int v = from; v < kSchemaVersion; ++v) {
    EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
    Status s = Exec(db, kMigrations[v - 1]);
    if (s.ok()) s = Exec(db, StrFormat("PRAGMA user_version=%d", v + 1).c_str());
    if (s.ok()) s = Exec(db, "COMMIT");
    if (!s.ok()) {
      Rollback(db);
      return Status(s.code(), StrFormat("migrating %s from schema version %d to %d: %s", opt.path.c_str(), v, v + 1,
                                        s.message().c_str()));
    }
    EP_LOG_NOTICE(kLog, "migrated %s from schema version %d to %d", opt.path.c_str(), v, v + 1);
  }
  return Status::Ok();
}

Status Store::Impl::LoadPendingIndex() {
  Result<int64_t> seq = QueryInt(db, "SELECT COALESCE((SELECT value FROM counters WHERE name = 'group_commits'), 0)");
  if (!seq.ok()) return seq.status();
  commit_seq = *seq;
  pending_chunks.clear();
  newest_hour = INT64_MIN;
  // length(data) comes from the record header: the BLOBs themselves are not read.
  Stmt st(db, "SELECT id, hour, first_ts, last_ts, count, est_bytes, length(data) FROM chunks "
              "WHERE batch_id IS NULL ORDER BY id");
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ChunkMeta m;
    m.id = st.Int(0);
    m.hour = st.Int(1);
    m.first_ts = st.Int(2);
    m.last_ts = st.Int(3);
    m.count = static_cast<uint64_t>(st.Int(4));
    m.est_bytes = static_cast<uint64_t>(st.Int(5));
    m.stored_bytes = static_cast<uint64_t>(st.Int(6));
    m.mono_us = 0;  // committed by an earlier run: old enough for any batch age
    newest_hour = std::max(newest_hour, m.hour);
    pending_chunks.push_back(m);
  }
  return SqliteStatus(rc, db, "load pending chunks");
}

Status Store::Impl::OpenDatabase() {
  bool corrupt = false;
  Status s = OpenAndCheck(&corrupt);
  // A read error may be transient (a loose card, a USB reset): only one that persists makes the
  // file "unreadable" and moves it aside.
  for (int retry = 0; retry < 2 && !s.ok() && corrupt && (LastFailedSqliteCode() & 0xff) == SQLITE_IOERR; ++retry) {
    CloseDb();
    EP_LOG_WARN(kLog, "reading %s failed (%s); retrying", opt.path.c_str(), s.ToString().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s = OpenAndCheck(&corrupt);
  }
  if (s.ok() || !corrupt) {
    if (!s.ok()) CloseDb();
    return s;
  }
  CloseDb();
  // Keep the damaged file (never delete data): move it, its WAL and its shared-memory index
  // aside under one name, then start an empty database so collection goes on.
  std::string aside = opt.path + ".corrupt-" + CompactUtc(clock->SystemNowUs());
  for (int n = 2; Exists(aside); ++n) aside = opt.path + ".corrupt-" + CompactUtc(clock->SystemNowUs()) + "-" + std::to_string(n);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string from = opt.path + suffix;
    if (!Exists(from)) continue;
    if (::rename(from.c_str(), (aside + suffix).c_str()) != 0)
      return FailedPreconditionError(StrFormat("%s is damaged (%s) and could not be moved aside to %s: %s",
                                               opt.path.c_str(), s.message().c_str(), (aside + suffix).c_str(),
                                               std::strerror(errno)));
  }
  EP_LOG_ERROR(kLog, "buffer database %s is damaged (%s): moved it to %s (kept, not deleted) and started an empty "
               "buffer. Readings still in the damaged file were not delivered; see docs/operations.md to recover them.",
               opt.path.c_str(), s.message().c_str(), aside.c_str());
  s = OpenAndCheck(&corrupt);
  if (!s.ok()) {
    CloseDb();
    return s;
  }
  recovered_from = aside;
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Stmt put(db, "INSERT INTO meta(key, value) VALUES('recovered_from', ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  put.Bind(1, aside);
  s = SqliteStatus(put.Step(), db, "note the damaged file");
  if (s.ok()) s = AddCounter("corrupt_recoveries", 1);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) Rollback(db);
  return s;
}

Status Store::Impl::Reopen() {
  CloseDb();
  const std::string before = recovered_from;
  Status s = OpenDatabase();
  if (!s.ok()) {
    EP_LOG_ERROR(kLog, "reopening %s after an I/O error failed: %s", opt.path.c_str(), s.ToString().c_str());
    return s;
  }
  if (recovered_from != before) leased.clear();  // those batches are in the file moved aside
  io_failed = false;
  io_error = Status::Ok();
  state = WriterState::kOk;
  ++reopens;
  EP_LOG_NOTICE(kLog, "reopened %s after an I/O error; writing again", opt.path.c_str());
  return Status::Ok();
}

}  // namespace edgepipe::buffer
