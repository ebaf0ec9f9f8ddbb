// Reporting: what validation caught reaches the uploaded batch's quality summary (object
// metadata `edgepipe-quality`), the per-sensor counters and the status line's quality part,
// through the real buffer and the real object builder.
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/quality_report.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/uploader/object.h"
#include "test_util.h"
#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;
using namespace edgepipe::vtest;

TEST_GROUP(Report){};

TEST(Report, TheBatchMetadataCarriesWhatValidationCaught) {
  TempDir dir;
  ManualClock clock(kT0 + 3600 * kSec);
  std::unique_ptr<buffer::Store> store = OpenStore(dir.Join("buffer.db"), clock);
  Ingest ingest(ParseValidation(R"(
[[validation.sensor]]
match = "boiler/*"
range = { max = 100 }
stuck = { count = 3, action = "flag" }
)"),
                clock, *store);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto t = ingest.Append(std::vector<Reading>{R("boiler/t", kT0, 60), R("boiler/t", kT0 + kSec, 60),
                                              R("boiler/t", kT0 + 2 * kSec, 60), R("boiler/t", kT0 + 3 * kSec, 500),
                                              R("boiler/p", kT0, nan), R("room/t", kT0, 21.5)});
  CHECK_TRUE(t.ok());
  CHECK_TRUE(ingest.WaitDurable(*t).ok());

  // Per-sensor counters and the status line's quality part.
  std::vector<SensorQuality> sensors = ingest.SensorReport();
  LONGS_EQUAL(3, sensors.size());
  STRCMP_EQUAL("boiler/p", sensors[0].sensor.c_str());
  LONGS_EQUAL(1, sensors[0].counters.rejected.at("finite"));
  STRCMP_EQUAL("boiler/t", sensors[1].sensor.c_str());
  LONGS_EQUAL(4, sensors[1].counters.received);
  LONGS_EQUAL(1, sensors[1].counters.rejected.at("range"));
  LONGS_EQUAL(1, sensors[1].counters.flags.at("stuck"));
  LONGS_EQUAL(1, sensors[2].counters.passed);
  const std::string line = QualityLogSummary(ingest.stats(), sensors);
  STRCMP_EQUAL("quality: rejected finite 1, range 1; flagged stuck 1 (worst: boiler/t 2, boiler/p 1)", line.c_str());

  // The readings batch: its quality summary, and the object metadata built from it.
  CHECK_TRUE(store->Flush().ok());
  std::optional<Batch> readings;
  while (true) {
    auto b = store->LeaseBatch(BatchPolicy{}, true);
    CHECK_TRUE(b.ok());
    if (!b->has_value()) break;
    if ((*b)->kind == BatchKind::kReadings) readings = std::move(**b);
  }
  CHECK_TRUE(readings.has_value());
  LONGS_EQUAL(4, readings->readings.size());
  LONGS_EQUAL(1, readings->quality.flagged);
  uploader::ObjectOptions oo;
  oo.context.device = "gw";
  uploader::ObjectBuilder builder(oo);
  auto obj = builder.Build(*readings);
  CHECK_TRUE(obj.ok());
  nlohmann::json q = nlohmann::json::parse(obj->metadata.at("edgepipe-quality"));
  LONGS_EQUAL(6, q["in"].get<uint64_t>());
  LONGS_EQUAL(4, q["passed"].get<uint64_t>());
  LONGS_EQUAL(1, q["flagged"].get<uint64_t>());
  LONGS_EQUAL(1, q["rejected"]["range"].get<uint64_t>());
  LONGS_EQUAL(1, q["rejected"]["finite"].get<uint64_t>());
}
