#include "chunk_data.h"

#include <algorithm>
#include <climits>

namespace edgepipe::buffer {
uint64_t SeriesHash(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type) {
  const std::hash<std::string_view> h;
  uint64_t k = h(sensor);
  k = k * 0x9e3779b97f4a7c15ull ^ h(unit);
  k = k * 0x9e3779b97f4a7c15ull ^ h(source);
  return k * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(type);
}

void SeriesIndex::Insert(uint64_t hash, uint32_t series) {
  if ((series + 1) * 2 > slots_.size()) {  // keep the table at most half full
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    for (const Slot& s : old)
      if (s.series != kEmpty) Insert(s.hash, s.series);
  }
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].series != kEmpty) i = (i + 1) & mask;
  slots_[i] = Slot{hash, series};
}

uint64_t EstimateReadingBytes(size_t sensor, size_t unit, size_t source, size_t text) {
  return 72 + sensor + unit + source + text;
}

uint32_t ChunkData::SeriesFor(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type) {
  auto same = [&](uint32_t i) {
    const SeriesColumns& s = series_[i];
    return s.type == type && s.sensor == sensor && s.unit == unit && s.source == source;
  };
  // Readings mostly come in a repeating order (a SenML pack names its sensors in the same order
  // each time, a JSON array repeats one sensor): the series that followed the previous reading's
  // series last time is tried before hashing.
  const bool have_last = last_ < series_.size() && last_ < next_.size();
  if (have_last) {
    const uint32_t guess = next_[last_];
    if (guess < series_.size() && same(guess)) return last_ = guess;  // kNoSeries is never below
    if (same(last_)) return last_;  // or the same series again
  }
  const uint64_t key = SeriesHash(sensor, unit, source, type);
  int64_t found = index_.Find(key, same);
  if (found < 0) {
    found = static_cast<int64_t>(series_.size());
    index_.Insert(key, static_cast<uint32_t>(found));
    AddNewSeries(sensor, unit, source, type, key);
  }
  if (have_last) next_[last_] = static_cast<uint32_t>(found);
  return last_ = static_cast<uint32_t>(found);
}

SeriesColumns& ChunkData::NewSeries() {
  if (spare_.empty()) return series_.emplace_back();
  SeriesColumns& s = series_.emplace_back(std::move(spare_.back()));
  spare_.pop_back();
  return s;
}

void ChunkData::Clear() {
  for (SeriesColumns& s : series_) {
    s.ts.clear();
    s.value.clear();
    s.quality.clear();
    s.seq.clear();
    s.text.clear();
    spare_.push_back(std::move(s));
  }
  series_.clear();
  order_.clear();
  index_.Clear();
  next_.clear();
  last_ = kNoSeries;
}

void ChunkData::AddNewSeries(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type,
                             uint64_t hash) {
  SeriesColumns& s = NewSeries();
  next_.push_back(kNoSeries);
  s.sensor = sensor;
  s.unit = unit;
  s.source = source;
  s.type = type;
  s.hash = hash;
  // Room for a few readings at once: growing from empty costs an allocation at 1, 2, 4 and 8
  // readings per column (four columns), most of the appends of a series that gets a handful per
  // commit. At most ~200 bytes more for a series that gets one.
  s.ts.reserve(kFirstCapacity);
  s.value.reserve(kFirstCapacity);
  s.quality.reserve(kFirstCapacity);
  s.seq.reserve(kFirstCapacity);
}

void ChunkData::Append(const Reading& r) {
  const uint32_t idx = SeriesFor(r.sensor, r.unit, r.source, r.type);
  SeriesColumns& s = series_[idx];
  if (!r.text.empty() && s.text.size() != s.ts.size()) s.text.resize(s.ts.size());  // first text: backfill
  s.ts.push_back(r.ts_us);
  s.value.push_back(r.value);
  s.quality.push_back(r.quality);
  s.seq.push_back(r.seq);
  if (!s.text.empty() || !r.text.empty()) s.text.push_back(r.text);
  order_.push_back(idx);
}

void ChunkData::AppendChunk(const ChunkData& other) {
  std::vector<uint32_t> map(other.series_.size());
  for (size_t i = 0; i < other.series_.size(); ++i) {
    const SeriesColumns& o = other.series_[i];
    map[i] = SeriesFor(o.sensor, o.unit, o.source, o.type);
    SeriesColumns& s = series_[map[i]];
    if (!o.text.empty()) {
      s.text.resize(s.ts.size());  // backfill empty texts when this is the series' first text
      s.text.insert(s.text.end(), o.text.begin(), o.text.end());
    } else if (!s.text.empty()) {
      s.text.resize(s.text.size() + o.size());
    }
    s.ts.insert(s.ts.end(), o.ts.begin(), o.ts.end());
    s.value.insert(s.value.end(), o.value.begin(), o.value.end());
    s.quality.insert(s.quality.end(), o.quality.begin(), o.quality.end());
    s.seq.insert(s.seq.end(), o.seq.begin(), o.seq.end());
  }
  order_.reserve(order_.size() + other.order_.size());
  for (uint32_t o : other.order_) order_.push_back(map[o]);
}

ChunkData ChunkData::Slice(size_t begin, size_t end) const {
  end = std::min(end, order_.size());
  ChunkData out;
  std::vector<size_t> pos(series_.size(), 0);  // next row of each series
  for (size_t i = 0; i < begin && i < end; ++i) ++pos[order_[i]];
  std::vector<int64_t> map(series_.size(), -1);
  for (size_t i = begin; i < end; ++i) {
    const uint32_t si = order_[i];
    const SeriesColumns& s = series_[si];
    if (map[si] < 0) map[si] = out.SeriesFor(s.sensor, s.unit, s.source, s.type);
    SeriesColumns& d = out.series_[map[si]];
    const size_t k = pos[si]++;
    d.ts.push_back(s.ts[k]);
    d.value.push_back(s.value[k]);
    d.quality.push_back(s.quality[k]);
    d.seq.push_back(s.seq[k]);
    if (!s.text.empty()) {
      if (d.text.size() != d.ts.size() - 1) d.text.resize(d.ts.size() - 1);
      d.text.push_back(s.text[k]);
    }
    out.order_.push_back(static_cast<uint32_t>(map[si]));
  }
  // A series whose texts in this slice are all empty keeps an empty text column.
  for (SeriesColumns& d : out.series_)
    if (!d.text.empty() && std::all_of(d.text.begin(), d.text.end(), [](const std::string& t) { return t.empty(); }))
      d.text.clear();
  return out;
}

std::vector<Reading> ChunkData::ToReadings() const {
  std::vector<Reading> out;
  AppendReadingsTo(&out);
  return out;
}

void ChunkData::AppendReadingsTo(std::vector<Reading>* out) const {
  out->reserve(out->size() + order_.size());
  std::vector<size_t> pos(series_.size(), 0);
  for (size_t i = 0; i < order_.size(); ++i) {
    const SeriesColumns& s = series_[order_[i]];
    const size_t k = pos[order_[i]]++;
    Reading& r = out->emplace_back();
    r.sensor = s.sensor;
    r.unit = s.unit;
    r.source = s.source;
    r.type = s.type;
    r.ts_us = s.ts[k];
    r.value = s.value[k];
    r.quality = s.quality[k];
    r.seq = s.seq[k];
    if (!s.text.empty()) r.text = s.text[k];
  }
}

void ChunkData::AppendColumnsTo(ReadingColumns* out, SeriesIndex* index) const {
  const size_t first = out->size();
  bool any_text = false;
  std::vector<uint32_t> map(series_.size());  // our series -> out's
  for (size_t i = 0; i < series_.size(); ++i) {
    const SeriesColumns& s = series_[i];
    any_text = any_text || !s.text.empty();
    int64_t found = -1;
    const uint64_t hash = s.hash;
    if (index) {
      found = index->Find(hash, [&](uint32_t k) {
        const ReadingColumns::Series& o = out->series[k];
        return o.type == s.type && o.sensor == s.sensor && o.unit == s.unit && o.source == s.source;
      });
    }
    if (found < 0) {
      found = static_cast<int64_t>(out->series.size());
      if (index) index->Insert(hash, static_cast<uint32_t>(found));
      out->series.push_back(ReadingColumns::Series{s.sensor, s.unit, s.source, s.type});
    }
    map[i] = static_cast<uint32_t>(found);
  }
  if (any_text && out->text.empty()) out->text.resize(first);  // earlier readings had none
  std::vector<size_t> pos(series_.size(), 0);
  for (const uint32_t si : order_) {
    const SeriesColumns& s = series_[si];
    const size_t k = pos[si]++;
    out->series_of.push_back(map[si]);
    out->ts_us.push_back(s.ts[k]);
    out->value.push_back(s.value[k]);
    out->quality.push_back(s.quality[k]);
    out->seq.push_back(s.seq[k]);
    if (any_text) out->text.push_back(s.text.empty() ? std::string() : s.text[k]);
  }
  if (!any_text && !out->text.empty()) out->text.resize(out->size());  // texts began earlier
}

int64_t ChunkData::MinTs() const {
  int64_t m = INT64_MAX;
  for (const SeriesColumns& s : series_)
    for (int64_t t : s.ts) m = std::min(m, t);
  return m;
}

int64_t ChunkData::MaxTs() const {
  int64_t m = INT64_MIN;
  for (const SeriesColumns& s : series_)
    for (int64_t t : s.ts) m = std::max(m, t);
  return m;
}

uint64_t ChunkData::EstimatedBytes() const {
  uint64_t n = 0;
  for (const SeriesColumns& s : series_) {
    n += s.size() * EstimateReadingBytes(s.sensor.size(), s.unit.size(), s.source.size(), 0);
    for (const std::string& t : s.text) n += t.size();
  }
  return n;
}

size_t ChunkData::MemoryBytes() const {
  size_t n = order_.capacity() * sizeof(uint32_t) + series_.capacity() * sizeof(SeriesColumns) + index_.MemoryBytes() +
             next_.capacity() * sizeof(uint32_t) + spare_.capacity() * sizeof(SeriesColumns);
  auto series_bytes = [](const SeriesColumns& s) {
    size_t b = s.sensor.capacity() + s.unit.capacity() + s.source.capacity() + 3 * 48;
    b += s.ts.capacity() * 8 + s.value.capacity() * 8 + s.quality.capacity() * 4 + s.seq.capacity() * 8;
    b += s.text.capacity() * sizeof(std::string);
    for (const std::string& t : s.text) b += t.capacity() > 15 ? t.capacity() : 0;
    return b;
  };
  for (const SeriesColumns& s : series_) n += series_bytes(s);
  for (const SeriesColumns& s : spare_) n += series_bytes(s);
  return n;
}

SeriesColumns& ChunkData::AddSeries(std::string_view sensor, std::string_view unit, std::string_view source,
                                     ValueType type) {
  SeriesColumns& s = NewSeries();
  s.sensor = sensor;  // assigned, not moved in: a reused series keeps its strings' capacity
  s.unit = unit;
  s.source = source;
  s.type = type;
  return s;
}

void ChunkData::Reindex() {
  index_.Clear();
  next_.assign(series_.size(), kNoSeries);
  for (size_t i = 0; i < series_.size(); ++i) {
    SeriesColumns& s = series_[i];
    s.hash = SeriesHash(s.sensor, s.unit, s.source, s.type);
    index_.Insert(s.hash, static_cast<uint32_t>(i));
  }
}

}  // namespace edgepipe::buffer
