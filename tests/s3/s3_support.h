// Support for the `s3` tests: a radosgw shared by one test executable (started on first use on
// free loopback ports, stopped by PID at exit), a fault-injecting HTTP proxy, and small S3
// client helpers (curl --aws-sigv4, independent of the code under test).
// Include before <CppUTest/TestHarness.h>.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgepipe::testing {

constexpr const char* kS3AccessKey = "TESTKEY";
constexpr const char* kS3SecretKey = "TESTSECRET";

// One radosgw (one monitor + one memstore OSD) per test executable, with HTTP and HTTPS
// (self-signed CA in ca_file(), certificate for 127.0.0.1 and localhost). Started by the first
// call to Rgw(); a failure to start fails the calling test with rgw's log tail.
class RgwServer {
 public:
  ~RgwServer();
  const std::string& http_endpoint() const { return http_; }    // http://127.0.0.1:PORT
  const std::string& https_endpoint() const { return https_; }  // https://127.0.0.1:PORT
  int http_port() const { return http_port_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& dir() const { return dir_; }
  // Creates a bucket with a unique name ("t-<prefix>-<n>") and returns the name.
  std::string NewBucket(const std::string& prefix);

  bool Start(std::string* error);

 private:
  std::string dir_, http_, https_, ca_file_;
  int http_port_ = 0;
  bool started_ = false;
  int buckets_ = 0;
};
RgwServer& Rgw();

// Signed requests with the curl command line tool (an independent S3 client).
struct CurlResult {
  int status = 0;
  std::string body;
};
CurlResult S3Curl(const std::string& endpoint, const std::string& method, const std::string& path,
                  const std::string& upload_file = "", const std::vector<std::string>& extra_args = {});
// Keys in a bucket under `prefix` (ListObjectsV2, follows continuation tokens).
std::vector<std::string> ListKeys(const std::string& endpoint, const std::string& bucket, const std::string& prefix = "");
// The bytes of an object ("" and a failed check when absent).
std::string GetObject(const std::string& endpoint, const std::string& bucket, const std::string& key);

// A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of an upstream server. Each client
// request is read whole (answering "Expect: 100-continue" itself), then either forwarded on a
// fresh upstream connection ("Connection: close"; the client connection is closed after the
// reply) or answered by the first matching fault rule. Records every request it saw.
class FaultProxy {
 public:
  enum class Fault {
    kStatus,  // reply `status` with an S3 error document <Code>code</Code>
    kStall,   // read the request, never answer, close after stall_ms (or at Release/Stop)
    kReset,   // read the headers and part of the body, then reset the connection
    kDelay,   // wait stall_ms, then forward
    kStallReply,  // forward (the server stores the object), but hold the reply back like kStall
  };
  struct Rule {
    Fault fault = Fault::kStatus;
    int status = 503;
    std::string code = "SlowDown";
    int count = 1;              // requests this rule applies to (-1: every one)
    std::string method = "PUT"; // "" = any
    std::string match;          // substring of the request target ("" = any)
    int stall_ms = 60'000;

    static Rule Status(int status, std::string code, int count, std::string match = "") {
      Rule r;
      r.status = status;
      r.code = std::move(code);
      r.count = count;
      r.match = std::move(match);
      return r;
    }
    static Rule Timed(Fault f, int count, int ms, std::string match = "") {
      Rule r;
      r.fault = f;
      r.count = count;
      r.stall_ms = ms;
      r.match = std::move(match);
      return r;
    }
  };
  struct Seen {
    std::string method, target, body_sha256;
    size_t body_bytes = 0;
    int answered = 0;           // status sent to the client (0 = none: stalled/reset/cut)
    int upstream = 0;           // status the server gave (0 = not forwarded)
    bool faulted = false;
  };

  explicit FaultProxy(int upstream_port);
  ~FaultProxy();
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void Add(const Rule& rule);
  void ClearRules();
  // Down: the listening socket is closed (connection refused) until Up().
  void Down();
  void Up();
  // Ends every stall now (the stalled connections are closed without a reply).
  void ReleaseStalls();
  std::vector<Seen> seen();
  // Requests seen so far with this method whose target contains `match`.
  size_t Count(const std::string& method, const std::string& match = "");

 private:
  void Listen();
  void AcceptLoop(int listen_fd);
  void Serve(int fd);
  bool TakeRule(const std::string& method, const std::string& target, Rule* out);
  bool WaitStall(int ms);

  int upstream_port_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Rule> rules_;
  std::vector<Seen> seen_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::vector<std::thread> conns_;
  std::atomic<bool> stop_{false};
  uint64_t release_gen_ = 0;
};

}  // namespace edgepipe::testing
