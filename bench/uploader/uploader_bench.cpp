// Uploader benchmark (docs/benchmarks.md, "Uploader"):
//  1. bytes uploaded per reading for NDJSON and CSV at each zstd level, with gzip -6 of the same
//     NDJSON as the baseline, and the compression CPU cost of each level (the size/CPU curve);
//  2. encode + compress + sign throughput in readings/s on one core, against the same pipeline
//     with gzip -6 measured in the same run;
//  3. drain time of a backlog (default 10 M readings) from the SQLite buffer to file:// and to
//     a radosgw started for the run, several uploads in flight.
// Data: the shared real data sets (../shared/data or $EDGEPIPE_DATA_DIR), 1,000-reading batches.
//
//   build/bench/uploader_bench [--quick] [--backlog N] [--concurrency N] [--no-rgw] [--levels 1,3,19]
#include <sched.h>
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "datasets.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/compress.h"
#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/encoder.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/s3_sink.h"
#include "edgepipe/uploader/sigv4.h"
#include "edgepipe/uploader/uploader.h"

namespace fs = std::filesystem;
using namespace edgepipe;
using namespace edgepipe::uploader;
using Clock_ = std::chrono::steady_clock;

namespace {

struct Args {
  bool quick = false;
  uint64_t backlog = 10'000'000;
  int concurrency = 4;
  bool rgw = true;
  std::vector<int> levels = {1, 2, 3, 4, 5, 6, 7, 9, 12, 15, 19};
  std::string data_dir = EDGEPIPE_BENCH_DATA_DIR;
  std::string source_dir = EDGEPIPE_BENCH_SOURCE_DIR;
};

double Seconds(Clock_::time_point a, Clock_::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// CPU time of this thread (what one core spent), seconds.
double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

std::vector<Batch> Batches(const bench::Dataset& d, size_t per_batch) {
  std::vector<Batch> out;
  for (size_t i = 0; i < d.readings.size(); i += per_batch) {
    Batch b;
    b.id = out.size() + 1;
    b.name = "bench-" + std::to_string(b.id);
    b.readings.assign(d.readings.begin() + i, d.readings.begin() + std::min(d.readings.size(), i + per_batch));
    b.partition_us = FloorToHour(b.readings.front().ts_us);
    b.quality.passed = b.quality.readings_in = b.readings.size();
    out.push_back(std::move(b));
  }
  return out;
}

size_t Gzip6(const std::string& in, std::string* out) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // gzip wrapper, as `gzip -6`
  out->resize(deflateBound(&z, in.size()) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  deflate(&z, Z_FINISH);
  size_t n = z.total_out;
  deflateEnd(&z);
  out->resize(n);
  return n;
}

EncodeContext Context() {
  EncodeContext c;
  c.device = "gw-17";
  return c;
}

// ---- 1. size / CPU curve ----

struct Cell {
  uint64_t bytes = 0, readings = 0;
  double cpu_s = 0;
};

void SizeCurve(const std::vector<bench::Dataset>& sets, const Args& a) {
  printf("\n## Bytes per reading (1,000-reading batches) and compression CPU\n\n");
  std::map<std::string, std::map<std::string, Cell>> table;  // column -> dataset -> cell
  std::vector<std::string> columns;
  for (Format f : {Format::kNdjson, Format::kCsv}) {
    for (const auto& d : sets) {
      std::vector<Batch> bs = Batches(d, 1000);
      std::vector<std::string> raw(bs.size());
      for (size_t i = 0; i < bs.size(); ++i) EncodeReadings(f, Context(), bs[i], &raw[i]);
      std::string out;
      if (f == Format::kNdjson) {
        Cell c;
        double t0 = ThreadCpu();
        for (size_t i = 0; i < bs.size(); ++i) c.bytes += Gzip6(raw[i], &out);
        c.cpu_s = ThreadCpu() - t0;
        c.readings = d.readings.size();
        table["ndjson gzip-6 (baseline)"][d.name] = c;
        Cell u;
        for (const auto& r : raw) u.bytes += r.size();
        u.readings = d.readings.size();
        table["ndjson raw"][d.name] = u;
      }
      for (int level : a.levels) {
        ZstdCompressor z(level, true);
        Cell c;
        double t0 = ThreadCpu();
        for (const auto& r : raw) {
          (void)z.Compress(r, &out);
          c.bytes += out.size();
        }
        c.cpu_s = ThreadCpu() - t0;
        c.readings = d.readings.size();
        table[std::string(FormatName(f)) + " zstd-" + std::to_string(level)][d.name] = c;
      }
    }
  }
  columns.push_back("ndjson raw");
  columns.push_back("ndjson gzip-6 (baseline)");
  for (Format f : {Format::kNdjson, Format::kCsv})
    for (int level : a.levels) columns.push_back(std::string(FormatName(f)) + " zstd-" + std::to_string(level));
  printf("| encoding |");
  for (const auto& d : sets) printf(" %s B/rdg |", d.name.c_str());
  printf(" all B/rdg | vs gzip-6 size | CPU ns/rdg | vs gzip-6 CPU |\n|---|");
  for (size_t i = 0; i < sets.size() + 4; ++i) printf("---|");
  printf("\n");
  auto total = [&](const std::string& col) {
    Cell t;
    for (const auto& d : sets) {
      const Cell& c = table[col][d.name];
      t.bytes += c.bytes;
      t.readings += c.readings;
      t.cpu_s += c.cpu_s;
    }
    return t;
  };
  const Cell base = total("ndjson gzip-6 (baseline)");
  for (const std::string& col : columns) {
    printf("| %s |", col.c_str());
    for (const auto& d : sets) {
      const Cell& c = table[col][d.name];
      printf(" %.2f |", double(c.bytes) / c.readings);
    }
    Cell t = total(col);
    if (col == "ndjson raw") {
      printf(" %.2f | %.2f | — | — |\n", double(t.bytes) / t.readings, double(t.bytes) / base.bytes);
      continue;
    }
    printf(" %.2f | %.2f | %.0f | %.2f |\n", double(t.bytes) / t.readings, double(t.bytes) / base.bytes,
           t.cpu_s * 1e9 / t.readings, t.cpu_s / base.cpu_s);
  }
}

// ---- 2. encode + compress + sign throughput on one core ----

void Throughput(const std::vector<bench::Dataset>& sets, int level) {
  printf("\n## Encode + compress + sign throughput, one core (zstd-%d vs gzip-6 pipeline)\n\n", level);
  printf("| data set | readings | zstd-%d pipeline readings/s | gzip-6 pipeline readings/s | ratio |\n|---|---|---|---|---|\n", level);
  Credentials creds = MakeCredentials("AKIDBENCH", "bench-secret");
  uint64_t all_n = 0;
  double all_z = 0, all_g = 0;
  for (const auto& d : sets) {
    std::vector<Batch> bs = Batches(d, 1000);
    ObjectOptions oo;
    oo.context = Context();
    oo.zstd_level = level;
    oo.prefix = "fleet/raw";
    ObjectBuilder builder(oo);
    // zstd pipeline: ObjectBuilder (NDJSON + zstd + SHA-256 + MD5 + metadata) + SigV4 headers.
    double t0 = ThreadCpu();
    for (int rep = 0; rep < 3; ++rep)
      for (const Batch& b : bs) {
        Result<Object> o = builder.Build(b);
        HttpHeaders h{{"Content-Type", o->content_type}, {"Content-MD5", o->md5_base64}};
        for (const auto& [k, v] : o->metadata) h.emplace_back("x-amz-meta-" + k, EncodeMetadataValue(v));
        SigningRequest sr{"PUT", "s3.eu-west-1.amazonaws.com", "/bucket/" + UriEncode(o->key, true), "", h, o->sha256_hex};
        SignedHeaders s = SignV4(sr, creds, "eu-west-1", 1'700'000'000'000'000);
        if (s.signature.empty()) abort();
      }
    double tz = (ThreadCpu() - t0) / 3;
    // Baseline: the same steps with gzip -6 in place of zstd.
    std::string raw, gz;
    t0 = ThreadCpu();
    for (int rep = 0; rep < 3; ++rep)
      for (const Batch& b : bs) {
        raw.clear();
        EncodeReadings(Format::kNdjson, Context(), b, &raw);
        Gzip6(raw, &gz);
        std::string sha = Sha256Hex(gz), md5 = Md5Base64(gz);
        SigningRequest sr{"PUT", "s3.eu-west-1.amazonaws.com", "/bucket/k", "", {{"Content-MD5", md5}}, sha};
        if (SignV4(sr, creds, "eu-west-1", 1'700'000'000'000'000).signature.empty()) abort();
      }
    double tg = (ThreadCpu() - t0) / 3;
    printf("| %s | %zu | %.0f | %.0f | %.2f |\n", d.name.c_str(), d.readings.size(), d.readings.size() / tz,
           d.readings.size() / tg, tg / tz);
    all_n += d.readings.size();
    all_z += tz;
    all_g += tg;
  }
  printf("| **all** | %llu | **%.0f** | %.0f | %.2f |\n", static_cast<unsigned long long>(all_n), all_n / all_z,
         all_n / all_g, all_g / all_z);
}

// ---- 3. drain a backlog ----

std::unique_ptr<buffer::Store> FillBacklog(const std::string& path, const std::vector<bench::Dataset>& sets, uint64_t n,
                                           double* seconds) {
  buffer::Options bo;
  bo.path = path;
  bo.sync = buffer::SyncMode::kNormal;
  bo.commit_max_readings = 10'000;
  bo.commit_interval_us = 50'000;
  bo.max_size_bytes = 8ull << 30;
  bo.max_memory_readings = 2'000'000;
  Result<std::unique_ptr<buffer::Store>> s = buffer::Store::Open(bo);
  if (!s.ok()) {
    fprintf(stderr, "buffer: %s\n", s.status().ToString().c_str());
    exit(1);
  }
  auto t0 = Clock_::now();
  // A gateway that was offline for days: the real values and sensors, in file order (cycled),
  // re-stamped at 40 readings per second (e.g. 40 sensors at 1 Hz), so 10 M readings span
  // about 2.9 days and every UTC hour holds 144,000 readings. (With the data sets' own sparse
  // timestamps an hour holds 12 to 200 readings and the drain measures per-object overhead.)
  const int64_t base = UsFromCivil(CivilTime{2026, 3, 1, 0, 0, 0, 0});
  uint64_t added = 0;
  std::vector<Reading> chunk;
  while (added < n) {
    for (const auto& d : sets) {
      for (size_t i = 0; i < d.readings.size() && added < n; ++i, ++added) {
        Reading r = d.readings[i];
        r.ts_us = base + static_cast<int64_t>(added) * 25'000;
        chunk.push_back(std::move(r));
        if (chunk.size() == 10'000) {  // one chunk each (the writer merges what waits), one batch each
          if (!(*s)->Append(chunk).ok() || !(*s)->Flush().ok()) abort();
          chunk.clear();
        }
      }
    }
  }
  if (!chunk.empty() && !(*s)->Append(chunk).ok()) abort();
  if (!(*s)->Flush().ok()) abort();
  *seconds = Seconds(t0, Clock_::now());
  return std::move(*s);
}

struct DrainResult {
  double seconds = 0;
  uint64_t readings = 0, objects = 0, bytes = 0;
};

DrainResult Drain(buffer::Store& store, Sink& sink, int concurrency) {
  ObjectOptions oo;
  oo.context = Context();
  oo.prefix = "fleet/raw";
  UploaderOptions uo;
  uo.concurrency = concurrency;
  uo.policy.max_age_us = 0;  // the backlog is old: every batch is ready
  uo.poll_interval_us = 5'000;
  uo.probe = false;
  Uploader up(store, ObjectBuilder(oo), sink, RealClock::Default(), uo);
  auto t0 = Clock_::now();
  std::thread t([&] { up.Run(); });
  while (true) {  // max_age 0: partial batches close at once, so Run() empties the buffer
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    buffer::Stats s = store.GetStats();
    if (s.pending_readings == 0 && s.claimed_batches == 0) break;
  }
  up.Stop();
  t.join();
  DrainResult r;
  r.seconds = Seconds(t0, Clock_::now());
  UploaderStats st = up.stats();
  r.readings = st.readings;
  r.objects = st.objects;
  r.bytes = st.bytes;
  return r;
}

int Run(const std::string& cmd) { return std::system(cmd.c_str()); }

void Backlog(const std::vector<bench::Dataset>& sets, const Args& a) {
  printf("\n## Drain of a %llu-reading backlog (40 readings/s re-stamped; NDJSON, zstd-3, 10,000-reading batches, "
         "%d uploads in flight)\n\n",
         static_cast<unsigned long long>(a.backlog), a.concurrency);
  const std::string tmp = (fs::temp_directory_path() / ("edgepipe-bench-" + std::to_string(getpid()))).string();
  fs::create_directories(tmp);
  printf("| destination | fill s | drain s | readings/s | objects | MB uploaded | vs file:// |\n|---|---|---|---|---|---|---|\n");
  double fill = 0;
  auto store = FillBacklog(tmp + "/file.db", sets, a.backlog, &fill);
  FileSink file(tmp + "/outbox");
  DrainResult f = Drain(*store, file, a.concurrency);
  printf("| file:// (baseline) | %.1f | %.1f | %.0f | %llu | %.1f | 1.00 |\n", fill, f.seconds, f.readings / f.seconds,
         static_cast<unsigned long long>(f.objects), f.bytes / 1e6);
  fflush(stdout);
  store.reset();
  fs::remove_all(tmp + "/outbox");
  fs::remove(tmp + "/file.db");
  if (a.rgw) {
    const std::string rgw_dir = tmp + "/rgw";
    const int port = 27000 + getpid() % 2000, mon = 29000 + getpid() % 2000;
    fprintf(stderr, "starting radosgw on 127.0.0.1:%d ...\n", port);
    if (Run("RGW_MEMSTORE_BYTES=4294967296 bash '" + a.source_dir + "/scripts/rgw-up.sh' '" + rgw_dir + "' " +
            std::to_string(port) + " " + std::to_string(mon) + " >&2") != 0) {
      printf("| radosgw | — | — | — | — | — | could not start (see stderr) |\n");
    } else {
      const std::string ep = "http://127.0.0.1:" + std::to_string(port);
      Run("curl -s -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user TESTKEY:TESTSECRET -H 'x-amz-content-sha256: "
          "UNSIGNED-PAYLOAD' -X PUT " + ep + "/bench");
      auto rstore = FillBacklog(tmp + "/rgw.db", sets, a.backlog, &fill);
      S3Options so;
      so.bucket = "bench";
      so.endpoint = ep;
      so.addressing = Addressing::kPath;
      S3Sink s3(so, MakeCurlTransport({}),
                std::make_shared<StaticCredentials>(MakeCredentials("TESTKEY", "TESTSECRET")), RealClock::Default());
      DrainResult r = Drain(*rstore, s3, a.concurrency);
      printf("| radosgw (memstore, loopback) | %.1f | %.1f | %.0f | %llu | %.1f | %.2f |\n", fill, r.seconds,
             r.readings / r.seconds, static_cast<unsigned long long>(r.objects), r.bytes / 1e6, r.seconds / f.seconds);
      Run("bash '" + a.source_dir + "/scripts/rgw-down.sh' '" + rgw_dir + "'");
    }
  }
  fs::remove_all(tmp);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", s.c_str());
        exit(64);
      }
      return argv[++i];
    };
    if (s == "--quick") {
      a.quick = true;
    } else if (s == "--backlog") {
      a.backlog = std::stoull(next());
    } else if (s == "--concurrency") {
      a.concurrency = std::stoi(next());
    } else if (s == "--no-rgw") {
      a.rgw = false;
    } else if (s == "--data") {
      a.data_dir = next();
    } else if (s == "--levels") {
      a.levels.clear();
      std::string l = next();
      for (size_t p = 0; p < l.size();) {
        size_t c = l.find(',', p);
        a.levels.push_back(std::stoi(l.substr(p, c - p)));
        p = c == std::string::npos ? l.size() : c + 1;
      }
    } else {
      fprintf(stderr, "usage: %s [--quick] [--backlog N] [--concurrency N] [--no-rgw] [--levels 1,3,19] [--data DIR]\n", argv[0]);
      return 64;
    }
  }
  SetLogLevel(LogLevel::kWarning);
  if (a.quick) {
    a.backlog = std::min<uint64_t>(a.backlog, 200'000);
    a.levels = {1, 3, 9};
    a.rgw = false;
  }
  // One core for the encode/compress measurements: pin this thread to the CPU it runs on.
  // (The drain runs unpinned again: it has several threads and radosgw inherits the mask.)
  cpu_set_t every, one;
  sched_getaffinity(0, sizeof every, &every);
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  sched_setaffinity(0, sizeof one, &one);

  const std::string dir = bench::DataDir(a.data_dir);
  std::vector<bench::Dataset> sets;
  if (a.quick) {
    Result<bench::Dataset> d = bench::Load(dir, "nab-machine");
    if (!d.ok()) {
      fprintf(stderr, "%s\n", d.status().message().c_str());
      return 1;
    }
    sets.push_back(std::move(*d));
  } else {
    Result<std::vector<bench::Dataset>> all = bench::LoadAll(dir);
    if (!all.ok()) {
      fprintf(stderr, "%s\n", all.status().message().c_str());
      return 1;
    }
    sets = std::move(*all);
  }
  uint64_t total = 0;
  for (const auto& d : sets) total += d.readings.size();
  printf("# edgepipe uploader benchmark\n\ndata: %s (%zu data sets, %llu readings); one core (pinned)%s\n", dir.c_str(),
         sets.size(), static_cast<unsigned long long>(total), a.quick ? "; --quick" : "");
  SizeCurve(sets, a);
  Throughput(sets, 3);
  sched_setaffinity(0, sizeof every, &every);
  Backlog(sets, a);
  return 0;
}
