// A Paho async client kept connected by a thread of its own: connect, on failure or loss wait
// (exponential backoff with jitter) and connect again. Shared by the MQTT source and the
// republisher. Paho exceptions stop here and become Status values.
#pragma once

#include <mqtt/async_client.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/status.h"
#include "edgepipe/firmware_bridge/mqtt.h"

namespace edgepipe::fb {

struct SessionConfig {
  std::string log_name;            // "mqtt source 'x'" for log lines
  MqttClientOptions client;
  bool clean_session = false;
  std::string will_topic;          // "" = no will / status
  // Turn Nagle's algorithm off on this session's connection (the republisher: its small packs
  // would otherwise wait for the broker's delayed ACK, up to 40 ms; see mqtt_session.cpp).
  bool tcp_nodelay = false;
  // Called on the session thread after each successful connect (subscribe, publish status).
  std::function<Status(mqtt::async_client&, bool session_present)> on_connected;
  // Installed before connecting (runs on Paho's delivery thread).
  std::function<void(mqtt::const_message_ptr)> on_message;
};

class MqttSession {
 public:
  MqttSession(SessionConfig config, Clock& clock);
  ~MqttSession();
  Status Start();
  // Stops reconnecting; publishes `final_status` retained to the will topic (if any) and
  // disconnects. Safe to call twice.
  void Stop(const std::string& final_status);

  bool connected() const { return connected_; }
  std::string state() const;
  std::string last_error() const;
  uint64_t connects() const { return connects_; }
  uint64_t failures() const { return failures_; }
  mqtt::async_client* client() { return cli_.get(); }
  // Waits for a token in short slices; gives up early when the connection drops or Stop() is
  // called (Paho never completes a token whose connection was lost). May throw mqtt::exception.
  bool WaitToken(const mqtt::token_ptr& tok, int64_t timeout_ms);

 private:
  void Loop();
  Status ConnectOnce();
  void SetNoDelayOnNewSockets(int port, const std::set<std::pair<int, ino_t>>& before);
  mqtt::connect_options BuildOptions() const;

  SessionConfig cfg_;
  Clock& clock_;
  std::unique_ptr<mqtt::async_client> cli_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool stopped_ = false;
  std::atomic<bool> connected_{false};
  std::atomic<bool> link_up_{false};  // TCP/MQTT link up (set before the subscriptions are made)
  std::atomic<bool> stopping_{false};
  std::string state_ = "stopped";
  std::string last_error_;
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> failures_{0};
  std::mt19937_64 rng_{std::random_device{}()};
  RateLimitedLog fail_log_{60'000'000};
};

}  // namespace edgepipe::fb
