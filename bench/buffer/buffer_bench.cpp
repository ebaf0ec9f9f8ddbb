// Buffer benchmark (docs/benchmarks.md, "Durable buffer"): on the shared data sets replayed as 100
// sensors at 1 Hz,
//  1. ingest: readings/s committed by buffer::Store at each sync mode and group-commit size
//     (one WaitDurable per group, i.e. one commit per group), against a bare SQLite loop in the
//     same run (WAL, same synchronous, one prepared INSERT per reading, one transaction per group);
//  2. storage at a realistic pace: one commit per second of 100 readings for several hours of
//     data, merged: bytes on disk per reading (chunks, whole file, and the file's growth per
//     reading after the first hour, i.e. the steady state), bytes written per reading
//     (/proc/self/io), with the data sets' own regular timestamps and with 0-49 ms of jitter;
//  3. peak RSS of the buffer alone at 100 k readings/s: a child process loads the data, returns
//     its free heap (malloc_trim), resets VmHWM (clear_refs), then feeds the store at that pace.
//
//   buffer_bench [--readings N] [--hours H] [--quick]
#include <malloc.h>
#include <sqlite3.h>
#include <sys/wait.h>
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

struct StorageFigures {
  long chunks = 0;
  double chunk_b = 0, file_b = 0, growth_b = 0, written_b = 0;
};

// Closes nothing: `path` must not be open. Folds the WAL into the file and returns its size.
uint64_t CheckpointedFileBytes(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return FileBytes(path);
}

// `hours` of 100 sensors at 1 Hz, one commit per second; after the first hour and at the end the
// store is merged, closed and the file measured, so growth_b is what each further reading costs.
StorageFigures Storage(const std::string& path, const std::vector<bench::Feed::Sensor>& sensors,
                       bench::TimeMode mode, size_t hours) {
  Clean(path);
  bench::Feed feed(sensors, 1'700'000'000'000'000LL, mode);
  buffer::Options o;
  o.path = path;
  o.commit_max_readings = 100;
  o.commit_interval_us = 10'000'000;
  const uint64_t w0 = WriteBytes();
  uint64_t first_hour_bytes = 0;
  size_t total = 0, first_hour = 0;
  std::vector<Reading> rs;
  for (size_t h = 0; h < hours; ++h) {
    auto st = buffer::Store::Open(o);
    if (!st.ok()) { fprintf(stderr, "open: %s\n", st.status().ToString().c_str()); exit(1); }
    for (int64_t sec = static_cast<int64_t>(h) * 3600; sec < static_cast<int64_t>(h + 1) * 3600; ++sec) {
      rs.clear();
      feed.Second(sec, &rs);
      for (Reading& r : rs) { r.source = "bench"; r.seq = ++total; }
      auto t = (*st)->Append(rs);
      if (!t.ok() || !(*st)->WaitDurable(*t).ok()) { fprintf(stderr, "append failed\n"); exit(1); }
    }
    (void)(*st)->MergeNow();
    st->reset();
    if (h == 0) {
      first_hour = total;
      first_hour_bytes = CheckpointedFileBytes(path);
    }
  }
  StorageFigures f;
  f.written_b = static_cast<double>(WriteBytes() - w0) / total;
  const uint64_t file = CheckpointedFileBytes(path);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT SUM(length(data)), COUNT(*) FROM chunks", -1, &q, nullptr);
  sqlite3_step(q);
  f.chunk_b = static_cast<double>(sqlite3_column_int64(q, 0)) / total;
  f.chunks = static_cast<long>(sqlite3_column_int64(q, 1));
  sqlite3_finalize(q);
  sqlite3_close(db);
  f.file_b = static_cast<double>(file) / total;
  if (total > first_hour)
    f.growth_b = (static_cast<double>(file) - static_cast<double>(first_hour_bytes)) / static_cast<double>(total - first_hour);
  return f;
}

// The child of --rss: feeds a store at `rate` readings/s for `seconds`, in appends of 1,000, and
// prints the peak RSS above the RSS it had once the data sets were loaded.
int RssChild(const std::string& path, const std::vector<bench::Feed::Sensor>& sensors, double rate, double seconds) {
  bench::Feed feed(sensors, 1'700'000'000'000'000LL, bench::TimeMode::kJitterMs);
  std::vector<Reading> rs;
  rs.reserve(1000);
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";  // reset VmHWM
  const long rss0 = ProcKb("VmRSS:");
  buffer::Options o;
  o.path = path;
  auto st = buffer::Store::Open(o);
  if (!st.ok()) { fprintf(stderr, "open: %s\n", st.status().ToString().c_str()); return 1; }
  const double t0 = Now();
  uint64_t n = 0;
  int64_t sec = 0;
  while (Now() - t0 < seconds) {
    rs.clear();
    while (rs.size() < 1000) feed.Second(sec++, &rs);
    for (Reading& r : rs) { r.source = "bench"; r.seq = ++n; }
    if (!(*st)->Append(rs).ok()) { fprintf(stderr, "append failed\n"); return 1; }
    const double due = t0 + static_cast<double>(n) / rate;  // pace: sleep until this append is due
    const double ahead = due - Now();
    if (ahead > 0) usleep(static_cast<useconds_t>(ahead * 1e6));
  }
  if (!(*st)->Flush().ok()) return 1;
  const double dt = Now() - t0;
  const long hwm = ProcKb("VmHWM:");
  st->reset();
  printf("%.0f readings/s for %.1f s: peak RSS %.2f MiB above the %.1f MiB the loaded data sets take\n",
         static_cast<double>(n) / dt, dt, (hwm - rss0) / 1024.0, rss0 / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  SetLogLevel(LogLevel::kWarning);
  size_t n = 200'000, hours = 4;
  bool quick = false, rss_child = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--readings") && i + 1 < argc) n = std::strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--hours") && i + 1 < argc) hours = std::max<size_t>(1, std::strtoull(argv[++i], nullptr, 10));
    else if (!strcmp(argv[i], "--quick")) quick = true;
    else if (!strcmp(argv[i], "--rss-child")) rss_child = true;
  }
  if (quick) { n = 20'000; hours = 1; }
  const char* env = std::getenv("EDGEPIPE_DATA_DIR");
  auto all = bench::LoadAll(env ? env : EDGEPIPE_BENCH_DATA_DIR);
  if (!all.ok()) { fprintf(stderr, "%s\n", all.status().ToString().c_str()); return 1; }
  const std::vector<bench::Feed::Sensor> sensors = bench::MixedSensors(*all, 100);
  char tmpl[] = "/tmp/buffer-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/buffer.db";
  if (rss_child) {
    const int rc = RssChild(path, sensors, 100'000, quick ? 1.0 : 5.0);
    std::filesystem::remove_all(dir);
    return rc;
  }
  bench::Feed feed(sensors, 1'700'000'000'000'000LL, bench::TimeMode::kJitterMs);
  std::vector<Reading> ingest;
  for (int64_t s = 0; ingest.size() < n; ++s) feed.Second(s, &ingest);
  ingest.resize(n);
  for (size_t i = 0; i < ingest.size(); ++i) { ingest[i].source = "bench"; ingest[i].seq = i + 1; }

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
  ingest.clear();
  ingest.shrink_to_fit();

  printf("\n# storage: 100 sensors x 1 Hz x %zu h (%zu readings), sync=full, one commit per second, merged\n",
         hours, hours * 360'000);
  printf("%-26s %7s %9s %9s %15s %11s\n", "timestamps", "chunks", "chunk B/r", "file B/r", "growth B/r >1h",
         "written B/r");
  for (bench::TimeMode mode : {bench::TimeMode::kExact, bench::TimeMode::kJitterMs}) {
    const StorageFigures f = Storage(path, sensors, mode, hours);
    printf("%-26s %7ld %9.2f %9.2f %15s %11.1f\n",
           mode == bench::TimeMode::kExact ? "data sets' own (regular)" : "arrival, 0-49 ms jitter", f.chunks,
           f.chunk_b, f.file_b, hours > 1 ? StrFormat("%.2f", f.growth_b).c_str() : "-", f.written_b);
    fflush(stdout);
  }
  Clean(path);
  std::filesystem::remove_all(dir);

  // Peak RSS of the buffer alone, in a fresh process (this one holds the ingest's freed heap).
  printf("\n# peak RSS: a fresh process feeding buffer::Store at 100,000 readings/s (default options)\n");
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", argv[0], "--rss-child", quick ? "--quick" : "--readings", quick ? "--quick" : "1", nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
