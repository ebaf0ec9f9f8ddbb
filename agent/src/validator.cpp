#include "edgepipe/agent/validator.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>

#include "edgepipe/core/time_util.h"

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

QuarantineRecord Reject(const Reading& r, int64_t now, const char* rule, std::string reason) {
  QuarantineRecord q;
  q.ts_us = now;
  q.reading_ts_us = r.ts_us;
  q.source = r.source;
  q.sensor = r.sensor;
  q.rule = rule;
  q.reason = std::move(reason);
  q.value = ValueText(r);
  return q;
}

}  // namespace

uint64_t Validator::Fingerprint(const Reading& r) {
  uint64_t fp;
  if (r.type == ValueType::kString) {
    fp = std::hash<std::string>{}(r.text);
  } else {
    std::memcpy(&fp, &r.value, sizeof fp);
  }
  return fp ^ (static_cast<uint64_t>(r.type) << 62);
}

Validator::Dup Validator::CheckDuplicate(const Reading& r, History& h, uint64_t fp) const {
  for (int i = 0; i < h.size; ++i) {
    if (h.ts[i] == r.ts_us) return h.fp[i] == fp ? Dup::kExact : Dup::kConflict;
  }
  return Dup::kNone;
}

void Validator::Remember(History& h, int64_t ts, uint64_t fp) {
  h.ts[h.next] = ts;
  h.fp[h.next] = fp;
  h.next = static_cast<uint8_t>((h.next + 1) % kDuplicateWindow);
  if (h.size < kDuplicateWindow) ++h.size;
}

void Validator::Seed(const std::vector<Reading>& stored) {
  // `stored` is newest chunk first; remember oldest first so the newest survive in the window.
  for (auto it = stored.rbegin(); it != stored.rend(); ++it) {
    History& h = history_[it->sensor];
    uint64_t fp = Fingerprint(*it);
    if (CheckDuplicate(*it, h, fp) == Dup::kNone) Remember(h, it->ts_us, fp);
  }
}

void Validator::Process(std::vector<Reading>& in, std::vector<Reading>* passed, std::vector<QuarantineRecord>* rejected) {
  passed->reserve(passed->size() + in.size());
  const int64_t now = clock_.SystemNowUs();
  const bool dup_check = config_.drop_exact_duplicates || config_.duplicate != RuleAction::kOff;
  for (Reading& r : in) {
    ++stats_.received;
    if (r.type == ValueType::kNumber && !std::isfinite(r.value) && config_.non_finite != RuleAction::kOff) {
      if (config_.non_finite == RuleAction::kReject) {
        ++stats_.rejected["finite"];
        rejected->push_back(Reject(r, now, "finite", std::isnan(r.value) ? "value is NaN" : "value is infinite"));
        continue;
      }
      r.quality |= kQualityNonFinite;
    }
    if (dup_check) {
      History& h = history_[r.sensor];
      const uint64_t fp = Fingerprint(r);
      Dup d = CheckDuplicate(r, h, fp);
      if (d == Dup::kExact && config_.drop_exact_duplicates) {
        ++stats_.duplicates_dropped;
        continue;
      }
      if (d == Dup::kConflict && config_.duplicate == RuleAction::kReject) {
        ++stats_.rejected["duplicate"];
        rejected->push_back(Reject(r, now, "duplicate",
                                   "timestamp " + FormatIso8601Us(r.ts_us) + " already seen for this sensor with another value"));
        continue;
      }
      if (d == Dup::kConflict && config_.duplicate == RuleAction::kFlag) r.quality |= kQualityDuplicate;
      if (d == Dup::kNone) Remember(h, r.ts_us, fp);
    }
    if (r.quality) ++stats_.flagged;
    ++stats_.passed;
    passed->push_back(std::move(r));
  }
  in.clear();
}

}  // namespace edgepipe::agent
