#include "sqlite_util.h"

#include <mutex>
#include <string>
#include <unordered_map>

#include "edgepipe/core/log.h"

namespace edgepipe::buffer {
namespace {
thread_local int t_last_failed_code = 0;

// Idle prepared statements by connection and SQL text (see Stmt).
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
using KeptByText = std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>>;
std::mutex g_kept_mu;
std::unordered_map<sqlite3*, KeptByText>& Kept() {
  static auto* kept = new std::unordered_map<sqlite3*, KeptByText>();  // never destroyed: no order at exit
  return *kept;
}

sqlite3_stmt* TakeKept(sqlite3* db, std::string_view sql) {
  std::lock_guard<std::mutex> lock(g_kept_mu);
  auto per_db = Kept().find(db);
  if (per_db == Kept().end()) return nullptr;
  auto it = per_db->second.find(sql);
  if (it == per_db->second.end() || it->second == nullptr) return nullptr;
  sqlite3_stmt* s = it->second;
  it->second = nullptr;  // the slot stays: no allocation when the statement comes back
  return s;
}

// Keeps `s` (reset, bindings cleared) unless a statement of the same text is already kept.
void Keep(sqlite3_stmt* s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  const char* text = sqlite3_sql(s);
  if (text != nullptr) {
    std::lock_guard<std::mutex> lock(g_kept_mu);
    KeptByText& per_db = Kept()[sqlite3_db_handle(s)];
    auto it = per_db.find(std::string_view(text));
    if (it == per_db.end()) it = per_db.emplace(text, nullptr).first;
    if (it->second == nullptr) {
      it->second = s;
      return;
    }
  }
  sqlite3_finalize(s);
}
}  // namespace

void FinalizeKeptStatements(sqlite3* db) {
  KeptByText kept;
  {
    std::lock_guard<std::mutex> lock(g_kept_mu);
    auto it = Kept().find(db);
    if (it == Kept().end()) return;
    kept.swap(it->second);
    Kept().erase(it);
  }
  for (auto& [text, s] : kept)
    if (s != nullptr) sqlite3_finalize(s);
}

size_t KeptStatementCount(sqlite3* db) {
  std::lock_guard<std::mutex> lock(g_kept_mu);
  auto it = Kept().find(db);
  if (it == Kept().end()) return 0;
  size_t n = 0;
  for (const auto& [text, s] : it->second) n += s != nullptr;
  return n;
}

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

Stmt::Stmt(sqlite3* db, const char* sql) {
  s_ = TakeKept(db, sql);
  if (s_ == nullptr) rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
}

Stmt::~Stmt() {
  if (s_) Keep(s_);
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
