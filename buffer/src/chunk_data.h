// ChunkData: readings held column by column, the buffer's in-memory form of a chunk. Appending a
// reading costs about 30 bytes (its series' strings are stored once), so the queue of readings
// waiting for a commit, merges of small chunks and batch splits stay small in memory; the
// encoder writes it without building Reading objects.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/reading.h"

namespace edgepipe::buffer {

// Hash of a series' (sensor, unit, source, type).
uint64_t SeriesHash(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type);

// Series hash -> series number: open addressing with linear probing in a power-of-two table at
// most half full (one probe in a flat array per lookup, no node to allocate). Entries with equal
// hashes are told apart by the caller's comparison of the fields, so a lookup builds no key.
class SeriesIndex {
 public:
  // The number of the series with this hash for which `same(number)` holds, or -1.
  template <typename Same>
  int64_t Find(uint64_t hash, Same&& same) const {
    if (slots_.empty()) return -1;
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.series == kEmpty) return -1;
      if (slot.hash == hash && same(slot.series)) return slot.series;
    }
  }
  // Adds a series; `series` is the number of series indexed so far (numbers are 0, 1, 2, ...).
  void Insert(uint64_t hash, uint32_t series);
  // Empties the table, keeping its size (a chunk refilled with as many series rehashes nothing).
  void Clear() { std::fill(slots_.begin(), slots_.end(), Slot{}); }
  size_t MemoryBytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t series = kEmpty;
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<Slot> slots_;
};

// The readings of one series: same sensor, unit, source and value type, in stored order.
struct SeriesColumns {
  std::string sensor, unit, source;
  ValueType type = ValueType::kNumber;
  // SeriesHash of the four fields above, kept by ChunkData (set when the series is added, and by
  // Reindex after a decode) so merging chunk after chunk into a batch hashes no string again.
  uint64_t hash = 0;
  std::vector<int64_t> ts;
  std::vector<double> value;
  std::vector<uint32_t> quality;
  std::vector<uint64_t> seq;
  std::vector<std::string> text;  // empty when every text is empty, else one per reading
  size_t size() const { return ts.size(); }
};

class ChunkData {
 public:
  size_t size() const { return order_.size(); }
  bool empty() const { return order_.empty(); }
  const std::vector<uint32_t>& order() const { return order_; }  // series index per reading
  const std::vector<SeriesColumns>& series() const { return series_; }

  void Append(const Reading& r);
  void Append(std::span<const Reading> rs) {
    for (const Reading& r : rs) Append(r);
  }
  // Appends every reading of `other` after ours, in its order.
  void AppendChunk(const ChunkData& other);
  // Readings [begin, end) in stored order.
  ChunkData Slice(size_t begin, size_t end) const;
  std::vector<Reading> ToReadings() const;
  // Appends the readings, in stored order, to `out` (a batch being loaded: no temporary vector).
  void AppendReadingsTo(std::vector<Reading>* out) const;
  // The same, column by column (a batch leased with BatchPolicy::columns). Without `index`, each
  // of our series becomes one more series of `out`; with it (kept by the caller for one `out`),
  // our series are merged into the ones `out` already has, so a batch of many chunks names each
  // series once.
  void AppendColumnsTo(ReadingColumns* out, SeriesIndex* index = nullptr) const;

  int64_t MinTs() const;
  int64_t MaxTs() const;
  // Rough size of the readings as NDJSON lines (the batch policy's max_bytes counts these).
  uint64_t EstimatedBytes() const;
  // Rough heap use, for the memory bound of the commit queue.
  size_t MemoryBytes() const;

  // Used by the decoder: adds an empty series and returns it.
  SeriesColumns& AddSeries(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type);
  std::vector<uint32_t>& mutable_order() { return order_; }
  std::vector<SeriesColumns>& mutable_series() { return series_; }
  // Rebuilds the series lookup after the decoder filled series directly.
  void Reindex();
  // Empties the chunk but keeps its memory: the columns and strings of its series are reused
  // by the series added next (a commit queue or a batch loader fills chunk after chunk with
  // mostly the same series; a series costs five allocations when it starts empty).
  void Clear();

 private:
  uint32_t SeriesFor(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type);
  void AddNewSeries(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type,
                    uint64_t hash);

  std::vector<uint32_t> order_;
  std::vector<SeriesColumns> series_;
  SeriesIndex index_;
  // The series of the last reading appended, and per series the one that came after it last
  // time (kNoSeries: none yet): a guess tried before the hash table. One entry per series
  // (AddNewSeries, Reindex).
  static constexpr uint32_t kNoSeries = UINT32_MAX;
  uint32_t last_ = kNoSeries;
  std::vector<uint32_t> next_;
  // Series emptied by Clear(), their capacity kept, taken by the next series added.
  std::vector<SeriesColumns> spare_;
  SeriesColumns& NewSeries();
  static constexpr size_t kFirstCapacity = 8;  // readings per column of a new series
};

// Rough size of one reading as an NDJSON line.
uint64_t EstimateReadingBytes(size_t sensor, size_t unit, size_t source, size_t text);

}  // namespace edgepipe::buffer
