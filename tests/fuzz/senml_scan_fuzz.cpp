// libFuzzer target: the SenML scanner (firmware-bridge/src/senml_pack.h) against simdjson. Every
// input the scanner accepts must be JSON that simdjson accepts too, and read to the same pack:
// the same records, keys and strings, and numbers bit for bit. Inputs it declines are simdjson's
// to judge (the payload parser's other path), so nothing is checked for them.
#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "senml_pack.h"

using namespace edgepipe::fb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  static SenmlPack scanned, flattened;
  // The scratch is trimmed after every input, as the payload parser does: reuse after a trim
  // (and after a large pack freed it) is exercised too.
  const TrimScratchOnExit trim(&scanned);
  if (!ScanSenmlPack(json, &scanned)) return 0;
  static simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::element root;
  const simdjson::error_code ec = parser.parse(padded).get(root);
  if (ec != simdjson::SUCCESS) {
    fprintf(stderr, "scanner accepted what simdjson rejects (%s)\n", simdjson::error_message(ec));
    abort();
  }
  FlattenSenmlPack(root, &flattened);
  const std::string diff = ComparePacks(scanned, flattened);
  if (!diff.empty()) {
    fprintf(stderr, "scanner and simdjson differ: %s\n", diff.c_str());
    abort();
  }
  return 0;
}
