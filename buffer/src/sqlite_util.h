// Thin RAII helpers over the SQLite C API, private to the buffer.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "edgepipe/core/status.h"

namespace edgepipe::buffer {

// Maps a SQLite result code to a Status with a message naming the operation.
Status SqliteStatus(int rc, sqlite3* db, std::string_view what);
// The (extended) SQLite code of the last failure SqliteStatus/Exec reported on this thread; the
// writer classifies failures with it after the transaction was rolled back.
int LastFailedSqliteCode();
void ClearLastFailedSqliteCode();

// A prepared statement. Preparing costs tens of thousands of instructions (about as much as
// inserting a small chunk), so statements are kept: the destructor resets a statement and keeps it
// for the next Stmt of the same connection and SQL text (one idle statement per text; a Stmt
// constructed while another of the same text is alive prepares its own). Every live Stmt owns
// its statement alone, so nesting and threads are as safe as with fresh statements.
// Call FinalizeKeptStatements(db) before closing a connection, once no Stmt of it is alive (one
// destroyed later would be kept for the closed connection). Keep SQL texts literal (values go
// in bindings): one statement is kept per distinct text, a few KiB each, for the connection's life.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_), rc_(o.rc_) { o.s_ = nullptr; }

  bool valid() const { return s_ != nullptr; }
  int prepare_rc() const { return rc_; }
  sqlite3_stmt* get() { return s_; }

  Stmt& Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindDouble(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }
  Stmt& BindBlob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) { sqlite3_bind_null(s_, i); return *this; }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }
  void Reset() { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }

  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : std::string();
  }
  std::string_view Blob(int col) {
    const void* p = sqlite3_column_blob(s_, col);
    return p ? std::string_view(static_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : std::string_view();
  }
  bool IsNull(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
};

// Finalizes the statements kept for `db` (see Stmt); before sqlite3_close_v2(db).
void FinalizeKeptStatements(sqlite3* db);
// Statements kept for `db`, for tests.
size_t KeptStatementCount(sqlite3* db);

// Rolls back the open transaction, if any, keeping LastFailedSqliteCode() of the failure that
// caused the rollback (callers classify it afterwards).
void Rollback(sqlite3* db);
// Executes SQL without results.
Status Exec(sqlite3* db, const char* sql);
// Runs a single-value query; returns `fallback` when there is no row.
Result<int64_t> QueryInt(sqlite3* db, const char* sql, int64_t fallback = 0);

}  // namespace edgepipe::buffer
