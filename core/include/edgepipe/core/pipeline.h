// The contracts between modules. Sources push validated readings into a ReadingSink; the
// uploader pulls Batches from a BatchSource. The buffer implements both; the agent wires them.
// Keeping the contracts here lets each module be tested without the others.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe {

// A small piece of per-source state committed atomically with readings, e.g. "the last
// sequence number received from MCU boot 0x1234". After a restart the source reads it back
// (LoadState) to recognise what it already stored.
struct SourceState {
  std::string key;    // namespaced by the source, e.g. "serial0/boot/4f2a"
  std::string value;
};

// One cell of a per-source table of 8-byte values indexed by a small integer, committed
// atomically with readings like SourceState. For state kept per identifier of a small space
// that is written with nearly every message, such as the MQTT source's record per packet
// identifier (1..65535): the buffer keeps 64 cells per row, so a group commit holding 1,500
// messages writes ~24 rows instead of 1,500. 0 is "no value" (never written).
struct StateCell {
  std::string table;  // namespaced by the source, e.g. "mq/mqtt-pid"
  uint32_t index = 0;
  uint64_t value = 0;

  // The same cell as a plain SourceState: key "<table>/<index>", value 16 lowercase hex digits.
  // What a sink without cell support stores (the defaults below), and how edgepipe stored the
  // MQTT packet records before cells (the buffer still reads them: LoadCell).
  static std::string StateKey(const std::string& table, uint32_t index) { return table + "/" + std::to_string(index); }
  SourceState AsState() const;
  // The value of such a SourceState; 0 when `value` is not 16 hex digits.
  static uint64_t ParseStateValue(std::string_view value);
  bool operator==(const StateCell& o) const = default;
};

// Where accepted readings, rejected payloads and gap records go.
// Thread-safe: any source thread may call any method.
class ReadingSink {
 public:
  virtual ~ReadingSink() = default;

  // Queues readings for the next group commit and returns a ticket. OK means queued in memory,
  // not yet durable. kResourceExhausted when the buffer is full and its policy is reject_new.
  virtual Result<uint64_t> Append(std::span<const Reading> readings) = 0;

  // Like Append, and commits `state` in the same transaction as these readings (the latest value
  // per key wins when several appends share a group commit).
  virtual Result<uint64_t> AppendWithState(std::span<const Reading> readings, const SourceState& state) = 0;

  // Like AppendWithState, but may take the readings out of `readings` instead of copying them
  // (the agent validates them in place): the vector is left valid but unspecified, whatever the
  // result, so a caller that retries after an error builds the readings again. By default the
  // readings are copied (AppendWithState).
  virtual Result<uint64_t> AppendWithStateOwned(std::vector<Reading>& readings, const SourceState& state) {
    return AppendWithState(readings, state);
  }

  // The value last stored for `key` (queued with an append, or committed), or nullopt.
  virtual Result<std::optional<std::string>> LoadState(const std::string& key) = 0;

  // Like AppendWithStateOwned, committing one StateCell with the readings (the latest value per
  // cell wins). By default the cell is stored as a plain SourceState (StateCell::AsState).
  virtual Result<uint64_t> AppendWithCell(std::vector<Reading>& readings, const StateCell& cell) {
    return AppendWithStateOwned(readings, cell.AsState());
  }

  // The value last stored for a cell (queued or committed), or nullopt when none was.
  virtual Result<std::optional<uint64_t>> LoadCell(const std::string& table, uint32_t index) {
    Result<std::optional<std::string>> v = LoadState(StateCell::StateKey(table, index));
    if (!v.ok()) return v.status();
    const uint64_t x = v->has_value() ? StateCell::ParseStateValue(**v) : 0;
    return x ? std::optional<uint64_t>(x) : std::nullopt;
  }

  // Blocks until the commit holding `ticket` (and every earlier one) is durable at the
  // configured sync level, asking the writer to commit at once rather than on its timer.
  // A source acknowledges its peer (MQTT PUBACK, serial ACK) only after this returns OK.
  virtual Status WaitDurable(uint64_t ticket) = 0;

  // Queues a rejected reading or payload for the bounded quarantine table (committed with the
  // next group commit, like readings). Returns a ticket for WaitDurable.
  virtual Result<uint64_t> Quarantine(const QuarantineRecord& record) = 0;

  // Queues a record of data known to be missing; it travels with the next batch.
  virtual Result<uint64_t> RecordGap(const GapRecord& gap) = 0;
};

enum class BatchKind : uint8_t { kReadings = 0, kQuarantine = 1 };

// Counts that describe the quality of the data a batch covers.
struct QualitySummary {
  uint64_t readings_in = 0;    // passed + rejected
  uint64_t passed = 0;         // readings in the batch (flagged ones included)
  uint64_t flagged = 0;        // readings in the batch with any quality flag
  std::map<std::string, uint64_t> rejected;  // rule -> readings rejected to quarantine
  uint64_t gaps = 0;           // gap records attached to the batch
  uint64_t missing = 0;        // readings known to be missing (sum of gap counts)

  bool operator==(const QualitySummary& o) const = default;
};

// A batch's readings column by column, as the buffer keeps them: each series' strings are held
// once, so loading a batch of 100,000 readings allocates a few vectors, not a string per reading.
// Filled instead of Batch::readings when BatchPolicy::columns asks for it (the uploader does).
struct ReadingColumns {
  struct Series {
    std::string sensor, unit, source;
    ValueType type = ValueType::kNumber;
  };
  std::vector<Series> series;
  std::vector<uint32_t> series_of;  // per reading: index into `series`
  std::vector<int64_t> ts_us;
  std::vector<double> value;
  std::vector<uint32_t> quality;
  std::vector<uint64_t> seq;
  std::vector<std::string> text;    // per reading, or empty when no reading of the batch has one

  size_t size() const { return ts_us.size(); }
  bool empty() const { return ts_us.empty(); }
  const Series& SeriesOf(size_t i) const { return series[series_of[i]]; }
  std::string_view TextOf(size_t i) const { return text.empty() ? std::string_view() : std::string_view(text[i]); }
  // Reading i as a Reading (tests, tools; the encoders read the columns).
  Reading At(size_t i) const {
    const Series& s = SeriesOf(i);
    return Reading{s.sensor, ts_us[i], value[i], s.type, quality[i], s.unit, std::string(TextOf(i)), s.source, seq[i]};
  }
  void Reserve(size_t n) {
    series_of.reserve(n);
    ts_us.reserve(n);
    value.reserve(n);
    quality.reserve(n);
    seq.reserve(n);
  }
  std::vector<Reading> ToReadings() const {
    std::vector<Reading> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.push_back(At(i));
    return out;
  }
  bool operator==(const ReadingColumns& o) const = default;
};

// A unit of delivery. Its id, name and content never change once claimed: after a crash the
// same batch is offered again, so a retried upload overwrites the same object.
struct Batch {
  uint64_t id = 0;               // durable id in the buffer
  std::string name;              // globally unique, stable name used in the object key
  BatchKind kind = BatchKind::kReadings;
  int64_t partition_us = 0;      // start of the UTC hour that holds every reading of the batch
  std::vector<Reading> readings;             // kReadings, in stored order
  ReadingColumns columns;                    // kReadings instead, when leased with BatchPolicy::columns
  std::vector<QuarantineRecord> quarantined; // kQuarantine
  std::vector<GapRecord> gaps;               // data known missing, reported with this batch
  QualitySummary quality;
  int attempts = 0;              // delivery attempts recorded so far

  // Readings of the batch, whichever form holds them.
  size_t reading_count() const { return readings.size() + columns.size(); }
};

// What the sink reported for a delivered batch (kept in the buffer's upload ledger).
struct DeliveryReceipt {
  std::string key;        // object key (or path under the outbox)
  uint64_t bytes = 0;     // object size as stored
  std::string checksum;   // hex SHA-256 of the object bytes
  std::string etag;       // what the server returned, "" for file://
  int64_t time_us = 0;    // system time of the confirmation
};

// When a batch closes.
struct BatchPolicy {
  // Twice the buffer's default group commit (10,000): a backlog drained at full rate commits
  // groups of just over 10,000 readings, and a batch of 20,000 closes on whole ones instead of
  // splitting one chunk per batch (docs/benchmarks.md, "a batch closes before a chunk").
  uint64_t max_readings = 20'000;
  uint64_t max_bytes = 8ull << 20;   // estimated encoded (uncompressed) size
  int64_t max_age_us = 60 * 1'000'000ll;  // oldest pending reading's time in the buffer
  // Not a closing rule: hand the readings out in Batch::columns instead of Batch::readings.
  bool columns = false;
};

// Hands out batches to deliver. Thread-safe.
class BatchSource {
 public:
  virtual ~BatchSource() = default;

  // The next batch to deliver, oldest first, or nullopt when none is ready under `policy`.
  // Batches claimed before a restart and never acknowledged come first, unchanged. A batch
  // handed out is not handed out again until Release()d. `flush` closes partial batches.
  virtual Result<std::optional<Batch>> LeaseBatch(const BatchPolicy& policy, bool flush) = 0;

  // The sink confirmed the batch: delete it from the buffer and note the delivery in the
  // upload ledger.
  virtual Status AckBatch(uint64_t batch_id, const DeliveryReceipt& receipt) = 0;

  // Delivery failed: the batch may be handed out again (same content). Records the attempt.
  virtual Status ReleaseBatch(uint64_t batch_id) = 0;
};

}  // namespace edgepipe
