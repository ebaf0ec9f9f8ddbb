#include "broker.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <CppUTest/TestHarness.h>

namespace edgepipe::testing {
namespace {

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

void Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = RunProcess(argv);
  if (r.exit_code != 0) FAIL(("openssl failed: " + r.err).c_str());
}

void MakeCa(const std::string& key, const std::string& crt, const std::string& cn) {
  Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
           "-out", crt, "-days", "2", "-subj", "/CN=" + cn});
}

void MakeLeaf(const std::string& dir, const std::string& name, const std::string& cn, const std::string& ext) {
  WriteFile(dir + "/" + name + ".ext", ext);
  Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj", "/CN=" + cn});
  Openssl({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
           "-CAcreateserial", "-out", dir + "/" + name + ".crt", "-days", "2", "-extfile", dir + "/" + name + ".ext"});
}

}  // namespace

Broker::Broker(const std::string& dir, BrokerOptions options) : dir_(dir), opt_(options) {
  port_ = FreePort();
  tls_port_ = FreePort();
  while (tls_port_ == port_) tls_port_ = FreePort();
  RunProcess({"mkdir", "-p", dir_ + "/data"});
  std::string conf;
  if (getuid() == 0) conf += "user root\n";  // see shared/notes/setup-verified.md section 2
  conf += "per_listener_settings false\n";
  conf += opt_.password ? "allow_anonymous false\npassword_file " + dir_ + "/passwd\n" : "allow_anonymous true\n";
  conf += "persistence true\npersistence_location " + dir_ + "/data/\nautosave_interval 1\n";
  conf += "max_queued_messages " + std::to_string(opt_.max_queued_messages) + "\n";
  conf += "log_dest file " + dir_ + "/mosquitto.log\nlog_timestamp_format %H:%M:%S\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n" + std::string(getenv("BROKER_DEBUG") ? "log_type all\n" : "");
  conf += "listener " + std::to_string(port_) + " 127.0.0.1\n";
  if (opt_.tls) {
    MakeCerts();
    conf += "listener " + std::to_string(tls_port_) + " 127.0.0.1\n";
    conf += "cafile " + ca_file() + "\ncertfile " + dir_ + "/server.crt\nkeyfile " + dir_ + "/server.key\n";
    if (opt_.require_client_cert) conf += "require_certificate true\n";
  }
  if (opt_.password) {
    ProcessResult r = RunProcess({"mosquitto_passwd", "-c", "-b", dir_ + "/passwd", kUser, kPassword});
    if (r.exit_code != 0) FAIL(("mosquitto_passwd: " + r.err).c_str());
  }
  WriteFile(dir_ + "/mosquitto.conf", conf);
}

Broker::~Broker() { Stop(); }

void Broker::MakeCerts() {
  MakeCa(dir_ + "/ca.key", ca_file(), "edgepipe-test-ca");
  MakeLeaf(dir_, "server", "localhost",
           "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
           "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  MakeLeaf(dir_, "client", "edgepipe-agent",
           "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n");
}

std::string Broker::OtherCa() {
  MakeCa(dir_ + "/other.key", dir_ + "/other.crt", "someone-else");
  return dir_ + "/other.crt";
}

void Broker::Start() {
  child_ = std::make_unique<Child>(std::vector<std::string>{"mosquitto", "-c", dir_ + "/mosquitto.conf"},
                                   std::vector<std::string>{}, dir_ + "/broker.log", dir_ + "/broker.log");
  bool up = WaitUntil(10'000, [&] { return CanConnect(port_) && (!opt_.tls || CanConnect(tls_port_)); });
  if (!up) FAIL(("mosquitto did not come up: " + Log()).c_str());
}

void Broker::Stop() {
  if (!child_) return;
  child_->Signal(SIGTERM);
  if (child_->Wait(10'000) == -1000) child_->Signal(SIGKILL);
  child_.reset();
}

std::string Broker::Log() const {
  return (FileExists(dir_ + "/broker.log") ? ReadFile(dir_ + "/broker.log") : "") +
         (FileExists(dir_ + "/mosquitto.log") ? ReadFile(dir_ + "/mosquitto.log") : "");
}

}  // namespace edgepipe::testing
