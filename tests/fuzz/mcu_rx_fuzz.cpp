// libFuzzer target: the C firmware library driven by arbitrary agent traffic and local events.
// The input is a list of records (kind, length, bytes): raw bytes to epfw_rx, well-framed
// messages of any type and payload (so the ACK/TIME logic sees arbitrary values behind a valid
// CRC), readings added, time passing, link-up and polls. After every step the ring invariants
// hold, and every frame the library emits decodes cleanly with the agent's codec.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"
#include "epfw.h"

using namespace edgepipe::fb::proto;

#define CHECK_OR_TRAP(c) \
  do {                   \
    if (!(c)) __builtin_trap(); \
  } while (0)

namespace {
const epfw_sensor_t kSensors[] = {{"t", "Cel", 1, 100, EPFW_KIND_INT32}, {"d", "", 1, 1, EPFW_KIND_BOOL}};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  epfw_slot_t ring[16];
  epfw_retained_t retained{};
  epfw_config_t cfg{};
  cfg.fw_id = "fuzz";
  cfg.fw_version = "1";
  cfg.sensors = kSensors;
  cfg.sensor_count = 2;
  cfg.ring = ring;
  cfg.ring_capacity = 16;
  cfg.boot_id = 0x1234ABCD;
  cfg.retransmit_ms = 100;
  cfg.flags = size && (data[0] & 1) ? EPFW_STAMP_WALL : 0;
  cfg.retained = &retained;
  epfw_t fw;
  uint32_t now = 0xFFFFF000u;  // the millisecond counter wraps during the run
  CHECK_OR_TRAP(epfw_init(&fw, &cfg, now) == 0);
  uint8_t out[EPFW_MAX_WIRE_FRAME];
  size_t i = 0;
  while (i + 2 <= size) {
    const uint8_t kind = data[i] % 6, len = data[i + 1];
    i += 2;
    const size_t n = std::min<size_t>(len, size - i);
    const uint8_t* p = data + i;
    i += n;
    switch (kind) {
      case 0: epfw_rx(&fw, p, n, now); break;
      case 1: if (n >= 1) {
          std::vector<uint8_t> f = EncodeFrame(p[0], 0, std::span<const uint8_t>(p + 1, n - 1));
          if (!f.empty()) epfw_rx(&fw, f.data(), f.size(), now);
        }
        break;
      case 2: (void)epfw_add(&fw, n ? p[0] % 3 : 0, n > 1 ? p[1] : 0, now); break;
      case 3: now += n ? uint32_t(p[0]) * 7 : 1; break;
      case 4: epfw_link_up(&fw, now); break;
      default: {
        const size_t cap = n ? EPFW_TX_MIN + p[0] % (EPFW_MAX_WIRE_FRAME - EPFW_TX_MIN + 1) : EPFW_MAX_WIRE_FRAME;
        const size_t w = epfw_poll(&fw, now, out, cap);
        CHECK_OR_TRAP(w <= cap);
        if (w) {
          FrameDecoder d;
          int frames = 0;
          d.Feed(std::span<const uint8_t>(out, w), [&](const FrameView& f) {
            ++frames;
            if (f.type == 0x01) CHECK_OR_TRAP(ParseHello(f.payload).ok());
            else if (f.type == 0x02) CHECK_OR_TRAP(ParseSensor(f.payload).ok());
            else if (f.type == 0x03) CHECK_OR_TRAP(ParseReadings(f.payload).ok());
            else CHECK_OR_TRAP(false);
          });
          CHECK_OR_TRAP(frames == 1);  // first segment of a fresh decoder: valid means delivered
        }
      }
    }
    // Ring invariants: tail <= send <= next, at most `capacity` held.
    CHECK_OR_TRAP(epfw_pending(&fw) <= cfg.ring_capacity);
    CHECK_OR_TRAP(fw.send_seq - fw.tail_seq <= fw.next_seq - fw.tail_seq);
  }
  return 0;
}
