// A stand-in for systemd's notification socket: a SOCK_DGRAM AF_UNIX socket that records every
// datagram (one sd_notify call each) with its arrival time. Pass Env() to the agent process.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgepipe::testing {

class NotifyListener {
 public:
  struct Message {
    std::chrono::steady_clock::time_point at;
    std::string text;
  };

  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    unlink(path.c_str());
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    thread_ = std::thread([this] { Loop(); });
  }
  ~NotifyListener() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  std::string Env() const { return "NOTIFY_SOCKET=" + path_; }

  std::vector<Message> Messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  // Messages containing `needle` (e.g. "WATCHDOG=1").
  std::vector<Message> With(const std::string& needle) const {
    std::vector<Message> out;
    for (const Message& m : Messages())
      if (m.text.find(needle) != std::string::npos) out.push_back(m);
    return out;
  }
  size_t Count(const std::string& needle) const { return With(needle).size(); }
  // Index of the first message containing `needle` after index `from`, or -1.
  int IndexOf(const std::string& needle, int from = -1) const {
    std::vector<Message> all = Messages();
    for (int i = from + 1; i < static_cast<int>(all.size()); ++i)
      if (all[i].text.find(needle) != std::string::npos) return i;
    return -1;
  }
  std::string Dump() const {
    std::string s;
    for (const Message& m : Messages()) s += "[" + m.text + "]\n";
    return s;
  }

 private:
  void Loop() {
    char buf[4096];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back({std::chrono::steady_clock::now(), std::string(buf, static_cast<size_t>(n))});
    }
  }

  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Message> messages_;
  std::thread thread_;
};

}  // namespace edgepipe::testing
