// S3 error replies: parsing and classification into the Status codes the upload loop acts on.
// The table in docs/s3.md mirrors ClassifyS3Error; keep them in step.
#include <openssl/evp.h>

#include <cstdio>
#include <cstring>

#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/s3_sink.h"

namespace edgepipe::uploader {
namespace {

std::string XmlTag(std::string_view body, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t a = body.find(open);
  if (a == std::string_view::npos) return "";
  a += open.size();
  size_t b = body.find(close, a);
  if (b == std::string_view::npos) return "";
  std::string v(body.substr(a, b - a));
  // Error messages are shown in logs: keep them printable and short.
  for (char& c : v)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  if (v.size() > 300) v = v.substr(0, 300) + "...";
  return v;
}

bool In(std::string_view code, std::initializer_list<std::string_view> set) {
  for (auto s : set)
    if (code == s) return true;
  return false;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

S3Error ParseS3Error(const HttpResponse& r) {
  S3Error e;
  e.http_status = r.status;
  e.code = XmlTag(r.body, "Code");
  e.message = XmlTag(r.body, "Message");
  e.request_id = XmlTag(r.body, "RequestId");
  if (e.request_id.empty()) e.request_id = r.Header("x-amz-request-id");
  if (e.code.empty()) e.code = r.Header("x-amz-error-code");  // some servers say it in a header (HEAD)
  return e;
}

Status ClassifyS3Error(const S3Error& e, const std::string& what, const std::string& creds) {
  std::string base = what + ": HTTP " + std::to_string(e.http_status) + (e.code.empty() ? "" : " " + e.code);
  if (!e.message.empty()) base += " (" + e.message + ")";
  const int st = e.http_status;
  const std::string& c = e.code;

  // Shared configuration problems: every batch would fail the same way.
  if (c == "InvalidAccessKeyId")
    return FailedPreconditionError(base + "; the server does not know the " + creds +
                                   ". Fix the credentials (docs/s3.md, \"Credentials\")");
  if (c == "SignatureDoesNotMatch")
    return FailedPreconditionError(base + "; the secret key does not belong to the " + creds +
                                   ", or upload.region does not match the endpoint");
  if (In(c, {"ExpiredToken", "TokenRefreshRequired", "InvalidToken"}))
    return FailedPreconditionError(base + "; the temporary credentials (" + creds +
                                   ") expired or are invalid: refresh them; the agent reads them again before every retry");
  if (In(c, {"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidPayer"}) || (st == 403 && c.empty()))
    return FailedPreconditionError(base + "; the " + creds +
                                   " may not write to this bucket/prefix: grant s3:PutObject (and for the start-up probe "
                                   "s3:GetObject, s3:DeleteObject)");
  if (c == "RequestTimeTooSkewed")
    return FailedPreconditionError(base + "; the device clock is too far from the server's and the server sent no "
                                          "usable Date header to correct it: fix the time (NTP/RTC)");
  if (In(c, {"NoSuchBucket", "InvalidBucketName"}) || (st == 404 && c.empty()))
    return FailedPreconditionError(base + "; create the bucket or fix the bucket name in upload.url");
  if (In(c, {"AuthorizationHeaderMalformed", "PermanentRedirect", "TemporaryRedirect", "IllegalLocationConstraintException"}) ||
      (st >= 300 && st < 400))
    return FailedPreconditionError(base + "; the bucket lives in another region or behind another endpoint: set "
                                          "upload.region / upload.endpoint (or upload.addressing)");
  if (In(c, {"InvalidStorageClass", "NotImplemented", "MissingContentLength", "MethodNotAllowed", "UnsupportedChecksum"}) ||
      st == 501 || st == 405 || st == 411)
    return FailedPreconditionError(base + "; the server does not support a request feature the agent uses: try "
                                          "upload.checksum = \"content-md5\" or \"none\", or upload.addressing = \"path\"");

  // Transient: retry with backoff.
  if (In(c, {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "OperationAborted", "IncompleteBody",
             "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests"}) ||
      st >= 500 || st == 429 || st == 408 || st == 409)
    return UnavailableError(base);

  // Anything else 4xx concerns this request: the object itself (too large, a digest the server
  // rejects, a key or metadata it refuses). The upload loop sets the batch aside after its retry
  // budget, once a probe shows the destination accepts other objects.
  if (st >= 400 && st < 500)
    return InvalidArgumentError(base + "; the server refuses this object");
  return UnavailableError(base + "; unexpected reply");
}

std::optional<int64_t> ParseHttpDate(std::string_view t) {
  // "Thu, 26 Nov 2026 06:26:09 GMT"
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  size_t comma = t.find(", ");
  if (comma == std::string_view::npos) return std::nullopt;
  std::string rest(t.substr(comma + 2));
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  char mon[4] = {0}, zone[4] = {0};
  if (sscanf(rest.c_str(), "%2d %3s %4d %2d:%2d:%2d %3s", &day, mon, &year, &hh, &mm, &ss, zone) != 7) return std::nullopt;
  if (std::strcmp(zone, "GMT") != 0 && std::strcmp(zone, "UTC") != 0) return std::nullopt;
  int month = 0;
  for (int i = 0; i < 12; ++i)
    if (std::strcmp(mon, kMonths[i]) == 0) month = i + 1;
  if (!month || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970) return std::nullopt;
  return UsFromCivil(CivilTime{year, month, day, hh, mm, ss, 0});
}

std::string FormatHttpDate(int64_t unix_us) {
  static const char* kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // 1970-01-01 was a Thursday
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  CivilTime c = CivilFromUs(unix_us);
  int64_t days = DaysFromCivil(c.year, c.month, c.day);
  int wd = static_cast<int>(((days % 7) + 7) % 7);
  char buf[40];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[wd], c.day, kMonths[c.month - 1], c.year, c.hour,
           c.minute, c.second);
  return buf;
}

std::string EncodeMetadataValue(std::string_view v) {
  bool plain = true;
  for (unsigned char c : v)
    if (c < 0x20 || c > 0x7e) plain = false;
  if (plain) return std::string(v);
  std::string b64(4 * ((v.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), reinterpret_cast<const unsigned char*>(v.data()),
                          static_cast<int>(v.size()));
  b64.resize(static_cast<size_t>(n));
  return "=?UTF-8?B?" + b64 + "?=";
}

}  // namespace edgepipe::uploader
