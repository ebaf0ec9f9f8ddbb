// The [validation] configuration: the TOML shape, defaults, merging of per-sensor tables and
// problems reported with file:line:col.
#include <string>
#include <vector>

#include "edgepipe/agent/config.h"
#include "validation/glob.h"
#include "validation/rules.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;

namespace {

std::string With(const std::string& validation) {
  return std::string(R"([device]
id = "gw-1"
[upload]
url = "file:///tmp/outbox"
[[source]]
type = "simulator"
)") + validation;
}

// Header above has 6 lines; `line` below is counted within `validation` (1-based) + 6.
constexpr int kHeaderLines = 6;

ValidationConfig Parse(const std::string& validation) {
  ParseResult r = ParseConfigText(With(validation), "v.toml");
  if (!r.config) {
    std::string all;
    for (auto& p : r.problems) all += p.ToString() + "\n";
    FAIL(("unexpected problems:\n" + all).c_str());
  }
  return r.config->validation;
}

void ExpectProblem(const std::string& validation, int line, const std::string& needle) {
  ParseResult r = ParseConfigText(With(validation), "v.toml");
  CHECK_FALSE(r.config.has_value());
  std::string all;
  for (auto& p : r.problems) {
    all += p.ToString() + "\n";
    if (p.line == line + kHeaderLines && p.column >= 1 && p.message.find(needle) != std::string::npos) return;
  }
  FAIL(("no problem at line " + std::to_string(line + kHeaderLines) + " containing '" + needle + "'; got:\n" + all).c_str());
}

std::vector<size_t> Hits(const ValidationConfig& v, const std::string& sensor) {
  std::vector<size_t> hits;
  for (size_t i = 0; i < v.sensors.size(); ++i)
    for (const auto& p : v.sensors[i].match)
      if (validation::GlobMatch(p, sensor)) {
        hits.push_back(i);
        break;
      }
  return hits;
}

const char* kExample = R"(
[validation]
duplicate_by = "either"

[validation.default]
too_old = { floor = "2010-01-01" }
future = "reject"

[[validation.sensor]]
match = ["boiler/*", "hvac/t-?"]
range = { min = -40, max = 150, action = "flag" }
unit = { from = "[degF]", to = "Cel" }
resolution = 0.1

[[validation.sensor]]
match = "boiler/t-17"
calibration = { scale = 1.02, offset = -0.3 }
stuck = { count = 5, duration = "2h" }
spike = { window = 7, threshold = 4 }
range = { action = "off" }

[[validation.sensor]]
match = "aq/*"
sentinel = [-200]
type = { expect = "number" }
rate_of_change = { max = 2.5, action = "reject" }
backwards = "flag"

[validation.sensor.too_old]
floor = 2004-01-01

[validation.clock]
sources = ["sim*", "serial0"]
max_hold = "6h"
)";

}  // namespace

TEST_GROUP(ValidationConfig){};

TEST(ValidationConfig, DefaultsKeepOnlyFiniteAndDuplicateOn) {
  ValidationConfig v = Parse("");
  CHECK(v.non_finite == RuleAction::kReject);
  CHECK(v.duplicate == RuleAction::kReject);
  CHECK(v.clock.mode == ClockMode::kOff);
  validation::CompiledRules c = validation::Compile(v, {});
  CHECK(c.finite == RuleAction::kReject);
  CHECK(c.duplicate == RuleAction::kReject);
  CHECK(c.range == RuleAction::kOff);
  CHECK(c.type == RuleAction::kOff);
  CHECK(c.future == RuleAction::kOff);
  CHECK_FALSE(c.has_transform);
  CHECK_FALSE(c.has_value_rules);
}

TEST(ValidationConfig, ExampleParsesAndMergesInFileOrder) {
  ValidationConfig v = Parse(kExample);
  CHECK(v.duplicate_by == DuplicateKey::kEither);
  LONGS_EQUAL(3, v.sensors.size());
  LONGS_EQUAL(2, v.sensors[0].match.size());
  STRCMP_EQUAL("v.toml:15", v.sensors[0].where.c_str());

  // boiler/t-17: both tables; the later one switches range off and adds calibration, stuck, spike.
  std::vector<size_t> hits = Hits(v, "boiler/t-17");
  LONGS_EQUAL(2, hits.size());
  validation::CompiledRules c = validation::Compile(v, hits);
  CHECK(c.range == RuleAction::kOff);
  CHECK(c.stuck == RuleAction::kFlag);
  LONGS_EQUAL(5, c.stuck_p.count);
  LONGS_EQUAL(2ll * 3600 * 1'000'000, c.stuck_p.duration_us);
  LONGS_EQUAL(7, c.spike_p.window);
  DOUBLES_EQUAL(4.0, c.spike_p.threshold, 0);
  LONGS_EQUAL(2, c.calibration.size());
  DOUBLES_EQUAL(-0.3, c.calibration[0], 0);
  DOUBLES_EQUAL(1.02, c.calibration[1], 0);
  STRCMP_EQUAL("Cel", c.unit_to.c_str());
  DOUBLES_EQUAL(10.0, c.resolution_pow10, 0);
  CHECK(c.future == RuleAction::kReject);  // from [validation.default]
  LONGS_EQUAL(1262304000000000ll, c.too_old_floor_us);

  // boiler/p-1: only the first table.
  c = validation::Compile(v, Hits(v, "boiler/p-1"));
  CHECK(c.range == RuleAction::kFlag);
  DOUBLES_EQUAL(-40, c.range_p.min, 0);
  CHECK(c.stuck == RuleAction::kOff);
  CHECK(c.calibration.empty());

  // hvac/t-1 matches "hvac/t-?", hvac/t-12 does not.
  LONGS_EQUAL(1, Hits(v, "hvac/t-1").size());
  LONGS_EQUAL(0, Hits(v, "hvac/t-12").size());

  // aq/*: sentinel shorthand, type, rate, backwards shorthand, sub-table form of too_old.
  c = validation::Compile(v, Hits(v, "aq/CO"));
  CHECK(c.sentinel == RuleAction::kReject);
  LONGS_EQUAL(1, c.sentinels.size());
  DOUBLES_EQUAL(-200, c.sentinels[0], 0);
  CHECK(c.type == RuleAction::kReject);
  CHECK(c.rate == RuleAction::kReject);
  DOUBLES_EQUAL(2.5, c.rate_p.max_per_second, 0);
  CHECK(c.backwards == RuleAction::kFlag);
  LONGS_EQUAL(1072915200000000ll, c.too_old_floor_us);  // 2004-01-01 replaces the default's 2010

  LONGS_EQUAL(2, v.clock.sources.size());
  LONGS_EQUAL(6ll * 3600 * 1'000'000, v.clock.max_hold_us);
}

TEST(ValidationConfig, IdentityCalibrationIsDropped) {
  ValidationConfig v = Parse(R"(
[validation.default]
calibration = { scale = 1.0, offset = 0 }
)");
  validation::CompiledRules c = validation::Compile(v, {});
  CHECK(c.calibration.empty());
  CHECK_FALSE(c.has_transform);
}

TEST(ValidationConfig, ProblemsNameTheLine) {
  ExpectProblem(R"(
[[validation.sensor]]
range = { min = 0 }
)", 2, "missing required key 'validation.sensor[0].match'");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a/[bc"
)", 3, "is not closed");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
range = { min = 10, max = 0 }
)", 4, "min must be below max");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
range = { action = "flag" }
)", 4, "give min, max or both");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
range = "reject"
)", 4, "expected a table such as range = {");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
stuck = { delta = 0.1 }
)", 4, "give count, duration or both");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
spike = { window = 1 }
)", 4, "out of range");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
spike = { widnow = 9 }
)", 4, "did you mean 'window'");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
unit = { from = "%RH", to = "Cel" }
)", 4, "unknown unit \"%RH\"");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
unit = { from = "hPa", to = "Cel" }
)", 4, "cannot convert \"hPa\" (pressure) to \"Cel\" (temperature)");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
unit = { to = "Celsius" }
)", 4, "unknown unit \"Celsius\"");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
calibration = { scale = 2, polynomial = [0, 1] }
)", 4, "not both");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
too_old = { floor = "last tuesday" }
)", 4, "expected a date");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
backwards = "sometimes"
)", 4, "is not one of reject, flag, off");
  ExpectProblem(R"(
[[validation.sensor]]
match = "a"
sentinel = ["NA"]
)", 4, "expected a number");
  ExpectProblem(R"(
[validation.default]
match = "a"
)", 3, "applies to every sensor");
  ExpectProblem(R"(
[validation.clock]
mode = "ntp"
)", 3, "is not one of off, auto, adjtimex, timesyncd");
  ExpectProblem(R"(
[validation]
duplicate_by = "seq"
)", 3, "is not one of timestamp, sequence, either");
}

TEST(ValidationConfig, EveryProblemIsReportedAtOnce) {
  ParseResult r = ParseConfigText(With(R"(
[[validation.sensor]]
match = "a"
range = { min = 1, max = 0 }
resolution = -1
[[validation.sensor]]
spike = { threshold = 0 }
)"), "v.toml");
  CHECK_FALSE(r.config.has_value());
  LONGS_EQUAL(4, r.problems.size());
}

TEST(ValidationConfig, HoldPathIsRelativeToTheConfigFile) {
  ParseResult r = ParseConfigText(With(R"(
[validation.clock]
hold_path = "state/hold"
)"), "/etc/edgepipe/e.toml");
  CHECK_TRUE(r.config.has_value());
  STRCMP_EQUAL("/etc/edgepipe/state/hold", r.config->validation.clock.hold_path.c_str());
}

TEST_GROUP(Glob){};

TEST(Glob, MatchesStarsQuestionMarksAndSets) {
  using validation::GlobMatch;
  CHECK_TRUE(GlobMatch("*", "anything/at/all"));
  CHECK_TRUE(GlobMatch("*", ""));
  CHECK_TRUE(GlobMatch("boiler/*", "boiler/t-17"));
  CHECK_TRUE(GlobMatch("boiler/*", "boiler/"));
  CHECK_FALSE(GlobMatch("boiler/*", "boiler"));
  CHECK_TRUE(GlobMatch("*/temp", "a/b/temp"));
  CHECK_TRUE(GlobMatch("a*b*c", "a-x-b-y-c"));
  CHECK_FALSE(GlobMatch("a*b*c", "a-x-b-y-d"));
  CHECK_TRUE(GlobMatch("t-?", "t-1"));
  CHECK_FALSE(GlobMatch("t-?", "t-10"));
  CHECK_TRUE(GlobMatch("t-[0-9]", "t-7"));
  CHECK_FALSE(GlobMatch("t-[0-9]", "t-x"));
  CHECK_TRUE(GlobMatch("t-[!0-9]", "t-x"));
  CHECK_TRUE(GlobMatch("[]]", "]"));
  CHECK_TRUE(GlobMatch("a\\*", "a*"));
  CHECK_FALSE(GlobMatch("a\\*", "ab"));
  CHECK_TRUE(GlobMatch("Montrose Beach/*", "Montrose Beach/Turbidity"));
  CHECK_TRUE(GlobMatch("**", "x"));
  CHECK_FALSE(GlobMatch("abc", "ab"));
  CHECK_FALSE(GlobMatch("ab", "abc"));
  // Many stars against a long text: one backtrack point keeps this quadratic at worst.
  std::string text(2000, 'a');
  CHECK_FALSE(GlobMatch("*a*a*a*a*a*a*a*b", text));
}

TEST(Glob, MalformedPatternsAreExplained) {
  CHECK(validation::CheckGlob("").find("empty") != std::string::npos);
  CHECK(validation::CheckGlob("a[b").find("not closed") != std::string::npos);
  CHECK(validation::CheckGlob("a\\").find("lone") != std::string::npos);
  STRCMP_EQUAL("", validation::CheckGlob("a/[bc]/*").c_str());
}
