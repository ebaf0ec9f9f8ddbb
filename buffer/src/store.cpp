// buffer::Store: the public API, the commit queue and the writer thread. See store_impl.h for
// the file layout, the locks and the writer's states.
#include <algorithm>
#include <chrono>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "sqlite_util.h"
#include "ack_journal.h"
#include "store_impl.h"

namespace edgepipe::buffer {

const char* SyncModeName(SyncMode m) { return m == SyncMode::kFull ? "full" : "normal"; }
const char* OnFullName(OnFull p) { return p == OnFull::kDropOldest ? "drop_oldest" : "reject_new"; }
const char* WriterStateName(WriterState s) {
  switch (s) {
    case WriterState::kOk: return "ok";
    case WriterState::kFull: return "full";
    case WriterState::kIoError: return "io_error";
  }
  return "?";
}

namespace {

constexpr const char* kLog = "buffer";
// Readings per commit transaction (a queue that grew while commits failed is committed in steps).
constexpr size_t kMaxTransactionReadings = 50'000;
constexpr size_t kFullDiskTransactionReadings = 2'000;
// Emptied chunks kept for the next commits' readings (KeepSpareChunks): one per hour being
// filled is enough, and a chunk grown large by a backlog is not kept.
constexpr size_t kMaxSpareChunks = 2;
constexpr size_t kMaxSpareChunkBytes = 4u << 20;

}  // namespace

// ---- Pending ----

void Pending::AddReadings(std::span<const Reading> rs, uint64_t ticket, std::vector<ChunkData>* spares, bool held_by_source) {
  if (held_by_source && !rs.empty()) {
    if (held.empty() || held.back() < ticket) held.push_back(ticket);
    else held.insert(std::upper_bound(held.begin(), held.end(), ticket), ticket);
  }
  ChunkData* cur = nullptr;
  int64_t cur_hour = 0;
  std::vector<int64_t> touched;
  for (const Reading& r : rs) {
    const int64_t h = FloorToHour(r.ts_us);
    if (!cur || h != cur_hour) {
      auto it = hours.find(h);
      if (it == hours.end()) {
        if (spares && !spares->empty()) {
          it = hours.emplace(h, std::move(spares->back())).first;
          spares->pop_back();
        } else {
          it = hours.emplace(h, ChunkData()).first;
        }
      }
      cur = &it->second;
      cur_hour = h;
      if (std::find(touched.begin(), touched.end(), h) == touched.end()) touched.push_back(h);
    }
    cur->Append(r);
  }
  for (int64_t h : touched) marks[h].emplace_back(hours[h].size(), ticket);
  readings += rs.size();
}

void Pending::Absorb(Pending&& later) {
  for (auto& [h, data] : later.hours) {
    ChunkData& mine = hours[h];
    const size_t offset = mine.size();
    if (mine.empty()) mine = std::move(data);
    else mine.AppendChunk(data);
    for (const auto& [end, ticket] : later.marks[h]) marks[h].emplace_back(end + offset, ticket);
  }
  readings += later.readings;
  if (!later.held.empty()) {
    const size_t mid = held.size();
    held.insert(held.end(), later.held.begin(), later.held.end());
    std::inplace_merge(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(mid), held.end());
  }
  quarantine.insert(quarantine.end(), std::make_move_iterator(later.quarantine.begin()),
                    std::make_move_iterator(later.quarantine.end()));
  gaps.insert(gaps.end(), later.gaps.begin(), later.gaps.end());
  for (auto& [ticket, gs] : later.journaled_gaps)
    for (const GapRecord& g : gs) AddJournaledGap(ticket, g);
  for (auto& [k, v] : later.state) state[k] = std::move(v);  // newer values win
  for (auto& [table, cs] : later.cells) {
    auto& mine = cells[table];
    mine.insert(mine.end(), cs.begin(), cs.end());  // after: newer values win
  }
  for (const auto& [k, v] : later.counter_deltas) counter_deltas[k] += v;
  later = Pending();
}

Pending Pending::TakeFront(size_t max, uint64_t* front_ticket) {
  // The readings of each append, by ticket (an append may have readings in several hours).
  std::map<uint64_t, size_t> per_ticket;
  for (const auto& [hour, m] : marks) {
    size_t start = 0;
    for (const auto& [end, ticket] : m) {
      per_ticket[ticket] += end - start;
      start = end;
    }
  }
  // The front takes whole appends in ticket order, as many as fit in `max` (at least one), so
  // that "every append up to T is in, none after it" describes what it commits: the journal's
  // replay after a crash between the parts relies on it (store_journal.cpp). A split by hour
  // alone committed parts of appends, and appends after the one it was split in.
  uint64_t t = 0;
  size_t taken = 0;
  for (const auto& [ticket, n] : per_ticket) {
    if (t != 0 && taken + n > max) break;
    t = ticket;
    taken += n;
  }
  // Within an hour the appends are in ticket order, so each hour's front is a prefix of it. Should
  // one not be (put back out of order), T is lowered until no append below it is left behind.
  std::map<int64_t, size_t> cut;  // hour -> readings of it in the front
  while (true) {
    uint64_t left_min = UINT64_MAX;
    cut.clear();
    for (const auto& [hour, m] : marks) {
      size_t k = 0;
      bool open = true;
      for (const auto& [end, ticket] : m) {
        if (open && ticket <= t) k = end;
        else {
          open = false;
          left_min = std::min(left_min, ticket);
        }
      }
      cut[hour] = k;
    }
    if (left_min > t) break;
    t = left_min - 1;
  }
  if (std::all_of(cut.begin(), cut.end(), [](const auto& c) { return c.second == 0; })) {
    // Nothing fits that way (appends far out of order): everything goes, over `max`.
    for (const auto& [hour, data] : hours) cut[hour] = data.size();
    t = per_ticket.rbegin()->first;
  }
  Pending front;
  std::swap(front.quarantine, quarantine);
  std::swap(front.gaps, gaps);
  std::swap(front.state, state);
  std::swap(front.cells, cells);
  std::swap(front.counter_deltas, counter_deltas);
  for (auto it = hours.begin(); it != hours.end();) {
    const int64_t hour = it->first;
    const size_t k = cut[hour];
    auto& my_marks = marks[hour];
    if (k == 0) {
      ++it;
      continue;
    }
    if (k == it->second.size()) {
      front.hours[hour] = std::move(it->second);
      front.marks[hour] = std::move(my_marks);
      marks.erase(hour);
      it = hours.erase(it);
    } else {
      front.hours[hour] = it->second.Slice(0, k);
      it->second = it->second.Slice(k, it->second.size());
      std::vector<std::pair<size_t, uint64_t>> kept;
      for (const auto& [end, ticket] : my_marks) {
        if (end <= k) front.marks[hour].emplace_back(end, ticket);
        else kept.emplace_back(end - k, ticket);
      }
      my_marks = std::move(kept);
      ++it;
    }
    front.readings += k;
    readings -= k;
  }
  // Gaps of journaled appends go with the part that records their append as in (see
  // journaled_gaps); those of appends above T wait for a later part.
  while (!journaled_gaps.empty() && journaled_gaps.begin()->first <= t)
    front.journaled_gaps.insert(journaled_gaps.extract(journaled_gaps.begin()));
  const auto held_end = std::upper_bound(held.begin(), held.end(), t);
  front.held.assign(held.begin(), held_end);
  held.erase(held.begin(), held_end);
  *front_ticket = t;
  return front;
}

namespace {
void MergeGap(std::vector<GapRecord>& gaps, const GapRecord& g) {
  for (GapRecord& q : gaps) {
    if (q.source == g.source && q.sensor == g.sensor && q.reason == g.reason) {
      q.from_us = std::min(q.from_us, g.from_us);
      q.to_us = std::max(q.to_us, g.to_us);
      q.count += g.count;
      return;
    }
  }
  gaps.push_back(g);
}
}  // namespace

void Pending::AddGap(const GapRecord& g) { MergeGap(gaps, g); }
void Pending::AddJournaledGap(uint64_t ticket, const GapRecord& g) { MergeGap(journaled_gaps[ticket], g); }

// ---- Impl: queue ----

std::string Store::Impl::BatchName(uint64_t id) const {
  char buf[32];
  snprintf(buf, sizeof buf, "%s-%010llu", instance_id.c_str(), static_cast<unsigned long long>(id));
  return buf;
}

Status Store::Impl::CheckWritable() const {
  if (!io_failed) return Status::Ok();
  return UnavailableError("buffer database is recovering from an I/O error (" + io_error.ToString() +
                          "); it is reopened automatically");
}

// Drops the `n` oldest readings (by UTC hour, then arrival) from the commit queue, leaving gap
// records and failing the appends they came from (WaitDurable reports it), but none of an append
// its source holds (Pending::held). Under mu. Returns how many it dropped (fewer than `n` when
// the rest is held).
size_t Store::Impl::DropOldestInMemory(size_t n) {
  struct Piece {
    size_t begin, end;  // in the hour's ChunkData, within one append
    uint64_t ticket;
  };
  std::vector<Piece> pieces;
  size_t dropped = 0;
  for (auto it = pending.hours.begin(); dropped < n && it != pending.hours.end();) {
    const int64_t hour = it->first;
    ChunkData& data = it->second;
    auto& marks = pending.marks[hour];
    // The oldest readings of appends no source holds, up to what is still to drop.
    pieces.clear();
    size_t start = 0, take = 0;
    for (const auto& [end, ticket] : marks) {
      if (dropped + take == n) break;
      if (!pending.IsHeld(ticket)) {
        const size_t k = std::min(end - start, n - dropped - take);
        pieces.push_back({start, start + k, ticket});
        take += k;
      }
      start = end;
    }
    if (take == 0) {
      ++it;
      continue;
    }
    // Their gaps. Appends a journal file holds (JournalHolds) get theirs apart, by ticket
    // (Pending::journaled_gaps); the others lose their unwritten record (JournalCut).
    auto add_gaps = [&](size_t begin, size_t end, uint64_t journaled_ticket) {
      ChunkData gone = data.Slice(begin, end);
      for (const SeriesColumns& s : gone.series()) {
        auto [lo, hi] = std::minmax_element(s.ts.begin(), s.ts.end());
        const GapRecord g{s.source, s.sensor, *lo, *hi, s.size(), "memory_full"};
        if (journaled_ticket) pending.AddJournaledGap(journaled_ticket, g);
        else pending.AddGap(g);
      }
    };
    size_t run_begin = 0, run_end = 0;  // adjacent pieces of appends no file holds, one slice
    bool prefix = true;                 // the pieces are readings [0, take)
    size_t expect = 0;
    for (const Piece& p : pieces) {
      prefix = prefix && p.begin == expect;
      expect = p.end;
      dropped_tickets.insert(p.ticket);
      if (JournalHolds(p.ticket)) {
        if (run_end > run_begin) add_gaps(run_begin, run_end, 0);
        run_begin = run_end = p.end;
        add_gaps(p.begin, p.end, p.ticket);
        continue;
      }
      JournalCut(p.ticket);
      if (p.begin != run_end) {
        if (run_end > run_begin) add_gaps(run_begin, run_end, 0);
        run_begin = p.begin;
      }
      run_end = p.end;
    }
    if (run_end > run_begin) add_gaps(run_begin, run_end, 0);
    std::vector<std::pair<size_t, uint64_t>> kept;
    if (prefix) {
      for (const auto& [end, ticket] : marks)
        if (end > take) kept.emplace_back(end - take, ticket);
      if (take < data.size()) data = data.Slice(take, data.size());
    } else {
      // A held append before some of them: the hour is rebuilt from what stays, in order.
      // Adjacent kept ranges are copied as one (the readings after the last piece, typically).
      ChunkData rest;
      size_t from = 0, piece = 0, copy_begin = 0, copy_end = 0, size = 0;
      for (const auto& [end, ticket] : marks) {
        size_t keep_from = from;
        if (piece < pieces.size() && pieces[piece].begin == from) keep_from = pieces[piece++].end;
        if (keep_from < end) {
          if (keep_from != copy_end) {
            if (copy_end > copy_begin) rest.AppendChunk(data.Slice(copy_begin, copy_end));
            copy_begin = keep_from;
          }
          copy_end = end;
          size += end - keep_from;
          kept.emplace_back(size, ticket);
        }
        from = end;
      }
      if (copy_end > copy_begin) rest.AppendChunk(data.Slice(copy_begin, copy_end));
      data = std::move(rest);
    }
    pending.readings -= take;
    dropped += take;
    if (kept.empty()) {
      pending.marks.erase(hour);
      it = pending.hours.erase(it);
    } else {
      marks = std::move(kept);
      ++it;
    }
  }
  while (dropped_tickets.size() > kMaxDroppedTickets) dropped_tickets.erase(dropped_tickets.begin());
  if (dropped > 0) {
    pending.counter_deltas["readings_dropped_memory"] += static_cast<int64_t>(dropped);
    EP_LOG_WARN(kLog, "commit queue full (%llu readings in memory, buffer.max_memory_readings) while commits fail (%s): "
                "dropped the %zu oldest, recorded as gaps", static_cast<unsigned long long>(opt.max_memory_readings),
                last_error.ok() ? "slow commits" : last_error.ToString().c_str(), dropped);
  }
  return dropped;
}

size_t Pending::Droppable() const {
  if (held.empty()) return readings;
  size_t n = 0;
  for (const auto& [hour, m] : marks) {
    size_t start = 0;
    for (const auto& [end, ticket] : m) {
      if (!IsHeld(ticket)) n += end - start;
      start = end;
    }
  }
  return n;
}

uint64_t Pending::FindCell(const std::string& table, uint32_t index) const {
  auto it = cells.find(table);
  if (it == cells.end()) return 0;
  for (auto c = it->second.rbegin(); c != it->second.rend(); ++c)
    if (c->first == index) return c->second;
  return 0;
}

Result<uint64_t> Store::Impl::Enqueue(Pending&& add, std::span<const Reading> readings, const StateCell* cell) {
  std::lock_guard<std::mutex> lock(mu);
  if (stop) return CancelledError("buffer is closing");
  const size_t n = readings.size() + add.items();
  auto reject = [&](const std::string& why) -> Status {
    if (!readings.empty()) pending.counter_deltas["readings_rejected"] += static_cast<int64_t>(readings.size());
    writer_cv.notify_one();  // the counter goes out with the next commit
    return ResourceExhaustedError(why);
  };
  if (!readings.empty() && opt.on_full == OnFull::kRejectNew && state.load() == WriterState::kFull)
    return reject(StrFormat("buffer is full (buffer.max_size %llu bytes%s) and buffer.on_full is reject_new: "
                            "%zu readings refused until uploads free space",
                            static_cast<unsigned long long>(opt.max_size_bytes),
                            disk_full.load() ? ", and the file system is full" : "", readings.size()));
  if (pending.items() + n > opt.max_memory_readings) {
    if (opt.on_full == OnFull::kRejectNew || readings.empty() || n > opt.max_memory_readings)
      return reject(StrFormat("buffer has %zu uncommitted items in memory (buffer.max_memory_readings %llu): %s",
                              pending.items(), static_cast<unsigned long long>(opt.max_memory_readings),
                              last_error.ok() ? "commits are slow" : last_error.ToString().c_str()));
    const size_t need = pending.items() + n - opt.max_memory_readings;
    if (pending.Droppable() < need || DropOldestInMemory(need) < need)
      return reject(StrFormat("buffer has %zu uncommitted items in memory (buffer.max_memory_readings %llu), "
                              "the rest held for sources that wait for them (MQTT QoS 1, serial): %s",
                              pending.items(), static_cast<unsigned long long>(opt.max_memory_readings),
                              last_error.ok() ? "commits are slow" : last_error.ToString().c_str()));
  }
  const bool was_empty = pending.empty();
  if (was_empty) pending_since_mono = clock->MonotonicNowUs();
  const uint64_t ticket = ++appended_ticket;
  if (journal.on && !journal.failed) {  // encoded now, written by the first waiter (JournalCovers)
    EncodeJournalRecord(&journal.buf, journal.generation, ticket, readings, add.quarantine, add.gaps, add.state,
                        cell ? std::span<const StateCell>(cell, 1) : std::span<const StateCell>());
    journal.buf_ticket = ticket;
    journal.buf_records.push_back({ticket, journal.buf.size(), false});
  }
  // A source that records its progress (state, a cell) holds its data until it is durable.
  if (!readings.empty()) pending.AddReadings(readings, ticket, &spare_chunks, cell || !add.state.empty());
  for (QuarantineRecord& q : add.quarantine) pending.quarantine.push_back(std::move(q));
  for (GapRecord& g : add.gaps) pending.gaps.push_back(std::move(g));
  for (auto& [k, v] : add.state) pending.state[k] = std::move(v);
  if (cell) pending.AddCell(*cell);
  memory_readings = pending.readings + (uncertain_work ? uncertain_work->readings : 0);
  // A full group is committed at once. The first item of a group does not wake the writer: it
  // looks every commit interval while idle (WriterLoop), and an appender that waits for its
  // ticket commits it itself (WaitDurable), without two thread switches per message.
  if (pending.readings >= opt.commit_max_readings) writer_cv.notify_one();
  return ticket;
}

// ---- Impl: writer ----

Status Store::Impl::CommitQueue(std::unique_lock<std::mutex>& lock) {
  Pending work;
  std::swap(work, pending);
  uint64_t ticket = appended_ticket;
  urgent = false;
  kick = false;
  // One transaction holds a bounded number of readings: after a long failure the queue may
  // hold hundreds of thousands, and on a full file system the WAL cannot grow to take them.
  const size_t txn_cap = opt.max_transaction_readings ? opt.max_transaction_readings
                         : disk_full.load()            ? kFullDiskTransactionReadings
                                                       : std::max<size_t>(opt.commit_max_readings, kMaxTransactionReadings);
  if (work.readings > txn_cap) {
    Pending front = work.TakeFront(txn_cap, &ticket);  // appends up to `ticket`, whole
    work.Absorb(std::move(pending));
    pending = std::move(work);
    work = std::move(front);
    urgent = true;  // commit the rest right after
  }
  memory_readings = pending.readings;
  if (journal.on) {
    // The transaction records the last journaled append it holds; appends from now on go to
    // the other file (when it is empty), so that this one can be emptied once this commit is in.
    work.journal_generation = journal.generation;
    work.journal_ticket = ticket;
    work.journal_items_ticket = appended_ticket;  // TakeFront moves every non-reading item
    if (journal.max_ticket[journal.active ^ 1] == 0) journal.active ^= 1;
  }
  committing = true;
  inflight = &work;
  lock.unlock();
  commit_started_mono = clock->MonotonicNowUs();
  bool uncertain = false;
  Status s = CommitWork(work, &uncertain);
  commit_started_mono = 0;
  lock.lock();
  committing = false;
  inflight = nullptr;
  if (s.ok()) {
    KeepSpareChunks(work);
    ++commits;
    backoff_us = 0;
    retry_at = 0;
    durable_ticket = std::max(durable_ticket, ticket);
    JournalCommitted(durable_ticket);
    last_error = Status::Ok();
    maintenance_due = true;
  } else {
    ++commit_errors;
    ++error_generation;
    last_error = s;
    EP_LOG_ERROR(kLog, "commit of %zu readings failed (state %s), keeping them in memory and retrying: %s",
                 work.readings, WriterStateName(state.load()), s.ToString().c_str());
    if (uncertain) {
      uncertain_work = std::make_unique<Pending>(std::move(work));
      uncertain_ticket = ticket;
    } else {
      // Put the work back in front of anything appended meanwhile, preserving order. It was
      // due, so it stays due: the retry runs when the backoff ends, not a commit interval (or a
      // full group) later.
      work.Absorb(std::move(pending));
      pending = std::move(work);
      urgent = true;
    }
    memory_readings = pending.readings + (uncertain_work ? uncertain_work->readings : 0);
    const int64_t floor = state.load() == WriterState::kIoError ? 100'000 : 50'000;
    const int64_t cap = state.load() == WriterState::kIoError ? 60'000'000 : 2'000'000;
    backoff_us = std::clamp<int64_t>(backoff_us * 2, floor, cap);
    retry_at = SteadyNowUs() + backoff_us;
  }
  durable_cv.notify_all();
  return s;
}

void Store::Impl::KeepSpareChunks(Pending& committed) {
  for (auto& [hour, data] : committed.hours) {
    const size_t bytes = data.MemoryBytes();
    if (!SpareWanted(bytes)) break;
    if (bytes == 0) continue;  // moved to recent_chunks: nothing to reuse
    data.Clear();
    spare_chunks.push_back(std::move(data));
  }
}

void Store::Impl::RecycleChunk(ChunkData&& data) {
  data.Clear();
  std::lock_guard<std::mutex> lock(mu);
  if (SpareWanted(data.MemoryBytes())) spare_chunks.push_back(std::move(data));
}

bool Store::Impl::SpareWanted(size_t bytes) const {
  return spare_chunks.size() < kMaxSpareChunks && bytes <= kMaxSpareChunkBytes;
}

bool Store::Impl::CanCommitInline(uint64_t ticket) const {
  return !committing && !stop && !uncertain_work && retry_at == 0 && state.load() == WriterState::kOk &&
         ticket <= appended_ticket && pending.readings <= opt.commit_max_readings;
}

void Store::Impl::WriterLoop() {
  struct Exited {
    std::atomic<bool>& flag;
    ~Exited() { flag = false; }
  } exited{writer_running};
  std::unique_lock<std::mutex> lock(mu);
  int shutdown_failures = 0;
  // The writer is not woken for the first item queued (an appender about to wait for it
  // commits it itself, see Store::WaitDurable): when idle it looks again every commit interval
  // (at most a second), which is as soon as a queued item is due anyway, and then also tries
  // the merges that commits made due.
  const auto idle_wait = std::chrono::microseconds(std::clamp<int64_t>(opt.commit_interval_us, 1000, 1'000'000));
  auto commit_due = [&] {
    if (pending.empty()) return false;
    if (stop || urgent) return true;
    if (pending.readings >= opt.commit_max_readings) return true;
    return clock->MonotonicNowUs() - pending_since_mono >= opt.commit_interval_us;
  };
  while (true) {
    if (committing) {
      // A waiter commits on its own thread; it wakes the writer when it leaves work behind.
      writer_cv.wait_for(lock, idle_wait);
      continue;
    }
    const int64_t now = SteadyNowUs();
    if (retry_at > now && !kick && !(stop && shutdown_failures == 0)) {
      writer_cv.wait_for(lock, std::chrono::microseconds(retry_at - now));
      continue;
    }
    if (uncertain_work) {
      // A commit failed with an I/O error: find out whether it reached the file before
      // committing anything else (docs/durability.md, "I/O errors").
      committing = true;
      lock.unlock();
      Result<bool> landed = false;
      {
        std::lock_guard<std::mutex> db_lock(db_mu);
        commit_started_mono = clock->MonotonicNowUs();
        landed = ResolveUncertain();
        commit_started_mono = 0;
      }
      lock.lock();
      committing = false;
      if (!landed.ok()) {
        ++error_generation;
        last_error = landed.status();
        backoff_us = std::clamp<int64_t>(backoff_us * 2, 100'000, 60'000'000);
        retry_at = SteadyNowUs() + backoff_us;
        durable_cv.notify_all();
        if (stop && ++shutdown_failures > 3) {
          EP_LOG_ERROR(kLog, "giving up on %zu uncommitted items at shutdown: %s",
                       uncertain_work->items() + pending.items(), landed.status().ToString().c_str());
          break;
        }
        continue;
      }
      if (*landed) {
        ++commits;
        durable_ticket = std::max(durable_ticket, uncertain_ticket);
        last_error = Status::Ok();
      } else {
        uncertain_work->Absorb(std::move(pending));
        pending = std::move(*uncertain_work);
        urgent = true;  // it was due when it failed
      }
      uncertain_work.reset();
      memory_readings = pending.readings;
      backoff_us = 0;
      retry_at = 0;
      maintenance_due = true;
      durable_cv.notify_all();
      continue;
    }
    if (state.load() == WriterState::kIoError && !commit_due()) {
      // Nothing to commit, but batches cannot be read or acknowledged until the reopen.
      lock.unlock();
      Status s;
      {
        std::lock_guard<std::mutex> db_lock(db_mu);
        commit_started_mono = clock->MonotonicNowUs();
        s = io_failed ? Reopen() : Status::Ok();
        commit_started_mono = 0;
      }
      lock.lock();
      if (!s.ok()) {
        backoff_us = std::clamp<int64_t>(backoff_us * 2, 100'000, 60'000'000);
        retry_at = SteadyNowUs() + backoff_us;
        if (stop) break;
      } else {
        backoff_us = 0;
        retry_at = 0;
      }
      continue;
    }
    if (state.load() == WriterState::kFull && disk_full.load() && pending.empty() && retry_at <= now) {
      state = WriterState::kOk;  // the file system may have room again: let the next commit tell
    }
    if (!commit_due()) {
      if (stop) break;
      if (pending.empty() && durable_ticket != appended_ticket) {
        durable_ticket = appended_ticket;  // e.g. appends that were all refused
        durable_cv.notify_all();
      }
      if (maintenance_due && state.load() != WriterState::kIoError) {
        lock.unlock();
        bool more = false;
        {
          std::lock_guard<std::mutex> db_lock(db_mu);
          commit_started_mono = clock->MonotonicNowUs();
          if (!io_failed) more = MergeOnce();
          commit_started_mono = 0;
        }
        lock.lock();
        maintenance_due = more;
        continue;
      }
      if (pending.empty()) {
        writer_cv.wait_for(lock, idle_wait);
      } else {
        int64_t left = pending_since_mono + opt.commit_interval_us - clock->MonotonicNowUs();
        writer_cv.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(left, 100)));
      }
      continue;
    }
    Status s = CommitQueue(lock);
    if (!s.ok() && stop && ++shutdown_failures > 3) {
      EP_LOG_ERROR(kLog, "giving up on %zu uncommitted items at shutdown: %s", pending.items(), s.ToString().c_str());
      break;
    }
  }
  durable_cv.notify_all();
}

// ---- Store ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->clock = options.clock ? options.clock : &RealClock::Default();
  if (impl->opt.commit_max_readings == 0) impl->opt.commit_max_readings = 1;
  if (impl->opt.merge_target_readings == 0) impl->opt.merge_target_readings = 1;
  {
    std::lock_guard<std::mutex> lock(impl->db_mu);
    Status s = impl->OpenDatabase();
    if (!s.ok()) return s;
  }
  // Appends acknowledged before the last stop but not committed (takes db_mu itself).
  if (Status s = impl->JournalReplay(); !s.ok()) return s;
  Impl* raw = impl.get();
  raw->writer_running = true;  // before the thread runs, so a health check right after Open sees it
  raw->writer = std::thread([raw] { raw->WriterLoop(); });
  EP_LOG_INFO(kLog, "opened %s (sync=%s, max_size=%llu bytes, on_full=%s, instance %s, %zu pending chunks)",
              options.path.c_str(), SyncModeName(options.sync), static_cast<unsigned long long>(options.max_size_bytes),
              OnFullName(options.on_full), raw->instance_id.c_str(), raw->pending_chunks.size());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::~Store() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->writer_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->JournalClose();
}

Result<uint64_t> Store::Append(std::span<const Reading> readings) { return impl_->Enqueue(Pending(), readings); }

Result<uint64_t> Store::AppendWithState(std::span<const Reading> readings, const SourceState& state) {
  Pending add;
  if (!state.key.empty()) add.state[state.key] = state.value;
  return impl_->Enqueue(std::move(add), readings);
}

Result<uint64_t> Store::AppendWithCell(std::vector<Reading>& readings, const StateCell& cell) {
  return impl_->Enqueue(Pending(), readings, &cell);
}

namespace {
// What `find` finds in the work not committed yet, the newest first: the queue, the commit in
// flight, a commit in doubt. The acknowledgement journal answers waits before the commit, so an
// MQTT redelivery after a reconnect must find its packet's record here too.
template <typename T, typename Find>
std::optional<T> FindQueued(Store::Impl& impl, Find find) {
  std::lock_guard<std::mutex> lock(impl.mu);
  const Pending* queues[] = {&impl.pending, impl.inflight, impl.uncertain_work.get()};
  for (const Pending* p : queues)
    if (p)
      if (std::optional<T> v = find(*p)) return v;
  return std::nullopt;
}
}  // namespace

Result<std::optional<uint64_t>> Store::LoadCell(const std::string& table, uint32_t index) {
  std::optional<uint64_t> queued = FindQueued<uint64_t>(*impl_, [&](const Pending& p) -> std::optional<uint64_t> {
    if (uint64_t v = p.FindCell(table, index)) return v;
    return std::nullopt;
  });
  if (queued) return queued;
  {
    std::lock_guard<std::mutex> lock(impl_->db_mu);
    EP_RETURN_IF_ERROR(impl_->CheckWritable());
    Stmt& st = impl_->Cached("SELECT cells FROM state_cells WHERE key = ? AND block = ?");
    st.Bind(1, table).Bind(2, static_cast<int64_t>(index / kCellsPerRow));
    const int rc = st.Step();
    uint64_t v = 0;
    if (rc == SQLITE_ROW) v = CellOf(st.Blob(0), index);
    st.Reset();  // a cached statement left on a row would hold a read transaction open
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteStatus(rc, impl_->db, "load state cell");
    if (v) return std::optional<uint64_t>(v);
  }
  // Stored before schema 3 as a plain SourceState: what ReadingSink's default reads.
  return ReadingSink::LoadCell(table, index);
}

Result<std::optional<std::string>> Store::LoadState(const std::string& key) {
  std::optional<std::string> queued = FindQueued<std::string>(*impl_, [&](const Pending& p) -> std::optional<std::string> {
    auto it = p.state.find(key);
    if (it != p.state.end()) return it->second;
    return std::nullopt;
  });
  if (queued) return queued;
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  // Cached: after a reconnect an MQTT source looks up every redelivered (DUP) message here.
  Stmt& st = impl_->Cached("SELECT value FROM source_state WHERE key = ?");
  st.Bind(1, key);
  int rc = st.Step();
  if (rc == SQLITE_ROW) {
    std::optional<std::string> v(st.Text(0));
    st.Reset();  // a cached statement left on a row would hold a read transaction open
    return v;
  }
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return SqliteStatus(rc, impl_->db, "load source state");
}

Result<std::vector<Reading>> Store::RecentReadings(size_t max_readings) {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  std::vector<Reading> out;
  Stmt st(impl_->db, "SELECT data FROM chunks ORDER BY id DESC");
  while (out.size() < max_readings && st.Step() == SQLITE_ROW) {
    Result<std::vector<Reading>> rs = DecodeChunk(st.Blob(0));
    if (!rs.ok()) continue;  // a damaged chunk is set aside when its batch is built
    for (Reading& r : *rs) out.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> Store::Quarantine(const QuarantineRecord& record) {
  Pending add;
  add.quarantine.push_back(record);
  return impl_->Enqueue(std::move(add), {});
}

Result<uint64_t> Store::RecordGap(const GapRecord& gap) {
  Pending add;
  add.gaps.push_back(gap);
  return impl_->Enqueue(std::move(add), {});
}

Status Store::WaitDurable(uint64_t ticket) { return WaitFor(ticket, /*journal=*/true); }

Status Store::WaitFor(uint64_t ticket, bool journal) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto dropped = [&]() -> bool { return impl_->dropped_tickets.erase(ticket) > 0; };
  auto dropped_status = [] {
    return ResourceExhaustedError("readings of this append were dropped from the full commit queue "
                                  "(buffer.on_full = drop_oldest); a gap record says so");
  };
  if (dropped()) return dropped_status();
  if (impl_->durable_ticket >= ticket) return Status::Ok();
  if (journal) {
    // Appended since the first wait: durable once written to the acknowledgement journal.
    if (impl_->JournalCovers(ticket)) return Status::Ok();
    impl_->JournalStart();  // the first wait: encode appends from now on (this one is committed)
  }
  const uint64_t gen = impl_->error_generation;
  if (impl_->CanCommitInline(ticket)) {
    // Commit the queue on this thread: an MQTT handler at QoS 1 waits for every message, and
    // handing each commit to the writer and back cost two thread switches per message. The
    // writer keeps everything else: timers, retries and their backoff, the I/O error states.
    Impl& im = *impl_;
    Status s = im.CommitQueue(lock);
    if (s.ok()) ++im.commits_by_waiters;
    // Wake the writer only when it has work now: what was queued meanwhile, a retry, closing.
    // Merges made due wait for its next idle look.
    if (!s.ok() || !im.pending.empty() || im.stop) im.writer_cv.notify_one();
    if (dropped()) return dropped_status();
    if (im.durable_ticket >= ticket) return Status::Ok();
    if (im.error_generation != gen) return im.last_error;
  }
  impl_->urgent = true;
  impl_->writer_cv.notify_one();
  bool was_dropped = false;
  impl_->durable_cv.wait(lock, [&] {
    if (impl_->dropped_tickets.count(ticket)) return was_dropped = true;
    return impl_->durable_ticket >= ticket || impl_->error_generation != gen || impl_->stop;
  });
  if (was_dropped) {
    dropped();
    return dropped_status();
  }
  if (impl_->durable_ticket >= ticket) return Status::Ok();
  if (impl_->error_generation != gen) return impl_->last_error;
  // Closing: the destructor commits what is queued; wait for the writer to finish that.
  impl_->durable_cv.wait_for(lock, std::chrono::seconds(30), [&] {
    return impl_->durable_ticket >= ticket || impl_->error_generation != gen;
  });
  if (impl_->durable_ticket >= ticket) return Status::Ok();
  return impl_->error_generation != gen ? impl_->last_error : CancelledError("buffer closed before the commit");
}

Status Store::Flush() {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ticket = impl_->appended_ticket;
  }
  return WaitFor(ticket, /*journal=*/false);
}

Result<uint64_t> Store::MergeNow() {
  std::lock_guard<std::mutex> lock(impl_->db_mu);
  EP_RETURN_IF_ERROR(impl_->CheckWritable());
  uint64_t n = 0;
  while (impl_->MergeOnce(/*any_age=*/true)) ++n;
  return n;
}

const std::string& Store::instance_id() const { return impl_->instance_id; }

Store::WriterHealth Store::GetWriterHealth() const {
  WriterHealth h;
  h.running = impl_->writer_running.load();
  h.busy_since_mono_us = impl_->commit_started_mono.load();
  return h;
}

}  // namespace edgepipe::buffer
