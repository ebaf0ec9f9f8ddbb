// A fault-injecting SQLite VFS for the buffer's fault tests (STYLE.md §6, modelled on SQLite's
// src/test_vfs.c): it wraps the default VFS, is registered under a name (never as the default)
// and the store opens it through buffer::Options::vfs_name, so production code has no test branch.
//
// Arm() a fault: the Nth matching call (countdown) fails with the chosen SQLite error, once
// (transient) or from then on (persistent). A short write first writes half of the data to the
// real file, then fails: a torn page, as a device or file system that dies mid-write leaves.
// Every call is counted per operation, and every file handle carries the "epoch" it was opened
// in, so a test can assert that nothing was written through handles opened before a fault.
// Thread-safe (counters are atomic; Arm/Disarm take a lock).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace edgepipe::testing {

enum FaultOp : unsigned {
  kFaultRead = 1u << 0,
  kFaultWrite = 1u << 1,
  kFaultSync = 1u << 2,
  kFaultTruncate = 1u << 3,
};

enum class FaultFile { kAny, kMainDb, kWal };

struct FaultSpec {
  unsigned ops = 0;                 // FaultOp mask; 0 = disarmed
  FaultFile file = FaultFile::kAny;
  int countdown = 1;                // fail the Nth matching call (1 = the next one)
  bool persistent = false;          // keep failing every matching call after the first
  int error = SQLITE_IOERR_WRITE;   // what the failing call returns
  bool short_write = false;         // writes: write the first half, then fail
  // Instead of failing: the Nth matching call (write or sync) is done, then this process gets
  // SIGKILL — a crash right after, say, a commit's WAL sync and before anything that follows it.
  bool kill_after = false;
};

class FaultVfs {
 public:
  // Registers the VFS (once per process) under `name` and returns it.
  static FaultVfs& Get();
  static constexpr const char* kName = "edgepipe-fault";

  void Arm(const FaultSpec& spec);
  void Disarm();
  // Faults fired since the last Arm().
  int fired() const { return fired_.load(); }
  // Calls of an operation since the last Arm() (kFaultRead, kFaultWrite, ...).
  int64_t calls(FaultOp op) const;
  // Writes and syncs through file handles opened before the first fault fired since Arm().
  int64_t stale_writes() const { return stale_writes_.load(); }

  // Internal: called by the VFS methods.
  int Check(FaultOp op, FaultFile kind, uint64_t epoch);
  uint64_t epoch() const { return epoch_.load(); }
  void CountCall(FaultOp op);
  void NoteWrite(uint64_t file_epoch);

 private:
  FaultVfs() = default;
  FaultSpec spec_;
  std::atomic<int> remaining_{0};
  std::atomic<int> fired_{0};
  std::atomic<bool> armed_{false};
  std::atomic<uint64_t> epoch_{1};       // bumped when a fault fires
  std::atomic<uint64_t> fired_epoch_{0};  // epoch in which the first fault fired (0 = none)
  std::atomic<int64_t> calls_[4] = {};
  std::atomic<int64_t> stale_writes_{0};
};

}  // namespace edgepipe::testing
