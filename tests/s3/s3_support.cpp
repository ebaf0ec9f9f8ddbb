#include "s3_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "edgepipe/core/clock.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/s3_sink.h"
#include "edgepipe/uploader/sigv4.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

namespace fs = std::filesystem;

namespace edgepipe::testing {

// ---- radosgw ----

namespace {

std::string Tail(const std::string& path, size_t n = 3000) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "(no " + path + ")";
  std::string s = ReadFile(path);
  return s.size() > n ? s.substr(s.size() - n) : s;
}

}  // namespace

RgwServer::~RgwServer() {
  if (dir_.empty()) return;
  // Stop the daemons by their pid files (no FAIL here: this runs after the tests).
  std::string cmd = "bash '" + SourceDir() + "/scripts/rgw-down.sh' '" + dir_ + "/cluster' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) fprintf(stderr, "rgw-down.sh failed for %s\n", dir_.c_str());
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool RgwServer::Start(std::string* error) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/edgepipe-rgw-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    *error = "mkdtemp failed";
    return false;
  }
  dir_ = buf.data();
  // A throw-away CA and a server certificate for 127.0.0.1 and localhost (HTTPS tests).
  const std::string d = dir_;
  const std::string gen =
      "set -e; cd '" + d + "'; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=edgepipe-test-ca 2>/dev/null; "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null; "
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nkeyUsage=digitalSignature,"
      "keyEncipherment\\nextendedKeyUsage=serverAuth\\n' > san.ext; "
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
      "-extfile san.ext 2>/dev/null; cat server.crt server.key > server.pem";
  ProcessResult g = RunProcess({"bash", "-c", gen});
  if (g.exit_code != 0) {
    *error = "generating test certificates failed: " + g.err;
    return false;
  }
  ca_file_ = d + "/ca.crt";
  for (int attempt = 0; attempt < 2; ++attempt) {
    int http = FreePort(), https = FreePort(), mon = FreePort();
    while (https == http) https = FreePort();
    while (mon == http || mon == https) mon = FreePort();
    ProcessResult r = RunProcess({"bash", SourceDir() + "/scripts/rgw-up.sh", d + "/cluster", std::to_string(http), std::to_string(mon)},
                                 {"RGW_SSL_PORT=" + std::to_string(https), "RGW_SSL_CERT=" + d + "/server.pem",
                                  "RGW_SSL_KEY=" + d + "/server.key", "S3_ACCESS_KEY=" + std::string(kS3AccessKey),
                                  "S3_SECRET_KEY=" + std::string(kS3SecretKey)},
                                 150);
    if (r.exit_code == 0) {
      http_port_ = http;
      http_ = "http://127.0.0.1:" + std::to_string(http);
      https_ = "https://127.0.0.1:" + std::to_string(https);
      started_ = true;
      return true;
    }
    *error = "scripts/rgw-up.sh failed (exit " + std::to_string(r.exit_code) + "): " + r.err + r.out +
             "\n--- radosgw log tail:\n" + Tail(d + "/cluster/log/client.rgw.a.log");
    std::system(("bash '" + SourceDir() + "/scripts/rgw-down.sh' '" + d + "/cluster' --keep >/dev/null 2>&1").c_str());
  }
  return false;
}

std::string RgwServer::NewBucket(const std::string& prefix) {
  std::string name = "t-" + prefix + "-" + std::to_string(++buckets_);
  CurlResult r = S3Curl(http_, "PUT", "/" + name);
  if (r.status != 200) FAIL(("creating bucket " + name + ": HTTP " + std::to_string(r.status) + " " + r.body).c_str());
  return name;
}

RgwServer& Rgw() {
  static RgwServer server;
  static bool tried = false;
  static std::string error;
  if (!tried) {
    tried = true;
    if (!server.Start(&error)) error = "could not start radosgw: " + error;
  }
  if (!error.empty()) FAIL(error.c_str());
  return server;
}

// ---- curl ----

CurlResult S3Curl(const std::string& endpoint, const std::string& method, const std::string& path,
                  const std::string& upload_file, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                                   std::string(kS3AccessKey) + ":" + kS3SecretKey, "-H",
                                   "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", method, "-w", "\n%{http_code}"};
  if (!upload_file.empty()) {
    argv.push_back("-T");
    argv.push_back(upload_file);
  }
  for (const auto& a : extra) argv.push_back(a);
  argv.push_back(endpoint + path);
  ProcessResult p = RunProcess(argv, {}, 60);
  CurlResult r;
  size_t nl = p.out.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(p.out.c_str() + nl + 1);
  r.body = p.out.substr(0, nl);
  return r;
}

namespace {

std::string XmlUnescape(std::string s) {
  const std::pair<const char*, const char*> ents[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : ents) {
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, std::strlen(from), to);
      pos += std::strlen(to);
    }
  }
  return s;
}

std::vector<std::string> Tags(const std::string& body, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = body.find(open, pos)) != std::string::npos) {
    pos += open.size();
    size_t end = body.find(close, pos);
    if (end == std::string::npos) break;
    out.push_back(XmlUnescape(body.substr(pos, end - pos)));
    pos = end;
  }
  return out;
}

}  // namespace

std::vector<std::string> ListKeys(const std::string& endpoint, const std::string& bucket, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    // curl 7.88 signs the query as given: names sorted, values encoded (setup-verified.md §3d).
    std::string q = "?";
    if (!token.empty()) q += "continuation-token=" + uploader::UriEncode(token, false) + "&";
    q += "list-type=2&prefix=" + uploader::UriEncode(prefix, false);
    CurlResult r = S3Curl(endpoint, "GET", "/" + bucket + q);
    if (r.status != 200) FAIL(("listing " + bucket + ": HTTP " + std::to_string(r.status) + " " + r.body).c_str());
    for (auto& k : Tags(r.body, "Key")) keys.push_back(k);
    std::vector<std::string> next = Tags(r.body, "NextContinuationToken");
    std::vector<std::string> trunc = Tags(r.body, "IsTruncated");
    if (trunc.empty() || trunc[0] != "true" || next.empty()) break;
    token = next[0];
  }
  return keys;
}

std::string GetObject(const std::string& endpoint, const std::string& bucket, const std::string& key) {
  CurlResult r = S3Curl(endpoint, "GET", "/" + bucket + "/" + uploader::UriEncode(key, true));
  if (r.status != 200) FAIL(("GET " + key + ": HTTP " + std::to_string(r.status) + " " + r.body).c_str());
  return r.body;
}

// ---- FaultProxy ----

namespace {

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

FaultProxy::FaultProxy(int upstream_port) : upstream_port_(upstream_port) { Listen(); }

FaultProxy::~FaultProxy() {
  stop_ = true;
  ReleaseStalls();
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(conns_);
  }
  for (auto& t : conns) t.join();
}

void FaultProxy::Listen() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port_));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    FAIL(("fault proxy: cannot listen on 127.0.0.1:" + std::to_string(port_) + ": " + std::strerror(errno)).c_str());
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
  acceptor_ = std::thread([this, fd] { AcceptLoop(fd); });
}

void FaultProxy::AcceptLoop(int lfd) {
  while (!stop_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (listen_fd_ != lfd) break;  // Down()
    }
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    conns_.emplace_back([this, c] { Serve(c); });
  }
  ::close(lfd);
}

void FaultProxy::Down() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    listen_fd_ = -1;
  }
  if (acceptor_.joinable()) acceptor_.join();
}

void FaultProxy::Up() { Listen(); }

void FaultProxy::Add(const Rule& rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(rule);
}

void FaultProxy::ClearRules() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

void FaultProxy::ReleaseStalls() {
  std::lock_guard<std::mutex> lock(mu_);
  ++release_gen_;
  cv_.notify_all();
}

std::vector<FaultProxy::Seen> FaultProxy::seen() {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

size_t FaultProxy::Count(const std::string& method, const std::string& match) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& s : seen_)
    if (s.method == method && s.target.find(match) != std::string::npos) ++n;
  return n;
}

bool FaultProxy::TakeRule(const std::string& method, const std::string& target, Rule* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (!it->method.empty() && it->method != method) continue;
    if (!it->match.empty() && target.find(it->match) == std::string::npos) continue;
    *out = *it;
    if (it->count > 0 && --it->count == 0) rules_.erase(it);
    return true;
  }
  return false;
}

bool FaultProxy::WaitStall(int ms) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t gen = release_gen_;
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return release_gen_ != gen || stop_; });
}

void FaultProxy::Serve(int fd) {
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string in;
  char buf[65536];
  size_t head_end;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  std::string head = in.substr(0, head_end + 2);
  std::string body = in.substr(head_end + 4);
  std::istringstream hs(head);
  std::string method, target, version, line;
  hs >> method >> target >> version;
  std::getline(hs, line);
  size_t content_length = 0;
  bool expect = false;
  std::vector<std::string> forward;
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string name = Lower(line.substr(0, line.find(':')));
    std::string value = line.find(':') == std::string::npos ? "" : line.substr(line.find(':') + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "content-length") content_length = std::stoul(value);
    if (name == "expect") {
      expect = Lower(value) == "100-continue";
      continue;
    }
    if (name == "connection" || name == "keep-alive") continue;
    forward.push_back(line);
  }
  Seen seen{method, target, "", 0, 0, 0, false};
  Rule rule;
  const bool faulted = TakeRule(method, target, &rule);
  seen.faulted = faulted;
  auto record = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(seen);
  };
  if (expect) SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
  const size_t want = faulted && rule.fault == Fault::kReset ? content_length / 2 : content_length;
  while (body.size() < want) {
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - body.size()), 0);
    if (n <= 0) break;
    body.append(buf, static_cast<size_t>(n));
  }
  seen.body_bytes = body.size();
  seen.body_sha256 = uploader::Sha256Hex(body);
  if (faulted && rule.fault == Fault::kReset) {
    linger l{1, 0};  // close with RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
    record();
    return;
  }
  if (body.size() < content_length) {  // client went away
    ::close(fd);
    record();
    return;
  }
  if (faulted && rule.fault == Fault::kStatus) {
    std::string doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + rule.code +
                      "</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>";
    std::string resp = "HTTP/1.1 " + std::to_string(rule.status) + " " + Reason(rule.status) +
                       "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(doc.size()) +
                       "\r\nDate: " + uploader::FormatHttpDate(RealClock::Default().SystemNowUs()) +
                       "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? "" : doc);
    SendAll(fd, resp);
    seen.answered = rule.status;
    ::close(fd);
    record();
    return;
  }
  if (faulted && rule.fault == Fault::kStall) {
    record();  // visible while stalled
    WaitStall(rule.stall_ms);
    ::close(fd);
    return;
  }
  if (faulted && rule.fault == Fault::kDelay) {
    WaitStall(rule.stall_ms);  // released early: forward at once
    if (stop_) {
      ::close(fd);
      record();
      return;
    }
  }
  // Forward on a fresh upstream connection.
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(up);
    SendAll(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    seen.answered = 502;
    ::close(fd);
    record();
    return;
  }
  timeval utv{60, 0};
  ::setsockopt(up, SOL_SOCKET, SO_RCVTIMEO, &utv, sizeof utv);
  std::string req = method + " " + target + " " + version + "\r\n";
  for (const auto& h : forward) req += h + "\r\n";
  req += "Connection: close\r\n\r\n" + body;
  SendAll(up, req);
  std::string resp;
  while (true) {
    ssize_t n = ::recv(up, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(up);
  if (resp.size() > 12) seen.upstream = std::atoi(resp.c_str() + 9);
  if (faulted && rule.fault == Fault::kStallReply) {
    record();
    WaitStall(rule.stall_ms);
    ::close(fd);
    return;
  }
  seen.answered = seen.upstream;
  SendAll(fd, resp);
  ::close(fd);
  record();
}

}  // namespace edgepipe::testing
