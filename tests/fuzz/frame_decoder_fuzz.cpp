// libFuzzer target: the agent's frame decoder (firmware_bridge/protocol.h) and message parsers.
// Checks the decoder's invariants on every input: every byte accounted for, the result
// independent of how the input is split, every delivered frame within limits and re-encodable to
// the same bytes, and the parsers never misbehave on any payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"

using namespace edgepipe::fb::proto;

namespace {

#define CHECK_OR_TRAP(c) \
  do {                   \
    if (!(c)) __builtin_trap(); \
  } while (0)

struct Run : Reporter {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::pair<int, size_t>> drops;
  size_t frame_bytes = 0, drop_bytes = 0;
  FrameDecoder dec{this};
  void Dropped(DropReason r, size_t bytes, std::span<const uint8_t> sample) override {
    CHECK_OR_TRAP(sample.size() <= kMaxWireFrame);
    drops.push_back({static_cast<int>(r), bytes});
    drop_bytes += bytes;
  }
  void Feed(const uint8_t* p, size_t n) {
    dec.Feed(std::span<const uint8_t>(p, n), [&](const FrameView& f) {
      CHECK_OR_TRAP(f.raw.size() >= kMinRawFrame && f.raw.size() <= kMaxRawFrame);
      CHECK_OR_TRAP(f.wire_bytes == f.raw.size() + 2);
      CHECK_OR_TRAP(f.version == kVersion);
      // Re-encoding what was decoded gives the same raw frame.
      std::vector<uint8_t> again = EncodeFrame(f.type, f.seq, f.payload);
      std::vector<uint8_t> raw(again.size());
      long n2 = CobsDecode(std::span<const uint8_t>(again.data(), again.size() - 1), raw.data());
      CHECK_OR_TRAP(n2 == static_cast<long>(f.raw.size()));
      CHECK_OR_TRAP(std::equal(f.raw.begin(), f.raw.end(), raw.begin()));
      // The parsers accept or reject, never crash; what they accept re-encodes to a prefix.
      switch (f.type) {
        case 0x01: if (auto m = ParseHello(f.payload); m.ok()) CHECK_OR_TRAP(EncodeHello(*m).size() <= f.payload.size()); break;
        case 0x02: if (auto m = ParseSensor(f.payload); m.ok()) CHECK_OR_TRAP(EncodeSensor(*m).size() <= f.payload.size()); break;
        case 0x03: if (auto m = ParseReadings(f.payload); m.ok()) CHECK_OR_TRAP(m->readings.size() <= kMaxReadingsPerFrame); break;
        case 0x81: (void)ParseAck(f.payload); break;
        case 0x82: (void)ParseTime(f.payload); break;
        default: break;
      }
      frames.emplace_back(f.raw.begin(), f.raw.end());
      frame_bytes += f.wire_bytes;
    });
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Run whole;
  whole.Feed(data, size);

  // Every byte: in a frame, in a dropped segment, an empty segment's delimiter, or still pending.
  size_t zeros = 0, last_zero = 0;
  for (size_t i = 0; i < size; ++i)
    if (data[i] == 0) ++zeros, last_zero = i + 1;
  const size_t pending = size - last_zero;
  const size_t empties = zeros - whole.frames.size() - whole.drops.size();
  CHECK_OR_TRAP(whole.frame_bytes + whole.drop_bytes + empties + pending == size);

  // Split at points derived from the data: same frames, same drops.
  Run split;
  size_t pos = 0, k = 0;
  while (pos < size) {
    size_t chunk = 1 + (size ? data[(k * 7919) % size] % 17 : 0);
    if (chunk > size - pos) chunk = size - pos;
    split.Feed(data + pos, chunk);
    pos += chunk;
    ++k;
  }
  CHECK_OR_TRAP(split.frames == whole.frames);
  CHECK_OR_TRAP(split.drops == whole.drops);
  return 0;
}
