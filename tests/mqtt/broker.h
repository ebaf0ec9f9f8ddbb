// A real Mosquitto broker for the MQTT tests, started on free loopback ports in a temp dir and
// stopped by PID. Optional password file and TLS listener (throw-away CA made with openssl).
#pragma once

#include <memory>
#include <string>

#include "test_util.h"

namespace edgepipe::testing {

struct BrokerOptions {
  bool password = false;        // allow_anonymous false + password file (users in kUsers)
  bool tls = false;             // a second listener with TLS
  bool require_client_cert = false;
  int max_queued_messages = 0;  // 0 = unlimited (what the agent needs); mosquitto's default is 1000
};

class Broker {
 public:
  static constexpr const char* kUser = "agent";
  static constexpr const char* kPassword = "s3cret";

  Broker(const std::string& dir, BrokerOptions options = {});
  ~Broker();
  void Start();
  // SIGTERM, wait (persistence is written on exit).
  void Stop();
  std::string Url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::string TlsUrl() const { return "ssl://127.0.0.1:" + std::to_string(tls_port_); }
  int port() const { return port_; }
  // CA that signs the broker (and client) certificates; a client cert/key signed by it.
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  std::string client_cert() const { return dir_ + "/client.crt"; }
  std::string client_key() const { return dir_ + "/client.key"; }
  // Writes a second, unrelated CA (for "untrusted broker" tests) and returns its path.
  std::string OtherCa();
  std::string Log() const;

 private:
  void MakeCerts();
  std::string dir_;
  BrokerOptions opt_;
  int port_ = 0;
  int tls_port_ = 0;
  std::unique_ptr<Child> child_;
};

}  // namespace edgepipe::testing
