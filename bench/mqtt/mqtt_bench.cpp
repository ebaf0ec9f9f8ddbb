// Helper for bench/mqtt/run.sh: loads a broker, measures the bare-Paho floor and the republish
// latency. Modes:
//   mqtt_bench publish URL TOPIC QOS COUNT KIND       publish COUNT messages (window of 50 in flight)
//       KIND: json (one reading: {"sensor":"t-17","ts":...,"value":...}) | senml50 (packs of 50)
//   mqtt_bench floor URL CLIENT_ID TOPIC QOS COUNT    bare Paho C++ subscriber that only counts:
//       connects (persistent session), receives COUNT messages, prints CPU and wall time
//   mqtt_bench session URL CLIENT_ID TOPIC QOS        create the persistent session and leave
//   mqtt_bench latency URL RATE SECONDS PREFIX        publish single readings (QoS 0) on lat/gw at RATE/s
//       stamped with the send time, receive their republished SenML under PREFIX#, print p50/p99
#include <mqtt/async_client.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int64_t WallUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string JsonReading(int k, int64_t ts_us) {
  char buf[128];
  snprintf(buf, sizeof buf, R"({"sensor":"t-%d","ts":%lld.%06lld,"value":%.2f})", k % 16,
           static_cast<long long>(ts_us / 1'000'000), static_cast<long long>(ts_us % 1'000'000), 20.0 + (k % 1000) * 0.01);
  return buf;
}

std::string SenmlPack(int k) {
  std::string s = "[{\"bn\":\"gw/pack" + std::to_string(k % 16) + "/\",\"bt\":" + std::to_string(1'700'000'000 + k) +
                  ",\"bu\":\"Cel\",\"n\":\"t0\",\"v\":21.5}";
  for (int i = 1; i < 50; ++i) {
    char rec[96];
    snprintf(rec, sizeof rec, ",{\"n\":\"t%d\",\"t\":0.%03d,\"v\":%.2f}", i, i, 20.0 + i * 0.1);
    s += rec;
  }
  return s + "]";
}

int Publish(const std::string& url, const std::string& topic, int qos, int count, const std::string& kind) {
  mqtt::async_client p(url, "bench-publisher", mqtt::create_options(MQTTVERSION_3_1_1, 1000), nullptr);
  p.connect()->wait();
  std::deque<mqtt::delivery_token_ptr> inflight;
  const int64_t base = 1'700'000'000'000'000;
  for (int k = 0; k < count; ++k) {
    if (inflight.size() >= 50) {
      inflight.front()->wait();
      inflight.pop_front();
    }
    std::string payload = kind == "senml50" ? SenmlPack(k) : JsonReading(k, base + int64_t{k} * 1000);
    inflight.push_back(p.publish(topic, payload.data(), payload.size(), qos == 0 ? 1 : qos, false));
  }
  for (auto& t : inflight) t->wait();
  p.disconnect()->wait();
  return 0;
}

mqtt::connect_options Persistent() {
  mqtt::connect_options o;
  o.set_clean_session(false);
  o.set_keep_alive_interval(60);
  return o;
}

int Session(const std::string& url, const std::string& id, const std::string& topic, int qos) {
  mqtt::async_client c(url, id, mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
  c.connect(Persistent())->wait();
  c.subscribe(topic, qos)->wait();
  c.disconnect()->wait();
  return 0;
}

int Floor(const std::string& url, const std::string& id, const std::string& topic, int qos, int count) {
  mqtt::async_client c(url, id, mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
  std::atomic<int> n{0};
  std::atomic<int64_t> bytes{0};
  c.set_message_callback([&](mqtt::const_message_ptr m) {
    bytes += static_cast<int64_t>(m->get_payload_ref().size());
    ++n;
  });
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  c.connect(Persistent())->wait();
  c.subscribe(topic, qos)->wait();
  while (n < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  c.disconnect()->wait();
  printf("messages=%d cpu_s=%.3f wall_s=%.3f us_per_msg=%.2f msgs_per_s=%.0f\n", count, cpu, wall, cpu / count * 1e6,
         count / wall);
  return 0;
}

int Latency(const std::string& url, int rate, int seconds, const std::string& prefix) {
  mqtt::async_client sub(url, "bench-latency-sub", mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
  // lat: republished readings (publisher -> broker -> agent -> broker -> here); base: the same
  // input readings straight from the broker (publisher -> broker -> here), measured in the same
  // run under the same load: the baseline the agent's share is read against.
  // Each entry: (sent stamp, arrival), both wall-clock microseconds.
  std::vector<std::pair<int64_t, int64_t>> lat, base;
  lat.reserve(static_cast<size_t>(rate) * seconds);
  base.reserve(static_cast<size_t>(rate) * seconds);
  std::mutex mu;
  sub.set_message_callback([&](mqtt::const_message_ptr m) {
    const int64_t now = WallUs();
    const std::string s = m->to_string();
    const bool input = m->get_topic().rfind("lat/", 0) == 0;
    const char* key = input ? "\"ts\":" : "\"t\":";
    const size_t klen = strlen(key);
    std::lock_guard<std::mutex> lock(mu);
    for (size_t t = s.find(key); t != std::string::npos; t = s.find(key, t + klen)) {
      const double sent = strtod(s.c_str() + t + klen, nullptr);
      (input ? base : lat).emplace_back(static_cast<int64_t>(sent * 1e6 + 0.5), now);
    }
  });
  sub.connect()->wait();
  sub.subscribe(prefix + "#", 0)->wait();
  sub.subscribe("lat/#", 0)->wait();
  mqtt::async_client pub(url, "bench-latency-pub", mqtt::create_options(MQTTVERSION_3_1_1, 100'000), nullptr);
  pub.connect()->wait();
  const int total = rate * seconds;
  const auto start = Clock::now();
  for (int k = 0; k < total; ++k) {
    const auto due = start + std::chrono::microseconds(static_cast<int64_t>(k) * 1'000'000 / rate);
    std::this_thread::sleep_until(due);
    std::string payload = JsonReading(k, WallUs());
    pub.publish("lat/gw", payload.data(), payload.size(), 0, false);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  pub.disconnect()->wait();
  sub.disconnect()->wait();
  std::lock_guard<std::mutex> lock(mu);
  if (lat.empty() || base.empty()) {
    printf("received=%zu baseline_received=%zu\n", lat.size(), base.size());
    return 1;
  }
  auto report = [&](const char* what, std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))] / 1000.0; };
    printf("%s: sent=%d received=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", what, total, v.size(), pct(0.5),
           pct(0.99), v.back() / 1000.0);
  };
  std::vector<int64_t> b, l, added;
  std::unordered_map<int64_t, int64_t> direct;  // sent stamp -> arrival straight from the broker
  for (auto [sent, at] : base) {
    b.push_back(at - sent);
    direct[sent] = at;
  }
  for (auto [sent, at] : lat) {
    l.push_back(at - sent);
    // The same reading's two arrivals: what the agent (and the second broker hop) added. The
    // republished time may differ by a microsecond from the stamp after the double round trip.
    for (int64_t d : {0, -1, 1}) {
      auto it = direct.find(sent + d);
      if (it == direct.end()) continue;
      added.push_back(at - it->second);
      break;
    }
  }
  report("baseline (publisher -> broker -> subscriber)", b);
  report("republished (publisher -> broker -> agent -> broker -> subscriber)", l);
  if (!added.empty()) report("added by the agent and the second broker hop, per reading", added);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 6 && a[0] == "publish") return Publish(a[1], a[2], std::stoi(a[3]), std::stoi(a[4]), a[5]);
    if (a.size() == 6 && a[0] == "floor") return Floor(a[1], a[2], a[3], std::stoi(a[4]), std::stoi(a[5]));
    if (a.size() == 5 && a[0] == "session") return Session(a[1], a[2], a[3], std::stoi(a[4]));
    if (a.size() == 5 && a[0] == "latency") return Latency(a[1], std::stoi(a[2]), std::stoi(a[3]), a[4]);
  } catch (const std::exception& e) {
    fprintf(stderr, "mqtt_bench: %s\n", e.what());
    return 1;
  }
  fprintf(stderr, "usage: see the comment at the top of bench/mqtt/mqtt_bench.cpp\n");
  return 64;
}
