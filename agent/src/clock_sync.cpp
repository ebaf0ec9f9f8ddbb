// ClockGuard: holds readings stamped while the system clock is unsynchronised and re-stamps them
// once it is (contract and file format in edgepipe/agent/clock_sync.h).
//
// Invariants:
//  1. A reading is in exactly one place: the hold file (a record at or after `released_off`),
//     or the buffer. Released() moves the boundary only after the buffer committed the released
//     readings together with the state naming the new boundary.
//  2. Records are released in file order, so one offset describes what was released.
//  3. A reading record of boot B is re-stamped with the offset of the first sync record of B
//     that follows it in the file; sync records are written (and synced) before any release
//     that uses them, so a release repeated after a crash computes the same timestamps.
#include "edgepipe/agent/clock_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <random>

#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "validation/glob.h"

namespace edgepipe::agent {
namespace {

constexpr const char* kLog = "clock";
constexpr char kMagic[8] = {'E', 'P', 'H', 'O', 'L', 'D', '1', '\n'};
constexpr uint64_t kHeaderSize = 16;
constexpr uint32_t kMaxRecord = 256u << 20;
constexpr uint8_t kKindReadings = 1;
constexpr uint8_t kKindSync = 2;

uint32_t Crc32(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// ---- byte encoding ----

void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}
void PutString(std::string* s, const std::string& v) {
  PutVarint(s, v.size());
  s->append(v);
}

class Decoder {
 public:
  Decoder(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool ok() const { return ok_; }
  uint8_t U8() { return Need(1) ? *p_++ : 0; }
  uint64_t U64() {
    if (!Need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += 8;
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  std::string String() {
    uint64_t n = Varint();
    if (!Need(n)) return {};
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  bool Need(uint64_t n) {
    if (!ok_ || static_cast<uint64_t>(end_ - p_) < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

uint32_t GetU32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

std::string Hex64(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

Status IoError(const std::string& what, const std::string& path) {
  if (errno == ENOSPC || errno == EDQUOT) return ResourceExhaustedError(Errno(what, path));
  return UnavailableError(Errno(what, path));
}

Status FsyncDir(const std::string& file) {
  std::string dir = file.substr(0, file.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("cannot sync directory", dir);
  return Status::Ok();
}

// ---- the system probe ----

class SystemProbe final : public ClockSyncProbe {
 public:
  SystemProbe(ClockMode mode, std::string file, std::string boot_file)
      : mode_(mode), file_(std::move(file)), boot_file_(std::move(boot_file)) {}

  bool Synchronized() override {
    bool adj = false, flag = false;
    if (mode_ == ClockMode::kAdjtimex || mode_ == ClockMode::kAuto) {
      struct timex tx;
      std::memset(&tx, 0, sizeof tx);  // modes = 0: read only
      adj = ::adjtimex(&tx) >= 0 && !(tx.status & STA_UNSYNC);
    }
    if (mode_ == ClockMode::kTimesyncd || mode_ == ClockMode::kAuto) flag = ::access(file_.c_str(), F_OK) == 0;
    return mode_ == ClockMode::kOff || adj || flag;
  }

  std::string BootId() override {
    std::ifstream in(boot_file_);
    std::string id;
    std::getline(in, id);
    return id;
  }

 private:
  ClockMode mode_;
  std::string file_;
  std::string boot_file_;
};

struct HeldReading {
  int64_t mono;
  Reading r;
};

}  // namespace

std::unique_ptr<ClockSyncProbe> MakeSystemClockSyncProbe(ClockMode mode, std::string synchronized_file,
                                                          std::string boot_id_file) {
  return std::make_unique<SystemProbe>(mode, std::move(synchronized_file), std::move(boot_id_file));
}

// ---- ClockGuard ----

struct ClockGuard::Impl {
  Impl(Options o, Clock& c, std::unique_ptr<ClockSyncProbe> p)
      : opt(std::move(o)), clock(c), probe(std::move(p)) {}
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  struct Record {
    uint64_t off = 0, end = 0;
    std::string boot;
    int64_t first_mono = 0;
    uint64_t count = 0;
    std::optional<int64_t> offset;  // wall - mono of the sync that follows it (same boot)
  };

  Options opt;
  Clock& clock;
  std::unique_ptr<ClockSyncProbe> probe;
  std::string boot;
  int fd = -1;
  uint64_t file_id = 0;
  uint64_t size = 0;           // valid bytes in the file
  uint64_t released_off = kHeaderSize;
  std::deque<Record> pending;  // unreleased reading records, file order
  uint64_t pending_bytes = 0;
  uint64_t pending_readings = 0;
  bool synced = true;
  bool checked = false;
  int64_t last_check = 0;
  int64_t unsynced_since = 0;
  std::map<std::string, bool> source_match;
  uint64_t restamped = 0, unfixable = 0;
  RateLimitedLog hold_log{10 * 60 * kUsPerSecond};

  Status Reset();
  Status Append(const std::string& payload, uint64_t* off, uint64_t* end);
  Status Load();
  void OnSync(int64_t offset_us);
  Result<std::vector<HeldReading>> ReadRecord(const Record& rec);
  Status MaybeCompact();
};

// Starts an empty hold file with a fresh id (so a released offset recorded for an earlier file
// never applies to new records).
Status ClockGuard::Impl::Reset() {
  std::random_device rd;
  file_id = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(clock.MonotonicNowUs());
  std::string header(kMagic, 8);
  PutU64(&header, file_id);
  if (::ftruncate(fd, 0) != 0) return IoError("cannot truncate hold file", opt.hold_path);
  if (::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()))
    return IoError("cannot write hold file", opt.hold_path);
  if (opt.sync_writes && ::fdatasync(fd) != 0) return IoError("cannot sync hold file", opt.hold_path);
  size = kHeaderSize;
  released_off = kHeaderSize;
  pending.clear();
  pending_bytes = pending_readings = 0;
  return Status::Ok();
}

Status ClockGuard::Impl::Append(const std::string& payload, uint64_t* off, uint64_t* end) {
  std::string rec;
  rec.reserve(8 + payload.size());
  PutU32(&rec, static_cast<uint32_t>(payload.size()));
  PutU32(&rec, Crc32(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  rec += payload;
  const uint64_t at = size;
  ssize_t n = ::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(at));
  if (n != static_cast<ssize_t>(rec.size()) || (opt.sync_writes && ::fdatasync(fd) != 0)) {
    if (n >= 0 && n != static_cast<ssize_t>(rec.size())) errno = ENOSPC;
    Status s = IoError("cannot write hold file", opt.hold_path);
    // Nothing after `size` counts; cut what may have been written.
    (void)!::ftruncate(fd, static_cast<off_t>(at));
    return s;
  }
  size = at + rec.size();
  *off = at;
  *end = size;
  return Status::Ok();
}

Status ClockGuard::Impl::Load() {
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoError("cannot stat hold file", opt.hold_path);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::string data(file_size, '\0');
  if (::pread(fd, data.data(), file_size, 0) != static_cast<ssize_t>(file_size))
    return IoError("cannot read hold file", opt.hold_path);
  const size_t magic_len = std::min<size_t>(file_size, 8);
  if (std::memcmp(data.data(), kMagic, magic_len) == 0 && file_size < kHeaderSize)
    return Reset();  // new, or torn while its header was written (nothing was held in it yet)
  if (file_size < kHeaderSize || std::memcmp(data.data(), kMagic, 8) != 0)
    return FailedPreconditionError("hold file " + opt.hold_path +
                                   " exists but is not an edgepipe hold file; move it away or set "
                                   "validation.clock.hold_path");
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  Decoder hd(p + 8, 8);
  file_id = hd.U64();
  uint64_t off = kHeaderSize;
  while (off + 8 <= file_size) {
    const uint32_t len = GetU32(p + off);
    const uint32_t crc = GetU32(p + off + 4);
    if (len > kMaxRecord || off + 8 + len > file_size || Crc32(p + off + 8, len) != crc) break;
    Decoder d(p + off + 8, len);
    const uint8_t kind = d.U8();
    std::string rec_boot = d.String();
    if (kind == kKindReadings) {
      Record rec;
      rec.off = off;
      rec.end = off + 8 + len;
      rec.boot = rec_boot;
      rec.count = d.Varint();
      rec.first_mono = static_cast<int64_t>(d.U64());  // the first reading's stamp leads the record
      pending.push_back(rec);
    } else if (kind == kKindSync) {
      const int64_t offset = static_cast<int64_t>(d.U64());
      for (Record& r : pending)
        if (r.boot == rec_boot && !r.offset) r.offset = offset;
    }
    off += 8 + len;
  }
  if (off < file_size) {
    EP_LOG_WARN(kLog, "hold file %s: cut %llu bytes of an incomplete record at offset %llu (a write interrupted "
                      "before it was acknowledged)", opt.hold_path.c_str(),
                static_cast<unsigned long long>(file_size - off), static_cast<unsigned long long>(off));
    if (::ftruncate(fd, static_cast<off_t>(off)) != 0) return IoError("cannot truncate hold file", opt.hold_path);
  }
  size = off;
  return Status::Ok();
}

void ClockGuard::Impl::OnSync(int64_t offset_us) {
  bool any = false;
  for (Record& r : pending)
    if (r.boot == boot && !r.offset) any = true;
  if (!any) return;
  std::string payload;
  payload.push_back(static_cast<char>(kKindSync));
  PutString(&payload, boot);
  PutU64(&payload, static_cast<uint64_t>(offset_us));
  uint64_t off, end;
  Status s = Append(payload, &off, &end);
  if (!s.ok()) {
    // Without the sync record a crash could re-stamp with a slightly different offset; the
    // readings are still released now with this one.
    EP_LOG_WARN(kLog, "could not record the clock sync in the hold file: %s", s.ToString().c_str());
  }
  for (Record& r : pending)
    if (r.boot == boot && !r.offset) r.offset = offset_us;
}

Result<std::vector<HeldReading>> ClockGuard::Impl::ReadRecord(const Record& rec) {
  std::string buf(rec.end - rec.off, '\0');
  if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(rec.off)) != static_cast<ssize_t>(buf.size()))
    return IoError("cannot read hold file", opt.hold_path);
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  const uint32_t len = GetU32(p);
  if (8 + static_cast<uint64_t>(len) != buf.size() || Crc32(p + 8, len) != GetU32(p + 4))
    return DataLossError("hold file " + opt.hold_path + ": record at offset " + std::to_string(rec.off) +
                         " changed on disk (checksum mismatch)");
  Decoder d(p + 8, len);
  d.U8();
  d.String();
  const uint64_t count = d.Varint();
  std::vector<HeldReading> out;
  out.reserve(count);
  for (uint64_t i = 0; i < count && d.ok(); ++i) {
    HeldReading h;
    h.mono = static_cast<int64_t>(d.U64());
    h.r.ts_us = static_cast<int64_t>(d.U64());
    h.r.sensor = d.String();
    uint64_t bits = d.U64();
    std::memcpy(&h.r.value, &bits, sizeof bits);
    h.r.type = static_cast<ValueType>(d.U8());
    h.r.quality = static_cast<uint32_t>(d.Varint());
    h.r.unit = d.String();
    h.r.text = d.String();
    h.r.source = d.String();
    h.r.seq = d.Varint();
    out.push_back(std::move(h));
  }
  if (!d.ok()) return DataLossError("hold file " + opt.hold_path + ": malformed record at offset " + std::to_string(rec.off));
  return out;
}

// Rewrites the unreleased records into a fresh file once the released prefix dominates.
Status ClockGuard::Impl::MaybeCompact() {
  const uint64_t dead = released_off - kHeaderSize;
  if (pending.empty() || dead < (1u << 20) || dead < size / 2) return Status::Ok();
  const std::string tmp = opt.hold_path + ".tmp";
  int nfd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (nfd < 0) return IoError("cannot create", tmp);
  std::string body(size - released_off, '\0');
  bool ok = ::pread(fd, body.data(), body.size(), static_cast<off_t>(released_off)) == static_cast<ssize_t>(body.size());
  std::random_device rd;
  const uint64_t new_id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::string header(kMagic, 8);
  PutU64(&header, new_id);
  ok = ok && ::pwrite(nfd, header.data(), header.size(), 0) == static_cast<ssize_t>(header.size()) &&
       ::pwrite(nfd, body.data(), body.size(), kHeaderSize) == static_cast<ssize_t>(body.size()) && ::fsync(nfd) == 0;
  if (!ok || ::rename(tmp.c_str(), opt.hold_path.c_str()) != 0) {
    Status s = IoError("cannot compact hold file", opt.hold_path);
    ::close(nfd);
    ::unlink(tmp.c_str());
    return s;
  }
  Status ds = FsyncDir(opt.hold_path);
  if (!ds.ok()) EP_LOG_WARN(kLog, "%s", ds.ToString().c_str());
  ::close(fd);
  fd = nfd;
  const uint64_t shift = released_off - kHeaderSize;
  for (Record& r : pending) {
    r.off -= shift;
    r.end -= shift;
  }
  size -= shift;
  released_off = kHeaderSize;
  file_id = new_id;
  return Status::Ok();
}

ClockGuard::ClockGuard(Options options, Clock& clock, std::unique_ptr<ClockSyncProbe> probe)
    : impl_(std::make_unique<Impl>(std::move(options), clock, std::move(probe))) {}

ClockGuard::~ClockGuard() = default;

Status ClockGuard::Open(const std::optional<std::string>& released_state) {
  Impl& m = *impl_;
  m.boot = m.probe->BootId();
  if (m.boot.empty()) return FailedPreconditionError("cannot read the boot id (needed to re-stamp readings after sync)");
  m.fd = ::open(m.opt.hold_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (m.fd < 0) return IoError("cannot open hold file", m.opt.hold_path);
  EP_RETURN_IF_ERROR(m.Load());
  if (released_state) {
    // "<file id hex> <offset>"
    const std::string& s = *released_state;
    const size_t sp = s.find(' ');
    if (sp != std::string::npos && s.substr(0, sp) == Hex64(m.file_id)) {
      const uint64_t off = std::strtoull(s.c_str() + sp + 1, nullptr, 10);
      while (!m.pending.empty() && m.pending.front().end <= off) m.pending.pop_front();
      m.released_off = std::max<uint64_t>(kHeaderSize, std::min(off, m.size));
    }
  }
  if (m.pending.empty()) {
    EP_RETURN_IF_ERROR(m.Reset());
  } else {
    for (const auto& r : m.pending) {
      m.pending_bytes += r.end - r.off;
      m.pending_readings += r.count;
    }
    EP_LOG_NOTICE(kLog, "hold file %s: %llu readings held from before the restart", m.opt.hold_path.c_str(),
                  static_cast<unsigned long long>(m.pending_readings));
  }
  m.checked = false;
  Poll(true);
  return Status::Ok();
}

void ClockGuard::Poll(bool force) {
  Impl& m = *impl_;
  const int64_t mono = m.clock.MonotonicNowUs();
  if (!force && m.checked && mono - m.last_check < m.opt.config.check_interval_us) return;
  const bool first = !m.checked;
  m.checked = true;
  m.last_check = mono;
  const bool now_synced = m.probe->Synchronized();
  if (now_synced && (!m.synced || first)) {
    m.OnSync(m.clock.SystemNowUs() - mono);
    if (!first)
      EP_LOG_NOTICE(kLog, "system clock synchronised after %.0f s: re-stamping %llu held readings",
                    (mono - m.unsynced_since) / 1e6, static_cast<unsigned long long>(m.pending_readings));
  } else if (!now_synced && (m.synced || first)) {
    m.unsynced_since = mono;
    EP_LOG_WARN(kLog, "system clock not synchronised: holding readings stamped by this gateway in %s until it "
                      "is (at most %.1f h), then re-stamping them", m.opt.hold_path.c_str(),
                m.opt.config.max_hold_us / 3.6e9);
  }
  m.synced = now_synced;
}

bool ClockGuard::synchronized() const { return impl_->synced; }

bool ClockGuard::ShouldHold(const Reading& r) const {
  Impl& m = *impl_;
  if (m.synced) return false;
  auto it = m.source_match.find(r.source);
  if (it == m.source_match.end()) {
    bool match = false;
    for (const auto& pat : m.opt.config.sources) match = match || validation::GlobMatch(pat, r.source);
    it = m.source_match.emplace(r.source, match).first;
  }
  return it->second;
}

Status ClockGuard::Hold(std::span<const Reading> readings) {
  Impl& m = *impl_;
  if (readings.empty()) return Status::Ok();
  const int64_t mono = m.clock.MonotonicNowUs();
  const int64_t wall = m.clock.SystemNowUs();
  std::string payload;
  payload.push_back(static_cast<char>(kKindReadings));
  PutString(&payload, m.boot);
  PutVarint(&payload, readings.size());
  int64_t first_mono = 0;
  for (size_t i = 0; i < readings.size(); ++i) {
    const Reading& r = readings[i];
    // The reading was stamped (wall - r.ts) ago by the same unsynchronised clock.
    const int64_t stamp_mono = mono - (wall - r.ts_us);
    if (i == 0) first_mono = stamp_mono;
    PutU64(&payload, static_cast<uint64_t>(stamp_mono));
    PutU64(&payload, static_cast<uint64_t>(r.ts_us));
    PutString(&payload, r.sensor);
    uint64_t bits;
    std::memcpy(&bits, &r.value, sizeof bits);
    PutU64(&payload, bits);
    payload.push_back(static_cast<char>(r.type));
    PutVarint(&payload, r.quality);
    PutString(&payload, r.unit);
    PutString(&payload, r.text);
    PutString(&payload, r.source);
    PutVarint(&payload, r.seq);
  }
  Impl::Record rec;
  EP_RETURN_IF_ERROR(m.Append(payload, &rec.off, &rec.end));
  rec.boot = m.boot;
  rec.first_mono = first_mono;
  rec.count = readings.size();
  m.pending.push_back(rec);
  m.pending_bytes += rec.end - rec.off;
  m.pending_readings += rec.count;
  return Status::Ok();
}

Result<std::optional<HeldRelease>> ClockGuard::NextRelease(size_t max_readings) {
  Impl& m = *impl_;
  const int64_t mono = m.clock.MonotonicNowUs();
  HeldRelease rel;
  uint64_t end = 0;
  uint64_t bytes_left = m.pending_bytes;
  for (const Impl::Record& rec : m.pending) {
    if (!rel.readings.empty() && rel.readings.size() + rec.count > max_readings) break;
    const bool restamp = rec.offset.has_value();
    const bool other_boot = rec.boot != m.boot;
    const bool too_old = mono - rec.first_mono > m.opt.config.max_hold_us;
    const bool too_big = bytes_left > m.opt.config.max_hold_bytes;
    if (!restamp && !other_boot && !too_old && !too_big) break;  // keep holding, and all after it
    Result<std::vector<HeldReading>> held = m.ReadRecord(rec);
    if (!held.ok()) return held.status();
    for (HeldReading& h : *held) {
      if (restamp) {
        h.r.ts_us = h.mono + *rec.offset;
        h.r.quality |= kQualityRestamped;
        ++rel.restamped;
      } else {
        h.r.quality |= kQualityClockUnsynced;
        ++rel.unfixable;
      }
      rel.readings.push_back(std::move(h.r));
    }
    if (!restamp)
      EP_LOG_WARN(kLog, "releasing %llu held readings without a fixable time (%s); flagged clock_unsynced",
                  static_cast<unsigned long long>(rec.count),
                  other_boot ? "stamped in an earlier boot that ended before the clock synchronised"
                             : too_old ? "held longer than validation.clock.max_hold"
                                       : "the hold file is over validation.clock.max_hold_size");
    bytes_left -= rec.end - rec.off;
    end = rec.end;
  }
  if (end == 0) return std::optional<HeldRelease>();
  rel.state.key = kStateKey;
  rel.state.value = Hex64(m.file_id) + " " + std::to_string(end);
  return std::optional<HeldRelease>(std::move(rel));
}

Status ClockGuard::Released(const HeldRelease& release) {
  Impl& m = *impl_;
  const size_t sp = release.state.value.find(' ');
  if (sp == std::string::npos || release.state.value.substr(0, sp) != Hex64(m.file_id))
    return InternalError("ClockGuard::Released with a release of another hold file");
  const uint64_t end = std::strtoull(release.state.value.c_str() + sp + 1, nullptr, 10);
  while (!m.pending.empty() && m.pending.front().end <= end) {
    m.pending_bytes -= m.pending.front().end - m.pending.front().off;
    m.pending_readings -= m.pending.front().count;
    m.pending.pop_front();
  }
  m.released_off = end;
  m.restamped += release.restamped;
  m.unfixable += release.unfixable;
  if (m.pending.empty()) return m.Reset();
  return m.MaybeCompact();
}

ClockGuardStats ClockGuard::stats() const {
  const Impl& m = *impl_;
  ClockGuardStats s;
  s.synchronized = m.synced;
  s.held_readings = m.pending_readings;
  s.held_bytes = m.pending_bytes;
  s.restamped = m.restamped;
  s.unfixable = m.unfixable;
  s.unsynced_since_mono = m.synced ? 0 : m.unsynced_since;
  return s;
}

std::unique_ptr<ClockGuard> MakeClockGuard(const ClockConfig& config, const std::string& buffer_path, bool sync_writes,
                                           Clock& clock) {
  ClockGuard::Options o;
  o.config = config;
  o.hold_path = config.hold_path.empty() ? buffer_path + ".clock-hold" : config.hold_path;
  o.sync_writes = sync_writes;
  return std::make_unique<ClockGuard>(o, clock, MakeSystemClockSyncProbe(config.mode, config.synchronized_file));
}

}  // namespace edgepipe::agent
