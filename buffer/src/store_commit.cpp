// Group commits, the disk budget (max_size), the drop_oldest eviction and its gap records.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace edgepipe::buffer {
namespace {

constexpr const char* kLog = "buffer";
// Eviction frees at most this much per transaction (a bounded WAL, a bounded pause).
constexpr int64_t kMaxEvictBytes = 1 << 20;
// Free space FitToFileSystem leaves for the WAL (and the -shm index) to grow into.
constexpr int64_t kWalMargin = 256 << 10;
// drop_oldest keeps this much of the file system in `<db>.reserve`. If another program takes
// the last free byte while the WAL holds pages past the end of the main file (at most half of
// this, LimitWalOverhang), deleting the reserve lets the checkpoint write them, and eviction
// goes on.
constexpr int64_t kReserveBytes = 512 << 10;
// The WAL hook reads the file system's free space at most this often while it has at least
// kFsFreshBelow free (the WAL can grow by a few MiB in that time; with less free, every time).
constexpr int64_t kFsCheckUs = 100'000;
// The committed chunks kept in memory for the batch loader (Store::Impl::recent_chunks): a few
// default batches (10,000 readings; of 800 series ~0.6 MiB as a chunk in memory), all of a batch
// at a low rate.
constexpr size_t kMaxRecentChunkBytes = 2u << 20;
constexpr uint64_t kFsFreshBelow = 256ull << 20;

// Rough size of what a quarantine row adds to the database.
uint64_t QuarantineBytes(const QuarantineRecord& q, uint64_t raw_limit) {
  return 64 + q.source.size() + q.sensor.size() + q.rule.size() + q.reason.size() + q.value.size() +
         std::min<uint64_t>(q.raw.size(), raw_limit);
}

}  // namespace

Status Store::Impl::AddCounter(const char* name, int64_t delta) {
  if (delta == 0) return Status::Ok();
  Stmt& st = Cached("INSERT INTO counters(name, value) VALUES(?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
  st.Bind(1, name).Bind(2, delta);
  return SqliteStatus(st.Step(), db, "update counter");
}

Status Store::Impl::ReadPageCounts(int64_t* pages, int64_t* freelist) {
  int64_t v[2];
  const char* sql[2] = {"PRAGMA page_count", "PRAGMA freelist_count"};
  for (int i = 0; i < 2; ++i) {
    Stmt& st = Cached(sql[i]);
    int rc = st.Step();
    if (rc != SQLITE_ROW) {
      Status s = SqliteStatus(rc, db, sql[i]);
      st.Reset();
      return s;
    }
    v[i] = st.Int(0);
    st.Reset();  // a statement left on a row would hold a read transaction
  }
  *pages = v[0];
  *freelist = v[1];
  return Status::Ok();
}

Result<int64_t> Store::Impl::FreePages() {
  int64_t pages = 0, freelist = 0;
  EP_RETURN_IF_ERROR(ReadPageCounts(&pages, &freelist));
  return page_limit - pages + freelist;
}

Result<int64_t> Store::Impl::FreePagesCached() {
  if (page_counts.changes == sqlite3_total_changes64(db)) return page_limit - page_counts.pages + page_counts.freelist;
  return FreePages();
}

// A file system with less room than the budget (other files, a budget larger than the disk)
// must look full to SQLite before it is full for the kernel. If the kernel said ENOSPC first,
// the WAL could hold pages beyond the end of the main file that no checkpoint can write (the
// file cannot grow), the WAL could then never be restarted, and every later transaction —
// evictions included — would fail with SQLITE_FULL until space returned. So under drop_oldest
// the main file may grow only into what the file system still has, less a margin for the WAL;
// past that, max_page_count says SQLITE_FULL and eviction reuses pages inside the file.
void Store::Impl::FitToFileSystem() {
  if (opt.on_full != OnFull::kDropOldest || io_failed) return;
  int64_t limit = max_pages;
  uint64_t free_bytes = 0;
  struct stat st;
  if (main_file_bytes < 0 && ::stat(opt.path.c_str(), &st) == 0) main_file_bytes = static_cast<int64_t>(st.st_size);
  // Both cached (FileSystemFree, Checkpoint): this runs before every commit.
  if (FileSystemFree(&free_bytes) && main_file_bytes >= 0) {
    const int64_t room = static_cast<int64_t>(free_bytes);
    // A released reserve is taken back first: its space is not the database's.
    const int64_t keep = kWalMargin + (reserve_present ? 0 : kReserveBytes);
    limit = std::clamp<int64_t>((main_file_bytes + room - keep) / page_size, 16, max_pages);
    KeepReserve(room);
  }
  if (limit == page_limit) return;
  if (!Exec(db, StrFormat("PRAGMA max_page_count=%lld", static_cast<long long>(limit)).c_str()).ok()) return;
  if (limit < max_pages && page_limit == max_pages)
    EP_LOG_WARN(kLog, "the file system of %s has less room than buffer.max_size (%llu bytes): the buffer now keeps "
                "to %lld bytes and evicts the oldest unsent readings to stay within them (buffer.on_full = "
                "drop_oldest) until space returns", opt.path.c_str(), static_cast<unsigned long long>(opt.max_size_bytes),
                static_cast<long long>(limit * page_size));
  else if (limit == max_pages)
    EP_LOG_NOTICE(kLog, "the file system of %s has room for buffer.max_size again", opt.path.c_str());
  page_limit = limit;
}

void Store::Impl::KeepReserve(int64_t room) {
  if (reserve_present) return;
  struct stat st;
  if (::stat(reserve_path.c_str(), &st) == 0 && st.st_size >= kReserveBytes) {
    reserve_present = true;  // made by an earlier run
    return;
  }
  if (room < kReserveBytes + kWalMargin) return;
  const int fd = ::open(reserve_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  int err = ::posix_fallocate(fd, 0, kReserveBytes);
  if (err == EOPNOTSUPP || err == EINVAL) {  // no fallocate on this file system: write it
    const std::string zeros(64 << 10, '\0');
    err = 0;
    for (int64_t off = 0; off < kReserveBytes && err == 0; off += static_cast<int64_t>(zeros.size()))
      if (::pwrite(fd, zeros.data(), zeros.size(), off) != static_cast<ssize_t>(zeros.size())) err = errno ? errno : EIO;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(reserve_path.c_str());
    return;
  }
  reserve_present = true;
  fs_checked_mono = 0;
  if (reserve_released)
    EP_LOG_NOTICE(kLog, "the file system of %s has room again: made the reserve file %s again", opt.path.c_str(),
                  reserve_path.c_str());
  reserve_released = false;
}

bool Store::Impl::ReleaseReserve() {
  if (opt.on_full != OnFull::kDropOldest) return false;
  struct stat st;
  if (::stat(reserve_path.c_str(), &st) != 0) {
    reserve_present = false;
    return false;
  }
  const bool released = ::unlink(reserve_path.c_str()) == 0;
  fs_checked_mono = 0;
  reserve_present = !released;
  reserve_released = reserve_released || released;
  if (released)
    EP_LOG_WARN(kLog, "file system of %s full: deleted the reserve file %s (%lld KiB) so the WAL can be checkpointed "
                "and eviction can go on; it is made again when the file system has room",
                opt.path.c_str(), reserve_path.c_str(), static_cast<long long>(st.st_size >> 10));
  return released;
}

int Store::Impl::Checkpoint(int mode, int* log_frames, int* done_frames) {
  main_file_bytes = -1;  // a checkpoint writes the main file (and may grow it)
  return sqlite3_wal_checkpoint_v2(db, nullptr, mode, log_frames, done_frames);
}

bool Store::Impl::FileSystemFree(uint64_t* free_bytes) {
  const int64_t now = SteadyNowUs();
  if (fs_checked_mono == 0 || fs_free_bytes < kFsFreshBelow || now - fs_checked_mono >= kFsCheckUs) {
    struct statvfs fs;
    if (::statvfs(db_dir.c_str(), &fs) != 0) return false;
    fs_free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    fs_checked_mono = now;
  }
  *free_bytes = fs_free_bytes;
  return true;
}

// Pages a commit added past the end of the main file live only in the WAL until a checkpoint
// writes them, which needs that much free space. Keep them below half the reserve, so deleting
// the reserve is always enough to checkpoint.
void Store::Impl::LimitWalOverhang() {
  if (opt.on_full != OnFull::kDropOldest || io_failed) return;
  int64_t pages = 0;
  if (page_counts.changes == sqlite3_total_changes64(db)) {
    pages = page_counts.pages;
  } else {
    Stmt& pc = Cached("PRAGMA page_count");
    const int rc = pc.Step();
    pages = rc == SQLITE_ROW ? pc.Int(0) : 0;
    pc.Reset();
    if (rc != SQLITE_ROW) return;
  }
  if (main_file_bytes < 0) {
    struct stat st;
    if (::stat(opt.path.c_str(), &st) != 0) return;
    main_file_bytes = static_cast<int64_t>(st.st_size);
  }
  if (pages * page_size - main_file_bytes <= kReserveBytes / 2) return;
  const int crc = Checkpoint(SQLITE_CHECKPOINT_PASSIVE);
  if (crc != SQLITE_OK && (crc & 0xff) != SQLITE_BUSY && (crc & 0xff) != SQLITE_LOCKED)
    NoteFailure(Status(StatusCode::kUnavailable, StrFormat("checkpoint: %s (sqlite code %d)", sqlite3_errstr(crc), crc)), crc);
}

// Headroom kept free under drop_oldest, and the threshold of "full" under reject_new.
static int64_t Headroom(int64_t max_pages) { return std::max<int64_t>(8, max_pages / 100); }

void Store::Impl::UpdateFullState() {
  if (io_failed) return;
  Result<int64_t> free_pages = FreePagesCached();
  if (!free_pages.ok()) return;
  const bool full = opt.on_full == OnFull::kRejectNew && *free_pages < Headroom(page_limit);
  WriterState want = full ? WriterState::kFull : WriterState::kOk;
  if (state.load() != want) {
    if (full)
      EP_LOG_WARN(kLog, "buffer is full (buffer.max_size %llu bytes): refusing new readings until uploads free space "
                  "(buffer.on_full = reject_new)", static_cast<unsigned long long>(opt.max_size_bytes));
    else
      EP_LOG_NOTICE(kLog, "buffer has room again: accepting readings");
    state = want;
  }
}

void Store::Impl::NoteFailure(const Status& s, int code) {
  // Read errors are not here: they change nothing on disk, and the call that met one reports it
  // (kUnavailable) and is retried. SQLITE_CORRUPT is: the reopen runs quick_check.
  const int primary = code & 0xff;
  if (IsIoWriteError(code) || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    // After a failed write or fsync the file's content is unknown (the kernel may have dropped
    // the dirty pages and will not report it again): write nothing more through this
    // connection; the writer reopens the database (with quick_check) after a backoff.
    io_failed = true;
    io_error = s;
    state = WriterState::kIoError;
    EP_LOG_ERROR(kLog, "I/O error on %s: %s. No further writes until the database is reopened (automatic, with "
                 "quick_check); appended readings wait in memory", opt.path.c_str(), s.ToString().c_str());
  }
}

Status Store::Impl::RecordGapsInDb(const std::vector<GapRecord>& gaps) {
  Stmt up(db, "UPDATE gaps SET from_us = min(from_us, ?1), to_us = max(to_us, ?2), count = count + ?3 "
              "WHERE batch_id IS NULL AND source = ?4 AND sensor = ?5 AND reason = ?6");
  Stmt ins(db, "INSERT INTO gaps(source, sensor, from_us, to_us, count, reason, batch_id) VALUES(?, ?, ?, ?, ?, ?, NULL)");
  for (const GapRecord& g : gaps) {
    up.Reset();
    up.Bind(1, g.from_us).Bind(2, g.to_us).Bind(3, static_cast<int64_t>(g.count)).Bind(4, g.source).Bind(5, g.sensor)
        .Bind(6, g.reason);
    EP_RETURN_IF_ERROR(SqliteStatus(up.Step(), db, "extend gap record"));
    if (sqlite3_changes(db) > 0) continue;
    ins.Reset();
    ins.Bind(1, g.source).Bind(2, g.sensor).Bind(3, g.from_us).Bind(4, g.to_us).Bind(5, static_cast<int64_t>(g.count))
        .Bind(6, g.reason);
    EP_RETURN_IF_ERROR(SqliteStatus(ins.Step(), db, "insert gap record"));
  }
  return Status::Ok();
}

// drop_oldest: deletes the oldest unclaimed chunks (then, if none is left, damaged chunks and
// the oldest unclaimed quarantine rows) until about `pages_to_free` pages are free, leaving one
// gap record per sensor of what it deleted. One transaction.
Status Store::Impl::Evict(int64_t pages_to_free, int64_t* freed_pages) {
  *freed_pages = 0;
  const int64_t want_bytes = std::min(pages_to_free * page_size, kMaxEvictBytes);
  EP_RETURN_IF_ERROR(CheckWritable());
  EP_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  int64_t freed = 0, readings = 0, quarantine_rows = 0;
  size_t chunks = 0;
  std::vector<GapRecord> gaps;
  auto add_gap = [&](GapRecord g) {
    for (GapRecord& q : gaps)
      if (q.source == g.source && q.sensor == g.sensor) {
        q.from_us = std::min(q.from_us, g.from_us);
        q.to_us = std::max(q.to_us, g.to_us);
        q.count += g.count;
        return;
      }
    gaps.push_back(std::move(g));
  };
  Status s;
  Stmt del(db, "DELETE FROM chunks WHERE id = ? AND batch_id IS NULL");
  while (s.ok() && chunks < pending_chunks.size() && freed < want_bytes) {
    const ChunkMeta& m = pending_chunks[chunks];
    Result<ChunkData> data = ReadChunk(m.id);
    if (data.ok()) {
      for (const SeriesColumns& sc : data->series()) {
        auto [lo, hi] = std::minmax_element(sc.ts.begin(), sc.ts.end());
        add_gap(GapRecord{sc.source, sc.sensor, *lo, *hi, sc.size(), "evicted"});
      }
    } else {
      // Undecodable: we cannot name its sensors, but we know how many readings and when.
      add_gap(GapRecord{"", "", m.first_ts, m.last_ts, m.count, "evicted"});
    }
    del.Reset();
    del.Bind(1, m.id);
    s = SqliteStatus(del.Step(), db, "evict chunk");
    freed += static_cast<int64_t>(m.stored_bytes) + 64;
    readings += static_cast<int64_t>(m.count);
    ++chunks;
  }
  if (s.ok() && freed < want_bytes) {
    // Nothing unsent left to drop: damaged chunks, then unsent quarantine rows.
    Result<int64_t> before = QueryInt(db, "SELECT COALESCE(SUM(length(data)), 0) FROM damaged_chunks");
    s = before.ok() ? Exec(db, "DELETE FROM damaged_chunks") : before.status();
    if (s.ok()) freed += *before;
    if (s.ok() && freed < want_bytes) {
      Stmt q(db, "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE batch_id IS NULL ORDER BY id LIMIT 1000)");
      s = SqliteStatus(q.Step(), db, "evict quarantine rows");
      quarantine_rows = sqlite3_changes(db);
      freed += quarantine_rows * 256;
    }
  }
  if (s.ok()) s = RecordGapsInDb(gaps);
  if (s.ok()) s = AddCounter("readings_evicted", readings);
  if (s.ok()) s = AddCounter("quarantine_evicted", quarantine_rows);
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Rollback(db);
    return s;
  }
  pending_chunks.erase(pending_chunks.begin(), pending_chunks.begin() + static_cast<ptrdiff_t>(chunks));
  *freed_pages = freed / page_size;
  ++evictions;
  if (readings > 0 || quarantine_rows > 0) {
    const std::string why = page_limit < max_pages
                                ? StrFormat("file system full, buffer kept to %lld bytes",
                                            static_cast<long long>(page_limit * page_size))
                                : StrFormat("buffer.max_size %llu bytes", static_cast<unsigned long long>(opt.max_size_bytes));
    EP_LOG_WARN(kLog, "buffer full (%s): evicted the %lld oldest unsent readings (%zu gap records) and %lld "
                "quarantine rows (buffer.on_full = drop_oldest)", why.c_str(), static_cast<long long>(readings),
                gaps.size(), static_cast<long long>(quarantine_rows));
  }
  return Status::Ok();
}

// Makes sure `pages_needed` pages are free within the budget, evicting under drop_oldest.
Status Store::Impl::EnsureSpace(int64_t pages_needed, bool* evicted_any) {
  *evicted_any = false;
  FitToFileSystem();
  Result<int64_t> free_pages = FreePagesCached();
  if (!free_pages.ok()) return free_pages.status();
  const int64_t headroom = Headroom(page_limit);
  if (*free_pages >= pages_needed + headroom) return Status::Ok();
  // Free a little more than needed so eviction does not run on every commit.
  const int64_t target = pages_needed + headroom + std::min<int64_t>(page_limit / 64, 256) - *free_pages;
  int64_t freed = 0;
  Status s = Evict(target, &freed);
  *evicted_any = freed > 0;
  return s;
}

Result<int64_t> Store::Impl::MaxChunkId() {
  Stmt& mx = Cached("SELECT COALESCE(MAX(id), 0) FROM chunks");
  const int rc = mx.Step();
  Result<int64_t> out = rc == SQLITE_ROW ? Result<int64_t>(mx.Int(0))
                                         : Result<int64_t>(SqliteStatus(rc, db, "read the largest chunk id"));
  mx.Reset();  // a statement left on a row would hold a read transaction
  return out;
}

Status Store::Impl::WriteTransaction(Pending& work, std::vector<std::pair<int64_t, std::string>>& blobs,
                                     std::vector<ChunkMeta>* added, int64_t* chunk_base) {
  added->clear();
  EP_RETURN_IF_ERROR(CheckWritable());  // e.g. the eviction's checkpoint just failed
  Status s = SqliteStatus(Cached("BEGIN IMMEDIATE").Step(), db, "exec BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  const int64_t mono = clock->MonotonicNowUs();
  // What tells, after a failed COMMIT, whether this transaction reached the file anyway
  // (ResolveUncertain): its chunks, whose ids are above every id present now (SQLite gives a
  // new row the largest rowid plus one, and no other connection writes); for a transaction
  // without chunks, the counter group_commits. Only that counter's page costs a WAL frame, so a
  // commit of one MQTT message writes three pages instead of four.
  *chunk_base = -1;
  if (!blobs.empty()) {
    Result<int64_t> max_id = MaxChunkId();
    if (max_id.ok()) *chunk_base = *max_id;
    else s = max_id.status();
  }
  {
    Stmt& ins = Cached("INSERT INTO chunks(hour, first_ts, last_ts, count, est_bytes, batch_id, data) "
                       "VALUES(?, ?, ?, ?, ?, NULL, ?)");
    for (auto& [hour, blob] : blobs) {
      if (!s.ok()) break;
      const ChunkData& d = work.hours.at(hour);
      ChunkMeta m{0, hour, d.MinTs(), d.MaxTs(), d.size(), d.EstimatedBytes(), blob.size(), mono};
      ins.Reset();
      ins.Bind(1, hour).Bind(2, m.first_ts).Bind(3, m.last_ts).Bind(4, static_cast<int64_t>(m.count))
          .Bind(5, static_cast<int64_t>(m.est_bytes)).BindBlob(6, blob.data(), blob.size());
      s = SqliteStatus(ins.Step(), db, "insert chunk");
      m.id = sqlite3_last_insert_rowid(db);
      added->push_back(m);
    }
  }
  if (s.ok() && !work.quarantine.empty()) {
    Stmt ins(db, "INSERT INTO quarantine(ts_us, reading_ts, source, sensor, rule, reason, value, raw, batch_id) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, NULL)");
    Stmt rej(db, "INSERT INTO rejected_pending(rule, count) VALUES(?, 1) "
                 "ON CONFLICT(rule) DO UPDATE SET count = count + 1");
    for (const QuarantineRecord& q : work.quarantine) {
      if (!s.ok()) break;
      ins.Reset();
      std::string_view raw = q.raw;
      if (raw.size() > opt.quarantine_raw_limit) raw = raw.substr(0, opt.quarantine_raw_limit);
      ins.Bind(1, q.ts_us).Bind(2, q.reading_ts_us).Bind(3, q.source).Bind(4, q.sensor).Bind(5, q.rule)
          .Bind(6, q.reason).Bind(7, q.value).BindBlob(8, raw.data(), raw.size());
      s = SqliteStatus(ins.Step(), db, "insert quarantine row");
      if (s.ok()) {
        rej.Reset();
        rej.Bind(1, q.rule);
        s = SqliteStatus(rej.Step(), db, "count rejection");
      }
    }
    if (s.ok()) {
      // Bounded: evict the oldest unclaimed rows beyond the limit, and count them.
      Result<int64_t> rows = QueryInt(db, "SELECT COUNT(*) FROM quarantine");
      if (!rows.ok()) s = rows.status();
      else if (static_cast<uint64_t>(*rows) > opt.quarantine_max_rows) {
        Stmt del(db, "DELETE FROM quarantine WHERE id IN "
                     "(SELECT id FROM quarantine WHERE batch_id IS NULL ORDER BY id LIMIT ?)");
        del.Bind(1, *rows - static_cast<int64_t>(opt.quarantine_max_rows));
        s = SqliteStatus(del.Step(), db, "evict quarantine rows");
        if (s.ok()) s = AddCounter("quarantine_evicted", sqlite3_changes(db));
      }
    }
  }
  if (s.ok() && (!work.gaps.empty() || !work.journaled_gaps.empty())) {
    Stmt ins(db, "INSERT INTO gaps(source, sensor, from_us, to_us, count, reason, batch_id) VALUES(?, ?, ?, ?, ?, ?, NULL)");
    auto insert = [&](const std::vector<GapRecord>& gaps) {
      for (const GapRecord& g : gaps) {
        if (!s.ok()) break;
        ins.Reset();
        ins.Bind(1, g.source).Bind(2, g.sensor).Bind(3, g.from_us).Bind(4, g.to_us)
            .Bind(5, static_cast<int64_t>(g.count)).Bind(6, g.reason);
        s = SqliteStatus(ins.Step(), db, "insert gap");
      }
    };
    insert(work.gaps);
    // Every ticket here is <= work.journal_ticket (TakeFront), so the meta row written below
    // keeps a replay from bringing these readings back.
    for (const auto& [ticket, gaps] : work.journaled_gaps) insert(gaps);
  }
  if (s.ok() && !work.state.empty()) {
    // Cached: an MQTT source at QoS 1 commits one key (its packet-id record) with every message.
    Stmt& up = Cached("INSERT INTO source_state(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    for (const auto& [k, v] : work.state) {
      up.Reset();
      up.Bind(1, k).Bind(2, v);
      s = SqliteStatus(up.Step(), db, "store source state");
      if (!s.ok()) break;
    }
  }
  for (const auto& [table, cells] : work.cells) {
    // One read and one write per row of 64 cells, not per cell: the MQTT source puts a cell in
    // every QoS 1 message, ~1,500 per commit in a drain (a row each cost ~1.5 µs of CPU).
    if (!s.ok()) break;
    std::vector<std::pair<uint32_t, uint64_t>> sorted = cells;
    std::stable_sort(sorted.begin(), sorted.end(),  // by row; within a row, in append order
                     [](const auto& a, const auto& b) { return a.first / kCellsPerRow < b.first / kCellsPerRow; });
    Stmt& get = Cached("SELECT cells FROM state_cells WHERE key = ? AND block = ?");
    Stmt& put = Cached("INSERT INTO state_cells(key, block, cells) VALUES(?, ?, ?) "
                       "ON CONFLICT(key, block) DO UPDATE SET cells = excluded.cells");
    std::string row;
    for (size_t i = 0; s.ok() && i < sorted.size();) {
      const int64_t block = sorted[i].first / kCellsPerRow;
      get.Reset();
      get.Bind(1, table).Bind(2, block);
      const int rc = get.Step();
      if (rc == SQLITE_ROW) row.assign(get.Blob(0));
      else row.clear();
      get.Reset();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        s = SqliteStatus(rc, db, "read state cells");
        break;
      }
      for (; i < sorted.size() && sorted[i].first / kCellsPerRow == block; ++i) SetCell(&row, sorted[i].first, sorted[i].second);
      put.Reset();
      put.Bind(1, table).Bind(2, block).BindBlob(3, row.data(), row.size());
      s = SqliteStatus(put.Step(), db, "store state cells");
    }
    // A database from before schema 3 holds the same records as plain source_state rows
    // "<table>/<index>" (Store::LoadCell falls back to them). A cell written now supersedes its
    // row: the row goes, so that they do not stay on the card for good (up to 65,535 per MQTT
    // source). One index seek per table and commit finds whether any are left.
    if (s.ok()) {
      Stmt& any = Cached("SELECT 1 FROM source_state WHERE key >= ? AND key < ? LIMIT 1");
      any.Reset();
      any.Bind(1, table + "/").Bind(2, table + "0");  // '0' follows '/'
      const int rc = any.Step();
      any.Reset();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) s = SqliteStatus(rc, db, "look for plain state cells");
      if (rc == SQLITE_ROW) {
        Stmt& del = Cached("DELETE FROM source_state WHERE key = ?");
        for (const auto& [index, value] : sorted) {
          del.Reset();
          del.Bind(1, StateCell::StateKey(table, index));
          s = SqliteStatus(del.Step(), db, "remove a plain state cell");
          if (!s.ok()) break;
        }
      }
    }
  }
  for (const auto& [name, delta] : work.counter_deltas) {
    if (!s.ok()) break;
    s = AddCounter(name.c_str(), delta);
  }
  if (s.ok() && work.journal_ticket != 0) {
    // The last acknowledgement-journal append this transaction holds (store_journal.cpp).
    Stmt& up = Cached("INSERT INTO meta(key, value) VALUES('ack_journal', ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    up.Bind(1, StrFormat("%llu %llu %llu", static_cast<unsigned long long>(work.journal_generation),
                         static_cast<unsigned long long>(work.journal_ticket),
                         static_cast<unsigned long long>(std::max(work.journal_ticket, work.journal_items_ticket))));
    s = SqliteStatus(up.Step(), db, "record the acknowledgement journal's position");
  }
  if (s.ok() && *chunk_base < 0) s = AddCounter("group_commits", 1);  // see above
  PageCounts counts;
  // Inside the transaction these cost no locks; a failure only leaves the cache invalid.
  const bool counted = s.ok() && ReadPageCounts(&counts.pages, &counts.freelist).ok();
  if (s.ok()) s = SqliteStatus(Cached("COMMIT").Step(), db, "exec COMMIT");
  if (!s.ok()) {
    Rollback(db);
    page_counts.changes = -1;
    return s;
  }
  counts.changes = counted ? sqlite3_total_changes64(db) : -1;
  page_counts = counts;
  return s;
}

Status Store::Impl::CommitWork(Pending& work, bool* uncertain) {
  std::lock_guard<std::mutex> lock(db_mu);
  *uncertain = false;
  if (io_failed) EP_RETURN_IF_ERROR(Reopen());
  std::vector<std::pair<int64_t, std::string>> blobs;
  int64_t bytes = 0;
  for (const auto& [hour, data] : work.hours) {
    blobs.emplace_back(hour, encoder.Encode(data));
    bytes += static_cast<int64_t>(blobs.back().second.size()) + 64;
  }
  for (const QuarantineRecord& q : work.quarantine) bytes += static_cast<int64_t>(QuarantineBytes(q, opt.quarantine_raw_limit));
  bytes += static_cast<int64_t>((work.gaps.size() + work.journaled_gaps.size()) * 96 + work.state.size() * 96);
  for (const auto& [table, cells] : work.cells) {  // a new row per block at most
    std::vector<uint32_t> blocks;
    blocks.reserve(cells.size());
    for (const auto& c : cells) blocks.push_back(c.first / kCellsPerRow);
    std::sort(blocks.begin(), blocks.end());
    bytes += static_cast<int64_t>((std::unique(blocks.begin(), blocks.end()) - blocks.begin()) * (kCellsPerRow * 8 + 64));
  }
  const int64_t pages_needed = bytes / page_size + 2 * static_cast<int64_t>(blobs.size()) + 2;
  for (int attempt = 0;; ++attempt) {
    ClearLastFailedSqliteCode();
    Status s;
    if (opt.on_full == OnFull::kDropOldest) {
      bool evicted = false;
      s = EnsureSpace(pages_needed, &evicted);
    }
    std::vector<ChunkMeta> added;
    int64_t chunk_base = -1;
    if (s.ok()) s = WriteTransaction(work, blobs, &added, &chunk_base);
    if (s.ok()) {
      if (chunk_base < 0) ++commit_seq;
      LimitWalOverhang();
      pending_chunks.insert(pending_chunks.end(), added.begin(), added.end());
      RememberCommitted(work, blobs, added);
      for (const ChunkMeta& m : added) newest_hour = std::max(newest_hour, m.hour);
      disk_full = false;
      UpdateFullState();
      return Status::Ok();
    }
    const int code = LastFailedSqliteCode();
    if ((code & 0xff) == SQLITE_FULL) {
      // The budget (max_page_count) or the file system. Either way the policy applies: free
      // pages inside the file are reused without growing it, so eviction helps in both cases.
      Result<int64_t> free_pages = FreePages();
      const bool budget = free_pages.ok() && *free_pages < pages_needed + 1;
      fs_checked_mono = 0;  // the file system may have filled since FileSystemFree looked: read it now
      uint64_t free_bytes = 0;
      disk_full = !budget || (FileSystemFree(&free_bytes) && free_bytes < static_cast<uint64_t>(bytes) + (1 << 20));
      if (opt.on_full == OnFull::kDropOldest && attempt < 3) {
        // On a full file system the WAL cannot grow: checkpoint it first, so that the eviction
        // (a write transaction too) reuses the WAL file from its start.
        // If another program took the last free byte, the checkpoint itself may need room for
        // the pages the WAL holds past the end of the main file: the reserve file gives it.
        if (disk_full) {
          if (!budget) ReleaseReserve();  // the kernel said ENOSPC, not our page limit
          const int crc = Checkpoint(SQLITE_CHECKPOINT_PASSIVE);
          // The checkpoint found no room for those pages: the kernel's ENOSPC too, whatever the
          // page count said (the page limit may have shrunk below the file with the free space,
          // and the eviction's own write transaction then needs a WAL that can grow).
          if ((crc & 0xff) == SQLITE_FULL && ReleaseReserve()) Checkpoint(SQLITE_CHECKPOINT_PASSIVE);
          FitToFileSystem();
        }
        int64_t freed = 0;
        Status e = Evict(std::max<int64_t>(pages_needed * 2, 16), &freed);
        if (e.ok() && freed > 0) continue;
        if (!e.ok()) NoteFailure(e, LastFailedSqliteCode());
      }
      if (!io_failed) state = WriterState::kFull;
      return ResourceExhaustedError(StrFormat("%s: %s", disk_full.load() ? "file system full" : "buffer.max_size reached",
                                              s.message().c_str()));
    }
    NoteFailure(s, code);
    if (io_failed) {
      // A failed COMMIT (typically its fsync) may have left the complete transaction in the WAL,
      // where the next open finds it: retrying blindly could store these readings twice.
      *uncertain = true;
      uncertain_chunk_base = chunk_base;
      uncertain_seq = chunk_base < 0 ? commit_seq + 1 : 0;
    }
    return s;
  }
}

void Store::Impl::RememberCommitted(Pending& work, std::vector<std::pair<int64_t, std::string>>& blobs,
                                    const std::vector<ChunkMeta>& added) {
  for (size_t i = 0; i < added.size() && i < blobs.size(); ++i) {
    auto it = work.hours.find(blobs[i].first);
    if (it == work.hours.end()) continue;
    const size_t bytes = it->second.MemoryBytes() + blobs[i].second.capacity();
    // A new chunk's id is the largest in the table plus one: a kept one at or above it is gone
    // from the table (deleted by another process): dropped, so the ids stay ascending.
    while (!recent_chunks.empty() && recent_chunks.back().id >= added[i].id) {
      recent_bytes -= recent_chunks.back().bytes;
      recent_chunks.pop_back();
    }
    if (recent_bytes + bytes > kMaxRecentChunkBytes) continue;  // decoded from its row when loaded
    recent_chunks.push_back(RecentChunk{added[i].id, std::move(blobs[i].second), std::move(it->second), bytes});
    recent_bytes += bytes;
  }
}

std::optional<ChunkData> Store::Impl::TakeRecent(int64_t id, std::string_view blob) {
  // Kept in ascending id order (RememberCommitted).
  auto it = std::lower_bound(recent_chunks.begin(), recent_chunks.end(), id,
                             [](const RecentChunk& r, int64_t v) { return r.id < v; });
  if (it == recent_chunks.end() || it->id != id) return std::nullopt;
  std::optional<ChunkData> out;
  if (it->blob == blob) out = std::move(it->data);
  recent_bytes -= it->bytes;
  recent_chunks.erase(it);
  return out;
}

Result<bool> Store::Impl::ResolveUncertain() {
  if (io_failed) EP_RETURN_IF_ERROR(Reopen());  // reads the WAL back, sets commit_seq
  bool landed = commit_seq >= uncertain_seq;
  if (uncertain_chunk_base >= 0) {  // it inserted chunks: are there any above the ids it saw?
    Result<int64_t> max_id = MaxChunkId();
    if (!max_id.ok()) return max_id.status();
    landed = *max_id > uncertain_chunk_base;
  }
  if (!landed) {
    EP_LOG_NOTICE(kLog, "the commit that failed with an I/O error did not reach %s: committing it again",
                  opt.path.c_str());
    uncertain_seq = 0;
    uncertain_chunk_base = -1;
    return false;
  }
  // It is in the WAL, but its fsync failed: the kernel may hold those pages only in its cache
  // (marked clean after the error). A checkpoint copies them into the main file and fsyncs that
  // file; only when it completes are the readings durable.
  int log_frames = 0, done_frames = 0;
  int rc = Checkpoint(SQLITE_CHECKPOINT_FULL, &log_frames, &done_frames);
  if (rc != SQLITE_OK || done_frames < log_frames) {
    Status s = rc != SQLITE_OK ? SqliteStatus(rc, db, "checkpoint after an I/O error")
                               : UnavailableError("checkpoint after an I/O error: readers kept it from completing");
    if (rc != SQLITE_OK) NoteFailure(s, rc);
    return s;
  }
  EP_LOG_NOTICE(kLog, "the commit that failed with an I/O error had reached %s; checkpointed it (kept once, not "
                "committed again)", opt.path.c_str());
  uncertain_seq = 0;
  uncertain_chunk_base = -1;
  return true;
}

}  // namespace edgepipe::buffer
