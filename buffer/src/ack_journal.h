// The acknowledgement journal: what makes an append durable for WaitDurable() without a SQLite
// commit of its own (docs/durability.md, "The acknowledgement journal").
//
// A source that acknowledges its peer only once its data is durable (MQTT QoS 1: the PUBACK;
// serial: the frame ACK) waits for every message. Committing SQLite for each cost ~30 µs of CPU
// (three WAL pages and a dozen lock calls); appending the message to this journal costs one
// write() (and an fdatasync at sync = full). SQLite's group commit keeps its own pace, and each
// commit records in the database, in the same transaction, the last journaled append it holds
// (`meta` key `ack_journal`: "<generation> <ticket>"). Opening the buffer replays the journal
// records past that point in one commit, then empties the journal.
//
// Two files, `<path>.ack0` and `<path>.ack1`: appends go to one while the commit that covers the
// other runs; a file is emptied once every record in it is committed.
//
// Record: u32 payload length, u32 CRC-32 of the payload, payload = u64 generation, u64 ticket,
// then the readings, quarantine records, gaps and source state of one append, and its state cells
// when it has any (a count, then table, index varint, u64 value each; absent in records written
// before cells, which decode the same). All little-endian; strings and counts as varints. A torn
// or damaged record ends the file's replay.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "edgepipe/core/pipeline.h"
#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::buffer {

struct JournalRecord {
  uint64_t generation = 0;
  uint64_t ticket = 0;
  std::vector<Reading> readings;
  std::vector<QuarantineRecord> quarantine;
  std::vector<GapRecord> gaps;
  std::vector<std::pair<std::string, std::string>> state;
  std::vector<StateCell> cells;
};

// Appends one record to `out`.
void EncodeJournalRecord(std::string* out, uint64_t generation, uint64_t ticket, std::span<const Reading> readings,
                         std::span<const QuarantineRecord> quarantine, std::span<const GapRecord> gaps,
                         const std::map<std::string, std::string>& state, std::span<const StateCell> cells);

// CRC-32 (IEEE, as zlib's crc32) of a record's payload.
uint32_t JournalCrc32(std::string_view payload);

// Decodes the records of a journal file's bytes, in order, up to the first torn or damaged one;
// `*damaged_bytes` is what follows it (0 for a clean file).
std::vector<JournalRecord> DecodeJournal(std::string_view bytes, size_t* damaged_bytes);

}  // namespace edgepipe::buffer
