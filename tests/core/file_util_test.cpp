#include "edgepipe/core/file_util.h"

#include <cerrno>
#include <string>

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using edgepipe::testing::TempDir;

TEST_GROUP(ReadWholeFile) {
  TempDir dir;
};

TEST(ReadWholeFile, ReturnsEveryByteOfAFileLargerThanOneRead) {
  std::string data(200'000, 'x');
  data[0] = '\0';
  data[131'072] = '\n';  // across the 64 KiB reads
  data.back() = 'z';
  edgepipe::testing::WriteFile(dir.Join("f"), data);
  int err = -1;
  Result<std::string> r = ReadWholeFile(dir.Join("f"), &err);
  CHECK_TRUE(r.ok());
  CHECK_TRUE(*r == data);
  LONGS_EQUAL(0, err);
  edgepipe::testing::WriteFile(dir.Join("empty"), "");
  r = ReadWholeFile(dir.Join("empty"));
  CHECK_TRUE(r.ok() && r->empty());
}

TEST(ReadWholeFile, AMissingFileIsNotFoundWithItsPath) {
  int err = 0;
  Result<std::string> r = ReadWholeFile(dir.Join("nope"), &err);
  CHECK(r.status().code() == StatusCode::kNotFound);
  LONGS_EQUAL(ENOENT, err);
  STRCMP_EQUAL(("cannot read " + dir.Join("nope") + ": No such file or directory").c_str(), r.status().message().c_str());
}

TEST(ReadWholeFile, AReadErrorIsAnErrorNotAShortText) {
  // A directory opens but cannot be read (EISDIR); /proc/self/mem fails its first read at
  // offset 0 with EIO — what std::ifstream would have turned into an empty text.
  int err = 0;
  Result<std::string> r = ReadWholeFile(dir.path(), &err);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  LONGS_EQUAL(EISDIR, err);
  r = ReadWholeFile("/proc/self/mem", &err);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  LONGS_EQUAL(EIO, err);
  CHECK(r.status().message().find("/proc/self/mem: Input/output error") != std::string::npos);
}
