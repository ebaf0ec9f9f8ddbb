// The buffer's SQL schema (version 3) and the migrations from older versions.
// docs/buffer-format.md explains each table; docs/durability.md the protocol over them.
#pragma once

namespace edgepipe::buffer {

constexpr int kSchemaVersion = 3;

// Why the choices below: a 1 Hz gateway commits once a second for years, and each page a
// commit touches is written to the WAL (and later to the database) — on a flash card. So the
// per-commit path touches as few pages as possible:
//  * chunks has no AUTOINCREMENT (that rewrites sqlite_sequence on every insert): rowids are
//    max+1, so a new chunk's id is always above every stored chunk's, which is all the store
//    needs (ids order chunks by arrival; names of batches come from batches.id, which is
//    AUTOINCREMENT and so never reused);
//  * the index on chunks.batch_id is partial (claimed chunks only): committing a pending chunk
//    does not touch it;
//  * readings_committed is not a counter updated per commit but derived (stored + acked +
//    evicted + lost to corruption), see FillStats.
constexpr const char* kSchemaSql = R"SQL(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
-- Compressed groups of readings, all of one UTC hour ("partition"), in arrival order.
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY,
  hour INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  count INTEGER NOT NULL,
  est_bytes INTEGER NOT NULL,
  batch_id INTEGER,
  data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_batch ON chunks(batch_id, id) WHERE batch_id IS NOT NULL;
-- Claimed units of delivery. A row lives until its sink confirmed it.
CREATE TABLE IF NOT EXISTS batches(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL,
  hour INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  readings INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gaps(
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  sensor TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL,
  batch_id INTEGER);
CREATE INDEX IF NOT EXISTS gaps_by_batch ON gaps(batch_id, id);
CREATE TABLE IF NOT EXISTS quarantine(
  id INTEGER PRIMARY KEY,
  ts_us INTEGER NOT NULL,
  reading_ts INTEGER NOT NULL,
  source TEXT NOT NULL,
  sensor TEXT NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  value TEXT NOT NULL,
  raw BLOB NOT NULL,
  batch_id INTEGER);
CREATE INDEX IF NOT EXISTS quarantine_by_batch ON quarantine(batch_id, id);
-- Rejections not yet reported in a batch's quality summary, and those reported.
CREATE TABLE IF NOT EXISTS rejected_pending(
  rule TEXT PRIMARY KEY,
  count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batch_rejected(
  batch_id INTEGER NOT NULL,
  rule TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY(batch_id, rule));
CREATE TABLE IF NOT EXISTS counters(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
-- Small per-source state committed with readings (ReadingSink::AppendWithState).
CREATE TABLE IF NOT EXISTS source_state(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
-- State cells (ReadingSink::AppendWithCell): 64 little-endian u64 per row, index / 64 = block.
CREATE TABLE IF NOT EXISTS state_cells(
  key TEXT NOT NULL,
  block INTEGER NOT NULL,
  cells BLOB NOT NULL,
  PRIMARY KEY(key, block)) WITHOUT ROWID;
-- Upload ledger: the most recent deliveries (bounded).
CREATE TABLE IF NOT EXISTS uploads(
  id INTEGER PRIMARY KEY,
  batch_name TEXT NOT NULL,
  key TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  checksum TEXT NOT NULL,
  etag TEXT NOT NULL,
  time_us INTEGER NOT NULL);
-- Chunks that failed to decode, set aside (never deleted by the store except by the
-- drop_oldest policy under disk pressure) so a newer edgepipe or a person can look at them.
CREATE TABLE IF NOT EXISTS damaged_chunks(
  id INTEGER PRIMARY KEY,
  hour INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  count INTEGER NOT NULL,
  error TEXT NOT NULL,
  found_us INTEGER NOT NULL,
  data BLOB NOT NULL);
)SQL";

// Migrations: kMigrations[i] takes a database from version i + 1 to i + 2, in one transaction
// with the version bump. Each is plain SQL; chunk blobs of older formats stay as they are (the
// decoder reads every format) and are re-encoded when merged.
constexpr const char* kMigrations[] = {
    // 1 -> 2: drop AUTOINCREMENT from chunks/gaps/quarantine, make the chunk index partial,
    // derive readings_committed, add damaged_chunks (created by kSchemaSql afterwards).
    R"SQL(
ALTER TABLE chunks RENAME TO chunks_v1;
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY,
  hour INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  count INTEGER NOT NULL,
  est_bytes INTEGER NOT NULL,
  batch_id INTEGER,
  data BLOB NOT NULL);
INSERT INTO chunks SELECT id, hour, first_ts, last_ts, count, est_bytes, batch_id, data FROM chunks_v1;
DROP TABLE chunks_v1;
ALTER TABLE gaps RENAME TO gaps_v1;
CREATE TABLE gaps(
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  sensor TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL,
  batch_id INTEGER);
INSERT INTO gaps SELECT * FROM gaps_v1;
DROP TABLE gaps_v1;
ALTER TABLE quarantine RENAME TO quarantine_v1;
CREATE TABLE quarantine(
  id INTEGER PRIMARY KEY,
  ts_us INTEGER NOT NULL,
  reading_ts INTEGER NOT NULL,
  source TEXT NOT NULL,
  sensor TEXT NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  value TEXT NOT NULL,
  raw BLOB NOT NULL,
  batch_id INTEGER);
INSERT INTO quarantine SELECT * FROM quarantine_v1;
DROP TABLE quarantine_v1;
DELETE FROM sqlite_sequence WHERE name IN ('chunks', 'gaps', 'quarantine');
DELETE FROM counters WHERE name = 'readings_committed';
)SQL",
    // 2 -> 3: state cells (the MQTT source's per-packet records, a row per 64 identifiers
    // instead of a source_state row each; the old rows stay readable, Store::LoadCell).
    R"SQL(
CREATE TABLE IF NOT EXISTS state_cells(
  key TEXT NOT NULL,
  block INTEGER NOT NULL,
  cells BLOB NOT NULL,
  PRIMARY KEY(key, block)) WITHOUT ROWID;
)SQL",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion - 1, "one migration per schema version step");

}  // namespace edgepipe::buffer
