// s3://bucket/prefix — the S3-compatible sink (AWS S3, MinIO, Ceph RGW, Garage, SeaweedFS).
//
// Each object is one PUT with a SigV4 signature over the payload's SHA-256 (x-amz-content-sha256)
// and, by default, a Content-MD5 header, so the server rejects a body that changed in transit;
// the batch is acknowledged only after a 2xx for exactly those bytes. Never aws-chunked, never
// multipart (objects are batch-sized). docs/s3.md lists every server error and what happens.
//
// Response classes (the Status codes the upload loop acts on, see sink.h):
//   2xx                                         OK
//   5xx, 429, SlowDown, RequestTimeout, network kUnavailable        retry with backoff
//   403 InvalidAccessKeyId/SignatureDoesNotMatch/AccessDenied/ExpiredToken, 404 NoSuchBucket,
//   301/307 (wrong region/endpoint), TLS trust problems             kFailedPrecondition  retry slowly
//   400 EntityTooLarge/BadDigest/InvalidDigest/XAmzContentSHA256Mismatch/... kInvalidArgument
//   RequestTimeTooSkewed: the signing clock is corrected from the server's Date header and the
//   request is sent again once; the device clock is reported as wrong.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "edgepipe/core/clock.h"
#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/http.h"
#include "edgepipe/uploader/sink.h"

namespace edgepipe::uploader {

enum class Addressing { kAuto, kPath, kVirtual };
enum class ChecksumMode { kContentMd5, kSha256, kNone };

const char* AddressingName(Addressing a);
const char* ChecksumModeName(ChecksumMode m);

struct S3Options {
  std::string bucket;
  std::string endpoint;              // "https://host[:port]"; "" = https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  // kAuto: virtual-hosted for *.amazonaws.com when the bucket name has no '.', path-style otherwise.
  Addressing addressing = Addressing::kAuto;
  // kContentMd5: Content-MD5 (every S3 server checks it). kSha256: x-amz-checksum-sha256 (AWS
  // flexible checksums). kNone: only the signed payload hash. Never aws-chunked.
  ChecksumMode checksum = ChecksumMode::kContentMd5;
  std::string probe_prefix;          // probe objects: <probe_prefix>/.edgepipe-probe/<probe_tag>-<random>
  std::string probe_tag = "probe";
  // When the probe measures a larger difference to the server's clock, signing uses the
  // server's time right away (rather than after the first RequestTimeTooSkewed).
  int64_t skew_tolerance_us = 300'000'000;
};

// Checks an endpoint URL: http or https, a host, an optional port, no path, query or user info.
// Returns a message naming the problem, or "".
std::string ValidateEndpoint(std::string_view endpoint);

// An S3 error reply.
struct S3Error {
  int http_status = 0;
  std::string code;        // <Code> ("" when the body has none, e.g. HEAD)
  std::string message;     // <Message>
  std::string request_id;  // <RequestId> or x-amz-request-id
};
S3Error ParseS3Error(const HttpResponse& response);

// Maps an error reply to the Status the upload loop acts on, with an actionable message.
// `what` is "PUT s3://bucket/key"; `credentials` is Credentials::Describe() (never a secret).
Status ClassifyS3Error(const S3Error& e, const std::string& what, const std::string& credentials);

// Parses an HTTP date ("Thu, 26 Nov 2026 06:26:09 GMT", RFC 7231 IMF-fixdate); nullopt otherwise.
std::optional<int64_t> ParseHttpDate(std::string_view text);
// The same format ("Thu, 26 Nov 2026 06:26:09 GMT").
std::string FormatHttpDate(int64_t unix_us);

// Encodes a user-metadata value for an HTTP header: printable ASCII is sent as is, anything
// else as RFC 2047 "=?UTF-8?B?<base64>?=" (what S3 itself returns for non-ASCII metadata).
std::string EncodeMetadataValue(std::string_view value);

class S3Sink final : public Sink {
 public:
  // `credentials` is shared so the agent can keep one chain for every sink it builds.
  S3Sink(S3Options options, std::unique_ptr<HttpTransport> transport, std::shared_ptr<CredentialProvider> credentials,
         Clock& clock);

  Result<PutResult> Put(const Object& object) override;
  std::string Describe() const override;
  ProbeReport Probe() override;

  // Plain signed requests on one key (probe, tests, tools). The status is the transport's; any
  // HTTP status comes back as a response.
  Result<HttpResponse> Send(const std::string& method, const std::string& key, std::string_view body = {},
                            const HttpHeaders& extra = {});

  // Time used to sign: the device's wall clock, or the server's clock (Date header) carried
  // forward on the monotonic clock once a skew was detected.
  int64_t SigningTimeUs() const;
  // Server minus device time in effect for signing (0 when the device clock is trusted).
  int64_t ClockCorrectionUs() const;
  std::string ObjectUrl(const std::string& key) const;

 private:
  struct Target {
    std::string url, host, encoded_path;
  };
  Target TargetFor(const std::string& key) const;
  // One signed exchange with skew correction: on RequestTimeTooSkewed with a usable Date header,
  // corrects the signing time and sends once more.
  Result<HttpResponse> Exchange(const std::string& method, const std::string& key, std::string_view body,
                                const std::string& body_sha256, const HttpHeaders& extra, Credentials* used);
  void NoteServerDate(const HttpResponse& r, int64_t sent_system_us, bool force);

  S3Options opt_;
  std::unique_ptr<HttpTransport> transport_;
  std::shared_ptr<CredentialProvider> credentials_;
  Clock& clock_;
  std::string scheme_, endpoint_host_;  // "https", "host:port" (port only when not the default)
  bool virtual_hosted_ = false;

  mutable std::mutex skew_mu_;
  bool corrected_ = false;
  int64_t server_base_us_ = 0;  // server time at mono_base_us_
  int64_t mono_base_us_ = 0;
  std::atomic<bool> etag_warned_{false};
};

}  // namespace edgepipe::uploader
