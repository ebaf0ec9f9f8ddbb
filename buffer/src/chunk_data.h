// ChunkData: readings held column by column, the buffer's in-memory form of a chunk. Appending a
// reading costs about 30 bytes (its series' strings are stored once), so the queue of readings
// waiting for a commit, merges of small chunks and batch splits stay small in memory; the
// encoder writes it without building Reading objects.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/reading.h"

namespace edgepipe::buffer {

// The readings of one series: same sensor, unit, source and value type, in stored order.
struct SeriesColumns {
  std::string sensor, unit, source;
  ValueType type = ValueType::kNumber;
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
  // The same, column by column (a batch leased with BatchPolicy::columns). Each of our series
  // becomes one more series of `out`.
  void AppendColumnsTo(ReadingColumns* out) const;

  int64_t MinTs() const;
  int64_t MaxTs() const;
  // Rough size of the readings as NDJSON lines (the batch policy's max_bytes counts these).
  uint64_t EstimatedBytes() const;
  // Rough heap use, for the memory bound of the commit queue.
  size_t MemoryBytes() const;

  // Used by the decoder: adds an empty series and returns it.
  SeriesColumns& AddSeries(std::string sensor, std::string unit, std::string source, ValueType type);
  std::vector<uint32_t>& mutable_order() { return order_; }
  std::vector<SeriesColumns>& mutable_series() { return series_; }
  // Rebuilds the series lookup after the decoder filled series directly.
  void Reindex();

 private:
  uint32_t SeriesFor(std::string_view sensor, std::string_view unit, std::string_view source, ValueType type);

  std::vector<uint32_t> order_;
  std::vector<SeriesColumns> series_;
  // Hash of (sensor, unit, source, type) -> index in series_, open addressing with linear
  // probing in a power-of-two table at most half full (one cache line per lookup, no node to
  // allocate); entries with equal hashes are told apart by comparing the fields. A lookup builds
  // no key string.
  struct Slot {
    uint64_t hash = 0;
    uint32_t series = kEmpty;
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;
  static constexpr size_t kFirstCapacity = 8;  // readings per column of a new series
  std::vector<Slot> index_;
  void IndexInsert(uint64_t hash, uint32_t series);
};

// Rough size of one reading as an NDJSON line.
uint64_t EstimateReadingBytes(size_t sensor, size_t unit, size_t source, size_t text);

}  // namespace edgepipe::buffer
