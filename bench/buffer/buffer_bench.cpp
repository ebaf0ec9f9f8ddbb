// Buffer benchmark (docs/benchmarks.md, "Durable buffer"): on the shared data sets replayed as 100
// sensors at 1 Hz,
//  1. ingest: readings/s committed by buffer::Store at each sync mode and group-commit size
//     (one WaitDurable per group, i.e. one commit per group), against a bare SQLite loop in the
//     same run (WAL, same synchronous, one prepared INSERT per reading, one transaction per group);
//  2. storage at a realistic pace: one commit per second of 100 readings for an hour of data, then
//     merged: bytes on disk per reading and bytes written to disk per reading (/proc/self/io);
//  3. peak RSS growth of the process while the buffer ingests (VmHWM reset via clear_refs).
//
//   buffer_bench [--readings N] [--quick]
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"

using namespace edgepipe;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long ProcKb(const char* key) {  // from /proc/self/status
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + strlen(key));
  return -1;
}

uint64_t WriteBytes() {  // bytes this process caused to be written to storage
  std::ifstream in("/proc/self/io");
  std::string k;
  uint64_t v;
  while (in >> k >> v)
    if (k == "write_bytes:") return v;
  return 0;
}

uint64_t FileBytes(const std::string& p) {
  uint64_t n = 0;
  for (const char* s : {"", "-wal"}) {
    std::error_code ec;
    auto sz = std::filesystem::file_size(p + s, ec);
    if (!ec) n += sz;
  }
  return n;
}

void Clean(const std::string& p) {
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(p + s);
}

double StoreIngest(const std::string& path, const std::vector<Reading>& rs, buffer::SyncMode sync, size_t group) {
  Clean(path);
  buffer::Options o;
  o.path = path;
  o.sync = sync;
  o.commit_max_readings = group;
  o.commit_interval_us = 10'000'000;
  auto st = buffer::Store::Open(o);
  if (!st.ok()) { fprintf(stderr, "open: %s\n", st.status().ToString().c_str()); exit(1); }
  const double t0 = Now();
  for (size_t i = 0; i < rs.size(); i += group) {
    const size_t n = std::min(group, rs.size() - i);
    auto t = (*st)->Append(std::span<const Reading>(rs.data() + i, n));
    if (!t.ok() || !(*st)->WaitDurable(*t).ok()) { fprintf(stderr, "append failed\n"); exit(1); }
  }
  const double dt = Now() - t0;
  st->reset();
  return static_cast<double>(rs.size()) / dt;
}

double BareSqlite(const std::string& path, const std::vector<Reading>& rs, buffer::SyncMode sync, size_t group) {
  Clean(path);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, sync == buffer::SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", nullptr,
               nullptr, nullptr);
  sqlite3_exec(db, "CREATE TABLE readings(id INTEGER PRIMARY KEY, sensor TEXT, ts INTEGER, value REAL, unit TEXT, "
                   "source TEXT, quality INTEGER, seq INTEGER)", nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO readings(sensor, ts, value, unit, source, quality, seq) VALUES(?,?,?,?,?,?,?)",
                     -1, &ins, nullptr);
  const double t0 = Now();
  for (size_t i = 0; i < rs.size(); i += group) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (size_t j = i; j < std::min(rs.size(), i + group); ++j) {
      const Reading& r = rs[j];
      sqlite3_bind_text(ins, 1, r.sensor.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 2, r.ts_us);
      sqlite3_bind_double(ins, 3, r.value);
      sqlite3_bind_text(ins, 4, r.unit.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 5, r.source.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 6, r.quality);
      sqlite3_bind_int64(ins, 7, static_cast<int64_t>(r.seq));
      sqlite3_step(ins);
      sqlite3_reset(ins);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const double dt = Now() - t0;
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return static_cast<double>(rs.size()) / dt;
}

}  // namespace

int main(int argc, char** argv) {
  SetLogLevel(LogLevel::kWarning);
  size_t n = 200'000;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--readings") && i + 1 < argc) n = std::strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--quick")) quick = true;
  }
  if (quick) n = 20'000;
  const char* env = std::getenv("EDGEPIPE_DATA_DIR");
  auto all = bench::LoadAll(env ? env : EDGEPIPE_BENCH_DATA_DIR);
  if (!all.ok()) { fprintf(stderr, "%s\n", all.status().ToString().c_str()); return 1; }
  bench::Feed feed(bench::MixedSensors(*all, 100), 1'700'000'000'000'000LL, bench::TimeMode::kJitterMs);
  const size_t seconds = quick ? 600 : 3600;
  std::vector<Reading> rs;
  for (size_t s = 0; rs.size() < std::max(n, seconds * 100); ++s) feed.Second(static_cast<int64_t>(s), &rs);
  for (size_t i = 0; i < rs.size(); ++i) { rs[i].source = "bench"; rs[i].seq = i + 1; }
  char tmpl[] = "/tmp/buffer-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/buffer.db";
  std::vector<Reading> ingest(rs.begin(), rs.begin() + static_cast<ptrdiff_t>(n));

  printf("# ingest: %zu readings of 100 sensors (shared data sets), one commit per group\n", n);
  printf("%-7s %7s %14s %14s %7s\n", "sync", "group", "store r/s", "bare r/s", "ratio");
  for (buffer::SyncMode m : {buffer::SyncMode::kFull, buffer::SyncMode::kNormal}) {
    for (size_t g : {100, 1000, 10000}) {
      const double bare = BareSqlite(path, ingest, m, g);
      const double store = StoreIngest(path, ingest, m, g);
      printf("%-7s %7zu %14.0f %14.0f %6.2fx\n", buffer::SyncModeName(m), g, store, bare, store / bare);
      fflush(stdout);
    }
  }

  // Storage at 100 sensors x 1 Hz, one commit per second, then merged (steady state).
  Clean(path);
  std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM
  const long rss0 = ProcKb("VmRSS:");
  const uint64_t w0 = WriteBytes();
  const size_t total = seconds * 100;
  {
    buffer::Options o;
    o.path = path;
    o.commit_max_readings = 100;
    o.commit_interval_us = 10'000'000;
    auto st = buffer::Store::Open(o);
    if (!st.ok()) return 1;
    for (size_t i = 0; i < total; i += 100) {
      auto t = (*st)->Append(std::span<const Reading>(rs.data() + i, 100));
      if (!t.ok() || !(*st)->WaitDurable(*t).ok()) return 1;
    }
    (void)(*st)->MergeNow();
  }
  const uint64_t written = WriteBytes() - w0;
  const long hwm = ProcKb("VmHWM:");
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT SUM(length(data)), COUNT(*) FROM chunks", -1, &q, nullptr);
  sqlite3_step(q);
  const double blob = static_cast<double>(sqlite3_column_int64(q, 0));
  const long chunks = static_cast<long>(sqlite3_column_int64(q, 1));
  sqlite3_finalize(q);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  printf("\n# storage: %zu readings (100 sensors x 1 Hz x %zu s), sync=full, one commit per second, merged\n",
         total, seconds);
  printf("chunks %ld, compressed chunk bytes/reading %.2f, file bytes/reading %.2f, written bytes/reading %.1f\n",
         chunks, blob / total, static_cast<double>(FileBytes(path)) / total, static_cast<double>(written) / total);
  printf("peak RSS growth while ingesting: %.1f MiB (VmHWM %ld KiB - VmRSS before %ld KiB)\n",
         (hwm - rss0) / 1024.0, hwm, rss0);
  std::filesystem::remove_all(dir);
  return 0;
}
