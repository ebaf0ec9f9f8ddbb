// The HTTP seam of the S3 sink: one request in, one response (or a transport error) out.
// CurlTransport is the production implementation (libcurl, connection reuse, TLS); tests script
// responses with their own HttpTransport. No libcurl type appears here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgepipe/core/status.h"

namespace edgepipe::uploader {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;        // "PUT", "HEAD", "GET", "DELETE"
  std::string url;           // scheme://host[:port]/path?query, path and query already encoded
  HttpHeaders headers;       // sent as given (Host included); Content-Length is added for bodies
  std::string_view body;     // must outlive Send(); sent with a known length, never chunked
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;       // names lower-cased, in arrival order (final response only)
  std::string body;
  int64_t elapsed_us = 0;    // wall time of the whole exchange
  bool reused_connection = false;

  // First value of a header (name lower-case), "" when absent.
  std::string Header(std::string_view name) const;
};

// Sends requests. Implementations are thread-safe: several uploads may be in flight.
//
// Contract: OK means an HTTP response was received (any status, including 4xx/5xx). A non-OK
// status means no complete response: kUnavailable for network trouble (refused, reset, DNS,
// timeouts, a stall), kFailedPrecondition for problems retrying cannot fix (TLS certificate not
// trusted, CA file unreadable, unsupported scheme). Messages never contain header values.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

struct CurlTransportOptions {
  int64_t connect_timeout_us = 10'000'000;   // TCP + TLS handshake
  int64_t request_timeout_us = 300'000'000;  // whole exchange (0 = none)
  int64_t stall_timeout_us = 30'000'000;     // abort when under 1 byte/s for this long (0 = never)
  bool tls_verify = true;                    // peer certificate and host name
  std::string ca_file;                       // PEM bundle; "" = the system store
  uint64_t max_send_bytes_per_s = 0;         // per request (0 = unlimited)
  std::string user_agent = "edgepipe";
};

// libcurl over a pool of easy handles: each request takes an idle handle (and with it an open
// connection to the same host, when there is one), so connections are reused across requests
// and uploads in flight do not share a handle. Redirects are not followed (S3 answers a wrong
// region or endpoint with 301/307, which the sink reports). With tls_verify off it logs a loud
// warning at construction.
std::unique_ptr<HttpTransport> MakeCurlTransport(const CurlTransportOptions& options);

}  // namespace edgepipe::uploader
