#include "edgepipe/core/reading.h"

namespace edgepipe {

const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kNumber: return "number";
    case ValueType::kBool: return "boolean";
    case ValueType::kString: return "string";
  }
  return "unknown";
}

const char* QualityFlagName(int bit) {
  static const char* const kNames[kQualityFlagCount] = {
      "range", "rate_of_change", "stuck", "spike", "future", "too_old",
      "backwards", "duplicate", "clock_unsynced", "restamped", "type", "finite",
      "sentinel", "unit"};
  if (bit < 0 || bit >= kQualityFlagCount) return "unknown";
  return kNames[bit];
}

}  // namespace edgepipe
