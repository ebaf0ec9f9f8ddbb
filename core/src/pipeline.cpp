#include "edgepipe/core/pipeline.h"

#include <cinttypes>
#include <cstdio>

namespace edgepipe {

SourceState StateCell::AsState() const {
  char hex[17];
  snprintf(hex, sizeof hex, "%016" PRIx64, value);
  return SourceState{StateKey(table, index), hex};
}

uint64_t StateCell::ParseStateValue(std::string_view value) {
  if (value.size() != 16) return 0;
  uint64_t v = 0;
  for (char c : value) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return 0;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace edgepipe
