// Batches: claiming chunks (splitting one when a batch limit falls inside it), leasing,
// acknowledging and releasing; setting damaged chunks aside; merging small chunks.
#include <algorithm>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace edgepipe::buffer {
namespace {

constexpr const char* kLog = "buffer";
constexpr int64_t kLedgerRows = 10'000;
constexpr int64_t kMaxBatchReserve = 1'000'000;  // a damaged row cannot make LoadBatch reserve gigabytes
constexpr size_t kMaxLoadScratchBytes = 4u << 20;  // LoadBatch keeps its decoding space up to this

}  // namespace

Result<ChunkData> Store::Impl::ReadChunk(int64_t id) {
  Stmt st(db, "SELECT data FROM chunks WHERE id = ?");
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return NotFoundError(StrFormat("chunk %lld not found", static_cast<long long>(id)));
  if (rc != SQLITE_ROW) return SqliteStatus(rc, db, "read chunk");
  // Every path that rewrites or deletes a chunk of this process (merge, split, eviction) reads it
  // here first: its memory copy, if any, is taken (used when the bytes are unchanged) and so
  // never outlives the row it mirrors.
  std::optional<ChunkData> recent = TakeRecent(id, st.Blob(0));
  if (recent) return std::move(*recent);
  return DecodeChunkData(st.Blob(0));
}

// Moves an undecodable chunk to damaged_chunks (kept) and records its readings as a gap, attached
// to `batch_id` when given (the batch being loaded), else to the next batch.
Status Store::Impl::SetAsideDamaged(int64_t chunk_id, const std::string& error, std::optional<uint64_t> batch_id) {
  EP_RETURN_IF_ERROR(CheckWritable());
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Stmt get(db, "SELECT hour, first_ts, last_ts, count FROM chunks WHERE id = ?");
  get.Bind(1, chunk_id);
  Status s = SqliteStatus(get.Step(), db, "find damaged chunk");
  const int64_t first = get.Int(1), last = get.Int(2), count = get.Int(3);
  if (s.ok()) {
    Stmt mv(db, "INSERT INTO damaged_chunks(id, hour, first_ts, last_ts, count, error, found_us, data) "
                "SELECT id, hour, first_ts, last_ts, count, ?2, ?3, data FROM chunks WHERE id = ?1");
    mv.Bind(1, chunk_id).Bind(2, error).Bind(3, clock->SystemNowUs());
    s = SqliteStatus(mv.Step(), db, "set damaged chunk aside");
  }
  if (s.ok()) {
    Stmt del(db, "DELETE FROM chunks WHERE id = ?");
    del.Bind(1, chunk_id);
    s = SqliteStatus(del.Step(), db, "remove damaged chunk");
  }
  if (s.ok()) {
    Stmt gap(db, "INSERT INTO gaps(source, sensor, from_us, to_us, count, reason, batch_id) VALUES('', '', ?, ?, ?, "
                 "'corrupt_chunk', ?)");
    gap.Bind(1, first).Bind(2, last).Bind(3, count);
    if (batch_id) gap.Bind(4, static_cast<int64_t>(*batch_id));
    else gap.BindNull(4);
    s = SqliteStatus(gap.Step(), db, "record damaged chunk as a gap");
  }
  if (s.ok() && batch_id) {
    Stmt upd(db, "UPDATE batches SET readings = readings - ? WHERE id = ?");
    upd.Bind(1, count).Bind(2, static_cast<int64_t>(*batch_id));
    s = SqliteStatus(upd.Step(), db, "recount batch");
  }
  if (s.ok()) s = AddCounter("readings_corrupt", count);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Rollback(db);
    NoteFailure(s, LastFailedSqliteCode());
    return s;
  }
  pending_chunks.erase(std::remove_if(pending_chunks.begin(), pending_chunks.end(),
                                      [&](const ChunkMeta& m) { return m.id == chunk_id; }),
                       pending_chunks.end());
  EP_LOG_ERROR(kLog, "chunk %lld of %s (%lld readings, %s .. %s) cannot be decoded (%s): set aside in the "
               "damaged_chunks table and reported as a gap", static_cast<long long>(chunk_id), opt.path.c_str(),
               static_cast<long long>(count), FormatIso8601Ms(first).c_str(), FormatIso8601Ms(last).c_str(),
               error.c_str());
  return Status::Ok();
}

Result<std::optional<uint64_t>> Store::Impl::ClaimReadings(const BatchPolicy& policy, bool flush) {
  if (pending_chunks.empty()) return std::optional<uint64_t>();
  const ChunkMeta oldest = pending_chunks.front();
  const int64_t hour = oldest.hour;
  const uint64_t max_readings = std::max<uint64_t>(policy.max_readings, 1);
  const uint64_t max_bytes = std::max<uint64_t>(policy.max_bytes, 1);
  // Candidate chunks of that hour, oldest first, until a limit is reached. When the limit falls
  // inside a chunk, the batch closes before that chunk if it is already at least half full;
  // otherwise the chunk is split: its first readings join the batch. A split decodes the chunk
  // and encodes both parts, which every batch paid when commit groups and batches were of
  // similar sizes (docs/benchmarks.md, "a batch closes before a chunk").
  std::vector<size_t> take;  // indexes into pending_chunks
  uint64_t readings = 0, bytes = 0;
  bool full = false;
  std::optional<size_t> split;  // index of the chunk to split
  uint64_t split_at = 0;        // readings of it that join the batch
  for (size_t i = 0; i < pending_chunks.size(); ++i) {
    const ChunkMeta& m = pending_chunks[i];
    if (m.hour != hour) continue;
    if (readings + m.count > max_readings || bytes + m.est_bytes > max_bytes) {
      if (!take.empty() && (readings * 2 >= max_readings || bytes * 2 >= max_bytes)) {
        full = true;  // half full or more: close here, the chunk stays whole for the next batch
        break;
      }
      const uint64_t per = std::max<uint64_t>(m.est_bytes / std::max<uint64_t>(m.count, 1), 1);
      uint64_t room = std::min(max_readings - readings, (max_bytes - std::min(bytes, max_bytes)) / per);
      if (room >= m.count) room = m.count - 1;  // the estimate rounds down; stay below the limit
      if (take.empty() && room == 0) room = 1;  // a batch holds at least one reading
      if (room > 0 && room < m.count) {
        split = i;
        split_at = room;
        readings += room;
      } else if (room > 0) {
        take.push_back(i);  // a single reading larger than max_bytes
        readings += m.count;
      }
      full = true;
      break;
    }
    take.push_back(i);
    readings += m.count;
    bytes += m.est_bytes;
    if (readings >= max_readings || bytes >= max_bytes) {
      full = true;
      break;
    }
  }
  const bool old_enough = oldest.mono_us == 0 || clock->MonotonicNowUs() - oldest.mono_us >= policy.max_age_us;
  if (!(flush || full || old_enough)) return std::optional<uint64_t>();
  EP_RETURN_IF_ERROR(CheckWritable());

  // The split happens before the transaction (decode + encode), the writes inside it.
  ChunkData head_data, tail_data;
  std::string head_blob, tail_blob;
  if (split) {
    Result<ChunkData> whole = ReadChunk(pending_chunks[*split].id);
    if (!whole.ok()) {
      if (whole.status().code() != StatusCode::kDataLoss) return whole.status();
      EP_RETURN_IF_ERROR(SetAsideDamaged(pending_chunks[*split].id, whole.status().message(), std::nullopt));
      return ClaimReadings(policy, flush);
    }
    head_data = whole->Slice(0, split_at);
    tail_data = whole->Slice(split_at, whole->size());
    head_blob = encoder.Encode(head_data);
    tail_blob = encoder.Encode(tail_data);
  }
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
    Stmt upd(db, "UPDATE chunks SET batch_id = ? WHERE id = ? AND batch_id IS NULL");
    for (size_t i : take) {
      upd.Reset();
      upd.Bind(1, static_cast<int64_t>(batch_id)).Bind(2, pending_chunks[i].id);
      s = SqliteStatus(upd.Step(), db, "claim chunk");
      if (s.ok() && sqlite3_changes(db) != 1) s = InternalError("claim: chunk index out of step with the table");
      if (!s.ok()) break;
    }
  }
  ChunkMeta tail_meta;
  if (s.ok() && split) {
    // The claimed head gets a new (highest) id, so it sorts last within its batch, as its
    // readings are the newest of the batch; the tail keeps the old id and its place.
    const ChunkMeta& m = pending_chunks[*split];
    Stmt ins(db, "INSERT INTO chunks(hour, first_ts, last_ts, count, est_bytes, batch_id, data) VALUES(?, ?, ?, ?, ?, ?, ?)");
    ins.Bind(1, hour).Bind(2, head_data.MinTs()).Bind(3, head_data.MaxTs()).Bind(4, static_cast<int64_t>(head_data.size()))
        .Bind(5, static_cast<int64_t>(head_data.EstimatedBytes())).Bind(6, static_cast<int64_t>(batch_id))
        .BindBlob(7, head_blob.data(), head_blob.size());
    s = SqliteStatus(ins.Step(), db, "insert claimed part of a split chunk");
    tail_meta = ChunkMeta{m.id, hour, tail_data.MinTs(), tail_data.MaxTs(), tail_data.size(), tail_data.EstimatedBytes(),
                          tail_blob.size(), m.mono_us};
    if (s.ok()) {
      Stmt upd(db, "UPDATE chunks SET first_ts = ?, last_ts = ?, count = ?, est_bytes = ?, data = ? "
                   "WHERE id = ? AND batch_id IS NULL");
      upd.Bind(1, tail_meta.first_ts).Bind(2, tail_meta.last_ts).Bind(3, static_cast<int64_t>(tail_meta.count))
          .Bind(4, static_cast<int64_t>(tail_meta.est_bytes)).BindBlob(5, tail_blob.data(), tail_blob.size()).Bind(6, m.id);
      s = SqliteStatus(upd.Step(), db, "shrink split chunk");
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
    Rollback(db);
    NoteFailure(s, LastFailedSqliteCode());
    return s;
  }
  if (split) pending_chunks[*split] = tail_meta;
  for (auto it = take.rbegin(); it != take.rend(); ++it) pending_chunks.erase(pending_chunks.begin() + static_cast<ptrdiff_t>(*it));
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
  EP_RETURN_IF_ERROR(CheckWritable());
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
    Rollback(db);
    NoteFailure(s, LastFailedSqliteCode());
    return s;
  }
  return std::optional<uint64_t>(batch_id);
}

Result<std::optional<Batch>> Store::Impl::LoadBatch(uint64_t id, bool columns) {
  Stmt b(db, "SELECT kind, hour, attempts, readings FROM batches WHERE id = ?");
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
    // One allocation for the whole batch: growing a vector of readings moves every one of them.
    const size_t expect = static_cast<size_t>(std::clamp<int64_t>(b.Int(3), 0, kMaxBatchReserve));
    if (columns) batch.columns.Reserve(expect);
    else batch.readings.reserve(expect);
    Stmt c(db, "SELECT id, data FROM chunks WHERE batch_id = ? ORDER BY id");
    c.Bind(1, static_cast<int64_t>(id));
    SeriesIndex series;  // each series named once in the batch, whatever the number of chunks
    ChunkData& data = load_chunk;
    while ((rc = c.Step()) == SQLITE_ROW) {
      const int64_t chunk_id = c.Int(0);
      // Committed by this connection and unchanged since: its data, not decoded again.
      std::optional<ChunkData> recent = TakeRecent(chunk_id, c.Blob(1));
      if (recent) {
        ++chunks_loaded_from_memory;
      } else {
        Status decoded = DecodeChunkDataInto(c.Blob(1), &data, &load_raw);
        if (!decoded.ok()) {
          c.Reset();
          EP_RETURN_IF_ERROR(SetAsideDamaged(chunk_id, decoded.message(), id));
          return LoadBatch(id, columns);  // the same batch without that chunk, with a gap record for it
        }
        ++chunks_loaded_decoded;
      }
      const ChunkData& chunk = recent ? *recent : data;
      if (columns) {
        chunk.AppendColumnsTo(&batch.columns, &series);
      } else {
        chunk.AppendReadingsTo(&batch.readings);
      }
      for (const SeriesColumns& sc : chunk.series())
        for (uint32_t q : sc.quality)
          if (q != 0) ++batch.quality.flagged;
      if (recent) RecycleChunk(std::move(*recent));
    }
    // Emptied (the last chunk's texts freed) and kept for the next batch, unless one unusually
    // large chunk made it big.
    data.Clear();
    if (data.MemoryBytes() + load_raw.capacity() > kMaxLoadScratchBytes) {
      data = ChunkData();
      load_raw = std::string();
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
    batch.quality.passed = batch.reading_count();
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

// One merge: the oldest hour that has small chunks worth merging (enough readings for a full
// chunk, or an hour no longer written to) gets its small chunks, oldest first, merged into one
// that keeps the first chunk's id (and so its place). Returns true when it merged.
bool Store::Impl::MergeOnce(bool any_age) {
  if (io_failed) return false;
  const uint64_t target = opt.merge_target_readings;
  // Chunks committed after `young` are left alone (Options::merge_min_age_us).
  const int64_t young = any_age || opt.merge_min_age_us <= 0 ? INT64_MAX : clock->MonotonicNowUs() - opt.merge_min_age_us;
  auto mergeable = [&](const ChunkMeta& m) { return m.count < target && m.mono_us <= young; };
  // A merged chunk must stay well inside the WAL allowance (docs/durability.md, the budget).
  const uint64_t max_input_bytes = static_cast<uint64_t>(wal_allowance / 4);
  std::map<int64_t, std::pair<uint64_t, int>> small;  // hour -> (readings, chunks)
  for (const ChunkMeta& m : pending_chunks)
    if (mergeable(m)) {
      auto& [n, c] = small[m.hour];
      n += m.count;
      ++c;
    }
  for (const auto& [hour, sums] : small) {
    if (sums.second < 2 || (sums.first < target && hour >= newest_hour)) continue;
    std::vector<size_t> group;
    uint64_t readings = 0, in_bytes = 0;
    for (size_t i = 0; i < pending_chunks.size(); ++i) {
      const ChunkMeta& m = pending_chunks[i];
      if (m.hour != hour || !mergeable(m)) continue;
      if (!group.empty() && (readings + m.count > target || in_bytes + m.stored_bytes > max_input_bytes)) break;
      group.push_back(i);
      readings += m.count;
      in_bytes += m.stored_bytes;
    }
    if (group.size() < 2) continue;
    ChunkData merged;
    for (size_t i : group) {
      Result<ChunkData> d = ReadChunk(pending_chunks[i].id);
      if (!d.ok()) {
        if (d.status().code() == StatusCode::kDataLoss)
          SetAsideDamaged(pending_chunks[i].id, d.status().message(), std::nullopt).IgnoreError();  // logged there
        else
          EP_LOG_WARN(kLog, "merge: reading chunk %lld: %s", static_cast<long long>(pending_chunks[i].id),
                      d.status().ToString().c_str());
        return true;  // the index changed (or the read failed): start over on the next step
      }
      merged.AppendChunk(*d);
    }
    const std::string blob = encoder.Encode(merged);
    const ChunkMeta& first = pending_chunks[group[0]];
    ChunkMeta meta{first.id, hour, merged.MinTs(), merged.MaxTs(), merged.size(), merged.EstimatedBytes(), blob.size(),
                   first.mono_us};
    if (!Exec(db, "BEGIN IMMEDIATE").ok()) return false;
    Stmt upd(db, "UPDATE chunks SET first_ts = ?, last_ts = ?, count = ?, est_bytes = ?, data = ? "
                 "WHERE id = ? AND batch_id IS NULL");
    upd.Bind(1, meta.first_ts).Bind(2, meta.last_ts).Bind(3, static_cast<int64_t>(meta.count))
        .Bind(4, static_cast<int64_t>(meta.est_bytes)).BindBlob(5, blob.data(), blob.size()).Bind(6, meta.id);
    Status s = SqliteStatus(upd.Step(), db, "write merged chunk");
    Stmt del(db, "DELETE FROM chunks WHERE id = ? AND batch_id IS NULL");
    for (size_t k = 1; k < group.size() && s.ok(); ++k) {
      del.Reset();
      del.Bind(1, pending_chunks[group[k]].id);
      s = SqliteStatus(del.Step(), db, "delete merged chunk");
    }
    if (s.ok()) s = Exec(db, "COMMIT");
    if (!s.ok()) {
      Rollback(db);
      const int code = LastFailedSqliteCode();
      NoteFailure(s, code);
      // A full budget is not a reason to log at every step: merging needs free pages too.
      if ((code & 0xff) != SQLITE_FULL) EP_LOG_WARN(kLog, "merge of %zu chunks failed: %s", group.size(), s.ToString().c_str());
      return false;
    }
    pending_chunks[group[0]] = meta;
    for (size_t k = group.size() - 1; k >= 1; --k)
      pending_chunks.erase(pending_chunks.begin() + static_cast<ptrdiff_t>(group[k]));
    ++merges;
    return true;
  }
  return false;
}

// ---- Store: BatchSource ----

Result<std::optional<Batch>> Store::LeaseBatch(const BatchPolicy& policy, bool flush) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  sqlite3* db = impl_->db;
  // 1. Batches claimed earlier (possibly before a crash) and not in flight: same id, same content.
  {
    Stmt st(db, "SELECT id FROM batches ORDER BY id");
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      uint64_t id = static_cast<uint64_t>(st.Int(0));
      if (impl_->leased.count(id)) continue;
      st.Reset();
      Result<std::optional<Batch>> b = impl_->LoadBatch(id, policy.columns);
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
  Result<std::optional<Batch>> b = impl_->LoadBatch(**id, policy.columns);
  if (b.ok() && b->has_value()) impl_->leased.insert(**id);
  return b;
}

Status Store::AckBatch(uint64_t batch_id, const DeliveryReceipt& receipt) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  sqlite3* db = impl_->db;
  const int64_t id = static_cast<int64_t>(batch_id);
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  int64_t readings = -1, kind = -1;
  Status s;
  {
    Stmt b(db, "SELECT readings, kind FROM batches WHERE id = ?");
    b.Bind(1, id);
    int rc = b.Step();
    if (rc == SQLITE_ROW) {
      readings = b.Int(0);
      kind = b.Int(1);
    } else if (rc == SQLITE_DONE) {
      // Acknowledging twice is harmless (e.g. a retried ack whose first COMMIT did land).
      b.Reset();
      Stmt led(db, "SELECT 1 FROM uploads WHERE batch_name = ?");
      led.Bind(1, impl_->BatchName(batch_id));
      if (led.Step() == SQLITE_ROW) {
        Rollback(db);
        impl_->leased.erase(batch_id);
        return Status::Ok();
      }
      s = NotFoundError(StrFormat("batch %llu is not claimed", static_cast<unsigned long long>(batch_id)));
    } else {
      s = SqliteStatus(rc, db, "find batch");
    }
  }
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
  if (s.ok()) s = impl_->AddCounter(kind == 1 ? "quarantine_acked" : "readings_acked", readings);
  if (s.ok()) s = impl_->AddCounter("batches_acked", 1);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Rollback(db);
    if (s.code() != StatusCode::kNotFound) impl_->NoteFailure(s, LastFailedSqliteCode());
    if (!impl_->io_failed) return s;
    // A COMMIT that failed with an I/O error may have reached the WAL anyway: reopen (replaying
    // the WAL) and look. A batch that is gone was acknowledged (docs/durability.md).
    if (!impl_->Reopen().ok()) return s;
    Stmt again(db = impl_->db, "SELECT 1 FROM batches WHERE id = ?");
    again.Bind(1, id);
    if (again.Step() != SQLITE_DONE) return s;
    EP_LOG_NOTICE("buffer", "the ack of batch %llu that failed with an I/O error had reached the database",
                  static_cast<unsigned long long>(batch_id));
  }
  impl_->leased.erase(batch_id);
  // Space was freed: a full buffer may accept readings again, a failed commit may succeed now.
  const WriterState before = impl_->state.load();
  impl_->UpdateFullState();
  if (before == WriterState::kFull) {
    std::lock_guard<std::mutex> mu_lock(impl_->mu);
    impl_->kick = true;
    impl_->writer_cv.notify_one();
  }
  return Status::Ok();
}

Status Store::ReleaseBatch(uint64_t batch_id) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  impl_->leased.erase(batch_id);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  Stmt st(impl_->db, "UPDATE batches SET attempts = attempts + 1 WHERE id = ?");
  st.Bind(1, static_cast<int64_t>(batch_id));
  Status s = SqliteStatus(st.Step(), impl_->db, "record attempt");
  if (!s.ok()) impl_->NoteFailure(s, LastFailedSqliteCode());
  return s;
}

}  // namespace edgepipe::buffer
