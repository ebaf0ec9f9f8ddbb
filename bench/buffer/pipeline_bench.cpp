// Buffer-to-object pipeline benchmark (docs/benchmarks.md, "MQTT input"): the CPU per reading of
// what the agent does between its sources and its sink, in one process, without MQTT, threads
// competing for a core, or process start-up in the figure:
//   measured: buffer::Store::Append of SenML-shaped packs (the MQTT benchmark's: 16 gateways x
//             50 sensors, 50 readings per pack), a WaitDurable every `--group` readings (one
//             commit, on the caller's thread), LeaseBatch as columns, ObjectBuilder::Build
//             (NDJSON + zstd level 1, MD5, SHA-256) and AckBatch, as the uploader does;
//   baseline: the same readings handed to ObjectBuilder::Build directly, batch by batch: the
//             work any uploader of this output has to do, whatever it buffers.
// Both in the same run, best of --repeat runs each (noise on a shared VM only adds CPU time).
// The figure and the ratio are for comparing builds of this tree: the agent's own CPU per
// reading is measured by bench/mqtt/run.sh.
//
//   pipeline_bench [--readings N] [--group N] [--batch N] [--repeat N] [--dir DIR]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "edgepipe/uploader/object.h"

using namespace edgepipe;

namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

constexpr int kGateways = 16, kSensors = 50;
constexpr int64_t kBaseUs = 1'700'000'000'000'000;

// Pack k of the stream: gateway k % 16, its 50 sensors, one second after the previous pack.
void FillPack(std::vector<std::vector<Reading>>& packs, int k) {
  std::vector<Reading>& p = packs[k % kGateways];
  for (int i = 0; i < kSensors; ++i) p[i].ts_us = kBaseUs + int64_t{k} * 1'000'000 + i * 1000;
}

std::vector<std::vector<Reading>> MakePacks() {
  std::vector<std::vector<Reading>> packs(kGateways, std::vector<Reading>(kSensors));
  for (int g = 0; g < kGateways; ++g)
    for (int i = 0; i < kSensors; ++i) {
      Reading& r = packs[g][i];
      r.sensor = "gw/pack" + std::to_string(g) + "/t" + std::to_string(i);
      r.value = 20.0 + i * 0.1 + (g % 4) * 0.01;
      r.unit = "Cel";
      r.source = "mq";
    }
  return packs;
}

uploader::ObjectOptions Output() {
  uploader::ObjectOptions o;
  o.zstd_level = 1;  // the agent's default
  o.context.device = "bench";
  return o;
}

bool Die(const Status& s, const char* what) {
  fprintf(stderr, "pipeline_bench: %s: %s\n", what, s.ToString().c_str());
  exit(1);
}

// Store -> lease -> build -> ack; returns CPU seconds.
double Pipeline(const std::string& dir, int readings, int group, int batch_readings) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  buffer::Options o;
  o.path = dir + "/buffer.db";
  o.sync = buffer::SyncMode::kNormal;
  o.commit_max_readings = static_cast<uint64_t>(group);
  o.commit_interval_us = 100'000;
  o.max_size_bytes = 4ull << 30;
  o.merge_min_age_us = 1'000'000;
  Result<std::unique_ptr<buffer::Store>> store = buffer::Store::Open(o);
  if (!store.ok()) Die(store.status(), "open the store");
  uploader::ObjectBuilder builder(Output());
  BatchPolicy policy;
  policy.max_readings = static_cast<uint64_t>(batch_readings);
  policy.max_age_us = 0;  // every committed reading is due: the uploader keeps up
  policy.columns = true;
  std::vector<std::vector<Reading>> packs = MakePacks();
  uint64_t uploaded = 0;
  auto drain = [&](bool flush) {
    while (true) {
      Result<std::optional<Batch>> b = (*store)->LeaseBatch(policy, flush);
      if (!b.ok()) Die(b.status(), "lease a batch");
      if (!b->has_value()) return;
      Result<uploader::Object> obj = builder.Build(**b);
      if (!obj.ok()) Die(obj.status(), "build an object");
      uploaded += (*b)->reading_count();
      Status s = (*store)->AckBatch((*b)->id, DeliveryReceipt{obj->key, obj->body.size(), obj->sha256_hex, "", 0});
      if (!s.ok()) Die(s, "ack a batch");
    }
  };
  const double t0 = CpuSeconds();
  const int n_packs = readings / kSensors;
  for (int k = 0; k < n_packs; ++k) {
    FillPack(packs, k);
    Result<uint64_t> t = (*store)->Append(packs[k % kGateways]);
    if (!t.ok()) Die(t.status(), "append");
    if ((k + 1) * kSensors % group == 0) {
      Status s = (*store)->WaitDurable(*t);
      if (!s.ok()) Die(s, "commit");
      drain(false);
    }
  }
  drain(true);
  const double cpu = CpuSeconds() - t0;
  if (uploaded != static_cast<uint64_t>(n_packs) * kSensors) {
    fprintf(stderr, "pipeline_bench: uploaded %llu of %d readings\n", static_cast<unsigned long long>(uploaded),
            n_packs * kSensors);
    exit(1);
  }
  return cpu;
}

// The same readings straight into ObjectBuilder::Build, `batch_readings` at a time.
double Baseline(int readings, int batch_readings) {
  uploader::ObjectBuilder builder(Output());
  std::vector<std::vector<Reading>> packs = MakePacks();
  const int n_packs = readings / kSensors;
  Batch batch;
  batch.kind = BatchKind::kReadings;
  // A batch names each of the 800 series once (series g * 50 + i), as the buffer's batches do.
  auto reset = [&] {
    batch.columns = ReadingColumns();
    for (const std::vector<Reading>& pack : packs)
      for (const Reading& r : pack) batch.columns.series.push_back(ReadingColumns::Series{r.sensor, r.unit, r.source, r.type});
  };
  auto build = [&] {
    Result<uploader::Object> obj = builder.Build(batch);
    if (!obj.ok()) Die(obj.status(), "build an object");
    reset();
  };
  reset();
  const double t0 = CpuSeconds();
  for (int k = 0; k < n_packs; ++k) {
    FillPack(packs, k);
    ReadingColumns& c = batch.columns;
    const int g = k % kGateways;
    for (int i = 0; i < kSensors; ++i) {
      const Reading& r = packs[g][i];
      c.series_of.push_back(static_cast<uint32_t>(g * kSensors + i));
      c.ts_us.push_back(r.ts_us);
      c.value.push_back(r.value);
      c.quality.push_back(r.quality);
      c.seq.push_back(r.seq);
    }
    if (c.size() >= static_cast<size_t>(batch_readings)) build();
  }
  if (!batch.columns.empty()) build();
  return CpuSeconds() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  int readings = 1'000'000, group = 5000, batch = 100'000, repeat = 5;
  std::string dir = (std::filesystem::temp_directory_path() / "edgepipe-pipeline-bench").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "pipeline_bench: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--readings") readings = atoi(next());
    else if (a == "--group") group = atoi(next());
    else if (a == "--batch") batch = atoi(next());
    else if (a == "--repeat") repeat = atoi(next());
    else if (a == "--dir") dir = next();
    else {
      fprintf(stderr, "usage: %s [--readings N] [--group N] [--batch N] [--repeat N] [--dir DIR]\n", argv[0]);
      return 2;
    }
  }
  if (readings < kSensors || group < kSensors || group % kSensors != 0 || batch < 1 || repeat < 1) {
    fprintf(stderr, "pipeline_bench: --readings and --group are multiples of %d, --batch and --repeat at least 1\n",
            kSensors);
    return 2;
  }
  SetLogLevel(LogLevel::kWarning);
  double best_pipe = 1e30, best_base = 1e30;
  printf("# %d readings (16 x 50 sensors, packs of 50), commit every %d, batches of %d; us/reading per run\n",
         readings, group, batch);
  for (int r = 0; r < repeat; ++r) {  // alternated, so that both see the same machine
    const double base = Baseline(readings, batch) / readings * 1e6;
    const double pipe = Pipeline(dir, readings, group, batch) / readings * 1e6;
    printf("run %d: pipeline %.3f  baseline %.3f\n", r + 1, pipe, base);
    best_pipe = std::min(best_pipe, pipe);
    best_base = std::min(best_base, base);
  }
  std::filesystem::remove_all(dir);
  printf("pipeline (Store append+commit -> lease -> NDJSON+zstd -> ack): %.3f us/reading (best of %d)\n", best_pipe, repeat);
  printf("baseline (NDJSON+zstd of the same readings, no buffer):         %.3f us/reading\n", best_base);
  printf("ratio %.2fx\n", best_pipe / best_base);
  return 0;
}
