// A SenML pack as a flat list of fields, record by record: the form the SenML rules of
// payload.cpp read. Two readers fill it:
//  * ScanSenmlPack: a single-pass scanner for the common shape of a pack (an array of objects
//    whose values are numbers, booleans and strings without escapes or non-ASCII bytes), reading
//    a copy of the payload that ends in a NUL. It declines anything else, without deciding
//    whether it is valid JSON.
//  * FlattenSenmlPack: any document simdjson has parsed (the path for what the scanner declines,
//    and for every error message about the JSON's shape).
// Where the scanner accepts, both give the same pack, bit for bit: tests/fuzz/senml_scan_fuzz.cpp
// checks that against simdjson on every input it generates.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgepipe::fb {

enum class JType : uint8_t { kArray, kObject, kNumber, kString, kBool, kNull };
const char* JTypeName(JType t);  // "an array", "a number", ... (for error messages)
JType JTypeOf(simdjson::dom::element_type t);  // simdjson's three number types are one

struct JValue {
  JType type = JType::kNull;
  bool b = false;            // kBool
  double num = 0;            // kNumber, as simdjson's get_double() gives it
  std::string_view str;      // kString; points into SenmlPack::scan_copy or simdjson's document
};

struct JField {
  std::string_view key;
  JValue val;
};

// Scanned strings point into the pack's own scan_copy: a copy or a move of a scanned pack still
// points into the original's (and a short copy is moved by value, leaving them dangling), so a
// scanned pack is read where it was filled.
struct SenmlPack {
  JType root = JType::kArray;   // not kArray: the payload is not a pack (nothing else is set)
  // The fields of every record, in order: record i's are [ends[i-1], ends[i]) (ends[-1] = 0).
  // Entries past ends.back() are scratch kept for the next pack (no allocation per field).
  std::vector<JField> fields;
  std::vector<uint32_t> ends;
  // Flattening stops at the first element that is not an object: `stopped` is set and
  // `stop_type` is its type; it comes after the records in `ends`.
  bool stopped = false;
  JType stop_type = JType::kNull;
  std::string scan_copy;  // ScanSenmlPack's copy of the payload (strings point into it)
  // Ends the use of the pack (it is empty afterwards) and frees the scratch after an unusually
  // large one (kept otherwise, so a steady stream of packs allocates nothing): up to 4,096
  // fields and records and 64 KiB of payload copy stay.
  void TrimScratch() {
    Clear();
    if (fields.size() > 4096) std::vector<JField>().swap(fields);
    if (ends.capacity() > 4096) std::vector<uint32_t>().swap(ends);
    if (scan_copy.capacity() > 64 * 1024) std::string().swap(scan_copy);
  }
  void Clear() {
    root = JType::kArray;
    ends.clear();
    stopped = false;
    stop_type = JType::kNull;
  }
};

// Calls pack->TrimScratch() when it goes out of scope, whatever the way out (null: nothing).
class TrimScratchOnExit {
 public:
  explicit TrimScratchOnExit(SenmlPack* pack) : pack_(pack) {}
  ~TrimScratchOnExit() {
    if (pack_) pack_->TrimScratch();
  }
  TrimScratchOnExit(const TrimScratchOnExit&) = delete;
  TrimScratchOnExit& operator=(const TrimScratchOnExit&) = delete;

 private:
  SenmlPack* pack_;
};

// The scanner. True: `pack` holds the payload's records. False: the payload is not in the
// scanner's subset (it may still be valid JSON, or not): use FlattenSenmlPack.
bool ScanSenmlPack(std::string_view json, SenmlPack* pack);

// The general reader, from simdjson's DOM.
void FlattenSenmlPack(simdjson::dom::element root, SenmlPack* pack);

// "" when the packs are the same (bitwise numbers); else what differs first (tests, fuzzing).
std::string ComparePacks(const SenmlPack& a, const SenmlPack& b);

}  // namespace edgepipe::fb
