// In-process pipeline benchmark (docs/benchmarks.md, "MQTT input"): the CPU per reading of what
// the agent does with a SenML message once Paho has handed it over, in one process, without
// MQTT, threads competing for a core, or process start-up in the figure. The input is the MQTT
// benchmark's stream (bench/mqtt/mqtt_bench.cpp: 16 gateways x 50 sensors, packs of 50):
//   full:     payload -> fb::PayloadParser -> agent::Ingest (the agent's default validation) ->
//             buffer::Store::Append, a WaitDurable every `--group` readings (one commit, on the
//             caller's thread), LeaseBatch as columns, ObjectBuilder::Build (NDJSON + zstd
//             level 1, MD5, SHA-256) and AckBatch, as the uploader does;
//   parse:    PayloadParser::Parse alone;  validate: parse + Ingest into a sink that counts;
//   pipeline: the buffer-to-object half alone (the same readings, already parsed, from
//             Store::Append on);
//   object:   ObjectBuilder::Build of the same readings without the buffer, batch by batch;
//   floor:    what any program turning these payloads into these objects spends in the
//             libraries, whatever it does in between: simdjson reading every field of every
//             payload (json) + zstd level 1, SHA-256 and MD5 of the objects' NDJSON (zstd).
// All in the same run, best of --repeat runs each (noise on a shared VM only adds CPU time).
// The ratios (full / floor, pipeline / object) compare builds of this tree; the agent's own CPU
// per reading, Paho included, is measured by bench/mqtt/run.sh.
//
//   pipeline_bench [--readings N] [--group N] [--batch N] [--repeat N] [--dir DIR] [--only STAGE]
//   (--only: that stage alone, e.g. under perf; no summary)
#include <simdjson.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "edgepipe/firmware_bridge/payload.h"
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

double Value(int g, int i) { return 20.0 + i * 0.1 + (g % 4) * 0.01; }

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
      r.value = Value(g, i);
      r.unit = "Cel";
      r.source = "mq";
    }
  return packs;
}

// Pack k as a SenML message, shaped like bench/mqtt/mqtt_bench.cpp's (base name, base time and
// base unit in the first record, relative times after it); it parses to FillPack's readings.
// Reserved with room for simdjson's padding, so that the json floor parses it in place.
std::string SenmlPayload(int k) {
  const int g = k % kGateways;
  std::string s;
  s.reserve(50 * 32 + 128 + simdjson::SIMDJSON_PADDING);
  char rec[128];
  snprintf(rec, sizeof rec, "[{\"bn\":\"gw/pack%d/\",\"bt\":%lld,\"bu\":\"Cel\",\"n\":\"t0\",\"v\":%.2f}", g,
           static_cast<long long>(kBaseUs / 1'000'000 + k), Value(g, 0));
  s += rec;
  for (int i = 1; i < kSensors; ++i) {
    snprintf(rec, sizeof rec, ",{\"n\":\"t%d\",\"t\":0.%03d,\"v\":%.2f}", i, i, Value(g, i));
    s += rec;
  }
  s += "]";
  if (s.capacity() < s.size() + simdjson::SIMDJSON_PADDING) s.reserve(s.size() + simdjson::SIMDJSON_PADDING);
  return s;
}

uploader::ObjectOptions Output() {
  uploader::ObjectOptions o;
  o.zstd_level = 1;  // the agent's default
  o.context.device = "bench";
  return o;
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "pipeline_bench: %s\n", what.c_str());
  exit(1);
}
void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

// The agent's validation when the configuration has no [validation] section (as in run.sh's).
agent::ValidationConfig DefaultValidation() {
  agent::ParseResult pr = agent::ParseConfigText(
      "[device]\nid = \"bench\"\n[upload]\nurl = \"file:///tmp/outbox\"\n[[source]]\ntype = \"simulator\"\n", "<bench>");
  if (!pr.config) Die("the built-in configuration does not parse");
  return pr.config->validation;
}

// The validate stage's buffer: counts what validation passed, keeps nothing.
class CountingSink final : public ReadingSink {
 public:
  uint64_t readings = 0;
  uint64_t quarantined = 0;
  Result<uint64_t> Append(std::span<const Reading> rs) override {
    readings += rs.size();
    return ++ticket_;
  }
  Result<uint64_t> AppendWithState(std::span<const Reading> rs, const SourceState&) override { return Append(rs); }
  Result<std::optional<std::string>> LoadState(const std::string&) override { return std::optional<std::string>(); }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  Result<uint64_t> Quarantine(const QuarantineRecord&) override {
    ++quarantined;
    return ++ticket_;
  }
  Result<uint64_t> RecordGap(const GapRecord&) override { return ++ticket_; }

 private:
  uint64_t ticket_ = 0;
};

// Parses payload k and hands its readings to `sink` as the MQTT source does at QoS 0.
struct Parsing {
  fb::PayloadParser parser{fb::PayloadOptions{}};
  std::vector<Reading> batch;
  Result<uint64_t> Feed(const std::string& payload, int k, ReadingSink& sink) {
    batch.clear();
    fb::PayloadError err;
    if (!parser.Parse(payload, "", kBaseUs + int64_t{k} * 1'000'000, "mq", &batch, &err))
      Die("payload " + std::to_string(k) + " rejected: " + err.rule + ": " + err.reason);
    return sink.AppendWithStateOwned(batch, SourceState{});
  }
};

// A fresh buffer in `dir`; `feed(k, store)` appends pack k and returns its ticket. Commits every
// `group` readings and uploads what is due, like the agent; returns CPU seconds.
using Feed = std::function<Result<uint64_t>(int, buffer::Store&)>;
double ThroughBuffer(const std::string& dir, int readings, int group, int batch_readings, const Feed& feed) {
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
  if (!store.ok()) Check(store.status(), "open the store");
  uploader::ObjectBuilder builder(Output());
  BatchPolicy policy;
  policy.max_readings = static_cast<uint64_t>(batch_readings);
  policy.max_age_us = 0;  // every committed reading is due: the uploader keeps up
  policy.columns = true;
  uint64_t uploaded = 0;
  auto drain = [&](bool flush) {
    while (true) {
      Result<std::optional<Batch>> b = (*store)->LeaseBatch(policy, flush);
      if (!b.ok()) Check(b.status(), "lease a batch");
      if (!b->has_value()) return;
      Result<uploader::Object> obj = builder.Build(**b);
      if (!obj.ok()) Check(obj.status(), "build an object");
      uploaded += (*b)->reading_count();
      Check((*store)->AckBatch((*b)->id, DeliveryReceipt{obj->key, obj->body.size(), obj->sha256_hex, "", 0}),
            "ack a batch");
    }
  };
  const double t0 = CpuSeconds();
  const int n_packs = readings / kSensors;
  for (int k = 0; k < n_packs; ++k) {
    Result<uint64_t> t = feed(k, **store);
    if (!t.ok()) Check(t.status(), "append");
    if ((k + 1) * kSensors % group == 0) {
      Check((*store)->WaitDurable(*t), "commit");
      drain(false);
    }
  }
  drain(true);
  const double cpu = CpuSeconds() - t0;
  const buffer::Stats st = (*store)->GetStats();
  fprintf(stderr, "  (chunks loaded from memory %llu, decoded %llu)\n",
          static_cast<unsigned long long>(st.chunks_loaded_from_memory),
          static_cast<unsigned long long>(st.chunks_loaded_decoded));
  if (uploaded != static_cast<uint64_t>(n_packs) * kSensors)
    Die("uploaded " + std::to_string(uploaded) + " of " + std::to_string(n_packs * kSensors) + " readings");
  return cpu;
}

// The buffer-to-object half: readings already parsed.
double Pipeline(const std::string& dir, int readings, int group, int batch_readings) {
  std::vector<std::vector<Reading>> packs = MakePacks();
  return ThroughBuffer(dir, readings, group, batch_readings, [&](int k, buffer::Store& store) {
    FillPack(packs, k);
    return store.Append(packs[k % kGateways]);
  });
}

// The whole path after Paho: payload -> parser -> validation -> buffer -> object.
double Full(const std::string& dir, const std::vector<std::string>& payloads, int group, int batch_readings,
            const agent::ValidationConfig& validation) {
  Parsing parsing;
  std::unique_ptr<agent::Ingest> ingest;
  buffer::Store* for_store = nullptr;
  const int readings = static_cast<int>(payloads.size()) * kSensors;
  return ThroughBuffer(dir, readings, group, batch_readings, [&](int k, buffer::Store& store) {
    if (for_store != &store) {
      ingest = std::make_unique<agent::Ingest>(validation, RealClock::Default(), store);
      for_store = &store;
    }
    return parsing.Feed(payloads[k], k, *ingest);
  });
}

// Parsing alone (sink == nullptr) or parsing and validation; returns CPU seconds.
double Front(const std::vector<std::string>& payloads, const agent::ValidationConfig* validation) {
  Parsing parsing;
  CountingSink counted;
  std::unique_ptr<agent::Ingest> ingest;
  if (validation) ingest = std::make_unique<agent::Ingest>(*validation, RealClock::Default(), counted);
  uint64_t parsed = 0;
  const double t0 = CpuSeconds();
  for (size_t k = 0; k < payloads.size(); ++k) {
    if (ingest) {
      Result<uint64_t> t = parsing.Feed(payloads[k], static_cast<int>(k), *ingest);
      if (!t.ok()) Check(t.status(), "validate");
    } else {
      parsing.batch.clear();
      fb::PayloadError err;
      if (!parsing.parser.Parse(payloads[k], "", kBaseUs, "mq", &parsing.batch, &err)) Die("payload rejected");
      parsed += parsing.batch.size();
    }
  }
  const double cpu = CpuSeconds() - t0;
  const uint64_t want = payloads.size() * kSensors;
  if (validation && (counted.readings != want || counted.quarantined != 0))
    Die("validation passed " + std::to_string(counted.readings) + " of " + std::to_string(want) + " readings");
  if (!validation && parsed != want) Die("parsed " + std::to_string(parsed) + " of " + std::to_string(want));
  return cpu;
}

// The library floor of reading the payloads: simdjson parses each in place and every field is
// read (numbers as doubles, strings as views), nothing is kept.
double JsonFloor(const std::vector<std::string>& payloads) {
  simdjson::dom::parser parser;
  double sum = 0;
  size_t fields = 0;
  const double t0 = CpuSeconds();
  for (const std::string& p : payloads) {
    simdjson::dom::array pack;
    if (parser.parse(p.data(), p.size(), false).get_array().get(pack) != simdjson::SUCCESS) Die("json floor: bad pack");
    for (simdjson::dom::element rec : pack) {
      simdjson::dom::object o;
      if (rec.get_object().get(o) != simdjson::SUCCESS) Die("json floor: bad record");
      for (simdjson::dom::key_value_pair kv : o) {
        fields += kv.key.size();
        double d;
        std::string_view text;
        if (kv.value.get_double().get(d) == simdjson::SUCCESS) sum += d;
        else if (kv.value.get_string().get(text) == simdjson::SUCCESS) fields += text.size();
      }
    }
  }
  const double cpu = CpuSeconds() - t0;
  if (fields == 0 || !(sum > 0)) Die("json floor read nothing");
  return cpu;
}

// The same readings as the buffer's batches would carry them (each names the 800 series once,
// series g * 50 + i), `batch_readings` at a time, handed to `use`.
template <class Use>
void ForEachBatch(int readings, int batch_readings, Use use) {
  std::vector<std::vector<Reading>> packs = MakePacks();
  const int n_packs = readings / kSensors;
  Batch batch;
  batch.kind = BatchKind::kReadings;
  auto reset = [&] {
    batch.columns = ReadingColumns();
    for (const std::vector<Reading>& pack : packs)
      for (const Reading& r : pack) batch.columns.series.push_back(ReadingColumns::Series{r.sensor, r.unit, r.source, r.type});
  };
  reset();
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
    if (c.size() >= static_cast<size_t>(batch_readings)) {
      use(batch);
      reset();
    }
  }
  if (!batch.columns.empty()) use(batch);
}

// The same readings straight into ObjectBuilder::Build: the object without the buffer.
double Baseline(int readings, int batch_readings) {
  uploader::ObjectBuilder builder(Output());
  const double t0 = CpuSeconds();
  ForEachBatch(readings, batch_readings, [&](const Batch& b) {
    Result<uploader::Object> obj = builder.Build(b);
    if (!obj.ok()) Check(obj.status(), "build an object");
  });
  return CpuSeconds() - t0;
}

// The library floor of the object: zstd (level 1, with checksum), SHA-256 and MD5 of each batch's
// NDJSON, rendered beforehand (not timed).
double CompressFloor(int readings, int batch_readings) {
  uploader::ZstdCompressor zstd(Output().zstd_level, true);
  std::string ndjson, body;
  double cpu = 0;
  size_t digests = 0;
  ForEachBatch(readings, batch_readings, [&](const Batch& b) {
    ndjson.clear();
    uploader::EncodeReadings(uploader::Format::kNdjson, Output().context, b, &ndjson);
    const double t0 = CpuSeconds();
    Check(zstd.Compress(ndjson, &body), "compress");
    digests += uploader::Sha256Hex(body).size() + uploader::Md5Base64(body).size();
    cpu += CpuSeconds() - t0;
  });
  if (digests == 0) Die("compress floor compressed nothing");
  return cpu;
}

}  // namespace

int main(int argc, char** argv) {
  int readings = 1'000'000, group = 5000, batch = 100'000, repeat = 5;
  std::string only;  // one stage alone (for a profiler)
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
    else if (a == "--only") only = next();
    else {
      fprintf(stderr, "usage: %s [--readings N] [--group N] [--batch N] [--repeat N] [--dir DIR] [--only STAGE]\n",
              argv[0]);
      return 2;
    }
  }
  if (readings < kSensors || readings % kSensors != 0 || group < kSensors || group % kSensors != 0 || batch < 1 ||
      repeat < 1) {
    fprintf(stderr, "pipeline_bench: --readings and --group are multiples of %d, --batch and --repeat at least 1\n",
            kSensors);
    return 2;
  }
  SetLogLevel(LogLevel::kWarning);
  const agent::ValidationConfig validation = DefaultValidation();
  std::vector<std::string> payloads;  // made for the first stage that reads them (not timed)
  auto with_payloads = [&](auto stage) {
    return [&, stage] {
      if (payloads.empty())
        for (int k = 0; k < readings / kSensors; ++k) payloads.push_back(SenmlPayload(k));
      return stage();
    };
  };
  struct Stage {
    const char* name;
    std::function<double()> run;
    double best = 1e30;
  };
  std::vector<Stage> stages = {
      {"json", with_payloads([&] { return JsonFloor(payloads); })},
      {"zstd", [&] { return CompressFloor(readings, batch); }},
      {"object", [&] { return Baseline(readings, batch); }},
      {"parse", with_payloads([&] { return Front(payloads, nullptr); })},
      {"validate", with_payloads([&] { return Front(payloads, &validation); })},
      {"pipeline", [&] { return Pipeline(dir, readings, group, batch); }},
      {"full", with_payloads([&] { return Full(dir, payloads, group, batch, validation); })},
  };
  if (!only.empty()) {
    std::erase_if(stages, [&](const Stage& st) { return only != st.name; });
    if (stages.empty()) {
      fprintf(stderr, "pipeline_bench: no stage named \"%s\"\n", only.c_str());
      return 2;
    }
  }
  printf("# %d readings (16 x 50 sensors, SenML packs of 50), commit every %d, batches of %d; us/reading per run\n",
         readings, group, batch);
  for (int r = 0; r < repeat; ++r) {  // alternated, so that every stage sees the same machine
    printf("run %d:", r + 1);
    for (Stage& st : stages) {
      const double us = st.run() / readings * 1e6;
      st.best = std::min(st.best, us);
      printf("  %s %.3f", st.name, us);
    }
    printf("\n");
    fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  auto best = [&](const char* name) {
    for (const Stage& st : stages)
      if (std::string(name) == st.name) return st.best;
    return 0.0;
  };
  if (!only.empty()) return 0;
  const double floor = best("json") + best("zstd");
  printf("best of %d, us/reading:\n", repeat);
  printf("  json      %.3f  simdjson reading every field of the payloads (library floor)\n", best("json"));
  printf("  zstd      %.3f  zstd level 1 + SHA-256 + MD5 of the objects' NDJSON (library floor)\n", best("zstd"));
  printf("  object    %.3f  the objects built from the readings without the buffer (NDJSON, then the above)\n",
         best("object"));
  printf("  parse     %.3f  fb::PayloadParser\n", best("parse"));
  printf("  validate  %.3f  parse + agent::Ingest (default validation)\n", best("validate"));
  printf("  pipeline  %.3f  Store append+commit -> lease -> object -> ack (readings already parsed)\n",
         best("pipeline"));
  printf("  full      %.3f  payload -> parse -> validation -> buffer -> object\n", best("full"));
  printf("library floor (json + zstd) %.3f us/reading; full / floor %.2fx; pipeline / object %.2fx\n", floor,
         best("full") / floor, best("pipeline") / best("object"));
  return 0;
}
