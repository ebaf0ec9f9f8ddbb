#include "fault_vfs.h"

#include <csignal>
#include <cstring>
#include <mutex>

namespace edgepipe::testing {
namespace {

std::mutex g_mu;
// Check()'s answer for a FaultSpec::kill_after call: do it, then SIGKILL.
constexpr int kKillAfterMarker = 0x20000000;
sqlite3_vfs g_vfs;
sqlite3_vfs* g_real = nullptr;

struct FaultFileHandle {
  sqlite3_file base;   // must be first: SQLite sees this
  FaultFile kind;
  uint64_t epoch;      // FaultVfs epoch when opened
  sqlite3_file* real;  // the wrapped file, allocated right after this struct
};

int OpIndex(FaultOp op) {
  switch (op) {
    case kFaultRead: return 0;
    case kFaultWrite: return 1;
    case kFaultSync: return 2;
    default: return 3;
  }
}

FaultFileHandle* H(sqlite3_file* f) { return reinterpret_cast<FaultFileHandle*>(f); }

int xClose(sqlite3_file* f) {
  int rc = H(f)->real->pMethods ? H(f)->real->pMethods->xClose(H(f)->real) : SQLITE_OK;
  return rc;
}

int xRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  FaultVfs& v = FaultVfs::Get();
  v.CountCall(kFaultRead);
  if (int rc = v.Check(kFaultRead, H(f)->kind, H(f)->epoch); rc != SQLITE_OK) {
    if (rc == SQLITE_IOERR_SHORT_READ) memset(buf, 0, amt);
    return rc;
  }
  return H(f)->real->pMethods->xRead(H(f)->real, buf, amt, off);
}

int xWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  FaultVfs& v = FaultVfs::Get();
  v.CountCall(kFaultWrite);
  v.NoteWrite(H(f)->epoch);
  if (int rc = v.Check(kFaultWrite, H(f)->kind, H(f)->epoch); rc != SQLITE_OK) {
    if (rc == kKillAfterMarker) {
      H(f)->real->pMethods->xWrite(H(f)->real, buf, amt, off);
      raise(SIGKILL);
    }
    if (rc & 0x10000000) {  // short write marker: half of the data reaches the file
      H(f)->real->pMethods->xWrite(H(f)->real, buf, amt / 2, off);
      rc &= ~0x10000000;
    }
    return rc;
  }
  return H(f)->real->pMethods->xWrite(H(f)->real, buf, amt, off);
}

int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  FaultVfs& v = FaultVfs::Get();
  v.CountCall(kFaultTruncate);
  v.NoteWrite(H(f)->epoch);
  if (int rc = v.Check(kFaultTruncate, H(f)->kind, H(f)->epoch); rc != SQLITE_OK) return rc & ~0x10000000;
  return H(f)->real->pMethods->xTruncate(H(f)->real, size);
}

int xSync(sqlite3_file* f, int flags) {
  FaultVfs& v = FaultVfs::Get();
  v.CountCall(kFaultSync);
  v.NoteWrite(H(f)->epoch);
  if (int rc = v.Check(kFaultSync, H(f)->kind, H(f)->epoch); rc != SQLITE_OK) {
    if (rc == kKillAfterMarker) {
      H(f)->real->pMethods->xSync(H(f)->real, flags);
      raise(SIGKILL);
    }
    return rc & ~0x10000000;
  }
  return H(f)->real->pMethods->xSync(H(f)->real, flags);
}

// Everything else is forwarded unchanged.
int xFileSize(sqlite3_file* f, sqlite3_int64* p) { return H(f)->real->pMethods->xFileSize(H(f)->real, p); }
int xLock(sqlite3_file* f, int l) { return H(f)->real->pMethods->xLock(H(f)->real, l); }
int xUnlock(sqlite3_file* f, int l) { return H(f)->real->pMethods->xUnlock(H(f)->real, l); }
int xCheckReservedLock(sqlite3_file* f, int* r) { return H(f)->real->pMethods->xCheckReservedLock(H(f)->real, r); }
int xFileControl(sqlite3_file* f, int op, void* a) { return H(f)->real->pMethods->xFileControl(H(f)->real, op, a); }
int xSectorSize(sqlite3_file* f) { return H(f)->real->pMethods->xSectorSize(H(f)->real); }
int xDeviceCharacteristics(sqlite3_file* f) { return H(f)->real->pMethods->xDeviceCharacteristics(H(f)->real); }
int xShmMap(sqlite3_file* f, int pg, int sz, int ext, void volatile** pp) {
  return H(f)->real->pMethods->xShmMap(H(f)->real, pg, sz, ext, pp);
}
int xShmLock(sqlite3_file* f, int off, int n, int flags) { return H(f)->real->pMethods->xShmLock(H(f)->real, off, n, flags); }
void xShmBarrier(sqlite3_file* f) { H(f)->real->pMethods->xShmBarrier(H(f)->real); }
int xShmUnmap(sqlite3_file* f, int del) { return H(f)->real->pMethods->xShmUnmap(H(f)->real, del); }
int xFetch(sqlite3_file*, sqlite3_int64, int, void** pp) {
  *pp = nullptr;  // no memory-mapped reads: every read goes through xRead (and can fail)
  return SQLITE_OK;
}
int xUnfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

const sqlite3_io_methods kMethods = {3,          xClose,      xRead,     xWrite,           xTruncate,
                                     xSync,      xFileSize,   xLock,     xUnlock,          xCheckReservedLock,
                                     xFileControl, xSectorSize, xDeviceCharacteristics, xShmMap, xShmLock,
                                     xShmBarrier, xShmUnmap,  xFetch,    xUnfetch};

int xOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  FaultFileHandle* h = H(f);
  h->real = reinterpret_cast<sqlite3_file*>(h + 1);
  h->kind = (flags & SQLITE_OPEN_MAIN_DB) ? FaultFile::kMainDb : (flags & SQLITE_OPEN_WAL) ? FaultFile::kWal : FaultFile::kAny;
  h->epoch = FaultVfs::Get().epoch();
  int rc = g_real->xOpen(g_real, name, h->real, flags, out_flags);
  // SQLite calls xClose only when pMethods is set, so set it even when the real open failed
  // (xClose then skips the real file).
  h->base.pMethods = &kMethods;
  return rc;
}

int xDelete(sqlite3_vfs*, const char* name, int sync_dir) { return g_real->xDelete(g_real, name, sync_dir); }
int xAccess(sqlite3_vfs*, const char* name, int flags, int* out) { return g_real->xAccess(g_real, name, flags, out); }
int xFullPathname(sqlite3_vfs*, const char* name, int n, char* out) { return g_real->xFullPathname(g_real, name, n, out); }
void* xDlOpen(sqlite3_vfs*, const char* f) { return g_real->xDlOpen(g_real, f); }
void xDlError(sqlite3_vfs*, int n, char* m) { g_real->xDlError(g_real, n, m); }
void (*xDlSym(sqlite3_vfs*, void* h, const char* s))(void) { return g_real->xDlSym(g_real, h, s); }
void xDlClose(sqlite3_vfs*, void* h) { g_real->xDlClose(g_real, h); }
int xRandomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int xSleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int xCurrentTime(sqlite3_vfs*, double* t) { return g_real->xCurrentTime(g_real, t); }
int xGetLastError(sqlite3_vfs*, int n, char* m) { return g_real->xGetLastError ? g_real->xGetLastError(g_real, n, m) : 0; }
int xCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) { return g_real->xCurrentTimeInt64(g_real, t); }

}  // namespace

FaultVfs& FaultVfs::Get() {
  static FaultVfs* instance = [] {
    std::lock_guard<std::mutex> lock(g_mu);
    g_real = sqlite3_vfs_find(nullptr);
    std::memset(&g_vfs, 0, sizeof g_vfs);
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(FaultFileHandle)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = kName;
    g_vfs.xOpen = xOpen;
    g_vfs.xDelete = xDelete;
    g_vfs.xAccess = xAccess;
    g_vfs.xFullPathname = xFullPathname;
    g_vfs.xDlOpen = xDlOpen;
    g_vfs.xDlError = xDlError;
    g_vfs.xDlSym = xDlSym;
    g_vfs.xDlClose = xDlClose;
    g_vfs.xRandomness = xRandomness;
    g_vfs.xSleep = xSleep;
    g_vfs.xCurrentTime = xCurrentTime;
    g_vfs.xGetLastError = xGetLastError;
    g_vfs.xCurrentTimeInt64 = xCurrentTimeInt64;
    sqlite3_vfs_register(&g_vfs, 0);
    return new FaultVfs();
  }();
  return *instance;
}

void FaultVfs::Arm(const FaultSpec& spec) {
  std::lock_guard<std::mutex> lock(g_mu);
  spec_ = spec;
  remaining_ = spec.countdown;
  fired_ = 0;
  fired_epoch_ = 0;
  stale_writes_ = 0;
  for (auto& c : calls_) c = 0;
  armed_ = spec.ops != 0;
}

void FaultVfs::Disarm() {
  std::lock_guard<std::mutex> lock(g_mu);
  armed_ = false;
}

int64_t FaultVfs::calls(FaultOp op) const { return calls_[OpIndex(op)].load(); }

void FaultVfs::CountCall(FaultOp op) { ++calls_[OpIndex(op)]; }

void FaultVfs::NoteWrite(uint64_t file_epoch) {
  const uint64_t fe = fired_epoch_.load();
  if (fe != 0 && file_epoch <= fe) ++stale_writes_;
}

int FaultVfs::Check(FaultOp op, FaultFile kind, uint64_t) {
  if (!armed_.load()) return SQLITE_OK;
  std::lock_guard<std::mutex> lock(g_mu);
  if (!armed_ || !(spec_.ops & op)) return SQLITE_OK;
  if (spec_.file != FaultFile::kAny && spec_.file != kind) return SQLITE_OK;
  if (fired_ > 0 && spec_.persistent) {
    ++fired_;
    return spec_.error | (spec_.short_write && op == kFaultWrite ? 0x10000000 : 0);
  }
  if (fired_ > 0 || --remaining_ > 0) return SQLITE_OK;
  ++fired_;
  if (spec_.kill_after) return op == kFaultWrite || op == kFaultSync ? kKillAfterMarker : SQLITE_OK;
  // Handles opened up to now are "stale" from here on: the store must not write through them.
  fired_epoch_ = epoch_.load();
  ++epoch_;
  return spec_.error | (spec_.short_write && op == kFaultWrite ? 0x10000000 : 0);
}

}  // namespace edgepipe::testing
