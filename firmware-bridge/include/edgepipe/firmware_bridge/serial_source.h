// The serial source: reads the MCU protocol (docs/protocol.md) from a UART or USB CDC device with
// Boost.Asio, and acknowledges readings to the MCU only once the buffer reports them durable.
// The protocol logic is LinkSession (serial_link.h); this is the I/O shell around it.
//
// Device handling: the port is opened with the configured line settings, made exclusive
// (TIOCEXCL) and its stale input flushed. Any error (unplugged, EIO, EOF) closes it and it is
// reopened with exponential backoff (reconnect_min .. reconnect_max, +-20 % jitter); the backoff
// returns to its minimum once a valid frame arrives. The source never spins and never exits on
// device errors; Stop() ends it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/source.h"

namespace edgepipe::fb {

enum class Parity { kNone, kOdd, kEven };
enum class StopBits { kOne, kOnePointFive, kTwo };
enum class FlowControl { kNone, kSoftware, kHardware };

struct SerialOptions {
  std::string name = "serial";
  std::string device;                      // e.g. /dev/serial/by-id/usb-...-if00 (stable across replugs)
  uint32_t baud = 115200;                  // 8 data bits always (the protocol is binary)
  Parity parity = Parity::kNone;
  StopBits stop_bits = StopBits::kOne;
  FlowControl flow_control = FlowControl::kNone;
  bool exclusive = true;                   // TIOCEXCL: no second opener (terminal, ModemManager)
  int64_t reconnect_min_us = 500'000;
  int64_t reconnect_max_us = 30'000'000;
  std::string sensor_prefix;               // prepended to the MCU's sensor names
  int64_t time_sync_interval_us = 60'000'000;
  int64_t hello_retry_us = 2'000'000;
  int64_t idle_timeout_us = 60'000'000;
  bool quarantine_corrupt_frames = false;
};

// Baud rates the Linux termios interface accepts (B50 .. B4000000).
const std::vector<uint32_t>& StandardBaudRates();

class SerialSource final : public Source {
 public:
  SerialSource(SerialOptions options, ReadingSink& sink, Clock& clock);
  ~SerialSource() override;

  const std::string& name() const override;
  // Loads the persisted counters and starts the I/O and acknowledgement threads; the device
  // need not exist yet. kInvalidArgument for impossible options.
  Status Start() override;
  void Stop() override;
  // state: "connecting", "waiting for HELLO", "receiving", "idle", "disconnected: <why>",
  // "stopped"; counters: see docs/operations.md "Serial devices".
  SourceHealth Health() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgepipe::fb
