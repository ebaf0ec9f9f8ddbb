// SigV4 signatures compared with independent implementations: the example of the S3 API
// reference ("Authenticating Requests: Using the Authorization Header", GET with Range) and
// signatures computed by botocore 1.43 (S3SigV4Auth) for the requests edgepipe sends.
// To recompute the botocore ones: see the comment above BotocoreVectors.
#include "edgepipe/uploader/sigv4.h"

#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/object.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {

std::string AuthOf(const SignedHeaders& s) {
  for (const auto& [k, v] : s.headers)
    if (k == "Authorization") return v;
  return "";
}

std::string HeaderOf(const SignedHeaders& s, const std::string& name) {
  for (const auto& [k, v] : s.headers)
    if (k == name) return v;
  return "";
}

int64_t At(int y, int mo, int d, int h, int mi, int s) { return UsFromCivil(CivilTime{y, mo, d, h, mi, s, 0}); }

}  // namespace

TEST_GROUP(SigV4) {};

TEST(SigV4, UriEncodeKeepsUnreservedAndOptionallySlash) {
  STRCMP_EQUAL("a-b_c.d~e", UriEncode("a-b_c.d~e", false).c_str());
  STRCMP_EQUAL("dir/a%20b%2Bc%3Dd.txt", UriEncode("dir/a b+c=d.txt", true).c_str());
  STRCMP_EQUAL("dir%2Fx", UriEncode("dir/x", false).c_str());
  STRCMP_EQUAL("%C3%A9t%C3%A9", UriEncode("\xC3\xA9t\xC3\xA9", true).c_str());
  STRCMP_EQUAL("device%3Dgw-17/date%3D2026-11-26", UriEncode("device=gw-17/date=2026-11-26", true).c_str());
}

TEST(SigV4, AmzDateFormat) {
  STRCMP_EQUAL("20261126T040549Z", AmzDate(At(2026, 11, 26, 4, 5, 49) + 999'999).c_str());
}

// The worked example of the S3 API reference: GET /test.txt with a Range header.
TEST(SigV4, MatchesTheS3DocumentationExample) {
  Credentials c = MakeCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  SigningRequest r{"GET", "examplebucket.s3.amazonaws.com", "/test.txt", "", {{"Range", "bytes=0-9"}}, kEmptySha256};
  SignedHeaders s = SignV4(r, c, "us-east-1", At(2013, 5, 24, 0, 0, 0));
  STRCMP_EQUAL("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", s.signature.c_str());
  STRCMP_EQUAL(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      AuthOf(s).c_str());
}

// botocore vectors, produced with (fixed clock 2026-11-26T04:05:49Z, AKIDEXAMPLE /
// wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY):
//   A.get_current_datetime = lambda *a, **k: fixed
//   req = AWSRequest(method, url, data=body, headers=h); A.S3SigV4Auth(creds, 's3', region).add_auth(req)
TEST_GROUP(SigV4Botocore) {
  Credentials creds = MakeCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  int64_t now = At(2026, 11, 26, 4, 5, 49);
  std::string body = "hello world";
  HttpHeaders put_headers{{"Content-Type", "application/zstd"},
                          {"Content-MD5", Md5Base64(body)},
                          {"x-amz-meta-edgepipe-batch", "abc-0000000001"},
                          {"x-amz-meta-edgepipe-quality", "{\"in\":3,\"passed\":3}"}};
};

TEST(SigV4Botocore, PathStylePutWithMetadataAndEncodedKey) {
  SigningRequest r{"PUT", "127.0.0.1:7480", "/bucket/" + UriEncode("dir/a b+c=d.ndjson.zst", true), "", put_headers,
                   Sha256Hex(body)};
  SignedHeaders s = SignV4(r, creds, "us-east-1", now);
  STRCMP_EQUAL("63324430bbd5df27ce32f2a1864c1eadf1a5ca9704c0f3d4e5c6c5afc28ab93f", s.signature.c_str());
  STRCMP_EQUAL(Sha256Hex(body).c_str(), HeaderOf(s, "x-amz-content-sha256").c_str());
  STRCMP_EQUAL("127.0.0.1:7480", HeaderOf(s, "Host").c_str());
}

TEST(SigV4Botocore, VirtualHostedPutWithSessionToken) {
  Credentials c = MakeCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  "FQoGZXIvYXdzEJr//////////session+token=");
  SigningRequest r{"PUT", "my-bucket.s3.eu-west-1.amazonaws.com", "/" + UriEncode("fleet/device=gw-17/x.ndjson.zst", true),
                   "", put_headers, Sha256Hex(body)};
  SignedHeaders s = SignV4(r, c, "eu-west-1", now);
  STRCMP_EQUAL("ac59960d5697ec3a9339c0259afc4a7cd7ca415f7fd3060aada78bcf837c14ec", s.signature.c_str());
  STRCMP_EQUAL("FQoGZXIvYXdzEJr//////////session+token=", HeaderOf(s, "x-amz-security-token").c_str());
  CHECK(AuthOf(s).find("x-amz-security-token, Signature=") != std::string::npos);
}

TEST(SigV4Botocore, HeadWithoutBody) {
  SigningRequest r{"HEAD", "localhost:9000", "/bucket/k", "", {}, kEmptySha256};
  STRCMP_EQUAL("f0e11fba7de24bc1989ab36085ea7ea7e420804cd4b77380b52cecea766c3bf9",
               SignV4(r, creds, "us-east-1", now).signature.c_str());
}

TEST(SigV4Botocore, NonAsciiKeyAndHeaderValueWithRunsOfSpaces) {
  SigningRequest r{"DELETE", "127.0.0.1:7480", "/bucket/" + UriEncode("\xC3\xA9t\xC3\xA9/~_x", true), "",
                   {{"x-amz-meta-spaces", "  a   b  "}}, kEmptySha256};
  SignedHeaders s = SignV4(r, creds, "us-east-1", now);
  STRCMP_EQUAL("b63735c1302f05af6841ffe1d630ea69bb3822ece4cec39135c60ec53869b516", s.signature.c_str());
  // The value is sent as given; only the canonical form is trimmed.
  STRCMP_EQUAL("  a   b  ", HeaderOf(s, "x-amz-meta-spaces").c_str());
  CHECK(s.canonical_request.find("x-amz-meta-spaces:a b\n") != std::string::npos);
}

TEST(SigV4Botocore, AnyChangeToBodyHashKeyOrSecretChangesTheSignature) {
  SigningRequest r{"PUT", "127.0.0.1:7480", "/bucket/k", "", put_headers, Sha256Hex(body)};
  std::string base = SignV4(r, creds, "us-east-1", now).signature;
  SigningRequest r2 = r;
  r2.payload_sha256_hex = Sha256Hex("hello worle");
  CHECK(base != SignV4(r2, creds, "us-east-1", now).signature);
  SigningRequest r3 = r;
  r3.encoded_path = "/bucket/K";
  CHECK(base != SignV4(r3, creds, "us-east-1", now).signature);
  Credentials other = MakeCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ");
  CHECK(base != SignV4(r, other, "us-east-1", now).signature);
  CHECK(base != SignV4(r, creds, "eu-west-1", now).signature);
  // The secret never appears in what is sent or kept for diagnostics.
  SignedHeaders s = SignV4(r, creds, "us-east-1", now);
  for (const auto& [k, v] : s.headers) CHECK(v.find("EXAMPLEKEY") == std::string::npos);
  CHECK(s.canonical_request.find("EXAMPLEKEY") == std::string::npos);
  CHECK(s.string_to_sign.find("EXAMPLEKEY") == std::string::npos);
}
