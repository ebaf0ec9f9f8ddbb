// Local republish of validated readings as SenML (best effort, never blocks the pipeline).
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>

#include "edgepipe/firmware_bridge/mqtt.h"
#include "mqtt_session.h"

namespace edgepipe::fb {
namespace {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

namespace {

// One SenML record (no brackets).
void AppendRecord(std::string* o, const Reading& r) {
  std::string& out = *o;
  out.append("{\"n\":");
  AppendJsonString(&out, r.sensor);
  // Seconds with exactly six decimals: the microsecond timestamp survives the text unchanged.
  int64_t sec = r.ts_us / 1'000'000, us = r.ts_us % 1'000'000;
  if (us < 0) {
    us += 1'000'000;
    --sec;
  }
  char buf[64];
  snprintf(buf, sizeof buf, ",\"t\":%lld.%06lld", static_cast<long long>(sec), static_cast<long long>(us));
  out.append(buf);
  switch (r.type) {
    case ValueType::kNumber: {
      out.append(",\"v\":");
      auto res = std::to_chars(buf, buf + sizeof buf, r.value);
      out.append(buf, res.ptr);
      break;
    }
    case ValueType::kBool: out.append(r.value != 0 ? ",\"vb\":true" : ",\"vb\":false"); break;
    case ValueType::kString:
      out.append(",\"vs\":");
      AppendJsonString(&out, r.text);
      break;
  }
  if (!r.unit.empty()) {
    out.append(",\"u\":");
    AppendJsonString(&out, r.unit);
  }
  out.push_back('}');
}

}  // namespace

std::string SenmlForReading(const Reading& r) {
  std::string out;
  out.reserve(96);
  out.push_back('[');
  AppendRecord(&out, r);
  out.push_back(']');
  return out;
}

std::string SenmlPackForReadings(std::span<const Reading* const> readings) {
  std::string out;
  out.reserve(readings.size() * 64 + 2);
  out.push_back('[');
  for (size_t i = 0; i < readings.size(); ++i) {
    if (i) out.push_back(',');
    AppendRecord(&out, *readings[i]);
  }
  out.push_back(']');
  return out;
}

std::string RepublishTopic(const std::string& prefix, const std::string& sensor) {
  std::string t = prefix + sensor;
  for (size_t i = prefix.size(); i < t.size(); ++i)
    if (t[i] == '+' || t[i] == '#') t[i] = '_';
  return t;
}

struct Republisher::Impl {
  Impl(RepublishOptions o, Clock& c) : opt(std::move(o)), clock(c) {}
  RepublishOptions opt;
  Clock& clock;
  std::unique_ptr<MqttSession> session;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Reading> queue;
  bool stop = false;
  std::atomic<uint64_t> published{0}, dropped{0}, errors{0}, messages{0};
  std::map<std::string_view, std::vector<const Reading*>> by_sensor;  // used by Loop only

  void Loop() {
    std::vector<Reading> work;
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) break;
      // Linger so that what arrives meanwhile leaves in the same packs: one wake-up and a few
      // publishes per interval instead of one of each per reading (futex wake-ups and Paho's
      // client lock dominate the cost otherwise).
      if (opt.linger_us > 0) cv.wait_for(lock, std::chrono::microseconds(opt.linger_us), [&] { return stop; });
      if (stop) break;
      work.swap(queue);
      lock.unlock();
      mqtt::async_client* cli = session->client();
      if (!session->connected()) {
        dropped += work.size();
      } else {
        // What queued up while the last batch was sent goes out as one pack per sensor (in
        // arrival order): under load a few messages instead of one per reading.
        by_sensor.clear();
        for (const Reading& r : work) by_sensor[r.sensor].push_back(&r);
        for (auto& [sensor, list] : by_sensor) {
          try {
            std::string payload = SenmlPackForReadings(list);
            cli->publish(RepublishTopic(opt.topic_prefix, std::string(sensor)), payload.data(), payload.size(), opt.qos, false);
            published += list.size();
            ++messages;
          } catch (const mqtt::exception&) {
            ++errors;
            dropped += list.size();
          }
        }
      }
      work.clear();
      lock.lock();
    }
  }
};

Republisher::Republisher(RepublishOptions options, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}

Republisher::~Republisher() { Stop(); }

Status Republisher::Start() {
  Impl& im = *impl_;
  if (im.session) return Status::Ok();
  SessionConfig sc;
  sc.log_name = "republish";
  sc.client = im.opt.client;
  sc.clean_session = true;
  sc.tcp_nodelay = true;  // a pack every linger interval: Nagle would hold it for the broker's delayed ACK
  im.session = std::make_unique<MqttSession>(std::move(sc), im.clock);
  Status s = im.session->Start();
  if (!s.ok()) {
    im.session.reset();
    return s;
  }
  im.thread = std::thread([&im] { im.Loop(); });
  return Status::Ok();
}

void Republisher::Stop() {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.stop = true;
    im.cv.notify_all();
  }
  if (im.thread.joinable()) im.thread.join();
  if (im.session) im.session->Stop("");
}

void Republisher::Offer(std::span<const Reading> readings) {
  if (readings.empty()) return;
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mu);
  if (im.stop || !im.session) return;
  if (im.queue.size() + readings.size() > im.opt.max_queue) {
    im.dropped += readings.size();
    return;
  }
  const bool was_empty = im.queue.empty();
  im.queue.insert(im.queue.end(), readings.begin(), readings.end());
  if (was_empty) im.cv.notify_one();
}

RepublishStats Republisher::stats() const {
  RepublishStats s;
  s.published = impl_->published;
  s.dropped = impl_->dropped;
  s.errors = impl_->errors;
  s.messages = impl_->messages;
  return s;
}

bool Republisher::connected() const { return impl_->session && impl_->session->connected(); }

}  // namespace edgepipe::fb
