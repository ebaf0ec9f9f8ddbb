#include "mqtt_session.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <utility>

namespace edgepipe::fb {
namespace {

constexpr const char* kLog = "mqtt";

bool IsTls(const std::string& url) { return url.rfind("ssl://", 0) == 0 || url.rfind("mqtts://", 0) == 0; }

std::string Describe(const mqtt::exception& e) {
  std::string s = e.what();
  if (e.get_reason_code() == 5 || e.get_return_code() == 5) s += " (not authorised: check username/password)";
  else if (e.get_return_code() == 4) s += " (bad username or password)";
  else if (e.get_return_code() == -1) s += " (TCP/TLS connect failure: is the broker up, is the CA right?)";
  return s;
}

// The broker's TCP port from its URL: "tcp://host:1883", "ssl://[::1]:8883", "ws://host/mqtt"
// (the scheme's default when the URL names none).
int BrokerPort(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  std::string host = scheme_end == std::string::npos ? url : url.substr(scheme_end + 3);
  host = host.substr(0, host.find('/'));
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos && colon + 1 < host.size() && host.find(']', colon) == std::string::npos &&
      host.find_first_not_of("0123456789", colon + 1) == std::string::npos)
    return std::atoi(host.c_str() + colon + 1);
  if (scheme == "ssl" || scheme == "mqtts") return 8883;
  if (scheme == "ws") return 80;
  if (scheme == "wss") return 443;
  return 1883;
}

// This process's TCP sockets connected to `port`, as (descriptor, inode) pairs (an inode tells a
// new socket from an older one that had the same descriptor).
std::set<std::pair<int, ino_t>> TcpSocketsTo(int port) {
  std::set<std::pair<int, ino_t>> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  while (const dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || fd < 0 || fd == dirfd(d)) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    int type = 0;
    socklen_t tlen = sizeof type;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) continue;
    int peer_port = -1;
    if (peer.ss_family == AF_INET) peer_port = ntohs(reinterpret_cast<const sockaddr_in*>(&peer)->sin_port);
    else if (peer.ss_family == AF_INET6) peer_port = ntohs(reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_port);
    if (peer_port == port) out.emplace(static_cast<int>(fd), st.st_ino);
  }
  closedir(d);
  return out;
}

}  // namespace

Status CheckMqttClientOptions(const MqttClientOptions& o) {
  const std::string& u = o.url;
  if (!(u.rfind("tcp://", 0) == 0 || u.rfind("mqtt://", 0) == 0 || IsTls(u) || u.rfind("ws://", 0) == 0 ||
        u.rfind("wss://", 0) == 0))
    return InvalidArgumentError("broker url \"" + u + "\" must start with tcp://, ssl:// (or mqtt://, mqtts://, ws://, wss://)");
  if (o.version != 4 && o.version != 5) return InvalidArgumentError("mqtt version must be 4 (3.1.1) or 5");
  for (const std::string* f : {&o.ca_file, &o.cert_file, &o.key_file}) {
    if (!f->empty() && access(f->c_str(), R_OK) != 0)
      return FailedPreconditionError("cannot read TLS file " + *f + ": " + std::string(strerror(errno)));
  }
  if (o.cert_file.empty() != o.key_file.empty())
    return InvalidArgumentError("a TLS client certificate needs both cert_file and key_file");
  if (o.client_id.empty()) return InvalidArgumentError("client id is empty");
  return Status::Ok();
}

MqttSession::MqttSession(SessionConfig config, Clock& clock) : cfg_(std::move(config)), clock_(clock) {}

MqttSession::~MqttSession() { Stop(""); }

std::string MqttSession::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::string MqttSession::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

mqtt::connect_options MqttSession::BuildOptions() const {
  const MqttClientOptions& o = cfg_.client;
  mqtt::connect_options co;
  co.set_mqtt_version(o.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1);
  if (o.version == 5) {
    co.set_clean_session(false);
    co.set_clean_start(cfg_.clean_session);
    mqtt::properties props;
    props.add({mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int>(cfg_.clean_session ? 0 : o.session_expiry_s)});
    co.set_properties(std::move(props));
  } else {
    co.set_clean_session(cfg_.clean_session);
  }
  co.set_keep_alive_interval(std::max<int>(1, static_cast<int>(o.keep_alive_us / 1'000'000)));
  co.set_connect_timeout(std::max<int>(1, static_cast<int>(o.connect_timeout_us / 1'000'000)));
  co.set_automatic_reconnect(false);  // the session thread reconnects (with our backoff and logs)
  if (!o.username.empty()) co.set_user_name(o.username);
  if (!o.password.empty()) co.set_password(o.password);
  if (!cfg_.will_topic.empty()) co.set_will(mqtt::will_options(cfg_.will_topic, std::string("offline"), 1, true));
  if (IsTls(o.url)) {
    mqtt::ssl_options ssl;
    if (!o.ca_file.empty()) ssl.set_trust_store(o.ca_file);
    if (!o.cert_file.empty()) ssl.set_key_store(o.cert_file);
    if (!o.key_file.empty()) ssl.set_private_key(o.key_file);
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(o.verify_hostname);
    co.set_ssl(std::move(ssl));
  }
  return co;
}

Status MqttSession::Start() {
  EP_RETURN_IF_ERROR(CheckMqttClientOptions(cfg_.client));
  try {
    mqtt::create_options copts(cfg_.client.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, 10'000);
    cli_ = std::make_unique<mqtt::async_client>(cfg_.client.url, cfg_.client.client_id, copts, nullptr);
  } catch (const mqtt::exception& e) {
    return InvalidArgumentError("cannot create MQTT client for " + cfg_.client.url + ": " + e.what());
  }
  if (cfg_.on_message) cli_->set_message_callback(cfg_.on_message);
  cli_->set_connection_lost_handler([this](const std::string& cause) {
    link_up_ = false;
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = false;
    state_ = "disconnected";
    last_error_ = "connection lost" + (cause.empty() ? std::string() : ": " + cause);
    EP_LOG_WARN(kLog, "%s: connection to %s lost%s%s; reconnecting", cfg_.log_name.c_str(), cfg_.client.url.c_str(),
                cause.empty() ? "" : ": ", cause.c_str());
    cv_.notify_all();
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    state_ = "connecting";
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool MqttSession::WaitToken(const mqtt::token_ptr& tok, int64_t timeout_ms) {
  for (int64_t waited = 0; waited < timeout_ms; waited += 50) {
    if (tok->wait_for(std::chrono::milliseconds(50))) return true;
    if (!link_up_ || stopping_) return false;
  }
  return false;
}

// Paho (C 1.3) sets no socket option and gives no access to its socket, so Nagle's algorithm is
// on: a small publish that follows one the broker has not acknowledged yet is held until the
// broker's ACK, which Linux delays up to 40 ms when the receiver has nothing to send back (as a
// broker receiving QoS 0 publishes). Measured with the republisher (docs/benchmarks.md): added
// p99 27-38 ms at 10 k readings/s, 6 ms with TCP_NODELAY. So a session that asks for it sets it
// on the socket its connect created: the process's TCP sockets to the broker's port that were
// not there before the connect. (Another client connecting to the same port at that very moment
// gets the option too, which does no harm.)
void MqttSession::SetNoDelayOnNewSockets(int port, const std::set<std::pair<int, ino_t>>& before) {
  int set = 0;
  for (const auto& [fd, ino] : TcpSocketsTo(port)) {
    if (before.count({fd, ino})) continue;
    const int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++set;
  }
  if (set == 0)
    EP_LOG_DEBUG(kLog, "%s: found no new socket to %s to set TCP_NODELAY on", cfg_.log_name.c_str(), cfg_.client.url.c_str());
}

Status MqttSession::ConnectOnce() {
  try {
    const int port = cfg_.tcp_nodelay ? BrokerPort(cfg_.client.url) : 0;
    std::set<std::pair<int, ino_t>> before;
    if (cfg_.tcp_nodelay) before = TcpSocketsTo(port);
    mqtt::token_ptr tok = cli_->connect(BuildOptions());
    if (!tok->wait_for(std::chrono::milliseconds(cfg_.client.connect_timeout_us / 1000 + 2000)))
      return UnavailableError("connect to " + cfg_.client.url + " timed out");
    bool present = tok->get_connect_response().is_session_present();
    link_up_ = true;
    if (cfg_.tcp_nodelay) SetNoDelayOnNewSockets(port, before);
    if (cfg_.on_connected) {
      Status s = cfg_.on_connected(*cli_, present);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  } catch (const mqtt::exception& e) {
    return UnavailableError("connect to " + cfg_.client.url + ": " + Describe(e));
  }
}

void MqttSession::Loop() {
  int64_t backoff = cfg_.client.reconnect_min_us;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (connected_) {
      cv_.wait(lock, [&] { return stop_ || !connected_; });
      continue;
    }
    state_ = "connecting";
    lock.unlock();
    Status s = ConnectOnce();
    lock.lock();
    // The link may have dropped while we subscribed: the loss callback already ran, so marking
    // the session connected now would leave it waiting forever on a dead link.
    if (s.ok() && !link_up_) s = UnavailableError("connection to " + cfg_.client.url + " lost while subscribing");
    if (s.ok()) {
      connected_ = true;
      state_ = "connected";
      backoff = cfg_.client.reconnect_min_us;
      ++connects_;
      EP_LOG_NOTICE(kLog, "%s: connected to %s as %s", cfg_.log_name.c_str(), cfg_.client.url.c_str(),
                    cfg_.client.client_id.c_str());
      continue;
    }
    ++failures_;
    state_ = "disconnected";
    last_error_ = s.message();
    uint64_t suppressed = 0;
    if (fail_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
      EP_LOG_WARN(kLog, "%s: %s; retrying with backoff (%llu similar messages suppressed)", cfg_.log_name.c_str(),
                  s.message().c_str(), static_cast<unsigned long long>(suppressed));
    try {
      if (cli_->is_connected()) cli_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
    // Full jitter between half the backoff and the backoff.
    std::uniform_int_distribution<int64_t> jitter(backoff / 2, backoff);
    cv_.wait_for(lock, std::chrono::microseconds(jitter(rng_)), [&] { return stop_; });
    backoff = std::min(backoff * 2, cfg_.client.reconnect_max_us);
  }
}

void MqttSession::Stop(const std::string& final_status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || !cli_) return;
    stopped_ = true;
    stop_ = true;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  try {
    if (cli_->is_connected()) {
      if (!cfg_.will_topic.empty() && !final_status.empty())
        cli_->publish(cfg_.will_topic, final_status.data(), final_status.size(), 1, true)
            ->wait_for(std::chrono::seconds(2));
      cli_->disconnect(1000)->wait_for(std::chrono::seconds(3));
    }
  } catch (const mqtt::exception& e) {
    EP_LOG_DEBUG(kLog, "%s: disconnect: %s", cfg_.log_name.c_str(), e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  connected_ = false;
  state_ = "stopped";
}

}  // namespace edgepipe::fb
