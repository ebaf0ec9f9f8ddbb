#include "ack_journal.h"

#include <cstring>

#include "edgepipe/core/crc32.h"
#include "varint.h"

namespace edgepipe::buffer {
namespace {

uint64_t GetFixed(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t Fixed64(ByteReader& r) {
  char b[8];
  return r.Bytes(b, 8) ? GetFixed(b, 8) : 0;
}
int64_t Signed(ByteReader& r) { return static_cast<int64_t>(Fixed64(r)); }
std::string Str(ByteReader& r) { return std::string(r.String()); }

constexpr size_t kHeader = 8;                     // length + CRC
constexpr uint64_t kMaxRecord = 256ull << 20;     // larger = damaged length field

}  // namespace

uint32_t JournalCrc32(std::string_view s) { return Crc32Ieee(s.data(), s.size()); }

namespace {

// The record's fields, in order, to `o`: a SizeBound (the most bytes they can take) or a
// RawWriter (writes them into memory sized by the former). One function for both, so that the
// bound cannot miss a field; writing through a pointer instead of std::string appends made the
// encoding ~4x cheaper (each append of a few bytes is a call and a capacity check).
template <class Out>
void EncodeFields(Out& o, uint64_t generation, uint64_t ticket, std::span<const Reading> readings,
                  std::span<const QuarantineRecord> quarantine, std::span<const GapRecord> gaps,
                  const std::map<std::string, std::string>& state, std::span<const StateCell> cells) {
  o.Fixed64(generation);
  o.Fixed64(ticket);
  o.Varint(readings.size());
  for (const Reading& r : readings) {
    o.String(r.sensor);
    o.Fixed64(static_cast<uint64_t>(r.ts_us));
    uint64_t bits;
    std::memcpy(&bits, &r.value, 8);
    o.Fixed64(bits);
    o.Byte(static_cast<char>(r.type));
    o.Varint(r.quality);
    o.String(r.unit);
    o.String(r.text);
    o.String(r.source);
    o.Varint(r.seq);
  }
  o.Varint(quarantine.size());
  for (const QuarantineRecord& q : quarantine) {
    o.Fixed64(static_cast<uint64_t>(q.ts_us));
    o.Fixed64(static_cast<uint64_t>(q.reading_ts_us));
    o.String(q.source);
    o.String(q.sensor);
    o.String(q.rule);
    o.String(q.reason);
    o.String(q.value);
    o.String(q.raw);
  }
  o.Varint(gaps.size());
  for (const GapRecord& g : gaps) {
    o.String(g.source);
    o.String(g.sensor);
    o.Fixed64(static_cast<uint64_t>(g.from_us));
    o.Fixed64(static_cast<uint64_t>(g.to_us));
    o.Varint(g.count);
    o.String(g.reason);
  }
  o.Varint(state.size());
  for (const auto& [k, v] : state) {
    o.String(k);
    o.String(v);
  }
  if (!cells.empty()) {
    o.Varint(cells.size());
    for (const StateCell& c : cells) {
      o.String(c.table);
      o.Varint(c.index);
      o.Fixed64(c.value);
    }
  }
}

struct SizeBound {
  size_t n = 0;
  void Fixed64(uint64_t) { n += 8; }
  void Varint(uint64_t) { n += 10; }
  void Byte(char) { n += 1; }
  void String(std::string_view s) { n += 10 + s.size(); }
};

struct RawWriter {
  char* p;
  void Fixed64(uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
    p += 8;
  }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
  }
  void Byte(char c) { *p++ = c; }
  void String(std::string_view s) {
    Varint(s.size());
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
};

}  // namespace

void EncodeJournalRecord(std::string* out, uint64_t generation, uint64_t ticket, std::span<const Reading> readings,
                         std::span<const QuarantineRecord> quarantine, std::span<const GapRecord> gaps,
                         const std::map<std::string, std::string>& state, std::span<const StateCell> cells) {
  SizeBound bound;
  EncodeFields(bound, generation, ticket, readings, quarantine, gaps, state, cells);
  const size_t start = out->size();
  out->resize(start + kHeader + bound.n);
  RawWriter w{out->data() + start + kHeader};
  EncodeFields(w, generation, ticket, readings, quarantine, gaps, state, cells);
  const size_t len = static_cast<size_t>(w.p - (out->data() + start + kHeader));
  out->resize(start + kHeader + len);
  const uint32_t crc = JournalCrc32(std::string_view(out->data() + start + kHeader, len));
  char* h = out->data() + start;  // the header: u32 length, u32 CRC
  for (int i = 0; i < 4; ++i) h[i] = static_cast<char>(len >> (8 * i));
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>(crc >> (8 * i));
}

std::vector<JournalRecord> DecodeJournal(std::string_view bytes, size_t* damaged_bytes) {
  std::vector<JournalRecord> out;
  size_t pos = 0;
  auto stop = [&] {
    *damaged_bytes = bytes.size() - pos;
    return out;
  };
  while (pos < bytes.size()) {
    if (bytes.size() - pos < kHeader) return stop();
    const uint64_t len = GetFixed(bytes.data() + pos, 4);
    const uint32_t crc = static_cast<uint32_t>(GetFixed(bytes.data() + pos + 4, 4));
    if (len > kMaxRecord || bytes.size() - pos - kHeader < len) return stop();
    const std::string_view payload = bytes.substr(pos + kHeader, len);
    if (JournalCrc32(payload) != crc) return stop();
    ByteReader r(payload);
    JournalRecord rec;
    rec.generation = Fixed64(r);
    rec.ticket = Fixed64(r);
    const uint64_t n_readings = r.Varint();
    for (uint64_t i = 0; r.ok() && i < n_readings; ++i) {
      Reading& x = rec.readings.emplace_back();
      x.sensor = Str(r);
      x.ts_us = Signed(r);
      const uint64_t bits = Fixed64(r);
      std::memcpy(&x.value, &bits, 8);
      const uint8_t type = r.Byte();
      if (type > static_cast<uint8_t>(ValueType::kString)) return stop();
      x.type = static_cast<ValueType>(type);
      x.quality = static_cast<uint32_t>(r.Varint());
      x.unit = Str(r);
      x.text = Str(r);
      x.source = Str(r);
      x.seq = r.Varint();
    }
    const uint64_t n_quarantine = r.ok() ? r.Varint() : 0;
    for (uint64_t i = 0; r.ok() && i < n_quarantine; ++i) {
      QuarantineRecord& q = rec.quarantine.emplace_back();
      q.ts_us = Signed(r);
      q.reading_ts_us = Signed(r);
      q.source = Str(r);
      q.sensor = Str(r);
      q.rule = Str(r);
      q.reason = Str(r);
      q.value = Str(r);
      q.raw = Str(r);
    }
    const uint64_t n_gaps = r.ok() ? r.Varint() : 0;
    for (uint64_t i = 0; r.ok() && i < n_gaps; ++i) {
      GapRecord& g = rec.gaps.emplace_back();
      g.source = Str(r);
      g.sensor = Str(r);
      g.from_us = Signed(r);
      g.to_us = Signed(r);
      g.count = r.Varint();
      g.reason = Str(r);
    }
    const uint64_t n_state = r.ok() ? r.Varint() : 0;
    for (uint64_t i = 0; r.ok() && i < n_state; ++i) {
      std::string k = Str(r);
      rec.state.emplace_back(std::move(k), Str(r));
    }
    if (r.ok() && !r.AtEnd()) {  // state cells (records without any end before)
      const uint64_t n_cells = r.Varint();
      for (uint64_t i = 0; r.ok() && i < n_cells; ++i) {
        StateCell& c = rec.cells.emplace_back();
        c.table = Str(r);
        const uint64_t index = r.Varint();
        if (index > UINT32_MAX) return stop();
        c.index = static_cast<uint32_t>(index);
        c.value = Fixed64(r);
      }
    }
    // A record whose CRC matches but whose contents do not parse exactly is damaged all the same.
    if (!r.ok() || !r.AtEnd()) return stop();
    out.push_back(std::move(rec));
    pos += kHeader + len;
  }
  *damaged_bytes = 0;
  return out;
}

}  // namespace edgepipe::buffer
