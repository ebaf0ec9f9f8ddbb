// The S3 sink over a scripted transport: request shape, addressing, checksum modes, response
// classification, clock-skew correction, the probe. The same paths run against radosgw in
// tests/s3/.
#include "edgepipe/uploader/s3_sink.h"

#include <memory>

#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/sigv4.h"
#include "scripted_transport.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;
using edgepipe::testing::ScriptedTransport;

namespace {

class CountingCredentials final : public CredentialProvider {
 public:
  Result<Credentials> Get() override {
    ++gets;
    return MakeCredentials("AKIDTESTWXYZ", "super-secret-value", token, "test credentials");
  }
  void Invalidate() override { ++invalidations; }
  int gets = 0, invalidations = 0;
  std::string token;
};

Object MakeObject(const std::string& key, const std::string& body) {
  Object o;
  o.key = key;
  o.body = body;
  o.content_type = "application/zstd";
  o.sha256_hex = Sha256Hex(body);
  o.md5_base64 = Md5Base64(body);
  o.metadata["edgepipe-batch"] = "inst-0000000001";
  o.metadata["edgepipe-records"] = "3";
  return o;
}

}  // namespace

TEST_GROUP(S3Sink) {
  ManualClock clock{UsFromCivil(CivilTime{2026, 11, 26, 4, 5, 49, 0}), 1'000'000};
  ScriptedTransport* transport = nullptr;
  std::shared_ptr<CountingCredentials> creds = std::make_shared<CountingCredentials>();

  std::unique_ptr<S3Sink> Make(S3Options o) {
    auto t = std::make_unique<ScriptedTransport>();
    transport = t.get();
    return std::make_unique<S3Sink>(std::move(o), std::move(t), creds, clock);
  }
  S3Options Local() {
    S3Options o;
    o.bucket = "edge-data";
    o.endpoint = "http://127.0.0.1:7480";
    return o;
  }
};

TEST(S3Sink, PutIsOneSignedRequestWithPayloadHashContentMd5AndMetadata) {
  auto sink = Make(Local());
  Object o = MakeObject("fleet/device=gw/a b+c.ndjson.zst", "compressed bytes");
  Result<PutResult> r = sink->Put(o);
  CHECK_TRUE(r.ok());
  STRCMP_EQUAL("\"etag\"", r->etag.c_str());
  auto reqs = transport->Requests();
  LONGS_EQUAL(1, reqs.size());
  const auto& q = reqs[0];
  STRCMP_EQUAL("PUT", q.method.c_str());
  STRCMP_EQUAL("http://127.0.0.1:7480/edge-data/fleet/device%3Dgw/a%20b%2Bc.ndjson.zst", q.url.c_str());
  STRCMP_EQUAL("127.0.0.1:7480", q.Header("Host").c_str());
  STRCMP_EQUAL(o.sha256_hex.c_str(), q.Header("x-amz-content-sha256").c_str());
  STRCMP_EQUAL(o.md5_base64.c_str(), q.Header("Content-MD5").c_str());
  STRCMP_EQUAL("application/zstd", q.Header("Content-Type").c_str());
  STRCMP_EQUAL("inst-0000000001", q.Header("x-amz-meta-edgepipe-batch").c_str());
  STRCMP_EQUAL("20261126T040549Z", q.Header("x-amz-date").c_str());
  CHECK(q.body == o.body);
  const std::string auth = q.Header("Authorization");
  CHECK(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDTESTWXYZ/20261126/us-east-1/s3/aws4_request", 0) == 0);
  CHECK(auth.find("content-md5") != std::string::npos && auth.find("x-amz-meta-edgepipe-batch") != std::string::npos);
  CHECK(q.Header("x-amz-security-token").empty());
  for (const auto& [k, v] : q.headers) CHECK(v.find("super-secret") == std::string::npos);
}

TEST(S3Sink, SessionTokenIsSentAndSigned) {
  creds->token = "session-token-123";
  auto sink = Make(Local());
  CHECK_TRUE(sink->Put(MakeObject("k", "b")).ok());
  auto q = transport->Requests()[0];
  STRCMP_EQUAL("session-token-123", q.Header("x-amz-security-token").c_str());
  CHECK(q.Header("Authorization").find("x-amz-security-token") != std::string::npos);
}

TEST(S3Sink, AddressingStyles) {
  S3Options o = Local();
  o.addressing = Addressing::kVirtual;
  o.endpoint = "http://localhost:7480";
  auto sink = Make(o);
  STRCMP_EQUAL("http://edge-data.localhost:7480/x/y", sink->ObjectUrl("x/y").c_str());
  CHECK_TRUE(sink->Put(MakeObject("x/y", "b")).ok());
  STRCMP_EQUAL("edge-data.localhost:7480", transport->Requests()[0].Header("Host").c_str());

  S3Options aws;
  aws.bucket = "edge-data";
  aws.region = "eu-west-1";
  STRCMP_EQUAL("https://edge-data.s3.eu-west-1.amazonaws.com/x", Make(aws)->ObjectUrl("x").c_str());
  aws.bucket = "edge.data";  // dots break TLS host names of virtual-hosted buckets
  STRCMP_EQUAL("https://s3.eu-west-1.amazonaws.com/edge.data/x", Make(aws)->ObjectUrl("x").c_str());
  aws.bucket = "edge-data";
  aws.addressing = Addressing::kPath;
  STRCMP_EQUAL("https://s3.eu-west-1.amazonaws.com/edge-data/x", Make(aws)->ObjectUrl("x").c_str());
  S3Options def_port = Local();
  def_port.endpoint = "https://minio.example:443/";
  STRCMP_EQUAL("https://minio.example/edge-data/x", Make(def_port)->ObjectUrl("x").c_str());
}

TEST(S3Sink, EndpointValidation) {
  STRCMP_EQUAL("", ValidateEndpoint("http://127.0.0.1:7480").c_str());
  STRCMP_EQUAL("", ValidateEndpoint("https://s3.example.com").c_str());
  CHECK(ValidateEndpoint("127.0.0.1:7480").find("needs a scheme") != std::string::npos);
  CHECK(ValidateEndpoint("ftp://x").find("http or https") != std::string::npos);
  CHECK(ValidateEndpoint("http://x/path").find("without a path") != std::string::npos);
  CHECK(ValidateEndpoint("http://user@x").find("without a path") != std::string::npos);
  CHECK(ValidateEndpoint("http://x:99999").find("port") != std::string::npos);
  CHECK(ValidateEndpoint("http://").find("no host") != std::string::npos);
}

TEST(S3Sink, ChecksumModes) {
  S3Options o = Local();
  o.checksum = ChecksumMode::kSha256;
  auto sink = Make(o);
  Object obj = MakeObject("k", "payload");
  CHECK_TRUE(sink->Put(obj).ok());
  auto q = transport->Requests()[0];
  CHECK(q.Header("Content-MD5").empty());
  // base64 of the raw SHA-256 of "payload"
  STRCMP_EQUAL("I59Z7VXnN8dxR89VrQwbAwttfudIp0JpUvm4UtWpNeU=", q.Header("x-amz-checksum-sha256").c_str());
  o.checksum = ChecksumMode::kNone;
  sink = Make(o);
  CHECK_TRUE(sink->Put(obj).ok());
  q = transport->Requests()[0];
  CHECK(q.Header("Content-MD5").empty() && q.Header("x-amz-checksum-sha256").empty());
  STRCMP_EQUAL(obj.sha256_hex.c_str(), q.Header("x-amz-content-sha256").c_str());
}

TEST(S3Sink, NonAsciiMetadataIsRfc2047Encoded) {
  STRCMP_EQUAL("plain ascii", EncodeMetadataValue("plain ascii").c_str());
  STRCMP_EQUAL("=?UTF-8?B?w6l0w6k=?=", EncodeMetadataValue("\xC3\xA9t\xC3\xA9").c_str());
  STRCMP_EQUAL("=?UTF-8?B?YQpi?=", EncodeMetadataValue("a\nb").c_str());
  auto sink = Make(Local());
  Object o = MakeObject("k", "b");
  o.metadata["edgepipe-device"] = "\xC3\xA9t\xC3\xA9";
  CHECK_TRUE(sink->Put(o).ok());
  STRCMP_EQUAL("=?UTF-8?B?w6l0w6k=?=", transport->Requests()[0].Header("x-amz-meta-edgepipe-device").c_str());
}

TEST(S3Sink, ResponsesAreClassified) {
  struct Case {
    int status;
    const char* code;
    StatusCode expect;
  } cases[] = {
      {500, "InternalError", StatusCode::kUnavailable},
      {503, "SlowDown", StatusCode::kUnavailable},
      {503, "", StatusCode::kUnavailable},
      {429, "", StatusCode::kUnavailable},
      {400, "RequestTimeout", StatusCode::kUnavailable},
      {409, "OperationAborted", StatusCode::kUnavailable},
      {403, "InvalidAccessKeyId", StatusCode::kFailedPrecondition},
      {403, "SignatureDoesNotMatch", StatusCode::kFailedPrecondition},
      {403, "AccessDenied", StatusCode::kFailedPrecondition},
      {400, "ExpiredToken", StatusCode::kFailedPrecondition},
      {404, "NoSuchBucket", StatusCode::kFailedPrecondition},
      {301, "PermanentRedirect", StatusCode::kFailedPrecondition},
      {400, "AuthorizationHeaderMalformed", StatusCode::kFailedPrecondition},
      {501, "NotImplemented", StatusCode::kFailedPrecondition},
      {400, "EntityTooLarge", StatusCode::kInvalidArgument},
      {400, "BadDigest", StatusCode::kInvalidArgument},
      {400, "XAmzContentSHA256Mismatch", StatusCode::kInvalidArgument},
      {400, "InvalidDigest", StatusCode::kInvalidArgument},
      {400, "KeyTooLongError", StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto sink = Make(Local());
    transport->Push(ScriptedTransport::Error(c.status, c.code));
    Result<PutResult> r = sink->Put(MakeObject("k", "b"));
    CHECK_FALSE(r.ok());
    if (r.status().code() != c.expect)
      FAIL((std::to_string(c.status) + " " + c.code + " -> " + r.status().ToString()).c_str());
    CHECK(r.status().message().find("PUT s3://edge-data/k: HTTP " + std::to_string(c.status)) != std::string::npos);
    CHECK(r.status().message().find("super-secret") == std::string::npos);
  }
}

TEST(S3Sink, CredentialErrorsNameTheKeyButNotTheSecretAndForceARereadOfTheChain) {
  auto sink = Make(Local());
  transport->Push(ScriptedTransport::Error(403, "SignatureDoesNotMatch"));
  Result<PutResult> r = sink->Put(MakeObject("k", "b"));
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find("WXYZ from test credentials") != std::string::npos);
  CHECK(r.status().message().find("AKIDTEST") == std::string::npos);  // only the last 4 characters
  CHECK(r.status().message().find("super-secret") == std::string::npos);
  LONGS_EQUAL(1, creds->invalidations);
  CHECK_TRUE(sink->Put(MakeObject("k", "b")).ok());
  LONGS_EQUAL(2, creds->gets);
}

TEST(S3Sink, TransportErrorsPassThrough) {
  auto sink = Make(Local());
  transport->Push(Result<HttpResponse>(UnavailableError("connection refused")));
  transport->Push(Result<HttpResponse>(FailedPreconditionError("certificate not trusted")));
  CHECK(sink->Put(MakeObject("k", "b")).status().code() == StatusCode::kUnavailable);
  CHECK(sink->Put(MakeObject("k", "b")).status().code() == StatusCode::kFailedPrecondition);
}

TEST(S3Sink, RequestTimeTooSkewedCorrectsTheSigningClockFromTheDateHeaderAndRetriesOnce) {
  auto sink = Make(Local());
  const int64_t device = clock.SystemNowUs();
  const int64_t server = device + 3'600'000'000;  // the device clock is an hour behind
  transport->Push(ScriptedTransport::Error(403, "RequestTimeTooSkewed", {{"date", FormatHttpDate(server)}}));
  Result<PutResult> r = sink->Put(MakeObject("k", "b"));
  CHECK_TRUE(r.ok());
  auto reqs = transport->Requests();
  LONGS_EQUAL(2, reqs.size());
  STRCMP_EQUAL(AmzDate(device).c_str(), reqs[0].Header("x-amz-date").c_str());
  STRCMP_EQUAL(AmzDate(server).c_str(), reqs[1].Header("x-amz-date").c_str());
  CHECK(std::llabs(sink->ClockCorrectionUs() - 3'600'000'000) <= 1'000'000);
  // The correction follows the monotonic clock, not the (wrong) wall clock.
  clock.Advance(10'000'000);
  STRCMP_EQUAL(AmzDate(server + 10'000'000).c_str(), AmzDate(sink->SigningTimeUs()).c_str());
  // NTP fixes the device clock: the next reply's Date agrees, and the correction is dropped.
  clock.SetSystem(server + 10'000'000);
  transport->Push(ScriptedTransport::Response(200, "", {{"date", FormatHttpDate(server + 10'000'000)}}));
  CHECK_TRUE(sink->Put(MakeObject("k", "b")).ok());
  LONGS_EQUAL(0, sink->ClockCorrectionUs());
}

TEST(S3Sink, RequestTimeTooSkewedWithoutADateIsAClockProblem) {
  auto sink = Make(Local());
  transport->Push(ScriptedTransport::Error(403, "RequestTimeTooSkewed"));
  Result<PutResult> r = sink->Put(MakeObject("k", "b"));
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find("device clock") != std::string::npos);
  LONGS_EQUAL(1, transport->Requests().size());
}

TEST(S3Sink, HttpDatesRoundTrip) {
  int64_t t = UsFromCivil(CivilTime{2026, 11, 26, 6, 26, 9, 0});
  STRCMP_EQUAL("Thu, 26 Nov 2026 06:26:09 GMT", FormatHttpDate(t).c_str());
  CHECK(ParseHttpDate("Thu, 26 Nov 2026 06:26:09 GMT") == t);
  CHECK_FALSE(ParseHttpDate("26 Nov 2026 06:26:09").has_value());
  CHECK_FALSE(ParseHttpDate("Thu, 26 Foo 2026 06:26:09 GMT").has_value());
}

TEST(S3Sink, ProbeReportsWhatWorksAndTheClockSkew) {
  auto sink = Make(Local());
  const std::string date = FormatHttpDate(clock.SystemNowUs() + 2'000'000);
  transport->Push(ScriptedTransport::Response(200, "", {{"etag", "\"e\""}, {"date", date}}));
  transport->Push([&](const edgepipe::testing::RecordedRequest&) {
    return Result<HttpResponse>(ScriptedTransport::Response(
        200, "", {{"content-length", std::to_string(transport->Requests()[0].body.size())}, {"date", date}}));
  });
  transport->Push(ScriptedTransport::Error(403, "AccessDenied"));
  ProbeReport p = sink->Probe();
  CHECK_TRUE(p.ran);
  CHECK_TRUE(p.put.ok());
  CHECK_TRUE(p.head.ok());
  CHECK(p.del.code() == StatusCode::kFailedPrecondition);
  CHECK_TRUE(p.clock_skew_us.has_value());
  CHECK(*p.clock_skew_us > 1'000'000 && *p.clock_skew_us < 4'000'000);
  auto reqs = transport->Requests();
  LONGS_EQUAL(3, reqs.size());
  STRCMP_EQUAL("PUT", reqs[0].method.c_str());
  STRCMP_EQUAL("HEAD", reqs[1].method.c_str());
  STRCMP_EQUAL("DELETE", reqs[2].method.c_str());
  CHECK(reqs[0].url.find("/edge-data/.edgepipe-probe/probe-") != std::string::npos);
  CHECK(reqs[0].url == reqs[2].url);
  CHECK(p.summary.find("PUT ok, HEAD ok, DELETE FailedPrecondition") != std::string::npos);
  CHECK(p.summary.find("left behind") != std::string::npos);
}

TEST(S3Sink, ProbeWithAHugeSkewSwitchesSigningToServerTime) {
  auto sink = Make(Local());
  const std::string date = FormatHttpDate(clock.SystemNowUs() - 86'400'000'000LL);  // device a day ahead
  transport->SetFallback([&](const edgepipe::testing::RecordedRequest& q) {
    return Result<HttpResponse>(ScriptedTransport::Response(q.method == "DELETE" ? 204 : 200, "",
                                                            {{"date", date}, {"content-length", "0"}}));
  });
  ProbeReport p = sink->Probe();
  CHECK(*p.clock_skew_us < -86'000'000'000LL);
  CHECK(sink->ClockCorrectionUs() < -86'000'000'000LL);
}
