// The agent's half of the MCU protocol over one link, without the port: it decodes bytes,
// learns the sensor table from HELLO/SENSOR, turns READINGS into Readings (names and units from
// the table, MCU time mapped to wall time), hands them to the ReadingSink with the last stored
// sequence number as source state, and acknowledges only what the sink reports durable.
// SerialSource (serial_source.h) is the I/O shell around it; tests drive it directly.
//
// Receive rules for a READINGS frame of boot B, E = the next sequence number expected for B
// (last stored + 1, persisted per boot as source state "<source>/boot/<B hex>"):
//  * sequence numbers below E are duplicates (retransmissions): dropped, counted;
//  * tail_seq > E: the MCU no longer holds E..tail_seq-1 (ring overflow) -> gap record, E = tail_seq;
//  * first new sequence number > E: frames were lost in transit -> nothing is stored, ACK with
//    RESEND asks the MCU to go back to E (go-back-N);
//  * otherwise the readings E.. are stored, and ACK(acked = last durable) follows WaitDurable.
// A new boot id (HELLO) starts at its own persisted E (1 for a boot never seen); a previous boot
// that the HELLO reports further than what was stored for it leaves a gap record "mcu_reset".
//
// Threads: OnOpen/OnBytes/OnTick/OnClose from one I/O thread; PumpAck from one acknowledgement
// thread (it blocks in WaitDurable); Counters/State from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/firmware_bridge/clock_mapper.h"
#include "edgepipe/firmware_bridge/protocol.h"

namespace edgepipe::fb {

struct LinkOptions {
  std::string source = "serial";        // source name: readings' `source`, state key prefix
  std::string sensor_prefix;            // prepended to the MCU's sensor names
  std::string device;                   // for messages only
  int64_t time_sync_interval_us = 60'000'000;  // TIME every so often
  int64_t hello_retry_us = 2'000'000;   // re-ask for HELLO at most this often while it is missing
  uint32_t baud = 115200;               // line speed, for timing (a pty ignores it)
  int64_t resend_retry_us = 0;          // re-ask for the same resend at most this often;
                                        // 0 = four maximum-size frame times, at least 50 ms
  int64_t idle_timeout_us = 60'000'000; // no valid frame for this long: warn, ask for HELLO
  bool quarantine_corrupt_frames = false;  // keep the raw bytes of CRC/COBS failures too
  uint64_t quarantine_max_per_minute = 60; // cap on quarantined frames (a noisy line must not flood it)
  ClockMapperOptions clock;
};

// Where the session's outgoing frames go (the port). Must be thread-safe: the acknowledgement
// thread calls it too.
using FrameWriter = std::function<void(std::vector<uint8_t> wire_frame)>;

class LinkSession final : private proto::Reporter {
 public:
  LinkSession(LinkOptions options, ReadingSink& sink, Clock& clock, FrameWriter writer);
  ~LinkSession() override;

  // Reads the lifetime counters persisted by an earlier run. Call before the first OnOpen.
  Status LoadState();

  // The port was (re)opened: forget partial input and ask the MCU for HELLO (and a resend).
  void OnOpen();
  // Bytes arrived at `rx_mono_us` (monotonic clock).
  void OnBytes(std::span<const uint8_t> data, int64_t rx_mono_us);
  // Periodic housekeeping (TIME sync, HELLO retries, idle detection); call every ~250 ms.
  void OnTick();
  void OnClose(const std::string& reason);

  // Waits up to `timeout_us` for readings to acknowledge, waits until they are durable and sends
  // the ACK. Returns false when there was nothing to do or Shutdown() was called.
  bool PumpAck(int64_t timeout_us);
  // Wakes PumpAck for good.
  void Shutdown();

  // Lifetime counters (persisted with the readings; see docs/operations.md "Serial devices").
  std::map<std::string, uint64_t> Counters() const;
  void Count(const char* name, uint64_t n = 1);
  // Queues the counters as source state if they changed since they were last queued.
  void PersistCounters();
  // "waiting for HELLO", "receiving", "idle", ... and details for status output.
  std::string State() const;
  uint64_t readings_stored() const;
  std::string last_error() const;

 private:
  struct SensorEntry {
    proto::SensorInfo info;
    std::string name;  // prefix + name
    bool known = false;
  };
  struct Boot {
    uint32_t id = 0;
    uint8_t sensor_count = 0;
    std::vector<SensorEntry> sensors;
    uint64_t next = 1;           // E: next sequence number expected (extended to 64 bits)
    uint64_t uptime_ms = 0;      // newest MCU uptime seen
    int64_t last_ts_us = 0;      // time of the last stored reading (for gap records)
    std::string fw;              // "id version" for logs
    ClockMapper clock;
  };
  struct PendingAck {
    uint64_t ticket;
    uint32_t boot;
    uint32_t acked;
    uint32_t next;
  };

  void Dropped(proto::DropReason reason, size_t bytes, std::span<const uint8_t> sample) override;
  void OnFrame(const proto::FrameView& f, int64_t rx_mono_us);
  void OnHello(const proto::Hello& h, int64_t rx_mono_us);
  void PreviousBootGap(const proto::Hello& h);
  void OnSensor(const proto::SensorInfo& s, const proto::FrameView& f);
  void OnReadings(const proto::Readings& m, const proto::FrameView& f, int64_t rx_mono_us);
  void Malformed(const proto::FrameView& f, const std::string& why);
  bool TableComplete(const proto::Readings& m) const;
  int64_t ReadingTime(const proto::Readings& m, const proto::WireReading& w) const;
  void RecordGap(uint64_t count, int64_t from_us, int64_t to_us, const std::string& reason);
  Status Store(std::vector<Reading>& readings, uint64_t last_seq);
  Result<std::optional<std::pair<uint64_t, uint64_t>>> LoadBoot(uint32_t boot_id);  // (last seq, uptime)
  void RequestHello(bool force);
  void RequestResend(uint64_t frame_first);
  void SendTime(bool hello_request);
  void SendAck(uint32_t boot, uint32_t acked, uint32_t next, uint8_t flags);
  void QueueAck(uint64_t ticket);
  void Error(const std::string& message);
  std::string BootKey(uint32_t boot_id) const;

  const LinkOptions opt_;
  ReadingSink& sink_;
  Clock& clock_;
  FrameWriter writer_;
  proto::FrameDecoder decoder_;

  // I/O thread only.
  std::optional<Boot> boot_;
  std::map<uint32_t, uint64_t> known_next_;  // E of boots seen by this process (ahead of the durable state)
  int64_t last_frame_mono_ = 0;
  int64_t last_time_sent_ = INT64_MIN / 2;
  int64_t last_hello_req_ = INT64_MIN / 2;
  int64_t last_resend_ = INT64_MIN / 2;
  uint64_t last_resend_next_ = 0;
  uint64_t last_out_of_order_first_ = 0;
  uint64_t last_ticket_ = 0;
  bool idle_warned_ = false;
  std::map<std::string, uint64_t> persisted_;  // counters as last persisted
  int64_t quarantine_window_start_ = 0;
  uint64_t quarantined_in_window_ = 0;
  RateLimitedLog corrupt_log_{60'000'000};
  RateLimitedLog error_log_{10'000'000};

  // Shared with the acknowledgement thread and status readers.
  std::atomic<uint16_t> tx_seq_{0};
  mutable std::mutex mu_;
  std::condition_variable ack_cv_;
  std::deque<PendingAck> acks_;
  bool shutdown_ = false;
  std::map<std::string, uint64_t> counters_;
  std::string state_ = "not connected";
  std::string last_error_;
  uint32_t acked_boot_ = 0;
  uint32_t acked_seq_ = 0;  // last durable sequence number acknowledged for acked_boot_
};

}  // namespace edgepipe::fb
