#include "edgepipe/core/status.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;

TEST_GROUP(Status){};

TEST(Status, OkIsOkAndPrintsOk) {
  Status s;
  CHECK_TRUE(s.ok());
  STRCMP_EQUAL("OK", s.ToString().c_str());
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = UnavailableError("connection refused");
  CHECK_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kUnavailable);
  STRCMP_EQUAL("Unavailable: connection refused", s.ToString().c_str());
}

TEST(Status, OnlyUnavailableIsRetryable) {
  CHECK_TRUE(IsRetryable(UnavailableError("x")));
  CHECK_FALSE(IsRetryable(FailedPreconditionError("x")));
  CHECK_FALSE(IsRetryable(InvalidArgumentError("x")));
  CHECK_FALSE(IsRetryable(DataLossError("x")));
  CHECK_FALSE(IsRetryable(Status::Ok()));
}

TEST(Status, ResultHoldsValueOrStatus) {
  Result<int> v = 42;
  CHECK_TRUE(v.ok());
  LONGS_EQUAL(42, *v);
  Result<int> e = NotFoundError("nope");
  CHECK_FALSE(e.ok());
  CHECK(e.status().code() == StatusCode::kNotFound);
}
