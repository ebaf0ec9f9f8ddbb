#include <sys/stat.h>

#include "edgepipe/uploader/sink.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;
using namespace edgepipe::testing;

TEST_GROUP(FileSink) {
  TempDir dir;
};

TEST(FileSink, WritesTheObjectUnderItsKeyAndLeavesNoTempFile) {
  FileSink sink(dir.Join("outbox") + "/");
  Object o;
  o.key = "raw/device=gw/date=2026-01-01/hour=00/gw-1.ndjson.zst";
  o.body = std::string("\x28\xb5\x2f\xfd payload", 12);
  CHECK_TRUE(sink.Put(o).ok());
  STRCMP_EQUAL(o.body.c_str(), ReadFile(dir.Join("outbox/" + o.key)).c_str());
  auto files = ListFiles(dir.Join("outbox"), /*with_temp=*/true);
  LONGS_EQUAL(1, files.size());
  STRCMP_EQUAL(("file://" + dir.Join("outbox")).c_str(), sink.Describe().c_str());
}

TEST(FileSink, ARetryOverwritesTheSameObject) {
  FileSink sink(dir.path());
  Object o;
  o.key = "a/b.zst";
  o.body = "first version, longer";
  CHECK_TRUE(sink.Put(o).ok());
  o.body = "second";
  CHECK_TRUE(sink.Put(o).ok());
  STRCMP_EQUAL("second", ReadFile(dir.Join("a/b.zst")).c_str());
  LONGS_EQUAL(1, ListFiles(dir.path(), /*with_temp=*/true).size());
}

TEST(FileSink, UnwritableDestinationIsAConfigurationProblem) {
  if (geteuid() == 0) {
    // root ignores directory permissions; use a path under a regular file instead.
    WriteFile(dir.Join("file"), "x");
    FileSink sink(dir.Join("file/outbox"));
    Object o;
    o.key = "k.zst";
    o.body = "x";
    Result<PutResult> r = sink.Put(o);
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK(r.status().message().find("not a directory") != std::string::npos);
    return;
  }
  mkdir(dir.Join("ro").c_str(), 0500);
  FileSink sink(dir.Join("ro"));
  Object o;
  o.key = "sub/k.zst";
  o.body = "x";
  Result<PutResult> r = sink.Put(o);
  CHECK_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
}

TEST(FileSink, RefusesKeysThatEscapeTheOutbox) {
  FileSink sink(dir.path());
  Object o;
  o.key = "../escape.zst";
  o.body = "x";
  CHECK(sink.Put(o).status().code() == StatusCode::kInvalidArgument);
}
