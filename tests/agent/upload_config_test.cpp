// The [upload] keys of issue 4 (S3, delivery): parsing, errors with file:line:col, wiring into
// the sink and the upload loop.
#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/config.h"

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;

namespace {

std::string S3Config(const std::string& upload_extra) {
  return "[device]\nid = \"gw-1\"\n[buffer]\npath = \"/var/lib/edgepipe/buffer.db\"\n"
         "[upload]\nurl = \"s3://edge-data/fleet/raw/\"\n" + upload_extra + "[[source]]\ntype = \"simulator\"\n";
}

std::string ProblemsText(const ParseResult& r) {
  std::string all;
  for (const auto& p : r.problems) all += p.ToString() + "\n";
  return all;
}

}  // namespace

TEST_GROUP(UploadConfig) {};

TEST(UploadConfig, S3KeysAreReadAndRelativePathsFollowTheConfigFile) {
  ParseResult r = ParseConfigText(S3Config("endpoint = \"http://127.0.0.1:7480\"\nregion = \"eu-central-1\"\n"
                                           "addressing = \"path\"\nchecksum = \"sha256\"\n"
                                           "credentials_file = \"s3.ini\"\nprofile = \"field\"\nca_file = \"/etc/ca.pem\"\n"
                                           "tls_verify = false\nconnect_timeout = \"3s\"\nstall_timeout = \"20s\"\n"
                                           "concurrency = 4\nbandwidth_limit = \"64kB\"\n"
                                           "windows = [\"01:00-05:00\", \"22:00-23:00\"]\nwindows_timezone = \"local\"\n"
                                           "retry_budget = 3\nset_aside_dir = \"aside\"\nprobe = false\n"),
                                  "/etc/edgepipe/edgepipe.toml");
  CHECK_TRUE_TEXT(r.config.has_value(), ProblemsText(r).c_str());
  const UploadConfig& u = r.config->upload;
  STRCMP_EQUAL("s3", u.scheme.c_str());
  STRCMP_EQUAL("edge-data", u.path.c_str());
  STRCMP_EQUAL("fleet/raw", u.prefix.c_str());
  STRCMP_EQUAL("http://127.0.0.1:7480", u.endpoint.c_str());
  STRCMP_EQUAL("eu-central-1", u.region.c_str());
  CHECK(u.addressing == uploader::Addressing::kPath);
  CHECK(u.checksum == uploader::ChecksumMode::kSha256);
  STRCMP_EQUAL("/etc/edgepipe/s3.ini", u.credentials_file.c_str());
  STRCMP_EQUAL("/etc/ca.pem", u.ca_file.c_str());
  STRCMP_EQUAL("/etc/edgepipe/aside", u.set_aside_dir.c_str());
  CHECK_FALSE(u.tls_verify);
  LONGS_EQUAL(3'000'000, u.connect_timeout_us);
  LONGS_EQUAL(20'000'000, u.stall_timeout_us);
  LONGS_EQUAL(4, u.concurrency);
  LONGS_EQUAL(64'000, u.bandwidth_limit);
  LONGS_EQUAL(2, u.windows.size());
  CHECK_TRUE(u.windows_local_time);
  LONGS_EQUAL(3, u.retry_budget);
  CHECK_FALSE(u.probe);

  uploader::UploaderOptions o = MakeUploaderOptions(*r.config);
  LONGS_EQUAL(4, o.concurrency);
  LONGS_EQUAL(64'000, o.bandwidth_bytes_per_s);
  LONGS_EQUAL(3, o.poison_retry_budget);
  STRCMP_EQUAL("/etc/edgepipe/aside", o.set_aside_dir.c_str());
  CHECK_FALSE(o.windows.always_open());
  CHECK_FALSE(o.probe);
}

TEST(UploadConfig, DefaultsAreSafe) {
  ParseResult r = ParseConfigText(S3Config(""), "/etc/edgepipe/edgepipe.toml");
  CHECK_TRUE_TEXT(r.config.has_value(), ProblemsText(r).c_str());
  const UploadConfig& u = r.config->upload;
  CHECK_TRUE(u.tls_verify);
  CHECK(u.checksum == uploader::ChecksumMode::kContentMd5);
  CHECK(u.addressing == uploader::Addressing::kAuto);
  STRCMP_EQUAL("us-east-1", u.region.c_str());
  uploader::UploaderOptions o = MakeUploaderOptions(*r.config);
  STRCMP_EQUAL("/var/lib/edgepipe/set-aside", o.set_aside_dir.c_str());
  CHECK_TRUE(o.windows.always_open());
  LONGS_EQUAL(0, o.bandwidth_bytes_per_s);
  CHECK_TRUE(o.probe);
}

TEST(UploadConfig, BadValuesAreReportedWithTheirPlace) {
  struct Case {
    std::string extra;
    int line;
    std::string needle;
  } cases[] = {
      {"endpoint = \"127.0.0.1:7480\"\n", 7, "needs a scheme"},
      {"endpoint = \"https://s3.example.com/bucket\"\n", 7, "without a path"},
      {"region = \"EU West\"\n", 7, "lower-case"},
      {"addressing = \"vhost\"\n", 7, "is not one of auto, path, virtual"},
      {"checksum = \"crc32\"\n", 7, "content-md5"},
      {"windows = [\"01:00-05:00\", \"5pm-6pm\"]\n", 7, "windows[1]: upload window \"5pm-6pm\""},
      {"concurrency = 0\n", 7, "concurrency"},
      {"bandwidth_limit = \"fast\"\n", 7, "bandwidth_limit"},
  };
  for (const Case& c : cases) {
    ParseResult r = ParseConfigText(S3Config(c.extra), "t.toml");
    CHECK_FALSE_TEXT(r.config.has_value(), c.extra.c_str());
    if (r.problems.size() != 1 || r.problems[0].line != c.line || r.problems[0].message.find(c.needle) == std::string::npos)
      FAIL((c.extra + " gave:\n" + ProblemsText(r)).c_str());
  }
}

TEST(UploadConfig, S3OnlyKeysWithAFileDestinationAreFlagged) {
  ParseResult r = ParseConfigText("[device]\nid = \"gw-1\"\n[upload]\nurl = \"file:///tmp/outbox\"\n"
                                  "endpoint = \"http://127.0.0.1:7480\"\ntls_verify = false\n[[source]]\ntype = \"simulator\"\n",
                                  "t.toml");
  CHECK_FALSE(r.config.has_value());
  LONGS_EQUAL(2, r.problems.size());
  CHECK(r.problems[0].message.find("only applies to s3://") != std::string::npos);
  LONGS_EQUAL(5, r.problems[0].line);
  LONGS_EQUAL(6, r.problems[1].line);
}

TEST(UploadConfig, MakeSinkBuildsAnS3SinkForS3Urls) {
  ParseResult r = ParseConfigText(S3Config("endpoint = \"http://127.0.0.1:7480\"\n"), "t.toml");
  CHECK_TRUE(r.config.has_value());
  Result<std::unique_ptr<uploader::Sink>> sink = MakeSink(r.config->upload, RealClock::Default(), "gw-1");
  CHECK_TRUE(sink.ok());
  const std::string d = (*sink)->Describe();
  CHECK(d.find("s3://edge-data at http://127.0.0.1:7480 (path-style, region us-east-1)") != std::string::npos);
}
