// Decoder throughput on one core: frames/s and MB/s of the agent's frame decoder
// (firmware_bridge/protocol.h) over a stream of realistic READINGS frames, reported together
// with two baselines measured in the same run on the same bytes: memcpy (the floor of any
// decoder that looks at every byte) and CRC-32C alone (work the decoder cannot skip).
//   decoder_bench [seconds-per-measurement] [readings-per-frame]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"

using namespace edgepipe::fb::proto;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<uint8_t> Stream(size_t frames, size_t per_frame) {
  std::mt19937 rng(1);
  std::vector<uint8_t> out;
  uint32_t seq = 1;
  for (size_t i = 0; i < frames; ++i) {
    Readings r;
    r.boot_id = 0x1234ABCD;
    r.frame_time_ms = 1'000'000 + i * 10;
    r.tail_seq = seq > 500 ? seq - 500 : 1;
    r.first_seq = seq;
    for (size_t k = 0; k < per_frame; ++k) r.readings.push_back({uint8_t(k % 16), uint32_t(k * 10), uint32_t(rng() % 5000)});
    seq += uint32_t(per_frame);
    std::vector<uint8_t> f = EncodeFrame(0x03, uint16_t(i), EncodeReadings(r));
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// Runs `fn` over the stream repeatedly for about `seconds`; returns bytes per second.
template <class F>
double Measure(const std::vector<uint8_t>& s, double seconds, F&& fn) {
  fn();  // warm up
  size_t passes = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    fn();
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return double(s.size()) * double(passes) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const size_t per_frame = argc > 2 ? size_t(std::atoi(argv[2])) : kMaxReadingsPerFrame;
  const size_t frames = 40'000;
  const std::vector<uint8_t> s = Stream(frames, per_frame);
  const double frame_bytes = double(s.size()) / double(frames);

  std::vector<uint8_t> sink(s.size());
  const double memcpy_bps = Measure(s, seconds, [&] {
    std::memcpy(sink.data(), s.data(), s.size());
    asm volatile("" : : "r"(sink.data()) : "memory");
  });
  volatile uint32_t crc_out = 0;
  const double crc_bps = Measure(s, seconds, [&] { crc_out = Crc32c(s); });
  uint64_t decoded = 0;
  FrameDecoder dec;
  const double dec_bps = Measure(s, seconds, [&] {
    dec.Feed(s, [&](const FrameView& f) { decoded += f.payload.size() > 0; });
  });
  uint64_t parsed = 0;
  const double parse_bps = Measure(s, seconds, [&] {
    dec.Feed(s, [&](const FrameView& f) {
      auto r = ParseReadings(f.payload);
      parsed += r.ok() ? r->readings.size() : 0;
    });
  });
  if (dec.stats().corrupt() != 0 || decoded == 0 || parsed == 0) {
    fprintf(stderr, "decoder_bench: the stream did not decode cleanly\n");
    return 1;
  }
  const double mb = 1e6;
  printf("stream: %zu READINGS frames of %zu readings, %.1f bytes per frame on the wire\n", frames, per_frame, frame_bytes);
  printf("%-34s %10s %14s %12s %10s\n", "measurement", "MB/s", "frames/s", "readings/s", "vs memcpy");
  printf("%-34s %10.1f %14s %12s %10s\n", "baseline: memcpy", memcpy_bps / mb, "-", "-", "1.000");
  printf("%-34s %10.1f %14s %12s %10.3f\n", "baseline: CRC-32C only", crc_bps / mb, "-", "-", crc_bps / memcpy_bps);
  printf("%-34s %10.1f %14.0f %12.0f %10.3f\n", "FrameDecoder (COBS + CRC + checks)", dec_bps / mb,
         dec_bps / frame_bytes, dec_bps / frame_bytes * double(per_frame), dec_bps / memcpy_bps);
  printf("%-34s %10.1f %14.0f %12.0f %10.3f\n", "FrameDecoder + ParseReadings", parse_bps / mb,
         parse_bps / frame_bytes, parse_bps / frame_bytes * double(per_frame), parse_bps / memcpy_bps);
  printf("decoder vs CRC-32C alone: %.2fx the time; a 3 Mbaud link (300 kB/s) needs %.3f%% of this core\n",
         crc_bps / dec_bps, 300e3 / parse_bps * 100);
  return 0;
}
