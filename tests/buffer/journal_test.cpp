// The acknowledgement journal (buffer/src/ack_journal.h): its record codec, and what a store
// that was killed with appends acknowledged only through it finds at the next open. The kills
// are real: a forked child acknowledges, then sends itself SIGKILL (no destructor runs, so no
// final commit). Random kills under load are in fault_test.cpp (CrashTest).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "ack_journal.h"
#include "store_impl.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "fault_vfs.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::buffer;
using edgepipe::testing::FaultFile;
using edgepipe::testing::FaultSpec;
using edgepipe::testing::FaultVfs;
using edgepipe::testing::kFaultSync;
using edgepipe::testing::TempDir;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000LL;

Reading R(int i) {
  Reading r;
  r.sensor = "t" + std::to_string(i % 3);
  r.ts_us = kT0 + i * 1'000'000LL;
  r.value = 20.0 + i;
  r.unit = "Cel";
  r.source = "mq";
  r.seq = static_cast<uint64_t>(i);
  return r;
}

Options Opts(const std::string& path) {
  Options o;
  o.path = path;
  o.sync = SyncMode::kNormal;
  o.ack_journal = true;
  o.commit_interval_us = 60'000'000;  // no group commit during the test: only the journal
  o.commit_max_readings = 1'000'000;
  return o;
}

// In a child process: opens the store, appends reading 0 and waits (the first wait commits and
// starts the journal), then appends readings 1..n, each waited for (the journal answers), runs
// `before_kill` and kills itself. Returns whether the child got as far as the kill.
template <class Fn>
bool AcknowledgeThenKill(const std::string& path, int n, Fn before_kill) {
  const pid_t pid = fork();
  if (pid == 0) {
    Result<std::unique_ptr<Store>> s = Store::Open(Opts(path));
    if (!s.ok()) _exit(2);
    Store& st = **s;
    for (int i = 0; i <= n; ++i) {
      Result<uint64_t> t = st.Append(std::vector<Reading>{R(i)});
      if (!t.ok() || !st.WaitDurable(*t).ok()) _exit(3);
    }
    QuarantineRecord q;
    q.ts_us = kT0;
    q.source = "mq";
    q.rule = "parse";
    q.reason = "not JSON";
    q.raw = std::string("\0\xff{", 3);
    Result<uint64_t> t = st.Quarantine(q);
    if (!t.ok() || !st.WaitDurable(*t).ok()) _exit(4);
    t = st.AppendWithState(std::vector<Reading>{}, SourceState{"mq/mqtt-pid/7", "abc"});
    if (!t.ok() || !st.WaitDurable(*t).ok()) _exit(5);
    std::vector<Reading> none;
    t = st.AppendWithCell(none, StateCell{"mq/pid", 300, 0xabcull});
    if (!t.ok() || !st.WaitDurable(*t).ok()) _exit(5);
    const Stats stats = st.GetStats();
    // One commit (the first wait's); every later wait written to the journal, none committed.
    if (stats.commits != 1 || stats.journal_writes != static_cast<uint64_t>(n) + 3) _exit(6);
    before_kill(st);
    kill(getpid(), SIGKILL);
    _exit(7);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Waits for a child that must end by SIGKILL (its own, or FaultVfs::kill_after) and says how it
// ended otherwise (its _exit code names the step that failed).
void CheckKilled(pid_t pid) {
  int status = 0;
  CHECK_EQUAL(pid, waitpid(pid, &status, 0));
  CHECK_TRUE_TEXT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  ("child exited with " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1)).c_str());
}

size_t CountReadings(Store& st) {
  Result<std::vector<Reading>> rs = st.RecentReadings(1'000'000);
  return rs.ok() ? rs->size() : 0;
}

}  // namespace

TEST_GROUP(AckJournal) {
  TempDir dir;
  std::string path() { return dir.Join("buffer.db"); }
};

TEST(AckJournal, Crc32IsTheStandardOneAtEveryLengthAndAlignment) {
  LONGS_EQUAL(0xCBF43926u, JournalCrc32("123456789"));  // the CRC-32 check value
  LONGS_EQUAL(0u, JournalCrc32(""));
  // Against a byte-at-a-time reference, for every length up to 100 and every start in a word.
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 120; ++i) data.push_back(static_cast<char>((x = x * 1103515245u + 12345u) >> 24));
  auto reference = [](std::string_view s) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : s) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
  };
  for (size_t start = 0; start < 8; ++start)
    for (size_t len = 0; start + len <= 108; ++len) {
      const std::string_view s = std::string_view(data).substr(start, len);
      LONGS_EQUAL(reference(s), JournalCrc32(s));
    }
}

TEST(AckJournal, RecordsDecodeToWhatWasEncodedAndADamagedOneEndsTheFile) {
  std::vector<Reading> rs = {R(1), R(2)};
  rs[1].type = ValueType::kString;
  rs[1].text = "on\nline";
  rs[1].quality = 5;
  rs[0].value = std::numeric_limits<double>::quiet_NaN();
  std::vector<QuarantineRecord> qs(1);
  qs[0].raw = std::string("\0\x01\xfe", 3);
  qs[0].reason = "why";
  qs[0].reading_ts_us = -5;
  std::vector<GapRecord> gs = {GapRecord{"serial", "", kT0, kT0 + 9, 3, "sequence_gap"}};
  std::map<std::string, std::string> state = {{"k", "v"}};
  std::string bytes;
  const std::vector<StateCell> cells = {StateCell{"mq/mqtt-pid", 65535, 0xfedcba9876543210ull}};
  EncodeJournalRecord(&bytes, 42, 7, rs, qs, gs, state, cells);
  const size_t first_len = bytes.size();
  EncodeJournalRecord(&bytes, 42, 8, std::vector<Reading>{R(3)}, {}, {}, {}, {});
  size_t damaged = 99;
  std::vector<JournalRecord> got = DecodeJournal(bytes, &damaged);
  LONGS_EQUAL(0, damaged);
  LONGS_EQUAL(2, got.size());
  LONGS_EQUAL(42, got[0].generation);
  LONGS_EQUAL(7, got[0].ticket);
  LONGS_EQUAL(2, got[0].readings.size());
  CHECK_TRUE(std::isnan(got[0].readings[0].value));
  got[0].readings[0].value = rs[0].value = 0;  // NaN != NaN
  CHECK_TRUE(got[0].readings == rs);
  CHECK_TRUE(got[0].quarantine == qs);
  CHECK_TRUE(got[0].gaps == gs);
  LONGS_EQUAL(1, got[0].state.size());
  STRCMP_EQUAL("v", got[0].state[0].second.c_str());
  CHECK_TRUE(got[0].cells == cells);
  CHECK_TRUE(got[1].readings[0] == R(3));
  CHECK_TRUE(got[1].cells.empty());  // a record without cells ends after its state, as before cells
  // A flipped byte in the second record: the first is still read, the rest reported.
  std::string bad = bytes;
  bad[bad.size() - 3] ^= 0x10;
  got = DecodeJournal(bad, &damaged);
  LONGS_EQUAL(1, got.size());
  CHECK(damaged > 0);
  // Every prefix (a write cut short) decodes to the whole records before the cut, and reports
  // the rest as damaged.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    got = DecodeJournal(std::string_view(bytes).substr(0, cut), &damaged);
    const size_t whole = cut >= first_len ? 1 : 0;
    LONGS_EQUAL(whole, got.size());
    LONGS_EQUAL(cut - (whole ? first_len : 0), damaged);
  }
}

TEST(AckJournal, AppendsAcknowledgedOnlyThroughItSurviveAKillAndAreCommittedOnce) {
  CHECK_TRUE(AcknowledgeThenKill(path(), 10, [](Store&) {}));
  CHECK_TRUE(std::filesystem::exists(path() + ".ack0") || std::filesystem::exists(path() + ".ack1"));
  {
    Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
    CHECK_TRUE(s.ok());
    LONGS_EQUAL(13, (*s)->GetStats().journal_replayed);  // 10 appends, the quarantine record, the state, the cell
    LONGS_EQUAL(11, CountReadings(**s));                 // reading 0 was committed before the kill
    LONGS_EQUAL(1, (*s)->GetStats().quarantine_rows);
    Result<std::optional<std::string>> v = (*s)->LoadState("mq/mqtt-pid/7");
    CHECK_TRUE(v.ok() && v->has_value());
    STRCMP_EQUAL("abc", (*v)->c_str());
    Result<std::optional<uint64_t>> c = (*s)->LoadCell("mq/pid", 300);
    CHECK_TRUE(c.ok() && c->has_value());
    LONGS_EQUAL(0xabc, **c);
  }
  // Replayed once: the files are gone and a second open finds the same readings, no more.
  CHECK_FALSE(std::filesystem::exists(path() + ".ack0"));
  CHECK_FALSE(std::filesystem::exists(path() + ".ack1"));
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  LONGS_EQUAL(0, (*s)->GetStats().journal_replayed);
  LONGS_EQUAL(11, CountReadings(**s));
}

TEST(AckJournal, ATornLastRecordIsDroppedAndTheRecordsBeforeItReplayed) {
  CHECK_TRUE(AcknowledgeThenKill(path(), 10, [](Store&) {}));
  // The last write cut short by the kill: only its first bytes reached the file.
  std::string file = path() + ".ack0";
  if (!std::filesystem::exists(file) || std::filesystem::file_size(file) == 0) file = path() + ".ack1";
  const auto size = std::filesystem::file_size(file);
  CHECK(size > 10);
  std::filesystem::resize_file(file, size - 3);
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  LONGS_EQUAL(12, (*s)->GetStats().journal_replayed);  // all but the cell's record
  LONGS_EQUAL(11, CountReadings(**s));
  Result<std::optional<std::string>> v = (*s)->LoadState("mq/mqtt-pid/7");
  CHECK_TRUE(v.ok() && v->has_value());
  Result<std::optional<uint64_t>> c = (*s)->LoadCell("mq/pid", 300);
  CHECK_TRUE(c.ok() && !c->has_value());
}

TEST(AckJournal, RecordsACommitAlreadyHoldsAreNotReplayedAgain) {
  // Killed after a commit that holds every journaled append but before the journal files were
  // emptied: the files are put back as they were before the commit.
  const std::string saved = dir.Join("saved");
  CHECK_TRUE(AcknowledgeThenKill(path(), 10, [&](Store& st) {
    std::filesystem::create_directories(saved);
    for (const char* ext : {".ack0", ".ack1"})
      if (std::filesystem::exists(path() + ext)) std::filesystem::copy_file(path() + ext, saved + "/x" + ext);
    if (!st.Flush().ok()) _exit(8);
    if (std::filesystem::file_size(path() + ".ack0") + std::filesystem::file_size(path() + ".ack1") != 0) _exit(9);
    for (const char* ext : {".ack0", ".ack1"})
      if (std::filesystem::exists(saved + "/x" + ext))
        std::filesystem::copy_file(saved + "/x" + ext, path() + ext, std::filesystem::copy_options::overwrite_existing);
  }));
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  LONGS_EQUAL(0, (*s)->GetStats().journal_replayed);
  LONGS_EQUAL(11, CountReadings(**s));
  LONGS_EQUAL(1, (*s)->GetStats().quarantine_rows);
}

TEST(AckJournal, OffByDefaultAndFlushAlwaysCommits) {
  Options o = Opts(path());
  o.ack_journal = false;
  {
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK_TRUE(s.ok());
    for (int i = 0; i < 3; ++i) CHECK_TRUE((*s)->WaitDurable(*(*s)->Append(std::vector<Reading>{R(i)})).ok());
    LONGS_EQUAL(0, (*s)->GetStats().journal_writes);
    LONGS_EQUAL(3, (*s)->GetStats().commits);
  }
  CHECK_FALSE(std::filesystem::exists(path() + ".ack0"));
  CHECK_FALSE(Options().ack_journal);
  // With it on, Flush() still commits (what WaitDurable answered from the journal included).
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  for (int i = 3; i < 6; ++i) CHECK_TRUE((*s)->WaitDurable(*(*s)->Append(std::vector<Reading>{R(i)})).ok());
  LONGS_EQUAL(2, (*s)->GetStats().journal_writes);
  CHECK_TRUE((*s)->Flush().ok());
  LONGS_EQUAL(6, CountReadings(**s));
}

TEST(AckJournal, SourceStateIsFoundBeforeItsCommit) {
  // A redelivered MQTT message looks up its packet's record right after a reconnect, when the
  // journal may have answered for it and the commit not yet run.
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  Store& st = **s;
  CHECK_TRUE(st.WaitDurable(*st.Append(std::vector<Reading>{R(0)})).ok());  // starts the journal
  Result<uint64_t> t = st.AppendWithState(std::vector<Reading>{R(1)}, SourceState{"mq/mqtt-pid/9", "f1"});
  CHECK_TRUE(t.ok());
  CHECK_TRUE(st.WaitDurable(*t).ok());
  LONGS_EQUAL(1, st.GetStats().commits);  // answered by the journal: not committed yet
  Result<std::optional<std::string>> v = st.LoadState("mq/mqtt-pid/9");
  CHECK_TRUE(v.ok() && v->has_value());
  STRCMP_EQUAL("f1", (*v)->c_str());
  // A newer value queued over a committed one wins.
  CHECK_TRUE(st.Flush().ok());
  CHECK_TRUE(st.AppendWithState(std::vector<Reading>{}, SourceState{"mq/mqtt-pid/9", "f2"}).ok());
  v = st.LoadState("mq/mqtt-pid/9");
  STRCMP_EQUAL("f2", (*v)->c_str());
}

// The journal's file system full (ENOSPC on its write; here its files are /dev/full) while the
// database still takes commits: the waits go back to a commit each, and every acknowledged
// append survives a SIGKILL (none was answered by a journal write that failed).
TEST(AckJournal, AFailedJournalWriteMakesWaitersCommitAndLosesNothing) {
  const pid_t pid = fork();
  if (pid == 0) {
    Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
    if (!s.ok()) _exit(2);
    Store& st = **s;
    // After Open (which would replay them) and before the first wait (which opens them).
    for (const char* ext : {".ack0", ".ack1"})
      if (symlink("/dev/full", (path() + ext).c_str()) != 0) _exit(3);
    for (int i = 0; i <= 10; ++i) {
      Result<uint64_t> t = st.Append(std::vector<Reading>{R(i)});
      if (!t.ok() || !st.WaitDurable(*t).ok()) _exit(4);
    }
    const Stats stats = st.GetStats();
    // The first wait commits; the second's journal write fails, so it and every later one commit.
    if (stats.journal_writes != 0) _exit(5);
    if (stats.commits != 11) _exit(6);
    kill(getpid(), SIGKILL);
    _exit(7);
  }
  CheckKilled(pid);
  for (const char* ext : {".ack0", ".ack1"}) std::filesystem::remove(path() + ext);  // the fault, not the store's
  Result<std::unique_ptr<Store>> s = Store::Open(Opts(path()));
  CHECK_TRUE(s.ok());
  LONGS_EQUAL(0, (*s)->GetStats().journal_replayed);
  LONGS_EQUAL(11, CountReadings(**s));
}

// ---- A long queue committed in parts (store.cpp, Pending::TakeFront) ----
// The first part's commit records "appends up to T are in"; after a crash before the second
// part, replay re-adds every journaled append above T. So the first part must hold every reading
// of the appends up to T and none of the later ones, whichever hours their readings are in.

namespace {
constexpr int64_t kHourUs = 3'600'000'000LL;
// `n` readings of append `ticket` in `hour` (0, 1, 2, ...), their seq = ticket * 1e6 + i.
void AddAppend(Pending& p, uint64_t ticket, int hour, int n, int other_hour = -1) {
  std::vector<Reading> rs(n);
  for (int i = 0; i < n; ++i) {
    rs[i].sensor = "s" + std::to_string(i % 7);
    const int h = other_hour >= 0 && i % 2 ? other_hour : hour;
    rs[i].ts_us = kT0 / kHourUs * kHourUs + h * kHourUs + i;
    rs[i].value = i;
    rs[i].seq = ticket * 1'000'000 + static_cast<uint64_t>(i);
  }
  p.AddReadings(rs, ticket);
}
// Readings per ticket, from the seq column.
std::map<uint64_t, size_t> PerTicket(const Pending& p) {
  std::map<uint64_t, size_t> n;
  for (const auto& [hour, data] : p.hours)
    for (const SeriesColumns& s : data.series())
      for (uint64_t seq : s.seq) ++n[seq / 1'000'000];
  return n;
}
}  // namespace

TEST(AckJournal, ALongQueueIsCommittedInPartsOfWholeAppendsInTicketOrder) {
  Pending p;
  AddAppend(p, 1, 10, 20'000);
  AddAppend(p, 2, 9, 20'000);  // an earlier hour: a split by hour took it before append 1
  AddAppend(p, 3, 10, 20'000);
  AddAppend(p, 4, 9, 6'000, 11);  // in two hours
  AddAppend(p, 5, 11, 4'000);
  uint64_t t = 0;
  Pending front = p.TakeFront(50'000, &t);
  LONGS_EQUAL(2, t);  // 1 and 2 fit (40,000), 3 would not
  LONGS_EQUAL(40'000, front.readings);
  LONGS_EQUAL(30'000, p.readings);
  std::map<uint64_t, size_t> f = PerTicket(front), rest = PerTicket(p);
  CHECK_TRUE((f == std::map<uint64_t, size_t>{{1, 20'000}, {2, 20'000}}));
  CHECK_TRUE((rest == std::map<uint64_t, size_t>{{3, 20'000}, {4, 6'000}, {5, 4'000}}));
  for (const auto& [hour, m] : front.marks)
    for (const auto& [end, ticket] : m) CHECK(ticket <= t);
  for (const auto& [hour, m] : p.marks)
    for (const auto& [end, ticket] : m) CHECK(ticket > t);
  // The rest again: 3 and 4 (26,000) fit in 29,999, 5 would not (30,000). Then 5 alone.
  Pending second = p.TakeFront(29'999, &t);
  LONGS_EQUAL(4, t);
  CHECK_TRUE((PerTicket(second) == std::map<uint64_t, size_t>{{3, 20'000}, {4, 6'000}}));
  Pending third = p.TakeFront(1, &t);  // one append at least, however large
  LONGS_EQUAL(5, t);
  LONGS_EQUAL(4'000, third.readings);
  LONGS_EQUAL(0, p.readings);
}

TEST(AckJournal, AQueueOutOfTicketOrderWithinAnHourIsTakenWhole) {
  Pending p, earlier;
  AddAppend(p, 5, 3, 100);
  AddAppend(earlier, 1, 3, 100);
  AddAppend(earlier, 2, 4, 100);
  p.Absorb(std::move(earlier));  // hour 3 now holds append 5, then append 1
  uint64_t t = 0;
  Pending front = p.TakeFront(150, &t);
  // Append 1 alone cannot be taken without append 5 before it: everything goes.
  LONGS_EQUAL(5, t);
  LONGS_EQUAL(300, front.readings);
  LONGS_EQUAL(0, p.readings);
}

// ---- drop_oldest and the journal (store.cpp DropOldestInMemory, store_journal.cpp JournalCut) ----

TEST(AckJournal, GapsOfJournaledAppendsGoWithThePartThatCoversTheirTicket) {
  Pending p;
  AddAppend(p, 1, 10, 20'000);
  AddAppend(p, 2, 10, 20'000);
  AddAppend(p, 3, 10, 20'000);
  // Readings of appends 1 and 3, journaled, were dropped from memory (drop_oldest).
  p.AddJournaledGap(3, GapRecord{"mq", "s1", kT0, kT0 + 5, 6, "memory_full"});
  p.AddJournaledGap(3, GapRecord{"mq", "s1", kT0 - 4, kT0 + 1, 2, "memory_full"});  // merged
  p.AddJournaledGap(1, GapRecord{"mq", "s2", kT0, kT0, 1, "memory_full"});
  p.AddGap(GapRecord{"sy", "s9", kT0, kT0, 1, "memory_full"});  // an append no journal holds
  LONGS_EQUAL(60'000 + 1 + 2, p.items());
  uint64_t t = 0;
  Pending front = p.TakeFront(45'000, &t);
  LONGS_EQUAL(2, t);
  // The front records "appends up to 2 are in": the gap of 1 goes with it, that of 3 does not
  // (a replay after a crash before the second part brings append 3 back, readings whole).
  LONGS_EQUAL(1, front.journaled_gaps.size());
  LONGS_EQUAL(1, front.journaled_gaps.count(1));
  LONGS_EQUAL(1, front.gaps.size());  // the plain gap goes with the first part, as every non-reading item
  LONGS_EQUAL(1, p.journaled_gaps.size());
  const std::vector<GapRecord>& g3 = p.journaled_gaps.at(3);
  LONGS_EQUAL(1, g3.size());
  LONGS_EQUAL(8, g3[0].count);
  CHECK_EQUAL(kT0 - 4, g3[0].from_us);
  CHECK_EQUAL(kT0 + 5, g3[0].to_us);
  CHECK_FALSE(p.empty());
  // Put back in front (a failed commit): the tickets stay with their gaps.
  front.Absorb(std::move(p));
  LONGS_EQUAL(2, front.journaled_gaps.size());
  Pending rest = front.TakeFront(1'000'000, &t);
  LONGS_EQUAL(3, t);
  LONGS_EQUAL(2, rest.journaled_gaps.size());
  CHECK_TRUE(front.empty());
  // Every reading of an append dropped: its gap alone keeps the queue from being empty.
  Pending only;
  only.AddJournaledGap(7, GapRecord{"mq", "s1", kT0, kT0, 1, "memory_full"});
  CHECK_FALSE(only.empty());
  LONGS_EQUAL(1, only.items());
}

namespace {
// `n` readings in hour `hour` after kT0's, seq from `first`.
std::vector<Reading> InHour(int hour, uint64_t first, int n) {
  std::vector<Reading> rs(n);
  for (int i = 0; i < n; ++i) {
    rs[i].sensor = "h" + std::to_string(hour);
    rs[i].ts_us = kT0 / kHourUs * kHourUs + hour * kHourUs + i;
    rs[i].value = i;
    rs[i].unit = "Cel";
    rs[i].source = "mq";
    rs[i].seq = first + static_cast<uint64_t>(i);
  }
  return rs;
}
struct Contents {
  int64_t readings = 0, gap_readings = 0;
};
Contents Inspect(const std::string& path) {
  Contents c;
  {
    Options o = Opts(path);
    o.ack_journal = false;
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK_TRUE(s.ok());
    c.readings = static_cast<int64_t>(CountReadings(**s));
  }
  sqlite3* db = nullptr;
  CHECK_EQUAL(SQLITE_OK, sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr));
  sqlite3_stmt* q = nullptr;
  CHECK_EQUAL(SQLITE_OK, sqlite3_prepare_v2(db, "SELECT coalesce(sum(count), 0) FROM gaps", -1, &q, nullptr));
  CHECK_EQUAL(SQLITE_ROW, sqlite3_step(q));
  c.gap_readings = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return c;
}
// Queue for the drop tests: 2,000 readings in memory at most; the journal answers below 1,000.
Options DropOpts(const std::string& path) {
  Options o = Opts(path);
  o.max_memory_readings = 2'000;
  return o;
}
// Starts the journal (the first wait commits), queues 600 readings of hour 10 unwaited (their
// record is in memory), then 10 appends of 10 readings of hour 9, each waited for: the journal
// answers them, writing all 11 records. Then 1,400 readings of hour 11 in 14 unwaited appends:
// 100 over the limit, so the oldest hour's 100 readings, the journaled ones, are dropped.
void QueueAndDropJournaled(Store& st) {
  CHECK_TRUE(st.WaitDurable(*st.Append(InHour(10, 1, 1))).ok());
  CHECK_TRUE(st.Append(InHour(10, 100, 600)).ok());
  for (int i = 0; i < 10; ++i) CHECK_TRUE(st.WaitDurable(*st.Append(InHour(9, 1'000 + i * 10, 10))).ok());
  Stats before = st.GetStats();
  LONGS_EQUAL(1, before.commits);
  LONGS_EQUAL(10, before.journal_writes);
  LONGS_EQUAL(0, before.journal_buffer_bytes);  // everything written
  for (int i = 0; i < 14; ++i) CHECK_TRUE(st.Append(InHour(11, 10'000 + i * 100, 100)).ok());
  LONGS_EQUAL(2'000, st.GetStats().memory_readings);
}
}  // namespace

TEST(AckJournal, JournaledReadingsDroppedFromMemoryAreAGapOnceCommittedAndNotReplayed) {
  {
    Result<std::unique_ptr<Store>> s = Store::Open(DropOpts(path()));
    CHECK_TRUE(s.ok());
    QueueAndDropJournaled(**s);
    CHECK_TRUE((*s)->Flush().ok());
  }
  // The commit holds the gap and records the dropped appends as in: the journal files (emptied
  // at close) would not bring them back either.
  const Contents c = Inspect(path());
  LONGS_EQUAL(1 + 600 + 1'400, c.readings);
  LONGS_EQUAL(100, c.gap_readings);
}

TEST(AckJournal, JournaledReadingsDroppedFromMemoryComeBackOnceAfterAKillBeforeTheirGapIsCommitted) {
  const pid_t pid = fork();
  if (pid == 0) {
    Result<std::unique_ptr<Store>> s = Store::Open(DropOpts(path()));
    if (!s.ok()) _exit(2);
    QueueAndDropJournaled(**s);
    kill(getpid(), SIGKILL);
    _exit(7);
  }
  CheckKilled(pid);
  {
    Result<std::unique_ptr<Store>> s = Store::Open(DropOpts(path()));
    CHECK_TRUE(s.ok());
    LONGS_EQUAL(11, (*s)->GetStats().journal_replayed);  // the written records; hour 11's were not
  }
  // Acknowledged, dropped from memory, the gap never committed: the journal brings them back
  // once, and no gap says they are lost.
  const Contents c = Inspect(path());
  LONGS_EQUAL(1 + 600 + 100, c.readings);
  LONGS_EQUAL(0, c.gap_readings);
}

TEST(AckJournal, RecordsOfAppendsDroppedBeforeTheirWriteLeaveItsMemory) {
  // Commits not keeping up (none here: the interval is a minute) and drop_oldest dropping: the
  // records of dropped appends that no wait wrote yet are cut from memory, so the journal's
  // buffer stays within what the queue holds instead of growing with every append.
  Options o = DropOpts(path());
  o.max_memory_readings = 1'000;
  uint64_t queued = 0;
  {
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  CHECK_TRUE(s.ok());
  Store& st = **s;
  CHECK_TRUE(st.WaitDurable(*st.Append(InHour(10, 1, 1))).ok());  // starts the journal
  CHECK_TRUE(st.Append(InHour(10, 100, 300)).ok());
  const uint64_t per_300 = st.GetStats().journal_buffer_bytes;
  CHECK(per_300 > 300 * 8);
  uint64_t most = 0, last = 0;
  for (int i = 1; i < 30; ++i) {
    Result<uint64_t> t = st.Append(InHour(10, 100 + static_cast<uint64_t>(i) * 300, 300));
    CHECK_TRUE(t.ok());
    last = *t;
    most = std::max(most, st.GetStats().journal_buffer_bytes);
  }
  // Room for 1,000 items, the queued gap records among them.
  queued = st.GetStats().memory_readings;
  CHECK(queued <= 1'000 && queued > 990);
  // At most the live records of 1,000 readings and as many dead bytes (then it is compacted);
  // without the cut it held all 30 appends' (9,000 readings).
  CHECK_TEXT(most <= per_300 * 7, StrFormat("journal buffer peaked at %llu bytes; 300 readings take %llu",
                                             static_cast<unsigned long long>(most),
                                             static_cast<unsigned long long>(per_300)).c_str());
  // The last append's wait: the queue is over half full, so it commits (the journal does not
  // answer for what drop_oldest may drop), and the count adds up.
  CHECK_TRUE(st.WaitDurable(last).ok());
  CHECK_TRUE(st.Flush().ok());
  LONGS_EQUAL(0, st.GetStats().journal_buffer_bytes);
  }
  const Contents c = Inspect(path());
  LONGS_EQUAL(1 + 9'000, c.readings + c.gap_readings);
  LONGS_EQUAL(1 + queued, c.readings);
}

TEST(AckJournal, AKillBetweenTwoPartsOfACommitLeavesEachDroppedReadingOnce) {
  // A queue longer than one transaction (here 1,000 readings) is committed in parts; journaled
  // readings dropped from it have their gap wait for the part that covers their append. The
  // kill lands right after the first part's WAL sync (sync = full), before the second part.
  const pid_t pid = fork();
  if (pid == 0) {
    FaultVfs& vfs = FaultVfs::Get();
    Options o = DropOpts(path());
    o.vfs_name = FaultVfs::kName;
    o.sync = SyncMode::kFull;
    o.max_memory_readings = 4'000;
    o.max_transaction_readings = 1'000;
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    if (!s.ok()) _exit(2);
    Store& st = **s;
    if (!st.WaitDurable(*st.Append(InHour(10, 1, 1))).ok()) _exit(3);  // starts the journal
    if (!st.Append(InHour(10, 100, 1'000)).ok() || !st.Append(InHour(11, 5'000, 900)).ok()) _exit(4);
    for (int i = 0; i < 10; ++i)  // journaled: the oldest hour, the highest tickets so far
      if (!st.WaitDurable(*st.Append(InHour(9, 1'000 + i * 10, 10))).ok()) _exit(5);
    const Stats before = st.GetStats();
    if (before.commits != 1 || before.journal_writes != 10) _exit(6);
    // 100 over the limit: hour 9's readings are dropped; their appends are in the journal file.
    if (!st.Append(InHour(12, 20'000, 2'100)).ok()) _exit(7);
    if (st.GetStats().memory_readings != 4'000) _exit(8);
    FaultSpec spec;
    spec.ops = kFaultSync;
    spec.file = FaultFile::kWal;
    spec.kill_after = true;
    vfs.Arm(spec);
    (void)st.Flush();  // part one: the append of hour 10 (1,000 readings), then SIGKILL
    _exit(9);
  }
  CheckKilled(pid);
  {
    Result<std::unique_ptr<Store>> s = Store::Open(DropOpts(path()));
    CHECK_TRUE(s.ok());
    // The first part is in (its append not replayed); hour 11's and the ten journaled appends of
    // hour 9 are replayed; hour 12's record was never written (nobody waited for it).
    LONGS_EQUAL(11, (*s)->GetStats().journal_replayed);
  }
  // Hour 9's readings are back, once, and no gap says they were lost (before the gap waited for
  // its part, the first part held it: 100 readings both stored and in a gap).
  const Contents c = Inspect(path());
  LONGS_EQUAL(1 + 1'000 + 900 + 100, c.readings);
  LONGS_EQUAL(0, c.gap_readings);
}

// ---- drop_oldest spares what a source holds until it is durable (Pending::held) ----

namespace {
std::set<uint64_t> StoredSeqs(const std::string& path) {
  std::set<uint64_t> seqs;
  Options o = Opts(path);
  o.ack_journal = false;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  CHECK_TRUE(s.ok());
  Result<std::vector<Reading>> rs = (*s)->RecentReadings(1'000'000);
  CHECK_TRUE(rs.ok());
  for (const Reading& r : *rs) seqs.insert(r.seq);
  return seqs;
}
}  // namespace

TEST(AckJournal, DropOldestSparesAppendsTheirSourceHoldsAndRefusesWhenOnlyTheyAreLeft) {
  // An MQTT QoS 1 message or a serial frame (an append with source state or a cell) is not
  // acknowledged until it is durable: dropping it would acknowledge a loss the source could have
  // avoided by keeping it. Here the oldest hour holds such an append between two plain ones.
  Options o = Opts(path());
  o.ack_journal = false;
  o.max_memory_readings = 1'000;
  {
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK_TRUE(s.ok());
    Store& st = **s;
    CHECK_TRUE(st.Append(InHour(9, 1'000, 100)).ok());
    std::vector<Reading> held = InHour(9, 2'000, 100);
    Result<uint64_t> held_ticket = st.AppendWithCell(held, StateCell{"mq/pid", 5, 0x55});
    CHECK_TRUE(held_ticket.ok());
    CHECK_TRUE(st.AppendWithState(InHour(9, 3'000, 100), SourceState{"serial/boot", "1 2"}).ok());  // held too
    CHECK_TRUE(st.Append(InHour(9, 4'000, 100)).ok());
    CHECK_TRUE(st.Append(InHour(10, 10'000, 600)).ok());  // 1,000 now
    // 150 over: the plain 100 of hour 9, then 50 of the plain append after the held ones.
    CHECK_TRUE(st.Append(InHour(11, 20'000, 150)).ok());
    LONGS_EQUAL(1'000, st.GetStats().memory_readings);
    // 900 more would need 901 dropped (the gap record counts); 800 are not held (hour 9: 50,
    // hour 10: 600, hour 11: 150). Refused, and nothing is dropped for it.
    Result<uint64_t> too_many = st.Append(InHour(12, 30'000, 900));
    CHECK_FALSE(too_many.ok());
    CHECK_TRUE(too_many.status().code() == StatusCode::kResourceExhausted);
    STRCMP_CONTAINS("held for sources that wait", too_many.status().message().c_str());
    LONGS_EQUAL(1'000, st.GetStats().memory_readings);
    CHECK_TRUE(st.WaitDurable(*held_ticket).ok());
    CHECK_TRUE(st.Flush().ok());
  }
  // Exactly the plain hour-9 append and the first half of the one after the held ones are gone.
  std::set<uint64_t> want;
  auto add = [&](uint64_t from, uint64_t to) {
    for (uint64_t q = from; q < to; ++q) want.insert(q);
  };
  add(2'000, 2'100);
  add(3'000, 3'100);
  add(4'050, 4'100);
  add(10'000, 10'600);
  add(20'000, 20'150);
  const std::set<uint64_t> seqs = StoredSeqs(path());
  CHECK_TRUE(seqs == want);
  const Contents c = Inspect(path());
  LONGS_EQUAL(static_cast<int64_t>(want.size()), c.readings);
  LONGS_EQUAL(150, c.gap_readings);
}

TEST(AckJournal, RandomDropsKeepHeldAppendsWholeAndTakeOnlyTheOldestOfOthers) {
  // Appends of random size and hour, some held, through a queue far too small: whatever the
  // drops took, a held append is whole, every other append keeps a suffix (its oldest readings
  // go first), and stored + gap readings = accepted ones.
  Options o = Opts(path());
  o.ack_journal = false;
  o.max_memory_readings = 1'500;
  std::mt19937_64 rng(20261128);
  struct Appended {
    uint64_t first;
    int n;
    bool held;
  };
  std::vector<Appended> accepted;
  int refused = 0;
  {
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK_TRUE(s.ok());
    Store& st = **s;
    uint64_t seq = 1;
    for (int i = 0; i < 400; ++i) {
      const int hour = static_cast<int>(rng() % 6);
      const int n = 1 + static_cast<int>(rng() % 60);
      const bool held = rng() % 10 < 3;
      std::vector<Reading> rs = InHour(hour, seq, n);
      Result<uint64_t> t = held ? st.AppendWithState(rs, SourceState{"src/" + std::to_string(i % 4), "x"})
                                : st.Append(rs);
      if (t.ok()) accepted.push_back({seq, n, held});
      else ++refused;
      seq += static_cast<uint64_t>(n);
    }
    CHECK_TRUE(st.Flush().ok());
  }
  const std::set<uint64_t> seqs = StoredSeqs(path());
  int64_t total = 0, dropped_somewhere = 0;
  for (const Appended& a : accepted) {
    total += a.n;
    int present = 0;
    bool suffix = true;
    for (int i = 0; i < a.n; ++i) {
      const bool in = seqs.count(a.first + static_cast<uint64_t>(i)) > 0;
      if (present > 0 && !in) suffix = false;
      present += in;
    }
    if (a.held) LONGS_EQUAL_TEXT(a.n, present, ("held append at " + std::to_string(a.first)).c_str());
    CHECK_TRUE_TEXT(suffix, ("append at " + std::to_string(a.first) + " lost readings after kept ones").c_str());
    if (present < a.n) ++dropped_somewhere;
  }
  const Contents c = Inspect(path());
  LONGS_EQUAL(static_cast<int64_t>(seqs.size()), c.readings);
  LONGS_EQUAL(total, c.readings + c.gap_readings);
  CHECK(dropped_somewhere > 50);  // the queue really overflowed, many times
  CHECK(c.readings <= 1'500);
  (void)refused;
}
