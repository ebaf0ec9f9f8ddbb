// libcurl adapter for HttpTransport. CURLcode values are mapped to Status here and nowhere else.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "edgepipe/core/log.h"
#include "edgepipe/uploader/http.h"

namespace edgepipe::uploader {

namespace {

constexpr const char* kLog = "http";

struct Upload {
  std::string_view body;
  size_t offset = 0;
};

size_t ReadBody(char* buf, size_t size, size_t nitems, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t n = std::min(size * nitems, up->body.size() - up->offset);
  std::memcpy(buf, up->body.data() + up->offset, n);
  up->offset += n;
  return n;
}

// curl rewinds when it must resend the body (e.g. after a 100-continue negotiation or an
// authentication retry on a reused connection that went stale).
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* up = static_cast<Upload*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > up->body.size()) return CURL_SEEKFUNC_FAIL;
  up->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* out = static_cast<std::string*>(user);
  // Error documents are small; a GET in tests may be larger. Cap at 256 MiB to stay bounded.
  if (out->size() + size * nmemb > (256u << 20)) return 0;
  out->append(data, size * nmemb);
  return size * nmemb;
}

size_t WriteHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* headers = static_cast<HttpHeaders*>(user);
  std::string_view line(data, size * nmemb);
  // A new status line (after "100 Continue" or a redirect) starts a new header block.
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();
    return size * nmemb;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * nmemb;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
  headers->emplace_back(std::move(name), std::string(value));
  return size * nmemb;
}

Status CurlStatus(CURLcode rc, const char* errbuf, const std::string& method, const std::string& url) {
  std::string detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);
  std::string what = method + " " + url + ": " + detail;
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return FailedPreconditionError(what + " (the server's TLS certificate is not trusted: set upload.ca_file to the CA "
                                            "that signed it, or fix the endpoint's certificate)");
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return FailedPreconditionError(what + " (check upload.ca_file)");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return FailedPreconditionError(what + " (check upload.endpoint)");
    case CURLE_OPERATION_TIMEDOUT:
      return UnavailableError(what + " (timed out or stalled)");
    default:
      return UnavailableError(what);
  }
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(CurlTransportOptions o) : opt_(std::move(o)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (!opt_.tls_verify)
      EP_LOG_WARN(kLog, "TLS CERTIFICATE VERIFICATION IS OFF (upload.tls_verify = false): anyone on the path can read "
                        "and alter uploads and see the request signatures. Use upload.ca_file instead.");
  }
  ~CurlTransport() override {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  Result<HttpResponse> Send(const HttpRequest& req) override {
    CURL* h = Acquire();
    if (!h) return InternalError("curl_easy_init failed");
    Result<HttpResponse> r = Perform(h, req);
    Release(h);
    return r;
  }

 private:
  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* h) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(h);
  }

  void SetCommon(CURL* h) {
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt_.connect_timeout_us / 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opt_.request_timeout_us / 1000));
    if (opt_.stall_timeout_us > 0) {
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(opt_.stall_timeout_us / 1'000'000)));
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, opt_.tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, opt_.tls_verify ? 2L : 0L);
    if (!opt_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opt_.ca_file.c_str());
    if (opt_.max_send_bytes_per_s > 0)
      curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, static_cast<curl_off_t>(opt_.max_send_bytes_per_s));
    curl_easy_setopt(h, CURLOPT_USERAGENT, opt_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    // Object keys are already percent-encoded; "/./" or "/../" inside a key must reach the server as is.
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  }

  Result<HttpResponse> Perform(CURL* h, const HttpRequest& req) {
    curl_easy_reset(h);  // keeps the connection cache; clears the previous request's options
    SetCommon(h);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    Upload up{req.body, 0};
    if (req.method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadBody);
      curl_easy_setopt(h, CURLOPT_READDATA, &up);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, SeekBody);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &up);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    curl_slist* list = nullptr;
    for (const auto& [k, v] : req.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    HttpResponse resp;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp.headers);
    auto start = std::chrono::steady_clock::now();
    CURLcode rc = curl_easy_perform(h);
    resp.elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(list);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    if (rc != CURLE_OK) return CurlStatus(rc, errbuf, req.method, req.url);
    long code = 0, conns = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
    resp.status = static_cast<int>(code);
    resp.reused_connection = conns == 0;
    return resp;
  }

  CurlTransportOptions opt_;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

}  // namespace

std::unique_ptr<HttpTransport> MakeCurlTransport(const CurlTransportOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace edgepipe::uploader
