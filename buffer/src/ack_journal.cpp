#include "ack_journal.h"

#include <array>
#include <cstring>

#include "varint.h"

namespace edgepipe::buffer {
namespace {

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32), slicing-by-8: eight bytes per step through
// eight tables (a byte at a time took ~2 ns per byte, 1.8 % of the agent's CPU at QoS 1).
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  return t;
}
constexpr CrcTables kCrc = MakeCrcTables();


void PutFixed32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
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

uint32_t JournalCrc32(std::string_view s) {
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {  // the bytes read as little-endian words, whatever the host
    const uint32_t lo = c ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    c = kCrc[7][lo & 0xFF] ^ kCrc[6][(lo >> 8) & 0xFF] ^ kCrc[5][(lo >> 16) & 0xFF] ^ kCrc[4][lo >> 24] ^
        kCrc[3][p[4]] ^ kCrc[2][p[5]] ^ kCrc[1][p[6]] ^ kCrc[0][p[7]];
  }
  for (; n > 0; ++p, --n) c = kCrc[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void EncodeJournalRecord(std::string* out, uint64_t generation, uint64_t ticket, std::span<const Reading> readings,
                         std::span<const QuarantineRecord> quarantine, std::span<const GapRecord> gaps,
                         const std::map<std::string, std::string>& state, std::span<const StateCell> cells) {
  const size_t start = out->size();
  out->append(kHeader, '\0');  // filled in below
  PutFixed64(out, generation);
  PutFixed64(out, ticket);
  PutVarint(out, readings.size());
  for (const Reading& r : readings) {
    PutString(out, r.sensor);
    PutFixed64(out, static_cast<uint64_t>(r.ts_us));
    uint64_t bits;
    std::memcpy(&bits, &r.value, 8);
    PutFixed64(out, bits);
    out->push_back(static_cast<char>(r.type));
    PutVarint(out, r.quality);
    PutString(out, r.unit);
    PutString(out, r.text);
    PutString(out, r.source);
    PutVarint(out, r.seq);
  }
  PutVarint(out, quarantine.size());
  for (const QuarantineRecord& q : quarantine) {
    PutFixed64(out, static_cast<uint64_t>(q.ts_us));
    PutFixed64(out, static_cast<uint64_t>(q.reading_ts_us));
    PutString(out, q.source);
    PutString(out, q.sensor);
    PutString(out, q.rule);
    PutString(out, q.reason);
    PutString(out, q.value);
    PutString(out, q.raw);
  }
  PutVarint(out, gaps.size());
  for (const GapRecord& g : gaps) {
    PutString(out, g.source);
    PutString(out, g.sensor);
    PutFixed64(out, static_cast<uint64_t>(g.from_us));
    PutFixed64(out, static_cast<uint64_t>(g.to_us));
    PutVarint(out, g.count);
    PutString(out, g.reason);
  }
  PutVarint(out, state.size());
  for (const auto& [k, v] : state) {
    PutString(out, k);
    PutString(out, v);
  }
  if (!cells.empty()) {
    PutVarint(out, cells.size());
    for (const StateCell& c : cells) {
      PutString(out, c.table);
      PutVarint(out, c.index);
      PutFixed64(out, c.value);
    }
  }
  const std::string_view payload(out->data() + start + kHeader, out->size() - start - kHeader);
  std::string header;
  PutFixed32(&header, static_cast<uint32_t>(payload.size()));
  PutFixed32(&header, JournalCrc32(payload));
  std::memcpy(out->data() + start, header.data(), kHeader);
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
