// AWS Signature Version 4 for S3 requests, signed by us with OpenSSL's HMAC-SHA256: header
// authentication with a signed payload hash (x-amz-content-sha256 = hex SHA-256 of the body),
// never aws-chunked streaming. Follows "Authenticating Requests: Using the Authorization Header"
// of the S3 API reference; tests compare against signatures computed by botocore.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/http.h"

namespace edgepipe::uploader {

// Percent-encodes per SigV4 (RFC 3986 unreserved characters A-Z a-z 0-9 - . _ ~ are kept, every
// other byte becomes %XX with upper-case hex). With keep_slash, '/' is kept (object key paths).
std::string UriEncode(std::string_view s, bool keep_slash);

// "20130524T000000Z" and "20130524" for a time in microseconds since the epoch.
std::string AmzDate(int64_t unix_us);

// Hex SHA-256 of the empty body, sent as x-amz-content-sha256 on requests without a body.
inline constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigningRequest {
  std::string method;
  std::string host;             // as in the Host header: "bucket.s3.amazonaws.com" or "127.0.0.1:7480"
  std::string encoded_path;     // already UriEncode()d, starting with '/'
  std::string encoded_query;    // canonical query: sorted by name, names and values UriEncode()d; "" for none
  HttpHeaders headers;          // every header to sign except host, x-amz-date, x-amz-content-sha256,
                                // x-amz-security-token (added by Sign)
  std::string payload_sha256_hex;
};

struct SignedHeaders {
  HttpHeaders headers;          // all headers to send: Host, x-amz-*, the given ones, Authorization
  std::string canonical_request;  // for diagnostics and tests (contains no secret)
  std::string string_to_sign;
  std::string signature;
};

// Signs `req` at `unix_us` for `region` and service "s3". Header names may be given in any case;
// values are trimmed and inner runs of spaces collapsed for the canonical form (sent unchanged).
SignedHeaders SignV4(const SigningRequest& req, const Credentials& creds, std::string_view region, int64_t unix_us);

}  // namespace edgepipe::uploader
