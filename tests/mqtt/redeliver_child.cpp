// Child process of the MQTT redelivery test (mqtt_test.cpp): an MqttSource on a real buffer that,
// once the first message is committed, prints "held" and never returns from the handler, so that
// message is durable but not acknowledged. The parent then kills this process with SIGKILL.
// With RECORDS = "plain", the packet record is stored as a plain source state (ReadingSink's
// default AppendWithCell), as edgepipe did before buffer schema 3; with "cells" as a state cell.
// Usage: mqtt_redeliver_child URL CLIENT_ID VERSION DB TOPIC_FILTER RECORDS
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "edgepipe/buffer/store.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/firmware_bridge/mqtt.h"

using namespace edgepipe;

namespace {

class HoldAfterCommit final : public ReadingSink {
 public:
  HoldAfterCommit(ReadingSink& real, bool cells) : real_(real), cells_(cells) {}
  Result<uint64_t> AppendWithCell(std::vector<Reading>& r, const StateCell& c) override {
    return cells_ ? real_.AppendWithCell(r, c) : ReadingSink::AppendWithCell(r, c);
  }
  Result<std::optional<uint64_t>> LoadCell(const std::string& t, uint32_t i) override {
    return cells_ ? real_.LoadCell(t, i) : ReadingSink::LoadCell(t, i);
  }
  Result<uint64_t> Append(std::span<const Reading> r) override { return real_.Append(r); }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState& s) override {
    return real_.AppendWithState(r, s);
  }
  Result<std::optional<std::string>> LoadState(const std::string& k) override { return real_.LoadState(k); }
  Result<uint64_t> Quarantine(const QuarantineRecord& q) override { return real_.Quarantine(q); }
  Result<uint64_t> RecordGap(const GapRecord& g) override { return real_.RecordGap(g); }
  Status WaitDurable(uint64_t t) override {
    Status s = real_.WaitDurable(t);
    printf("%s\n", s.ok() ? "held" : s.ToString().c_str());
    fflush(stdout);
    while (true) pause();  // the parent's SIGKILL ends this
  }

 private:
  ReadingSink& real_;
  const bool cells_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s URL CLIENT_ID VERSION DB TOPIC_FILTER plain|cells\n", argv[0]);
    return 64;
  }
  buffer::Options bo;
  bo.path = argv[4];
  Result<std::unique_ptr<buffer::Store>> store = buffer::Store::Open(bo);
  if (!store.ok()) {
    fprintf(stderr, "open buffer: %s\n", store.status().ToString().c_str());
    return 1;
  }
  HoldAfterCommit sink(**store, std::string(argv[6]) == "cells");
  fb::MqttSourceOptions o;
  o.name = "mqtt";
  o.client.url = argv[1];
  o.client.client_id = argv[2];
  o.client.version = atoi(argv[3]);
  o.topics = {argv[5]};
  o.topic_template = "sensors/{site}/{sensor}";
  fb::MqttSource src(o, sink, RealClock::Default());
  Status s = src.Start();
  if (!s.ok()) {
    fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  for (int i = 0; i < 1000 && src.Health().state != "connected"; ++i) usleep(10'000);
  printf("%s\n", src.Health().state.c_str());
  fflush(stdout);
  while (true) pause();
}
