// libFuzzer target: the agent's LinkSession fed arbitrary link traffic. The input is a list of
// records (kind, length, bytes): raw bytes, well-framed messages of any type and payload (so the
// HELLO/SENSOR/READINGS handling sees arbitrary fields behind a valid CRC), time passing, acks
// pumped and port reopens. Checks that nothing crashes and that no (boot, sequence number) is
// ever stored twice.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/firmware_bridge/protocol.h"
#include "edgepipe/firmware_bridge/serial_link.h"

using namespace edgepipe;
using namespace edgepipe::fb;

#define CHECK_OR_TRAP(c) \
  do {                   \
    if (!(c)) __builtin_trap(); \
  } while (0)

namespace {

class Sink : public ReadingSink {
 public:
  Result<uint64_t> Append(std::span<const Reading> r) override { return AppendWithState(r, {}); }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState& s) override {
    if (s.key.find("/boot/") != std::string::npos) {
      uint64_t& last = last_seq_[s.key];
      for (const Reading& x : r) {
        CHECK_OR_TRAP(x.seq > last || reused());  // never the same reading twice
        last = x.seq;
      }
      states_[s.key] = s.value;
    }
    return ++ticket_;
  }
  Result<std::optional<std::string>> LoadState(const std::string& key) override {
    auto it = states_.find(key);
    if (it == states_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  Result<uint64_t> Quarantine(const QuarantineRecord&) override { return ++ticket_; }
  Result<uint64_t> RecordGap(const GapRecord& g) override {
    CHECK_OR_TRAP(g.count > 0);
    return ++ticket_;
  }
  std::function<bool()> reused;

 private:
  uint64_t ticket_ = 0;
  std::map<std::string, uint64_t> last_seq_;
  std::map<std::string, std::string> states_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    SetLogSink([](LogLevel, std::string_view, std::string_view) {});
    return true;
  }();
  (void)quiet;
  ManualClock clock;
  Sink sink;
  LinkOptions o;
  o.source = "fz";
  LinkSession s(o, sink, clock, [](std::vector<uint8_t> f) { CHECK_OR_TRAP(f.size() <= proto::kMaxWireFrame); });
  sink.reused = [&s] { return s.Counters().count("boot_id_reused") > 0; };
  s.OnOpen();
  size_t i = 0;
  while (i + 2 <= size) {
    const uint8_t kind = data[i] % 5, len = data[i + 1];
    i += 2;
    const size_t n = std::min<size_t>(len, size - i);
    const uint8_t* p = data + i;
    i += n;
    switch (kind) {
      case 0: s.OnBytes(std::span<const uint8_t>(p, n), clock.MonotonicNowUs()); break;
      case 1: if (n >= 1) {
          // Types 1-3 mostly, so that HELLO, SENSOR and READINGS get through often.
          const uint8_t type = p[0] < 200 ? uint8_t(1 + p[0] % 3) : p[0];
          std::vector<uint8_t> f = proto::EncodeFrame(type, 0, std::span<const uint8_t>(p + 1, n - 1));
          s.OnBytes(f, clock.MonotonicNowUs());
        }
        break;
      case 2: clock.Advance(n ? int64_t(p[0]) * 50'000 : 1000); s.OnTick(); break;
      case 3: while (s.PumpAck(0)) {} break;
      default: s.OnOpen(); break;
    }
  }
  return 0;
}
