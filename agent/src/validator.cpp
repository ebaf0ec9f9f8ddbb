#include "edgepipe/agent/validator.h"

#include <charconv>
#include <cmath>

namespace edgepipe::agent {

Validator::Validator(const ValidationConfig& config, Clock& clock) : config_(config), clock_(clock) {}

namespace {
std::string ValueText(const Reading& r) {
  if (r.type == ValueType::kString) return r.text;
  if (r.type == ValueType::kBool) return r.value != 0 ? "true" : "false";
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, r.value);
  return std::string(buf, res.ptr);
}
}  // namespace

void Validator::Process(std::vector<Reading>& in, std::vector<Reading>* passed, std::vector<QuarantineRecord>* rejected) {
  passed->reserve(passed->size() + in.size());
  const int64_t now = clock_.SystemNowUs();
  for (Reading& r : in) {
    ++stats_.received;
    if (r.type == ValueType::kNumber && !std::isfinite(r.value) && config_.non_finite != RuleAction::kOff) {
      if (config_.non_finite == RuleAction::kReject) {
        QuarantineRecord q;
        q.ts_us = now;
        q.reading_ts_us = r.ts_us;
        q.source = r.source;
        q.sensor = r.sensor;
        q.rule = "finite";
        q.reason = std::isnan(r.value) ? "value is NaN" : "value is infinite";
        q.value = ValueText(r);
        q.raw = "";
        ++stats_.rejected["finite"];
        rejected->push_back(std::move(q));
        continue;
      }
      r.quality |= kQualityNonFinite;
    }
    if (r.quality) ++stats_.flagged;
    ++stats_.passed;
    passed->push_back(std::move(r));
  }
  in.clear();
}

}  // namespace edgepipe::agent
