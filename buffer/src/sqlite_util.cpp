#include "sqlite_util.h"

#include "edgepipe/core/log.h"

namespace edgepipe::buffer {
namespace {
thread_local int t_last_failed_code = 0;
}  // namespace

int LastFailedSqliteCode() { return t_last_failed_code; }
void ClearLastFailedSqliteCode() { t_last_failed_code = 0; }

Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  t_last_failed_code = rc;
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (sqlite code ";
  msg += std::to_string(rc);
  msg += ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(std::move(msg));
    case SQLITE_FULL:
      return ResourceExhaustedError(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(std::move(msg));
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return FailedPreconditionError(std::move(msg));
    case SQLITE_IOERR:
      // Disk full often surfaces as an I/O error on write or fsync.
      return UnavailableError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

void Rollback(sqlite3* db) {
  const int keep = t_last_failed_code;
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  t_last_failed_code = keep;
}

Stmt::Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db, std::string("exec ") + sql);
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql, int64_t fallback) {
  Stmt st(db, sql);
  if (!st.valid()) return SqliteStatus(st.prepare_rc(), db, sql);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return st.IsNull(0) ? fallback : st.Int(0);
  if (rc == SQLITE_DONE) return fallback;
  return SqliteStatus(rc, db, sql);
}

}  // namespace edgepipe::buffer
