// The buffer's SQLite helpers (buffer/src/sqlite_util.h): prepared statements kept for reuse.
#include <sqlite3.h>

#include "sqlite_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::buffer;

TEST_GROUP(KeptStatements) {
  sqlite3* db = nullptr;
  void setup() override {
    CHECK_EQUAL(SQLITE_OK, sqlite3_open(":memory:", &db));
    CHECK_TRUE(Exec(db, "CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(1), (2), (3)").ok());
  }
  void teardown() override {
    FinalizeKeptStatements(db);
    // sqlite3_close (not _v2) refuses a connection with a statement left: every one was finalized.
    CHECK_EQUAL(SQLITE_OK, sqlite3_close(db));
  }
};

TEST(KeptStatements, AStatementIsReusedResetWithItsBindingsCleared) {
  const char* sql = "SELECT a FROM t WHERE a >= ?1 OR ?1 IS NULL ORDER BY a";
  sqlite3_stmt* first = nullptr;
  {
    Stmt st(db, sql);
    CHECK_TRUE(st.valid());
    first = st.get();
    st.Bind(1, int64_t{2});
    CHECK_EQUAL(SQLITE_ROW, st.Step());
    LONGS_EQUAL(2, st.Int(0));  // left in the middle of its rows
  }
  LONGS_EQUAL(1, KeptStatementCount(db));
  {
    Stmt again(db, sql);
    POINTERS_EQUAL(first, again.get());
    CHECK_FALSE(sqlite3_stmt_busy(again.get()));  // reset: no read transaction left open
    // Bindings cleared: ?1 is NULL, so every row comes back, from the first.
    CHECK_EQUAL(SQLITE_ROW, again.Step());
    LONGS_EQUAL(1, again.Int(0));
    LONGS_EQUAL(0, KeptStatementCount(db));  // taken out while in use
  }
  LONGS_EQUAL(1, KeptStatementCount(db));
}

TEST(KeptStatements, TwoLiveStatementsOfOneTextEachHaveTheirOwn) {
  const char* sql = "SELECT a FROM t ORDER BY a";
  {
    Stmt outer(db, sql);
    CHECK_EQUAL(SQLITE_ROW, outer.Step());
    Stmt inner(db, sql);
    CHECK_TRUE(outer.get() != inner.get());
    CHECK_EQUAL(SQLITE_ROW, inner.Step());
    LONGS_EQUAL(1, inner.Int(0));
    CHECK_EQUAL(SQLITE_ROW, outer.Step());
    LONGS_EQUAL(2, outer.Int(0));  // the inner one did not move the outer one
  }
  LONGS_EQUAL(1, KeptStatementCount(db));  // one kept, the other finalized
}

TEST(KeptStatements, ConnectionsDoNotShareStatementsAndAFailedPrepareKeepsNothing) {
  sqlite3* other = nullptr;
  CHECK_EQUAL(SQLITE_OK, sqlite3_open(":memory:", &other));
  { Stmt st(db, "SELECT 1"); }
  {
    Stmt st(other, "SELECT 1");
    CHECK_TRUE(st.valid());
    CHECK_EQUAL(SQLITE_ROW, st.Step());
  }
  LONGS_EQUAL(1, KeptStatementCount(db));
  LONGS_EQUAL(1, KeptStatementCount(other));
  FinalizeKeptStatements(other);
  LONGS_EQUAL(0, KeptStatementCount(other));
  CHECK_EQUAL(SQLITE_OK, sqlite3_close(other));
  {
    Stmt bad(db, "SELECT nope FROM nowhere");
    CHECK_FALSE(bad.valid());
    CHECK_TRUE(bad.prepare_rc() != SQLITE_OK);
  }
  LONGS_EQUAL(1, KeptStatementCount(db));
}
