// Property tests over random series (fixed seeds, so failures reproduce):
//  * clean series pass every rule unchanged, bit for bit;
//  * faults injected at random places are caught at the rate each rule promises (all of them,
//    and nothing else).
#include <cmath>
#include <map>
#include <cstring>
#include <random>
#include <set>

#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::vtest;

namespace {

constexpr int kSensors = 8;
constexpr int kPerSensor = 600;
constexpr int64_t kStep = 10 * kSec;

// A random walk with bounded noise, printed with 2 decimals and parsed back (as a source would
// deliver it), sensors interleaved, strictly increasing times per sensor.
std::vector<Reading> CleanSeries(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> step(-0.2, 0.2), noise(-0.3, 0.3), start(-20, 40);
  std::vector<double> level(kSensors);
  for (auto& l : level) l = start(rng);
  std::vector<Reading> out;
  for (int i = 0; i < kPerSensor; ++i) {
    for (int s = 0; s < kSensors; ++s) {
      level[s] += step(rng);
      char buf[32];
      snprintf(buf, sizeof buf, "%.2f", level[s] + noise(rng));
      Reading r = R("s/" + std::to_string(s), kT0 + i * kStep + s * 1000, std::strtod(buf, nullptr), "Cel");
      r.seq = static_cast<uint64_t>(i + 1);
      out.push_back(r);
    }
  }
  return out;
}

// Every rule on, with tolerances a clean series never reaches.
const char* kAllRules = R"(
[validation.default]
type = "reject"
sentinel = [-200, -9999]
range = { min = -100, max = 100 }
rate_of_change = { max = 0.1, action = "reject" }
stuck = { count = 50, action = "reject" }
spike = { window = 11, threshold = 3, min_scale = 1, action = "reject" }
future = { skew = "1m" }
too_old = { floor = "2020-01-01" }
backwards = "reject"
duplicate = "reject"
unit = { from = "Cel", to = "Cel" }
resolution = 0.01
)";

bool BitEqual(const Reading& a, const Reading& b) {
  return a == b && std::memcmp(&a.value, &b.value, sizeof(double)) == 0;
}

struct Injected {
  std::vector<Reading> series;
  std::set<size_t> faults;  // indexes of injected readings in `series`
};

// Inserts `n` faulty readings made by `make(reading before it)` at random places (at least
// `gap` clean readings of the same sensor apart), each right after a clean reading of its sensor.
// The series is cut into `n` equal strata and each fault lands at a random place in its own
// stratum, leaving the gap before the next one (so placement always terminates).
template <class Make>
Injected Inject(uint64_t seed, int n, int gap, Make make) {
  std::vector<Reading> clean = CleanSeries(seed);
  std::mt19937_64 rng(seed * 7919 + 1);
  std::set<size_t> at;
  const size_t first = kSensors * (gap + 1), spacing = static_cast<size_t>(kSensors * gap);
  const size_t stratum = (clean.size() - first) / static_cast<size_t>(n);
  if (stratum <= spacing) FAIL("Inject: too many faults for this gap");
  for (int k = 0; k < n; ++k) {
    const size_t lo = first + static_cast<size_t>(k) * stratum;
    at.insert(std::uniform_int_distribution<size_t>(lo, lo + stratum - spacing - 1)(rng));
  }
  Injected out;
  for (size_t i = 0; i < clean.size(); ++i) {
    out.series.push_back(clean[i]);
    if (at.count(i)) {
      std::vector<Reading> bad = make(clean[i], rng);
      for (auto& b : bad) {
        out.faults.insert(out.series.size());
        out.series.push_back(b);
      }
    }
  }
  return out;
}

// Runs `inj` and checks that exactly the injected readings were rejected, by `rule`.
void ExpectExactlyCaught(const Injected& inj, const std::string& rule, const std::string& config, int64_t now = kT0) {
  ManualClock clock(now);
  Validator v(ParseValidation(config), clock);
  std::vector<Reading> in = inj.series;
  Out o = Run(v, in);
  LONGS_EQUAL(inj.faults.size(), o.rejected.size());
  for (const auto& q : o.rejected) STRCMP_EQUAL(rule.c_str(), q.rule.c_str());
  // The clean readings passed, unchanged.
  size_t j = 0;
  for (size_t i = 0; i < inj.series.size(); ++i) {
    if (inj.faults.count(i)) continue;
    if (!BitEqual(inj.series[i], o.passed.at(j++))) FAIL(("clean reading " + std::to_string(i) + " changed").c_str());
  }
  LONGS_EQUAL(j, o.passed.size());
}

const std::string kNowish = "2024-01-01T00:00:00Z";

}  // namespace

TEST_GROUP(Property){};

TEST(Property, CleanSeriesPassEveryRuleBitForBit) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    std::vector<Reading> in = CleanSeries(seed);
    ManualClock clock(kT0 + kPerSensor * kStep);
    Validator v(ParseValidation(kAllRules), clock);
    std::vector<Reading> copy = in;
    Out o = Run(v, copy);
    LONGS_EQUAL(0, o.rejected.size());
    LONGS_EQUAL(in.size(), o.passed.size());
    for (size_t i = 0; i < in.size(); ++i)
      if (!BitEqual(in[i], o.passed[i])) FAIL(("seed " + std::to_string(seed) + ": reading " + std::to_string(i) + " changed").c_str());
    LONGS_EQUAL(0, v.stats().flagged);
  }
}

TEST(Property, InjectedFaultsAreAllCaughtAndNothingElse) {
  const int64_t now = kT0 + kPerSensor * kStep;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    // Out of range.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us += 1;
                          b.value = std::uniform_int_distribution<int>(0, 1)(g) ? 150.5 : -130.25;
                          return std::vector<Reading>{b};
                        }),
                        "range", "[validation.default]\nrange = { min = -100, max = 100 }\n");
    // Missing-value markers.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64&) {
                          Reading b = r;
                          b.ts_us += 1;
                          b.value = -200;
                          return std::vector<Reading>{b};
                        }),
                        "sentinel", "[validation.default]\nsentinel = [-200]\n");
    // NaN and infinity.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us += 1;
                          b.value = std::uniform_int_distribution<int>(0, 1)(g) ? NAN : -INFINITY;
                          return std::vector<Reading>{b};
                        }),
                        "finite", "");
    // Text where a number is declared.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64&) {
                          Reading b = r;
                          b.ts_us += 1;
                          b.type = ValueType::kString;
                          b.text = "NA";
                          return std::vector<Reading>{b};
                        }),
                        "type", "[validation.default]\ntype = \"reject\"\n");
    // Timestamps ahead of the clock beyond the skew.
    ExpectExactlyCaught(Inject(seed, 20, 2, [&](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us = now + 60 * kSec + 1 + std::uniform_int_distribution<int64_t>(0, 86400 * kSec)(g);
                          return std::vector<Reading>{b};
                        }),
                        "future", "[validation.default]\nfuture = { skew = \"1m\" }\n", now);
    // A 1970 clock.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us = std::uniform_int_distribution<int64_t>(0, 30 * 86400 * kSec)(g);
                          return std::vector<Reading>{b};
                        }),
                        "too_old", "[validation.default]\ntoo_old = \"reject\"\n");
    // Time going backwards (between earlier readings, never on one).
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us -= kStep * std::uniform_int_distribution<int64_t>(1, 20)(g) + kStep / 2;
                          return std::vector<Reading>{b};
                        }),
                        "backwards", "[validation.default]\nbackwards = \"reject\"\n");
    // A timestamp seen before with another value: caught; seen before with the same value:
    // dropped (counted separately).
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64&) {
                          Reading b = r;
                          b.value += 0.5;
                          return std::vector<Reading>{b};
                        }),
                        "duplicate", "");
    // Spikes of 20 x min_scale over the sliding window.
    ExpectExactlyCaught(Inject(seed, 20, 12, [](const Reading& r, std::mt19937_64& g) {
                          Reading b = r;
                          b.ts_us += 1;
                          b.value += (std::uniform_int_distribution<int>(0, 1)(g) ? 20 : -20);
                          return std::vector<Reading>{b};
                        }),
                        "spike", "[validation.default]\nspike = { min_scale = 1, action = \"reject\" }\n");
    // Jumps faster than the rate allows.
    ExpectExactlyCaught(Inject(seed, 20, 2, [](const Reading& r, std::mt19937_64&) {
                          Reading b = r;
                          b.ts_us += kSec;
                          b.value += 5;  // 5 per second
                          return std::vector<Reading>{b};
                        }),
                        "rate_of_change", "[validation.default]\nrate_of_change = { max = 1, action = \"reject\" }\n");
  }
}

TEST(Property, ExactRepeatsAreDroppedNeverStoredTwice) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Injected inj = Inject(seed, 30, 2, [](const Reading& r, std::mt19937_64&) { return std::vector<Reading>{r}; });
    ManualClock clock(kT0 + kPerSensor * kStep);
    Validator v(ParseValidation(kAllRules), clock);
    std::vector<Reading> in = inj.series;
    Out o = Run(v, in);
    LONGS_EQUAL(0, o.rejected.size());
    LONGS_EQUAL(30, v.stats().duplicates_dropped);
    LONGS_EQUAL(inj.series.size() - 30, o.passed.size());
  }
}

TEST(Property, StuckRunsAreCaughtFromTheCountThReading) {
  // A run of L >= count equal readings: readings count..L of the run are caught.
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 lens(seed);
    uint64_t expected = 0;
    Injected inj = Inject(seed, 12, 40, [&](const Reading& r, std::mt19937_64&) {
      // A value off the clean series' 0.01 grid, so no clean neighbour extends the run.
      const int len = std::uniform_int_distribution<int>(1, 30)(lens);
      std::vector<Reading> run;
      for (int k = 1; k <= len; ++k) {
        Reading b = r;
        b.ts_us += k;
        b.value = r.value + 0.005;
        run.push_back(b);
      }
      // count = 8 catches readings 8..len of the run.
      expected += len >= 8 ? len - 7 : 0;
      return run;
    });
    ManualClock clock(kT0);
    Validator v(ParseValidation("[validation.default]\nstuck = { count = 8, action = \"reject\" }\n"), clock);
    std::vector<Reading> in = inj.series;
    Out o = Run(v, in);
    LONGS_EQUAL(expected, o.rejected.size());
    for (const auto& q : o.rejected) STRCMP_EQUAL("stuck", q.rule.c_str());
  }
}

TEST(Property, EachReadingIsJudgedAgainstItsOwnSensorWhateverTheOrderOfArrival) {
  // The validator guesses a reading's sensor from the order readings came in last time (a
  // SenML pack repeats its sensors in one order) before it looks the name up. Orders that keep,
  // break and change the pattern must still judge every reading against its own sensor's
  // history: per-sensor counts match the input, and a reading that would go backwards only
  // against *another* sensor's latest time passes.
  ManualClock clock(kT0 + 3600 * kSec);
  Validator v(ParseValidation("[validation.default]\nbackwards = \"reject\"\n"), clock);
  std::mt19937_64 rng(29);
  std::map<std::string, uint64_t> sent;
  std::map<std::string, int64_t> latest;
  uint64_t rejected_expected = 0;
  for (int pack = 0; pack < 400; ++pack) {
    const int n = 2 + pack % 7;
    std::vector<Reading> in;
    for (int k = 0; k < n; ++k) {
      const int s = rng() % 5 == 0 ? static_cast<int>(rng() % 9) : k;
      const std::string name = "s" + std::to_string(s);
      // Each sensor's own clock runs at its own pace, far apart from the others'.
      // A reading now and then is 3 s late: backwards against its own sensor only.
      const int64_t ts = kT0 + s * 100'000 * kSec + pack * kSec + k - (rng() % 10 == 0 ? 3 * kSec - 500 : 0);
      in.push_back(R(name, ts, k));
      ++sent[name];
      if (latest.count(name) && ts < latest[name]) ++rejected_expected;
      else latest[name] = ts;
    }
    Run(v, in);
  }
  uint64_t rejected = 0;
  for (const SensorQuality& q : v.SensorReport()) {
    LONGS_EQUAL(sent[q.sensor], q.counters.received);
    for (const auto& [rule, count] : q.counters.rejected) rejected += count;
  }
  LONGS_EQUAL(sent.size(), v.SensorReport().size());
  CHECK(rejected_expected > 0);
  LONGS_EQUAL(rejected_expected, rejected);
}
