#include "edgepipe/uploader/s3_sink.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/sigv4.h"

namespace edgepipe::uploader {
namespace {

constexpr const char* kLog = "s3";

struct ParsedEndpoint {
  std::string scheme, host;  // host includes ":port" only when not the scheme's default
  std::string error;
};

ParsedEndpoint ParseEndpoint(std::string_view e) {
  ParsedEndpoint p;
  size_t sep = e.find("://");
  if (sep == std::string_view::npos) {
    p.error = "endpoint " + std::string(e) + " needs a scheme: http://host[:port] or https://host[:port]";
    return p;
  }
  p.scheme = std::string(e.substr(0, sep));
  if (p.scheme != "http" && p.scheme != "https") {
    p.error = "endpoint scheme must be http or https, not " + p.scheme;
    return p;
  }
  std::string_view rest = e.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    p.error = "endpoint must be scheme://host[:port] without a path, query or user (got " + std::string(e) + ")";
    return p;
  }
  if (rest.empty()) {
    p.error = "endpoint " + std::string(e) + " has no host";
    return p;
  }
  std::string host(rest);
  // Drop a default port so the Host header matches what every client sends.
  const std::string def = p.scheme == "https" ? ":443" : ":80";
  if (host.size() > def.size() && host.compare(host.size() - def.size(), def.size(), def) == 0)
    host.resize(host.size() - def.size());
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']') == std::string::npos) {
    std::string port = host.substr(colon + 1);
    char* end = nullptr;
    long n = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || n < 1 || n > 65535) {
      p.error = "endpoint port '" + port + "' is not a number from 1 to 65535";
      return p;
    }
  }
  p.host = host;
  return p;
}

std::string HexToBase64(const std::string& hex) {
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  b64.resize(static_cast<size_t>(n));
  return b64;
}

std::string Md5Hex(std::string_view body) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(body.data(), body.size(), d, &n, EVP_md5(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 15]);
  }
  return out;
}

bool IsAuthProblem(const S3Error& e) {
  return e.http_status == 403 || e.code == "InvalidAccessKeyId" || e.code == "SignatureDoesNotMatch" ||
         e.code == "ExpiredToken" || e.code == "InvalidToken";
}

std::string Seconds(int64_t us) { return StrFormat("%+.1f s", us / 1e6); }

}  // namespace

const char* AddressingName(Addressing a) {
  switch (a) {
    case Addressing::kPath: return "path";
    case Addressing::kVirtual: return "virtual";
    default: return "auto";
  }
}

const char* ChecksumModeName(ChecksumMode m) {
  switch (m) {
    case ChecksumMode::kSha256: return "sha256";
    case ChecksumMode::kNone: return "none";
    default: return "content-md5";
  }
}

std::string ValidateEndpoint(std::string_view endpoint) { return ParseEndpoint(endpoint).error; }

S3Sink::S3Sink(S3Options options, std::unique_ptr<HttpTransport> transport, std::shared_ptr<CredentialProvider> credentials,
               Clock& clock)
    : opt_(std::move(options)), transport_(std::move(transport)), credentials_(std::move(credentials)), clock_(clock) {
  if (opt_.endpoint.empty()) opt_.endpoint = "https://s3." + opt_.region + ".amazonaws.com";
  ParsedEndpoint p = ParseEndpoint(opt_.endpoint);
  scheme_ = p.scheme.empty() ? "https" : p.scheme;
  endpoint_host_ = p.host;
  if (!p.error.empty()) EP_LOG_ERROR(kLog, "%s", p.error.c_str());  // also rejected by the config check
  switch (opt_.addressing) {
    case Addressing::kPath: virtual_hosted_ = false; break;
    case Addressing::kVirtual: virtual_hosted_ = true; break;
    case Addressing::kAuto: {
      const std::string aws = "amazonaws.com";
      std::string host = endpoint_host_.substr(0, endpoint_host_.rfind(':') == std::string::npos ? std::string::npos
                                                                                                   : endpoint_host_.rfind(':'));
      bool is_aws = host.size() >= aws.size() && host.compare(host.size() - aws.size(), aws.size(), aws) == 0;
      virtual_hosted_ = is_aws && opt_.bucket.find('.') == std::string::npos;
      break;
    }
  }
}

std::string S3Sink::Describe() const {
  return "s3://" + opt_.bucket + " at " + scheme_ + "://" + endpoint_host_ + " (" + (virtual_hosted_ ? "virtual-hosted" : "path-style") +
         ", region " + opt_.region + ")";
}

S3Sink::Target S3Sink::TargetFor(const std::string& key) const {
  Target t;
  const std::string enc = UriEncode(key, true);
  if (virtual_hosted_) {
    t.host = opt_.bucket + "." + endpoint_host_;
    t.encoded_path = "/" + enc;
  } else {
    t.host = endpoint_host_;
    t.encoded_path = "/" + opt_.bucket + "/" + enc;
  }
  t.url = scheme_ + "://" + t.host + t.encoded_path;
  return t;
}

std::string S3Sink::ObjectUrl(const std::string& key) const { return TargetFor(key).url; }

int64_t S3Sink::SigningTimeUs() const {
  std::lock_guard<std::mutex> lock(skew_mu_);
  if (!corrected_) return clock_.SystemNowUs();
  return server_base_us_ + (clock_.MonotonicNowUs() - mono_base_us_);
}

int64_t S3Sink::ClockCorrectionUs() const {
  std::lock_guard<std::mutex> lock(skew_mu_);
  if (!corrected_) return 0;
  return server_base_us_ + (clock_.MonotonicNowUs() - mono_base_us_) - clock_.SystemNowUs();
}

// Keeps the signing clock in step with the server. `force`: the server said our time is too far
// off, so take its time now. Otherwise a correction in effect is refreshed, and dropped when the
// device clock agrees with the server again (e.g. NTP caught up).
void S3Sink::NoteServerDate(const HttpResponse& r, int64_t sent_system_us, bool force) {
  std::optional<int64_t> server = ParseHttpDate(r.Header("date"));
  if (!server) return;
  const int64_t local_mid = sent_system_us + r.elapsed_us / 2;
  // The Date header has 1 s resolution and is truncated: its middle is half a second later.
  const int64_t server_us = *server + 500'000;
  const int64_t skew = server_us - local_mid;
  std::lock_guard<std::mutex> lock(skew_mu_);
  if (force || corrected_) {
    if (!corrected_ || force)
      EP_LOG_WARN(kLog, "the device clock is off by %s against %s (server time minus device time, from its Date "
                        "header): signing with the server's time until the device clock is fixed. Check NTP / the RTC; "
                        "reading timestamps come from this clock too.",
                  Seconds(skew).c_str(), endpoint_host_.c_str());
    if (corrected_ && !force && std::llabs(skew) < 60'000'000) {
      EP_LOG_NOTICE(kLog, "the device clock agrees with %s again (%s); signing with the device clock",
                    endpoint_host_.c_str(), Seconds(skew).c_str());
      corrected_ = false;
      return;
    }
    corrected_ = true;
    server_base_us_ = server_us;
    mono_base_us_ = clock_.MonotonicNowUs() - r.elapsed_us / 2;
  }
}

Result<HttpResponse> S3Sink::Exchange(const std::string& method, const std::string& key, std::string_view body,
                                      const std::string& body_sha256, const HttpHeaders& extra, Credentials* used) {
  const Target t = TargetFor(key);
  for (int attempt = 0;; ++attempt) {
    Result<Credentials> creds = credentials_->Get();
    if (!creds.ok()) return creds.status();
    const int64_t sign_us = SigningTimeUs();
    const int64_t sent_system_us = clock_.SystemNowUs();
    SigningRequest sr{method, t.host, t.encoded_path, "", extra, body_sha256};
    SignedHeaders sh = SignV4(sr, *creds, opt_.region, sign_us);
    HttpRequest req{method, t.url, std::move(sh.headers), body};
    Result<HttpResponse> r = transport_->Send(req);
    // The request carried the session token; drop our copy of the headers now.
    for (auto& [k, v] : req.headers) OPENSSL_cleanse(v.data(), v.size());
    if (used) *used = *creds;
    if (!r.ok()) return r;
    const bool skewed = r->status == 403 && ParseS3Error(*r).code == "RequestTimeTooSkewed";
    NoteServerDate(*r, sent_system_us, skewed && attempt == 0);
    if (skewed && attempt == 0 && ParseHttpDate(r->Header("date"))) continue;  // once, with the server's time
    return r;
  }
}

Result<HttpResponse> S3Sink::Send(const std::string& method, const std::string& key, std::string_view body,
                                  const HttpHeaders& extra) {
  return Exchange(method, key, body, body.empty() ? kEmptySha256 : Sha256Hex(body), extra, nullptr);
}

Result<PutResult> S3Sink::Put(const Object& object) {
  if (object.key.empty()) return InvalidArgumentError("refusing an empty object key");
  if (object.key.size() > 1024) return InvalidArgumentError("object key longer than 1024 bytes: " + object.key.substr(0, 80) + "...");
  HttpHeaders h;
  if (!object.content_type.empty()) h.emplace_back("Content-Type", object.content_type);
  if (opt_.checksum == ChecksumMode::kContentMd5) h.emplace_back("Content-MD5", object.md5_base64);
  if (opt_.checksum == ChecksumMode::kSha256) h.emplace_back("x-amz-checksum-sha256", HexToBase64(object.sha256_hex));
  for (const auto& [k, v] : object.metadata) h.emplace_back("x-amz-meta-" + k, EncodeMetadataValue(v));
  Credentials used;
  Result<HttpResponse> r = Exchange("PUT", object.key, object.body, object.sha256_hex, h, &used);
  const std::string what = "PUT s3://" + opt_.bucket + "/" + object.key;
  if (!r.ok()) return Status(r.status().code(), r.status().message());
  if (r->status >= 200 && r->status < 300) {
    std::string etag = r->Header("etag");
    // Single-part ETags are the body's MD5 on most servers (not with SSE-KMS): a difference is
    // worth a warning, not a retry, since the server verified Content-MD5 / the payload hash.
    std::string bare = etag.size() >= 2 && etag.front() == '"' ? etag.substr(1, etag.size() - 2) : etag;
    if (bare.size() == 32 && bare.find_first_not_of("0123456789abcdef") == std::string::npos &&
        bare != Md5Hex(object.body) && !etag_warned_.exchange(true))
      EP_LOG_WARN(kLog, "%s: the ETag %s is not the MD5 of the body (normal with SSE-KMS/SSE-C encryption)", what.c_str(),
                  etag.c_str());
    return PutResult{etag};
  }
  S3Error e = ParseS3Error(*r);
  if (IsAuthProblem(e)) credentials_->Invalidate();
  return ClassifyS3Error(e, what, used.Describe());
}

ProbeReport S3Sink::Probe() {
  ProbeReport rep;
  rep.ran = true;
  unsigned char rnd[6];
  RAND_bytes(rnd, sizeof rnd);
  std::string suffix;
  for (unsigned char c : rnd) suffix += StrFormat("%02x", c);
  std::string key = opt_.probe_prefix + "/.edgepipe-probe/" + opt_.probe_tag + "-" + suffix;
  while (!key.empty() && key.front() == '/') key.erase(0, 1);
  const std::string body = "edgepipe start-up probe " + FormatIso8601Ms(clock_.SystemNowUs()) + "\n";
  const std::string url = "s3://" + opt_.bucket + "/" + key;

  Object probe;
  probe.key = key;
  probe.body = body;
  probe.content_type = "text/plain";
  probe.sha256_hex = Sha256Hex(body);
  probe.md5_base64 = Md5Base64(body);
  probe.metadata["edgepipe-probe"] = "1";
  Result<PutResult> put = Put(probe);
  rep.put = put.ok() ? Status::Ok() : put.status();
  // The PUT (or its rejection) went through Exchange, which saw the Date header; measure again
  // with a HEAD so the report has a figure even when PUT failed.
  Result<HttpResponse> head = Send("HEAD", key);
  if (head.ok()) {
    if (std::optional<int64_t> server = ParseHttpDate(head->Header("date"))) {
      const int64_t local_mid = clock_.SystemNowUs() - head->elapsed_us / 2;
      rep.clock_skew_us = *server + 500'000 - local_mid;
      if (std::llabs(*rep.clock_skew_us) > opt_.skew_tolerance_us && ClockCorrectionUs() == 0) {
        NoteServerDate(*head, clock_.SystemNowUs() - head->elapsed_us, true);
      }
    }
  }
  if (put.ok()) {
    if (!head.ok()) {
      rep.head = head.status();
    } else if (head->status != 200) {
      rep.head = ClassifyS3Error(ParseS3Error(*head), "HEAD " + url, "credentials");
    } else if (head->Header("content-length") != std::to_string(body.size())) {
      rep.head = DataLossError("HEAD " + url + ": size " + head->Header("content-length") + ", expected " +
                               std::to_string(body.size()));
    }
    Result<HttpResponse> del = Send("DELETE", key);
    if (!del.ok()) rep.del = del.status();
    else if (del->status != 204 && del->status != 200)
      rep.del = ClassifyS3Error(ParseS3Error(*del), "DELETE " + url, "credentials");
  } else {
    rep.head = CancelledError("not run: PUT failed");
    rep.del = CancelledError("not run: PUT failed");
  }
  auto word = [](const Status& s) { return s.ok() ? std::string("ok") : std::string(StatusCodeName(s.code())); };
  rep.summary = "probe of " + Describe() + ": PUT " + word(rep.put) + ", HEAD " + word(rep.head) + ", DELETE " + word(rep.del);
  if (rep.clock_skew_us) rep.summary += "; server clock " + Seconds(*rep.clock_skew_us) + " from the device clock";
  else rep.summary += "; clock skew unknown (no Date header)";
  if (!rep.put.ok()) rep.summary += "; uploads will fail: " + rep.put.message();
  else if (!rep.del.ok()) rep.summary += "; the probe object " + key + " was left behind (" + rep.del.message() + ")";
  else if (!rep.head.ok()) rep.summary += "; " + rep.head.message();
  return rep;
}

}  // namespace edgepipe::uploader
