#include "edgepipe/agent/config.h"

#include <cstdlib>
#include <filesystem>

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;

namespace {

const char* kMinimal = R"([device]
id = "gw-1"

[upload]
url = "file:///var/lib/edgepipe/outbox"

[[source]]
type = "simulator"
)";

// Returns the problems as "line:col: message" lines (without the file name).
std::vector<std::string> Problems(const std::string& text) {
  ParseResult r = ParseConfigText(text, "test.toml");
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(std::to_string(p.line) + ":" + std::to_string(p.column) + ": " + p.message);
  if (r.config && !r.problems.empty()) FAIL("config returned together with problems");
  return out;
}

// Asserts that exactly one problem is reported, at `line`, containing `needle`.
void ExpectOne(const std::string& text, int line, const std::string& needle) {
  ParseResult r = ParseConfigText(text, "test.toml");
  CHECK_FALSE(r.config.has_value());
  if (r.problems.size() != 1) {
    std::string all;
    for (auto& p : r.problems) all += p.ToString() + "\n";
    FAIL(("expected exactly one problem, got " + std::to_string(r.problems.size()) + ":\n" + all).c_str());
  }
  const ConfigProblem& p = r.problems[0];
  STRCMP_EQUAL("test.toml", p.file.c_str());
  LONGS_EQUAL(line, p.line);
  CHECK(p.column >= 1);
  if (p.message.find(needle) == std::string::npos)
    FAIL(("message '" + p.message + "' does not contain '" + needle + "'").c_str());
}

std::string With(const std::string& extra) { return std::string(kMinimal) + extra; }

}  // namespace

TEST_GROUP(Config){};

TEST(Config, MinimalConfigHasDocumentedDefaults) {
  ParseResult r = ParseConfigText(kMinimal, "test.toml");
  CHECK_TRUE(r.problems.empty());
  const Config& c = *r.config;
  STRCMP_EQUAL("gw-1", c.device.id.c_str());
  STRCMP_EQUAL("/var/lib/edgepipe/buffer.db", c.buffer.path.c_str());
  CHECK(c.buffer.sync == buffer::SyncMode::kFull);
  CHECK(c.buffer.on_full == buffer::OnFull::kDropOldest);
  LONGS_EQUAL(512ull << 20, c.buffer.max_size_bytes);
  STRCMP_EQUAL("file", c.upload.scheme.c_str());
  STRCMP_EQUAL("/var/lib/edgepipe/outbox", c.upload.path.c_str());
  LONGS_EQUAL(1, c.sources.size());
  STRCMP_EQUAL("simulator", c.sources[0].name.c_str());
  STRCMP_EQUAL("simulator", c.sources[0].simulator.name.c_str());
}

TEST(Config, HumanUnitsAreParsed) {
  ParseResult r = ParseConfigText(With(R"(
[buffer]
max_size = "64MiB"
commit_interval = "250ms"
[batch]
max_bytes = "2MB"
max_age = "1h30m"
)"), "t.toml");
  CHECK_TRUE(r.problems.empty());
  LONGS_EQUAL(64ull << 20, r.config->buffer.max_size_bytes);
  LONGS_EQUAL(250'000, r.config->buffer.commit_interval_us);
  LONGS_EQUAL(2'000'000, r.config->batch.max_bytes);
  LONGS_EQUAL(5'400'000'000LL, r.config->batch.max_age_us);
}

TEST(Config, UnitHelpers) {
  LONGS_EQUAL(512ull << 20, *ParseSize("512MiB"));
  LONGS_EQUAL(64000, *ParseSize("64kB"));
  LONGS_EQUAL(1000, *ParseSize("1000"));
  CHECK_FALSE(ParseSize("12 potatoes").has_value());
  CHECK_FALSE(ParseSize("MiB").has_value());
  CHECK_FALSE(ParseSize("99999999999999999999TiB").has_value());
  LONGS_EQUAL(250'000, *ParseDuration("250ms"));
  LONGS_EQUAL(300'000'000, *ParseDuration("5m"));
  LONGS_EQUAL(90'061'000'000LL, *ParseDuration("1d1h1m1s"));
  CHECK_FALSE(ParseDuration("5").has_value());
  CHECK_FALSE(ParseDuration("5 s").has_value());
  CHECK_FALSE(ParseDuration("").has_value());
  STRCMP_EQUAL("1h30m", FormatDuration(5'400'000'000LL).c_str());
  STRCMP_EQUAL("512MiB", FormatSize(512ull << 20).c_str());
  for (int64_t us : {1LL, 999LL, 1000LL, 61'000'000LL, 86'400'000'123LL}) LONGS_EQUAL(us, *ParseDuration(FormatDuration(us)));
}

TEST(Config, UnknownKeySuggestsTheClosestKnownOne) {
  ExpectOne(With("[buffer]\nmax_sise = \"1GiB\"\n"), 10, "unknown key 'buffer.max_sise'; did you mean 'max_size'?");
  ExpectOne(With("[bufer]\npath = \"x\"\n"), 9, "did you mean 'buffer'?");
}

TEST(Config, UnknownKeyWithNothingCloseListsTheAcceptedKeys) {
  ExpectOne(With("[batch]\nfrobnicate = 1\n"), 10, "accepts: max_readings, max_bytes, max_age");
}

TEST(Config, WrongTypesNameTheExpectedTypeAndTheValue) {
  ExpectOne(With("[buffer]\ncommit_readings = \"many\"\n"), 10,
            "buffer.commit_readings: expected an integer, got string \"many\"");
  ExpectOne(With("[buffer]\nmax_size = \"12 potatoes\"\n"), 10, "expected a size such as \"512MiB\"");
  ExpectOne(With("[buffer]\ncommit_interval = 5\n"), 10, "a bare number is ambiguous: add a unit");
}

TEST(Config, OutOfRangeValuesSayWhatIsAllowed) {
  ExpectOne("[device]\nid = \"gw\"\n[upload]\nurl = \"file:///x\"\nzstd_level = 42\n[[source]]\ntype = \"simulator\"\n", 5,
            "upload.zstd_level: 42 is out of range; expected 1 to 19");
  ExpectOne(With("[batch]\nmax_readings = 0\n"), 10, "batch.max_readings: 0 is out of range; expected 1 to 10000000");
  ExpectOne(With("[buffer]\nmax_size = \"10KiB\"\n"), 10, "buffer.max_size: 10KiB is out of range; expected 1MiB to 1TiB");
}

TEST(Config, EnumsListTheChoices) {
  ExpectOne(With("[buffer]\nsync = \"ful\"\n"), 10, "\"ful\" is not one of full, normal; did you mean \"full\"?");
}

TEST(Config, MissingRequiredKeysAndSections) {
  auto p = Problems("[device]\nlabels = { a = \"b\" }\n");
  LONGS_EQUAL(3, p.size());
  CHECK(p[0].find("1:1: missing required key 'device.id'") == 0);
  CHECK(p[1].find("missing required section [upload]") != std::string::npos);
  CHECK(p[2].find("no [[source]] configured") != std::string::npos);
}

TEST(Config, AllProblemsAreReportedAtOnceInFileOrder) {
  auto p = Problems(R"([device]
id = "bad id with spaces"
[buffer]
sync = "sometimes"
max_size = -5
commit_interval = "fast"
[upload]
url = "ftp://example.com/x"
format = "parquet"
key_template = "{prefix}/{device}.{ext}"
[[source]]
type = "simulatr"
[[source]]
type = "simulator"
interval = "0ms"
unknown = true
)");
  LONGS_EQUAL(10, p.size());
  CHECK(p[0].find("2:6: device.id:") == 0);
  CHECK(p[1].find("4:8: buffer.sync:") == 0);
  CHECK(p[2].find("5:12: buffer.max_size:") == 0);
  CHECK(p[3].find("6:19: buffer.commit_interval:") == 0);
  CHECK(p[4].find("8:7: upload.url: unsupported scheme") == 0);
  CHECK(p[5].find("9:10: upload.format:") == 0);
  CHECK(p[6].find("10:16: upload.key_template: the template must contain {batch}") == 0);
  CHECK(p[7].find("12:8: source[0].type: unknown source type \"simulatr\"; did you mean \"simulator\"?") == 0);
  CHECK(p[8].find("15:12: source[1].interval: 0s is out of range") == 0);
  CHECK(p[9].find("16:1: unknown key 'source[1].unknown'") == 0);
}

TEST(Config, SyntaxErrorsCarryTheirPosition) {
  ExpectOne("[device]\nid = \"x\n", 2, "TOML syntax error");
  ExpectOne("[device]\nid = \"x\"\n[device]\n", 3, "TOML syntax error");
}

TEST(Config, DuplicateSourceNamesAreRejected) {
  ExpectOne(With("[[source]]\ntype = \"simulator\"\nname = \"simulator\"\n"), 11, "duplicate source name \"simulator\"");
}

TEST(Config, RepeatedSourcesOfOneTypeGetDistinctDefaultNames) {
  ParseResult r = ParseConfigText(With("[[source]]\ntype = \"simulator\"\n"), "t.toml");
  CHECK_TRUE(r.problems.empty());
  STRCMP_EQUAL("simulator", r.config->sources[0].name.c_str());
  STRCMP_EQUAL("simulator1", r.config->sources[1].name.c_str());
}

TEST(Config, SimulatorSensorTables) {
  ParseResult r = ParseConfigText(R"([device]
id = "gw"
[upload]
url = "s3://my-bucket/raw/data/"
[[source]]
type = "simulator"
interval = "250ms"
[[source.sensor]]
name = "boiler"
unit = "Cel"
base = 60
decimals = 1
[[source.sensor]]
name = "flow"
bogus = 1
)", "t.toml");
  LONGS_EQUAL(1, r.problems.size());
  STRCMP_EQUAL("unknown key 'source[0].sensor[1].bogus' ([[source.sensor]] (simulator) accepts: name, unit, base, amplitude, period_s, noise, decimals)",
               r.problems[0].message.c_str());
  LONGS_EQUAL(15, r.problems[0].line);
}

TEST(Config, S3UrlIsSplitIntoBucketAndPrefix) {
  ParseResult r = ParseConfigText(R"([device]
id = "gw"
[upload]
url = "s3://my-bucket/raw/data/"
[[source]]
type = "simulator"
)", "t.toml");
  CHECK_TRUE(r.problems.empty());
  STRCMP_EQUAL("s3", r.config->upload.scheme.c_str());
  STRCMP_EQUAL("my-bucket", r.config->upload.path.c_str());
  STRCMP_EQUAL("raw/data", r.config->upload.prefix.c_str());
  ExpectOne("[device]\nid = \"gw\"\n[upload]\nurl = \"s3://A_b/x\"\n[[source]]\ntype = \"simulator\"\n", 4,
            "is not a valid S3 bucket name");
  ExpectOne("[device]\nid = \"gw\"\n[upload]\nurl = \"file://relative/dir\"\n[[source]]\ntype = \"simulator\"\n", 4,
            "needs an absolute path");
}

TEST(Config, RelativeBufferPathIsRelativeToTheConfigFile) {
  TempDir dir;
  WriteFile(dir.Join("conf/edgepipe.toml"), With("[buffer]\npath = \"state/buffer.db\"\n"));
  ParseResult r = LoadConfigFile(dir.Join("conf/edgepipe.toml"));
  CHECK_TRUE(r.problems.empty());
  STRCMP_EQUAL(dir.Join("conf/state/buffer.db").c_str(), r.config->buffer.path.c_str());
}

TEST(Config, UnreadableFileIsOneProblem) {
  ParseResult r = LoadConfigFile("/nonexistent/edgepipe.toml");
  LONGS_EQUAL(1, r.problems.size());
  CHECK(r.problems[0].message.find("cannot read the configuration file: No such file") == 0);
}

TEST(Config, LabelsAreSortedAndChecked) {
  ParseResult r = ParseConfigText(With("[device]\n"), "t.toml");  // duplicate table -> syntax error
  CHECK_FALSE(r.config.has_value());
  r = ParseConfigText(R"([device]
id = "gw"
labels = { site = "a", line = "3" }
[upload]
url = "file:///x"
[[source]]
type = "simulator"
)", "t.toml");
  CHECK_TRUE(r.problems.empty());
  STRCMP_EQUAL("line", r.config->device.labels[0].first.c_str());
  STRCMP_EQUAL("site", r.config->device.labels[1].first.c_str());
  ExpectOne("[device]\nid = \"gw\"\nlabels = { \"bad-key\" = \"x\" }\n[upload]\nurl = \"file:///x\"\n[[source]]\ntype = \"simulator\"\n",
            3, "label names are letters, digits and '_'");
}

TEST(Config, SecretsComeFromFilesOrSystemdCredentials) {
  TempDir dir;
  WriteFile(dir.Join("secret"), "s3cret\n");
  SecretRef f;
  f.file = dir.Join("secret");
  STRCMP_EQUAL("s3cret", LoadSecret(f)->c_str());
  SecretRef c;
  c.credential = "secret";
  unsetenv("CREDENTIALS_DIRECTORY");
  Result<std::string> missing = LoadSecret(c);
  CHECK(missing.status().code() == StatusCode::kFailedPrecondition);
  CHECK(missing.status().message().find("LoadCredential=") != std::string::npos);
  setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  STRCMP_EQUAL("s3cret", LoadSecret(c)->c_str());
  unsetenv("CREDENTIALS_DIRECTORY");
  SecretRef nofile;
  nofile.file = dir.Join("nope");
  Result<std::string> r = LoadSecret(nofile);
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message().find("s3cret") == std::string::npos);
}

TEST(Config, ABatchSmallerThanTwoGroupCommitsIsAWarningAtTheKeyThatSetsIt) {
  // Set in the file: the warning points at batch.max_readings; the configuration still loads.
  ParseResult r = ParseConfigText(With("[buffer]\ncommit_readings = 10000\n[batch]\nmax_readings = 5000\n"), "test.toml");
  CHECK_TRUE(r.problems.empty());
  CHECK_TRUE(r.config.has_value());
  LONGS_EQUAL(5000, r.config->batch.max_readings);
  LONGS_EQUAL(1, r.warnings.size());
  STRCMP_EQUAL("test.toml", r.warnings[0].file.c_str());
  LONGS_EQUAL(12, r.warnings[0].line);
  LONGS_EQUAL(16, r.warnings[0].column);  // the value, as for problems
  STRCMP_CONTAINS("warning: batch.max_readings (5000) is less than twice buffer.commit_readings (10000)",
                  r.warnings[0].message.c_str());
  STRCMP_CONTAINS("at least 20000", r.warnings[0].message.c_str());

  // Only the group set (the batch keeps its default of 20,000): the warning points at the group.
  r = ParseConfigText(With("[buffer]\ncommit_readings = 10001\n"), "test.toml");
  CHECK_TRUE(r.config.has_value());
  LONGS_EQUAL(1, r.warnings.size());
  LONGS_EQUAL(10, r.warnings[0].line);
  STRCMP_CONTAINS("batch.max_readings (20000) is less than twice buffer.commit_readings (10001)",
                  r.warnings[0].message.c_str());

  // Exactly twice, and the defaults, are fine.
  r = ParseConfigText(With("[buffer]\ncommit_readings = 10000\n"), "test.toml");
  CHECK_TRUE(r.config.has_value());
  LONGS_EQUAL(0, r.warnings.size());
  r = ParseConfigText(kMinimal, "test.toml");
  LONGS_EQUAL(0, r.warnings.size());
  // A configuration with problems has no warnings to add to them.
  r = ParseConfigText(With("[batch]\nmax_readings = 5000\nmax_age = \"soon\"\n"), "test.toml");
  CHECK_FALSE(r.config.has_value());
  LONGS_EQUAL(0, r.warnings.size());
}

TEST(Config, EmbeddedDefaultIsValid) {
  ParseResult r = ParseConfigText(DefaultConfigText("/tmp/state"), "<embedded>");
  CHECK_TRUE(r.problems.empty());
  CHECK_TRUE(r.warnings.empty());
  STRCMP_EQUAL("/tmp/state/buffer.db", r.config->buffer.path.c_str());
  STRCMP_EQUAL("/tmp/state/outbox", r.config->upload.path.c_str());
}

TEST(Config, ShippedExamplesAreValid) {
  for (const auto& entry : std::filesystem::directory_iterator(SourceDir() + "/examples")) {
    if (entry.path().extension() != ".toml") continue;
    ParseResult r = LoadConfigFile(entry.path().string());
    std::string all;
    for (auto& p : r.problems) all += p.ToString() + "\n";
    for (auto& p : r.warnings) all += p.ToString() + "\n";
    if (!r.problems.empty() || !r.warnings.empty()) FAIL(all.c_str());
  }
}

TEST(Config, DocsMatchTheConfigTable) {
  std::string doc = ReadFile(SourceDir() + "/docs/configuration.md");
  if (doc != ConfigReferenceMarkdown())
    FAIL("docs/configuration.md is out of date: regenerate it with "
         "`build/bin/edgepipe config-reference > docs/configuration.md`");
}
