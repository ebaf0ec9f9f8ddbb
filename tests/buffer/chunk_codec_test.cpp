// Chunk format v2 (docs/buffer-format.md): lossless round trips, column choices, damaged input.
#include "chunk_codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <tuple>

#include "column_codec.h"
#include "datasets.h"
#include "edgepipe/core/log.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::buffer;

namespace {

Reading R(const std::string& sensor, int64_t ts, double v) {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.unit = "Cel";
  r.source = "test";
  return r;
}

// Bit-exact comparison (operator== would call NaN != NaN and -0.0 == 0.0).
bool SameBits(const Reading& a, const Reading& b) {
  return a.sensor == b.sensor && a.ts_us == b.ts_us && std::bit_cast<uint64_t>(a.value) == std::bit_cast<uint64_t>(b.value) &&
         a.type == b.type && a.quality == b.quality && a.unit == b.unit && a.text == b.text && a.source == b.source &&
         a.seq == b.seq;
}

void CheckRoundTrip(const std::vector<Reading>& in) {
  std::string blob = EncodeChunk(in);
  CHECK(!blob.empty());
  LONGS_EQUAL(kChunkFormatV2, static_cast<uint8_t>(blob[0]));
  Result<std::vector<Reading>> out = DecodeChunk(blob);
  CHECK_TRUE_TEXT(out.ok(), out.status().ToString().c_str());
  LONGS_EQUAL(in.size(), out->size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!SameBits(in[i], (*out)[i])) FAIL(StrFormat("reading %zu differs", i).c_str());
  }
}

}  // namespace

TEST_GROUP(ChunkCodec) {};

TEST(ChunkCodec, DecimalExponentIsTheShortestExactScale) {
  LONGS_EQUAL(2, MinDecimalExponent(21.37));
  LONGS_EQUAL(1, MinDecimalExponent(0.1));
  LONGS_EQUAL(0, MinDecimalExponent(-200));
  LONGS_EQUAL(0, MinDecimalExponent(0.0));
  LONGS_EQUAL(3, MinDecimalExponent(-99999.992));
  LONGS_EQUAL(14, MinDecimalExponent(74.93588199999998));
  LONGS_EQUAL(-1, MinDecimalExponent(-0.0));  // the sign of zero does not survive an integer
  LONGS_EQUAL(-1, MinDecimalExponent(std::nan("")));
  LONGS_EQUAL(-1, MinDecimalExponent(std::numeric_limits<double>::infinity()));
  LONGS_EQUAL(-1, MinDecimalExponent(1e300));
  LONGS_EQUAL(16, MinDecimalExponent(1.0 / 3.0));  // 0.3333333333333333 is its shortest decimal
  LONGS_EQUAL(-1, MinDecimalExponent(1e-20));        // beyond the largest scale, 10^18
  LONGS_EQUAL(-1, MinDecimalExponent(-2.77555756156289e-17));  // from the Beijing TEMP column
}

TEST(ChunkCodec, EveryFieldRoundTripsBitForBitInStoredOrder) {
  std::vector<Reading> in;
  for (int i = 0; i < 300; ++i) in.push_back(R("t" + std::to_string(i % 7), 1'700'000'000'000'000 + i * 1000, 20 + 0.01 * i));
  in[3].quality = kQualityStuck | kQualitySpike;
  in[4].type = ValueType::kString;
  in[4].text = "open";
  in[5].type = ValueType::kBool;
  in[5].value = 1;
  in[6].seq = UINT64_MAX;  // wraps to the next sequence number
  in[13].seq = 7;
  in[7].value = -0.0;
  in[8].value = std::bit_cast<double>(0x7ff8dead00000001ull);  // a NaN with a payload
  in[9].value = std::numeric_limits<double>::infinity();
  in[10].value = std::numeric_limits<double>::denorm_min();
  in[11].unit = "";
  in[12].source = "other";
  in[14].ts_us = INT64_MIN;
  in[21].ts_us = INT64_MAX;
  in[28].ts_us = -5;  // before 1970, out of order
  CheckRoundTrip(in);
  CheckRoundTrip({});
  CheckRoundTrip({R("only", 42, 1.5)});
}

TEST(ChunkCodec, RandomDoublesAndTimestampsRoundTrip) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<Reading> in;
    const int n = 1 + static_cast<int>(rng() % 2000);
    for (int i = 0; i < n; ++i) {
      Reading r = R("s" + std::to_string(rng() % 13), static_cast<int64_t>(rng()), std::bit_cast<double>(rng()));
      if (rng() % 3 == 0) r.value = std::round(std::bit_cast<double>(rng() >> 12) * 1000) / 1000;
      if (rng() % 5 == 0) r.ts_us = 1'700'000'000'000'000 + static_cast<int64_t>(rng() % 1000) * 1000;
      r.quality = static_cast<uint32_t>(rng() % 4 == 0 ? rng() : 0);
      r.seq = rng() % 2 ? rng() : static_cast<uint64_t>(i);
      if (rng() % 50 == 0) {
        r.type = ValueType::kString;
        r.text = std::string(rng() % 40, 'x');
      }
      in.push_back(r);
    }
    CheckRoundTrip(in);
  }
}

TEST(ChunkCodec, DecimalValuesCostFarLessThanRawDoubles) {
  std::vector<Reading> dec, raw;
  std::mt19937 rng(3);
  double t = 20.0;
  for (int i = 0; i < 10'000; ++i) {
    t += (static_cast<int>(rng() % 5) - 2) * 0.1;
    char buf[32];
    snprintf(buf, sizeof buf, "%.1f", t);
    dec.push_back(R("t", 1'700'000'000'000'000 + i * 1'000'000LL, std::strtod(buf, nullptr)));
    raw.push_back(R("t", 1'700'000'000'000'000 + i * 1'000'000LL, std::bit_cast<double>(rng() | (uint64_t{rng()} << 32))));
  }
  ChunkData d;
  d.Append(dec);
  ChunkColumnSizes sizes = MeasureColumns(d);
  // One byte per decimal delta before zstd (the deltas are -0.2..0.2, i.e. -2..2 at scale 10^-1).
  CHECK(sizes.values <= 10'000 + 16);
  LONGS_EQUAL(1 + 1 + 9'999, sizes.timestamps);  // unit byte, first ts, 9999 zero delta-of-deltas
  const size_t dec_size = EncodeChunk(dec).size(), raw_size = EncodeChunk(raw).size();
  CHECK_TEXT(dec_size * 8 < raw_size, StrFormat("%zu vs %zu", dec_size, raw_size).c_str());
  CheckRoundTrip(dec);
  CheckRoundTrip(raw);
}

// A feed sampled on a fixed period and stamped on arrival (period + jitter) is stored as
// residuals from the regular grid (unit byte | 0x80): one jitter per reading instead of the
// second difference of three, and never larger than delta-of-deltas.
TEST(ChunkCodec, JitteredTimestampsUseTheGridModeAndRoundTrip) {
  std::mt19937_64 rng(11);
  for (int64_t unit : {int64_t{1}, int64_t{1000}}) {  // µs jitter (k = 0), ms jitter (k = 3)
    std::vector<Reading> jittered, steady;
    for (int i = 0; i < 5'000; ++i) {
      const int64_t t = 1'700'000'000'000'000 + i * 1'000'000LL;
      jittered.push_back(R("t", t + static_cast<int64_t>(rng() % 50) * unit, 20.5));
      steady.push_back(R("t", t, 20.5));
    }
    ChunkData j, s;
    j.Append(jittered);
    s.Append(steady);
    const ChunkColumnSizes js = MeasureColumns(j), ss = MeasureColumns(s);
    // Grid residuals are 0..49 units from the first reading's jitter: one varint byte each
    // (delta-of-deltas span -98..98 and would need two bytes for a quarter of them).
    CHECK_TEXT(js.timestamps <= 1 + 8 + 2 + 4'999, StrFormat("%zu timestamp bytes", js.timestamps).c_str());
    LONGS_EQUAL(1 + 1 + 4'999, ss.timestamps);  // a steady feed keeps delta-of-deltas (all zero)
    CheckRoundTrip(jittered);
    CheckRoundTrip(steady);
  }
  // Edges: three readings, out-of-order arrival, a span close to the 2^62 limit, negative times.
  CheckRoundTrip({R("a", 10, 1), R("a", 2'000'011, 1), R("a", 1'000'007, 1)});
  CheckRoundTrip({R("a", -5'000'000, 1), R("a", -4'000'001, 1), R("a", -3'000'003, 1), R("a", -2'000'000, 1)});
  const int64_t big = int64_t{1} << 61;
  CheckRoundTrip({R("a", -big, 1), R("a", -big / 3, 1), R("a", big / 3 + 7, 1), R("a", big - 1, 1)});
  std::vector<Reading> backwards;
  for (int i = 0; i < 100; ++i) backwards.push_back(R("b", 1'000'000'000 - i * 1'000'003LL + static_cast<int64_t>(rng() % 997), 1));
  CheckRoundTrip(backwards);
}

TEST(ChunkCodec, OffGridValuesBecomeExceptionsWithoutCoarseningTheSeries) {
  std::vector<Reading> in;
  for (int i = 0; i < 1000; ++i) in.push_back(R("so2", i * 1'000'000LL, i % 50));
  in[100].value = 0.2856;              // a converted value among integers (Beijing SO2)
  in[200].value = 4.66666666666667;    // a gap-filled value
  in[300].value = std::nan("");
  ChunkData d;
  d.Append(in);
  // Scale 10^0 with three exceptions (10 bytes each), not scale 10^14 for everything.
  CHECK(MeasureColumns(d).values < 1000 + 3 * 10 + 8);
  CheckRoundTrip(in);
}

TEST(ChunkCodec, FormatV1ChunksStillDecode) {
  std::vector<Reading> in;
  for (int i = 0; i < 20; ++i) in.push_back(R("a" + std::to_string(i % 2), 1000 + i, i * 0.5));
  in[3].type = ValueType::kString;
  in[3].text = "x";
  std::string v1 = EncodeChunkV1ForTest(in);
  LONGS_EQUAL(kChunkFormatV1, static_cast<uint8_t>(v1[0]));
  Result<std::vector<Reading>> out = DecodeChunk(v1);
  CHECK_TRUE(out.ok());
  CHECK_TRUE(in == *out);
}

TEST(ChunkCodec, DamagedChunksAreDataLossNeverACrash) {
  std::vector<Reading> in;
  for (int i = 0; i < 200; ++i) in.push_back(R("t" + std::to_string(i % 5), 1'700'000'000'000'000 + i * 1000, i * 0.25));
  in[10].type = ValueType::kString;
  in[10].text = "hello";
  const std::string blob = EncodeChunk(in);
  for (size_t len = 0; len < blob.size(); ++len) {
    Result<std::vector<Reading>> r = DecodeChunk(std::string_view(blob).substr(0, len));
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = blob;
    bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    Result<std::vector<Reading>> r = DecodeChunk(bad);
    // zstd's checksum catches payload damage; header damage is caught by the frame or columns.
    if (r.ok()) CHECK(static_cast<uint8_t>(bad[0]) == kChunkFormatV2);
    else CHECK(r.status().code() == StatusCode::kDataLoss);
  }
  CHECK(DecodeChunk(std::string("\x09junk", 5)).status().message().find("version 9") != std::string::npos);
}

TEST(ChunkCodec, SliceAndAppendKeepOrderAndContent) {
  std::vector<Reading> in;
  for (int i = 0; i < 100; ++i) in.push_back(R("s" + std::to_string(i % 3), i, i));
  in[50].type = ValueType::kString;
  in[50].text = "t";
  ChunkData all;
  all.Append(in);
  ChunkData a = all.Slice(0, 37), b = all.Slice(37, 100);
  LONGS_EQUAL(37, a.size());
  ChunkData joined = a;
  joined.AppendChunk(b);
  CHECK_TRUE(in == joined.ToReadings());
  CHECK_TRUE(std::vector<Reading>(in.begin() + 37, in.end()) == b.ToReadings());
  LONGS_EQUAL(36, a.MaxTs());
  LONGS_EQUAL(37, b.MinTs());
  Result<ChunkData> back = DecodeChunkData(EncodeChunk(joined.ToReadings()));
  CHECK_TRUE(back.ok());
  CHECK_TRUE(in == back->ToReadings());
}

TEST(ChunkCodec, RealDataSetsRoundTripAndCompressBelowTwoBytesPerReading) {
  std::string dir = edgepipe::testing::DataFile("README.md");
  dir = dir.substr(0, dir.size() - std::string("/README.md").size());
  Result<std::vector<bench::Dataset>> all = bench::LoadAll(dir);
  CHECK_TRUE_TEXT(all.ok(), all.status().ToString().c_str());
  // A 100-sensor 1 Hz feed over every data set, in 10,000-reading chunks (merged chunks).
  bench::Feed feed(bench::MixedSensors(*all, 100), 1'700'000'000'000'000, bench::TimeMode::kExact);
  std::vector<Reading> rs;
  for (int i = 0; i < 600; ++i) feed.Second(i, &rs);
  size_t bytes = 0;
  for (size_t off = 0; off < rs.size(); off += 10'000) {
    std::vector<Reading> part(rs.begin() + off, rs.begin() + std::min(rs.size(), off + 10'000));
    std::string blob = EncodeChunk(part);
    bytes += blob.size();
    Result<std::vector<Reading>> back = DecodeChunk(blob);
    CHECK_TRUE(back.ok());
    for (size_t i = 0; i < part.size(); ++i)
      if (!SameBits(part[i], (*back)[i])) FAIL(StrFormat("%s reading %zu differs", part[i].sensor.c_str(), i).c_str());
  }
  const double per = static_cast<double>(bytes) / rs.size();
  CHECK_TEXT(per < 2.0, StrFormat("%.3f bytes per reading", per).c_str());
  // Every value of every series, in one chunk per series: bit-exact.
  for (const bench::Dataset& d : *all) {
    for (const bench::Series& s : d.series) {
      std::vector<Reading> one;
      for (size_t i = 0; i < s.values.size(); ++i) one.push_back(R(s.name, static_cast<int64_t>(i) * 3'600'000'000LL, s.values[i]));
      CheckRoundTrip(one);
    }
  }
}

TEST(ChunkCodec, EachReadingLandsInItsOwnSeriesWhateverTheOrderOfArrival) {
  // ChunkData guesses a reading's series from the order readings came in last time (a pack
  // that repeats its sensors in one order) before it hashes. Orders that keep, break and change
  // the pattern, and readings that differ from the guess only by unit, source or value type, must
  // each land in their own series and come back exactly as appended.
  std::mt19937_64 rng(23);
  for (int round = 0; round < 50; ++round) {
    ChunkData data;
    std::vector<Reading> in;
    const int sensors = 1 + static_cast<int>(rng() % 12);
    for (int pack = 0; pack < 30; ++pack) {
      const bool shuffled = rng() % 4 == 0;
      for (int k = 0; k < sensors; ++k) {
        const int s = shuffled ? static_cast<int>(rng() % sensors) : k;
        Reading r = R("p/" + std::to_string(s), int64_t{1'700'000'000'000'000} + pack * 1'000'000 + k, pack * 0.5 + k);
        switch (rng() % 10) {
          case 0: r.unit = "K"; break;
          case 1: r.source = "other"; break;
          case 2:
            r.type = ValueType::kBool;
            r.value = 1;
            break;
          default: break;
        }
        const int repeat = rng() % 5 == 0 ? 2 : 1;  // the same series twice in a row now and then
        for (int i = 0; i < repeat; ++i) {
          data.Append(r);
          in.push_back(r);
        }
      }
    }
    const std::vector<Reading> out = data.ToReadings();
    LONGS_EQUAL(in.size(), out.size());
    for (size_t i = 0; i < in.size(); ++i)
      if (!SameBits(in[i], out[i])) FAIL(StrFormat("round %d: reading %zu differs", round, i).c_str());
    // One series per distinct (sensor, unit, source, type).
    std::set<std::tuple<std::string, std::string, std::string, ValueType>> distinct;
    for (const Reading& r : in) distinct.emplace(r.sensor, r.unit, r.source, r.type);
    LONGS_EQUAL(distinct.size(), data.series().size());
    CheckRoundTrip(in);
  }
}

TEST(ChunkCodec, AClearedChunkIsRefilledAndDecodedIntoAsIfNew) {
  // The commit queue and the batch loader empty a chunk and fill it again (Clear keeps the
  // memory of its series for the next ones). Nothing of an earlier fill may show through:
  // rounds of different sensors, units, sources, types, with and without texts, appended to or
  // decoded into the same ChunkData, must encode and read back exactly like a fresh one.
  std::mt19937_64 rng(29);
  ChunkData reused, decoded;
  std::string scratch;
  ChunkEncoder enc;
  for (int round = 0; round < 40; ++round) {
    std::vector<Reading> in;
    const int sensors = 1 + static_cast<int>(rng() % 40);
    const int n = 1 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i) {
      Reading r = R("r" + std::to_string(round % 3) + "/" + std::to_string(rng() % sensors),
                    int64_t{1'700'000'000'000'000} + i * 1000, static_cast<double>(rng() % 1000) / 10);
      if (rng() % 3 == 0) r.unit = round % 2 ? "K" : "";
      if (rng() % 5 == 0) r.quality = 1;
      if (rng() % 7 == 0) r.seq = rng() % 100;
      if (round % 4 == 1 && rng() % 3 == 0) {
        r.type = ValueType::kString;
        r.text = "text " + std::to_string(i);
      }
      in.push_back(r);
    }
    reused.Clear();
    CHECK_TRUE(reused.empty());
    LONGS_EQUAL(0, reused.series().size());
    reused.Append(in);
    ChunkData fresh;
    fresh.Append(in);
    const std::vector<Reading> out = reused.ToReadings();
    LONGS_EQUAL(in.size(), out.size());
    for (size_t i = 0; i < in.size(); ++i)
      if (!SameBits(in[i], out[i])) FAIL(StrFormat("round %d: reading %zu differs", round, i).c_str());
    LONGS_EQUAL(fresh.series().size(), reused.series().size());
    const std::string blob = enc.Encode(fresh);
    CHECK_TRUE_TEXT(blob == enc.Encode(reused), StrFormat("round %d: a refilled chunk encodes differently", round).c_str());
    Status s = DecodeChunkDataInto(blob, &decoded, &scratch);
    CHECK_TRUE_TEXT(s.ok(), s.ToString().c_str());
    const std::vector<Reading> back = decoded.ToReadings();
    LONGS_EQUAL(in.size(), back.size());
    for (size_t i = 0; i < in.size(); ++i)
      if (!SameBits(in[i], back[i])) FAIL(StrFormat("round %d: decoded reading %zu differs", round, i).c_str());
    LONGS_EQUAL(fresh.series().size(), decoded.series().size());
    // Appending to a decoded chunk finds its series (the lookup was rebuilt for the new content).
    decoded.Append(in.front());
    LONGS_EQUAL(fresh.series().size(), decoded.series().size());
    // A damaged chunk leaves nothing half-decoded behind.
    std::string bad = blob.substr(0, blob.size() / 2);
    s = DecodeChunkDataInto(bad, &decoded, &scratch);
    CHECK_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK_TRUE(decoded.empty());
    LONGS_EQUAL(0, decoded.series().size());
  }
  // The memory of the earlier fills is kept for the next (the point of Clear).
  const size_t kept = reused.MemoryBytes();
  reused.Clear();
  CHECK(reused.MemoryBytes() >= kept);
}

// Random doubles take the XOR mode (8 byte planes per column, read in place): every prefix of the
// column is refused, the whole column reads back bit for bit, and the bytes after it stay unread.
TEST(ChunkCodec, XorValueColumnsRoundTripAndRefuseEveryTruncation) {
  std::mt19937_64 rng(23);
  for (size_t n : {1u, 2u, 7u, 64u, 301u}) {
    std::vector<double> in(n);
    for (double& v : in) v = std::bit_cast<double>(rng());
    std::string col;
    EncodeValues(&col, in);
    LONGS_EQUAL(1, static_cast<uint8_t>(col[0]));  // the XOR mode (docs/buffer-format.md)
    LONGS_EQUAL(1 + 8 * n, col.size());
    for (size_t len = 0; len < col.size(); ++len) {
      std::vector<double> out(n);
      ByteReader r(std::string_view(col).substr(0, len));
      CHECK_FALSE(DecodeValues(r, out));
    }
    const std::string with_tail = col + "tail";
    ByteReader r(with_tail);
    std::vector<double> out(n);
    CHECK_TRUE(DecodeValues(r, out));
    for (size_t i = 0; i < n; ++i) CHECK_EQUAL(std::bit_cast<uint64_t>(in[i]), std::bit_cast<uint64_t>(out[i]));
    CHECK_EQUAL('t', static_cast<char>(r.Byte()));
  }
}
