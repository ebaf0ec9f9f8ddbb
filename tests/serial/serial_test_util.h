// Shared fixtures of the serial suites: the golden messages (tests/data/frames/) and helpers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "edgepipe/firmware_bridge/protocol.h"

namespace edgepipe::testing {

constexpr uint32_t kGoldenBoot = 0x1234ABCDu;

inline fb::proto::Hello GoldenHello() {
  fb::proto::Hello h;
  h.boot_id = kGoldenBoot;
  h.uptime_ms = 5000;
  h.next_seq = 1;
  h.tail_seq = 1;
  h.ring_capacity = 64;
  h.sensor_count = 2;
  h.fw_id = "demo-fw";
  h.fw_version = "1.0.0";
  return h;
}

inline fb::proto::SensorInfo GoldenSensor(int i) {
  fb::proto::SensorInfo s;
  s.boot_id = kGoldenBoot;
  s.index = static_cast<uint8_t>(i);
  if (i == 0) {
    s.kind = fb::proto::SensorKind::kInt32;
    s.scale_num = 1;
    s.scale_den = 100;
    s.name = "temperature";
    s.unit = "Cel";
  } else {
    s.kind = fb::proto::SensorKind::kBool;
    s.name = "door";
  }
  return s;
}

inline fb::proto::Readings GoldenReadings() {
  fb::proto::Readings r;
  r.boot_id = kGoldenBoot;
  r.frame_time_ms = 6000;
  r.tail_seq = 1;
  r.first_seq = 1;
  r.readings = {{0, 1000, 2137}, {1, 500, 1}, {0, 0, static_cast<uint32_t>(-512)}};
  return r;
}

// name -> wire bytes of every golden file.
inline std::map<std::string, std::vector<uint8_t>> GoldenFrameSet() {
  using namespace fb::proto;
  std::map<std::string, std::vector<uint8_t>> g;
  g["hello.bin"] = EncodeFrame(0x01, 0, EncodeHello(GoldenHello()));
  g["sensor-0.bin"] = EncodeFrame(0x02, 1, EncodeSensor(GoldenSensor(0)));
  g["sensor-1.bin"] = EncodeFrame(0x02, 2, EncodeSensor(GoldenSensor(1)));
  g["readings.bin"] = EncodeFrame(0x03, 3, EncodeReadings(GoldenReadings()));
  g["ack.bin"] = EncodeFrame(0x81, 0, EncodeAck({kGoldenBoot, 3, 4, 0}));
  g["ack-resend.bin"] = EncodeFrame(0x81, 1, EncodeAck({kGoldenBoot, 2, 3, kAckResend}));
  g["time.bin"] = EncodeFrame(0x82, 2, EncodeTime({1764129600000ull, 0}));
  g["time-hello-request.bin"] = EncodeFrame(0x82, 3, EncodeTime({1764129600000ull, kTimeHelloRequest}));
  // Damaged variants.
  std::vector<uint8_t> bad = g["readings.bin"];
  bad[20] ^= 0x04;  // a data byte inside the payload: COBS stays valid, the CRC does not
  g["bad-crc.bin"] = bad;
  std::vector<uint8_t> cut(g["readings.bin"].begin(), g["readings.bin"].begin() + 30);
  cut.push_back(0);
  g["truncated.bin"] = cut;
  g["bad-cobs.bin"] = {0x09, 0x11, 0x22, 0x00};
  std::vector<uint8_t> long_seg(300, 0x55);
  long_seg.push_back(0);
  g["too-long.bin"] = long_seg;
  {
    std::vector<uint8_t> raw = EncodeTime({1, 0});
    raw.insert(raw.begin(), {2, 0x82, 0, 0});  // version 2
    const uint32_t crc = Crc32c(raw);
    for (int i = 0; i < 4; ++i) raw.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    std::vector<uint8_t> enc(raw.size() + 2);
    enc.resize(CobsEncode(raw, enc.data()));
    enc.push_back(0);
    g["bad-version.bin"] = enc;
  }
  std::vector<uint8_t> garbage;
  for (int i = 0; i < 270; ++i) garbage.push_back(static_cast<uint8_t>(1 + (i * 37) % 255));
  garbage.push_back(0);
  garbage.insert(garbage.end(), g["readings.bin"].begin(), g["readings.bin"].end());
  g["garbage-then-readings.bin"] = garbage;
  std::vector<uint8_t> stream;
  for (const char* n : {"hello.bin", "sensor-0.bin", "sensor-1.bin", "readings.bin"})
    stream.insert(stream.end(), g[n].begin(), g[n].end());
  g["stream.bin"] = stream;
  return g;
}

}  // namespace edgepipe::testing
