// An unsynchronised system clock ([validation.clock], docs/data-quality.md).
//
// Edge boards without a battery-backed RTC boot with a wrong wall clock and fix it only when NTP
// reaches a server. While the clock is not synchronised, readings stamped by this gateway's clock
// carry wrong times. The ClockGuard holds them, durably, in a hold file together with the
// monotonic time (CLOCK_BOOTTIME) they were stamped at and the boot id, and releases them:
//   * re-stamped (ts = monotonic stamp + wall-minus-monotonic offset at sync) and flagged
//     `restamped`, once the clock is synchronised, for readings of the current boot;
//   * unchanged and flagged `clock_unsynced` for readings that cannot be fixed: stamped in an
//     earlier boot that ended before sync, held longer than max_hold, or beyond max_hold_size.
//
// Hold file: "EPHOLD1\n", 8-byte random file id, then records [u32 length][u32 CRC-32][payload],
// payload = kind byte (1 readings: boot id, count, readings with their monotonic stamp; 2 sync:
// boot id, offset). A torn tail (crash during a write that was never acknowledged) is cut off at
// open. What was released is recorded in the buffer with the released readings themselves
// (SourceState "validation/clock-hold" = "<file id> <offset>"), so a crash during a release
// neither loses nor duplicates a reading.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/agent/validation_config.h"
#include "edgepipe/core/clock.h"
#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::agent {

// Whether the system clock is synchronised, and which boot this is. The seam tests drive.
class ClockSyncProbe {
 public:
  virtual ~ClockSyncProbe() = default;
  virtual bool Synchronized() = 0;
  // Changes on every reboot (Linux: /proc/sys/kernel/random/boot_id).
  virtual std::string BootId() = 0;
};

// adjtimex(2) STA_UNSYNC and/or the existence of `synchronized_file` (systemd-timesyncd's
// /run/systemd/timesync/synchronized), per `mode`; the boot id from `boot_id_file`.
std::unique_ptr<ClockSyncProbe> MakeSystemClockSyncProbe(ClockMode mode, std::string synchronized_file,
                                                          std::string boot_id_file = "/proc/sys/kernel/random/boot_id");

// A chunk of held readings ready to go to validation and the buffer, with the state to commit
// in the same transaction.
struct HeldRelease {
  std::vector<Reading> readings;  // flagged restamped or clock_unsynced
  SourceState state;
  uint64_t restamped = 0;
  uint64_t unfixable = 0;
};

struct ClockGuardStats {
  bool synchronized = false;
  uint64_t held_readings = 0;     // in the hold file now
  uint64_t held_bytes = 0;
  uint64_t restamped = 0;         // released re-stamped (this process)
  uint64_t unfixable = 0;         // released flagged clock_unsynced (this process)
  int64_t unsynced_since_mono = 0;  // 0 when synchronised
};

// Not thread-safe: Ingest serialises calls under its lock.
class ClockGuard {
 public:
  struct Options {
    ClockConfig config;
    std::string hold_path;  // resolved
    bool sync_writes = true;  // fsync the hold file before a hold is acknowledged
  };
  ClockGuard(Options options, Clock& clock, std::unique_ptr<ClockSyncProbe> probe);
  ~ClockGuard();

  // Opens (creating) the hold file, cuts a torn tail, skips what `released_state` (the value of
  // SourceState kStateKey in the buffer, if any) says was released, and checks the clock.
  Status Open(const std::optional<std::string>& released_state);

  // Re-checks the synchronisation state when check_interval has passed (or `force`).
  void Poll(bool force = false);
  bool synchronized() const;

  // True when `r` should be held: the clock is unsynchronised and r.source matches `sources`.
  bool ShouldHold(const Reading& r) const;

  // Appends readings to the hold file (fsynced when sync_writes) with their monotonic stamp.
  Status Hold(std::span<const Reading> readings);

  // The next chunk to release now (synchronised: everything, re-stamped; otherwise readings of
  // earlier boots and those beyond max_hold / max_hold_size, flagged clock_unsynced), or nullopt.
  Result<std::optional<HeldRelease>> NextRelease(size_t max_readings = 10'000);
  // The release's readings and state are durable in the buffer: forget them (and remove the
  // hold file once it is empty).
  Status Released(const HeldRelease& release);

  ClockGuardStats stats() const;

  static constexpr const char* kStateKey = "validation/clock-hold";

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The production guard: the system probe for config.mode, the hold file at config.hold_path or
// <buffer_path>.clock-hold.
std::unique_ptr<ClockGuard> MakeClockGuard(const ClockConfig& config, const std::string& buffer_path, bool sync_writes,
                                           Clock& clock);

}  // namespace edgepipe::agent
