// The acknowledgement journal of buffer::Store (ack_journal.h; docs/durability.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <random>

#include "ack_journal.h"
#include "edgepipe/core/file_util.h"
#include "edgepipe/core/log.h"
#include "store_impl.h"

namespace edgepipe::buffer {
namespace {

constexpr const char* kLog = "buffer";
constexpr const char* kMetaKey = "ack_journal";

}  // namespace

Status Store::Impl::JournalReplay() {
  journal.allowed = opt.ack_journal && !opt.path.empty() && opt.path != ":memory:" &&
                    opt.path.rfind("file:", 0) != 0;
  if (!journal.allowed) return Status::Ok();
  journal.path[0] = opt.path + ".ack0";
  journal.path[1] = opt.path + ".ack1";
  std::vector<JournalRecord> records;
  bool any_file = false;
  for (const std::string& path : journal.path) {
    Result<std::string> read = ReadWholeFile(path);
    if (!read.ok()) {
      if (read.status().code() == StatusCode::kNotFound) continue;  // none: nothing to replay
      return UnavailableError("acknowledgement journal: " + read.status().message());
    }
    const std::string& bytes = *read;
    any_file = true;
    size_t damaged = 0;
    std::vector<JournalRecord> got = DecodeJournal(bytes, &damaged);
    if (damaged)
      EP_LOG_WARN(kLog, "acknowledgement journal %s: the last %zu of %zu bytes are a torn or damaged record "
                  "(a write cut short by a crash); %zu records before it are read",
                  path.c_str(), damaged, bytes.size(), got.size());
    for (JournalRecord& r : got) records.push_back(std::move(r));
  }
  if (!any_file) return Status::Ok();
  // What the last commit of the journaling process recorded: its appends up to that ticket are in.
  // "<generation> <ticket> <items ticket>": readings of appends up to <ticket> and their other
  // items (quarantine, gaps, state) up to <items ticket> are in (see Pending::journal_items_ticket).
  uint64_t meta_gen = 0, meta_ticket = 0, meta_items = 0;
  {
    Stmt q(db, "SELECT value FROM meta WHERE key = ?");
    q.Bind(1, kMetaKey);
    if (q.Step() == SQLITE_ROW) {
      const char* v = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0));
      if (!v || sscanf(v, "%" SCNu64 " %" SCNu64 " %" SCNu64, &meta_gen, &meta_ticket, &meta_items) != 3)
        meta_gen = meta_ticket = meta_items = 0;
    }
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const JournalRecord& a, const JournalRecord& b) { return a.ticket < b.ticket; });
  Pending work;
  uint64_t replayed = 0, readings = 0, skipped = 0;
  for (JournalRecord& r : records) {
    const bool ours = r.generation == meta_gen;
    if (ours && r.ticket <= meta_ticket) {
      ++skipped;
      continue;
    }
    work.AddReadings(r.readings, r.ticket);
    readings += r.readings.size();
    if (!(ours && r.ticket <= meta_items)) {
      for (QuarantineRecord& q : r.quarantine) work.quarantine.push_back(std::move(q));
      for (const GapRecord& g : r.gaps) work.AddGap(g);
      for (auto& [k, v] : r.state) work.state[k] = std::move(v);
      for (const StateCell& c : r.cells) work.AddCell(c);
    }
    // One process's records are of one generation (the files are emptied at each open, before
    // new records are written); the commit records the last one it holds.
    work.journal_generation = r.generation;
    work.journal_ticket = std::max(work.journal_ticket, r.ticket);
    work.journal_items_ticket = work.journal_ticket;
    ++replayed;
  }
  if (replayed > 0) {
    bool uncertain = false;
    Status s = CommitWork(work, &uncertain);
    if (!s.ok())
      return Status(s.code(), StrFormat("replaying the acknowledgement journal (%s, %s: %" PRIu64 " appends "
                                        "acknowledged to their sources before the last stop): %s; the files are "
                                        "kept for the next start",
                                        journal.path[0].c_str(), journal.path[1].c_str(), replayed,
                                        s.message().c_str()));
    EP_LOG_INFO(kLog, "replayed %" PRIu64 " appends (%" PRIu64 " readings) from the acknowledgement journal: "
                "acknowledged to their sources, not yet committed when the agent stopped (%" PRIu64
                " already committed were skipped)", replayed, readings, skipped);
  }
  journal_replayed = replayed;
  for (const std::string& path : journal.path)
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
      return UnavailableError(StrFormat("acknowledgement journal %s: cannot remove it after replaying it: %s", path.c_str(),
                               strerror(errno)));
  return Status::Ok();
}

void Store::Impl::JournalStart() {
  Journal& j = journal;
  if (!j.allowed || j.on || j.failed) return;
  for (int i = 0; i < 2; ++i) {
    j.fd[i] = open(j.path[i].c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j.fd[i] < 0) {
      EP_LOG_WARN(kLog, "acknowledgement journal %s: cannot open it (%s); waiters commit the database instead",
                  j.path[i].c_str(), strerror(errno));
      j.failed = true;
      return;
    }
  }
  std::random_device rd;
  j.generation = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(SteadyNowUs());
  if (j.generation == 0) j.generation = 1;
  j.first_ticket = appended_ticket + 1;
  j.written_ticket = appended_ticket;
  j.on = true;
}

bool Store::Impl::JournalCovers(uint64_t ticket) {
  Journal& j = journal;
  // Every append before the journal's first was committed, or it cannot answer for them.
  if (!j.on || j.failed || ticket < j.first_ticket || durable_ticket + 1 < j.first_ticket) return false;
  // Only while commits succeed: while they fail, waiters wait for the commit as without the
  // journal, so that sources stop acknowledging what the database cannot take (and the broker
  // keeps it) instead of the journal growing without bound.
  if (!last_error.ok() || uncertain_work || retry_at != 0 || state.load() != WriterState::kOk) return false;
  // Nor while the memory queue is half full (commits slower than appends): what it answers for
  // must never be what drop_oldest drops from memory when the queue is full.
  if (pending.items() > opt.max_memory_readings / 2) return false;
  if (j.cut.count(ticket)) return false;  // dropped: WaitDurable says so
  if (j.written_ticket >= ticket) return true;
  if (j.buf_dead_bytes > 0) JournalCompact();
  if (j.buf_ticket < ticket || j.buf.empty()) return false;
  const int fd = j.fd[j.active];
  const char* p = j.buf.data();
  size_t left = j.buf.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  const int write_errno = errno;
  bool ok = left == 0;
  if (ok && opt.sync == SyncMode::kFull && fdatasync(fd) != 0) ok = false;
  if (!ok) {
    // A part of a record may be in the file: nothing more goes after it (its replay stops at a
    // damaged record). What it holds is still replayed up to there; waiters commit from now on.
    EP_LOG_ERROR(kLog, "acknowledgement journal %s: %s failed (%s); waiters commit the database from now on",
                 j.path[j.active].c_str(), left ? "write" : "fdatasync", strerror(left ? write_errno : errno));
    j.failed = true;
    // The whole records that reached the file may be replayed: drop_oldest treats them as held.
    const size_t reached = j.buf.size() - left;
    for (const Journal::BufRecord& r : j.buf_records)
      if (r.end <= reached) j.written_ticket = r.ticket;
    if (reached > 0) j.max_ticket[j.active] = j.buf_ticket;
    return false;
  }
  j.max_ticket[j.active] = j.buf_ticket;
  j.written_ticket = j.buf_ticket;
  j.buf.clear();
  j.buf_records.clear();
  ++journal_writes;
  return true;
}

void Store::Impl::JournalCommitted(uint64_t ticket) {
  Journal& j = journal;
  if (!j.on) return;
  if (j.buf_ticket <= ticket) {
    j.buf.clear();
    j.buf_records.clear();
    j.buf_dead_bytes = 0;
  }
  j.cut.erase(j.cut.begin(), j.cut.upper_bound(ticket));
  for (int i = 0; i < 2; ++i) {
    if (j.max_ticket[i] == 0 || j.max_ticket[i] > ticket) continue;
    // Every record in it is committed (the meta row says so in the same transaction).
    if (ftruncate(j.fd[i], 0) != 0) {
      EP_LOG_WARN(kLog, "acknowledgement journal %s: cannot empty it (%s); its records are skipped at replay",
                  j.path[i].c_str(), strerror(errno));
      continue;
    }
    j.max_ticket[i] = 0;
  }
}

bool Store::Impl::JournalHolds(uint64_t ticket) const {
  const Journal& j = journal;
  return j.on && ticket >= j.first_ticket && ticket <= j.written_ticket && !j.cut.count(ticket);
}

void Store::Impl::JournalCut(uint64_t ticket) {
  Journal& j = journal;
  if (!j.on || j.failed || ticket <= j.written_ticket || ticket < j.first_ticket) return;
  auto it = std::lower_bound(j.buf_records.begin(), j.buf_records.end(), ticket,
                             [](const Journal::BufRecord& r, uint64_t t) { return r.ticket < t; });
  if (it == j.buf_records.end() || it->ticket != ticket || it->dead) return;
  const size_t begin = it == j.buf_records.begin() ? 0 : std::prev(it)->end;
  it->dead = true;
  j.buf_dead_bytes += it->end - begin;
  j.cut.insert(ticket);
  while (j.cut.size() > kMaxDroppedTickets) j.cut.erase(j.cut.begin());
  // Compacted once half of it is dead: each byte is moved a bounded number of times.
  if (j.buf_dead_bytes * 2 > j.buf.size()) JournalCompact();
}

void Store::Impl::JournalCompact() {
  Journal& j = journal;
  size_t out = 0, begin = 0;
  std::vector<Journal::BufRecord> live;
  live.reserve(j.buf_records.size());
  for (const Journal::BufRecord& r : j.buf_records) {
    const size_t len = r.end - begin;
    if (!r.dead) {
      if (out != begin) memmove(j.buf.data() + out, j.buf.data() + begin, len);
      out += len;
      live.push_back({r.ticket, out, false});
    }
    begin = r.end;
  }
  j.buf.resize(out);
  j.buf_records = std::move(live);
  j.buf_dead_bytes = 0;
}

void Store::Impl::JournalClose() {
  Journal& j = journal;
  if (!j.on && !j.failed) return;
  const uint64_t last = std::max({j.written_ticket, j.buf_ticket, j.max_ticket[0], j.max_ticket[1]});
  for (int i = 0; i < 2; ++i) {
    if (j.fd[i] >= 0) close(j.fd[i]);
    j.fd[i] = -1;
  }
  // The final commit holds everything: nothing to replay. Otherwise the next open replays it.
  if (durable_ticket >= last)
    for (const std::string& path : j.path) unlink(path.c_str());
  j.on = false;
}

}  // namespace edgepipe::buffer
