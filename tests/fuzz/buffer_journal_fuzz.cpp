// The acknowledgement journal's decoder (buffer/src/ack_journal.h), which reads files a crash may
// have torn: the input as a journal file, and the input as one record's payload behind a valid
// length and CRC (so that fuzzing reaches the record parser past the checksum). Every record that
// decodes must encode back to bytes that decode to the same record.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ack_journal.h"

using namespace edgepipe;
using namespace edgepipe::buffer;

namespace {

void RoundTrip(const std::vector<JournalRecord>& records) {
  for (const JournalRecord& r : records) {
    std::map<std::string, std::string> state;
    for (const auto& [k, v] : r.state) state[k] = v;
    if (state.size() != r.state.size()) continue;  // repeated keys: the map keeps one (as a commit would)
    std::string bytes;
    EncodeJournalRecord(&bytes, r.generation, r.ticket, r.readings, r.quarantine, r.gaps, state, r.cells);
    size_t damaged = 1;
    std::vector<JournalRecord> again = DecodeJournal(bytes, &damaged);
    if (damaged != 0 || again.size() != 1 || again[0].ticket != r.ticket || again[0].generation != r.generation ||
        again[0].readings.size() != r.readings.size() || again[0].quarantine != r.quarantine || again[0].gaps != r.gaps ||
        again[0].cells != r.cells)
      abort();
    for (size_t i = 0; i < r.readings.size(); ++i) {
      Reading a = again[0].readings[i], b = r.readings[i];
      a.value = b.value = 0;  // NaN payloads compare unequal; the bits are checked by the unit test
      if (!(a == b)) abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t damaged = 0;
  std::vector<JournalRecord> records = DecodeJournal(in, &damaged);
  if (damaged > size) abort();
  RoundTrip(records);
  // The same bytes as the payload of one well-framed record.
  std::string framed(8, '\0');
  const uint32_t len = static_cast<uint32_t>(size), crc = JournalCrc32(in);
  for (int i = 0; i < 4; ++i) {
    framed[i] = static_cast<char>(len >> (8 * i));
    framed[4 + i] = static_cast<char>(crc >> (8 * i));
  }
  framed.append(in);
  records = DecodeJournal(framed, &damaged);
  if (records.size() > 1 || (records.size() == 1) != (damaged == 0)) abort();
  RoundTrip(records);
  return 0;
}
