#include "edgepipe/agent/validator.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>

#include "edgepipe/core/time_util.h"
#include "validation/glob.h"
#include "validation/rules.h"
#include "validation/units.h"

namespace edgepipe::agent {

using validation::CompiledRules;
using validation::LinearMap;
using validation::SpikeWindow;

namespace {

constexpr int kBits = kQualityFlagCount;

constexpr int Bit(QualityFlag f) { return __builtin_ctz(static_cast<uint32_t>(f)); }

struct Counters {
  uint64_t received = 0, passed = 0, flagged = 0, dropped = 0;
  std::array<uint64_t, kBits> rejected{};
  std::array<uint64_t, kBits> flags{};
};

// The last kDuplicateWindow (timestamp, sequence, value fingerprint) triples of one sensor, FIFO.
// The scalars first: a reading in order reads only them and writes one slot of each array.
struct History {
  uint8_t size = 0;
  uint8_t next = 0;
  // Upper bounds of what the window holds (of all ever remembered): a reading above both cannot
  // repeat one in the window, which spares the scan for data arriving in order.
  int64_t max_ts = INT64_MIN;
  uint64_t max_seq = 0;
  std::unique_ptr<std::array<uint64_t, Validator::kDuplicateWindow>> seq;  // only with duplicate_by != timestamp
  std::array<int64_t, Validator::kDuplicateWindow> ts{};
  std::array<uint64_t, Validator::kDuplicateWindow> fp{};
};

struct SensorState;

// What Validator::Forget() puts back: a sensor's counters and rule state as they were before the
// last Process() call touched it. Allocated on first use and reused (no allocation after). The
// duplicate window is not copied here (1.5 KiB per sensor and call): each slot Remember()
// overwrites is journaled instead (HistoryUndo).
struct SavedState {
  Counters c;
  bool has_ts = false, has_prev = false;
  int64_t max_ts = 0, prev_ts = 0, run_start = 0;
  double prev_value = 0, run_value = 0;
  uint32_t run_count = 0;
  std::unique_ptr<SpikeWindow> window;
};

// One slot of a duplicate window as it was before Remember() overwrote it.
struct HistoryUndo {
  History* h;
  int64_t ts, max_ts;
  uint64_t fp, seq, max_seq;
  uint8_t slot, size;
};

struct SensorState {
  const CompiledRules* rules = nullptr;
  const std::string* name = nullptr;  // the key of its map entry
  SensorState* next_hint = nullptr;   // the sensor whose reading came after this one's last time
  Counters c;
  bool has_ts = false;  // max_ts valid
  int64_t max_ts = 0;
  bool has_prev = false;  // previous passed value (rate_of_change)
  int64_t prev_ts = 0;
  double prev_value = 0;
  uint32_t run_count = 0;  // stuck: current run of equal values
  double run_value = 0;
  int64_t run_start = 0;
  std::unique_ptr<SpikeWindow> window;
  // Unit conversion of the last unit seen (readings of one sensor rarely change unit).
  bool conv_cached = false;
  std::string conv_from;
  std::optional<LinearMap> conv;
  std::string conv_why;
  // Forget(): the state before the Process() call numbered `saved_call`.
  uint64_t saved_call = 0;
  std::unique_ptr<SavedState> saved;
  History hist;  // last: its arrays are 1 KiB, the fields above are read for every reading

  void Save(uint64_t call) {
    if (!saved) saved = std::make_unique<SavedState>();
    SavedState& v = *saved;
    saved_call = call;
    v.c = c;
    v.has_ts = has_ts;
    v.max_ts = max_ts;
    v.has_prev = has_prev;
    v.prev_ts = prev_ts;
    v.prev_value = prev_value;
    v.run_count = run_count;
    v.run_value = run_value;
    v.run_start = run_start;
    if (window) {
      if (!v.window) v.window = std::make_unique<SpikeWindow>(*window);
      else *v.window = *window;
    }
  }

  void Restore() {
    const SavedState& v = *saved;
    c = v.c;
    has_ts = v.has_ts;
    max_ts = v.max_ts;
    has_prev = v.has_prev;
    prev_ts = v.prev_ts;
    prev_value = v.prev_value;
    run_count = v.run_count;
    run_value = v.run_value;
    run_start = v.run_start;
    if (window) *window = *v.window;
  }
};

std::string Num(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string ValueText(const Reading& r) {
  if (r.type == ValueType::kString) return r.text;
  if (r.type == ValueType::kBool) return r.value != 0 ? "true" : "false";
  return Num(r.value);
}

std::string DurationText(int64_t us) {
  if (us < 0) us = -us;
  char buf[64];
  if (us < 1'000'000) snprintf(buf, sizeof buf, "%.3f s", us / 1e6);
  else if (us < 3600ll * 1'000'000) snprintf(buf, sizeof buf, "%.1f s", us / 1e6);
  else if (us < 86400ll * 1'000'000) snprintf(buf, sizeof buf, "%.1f h", us / 3.6e9);
  else snprintf(buf, sizeof buf, "%.1f days", us / 8.64e10);
  return buf;
}

uint64_t Fingerprint(const Reading& r) {
  uint64_t fp;
  if (r.type == ValueType::kString) {
    fp = std::hash<std::string>{}(r.text);
  } else {
    std::memcpy(&fp, &r.value, sizeof fp);
  }
  return fp ^ (static_cast<uint64_t>(r.type) << 62);
}

enum class Dup { kNone, kExact, kConflict };

enum class Outcome { kPass, kReject, kDrop };

}  // namespace

struct Validator::State {
  State(const ValidationConfig& cfg, Clock& c) : config(cfg), clock(c) {}

  ValidationConfig config;
  Clock& clock;
  bool clock_trusted = true;
  // A sensor's state (~1.5 KiB, mostly its duplicate window) is held apart from the map's node:
  // a lookup then walks small nodes (key, pointer, hash in one cache line) instead of touching
  // the two ends of a 1.5 KiB node, which cost ~7 % of the agent's CPU with 800 sensors.
  std::unordered_map<std::string, std::unique_ptr<SensorState>> sensors;
  std::map<std::vector<size_t>, std::unique_ptr<CompiledRules>> interned;
  const std::string* last_key = nullptr;
  SensorState* last_state = nullptr;
  Counters total;
  // Forget(): the number of the current Process() call, the sensors it touched (map nodes do not
  // move) and the totals before it.
  uint64_t call = 0;
  std::vector<SensorState*> touched;
  std::vector<HistoryUndo> history_undo;  // duplicate-window slots this call overwrote, in order
  bool journal = false;                   // Remember() journals (inside Process())
  Counters total_before;

  SensorState& Lookup(const std::string& sensor);
  Dup CheckDuplicate(const Reading& r, const History& h, uint64_t fp) const;
  void Remember(History& h, const Reading& r, uint64_t fp);
  Outcome ProcessOne(Reading& r, int64_t now, QuarantineRecord* q);
  void Transform(Reading& r, SensorState& st, uint32_t* flags, std::string* why, bool* reject);
  void Accept(SensorState& st, const Reading& r);
  void SeedOne(SensorState& st, const Reading& r);
};

SensorState& Validator::State::Lookup(const std::string& sensor) {
  // Readings mostly come in a repeating order (a SenML pack names its sensors in the same order
  // each time): the same sensor again, or the one that followed it last time, before hashing.
  if (last_state) {
    if (*last_key == sensor) return *last_state;
    SensorState* guess = last_state->next_hint;
    if (guess && *guess->name == sensor) {
      last_key = guess->name;
      last_state = guess;
      return *guess;
    }
  }
  auto it = sensors.find(sensor);
  if (it == sensors.end()) {
    std::vector<size_t> hits;
    for (size_t i = 0; i < config.sensors.size(); ++i) {
      for (const auto& pat : config.sensors[i].match) {
        if (validation::GlobMatch(pat, sensor)) {
          hits.push_back(i);
          break;
        }
      }
    }
    auto& rules = interned[hits];
    if (!rules) rules = std::make_unique<CompiledRules>(validation::Compile(config, hits));
    it = sensors.emplace(sensor, std::make_unique<SensorState>()).first;
    SensorState& st = *it->second;
    st.name = &it->first;
    st.rules = rules.get();
    if (config.duplicate_by != DuplicateKey::kTimestamp)
      st.hist.seq = std::make_unique<std::array<uint64_t, kDuplicateWindow>>();
    if (rules->spike != RuleAction::kOff) st.window = std::make_unique<SpikeWindow>(rules->spike_p.window);
  }
  if (last_state) last_state->next_hint = it->second.get();
  last_key = &it->first;
  last_state = it->second.get();
  return *it->second;
}

Dup Validator::State::CheckDuplicate(const Reading& r, const History& h, uint64_t fp) const {
  const bool by_seq = h.seq && r.seq != 0;
  const bool by_ts = config.duplicate_by != DuplicateKey::kSequence || !by_seq;
  if ((!by_ts || r.ts_us > h.max_ts) && (!by_seq || r.seq > h.max_seq)) return Dup::kNone;
  for (int i = 0; i < h.size; ++i) {
    if ((by_ts && h.ts[i] == r.ts_us) || (by_seq && (*h.seq)[i] == r.seq))
      return h.fp[i] == fp ? Dup::kExact : Dup::kConflict;
  }
  return Dup::kNone;
}

void Validator::State::Remember(History& h, const Reading& r, uint64_t fp) {
  if (journal)  // only within Process(): Seed() has nothing to undo
    history_undo.push_back(
      {&h, h.ts[h.next], h.max_ts, h.fp[h.next], h.seq ? (*h.seq)[h.next] : 0, h.max_seq, h.next, h.size});
  h.ts[h.next] = r.ts_us;
  h.fp[h.next] = fp;
  if (h.seq) (*h.seq)[h.next] = r.seq;
  h.max_ts = std::max(h.max_ts, r.ts_us);
  h.max_seq = std::max(h.max_seq, r.seq);
  h.next = static_cast<uint8_t>((h.next + 1) % kDuplicateWindow);
  if (h.size < kDuplicateWindow) ++h.size;
}

// Calibration, unit conversion and rounding of a finite number. Sets *reject (with *why) when
// the unit cannot be converted and the unit rule rejects.
void Validator::State::Transform(Reading& r, SensorState& st, uint32_t* flags, std::string* why, bool* reject) {
  const CompiledRules& cr = *st.rules;
  if (!cr.calibration.empty()) {
    double acc = 0;
    for (size_t i = cr.calibration.size(); i-- > 0;) acc = acc * r.value + cr.calibration[i];
    r.value = acc;
  }
  if (!cr.unit_to.empty()) {
    if (!st.conv_cached || st.conv_from != r.unit) {
      st.conv_from = r.unit;
      st.conv_why.clear();
      st.conv = validation::UnitConversion(r.unit, cr.unit_to, &st.conv_why);
      st.conv_cached = true;
    }
    if (st.conv) {
      r.value = st.conv->Apply(r.value);
      r.unit = cr.unit_to;
    } else if (cr.unit == RuleAction::kReject) {
      *reject = true;
      *why = st.conv_why;
      return;
    } else if (cr.unit == RuleAction::kFlag) {
      *flags |= kQualityUnit;
    }
  }
  if (cr.resolution > 0) r.value = validation::RoundToResolution(r.value, cr);
}

Outcome Validator::State::ProcessOne(Reading& r, int64_t now, QuarantineRecord* q) {
  SensorState& st = Lookup(r.sensor);
  if (st.saved_call != call) {
    st.Save(call);
    touched.push_back(&st);
  }
  const CompiledRules& cr = *st.rules;
  ++st.c.received;
  ++total.received;
  uint32_t flags = 0;
  std::string why;
  int rule = -1;  // bit of the rejecting rule
  // Catches a reading: returns true when the rule rejects (caller fills `why`).
  auto hit = [&](RuleAction a, QualityFlag f) {
    if (a == RuleAction::kReject) {
      rule = Bit(f);
      return true;
    }
    if (a == RuleAction::kFlag) flags |= f;
    return false;
  };
  const bool is_number = r.type == ValueType::kNumber;
  bool finite = !is_number || std::isfinite(r.value);
  const double received_value = r.value;
  std::string received_unit;  // set when a conversion may change the unit

  do {
    if (!finite && hit(cr.finite, kQualityNonFinite)) {
      why = std::isnan(r.value) ? "value is NaN" : "value is infinite";
      break;
    }
    if (cr.type != RuleAction::kOff && r.type != cr.type_expect && hit(cr.type, kQualityType)) {
      why = std::string("value of type ") + ValueTypeName(r.type) + " (" + ValueText(r) + ") where the sensor declares " +
            ValueTypeName(cr.type_expect);
      break;
    }
    const bool numeric = is_number && finite;
    if (numeric && cr.sentinel != RuleAction::kOff &&
        std::find(cr.sentinels.begin(), cr.sentinels.end(), r.value) != cr.sentinels.end() &&
        hit(cr.sentinel, kQualitySentinel)) {
      why = "value " + Num(r.value) + " is a declared missing-value marker (sentinel)";
      break;
    }
    if (r.unit.empty() && !cr.unit_from.empty()) r.unit = cr.unit_from;
    if (numeric && cr.has_transform) {
      if (!cr.unit_to.empty()) received_unit = r.unit;
      bool reject = false;
      Transform(r, st, &flags, &why, &reject);
      if (reject) {
        rule = Bit(kQualityUnit);
        break;
      }
    }
    if (cr.future != RuleAction::kOff && clock_trusted && r.ts_us > now + cr.future_skew_us &&
        hit(cr.future, kQualityFuture)) {
      why = "timestamp " + FormatIso8601Us(r.ts_us) + " is " + DurationText(r.ts_us - now) +
            " ahead of the system clock (allowed skew " + DurationText(cr.future_skew_us) + ")";
      break;
    }
    if (cr.too_old != RuleAction::kOff && r.ts_us < cr.too_old_floor_us && hit(cr.too_old, kQualityTooOld)) {
      why = "timestamp " + FormatIso8601Us(r.ts_us) + " is before the floor " + FormatIso8601Us(cr.too_old_floor_us);
      break;
    }
    if (config.drop_exact_duplicates || cr.duplicate != RuleAction::kOff) {
      const uint64_t fp = Fingerprint(r);
      const Dup d = CheckDuplicate(r, st.hist, fp);
      if (d == Dup::kExact && config.drop_exact_duplicates) {
        ++st.c.dropped;
        ++total.dropped;
        return Outcome::kDrop;
      }
      if (d == Dup::kNone) Remember(st.hist, r, fp);
      if (d != Dup::kNone && cr.duplicate != RuleAction::kOff && hit(cr.duplicate, kQualityDuplicate)) {
        why = (r.seq != 0 && st.hist.seq ? "timestamp or sequence " : "timestamp ") + FormatIso8601Us(r.ts_us) +
              (r.seq != 0 && st.hist.seq ? " / seq " + std::to_string(r.seq) : std::string()) +
              " already seen for this sensor with another value";
        break;
      }
    }
    if (cr.backwards != RuleAction::kOff && st.has_ts && r.ts_us < st.max_ts && hit(cr.backwards, kQualityBackwards)) {
      why = "timestamp " + FormatIso8601Us(r.ts_us) + " is " + DurationText(st.max_ts - r.ts_us) +
            " earlier than " + FormatIso8601Us(st.max_ts) + " already passed for this sensor (monotonic time)";
      break;
    }
    if (!numeric || !cr.has_value_rules) break;
    const double v = r.value;
    if (cr.range != RuleAction::kOff) {
      const RangeRule& p = cr.range_p;
      const bool low = p.exclusive ? v <= p.min : v < p.min;
      const bool high = p.exclusive ? v >= p.max : v > p.max;
      if ((low || high) && hit(cr.range, kQualityRange)) {
        if (v == p.min || v == p.max) why = "value " + Num(v) + " is at the limit of the range (saturated)";
        else if (low) why = "value " + Num(v) + " is below the minimum " + Num(p.min);
        else why = "value " + Num(v) + " is above the maximum " + Num(p.max);
        break;
      }
    }
    if (cr.stuck != RuleAction::kOff) {
      const StuckRule& p = cr.stuck_p;
      const bool same = st.run_count > 0 && std::fabs(v - st.run_value) <= p.delta;
      const uint32_t n = same ? st.run_count + 1 : 1;
      const int64_t span = same ? r.ts_us - st.run_start : 0;
      const bool by_count = p.count && n >= p.count;
      const bool by_time = p.duration_us && n >= 2 && span > p.duration_us;
      if ((by_count || by_time) && hit(cr.stuck, kQualityStuck)) {
        why = "value " + Num(v) + " repeated " + std::to_string(n) + " times over " + DurationText(span) +
              (by_count ? " (limit " + std::to_string(p.count) + " readings)"
                        : " (limit " + DurationText(p.duration_us) + ")");
        break;
      }
    }
    if (cr.rate != RuleAction::kOff && st.has_prev && r.ts_us > st.prev_ts) {
      const double dt = static_cast<double>(r.ts_us - st.prev_ts) / 1e6;
      const double rate = std::fabs(v - st.prev_value) / dt;
      if (rate > cr.rate_p.max_per_second && hit(cr.rate, kQualityRateOfChange)) {
        why = "changed by " + Num(v - st.prev_value) + " in " + DurationText(r.ts_us - st.prev_ts) + " (" + Num(rate) +
              "/s), more than the maximum " + Num(cr.rate_p.max_per_second) + "/s";
        break;
      }
    }
    if (st.window && st.window->full()) {
      const SpikeRule& p = cr.spike_p;
      const double med = st.window->Median();
      const double dev = std::fabs(v - med);
      // Within threshold x min_scale of the median nothing is a spike, whatever the MAD: most
      // readings end here without computing it.
      const double scale = dev <= p.threshold * p.min_scale ? p.min_scale
                                                            : std::max(1.4826 * st.window->Mad(med), p.min_scale);
      if (scale > 0 && dev > p.threshold * scale && hit(cr.spike, kQualitySpike)) {
        why = "value " + Num(v) + " deviates " + Num(dev) + " from the median " + Num(med) + " of the last " +
              std::to_string(p.window) + " readings (limit " + Num(p.threshold) + " x " + Num(scale) + ")";
        break;
      }
    }
  } while (false);

  if (rule >= 0) {
    ++st.c.rejected[rule];
    ++total.rejected[rule];
    q->ts_us = now;
    q->reading_ts_us = r.ts_us;
    q->source = r.source;
    q->sensor = r.sensor;
    q->rule = QualityFlagName(rule);
    q->value = ValueText(r);
    if (is_number && finite && r.value != received_value)
      why += " (received " + Num(received_value) + (received_unit.empty() ? "" : " " + received_unit) + ")";
    q->reason = std::move(why);
    return Outcome::kReject;
  }
  r.quality |= flags;
  Accept(st, r);
  ++st.c.passed;
  ++total.passed;
  if (r.quality) {
    ++st.c.flagged;
    ++total.flagged;
    for (uint32_t bits = r.quality; bits; bits &= bits - 1) {
      const int b = __builtin_ctz(bits);
      if (b < kBits) {
        ++st.c.flags[b];
        ++total.flags[b];
      }
    }
  }
  return Outcome::kPass;
}

// Updates the history of the stateful rules with a reading that passed.
void Validator::State::Accept(SensorState& st, const Reading& r) {
  if (!st.has_ts || r.ts_us > st.max_ts) st.max_ts = r.ts_us;
  st.has_ts = true;
  if (r.type != ValueType::kNumber || !std::isfinite(r.value) || !st.rules->has_value_rules) return;
  const double v = r.value;
  if (st.run_count > 0 && std::fabs(v - st.run_value) <= st.rules->stuck_p.delta) {
    ++st.run_count;
  } else {
    st.run_count = 1;
    st.run_value = v;
    st.run_start = r.ts_us;
  }
  if (!st.has_prev || r.ts_us > st.prev_ts) {
    st.has_prev = true;
    st.prev_ts = r.ts_us;
    st.prev_value = v;
  }
  if (st.window) st.window->Push(v);
}

void Validator::State::SeedOne(SensorState& st, const Reading& r) {
  if (config.drop_exact_duplicates || st.rules->duplicate != RuleAction::kOff) {
    const uint64_t fp = Fingerprint(r);
    if (CheckDuplicate(r, st.hist, fp) == Dup::kNone) Remember(st.hist, r, fp);
  }
  Accept(st, r);
}

Validator::Validator(const ValidationConfig& config, Clock& clock) : s_(std::make_unique<State>(config, clock)) {}

Validator::~Validator() = default;

void Validator::Seed(const std::vector<Reading>& stored) {
  // `stored` is newest chunk first; replay each sensor's readings in time order so the newest
  // end up as the reference (latest time, previous value, spike window, duplicate window).
  std::vector<const Reading*> order;
  order.reserve(stored.size());
  for (const Reading& r : stored) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](const Reading* a, const Reading* b) {
    if (a->sensor != b->sensor) return a->sensor < b->sensor;
    return a->ts_us < b->ts_us;
  });
  for (const Reading* r : order) s_->SeedOne(s_->Lookup(r->sensor), *r);
  s_->touched.clear();  // nothing for Forget() to undo
  s_->history_undo.clear();
  s_->total_before = s_->total;
  ++s_->call;
}

void Validator::SetClockTrusted(bool trusted) { s_->clock_trusted = trusted; }

void Validator::Process(std::vector<Reading>& in, std::vector<Reading>* passed, std::vector<QuarantineRecord>* rejected) {
  Process(in, rejected);
  passed->insert(passed->end(), std::make_move_iterator(in.begin()), std::make_move_iterator(in.end()));
  in.clear();
}

void Validator::Process(std::vector<Reading>& readings, std::vector<QuarantineRecord>* rejected) {
  const int64_t now = s_->clock.SystemNowUs();
  ++s_->call;
  s_->touched.clear();
  s_->history_undo.clear();
  s_->total_before = s_->total;
  s_->journal = true;
  QuarantineRecord q;
  size_t kept = 0;
  for (size_t i = 0; i < readings.size(); ++i) {
    switch (s_->ProcessOne(readings[i], now, &q)) {
      case Outcome::kPass:
        if (kept != i) readings[kept] = std::move(readings[i]);
        ++kept;
        break;
      case Outcome::kReject:
        rejected->push_back(std::move(q));
        q = QuarantineRecord();
        break;
      case Outcome::kDrop:
        break;
    }
  }
  readings.resize(kept);
  s_->journal = false;
}

void Validator::Forget() {
  for (SensorState* st : s_->touched)
    if (st->saved_call == s_->call) st->Restore();
  s_->touched.clear();
  for (auto u = s_->history_undo.rbegin(); u != s_->history_undo.rend(); ++u) {
    History& h = *u->h;
    h.ts[u->slot] = u->ts;
    h.fp[u->slot] = u->fp;
    if (h.seq) (*h.seq)[u->slot] = u->seq;
    h.next = u->slot;
    h.size = u->size;
    h.max_ts = u->max_ts;
    h.max_seq = u->max_seq;
  }
  s_->history_undo.clear();
  s_->total = s_->total_before;
  ++s_->call;  // a second Forget() has nothing left to undo
}

namespace {
void Fill(QualityCounters& out, const Counters& c) {
  out.received = c.received;
  out.passed = c.passed;
  out.flagged = c.flagged;
  out.duplicates_dropped = c.dropped;
  for (int b = 0; b < kBits; ++b) {
    if (c.rejected[b]) out.rejected[QualityFlagName(b)] = c.rejected[b];
    if (c.flags[b]) out.flags[QualityFlagName(b)] = c.flags[b];
  }
}
}  // namespace

ValidationStats Validator::stats() const {
  ValidationStats s;
  Fill(s, s_->total);
  return s;
}

std::vector<SensorQuality> Validator::SensorReport() const {
  std::vector<SensorQuality> out;
  for (const auto& [name, st] : s_->sensors) {
    if (!st->c.received) continue;
    SensorQuality q;
    q.sensor = name;
    Fill(q.counters, st->c);
    out.push_back(std::move(q));
  }
  std::sort(out.begin(), out.end(), [](const SensorQuality& a, const SensorQuality& b) { return a.sensor < b.sensor; });
  return out;
}

size_t Validator::sensor_count() const { return s_->sensors.size(); }

}  // namespace edgepipe::agent
