// The buffer's SQL schema (version 1). docs/durability.md explains each table.
#pragma once

namespace edgepipe::buffer {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchemaSql = R"SQL(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
-- Ids are AUTOINCREMENT: never reused, so batch names (and object keys) stay unique and
-- "older than this process" comparisons stay true after the table empties.
-- Compressed groups of readings, all of one UTC hour ("partition").
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  hour INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  count INTEGER NOT NULL,
  est_bytes INTEGER NOT NULL,
  batch_id INTEGER,
  data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_batch ON chunks(batch_id, id);
-- Claimed units of delivery. A row lives until its sink confirmed it.
CREATE TABLE IF NOT EXISTS batches(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL,
  hour INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  readings INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gaps(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  sensor TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL,
  batch_id INTEGER);
CREATE INDEX IF NOT EXISTS gaps_by_batch ON gaps(batch_id, id);
CREATE TABLE IF NOT EXISTS quarantine(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
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
-- Upload ledger: the most recent deliveries (bounded).
CREATE TABLE IF NOT EXISTS uploads(
  id INTEGER PRIMARY KEY,
  batch_name TEXT NOT NULL,
  key TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  checksum TEXT NOT NULL,
  etag TEXT NOT NULL,
  time_us INTEGER NOT NULL);
)SQL";

}  // namespace edgepipe::buffer
