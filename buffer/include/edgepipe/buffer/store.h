// The durable buffer: a SQLite database in WAL mode with one writer thread that group-commits
// readings as compressed columnar chunks, merges small chunks in the background, keeps the
// database and its WAL within a disk budget, hands out batches for upload and deletes them only
// after the sink confirmed them. The full contract is in docs/durability.md, the on-disk format
// in docs/buffer-format.md.
//
// Invariants:
//  1. A ticket returned by Append/Quarantine/RecordGap is durable (at the configured sync level)
//     once WaitDurable(ticket) returned OK; before that it lives only in memory. Durable means
//     committed, or (after the first wait) written to the acknowledgement journal, whose records
//     the next Open commits; it is visible to batches and statistics once committed (Flush()).
//  2. A chunk belongs to at most one batch; a batch's chunk set never changes after the claim
//     transaction committed, so re-reading a batch after a crash gives the same readings. (One
//     exception: a chunk found undecodable when the batch is loaded is set aside and replaced by
//     a gap record, see docs/durability.md.)
//  3. A reading is deleted only by AckBatch of the batch that contains it, or by the drop_oldest
//     policy, which leaves a gap record (sensor, time range, count, reason) for every reading it
//     drops. Merging and splitting chunks never changes the readings, only how they are packed.
//  4. The database file stays within max_size minus the WAL allowance (SQLite's max_page_count);
//     the WAL is checkpointed so that it stays within the allowance (docs/durability.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/status.h"

namespace edgepipe::buffer {

enum class SyncMode { kNormal, kFull };
enum class OnFull { kDropOldest, kRejectNew };

struct Options {
  std::string path;                          // database file; its directory must exist
  SyncMode sync = SyncMode::kFull;
  uint64_t commit_max_readings = 10000;      // group commit closes at this many readings...
  int64_t commit_interval_us = 1'000'000;    // ...or after this long
  uint64_t max_size_bytes = 512ull << 20;    // budget for database + WAL
  OnFull on_full = OnFull::kDropOldest;
  uint64_t quarantine_max_rows = 100'000;    // oldest quarantine rows are evicted beyond this
  uint64_t quarantine_raw_limit = 1024;      // raw payload bytes kept per quarantine row
  uint64_t max_memory_readings = 200'000;    // readings held in memory while commits fail
  // One transaction holds at most this many readings; a longer queue (after commits failed, or
  // a burst) is committed in parts of whole appends. 0: the larger of commit_max_readings and
  // 50,000 (2,000 while the file system is full).
  uint64_t max_transaction_readings = 0;
  // Small chunks (one per group commit and hour) are merged in the background into chunks of
  // up to this many readings: bigger chunks compress better (docs/benchmarks.md).
  uint64_t merge_target_readings = 10'000;
  // The writer merges only chunks committed at least this long ago (monotonic clock). The agent
  // sets it to [batch] max_age: while uploads keep up, younger chunks are claimed before that
  // age, so merging them would be work thrown away; while they do not, chunks are merged once
  // that old. MergeNow() ignores it.
  int64_t merge_min_age_us = 0;
  std::string vfs_name;                      // SQLite VFS to open with ("" = default); tests
  Clock* clock = nullptr;                    // nullptr = RealClock::Default()
  // WaitDurable() answered by appending to `<path>.ack0`/`.ack1` (one write, and an fdatasync at
  // sync = full) instead of a SQLite commit per call; replayed at the next open
  // (docs/durability.md, "The acknowledgement journal"). Off: every waiter commits. The agent
  // turns it on (`buffer.ack_journal`, default true).
  bool ack_journal = false;
};

struct Stats {
  uint64_t pending_readings = 0;     // committed, not yet in a batch
  uint64_t pending_chunks = 0;
  uint64_t claimed_batches = 0;      // claimed, not yet acknowledged
  uint64_t claimed_readings = 0;
  uint64_t memory_readings = 0;      // appended, not yet committed
  int64_t oldest_pending_ts_us = 0;  // 0 when nothing is pending
  uint64_t quarantine_rows = 0;
  uint64_t gap_rows = 0;
  uint64_t db_bytes = 0;             // main file + WAL on disk
  // Lifetime counters (persisted in the database).
  uint64_t readings_committed = 0;   // ever committed (stored + acked + evicted + corrupt)
  uint64_t readings_acked = 0;
  uint64_t batches_acked = 0;
  uint64_t readings_dropped = 0;     // sum of the next three
  uint64_t readings_evicted = 0;     // committed, then evicted by drop_oldest (gap records)
  uint64_t readings_dropped_memory = 0;  // never committed: dropped from the memory queue (gaps)
  uint64_t readings_rejected = 0;    // refused by Append (reject_new or memory queue full)
  uint64_t readings_corrupt = 0;     // in chunks found undecodable (set aside, gap records)
  uint64_t damaged_chunks = 0;       // chunks set aside, kept in the damaged_chunks table
  uint64_t quarantine_evicted = 0;
  uint64_t corrupt_recoveries = 0;   // damaged database files moved aside (lifetime)
  std::string recovered_from;        // the last file a damaged database was moved to
  uint64_t max_bytes = 0;            // the budget (max_size) this store runs with; 0 = unknown
  // This process:
  uint64_t commits = 0;
  uint64_t commits_by_waiters = 0;   // of these, made on the thread of a WaitDurable caller
  uint64_t journal_writes = 0;       // waits answered by the acknowledgement journal instead
  uint64_t journal_replayed = 0;     // appends replayed from it when this store was opened
  uint64_t journal_buffer_bytes = 0; // appends encoded for it, not written yet (memory)
  uint64_t commit_errors = 0;
  uint64_t merges = 0;               // merge transactions
  uint64_t evictions = 0;            // eviction transactions
  uint64_t reopens = 0;              // reopens after an I/O error
  // Chunks LoadBatch took from the data this process committed (byte-identical rows), and
  // chunks it decoded from their rows; the memory that committed data holds meanwhile.
  uint64_t chunks_loaded_from_memory = 0;
  uint64_t chunks_loaded_decoded = 0;
  uint64_t recent_chunk_bytes = 0;
  std::string state;                 // "ok", "full", "io_error" (docs/operations.md)
  std::string last_error;            // the last commit error, "" when none
  int64_t last_ack_time_us = 0;
  std::string last_ack_key;
};

class Store final : public ReadingSink, public BatchSource {
 public:
  // Opens (creating if needed) the database and starts the writer thread.
  static Result<std::unique_ptr<Store>> Open(const Options& options);
  ~Store() override;  // commits what is in memory and stops the writer

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ReadingSink. An append with source state or a state cell comes from a source that keeps its
  // data until it is durable (MQTT QoS 1, serial, the clock guard): drop_oldest never drops its
  // readings; when the memory queue holds nothing else to drop, appends are refused
  // (kResourceExhausted) and the source retries.
  Result<uint64_t> Append(std::span<const Reading> readings) override;
  Result<uint64_t> AppendWithState(std::span<const Reading> readings, const SourceState& state) override;
  Result<std::optional<std::string>> LoadState(const std::string& key) override;
  // Cells are kept 64 to a row (table `state_cells`); `readings` is only read, never taken.
  Result<uint64_t> AppendWithCell(std::vector<Reading>& readings, const StateCell& cell) override;
  // Also finds a cell stored as a plain SourceState (StateCell::AsState) by edgepipe before
  // buffer schema 3, when no row of state_cells holds it.
  Result<std::optional<uint64_t>> LoadCell(const std::string& table, uint32_t index) override;
  // When no commit is running and the writer handles no failure, the caller commits the queue
  // itself (with everything other threads queued) rather than waking the writer for it.
  Status WaitDurable(uint64_t ticket) override;
  Result<uint64_t> Quarantine(const QuarantineRecord& record) override;
  Result<uint64_t> RecordGap(const GapRecord& gap) override;

  // BatchSource
  Result<std::optional<Batch>> LeaseBatch(const BatchPolicy& policy, bool flush) override;
  Status AckBatch(uint64_t batch_id, const DeliveryReceipt& receipt) override;
  Status ReleaseBatch(uint64_t batch_id) override;

  // The most recently committed readings (newest chunks first, each chunk in stored order), up
  // to about `max_readings`: what a restarted agent may see again from a peer that did not get
  // its acknowledgement (used to seed duplicate detection).
  Result<std::vector<Reading>> RecentReadings(size_t max_readings);

  // Commits everything appended so far into the database and waits for it (WaitDurable may
  // answer from the acknowledgement journal before the commit).
  Status Flush();
  // Merges every small chunk that can be merged now (the writer does this in the background;
  // benchmarks and tests call it to reach a steady state). Returns the number of merges.
  Result<uint64_t> MergeNow();
  Stats GetStats();

  // Liveness of the writer thread for the service watchdog. Lock-free: never blocks, even while
  // the writer is stuck inside SQLite.
  struct WriterHealth {
    bool running = false;           // the writer thread has started and not exited
    int64_t busy_since_mono_us = 0; // monotonic time the current commit attempt began; 0 = idle
  };
  WriterHealth GetWriterHealth() const;
  const std::string& instance_id() const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  // WaitDurable (`journal`: the acknowledgement journal may answer) and Flush (it may not).
  Status WaitFor(uint64_t ticket, bool journal);
  std::unique_ptr<Impl> impl_;
};

// Reads the statistics of a buffer database without disturbing an agent that uses it
// (read-only connection). kNotFound when the file does not exist.
Result<Stats> ReadStats(const std::string& path);

const char* SyncModeName(SyncMode m);
const char* OnFullName(OnFull p);

}  // namespace edgepipe::buffer
