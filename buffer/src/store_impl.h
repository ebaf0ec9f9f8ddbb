// Private state of buffer::Store, shared by its implementation files:
//   store.cpp          public API, the writer thread and its state machine
//   store_open.cpp     opening: pragmas, quick_check, moving a corrupt file aside, migrations
//   store_commit.cpp   group commits, the disk budget, eviction and gap records
//   store_batches.cpp  claiming, leasing, acknowledging batches; merging small chunks
//   store_stats.cpp    statistics (also read-only from another process)
//
// Locks: `mu` guards what appenders, waiters and the writer share (the commit queue, tickets,
// the writer's state); `db_mu` guards the SQLite connection and everything derived from the
// database (the pending-chunk index, leases). Never take `db_mu` while holding `mu`; the
// reverse order (db_mu then mu) is allowed and used by AckBatch to wake the writer.
//
// Writer states (see WriterLoop):
//
//        commit ok                       SQLITE_FULL (budget or disk)
//   OK ─────────────► OK           OK ─────────────────────────────► FULL
//   FULL ── space freed by eviction or AckBatch, commit ok ─────────► OK
//   OK/FULL ── write/fsync I/O error, SQLITE_CORRUPT ──► IO_ERROR ── reopen ok ──► OK
//
// In IO_ERROR nothing is written through the old connection (an fsync that failed once may
// have dropped dirty pages: LevelDB's bg_error_, SQLite's pager ERROR state); the writer
// closes and reopens the database (quick_check, moving it aside if damaged) after a backoff,
// while appends keep queueing in memory up to max_memory_readings.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chunk_codec.h"
#include "chunk_data.h"
#include "edgepipe/buffer/store.h"
#include "sqlite_util.h"

namespace edgepipe::buffer {

// A committed chunk not yet claimed into a batch (the in-memory index of the chunks table, so
// claims, merges and eviction never scan the table).
struct ChunkMeta {
  int64_t id = 0;
  int64_t hour = 0;
  int64_t first_ts = 0;
  int64_t last_ts = 0;
  uint64_t count = 0;
  uint64_t est_bytes = 0;     // estimated NDJSON size (batch policy)
  uint64_t stored_bytes = 0;  // BLOB size
  int64_t mono_us = 0;        // monotonic time of its commit in this process; 0 = earlier run
};

// Rows of state_cells: the cells (StateCell) of one table with index / kCellsPerRow = block, as
// kCellsPerRow little-endian u64 values (0 = none). A shorter blob reads as zeros past its end.
constexpr uint32_t kCellsPerRow = 64;
inline uint64_t CellOf(std::string_view row, uint32_t index) {
  const size_t at = static_cast<size_t>(index % kCellsPerRow) * 8;
  if (row.size() < at + 8) return 0;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(row[at + i]);
  return v;
}
inline void SetCell(std::string* row, uint32_t index, uint64_t v) {
  const size_t at = static_cast<size_t>(index % kCellsPerRow) * 8;
  if (row->size() < kCellsPerRow * 8) row->resize(kCellsPerRow * 8, '\0');
  for (int i = 0; i < 8; ++i) (*row)[at + i] = static_cast<char>(v >> (8 * i));
}

// Work queued for the next group commit.
// Appends remembered as dropped (dropped_tickets, Journal::cut) at most: the oldest are forgotten
// beyond this, so a long outage under drop_oldest does not grow them without bound.
inline constexpr size_t kMaxDroppedTickets = 65'536;

struct Pending {
  std::map<int64_t, ChunkData> hours;  // readings by UTC hour, arrival order within the hour
  // Per hour: (end index in that hour's ChunkData, ticket) for each append that added to it,
  // so dropping readings from memory knows whose they were.
  std::map<int64_t, std::vector<std::pair<size_t, uint64_t>>> marks;
  // Appends whose source holds their data until it is durable and waits for it (they carry
  // source state or a state cell: an MQTT QoS 1 message, a serial frame, a clock-guard release),
  // in ticket order. drop_oldest never drops their readings: the source keeps them, and is told
  // to retry when the queue has no other room (Store::Impl::Enqueue).
  std::vector<uint64_t> held;
  size_t readings = 0;
  std::vector<QuarantineRecord> quarantine;
  std::vector<GapRecord> gaps;
  // Gaps of readings dropped from memory (drop_oldest) whose append is in a journal file, by that
  // append's ticket. Such a gap is committed only with a part that also records "appends up to
  // its ticket are in" (TakeFront): a replay after a crash between two parts then brings back
  // the readings without the gap, or skips them and finds the gap, never both.
  std::map<uint64_t, std::vector<GapRecord>> journaled_gaps;
  std::map<std::string, std::string> state;     // source state, latest value per key
  // State cells (StateCell) per table, in append order: the last one of an index wins.
  std::map<std::string, std::vector<std::pair<uint32_t, uint64_t>>> cells;
  std::map<std::string, int64_t> counter_deltas;  // counted in memory, persisted with the commit
  // The last journaled append this work covers (ack_journal.h): written to `meta` in the same
  // transaction. 0 = not journaling.
  uint64_t journal_generation = 0;
  uint64_t journal_ticket = 0;
  // When a long queue is committed in parts (CommitQueue), the first part holds the readings of
  // appends up to journal_ticket but the other items (quarantine, gaps, state) of appends up to
  // this one.
  uint64_t journal_items_ticket = 0;

  bool empty() const {
    return readings == 0 && quarantine.empty() && gaps.empty() && journaled_gaps.empty() && state.empty() &&
           cells.empty() && counter_deltas.empty();
  }
  void AddCell(const StateCell& c) { cells[c.table].emplace_back(c.index, c.value); }
  // The newest value queued here for a cell, 0 when none.
  uint64_t FindCell(const std::string& table, uint32_t index) const;
  size_t items() const { return readings + quarantine.size() + gaps.size() + journaled_gaps.size(); }
  // Appends `later` after everything here (used to put failed work back in front).
  void Absorb(Pending&& later);
  // An hour not queued yet starts from one of `spares` when there is one (emptied chunks of an
  // earlier commit: their series' memory is reused).
  void AddReadings(std::span<const Reading> readings, uint64_t ticket, std::vector<ChunkData>* spares = nullptr,
                   bool held = false);
  bool IsHeld(uint64_t ticket) const { return std::binary_search(held.begin(), held.end(), ticket); }
  size_t Droppable() const;  // readings of appends not held
  // Moves the readings of the appends up to a ticket T, whole and in ticket order, as many as fit
  // in `max` (at least one append's), and everything that is not a reading into a new Pending;
  // T in *front_ticket. Every append's readings are then either all in the front (ticket <= T) or
  // all still here (ticket > T).
  Pending TakeFront(size_t max, uint64_t* front_ticket);
  // Adds a gap, merging it into a queued one of the same source, sensor and reason.
  void AddGap(const GapRecord& g);
  // The same, for readings of journaled append `ticket` (journaled_gaps).
  void AddJournaledGap(uint64_t ticket, const GapRecord& g);
};

enum class WriterState { kOk, kFull, kIoError };
const char* WriterStateName(WriterState s);

struct Store::Impl {
  Options opt;
  Clock* clock = nullptr;
  std::string instance_id;

  // ---- guarded by db_mu ----
  std::mutex db_mu;
  sqlite3* db = nullptr;
  int64_t page_size = 4096;
  int64_t max_pages = 0;         // the main file's share of the budget, in pages
  // max_page_count in force: max_pages, or (drop_oldest) less while the file system has less
  // room than the budget: what the main file holds plus what the file system can still take,
  // minus a margin for the WAL (FitToFileSystem). The file is then full for SQLite before it
  // is full for the kernel, and eviction frees pages inside it instead of failing on ENOSPC.
  int64_t page_limit = 0;
  // drop_oldest: `<path>.reserve`, a file holding kReserveBytes of the file system for the day
  // another program takes its last free byte (store_commit.cpp, docs/durability.md).
  std::string reserve_path;
  bool reserve_present = false;
  bool reserve_released = false;  // deleted on ENOSPC and not made again yet
  int64_t wal_allowance = 0;     // bytes of the budget kept for the WAL
  int64_t checkpoint_frames = 0; // the WAL hook checkpoints at this many frames
  std::string db_dir;            // directory of the database (free space for the WAL hook)
  // The file system's free space as FileSystemFree last read it (for the WAL hook and
  // FitToFileSystem), read at most every kFsCheckUs while there is plenty (a statvfs per commit
  // was a tenth of a QoS 1 message's system time).
  uint64_t fs_free_bytes = 0;
  int64_t fs_checked_mono = 0;  // steady clock, µs
  // Size of the main database file: it changes only when a checkpoint writes to it, so it is
  // read again after each (Checkpoint) instead of on every commit. -1 = read it.
  int64_t main_file_bytes = -1;
  std::vector<ChunkMeta> pending_chunks;  // unclaimed chunks, ascending id
  int64_t newest_hour = INT64_MIN;        // hour of the newest committed chunk
  std::set<uint64_t> leased;
  ChunkEncoder encoder;
  // The batch loader's decoding space, reused chunk after chunk (LoadBatch).
  ChunkData load_chunk;
  std::string load_raw;
  // Chunks this connection committed, kept as written (the blob) and as data until they are
  // read back: LoadBatch and ReadChunk take a chunk from here when the row's bytes are exactly
  // the blob (a chunk changed since, e.g. by another process, is decoded from its row as before)
  // instead of decompressing and decoding what was just encoded. At most kMaxRecentChunkBytes
  // (store_commit.cpp): a chunk that does not fit is not kept (it stays one of the commit
  // queue's spares, and is decoded when loaded), so what is kept is what the loader reads next
  // when it keeps up with the commits. An entry leaves when its chunk is read (merge, split and
  // eviction read a chunk before rewriting or deleting it) or the connection closes.
  struct RecentChunk {
    int64_t id = 0;
    std::string blob;
    ChunkData data;
    size_t bytes = 0;  // memory counted against the bound
  };
  std::deque<RecentChunk> recent_chunks;
  size_t recent_bytes = 0;
  uint64_t chunks_loaded_from_memory = 0;  // LoadBatch: chunks taken from recent_chunks...
  uint64_t chunks_loaded_decoded = 0;      // ...and decoded from their rows
  void RememberCommitted(Pending& work, std::vector<std::pair<int64_t, std::string>>& blobs,
                         const std::vector<ChunkMeta>& added);
  // The committed data of chunk `id` if `blob` is exactly what was written for it (removed from
  // recent_chunks: the caller owns it); otherwise nothing.
  std::optional<ChunkData> TakeRecent(int64_t id, std::string_view blob);
  // An emptied chunk offered back to the commit queue's spares (takes `mu`).
  void RecycleChunk(ChunkData&& data);
  bool io_failed = false;        // IO_ERROR: no writes through this connection
  // Statements of the commit path, prepared once per connection (a prepare costs about as much
  // as inserting a small chunk). Finalized by CloseDb.
  std::map<std::string, std::unique_ptr<Stmt>> stmt_cache;
  // page_count and freelist_count as the last commit transaction left them, read inside that
  // transaction. Valid while sqlite3_total_changes64() still equals `changes` (every write of
  // this database goes through this connection): the next commit's space check and the checks
  // after a commit then need no read transactions of their own (each costs several fcntl locks).
  struct PageCounts {
    int64_t pages = 0, freelist = 0;
    int64_t changes = -1;
  } page_counts;
  // Commits without chunks ever made in this database (counter `group_commits`): after such a
  // commit failed with an I/O error, reading it back tells whether it nevertheless reached the
  // file (a failed fsync after the WAL frames were written). Commits with chunks are told by
  // their chunk ids instead (WriteTransaction).
  int64_t commit_seq = 0;
  int64_t uncertain_seq = 0;     // != 0: the commit that would have made commit_seq this is in doubt
  // Commits with chunks do not count in commit_seq: for the commit in doubt, the largest chunk id
  // its transaction saw before inserting (-1 = it had no chunks and wrote group_commits).
  int64_t uncertain_chunk_base = -1;
  Status io_error;
  std::string recovered_from;    // file a corrupt database was moved to (this process)

  // ---- guarded by mu ----
  std::mutex mu;
  std::condition_variable writer_cv;
  std::condition_variable durable_cv;
  Pending pending;
  std::vector<ChunkData> spare_chunks;  // emptied by KeepSpareChunks, taken by pending.AddReadings
  int64_t pending_since_mono = 0;
  uint64_t appended_ticket = 0;   // last ticket handed out
  uint64_t durable_ticket = 0;    // every ticket <= this is committed (or reported dropped)
  uint64_t error_generation = 0;  // bumped on each failed commit
  Status last_error;
  std::set<uint64_t> dropped_tickets;  // appends whose readings were dropped from memory
  // A commit that failed with an I/O error may still have reached the file. Its work waits here
  // (not merged back into `pending`, so it cannot be committed twice) until ResolveUncertain
  // reopened the database and found out; nothing else is committed meanwhile.
  std::unique_ptr<Pending> uncertain_work;
  uint64_t uncertain_ticket = 0;
  // The work a commit is writing (CommitQueue, while `committing`): LoadState looks there too.
  const Pending* inflight = nullptr;
  bool urgent = false;
  bool kick = false;              // space was freed: retry a failed commit now
  bool stop = false;
  // A commit is running (the writer's, or a waiter's own: see Store::WaitDurable); no other
  // may start until it finished.
  bool committing = false;
  bool maintenance_due = true;    // a commit succeeded since the writer last tried a merge
  int64_t backoff_us = 0;         // after failed commits: the current retry delay...
  int64_t retry_at = 0;           // ...and when the writer retries (steady clock; 0 = no backoff)
  std::thread writer;
  // The acknowledgement journal (ack_journal.h, store_journal.cpp).
  struct Journal {
    bool allowed = false;          // Options::ack_journal and a file database
    bool on = false;               // a waiter came: every append is also encoded into `buf`
    bool failed = false;           // a write failed: waiters commit again, as without it
    uint64_t first_ticket = 0;     // the first append encoded
    uint64_t generation = 0;       // this process's records (random)
    std::string path[2];
    int fd[2] = {-1, -1};
    int active = 0;                // the file appends are written to
    uint64_t max_ticket[2] = {0, 0};  // largest ticket written to each file (0: empty)
    std::string buf;               // encoded appends not written yet
    uint64_t buf_ticket = 0;       // largest ticket in `buf`
    uint64_t written_ticket = 0;   // every append from first_ticket to this is in a file, but `cut` ones
    // The records in `buf`, in ticket order. A record whose append lost readings to drop_oldest
    // before it was written is cut out (dead) before the next write: while commits fail, `buf`
    // holds no more than the memory queue does, and no file holds readings a gap says are lost.
    struct BufRecord {
      uint64_t ticket;
      size_t end;  // offset in `buf` after it
      bool dead;
    };
    std::vector<BufRecord> buf_records;
    size_t buf_dead_bytes = 0;
    std::set<uint64_t> cut;  // appends cut from `buf` unwritten, until committed
  } journal;

  // Written by the writer (and AckBatch), read anywhere.
  std::atomic<WriterState> state{WriterState::kOk};
  std::atomic<bool> disk_full{false};  // the last SQLITE_FULL came from the file system
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> commits_by_waiters{0};
  std::atomic<uint64_t> commit_errors{0};
  // Writer liveness for GetWriterHealth() (read without any lock): running, and the monotonic
  // time the current commit / merge / reopen began (0 = idle).
  std::atomic<bool> writer_running{false};
  std::atomic<int64_t> commit_started_mono{0};
  std::atomic<uint64_t> merges{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> reopens{0};
  std::atomic<uint64_t> memory_readings{0};
  std::atomic<uint64_t> journal_writes{0};     // waits answered by the journal
  uint64_t journal_replayed = 0;               // appends replayed from it at open

  ~Impl() { CloseDb(); }

  // store_open.cpp
  Status OpenDatabase();          // open (moving a corrupt file aside), migrate, load the index
  Status OpenAndCheck(bool* corrupt);
  Status Migrate(int from_version);
  Status CreateSchema();          // tables, version, instance id (new or migrated database)
  Status ApplyBudget(bool* corrupt);
  Status LoadPendingIndex();
  Status Reopen();                // IO_ERROR -> OK
  void CloseDb();
  // A cached statement for `sql`, reset and with no bindings. Reset it after reading rows.
  Stmt& Cached(const char* sql);

  // store_commit.cpp
  // `*uncertain` is set when the commit failed in a way that may have reached the file anyway.
  Status CommitWork(Pending& work, bool* uncertain);
  // After such a failure: reopens, and returns whether the commit in doubt is in the database
  // (then made durable by a checkpoint before true is returned).
  Result<bool> ResolveUncertain();
  // `*chunk_base`: the largest chunk id before the transaction inserted any, -1 when it had no
  // chunks (and counted itself in group_commits instead); see ResolveUncertain.
  Status WriteTransaction(Pending& work, std::vector<std::pair<int64_t, std::string>>& blobs,
                          std::vector<ChunkMeta>* added, int64_t* chunk_base);
  Status AddCounter(const char* name, int64_t delta);
  // The largest chunk id, 0 when there is none (a new chunk gets it plus one: WriteTransaction).
  Result<int64_t> MaxChunkId();
  Result<int64_t> FreePages();    // pages the main file may still use within page_limit
  Result<int64_t> FreePagesCached();  // the same, from page_counts when still valid
  Status ReadPageCounts(int64_t* pages, int64_t* freelist);
  void FitToFileSystem();         // drop_oldest: sets page_limit from the file system's free space
  void KeepReserve(int64_t room); // drop_oldest: (re)creates the reserve file if `room` allows
  bool ReleaseReserve();          // deletes the reserve file; true if it was there
  void LimitWalOverhang();        // checkpoints when the WAL holds too many pages past the file's end
  int Checkpoint(int mode, int* log_frames = nullptr, int* done_frames = nullptr);  // sqlite3_wal_checkpoint_v2
  // Free bytes of the database's file system (cached while above kFsFreshBelow); false if unknown.
  bool FileSystemFree(uint64_t* free_bytes);
  Status EnsureSpace(int64_t pages_needed, bool* evicted_any);
  Status Evict(int64_t pages_to_free, int64_t* freed_pages);
  Status RecordGapsInDb(const std::vector<GapRecord>& gaps);
  void UpdateFullState();
  void NoteFailure(const Status& s, int sqlite_code);

  // store_batches.cpp
  Result<std::optional<uint64_t>> ClaimReadings(const BatchPolicy& policy, bool flush);
  Result<std::optional<uint64_t>> ClaimQuarantine(const BatchPolicy& policy, bool flush);
  Result<std::optional<Batch>> LoadBatch(uint64_t id, bool columns = false);  // columns: Batch::columns
  Status SetAsideDamaged(int64_t chunk_id, const std::string& error, std::optional<uint64_t> batch_id);
  bool MergeOnce(bool any_age = false);  // one merge step; true when it merged something
  Result<ChunkData> ReadChunk(int64_t id);

  // store.cpp
  void WriterLoop();
  // Called with `lock` (on mu) held, by the writer or a waiter (WaitDurable): takes the queued
  // work (at most one transaction's worth), commits it with `mu` released, and records the
  // outcome: on success its tickets are durable; on failure the work goes back in front of the
  // queue (or aside, when the commit may have reached the file) and the writer retries after a
  // backoff. Returns the commit's status.
  Status CommitQueue(std::unique_lock<std::mutex>& lock);
  // Under mu: whether a thread waiting for `ticket` may commit the queue itself instead of
  // waking the writer (nothing else committing, no failure being handled, a small queue).
  bool CanCommitInline(uint64_t ticket) const;
  // After a commit: empties the committed chunks into spare_chunks (bounded), for reuse.
  void KeepSpareChunks(Pending& committed);
  // Whether a chunk of `bytes` (ChunkData::MemoryBytes) joins spare_chunks. Caller holds mu.
  bool SpareWanted(size_t bytes) const;
  Result<uint64_t> Enqueue(Pending&& add, std::span<const Reading> readings, const StateCell* cell = nullptr);

  // store_journal.cpp
  Status JournalReplay();          // at open, before the writer starts: commits what the journal holds
  void JournalStart();             // under mu, at the first wait: opens the files, encodes appends from now
  bool JournalCovers(uint64_t ticket);  // under mu: true once `ticket` is in a file (writes `buf`)
  void JournalCommitted(uint64_t ticket);  // under mu, after a commit of every ticket <= `ticket`
  void JournalClose();             // after the writer stopped
  // Under mu: whether the record of append `ticket` is (or may be, after a failed write) in a
  // journal file, so that a replay would bring its readings back.
  bool JournalHolds(uint64_t ticket) const;
  // Under mu, for an append that lost readings to drop_oldest: takes its record out of `buf`
  // when it is not written yet (nothing replays it; its waiter is told it was dropped).
  void JournalCut(uint64_t ticket);
  void JournalCompact();           // under mu: removes the dead records from `buf`
  size_t DropOldestInMemory(size_t n);  // under mu; returns how many it dropped
  std::string BatchName(uint64_t id) const;
  Status CheckWritable() const;   // under db_mu: OK unless IO_ERROR
};

// Microseconds of the steady clock: for real I/O conditions (retry backoff, how fresh a cached
// file-system figure is), which the injected Clock must not stretch or freeze.
inline int64_t SteadyNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// sqlite3 extended result code of the last failure on `db` (0 when none).
int LastSqliteCode(sqlite3* db);
bool IsIoWriteError(int code);    // write, fsync, truncate... : enter IO_ERROR
bool IsCorruptionCode(int code);  // SQLITE_CORRUPT, SQLITE_NOTADB, read errors at open

}  // namespace edgepipe::buffer
