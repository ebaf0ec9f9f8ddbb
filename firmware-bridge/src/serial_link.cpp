#include "edgepipe/firmware_bridge/serial_link.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <sstream>


namespace edgepipe::fb {
namespace {

constexpr const char* kLog = "serial";

// Extends a 32-bit serial number to 64 bits next to `ref` (RFC 1982 arithmetic); -1 if that
// would fall below 0 (nonsense from the peer).
int64_t Extend(uint32_t seq, uint64_t ref) {
  const int64_t r = static_cast<int64_t>(ref) + proto::SeqDiff(seq, static_cast<uint32_t>(ref));
  return r < 0 ? -1 : r;
}

double ScaledValue(const proto::SensorInfo& s, uint32_t raw) {
  double v;
  if (s.kind == proto::SensorKind::kFloat32) {
    float f;
    static_assert(sizeof f == sizeof raw);
    std::memcpy(&f, &raw, sizeof f);
    v = f;
  } else {
    v = static_cast<int32_t>(raw);
  }
  // raw * num / den: exact products, one correctly rounded division, so 2137 * 1 / 100 gives the
  // same double as the text "21.37".
  if (s.scale_num != 1) v *= s.scale_num;
  if (s.scale_den != 1) v /= s.scale_den;
  return v;
}

std::string SerializeCounters(const std::map<std::string, uint64_t>& c) {
  std::string s;
  for (const auto& [k, v] : c) s += (s.empty() ? "" : " ") + k + "=" + std::to_string(v);
  return s;
}

}  // namespace

LinkSession::LinkSession(LinkOptions options, ReadingSink& sink, Clock& clock, FrameWriter writer)
    : opt_(std::move(options)), sink_(sink), clock_(clock), writer_(std::move(writer)), decoder_(this) {}

LinkSession::~LinkSession() { Shutdown(); }

std::string LinkSession::BootKey(uint32_t boot_id) const { return opt_.source + StrFormat("/boot/%08x", boot_id); }

Status LinkSession::LoadState() {
  Result<std::optional<std::string>> v = sink_.LoadState(opt_.source + "/counters");
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Status::Ok();
  std::istringstream in(**v);
  std::string kv;
  std::lock_guard<std::mutex> lock(mu_);
  while (in >> kv) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    counters_[kv.substr(0, eq)] = std::strtoull(kv.c_str() + eq + 1, nullptr, 10);
  }
  persisted_ = counters_;
  return Status::Ok();
}

void LinkSession::Count(const char* name, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_[name] += n;
}

void LinkSession::Error(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = message;
  }
  uint64_t suppressed = 0;
  if (error_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
    EP_LOG_WARN(kLog, "%s (%s): %s%s", opt_.source.c_str(), opt_.device.c_str(), message.c_str(),
                suppressed ? StrFormat(" (%" PRIu64 " similar messages suppressed)", suppressed).c_str() : "");
}

std::map<std::string, uint64_t> LinkSession::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

std::string LinkSession::State() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

uint64_t LinkSession::readings_stored() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find("readings");
  return it == counters_.end() ? 0 : it->second;
}

std::string LinkSession::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

// ---- events from the I/O shell ----

void LinkSession::OnOpen() {
  decoder_.Reset();
  idle_warned_ = false;
  last_frame_mono_ = clock_.MonotonicNowUs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = "waiting for HELLO";
    counters_["opens"]++;
  }
  RequestHello(true);
}

void LinkSession::OnClose(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = "disconnected: " + reason;
}

void LinkSession::OnBytes(std::span<const uint8_t> data, int64_t rx_mono_us) {
  Count("bytes", data.size());
  decoder_.Feed(data, [&](const proto::FrameView& f) { OnFrame(f, rx_mono_us); });
}

void LinkSession::OnTick() {
  const int64_t now = clock_.MonotonicNowUs();
  if (boot_ && now - last_time_sent_ >= opt_.time_sync_interval_us) SendTime(false);
  if (!boot_) RequestHello(false);
  if (!idle_warned_ && now - last_frame_mono_ >= opt_.idle_timeout_us) {
    idle_warned_ = true;
    EP_LOG_WARN(kLog, "%s (%s): no valid frame for %.0f s; asking the MCU for HELLO (is it running? right baud rate?)",
                opt_.source.c_str(), opt_.device.c_str(), opt_.idle_timeout_us / 1e6);
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_ = "idle";
    }
    RequestHello(true);
  }
  // Counters also change without readings (corrupt frames on an otherwise idle link).
  PersistCounters();
}

void LinkSession::PersistCounters() {
  std::map<std::string, uint64_t> c = Counters();
  if (c == persisted_) return;
  Result<uint64_t> t = sink_.AppendWithState({}, {opt_.source + "/counters", SerializeCounters(c)});
  if (t.ok()) persisted_ = std::move(c);
}

// ---- decoding ----

void LinkSession::Dropped(proto::DropReason reason, size_t bytes, std::span<const uint8_t> sample) {
  if (reason == proto::DropReason::kUnsynced) {
    Count("bytes_unsynced", bytes);
    return;
  }
  const std::string name = std::string("corrupt_") + proto::DropReasonName(reason);
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_["frames_corrupt"]++;
    counters_[name]++;
    counters_["bytes_corrupt"] += bytes;
  }
  uint64_t suppressed = 0;
  if (corrupt_log_.ShouldLog(clock_.MonotonicNowUs(), &suppressed))
    EP_LOG_WARN(kLog, "%s (%s): corrupt frame dropped (%s, %zu bytes)%s; the MCU resends what it carried. Many of "
                "these mean line noise, a wrong baud rate or a bad cable; see frames_corrupt in the status",
                opt_.source.c_str(), opt_.device.c_str(), proto::DropReasonName(reason), bytes,
                suppressed ? StrFormat("; %" PRIu64 " more since the last message", suppressed).c_str() : "");
  if (!opt_.quarantine_corrupt_frames) return;
  const int64_t now = clock_.MonotonicNowUs();
  if (now - quarantine_window_start_ >= 60'000'000) {
    quarantine_window_start_ = now;
    quarantined_in_window_ = 0;
  }
  if (quarantined_in_window_++ >= opt_.quarantine_max_per_minute) return;
  QuarantineRecord q;
  q.ts_us = clock_.SystemNowUs();
  q.source = opt_.source;
  q.rule = "serial_frame";
  q.reason = StrFormat("corrupt frame (%s, %zu bytes)", proto::DropReasonName(reason), bytes);
  q.raw = proto::Hex(sample, proto::kMaxWireFrame);
  (void)sink_.Quarantine(q);  // best effort: the counters already hold the fact
}

void LinkSession::Malformed(const proto::FrameView& f, const std::string& why) {
  Count("frames_malformed");
  Error(StrFormat("%s frame rejected: %s", proto::MsgTypeName(f.type), why.c_str()));
  QuarantineRecord q;
  q.ts_us = clock_.SystemNowUs();
  q.source = opt_.source;
  q.rule = "serial_protocol";
  q.reason = why;
  q.raw = proto::Hex(f.raw, proto::kMaxRawFrame);
  Result<uint64_t> t = sink_.Quarantine(q);
  if (!t.ok()) Error("cannot quarantine a malformed frame: " + t.status().ToString());
}

void LinkSession::OnFrame(const proto::FrameView& f, int64_t rx_mono_us) {
  Count("frames");
  last_frame_mono_ = clock_.MonotonicNowUs();
  if (idle_warned_) {
    idle_warned_ = false;
    EP_LOG_NOTICE(kLog, "%s (%s): receiving again", opt_.source.c_str(), opt_.device.c_str());
  }
  switch (static_cast<proto::MsgType>(f.type)) {
    case proto::MsgType::kHello: {
      Result<proto::Hello> h = proto::ParseHello(f.payload);
      if (h.ok()) OnHello(*h, rx_mono_us);
      else Malformed(f, h.status().message());
      return;
    }
    case proto::MsgType::kSensor: {
      Result<proto::SensorInfo> s = proto::ParseSensor(f.payload);
      if (s.ok()) OnSensor(*s, f);
      else Malformed(f, s.status().message());
      return;
    }
    case proto::MsgType::kReadings: {
      Result<proto::Readings> m = proto::ParseReadings(f.payload);
      if (m.ok()) OnReadings(*m, f, rx_mono_us);
      else Malformed(f, m.status().message());
      return;
    }
    case proto::MsgType::kAck:
    case proto::MsgType::kTime:
      Malformed(f, std::string(proto::MsgTypeName(f.type)) +
                       " goes from the agent to the MCU: is the line looped back or echoing?");
      return;
  }
  Malformed(f, StrFormat("unknown message type 0x%02x", f.type));
}

Result<std::optional<std::pair<uint64_t, uint64_t>>> LinkSession::LoadBoot(uint32_t boot_id) {
  Result<std::optional<std::string>> v = sink_.LoadState(BootKey(boot_id));
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<std::pair<uint64_t, uint64_t>>();
  unsigned long long seq = 0, up = 0;
  if (sscanf((*v)->c_str(), "%llu %llu", &seq, &up) < 1)
    return DataLossError("source state " + BootKey(boot_id) + " unreadable: '" + **v + "'");
  return std::optional<std::pair<uint64_t, uint64_t>>(std::make_pair(uint64_t(seq), uint64_t(up)));
}

void LinkSession::OnHello(const proto::Hello& h, int64_t rx_mono_us) {
  Count("hellos");
  if (h.proto_max < proto::kVersion) {
    Error(StrFormat("MCU speaks protocol up to version %u; this agent needs %u", h.proto_max, proto::kVersion));
    return;
  }
  const bool same_boot = boot_ && boot_->id == h.boot_id;
  if (!same_boot) {
    uint64_t next = 1;
    auto known = known_next_.find(h.boot_id);
    if (known != known_next_.end()) {
      next = known->second;
    } else {
      Result<std::optional<std::pair<uint64_t, uint64_t>>> st = LoadBoot(h.boot_id);
      if (!st.ok()) {
        Error(st.status().ToString());
        return;
      }
      if (st->has_value()) {
        next = (*st)->first + 1;
        if (h.uptime_ms < (*st)->second) {
          // Same boot id, but the MCU's clock is behind what we stored: it rebooted and reused
          // the id. Its sequence numbers restarted, so the stored position means nothing.
          Count("boot_id_reused");
          Error(StrFormat("MCU boot id %08x was used by an earlier boot (uptime went from %" PRIu64 " to %" PRIu64
                          " ms); give the firmware a boot id that changes on every reset",
                          h.boot_id, (*st)->second, h.uptime_ms));
          next = 1;
        }
      }
    }
    if (boot_) known_next_[boot_->id] = boot_->next;
    Boot b;
    b.id = h.boot_id;
    b.sensor_count = h.sensor_count;
    b.sensors.resize(h.sensor_count);
    b.next = next;
    b.fw = h.fw_id + " " + h.fw_version;
    b.clock = ClockMapper(opt_.clock);
    boot_ = std::move(b);
    EP_LOG_NOTICE(kLog, "%s (%s): MCU %s, boot %08x, up %.1f s, %u sensors, holding seq %u..%u; resuming at %" PRIu64,
                  opt_.source.c_str(), opt_.device.c_str(), boot_->fw.c_str(), h.boot_id, h.uptime_ms / 1000.0,
                  h.sensor_count, h.tail_seq, h.next_seq - 1, next);
    PreviousBootGap(h);
  } else if (h.sensor_count != boot_->sensor_count) {
    boot_->sensor_count = h.sensor_count;
    boot_->sensors.assign(h.sensor_count, SensorEntry{});
  }
  boot_->uptime_ms = std::max(boot_->uptime_ms, h.uptime_ms);
  if (!boot_->clock.AddSample(h.uptime_ms, rx_mono_us)) Count("clock_jumps");
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = "receiving";
  }
  SendTime(false);  // the MCU gets wall time at once
}

void LinkSession::PreviousBootGap(const proto::Hello& h) {
  if (h.prev_boot_id == 0 || h.prev_boot_id == h.boot_id) return;
  uint64_t prev_next;
  auto known = known_next_.find(h.prev_boot_id);
  if (known != known_next_.end()) {
    prev_next = known->second;
  } else {
    Result<std::optional<std::pair<uint64_t, uint64_t>>> st = LoadBoot(h.prev_boot_id);
    if (!st.ok() || !st->has_value()) {
      Count("prev_boot_unknown");
      return;
    }
    prev_next = (*st)->first + 1;
  }
  const int64_t last = Extend(h.prev_last_seq, prev_next);
  if (last < 0 || static_cast<uint64_t>(last) < prev_next) return;
  const uint64_t missing = static_cast<uint64_t>(last) - prev_next + 1;
  const int64_t boot_wall_us =
      clock_.SystemNowUs() - static_cast<int64_t>(h.uptime_ms) * 1000;  // when the new boot started
  RecordGap(missing, boot_wall_us, boot_wall_us, "mcu_reset");
  EP_LOG_WARN(kLog, "%s (%s): the MCU reset (boot %08x -> %08x) before %" PRIu64 " reading(s) reached the agent; "
              "recorded as a gap",
              opt_.source.c_str(), opt_.device.c_str(), h.prev_boot_id, h.boot_id, missing);
  // Remember the previous boot as complete so a repeated HELLO does not record the gap twice.
  known_next_[h.prev_boot_id] = static_cast<uint64_t>(last) + 1;
  (void)sink_.AppendWithState({}, {BootKey(h.prev_boot_id), StrFormat("%" PRId64 " 0", last)});
}

void LinkSession::OnSensor(const proto::SensorInfo& s, const proto::FrameView& f) {
  if (!boot_ || boot_->id != s.boot_id) {
    Count("frames_before_hello");
    RequestHello(false);
    return;
  }
  if (s.index >= boot_->sensor_count) {
    Malformed(f, StrFormat("sensor index %u beyond the %u sensors announced in HELLO", s.index, boot_->sensor_count));
    return;
  }
  SensorEntry& e = boot_->sensors[s.index];
  e.info = s;
  e.name = opt_.sensor_prefix + s.name;
  e.known = true;
}

bool LinkSession::TableComplete(const proto::Readings& m) const {
  for (const proto::WireReading& w : m.readings)
    if (w.sensor < boot_->sensor_count && !boot_->sensors[w.sensor].known) return false;
  return true;
}

int64_t LinkSession::ReadingTime(const proto::Readings& m, const proto::WireReading& w) const {
  const int64_t t_ms = static_cast<int64_t>(m.frame_time_ms) - static_cast<int64_t>(w.age_ms);
  if (m.flags & proto::kReadingsWall) return t_ms * 1000;
  const int64_t host = boot_->clock.ToHostUs(static_cast<uint64_t>(std::max<int64_t>(t_ms, 0)));  // < 0: quarantined
  return host + (clock_.SystemNowUs() - clock_.MonotonicNowUs());
}

void LinkSession::RecordGap(uint64_t count, int64_t from_us, int64_t to_us, const std::string& reason) {
  GapRecord g;
  g.source = opt_.source;
  g.from_us = from_us;
  g.to_us = to_us;
  g.count = count;
  g.reason = reason;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_["gaps"]++;
    counters_["readings_missing"] += count;
  }
  Result<uint64_t> t = sink_.RecordGap(g);
  if (!t.ok()) Error("cannot record a gap of " + std::to_string(count) + " readings: " + t.status().ToString());
}

void LinkSession::OnReadings(const proto::Readings& m, const proto::FrameView& f, int64_t rx_mono_us) {
  if (!boot_ || boot_->id != m.boot_id || !TableComplete(m)) {
    // Without the sensor table nothing can be named; the MCU resends after HELLO.
    Count("frames_before_hello");
    RequestHello(false);
    return;
  }
  Boot& b = *boot_;
  if (!(m.flags & proto::kReadingsWall)) {
    b.uptime_ms = std::max(b.uptime_ms, m.frame_time_ms);
    if (!b.clock.AddSample(m.frame_time_ms, rx_mono_us)) Count("clock_jumps");
  }
  const int64_t first = Extend(m.first_seq, b.next), tail = Extend(m.tail_seq, b.next);
  if (first < 0 || tail < 0) {
    Malformed(f, StrFormat("sequence numbers %u/%u make no sense after %" PRIu64, m.first_seq, m.tail_seq, b.next));
    return;
  }
  const uint64_t n = m.readings.size();
  if (static_cast<uint64_t>(tail) > b.next) {
    // The MCU dropped E..tail-1 before we stored them (its ring overflowed): known missing.
    const int64_t to = static_cast<uint64_t>(first) == static_cast<uint64_t>(tail) ? ReadingTime(m, m.readings[0])
                                                                                    : clock_.SystemNowUs();
    RecordGap(static_cast<uint64_t>(tail) - b.next, b.last_ts_us ? b.last_ts_us : to, to, "sequence_gap");
    b.next = static_cast<uint64_t>(tail);
  }
  uint64_t skip = 0;
  if (static_cast<uint64_t>(first) < b.next) skip = std::min(n, b.next - static_cast<uint64_t>(first));
  if (skip) Count("duplicates", skip);
  if (skip == n) {
    QueueAck(last_ticket_);  // a retransmission: the ACK was probably lost, send it again
    return;
  }
  if (static_cast<uint64_t>(first) + skip > b.next) {
    Count("frames_out_of_order");
    RequestResend(static_cast<uint64_t>(first));
    return;
  }
  std::vector<Reading> out;
  out.reserve(n - skip);
  for (uint64_t i = skip; i < n; ++i) {
    const proto::WireReading& w = m.readings[i];
    const int64_t ts = ReadingTime(m, w);
    std::string bad;
    if (w.sensor >= b.sensor_count)
      bad = StrFormat("names sensor %u, the MCU announced %u sensors", w.sensor, b.sensor_count);
    else if (!(m.flags & proto::kReadingsWall) && w.age_ms > m.frame_time_ms)
      bad = StrFormat("is %u ms old in a frame sent %" PRIu64 " ms after the MCU booted", w.age_ms, m.frame_time_ms);
    if (!bad.empty()) {
      QuarantineRecord q;
      q.ts_us = clock_.SystemNowUs();
      q.reading_ts_us = ts;
      q.source = opt_.source;
      q.sensor = w.sensor < b.sensor_count ? b.sensors[w.sensor].name : StrFormat("#%u", w.sensor);
      q.rule = "serial_protocol";
      q.reason = StrFormat("reading seq %" PRIu64 " %s", static_cast<uint64_t>(first) + i, bad.c_str());
      q.value = std::to_string(static_cast<int32_t>(w.value));
      q.raw = proto::Hex(f.raw, proto::kMaxRawFrame);
      Count("readings_malformed");
      (void)sink_.Quarantine(q);  // committed (and acknowledged) with the readings below
      continue;
    }
    const SensorEntry& e = b.sensors[w.sensor];
    Reading r;
    r.sensor = e.name;
    r.ts_us = ts;
    r.unit = e.info.unit;
    r.source = opt_.source;
    r.seq = static_cast<uint64_t>(first) + i;
    if (e.info.kind == proto::SensorKind::kBool) {
      r.type = ValueType::kBool;
      r.value = w.value ? 1.0 : 0.0;
    } else {
      r.value = ScaledValue(e.info, w.value);
    }
    out.push_back(std::move(r));
  }
  const uint64_t last_seq = static_cast<uint64_t>(first) + n - 1;
  if (!Store(out, last_seq).ok()) return;  // not acknowledged: the MCU keeps and resends them
  if (!out.empty()) b.last_ts_us = out.back().ts_us;
}

Status LinkSession::Store(std::vector<Reading>& readings, uint64_t last_seq) {
  Boot& b = *boot_;
  std::map<std::string, uint64_t> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_["readings"] += readings.size();
    c = counters_;
  }
  // Counters go first, into the same or an earlier commit than the readings, so when the MCU
  // sees the ACK every corrupt frame before it is counted durably too.
  if (c != persisted_) {
    Result<uint64_t> t = sink_.AppendWithState({}, {opt_.source + "/counters", SerializeCounters(c)});
    if (t.ok()) persisted_ = c;
  }
  Result<uint64_t> t =
      sink_.AppendWithState(readings, {BootKey(b.id), StrFormat("%" PRIu64 " %" PRIu64, last_seq, b.uptime_ms)});
  if (!t.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      counters_["readings"] -= readings.size();
      counters_["sink_errors"]++;
    }
    Error("buffer refused readings (they stay on the MCU): " + t.status().ToString());
    return t.status();
  }
  b.next = last_seq + 1;
  last_ticket_ = *t;
  QueueAck(*t);
  return Status::Ok();
}

// ---- sending ----

void LinkSession::SendTime(bool hello_request) {
  proto::Time t;
  t.unix_ms = static_cast<uint64_t>(std::max<int64_t>(clock_.SystemNowUs(), 0) / 1000);
  t.flags = hello_request ? proto::kTimeHelloRequest : 0;
  writer_(proto::EncodeFrame(static_cast<uint8_t>(proto::MsgType::kTime), tx_seq_.fetch_add(1), proto::EncodeTime(t)));
  last_time_sent_ = clock_.MonotonicNowUs();
  Count(hello_request ? "hello_requests" : "time_syncs");
}

void LinkSession::RequestHello(bool force) {
  const int64_t now = clock_.MonotonicNowUs();
  if (!force && now - last_hello_req_ < opt_.hello_retry_us) return;
  last_hello_req_ = now;
  SendTime(true);
}

void LinkSession::RequestResend(uint64_t frame_first) {
  // One request per hole, repeated when the MCU visibly went back (a frame starting at or
  // before the last out-of-order one: it resent, and the frame with E was lost again) or after
  // resend_retry. Frames already in flight when the MCU got the request do not trigger more.
  const int64_t now = clock_.MonotonicNowUs();
  const bool went_back = frame_first <= last_out_of_order_first_;
  last_out_of_order_first_ = frame_first;
  const int64_t retry = opt_.resend_retry_us > 0
                            ? opt_.resend_retry_us
                            : std::max<int64_t>(50'000, 4 * int64_t(proto::kMaxWireFrame) * 10 * 1'000'000 /
                                                            std::max<int64_t>(opt_.baud, 1));
  if (boot_->next == last_resend_next_ && !went_back && now - last_resend_ < retry) return;
  last_resend_ = now;
  last_resend_next_ = boot_->next;
  uint32_t acked = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (acked_boot_ == boot_->id) acked = acked_seq_;
  }
  SendAck(boot_->id, acked, static_cast<uint32_t>(boot_->next), proto::kAckResend);
  Count("resend_requests");
}

void LinkSession::SendAck(uint32_t boot, uint32_t acked, uint32_t next, uint8_t flags) {
  proto::Ack a{boot, acked, next, flags};
  writer_(proto::EncodeFrame(static_cast<uint8_t>(proto::MsgType::kAck), tx_seq_.fetch_add(1), proto::EncodeAck(a)));
}

void LinkSession::QueueAck(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  acks_.push_back({ticket, boot_->id, static_cast<uint32_t>(boot_->next - 1), static_cast<uint32_t>(boot_->next)});
  ack_cv_.notify_one();
}

bool LinkSession::PumpAck(int64_t timeout_us) {
  PendingAck a;
  {
    std::unique_lock<std::mutex> lock(mu_);
    ack_cv_.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return shutdown_ || !acks_.empty(); });
    if (shutdown_ || acks_.empty()) return false;
    a = acks_.back();  // acknowledgements are cumulative: the newest covers the others
    acks_.clear();
  }
  Status s = sink_.WaitDurable(a.ticket);
  if (!s.ok()) {
    Count("sink_errors");
    Error("commit failed, not acknowledging (the MCU will resend): " + s.ToString());
    return true;
  }
  SendAck(a.boot, a.acked, a.next, 0);
  std::lock_guard<std::mutex> lock(mu_);
  acked_boot_ = a.boot;
  acked_seq_ = a.acked;
  counters_["acks_sent"]++;
  return true;
}

void LinkSession::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  ack_cv_.notify_all();
}

}  // namespace edgepipe::fb
