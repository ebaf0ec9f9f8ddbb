#include "column_codec.h"

#include "edgepipe/core/decimal.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

namespace edgepipe::buffer {
namespace {

constexpr int64_t kPow10Int[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
// Integers beyond 2^53 are not all representable as doubles; the decimal path stays below.
constexpr double kMaxExactInt = 9007199254740992.0;
constexpr uint8_t kModeDecimal = 0;
constexpr uint8_t kModeXor = 1;
// Set in the timestamp unit byte: residuals from a regular grid instead of delta-of-deltas.
constexpr uint8_t kTimestampGrid = 0x80;

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// The per-thread scratch vectors below keep their memory between columns, but not the memory of
// an unusually long one (a merged chunk of one series): the agent's footprint stays small.
template <typename T>
void TrimScratch(std::vector<T>& v) {
  if (v.capacity() > 4096) std::vector<T>().swap(v);
}

size_t VarintLen(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Wrapping arithmetic: damaged input must not be undefined behaviour.
int64_t WrapSub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t WrapAdd(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t WrapMul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }

// The scaled integer of `v` at exponent `e`, when it reproduces `v` exactly.
bool ScaledInt(double v, int e, int64_t* out) { return ScaledDecimal(v, e, kMaxExactInt, out); }

size_t XorCost(std::span<const double> values) {
  size_t cost = 1;
  uint64_t prev = 0;
  for (double v : values) {
    uint64_t x = Bits(v) ^ prev;
    prev = Bits(v);
    if (x != 0) cost += 8 - std::countl_zero(x) / 8 - std::countr_zero(x) / 8;
  }
  return cost;
}

// Size of the decimal encoding at exponent e (values whose own minimum exponent is larger, or
// that do not fit at e, become exceptions stored raw).
size_t DecimalCost(std::span<const double> values, const std::vector<int8_t>& min_e, int e) {
  size_t cost = 2, exceptions = 0;
  int64_t prev = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    int64_t n;
    if (min_e[i] >= 0 && min_e[i] <= e && ScaledInt(values[i], e, &n)) {
      cost += VarintLen(ZigZag(WrapSub(n, prev)));
      prev = n;
    } else {
      ++exceptions;
      cost += 10;
    }
  }
  return cost + VarintLen(exceptions);
}

void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

uint64_t GetFixed64(ByteReader& in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in.Byte()) << (8 * i);
  return v;
}

void EncodeDecimal(std::string* out, std::span<const double> values, const std::vector<int8_t>& min_e, int e) {
  out->push_back(static_cast<char>(kModeDecimal));
  out->push_back(static_cast<char>(e));
  // Reused per thread: a commit encodes one column per series, often of a handful of values, and
  // two allocations per column cost more than encoding it.
  thread_local std::vector<int64_t> ints;
  thread_local std::vector<size_t> exc;
  ints.clear();
  exc.clear();
  for (size_t i = 0; i < values.size(); ++i) {
    int64_t n;
    if (min_e[i] >= 0 && min_e[i] <= e && ScaledInt(values[i], e, &n)) ints.push_back(n);
    else exc.push_back(i);
  }
  PutVarint(out, exc.size());
  size_t last = 0;
  for (size_t i : exc) {
    PutVarint(out, i - last);
    last = i;
    PutFixed64(out, Bits(values[i]));
  }
  int64_t prev = 0;
  for (int64_t n : ints) {
    PutVarint(out, ZigZag(WrapSub(n, prev)));
    prev = n;
  }
  TrimScratch(ints);
  TrimScratch(exc);
}

void EncodeXor(std::string* out, std::span<const double> values) {
  // Byte planes, most significant first: sign/exponent bytes (nearly constant) end up together.
  // Written in place: 1 + 8 bytes per value, one resize (a push_back per byte cost more than
  // the XOR).
  const size_t n = values.size();
  const size_t at = out->size();
  out->resize(at + 1 + 8 * n);
  char* p = out->data() + at;
  *p++ = static_cast<char>(kModeXor);
  uint64_t prev = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t x = Bits(values[i]) ^ prev;
    prev = Bits(values[i]);
    for (int plane = 7; plane >= 0; --plane) p[(7 - plane) * n + i] = static_cast<char>(x >> (8 * plane));
  }
}

}  // namespace

int MinDecimalExponent(double value) {
  if (!std::isfinite(value)) return -1;
  for (int e = 0; e <= kMaxDecimalExponent; ++e) {
    if (!(std::fabs(value * Pow10(e)) <= kMaxExactInt)) return -1;
    int64_t n;
    if (ScaledInt(value, e, &n)) return e;
  }
  return -1;
}

void EncodeTimestamps(std::string* out, std::span<const int64_t> ts, int64_t base) {
  if (ts.empty()) return;
  int64_t lo = ts[0], hi = ts[0];
  for (int64_t t : ts) {
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  int k = 0;
  // A coarser unit, and the grid mode, only when every difference is far from overflowing.
  const bool narrow = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) < (1ull << 62);
  if (narrow) {
    for (k = 6; k > 0; --k) {
      bool all = true;
      for (int64_t t : ts)
        if ((t - ts[0]) % kPow10Int[k] != 0) {
          all = false;
          break;
        }
      if (all) break;
    }
  }
  const size_t n = ts.size();
  auto unit = [&](size_t i) { return k > 0 ? (ts[i] - ts[0]) / kPow10Int[k] : WrapSub(ts[i], ts[0]); };
  // Delta-of-delta suits a steady period; a sampled-then-stamped feed (a fixed period plus
  // jitter) costs less as residuals from the regular grid ts[0] + i * period, because each
  // residual carries one jitter instead of the second difference of three.
  size_t dod_cost = 0, grid_cost = 0;
  int64_t period = 0;
  if (narrow && n >= 3) {
    int64_t prev_u = 0, prev_d = 0;
    for (size_t i = 1; i < n; ++i) {
      const int64_t u = unit(i);
      dod_cost += VarintLen(ZigZag(WrapSub(u - prev_u, prev_d)));
      prev_d = u - prev_u;
      prev_u = u;
    }
    const int64_t span = unit(n - 1);
    const int64_t steps = static_cast<int64_t>(n - 1);
    period = (span >= 0 ? span + steps / 2 : span - steps / 2) / steps;  // rounded to nearest
    grid_cost = VarintLen(ZigZag(period));
    for (size_t i = 1; i < n; ++i) grid_cost += VarintLen(ZigZag(unit(i) - static_cast<int64_t>(i) * period));
  }
  const bool grid = narrow && n >= 3 && grid_cost < dod_cost;
  out->push_back(static_cast<char>(k | (grid ? kTimestampGrid : 0)));
  PutVarint(out, ZigZag(WrapSub(ts[0], base)));
  if (grid) {
    PutVarint(out, ZigZag(period));
    for (size_t i = 1; i < n; ++i) PutVarint(out, ZigZag(unit(i) - static_cast<int64_t>(i) * period));
    return;
  }
  int64_t prev_d = 0;
  for (size_t i = 1; i < n; ++i) {
    int64_t d = k > 0 ? (ts[i] - ts[i - 1]) / kPow10Int[k] : WrapSub(ts[i], ts[i - 1]);
    PutVarint(out, ZigZag(WrapSub(d, prev_d)));
    prev_d = d;
  }
}

bool DecodeTimestamps(ByteReader& in, std::span<int64_t> ts, int64_t base) {
  if (ts.empty()) return true;
  const uint8_t mode = in.Byte();
  const bool grid = (mode & kTimestampGrid) != 0;
  const uint8_t k = mode & ~kTimestampGrid;
  if (k > 6) return false;
  ts[0] = WrapAdd(base, UnZigZag(in.Varint()));
  if (grid) {
    const int64_t period = UnZigZag(in.Varint());
    for (size_t i = 1; i < ts.size() && in.ok(); ++i) {
      const int64_t u = WrapAdd(WrapMul(static_cast<int64_t>(i), period), UnZigZag(in.Varint()));
      ts[i] = WrapAdd(ts[0], WrapMul(u, kPow10Int[k]));
    }
    return in.ok();
  }
  int64_t d = 0;
  for (size_t i = 1; i < ts.size() && in.ok(); ++i) {
    d = WrapAdd(d, UnZigZag(in.Varint()));
    ts[i] = WrapAdd(ts[i - 1], WrapMul(d, kPow10Int[k]));
  }
  return in.ok();
}

void EncodeValues(std::string* out, std::span<const double> values) {
  thread_local std::vector<int8_t> min_e;  // reused per thread, as in EncodeDecimal
  min_e.resize(values.size());
  uint32_t seen = 0;  // bit e set when some value's minimum exponent is e
  for (size_t i = 0; i < values.size(); ++i) {
    // A sensor often repeats its value: the same bits, the same exponent, without the search.
    min_e[i] = i > 0 && Bits(values[i]) == Bits(values[i - 1]) ? min_e[i - 1]
                                                                 : static_cast<int8_t>(MinDecimalExponent(values[i]));
    if (min_e[i] >= 0) seen |= 1u << min_e[i];
  }
  int best_e = -1;
  size_t best = XorCost(values);
  for (int e = 0; e <= kMaxDecimalExponent; ++e) {
    if (!(seen & (1u << e))) continue;
    size_t c = DecimalCost(values, min_e, e);
    if (c < best || (c == best && best_e < 0)) {
      best = c;
      best_e = e;
    }
  }
  if (best_e >= 0) EncodeDecimal(out, values, min_e, best_e);
  else EncodeXor(out, values);
  TrimScratch(min_e);
}

bool DecodeValues(ByteReader& in, std::span<double> values) {
  const uint8_t mode = in.Byte();
  if (!in.ok()) return false;
  if (mode == kModeXor) {
    // Eight planes of n bytes, the top byte of every value first: read in place, one bounds
    // check for the column.
    const size_t n = values.size();
    const uint8_t* planes = in.Take(8 * n);
    if (planes == nullptr) return false;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t x = 0;
      for (int plane = 7; plane >= 0; --plane) x |= static_cast<uint64_t>(planes[(7 - plane) * n + i]) << (8 * plane);
      prev ^= x;
      values[i] = std::bit_cast<double>(prev);
    }
    return true;
  }
  if (mode != kModeDecimal) return false;
  const uint8_t e = in.Byte();
  const uint64_t nexc = in.Varint();
  if (!in.ok() || e > kMaxDecimalExponent || nexc > values.size()) return false;
  const double scale = Pow10(e);
  // Positions of the values stored raw; the usual column has none and builds no bitmap.
  std::vector<bool> is_exc;
  if (nexc > 0) is_exc.assign(values.size(), false);
  uint64_t pos = 0;
  for (uint64_t j = 0; j < nexc; ++j) {
    uint64_t delta = in.Varint();
    if (j > 0 && delta == 0) return false;  // positions strictly increase
    pos += delta;
    if (!in.ok() || pos >= values.size()) return false;
    is_exc[pos] = true;
    values[pos] = std::bit_cast<double>(GetFixed64(in));
  }
  int64_t prev = 0;
  for (size_t i = 0; i < values.size() && in.ok(); ++i) {
    if (nexc > 0 && is_exc[i]) continue;
    prev = WrapAdd(prev, UnZigZag(in.Varint()));
    values[i] = static_cast<double>(prev) / scale;
  }
  return in.ok();
}

void EncodeQuality(std::string* out, std::span<const uint32_t> q) {
  size_t i = 0;
  while (i < q.size()) {
    size_t j = i + 1;
    while (j < q.size() && q[j] == q[i]) ++j;
    PutVarint(out, q[i]);
    PutVarint(out, j - i);
    i = j;
  }
}

bool DecodeQuality(ByteReader& in, std::span<uint32_t> q) {
  size_t i = 0;
  while (i < q.size()) {
    uint64_t v = in.Varint();
    uint64_t run = in.Varint();
    if (!in.ok() || v > UINT32_MAX || run == 0 || run > q.size() - i) return false;
    for (uint64_t k = 0; k < run; ++k) q[i++] = static_cast<uint32_t>(v);
  }
  return true;
}

void EncodeSeq(std::string* out, std::span<const uint64_t> seq) {
  uint64_t prev = 0;
  for (uint64_t s : seq) {
    PutVarint(out, ZigZag(static_cast<int64_t>(s - prev)));
    prev = s;
  }
}

bool DecodeSeq(ByteReader& in, std::span<uint64_t> seq) {
  uint64_t prev = 0;
  for (uint64_t& s : seq) {
    prev += static_cast<uint64_t>(UnZigZag(in.Varint()));
    s = prev;
  }
  return in.ok();
}

}  // namespace edgepipe::buffer
