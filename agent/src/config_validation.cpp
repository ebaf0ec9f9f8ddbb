// The [validation] configuration table: global keys, [validation.default], [[validation.sensor]]
// with one sub-table per rule or transform, and [validation.clock]. Rules and their semantics are
// described in docs/data-quality.md; docs/configuration.md is generated from these declarations.
#include <cmath>

#include "config_schema.h"
#include "edgepipe/core/time_util.h"
#include "validation/glob.h"
#include "validation/units.h"

namespace edgepipe::agent {

const char* RuleActionName(RuleAction a) {
  switch (a) {
    case RuleAction::kReject: return "reject";
    case RuleAction::kFlag: return "flag";
    case RuleAction::kOff: return "off";
  }
  return "?";
}

namespace cfg {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kDay = 24 * 60 * kMin;
constexpr double kBig = 1e300;

const std::vector<std::pair<std::string, RuleAction>>& ActionChoices() {
  static const std::vector<std::pair<std::string, RuleAction>> c = {
      {"reject", RuleAction::kReject}, {"flag", RuleAction::kFlag}, {"off", RuleAction::kOff}};
  return c;
}

template <class R>
Field<R> ActionField(std::string doc = "`reject` to quarantine, `flag` to keep with a quality flag, `off`.") {
  return EnumField<R, RuleAction>("action", &R::action, ActionChoices(), std::move(doc));
}

std::string Where(const Reporter& r, const toml::node& n) {
  return r.file() + ":" + std::to_string(n.source().begin.line);
}

std::optional<std::vector<double>> ReadNumberArray(const toml::node& n, Reporter& r, const std::string& p,
                                                   size_t min_size, size_t max_size) {
  const auto* a = n.as_array();
  if (!a) {
    r.Add(n.source(), p + ": expected an array of numbers such as [-200, -999], got " + Describe(n));
    return std::nullopt;
  }
  if (a->size() < min_size || a->size() > max_size) {
    r.Add(n.source(), p + ": expected " + std::to_string(min_size) + " to " + std::to_string(max_size) +
                          " numbers, got " + std::to_string(a->size()));
    return std::nullopt;
  }
  std::vector<double> out;
  bool ok = true;
  for (size_t i = 0; i < a->size(); ++i) {
    auto v = ReadDouble(*a->get(i), r, p + "[" + std::to_string(i) + "]", -kBig, kBig);
    if (v) out.push_back(*v);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

// ---- One section per rule ----

const Section<FiniteRule>& FiniteSection() {
  static const Section<FiniteRule> s = [] {
    Section<FiniteRule> sec;
    sec.title = "finite = { ... }";
    sec.doc = "NaN and infinite values (numbers only). Its default action is `[validation].non_finite`.";
    sec.fields.push_back(ActionField<FiniteRule>("`reject` to quarantine, `flag` (kept, written as null), `off`."));
    return sec;
  }();
  return s;
}

const Section<TypeRule>& TypeSection() {
  static const Section<TypeRule> s = [] {
    Section<TypeRule> sec;
    sec.title = "type = { ... }";
    sec.doc = "The reading's value type must be the sensor's declared type (e.g. an `NA` text where a number is "
              "expected).";
    sec.fields.push_back(EnumField<TypeRule, ValueType>(
        "expect", &TypeRule::expect,
        {{"number", ValueType::kNumber}, {"bool", ValueType::kBool}, {"string", ValueType::kString}},
        "The declared type."));
    sec.fields.push_back(ActionField<TypeRule>());
    return sec;
  }();
  return s;
}

const Section<SentinelRule>& SentinelSection() {
  static const Section<SentinelRule> s = [] {
    Section<SentinelRule> sec;
    sec.title = "sentinel = { ... }";
    sec.doc = "Declared missing-value markers a device sends instead of a measurement (e.g. `-200`, `-99999.992`), "
              "compared exactly with the value as received, before any transform. Shorthand: "
              "`sentinel = [-200]`.";
    sec.fields.push_back(CustomField<SentinelRule>("values", "array of numbers", "**required**", "The marker values (1 to 16).",
        [](SentinelRule& t, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadNumberArray(n, r, p, 1, 16)) t.values = *v;
        }));
    sec.fields.push_back(ActionField<SentinelRule>());
    sec.check = [](SentinelRule& t, const toml::table& tab, Reporter& r, const std::string& p) {
      if (t.action != RuleAction::kOff && !tab.contains("values"))
        r.Add(tab.source(), p + ": give the marker values, e.g. { values = [-200] }");
    };
    return sec;
  }();
  return s;
}

const Section<RangeRule>& RangeSection() {
  static const Section<RangeRule> s = [] {
    Section<RangeRule> sec;
    sec.title = "range = { ... }";
    sec.doc = "The (transformed) value must lie within [min, max]. Give `min`, `max` or both.";
    Field<RangeRule> min = DoubleField<RangeRule>("min", &RangeRule::min, -kBig, kBig, "Smallest valid value.");
    min.doc.default_text = "(none)";
    Field<RangeRule> max = DoubleField<RangeRule>("max", &RangeRule::max, -kBig, kBig, "Largest valid value.");
    max.doc.default_text = "(none)";
    sec.fields.push_back(min);
    sec.fields.push_back(max);
    sec.fields.push_back(BoolField<RangeRule>("exclusive", &RangeRule::exclusive,
        "Also catch a value equal to `min` or `max`: use the instrument's limits to catch saturated "
        "(full-scale) readings."));
    sec.fields.push_back(ActionField<RangeRule>());
    sec.check = [](RangeRule& t, const toml::table& tab, Reporter& r, const std::string& p) {
      if (t.action == RuleAction::kOff) return;
      if (!tab.contains("min") && !tab.contains("max"))
        r.Add(tab.source(), p + ": give min, max or both, e.g. { min = 0, max = 100 }");
      else if (t.min > t.max || (t.exclusive && t.min == t.max))
        r.Add(tab.source(), p + ": min must be below max");
    };
    return sec;
  }();
  return s;
}

const Section<RateRule>& RateSection() {
  static const Section<RateRule> s = [] {
    Section<RateRule> sec;
    sec.title = "rate_of_change = { ... }";
    sec.doc = "The value may change by at most `max` units per second against the sensor's previous passed "
              "reading.";
    Field<RateRule> max = DoubleField<RateRule>("max", &RateRule::max_per_second, 1e-300, kBig,
                                                "Largest valid absolute change per second, in the sensor's (output) unit.");
    max.doc.default_text = "**required**";
    sec.fields.push_back(max);
    sec.fields.push_back(ActionField<RateRule>());
    sec.check = [](RateRule& t, const toml::table& tab, Reporter& r, const std::string& p) {
      if (t.action != RuleAction::kOff && !tab.contains("max"))
        r.Add(tab.source(), p + ": give the largest valid change per second, e.g. { max = 2.5 }");
    };
    return sec;
  }();
  return s;
}

const Section<StuckRule>& StuckSection() {
  static const Section<StuckRule> s = [] {
    Section<StuckRule> sec;
    sec.title = "stuck = { ... }";
    sec.doc = "A sensor repeating the same value: caught from the `count`-th equal reading in a row, or once the "
              "run of equal readings lasts longer than `duration`. Give `count`, `duration` or both.";
    Field<StuckRule> count = IntField<StuckRule, uint32_t>("count", &StuckRule::count, 2, 10'000'000,
                                                           "Equal readings in a row that make a sensor stuck.");
    count.doc.default_text = "(none)";
    sec.fields.push_back(count);
    Field<StuckRule> dur = DurationField<StuckRule>("duration", &StuckRule::duration_us, kSec, 365 * kDay,
                                                    "How long a run of equal readings may last.");
    dur.doc.default_text = "(none)";
    sec.fields.push_back(dur);
    sec.fields.push_back(DoubleField<StuckRule>("delta", &StuckRule::delta, 0, kBig,
        "Values within this distance of the run's first value count as equal."));
    sec.fields.push_back(ActionField<StuckRule>());
    sec.check = [](StuckRule& t, const toml::table& tab, Reporter& r, const std::string& p) {
      if (t.action != RuleAction::kOff && !tab.contains("count") && !tab.contains("duration"))
        r.Add(tab.source(), p + ": give count, duration or both, e.g. { count = 10 } or { duration = \"2h\" }");
    };
    return sec;
  }();
  return s;
}

const Section<SpikeRule>& SpikeSection() {
  static const Section<SpikeRule> s = [] {
    Section<SpikeRule> sec;
    sec.title = "spike = { ... }";
    sec.doc = "Hampel filter: a value is a spike when |value - median| > threshold x max(1.4826 x MAD, "
              "min_scale) over the sensor's last `window` passed values. Judged once the window is full; a "
              "constant window (MAD 0) with `min_scale = 0` judges nothing.";
    sec.fields.push_back(IntField<SpikeRule, uint32_t>("window", &SpikeRule::window, 3, 255,
        "Number of previous values the median and MAD are taken over."));
    sec.fields.push_back(DoubleField<SpikeRule>("threshold", &SpikeRule::threshold, 0.1, 1000,
        "How many robust standard deviations make a spike (3 is Hampel's classic choice)."));
    sec.fields.push_back(DoubleField<SpikeRule>("min_scale", &SpikeRule::min_scale, 0, kBig,
        "Smallest deviation scale, in value units: the sensor's noise or resolution, so that quantised or "
        "quiet signals do not turn every change into a spike."));
    sec.fields.push_back(ActionField<SpikeRule>());
    return sec;
  }();
  return s;
}

const Section<FutureRule>& FutureSection() {
  static const Section<FutureRule> s = [] {
    Section<FutureRule> sec;
    sec.title = "future = { ... }";
    sec.doc = "The timestamp may be ahead of the system clock by at most `skew`. Not judged while the clock is "
              "known to be unsynchronised ([validation.clock]).";
    sec.fields.push_back(DurationField<FutureRule>("skew", &FutureRule::skew_us, 0, 365 * kDay,
        "Allowed lead over the system clock."));
    sec.fields.push_back(ActionField<FutureRule>());
    return sec;
  }();
  return s;
}

const Section<TooOldRule>& TooOldSection() {
  static const Section<TooOldRule> s = [] {
    Section<TooOldRule> sec;
    sec.title = "too_old = { ... }";
    sec.doc = "The timestamp must not be before `floor` (catches boards that booted in 1970).";
    sec.fields.push_back(CustomField<TooOldRule>("floor", "date (string or TOML date)", "\"2000-01-01\"",
        "Earliest valid time, e.g. \"2020-01-01\" or \"2024-06-01T00:00:00Z\" (UTC).",
        [](TooOldRule& t, const toml::node& n, Reporter& r, const std::string& p) {
          std::optional<int64_t> us;
          if (const auto* str = n.as_string()) us = ParseIso8601(str->get());
          else if (const auto* d = n.as_date()) us = DaysFromCivil(d->get().year, d->get().month, d->get().day) * kUsPerDay;
          if (!us) {
            r.Add(n.source(), p + ": expected a date such as \"2020-01-01\" or \"2020-01-01T00:00:00Z\", got " +
                                  Describe(n));
            return;
          }
          t.floor_us = *us;
        }));
    sec.fields.push_back(ActionField<TooOldRule>());
    return sec;
  }();
  return s;
}

const Section<BackwardsRule>& BackwardsSection() {
  static const Section<BackwardsRule> s = [] {
    Section<BackwardsRule> sec;
    sec.title = "backwards = { ... }";
    sec.doc = "Setting this rule declares that the sensor's time is monotonic: a timestamp earlier than the "
              "latest one already passed is caught.";
    sec.fields.push_back(ActionField<BackwardsRule>());
    return sec;
  }();
  return s;
}

const Section<DuplicateRule>& DuplicateSection() {
  static const Section<DuplicateRule> s = [] {
    Section<DuplicateRule> sec;
    sec.title = "duplicate = { ... }";
    sec.doc = "A timestamp (or sequence number, `[validation].duplicate_by`) already seen for the sensor with a "
              "different value. Its default action is `[validation].duplicate`.";
    sec.fields.push_back(ActionField<DuplicateRule>());
    return sec;
  }();
  return s;
}

// Calibration is written as { scale, offset } or { polynomial = [...] }.
struct CalibrationSpec {
  double scale = 1.0;
  double offset = 0.0;
  std::vector<double> polynomial;
};

const Section<CalibrationSpec>& CalibrationSection() {
  static const Section<CalibrationSpec> s = [] {
    Section<CalibrationSpec> sec;
    sec.title = "calibration = { ... }";
    sec.doc = "Applied to numeric values first: `value * scale + offset`, or a polynomial "
              "`c0 + c1*value + c2*value^2 + ...`. Give scale/offset or polynomial, not both.";
    sec.fields.push_back(DoubleField<CalibrationSpec>("scale", &CalibrationSpec::scale, -kBig, kBig, "Gain."));
    sec.fields.push_back(DoubleField<CalibrationSpec>("offset", &CalibrationSpec::offset, -kBig, kBig, "Offset."));
    sec.fields.push_back(CustomField<CalibrationSpec>("polynomial", "array of numbers", "(none)",
        "Coefficients c0, c1, ... (1 to 8).",
        [](CalibrationSpec& t, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadNumberArray(n, r, p, 1, 8)) t.polynomial = *v;
        }));
    sec.check = [](CalibrationSpec&, const toml::table& tab, Reporter& r, const std::string& p) {
      bool lin = tab.contains("scale") || tab.contains("offset");
      if (lin && tab.contains("polynomial"))
        r.Add(tab.source(), p + ": give either scale/offset or polynomial, not both");
      else if (!lin && !tab.contains("polynomial"))
        r.Add(tab.source(), p + ": give scale and/or offset, or polynomial = [c0, c1, ...]");
    };
    return sec;
  }();
  return s;
}

std::string CheckUnitName(const std::string& name) {
  if (validation::FindUnit(name)) return "";
  return "unknown unit " + Quote(name) + " for conversion (see the unit table in docs/data-quality.md)";
}

const Section<UnitRule>& UnitSection() {
  static const Section<UnitRule> s = [] {
    Section<UnitRule> sec;
    sec.title = "unit = { ... }";
    sec.doc = "Unit declaration and conversion (SenML/UCUM names; the table is in docs/data-quality.md). "
              "`from` is the sensor's unit, given to readings that carry none; `to` converts every reading to "
              "that unit. A reading whose unit cannot be converted is caught by the rule named `unit`.";
    sec.fields.push_back(StringField<UnitRule>("from", &UnitRule::from,
        "Declared unit of the sensor (any name when only declaring, a table name when converting)."));
    sec.fields.push_back(StringField<UnitRule>("to", &UnitRule::to, "Unit written out.", false, CheckUnitName));
    sec.fields.push_back(ActionField<UnitRule>());
    sec.check = [](UnitRule& u, const toml::table& tab, Reporter& r, const std::string& p) {
      if (u.action != RuleAction::kOff && !tab.contains("from") && !tab.contains("to")) {
        r.Add(tab.source(), p + ": give from, to or both, e.g. { from = \"[degF]\", to = \"Cel\" }");
        return;
      }
      if (!u.from.empty() && !u.to.empty()) {
        std::string why;
        if (!validation::UnitConversion(u.from, u.to, &why)) r.Add(tab.source(), p + ": " + why);
      }
    };
    return sec;
  }();
  return s;
}

// A rule given as a table of parameters, or (when every parameter has a default) as its action.
template <class R>
Field<SensorRules> RuleField(std::string key, std::optional<R> SensorRules::*m, const Section<R>& (*section)(),
                             bool action_shorthand, std::string doc) {
  std::string type = action_shorthand ? "table or action" : "table";
  return CustomField<SensorRules>(key, type, "(off)", doc,
      [m, section, action_shorthand, key](SensorRules& t, const toml::node& n, Reporter& r, const std::string& p) {
        R rule{};
        if (const auto* tab = n.as_table()) {
          section().Parse(rule, *tab, r, p);
          t.*m = rule;
          return;
        }
        if (action_shorthand && n.is_string()) {
          for (const auto& [name, a] : ActionChoices()) {
            if (name == n.as_string()->get()) {
              rule.action = a;
              t.*m = rule;
              return;
            }
          }
          r.Add(n.source(), p + ": " + Quote(n.as_string()->get()) + " is not one of reject, flag, off");
          return;
        }
        r.Add(n.source(), p + ": expected a table such as " + key + " = { action = \"flag\" }" +
                              (action_shorthand ? " or an action (\"reject\", \"flag\", \"off\")" : "") + ", got " +
                              Describe(n));
      });
}

const Section<SensorRules>& SensorRulesSection() {
  static const Section<SensorRules> s = [] {
    using S = SensorRules;
    Section<S> sec;
    sec.title = "[[validation.sensor]] and [validation.default]";
    sec.doc = "Rules and transforms for the sensors whose id matches `match`; `[validation.default]` takes the "
              "same keys except `match` and applies to every sensor. Tables apply in file order after the default, "
              "a later table replacing a rule an earlier one set. Order of evaluation and every rule are described "
              "in docs/data-quality.md. A rule's sub-table is written inline (`range = { min = 0, max = 100 }`) or "
              "as `[validation.sensor.range]` after its `[[validation.sensor]]`.";
    sec.fields.push_back(CustomField<S>("match", "string or array of strings", "",
        "Glob patterns over sensor ids: `*` any characters (also `/`), `?` one character, `[a-z]` a set. "
        "Required in `[[validation.sensor]]`, not allowed in `[validation.default]`.",
        [](S& t, const toml::node& n, Reporter& r, const std::string& p) {
          std::vector<std::string> pats;
          if (const auto* str = n.as_string()) {
            pats.push_back(str->get());
          } else if (auto arr = ReadStringArray(n, r, p)) {
            pats = *arr;
            if (pats.empty()) r.Add(n.source(), p + ": give at least one pattern");
          } else {
            return;
          }
          for (const auto& pat : pats) {
            std::string err = validation::CheckGlob(pat);
            if (!err.empty()) r.Add(n.source(), p + ": pattern " + Quote(pat) + ": " + err);
          }
          t.match = pats;
        }));
    sec.fields.push_back(RuleField<FiniteRule>("finite", &S::finite, FiniteSection, true, "NaN/infinity rule."));
    sec.fields.push_back(RuleField<TypeRule>("type", &S::type, TypeSection, true, "Declared value type rule."));
    sec.fields.push_back(CustomField<S>("sentinel", "table or array of numbers", "(off)",
        "Missing-value markers rule.",
        [](S& t, const toml::node& n, Reporter& r, const std::string& p) {
          SentinelRule rule;
          if (const auto* tab = n.as_table()) {
            SentinelSection().Parse(rule, *tab, r, p);
          } else if (auto v = ReadNumberArray(n, r, p, 1, 16)) {
            rule.values = *v;
          } else {
            return;
          }
          t.sentinel = rule;
        }));
    sec.fields.push_back(RuleField<RangeRule>("range", &S::range, RangeSection, false, "Valid range rule."));
    sec.fields.push_back(RuleField<RateRule>("rate_of_change", &S::rate_of_change, RateSection, false,
                                             "Maximum rate of change rule."));
    sec.fields.push_back(RuleField<StuckRule>("stuck", &S::stuck, StuckSection, false, "Stuck sensor rule."));
    sec.fields.push_back(RuleField<SpikeRule>("spike", &S::spike, SpikeSection, true, "Spike (Hampel) rule."));
    sec.fields.push_back(RuleField<FutureRule>("future", &S::future, FutureSection, true, "Future timestamp rule."));
    sec.fields.push_back(RuleField<TooOldRule>("too_old", &S::too_old, TooOldSection, true, "Floor date rule."));
    sec.fields.push_back(RuleField<BackwardsRule>("backwards", &S::backwards, BackwardsSection, true,
                                                  "Monotonic time rule."));
    sec.fields.push_back(RuleField<DuplicateRule>("duplicate", &S::duplicate, DuplicateSection, true,
                                                  "Conflicting duplicate rule."));
    sec.fields.push_back(CustomField<S>("calibration", "table", "(none)", "Calibration transform.",
        [](S& t, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* tab = n.as_table();
          if (!tab) {
            r.Add(n.source(), p + ": expected a table such as { scale = 1.02, offset = -0.5 }, got " + Describe(n));
            return;
          }
          CalibrationSpec spec;
          CalibrationSection().Parse(spec, *tab, r, p);
          Calibration c;
          if (!spec.polynomial.empty()) c.coefficients = spec.polynomial;
          else c.coefficients = {spec.offset, spec.scale};
          t.calibration = c;
        }));
    sec.fields.push_back(RuleField<UnitRule>("unit", &S::unit, UnitSection, false, "Unit declaration/conversion."));
    sec.fields.push_back(CustomField<S>("resolution", "number", "(none)",
        "Round values to the nearest multiple of this (the sensor's resolution, e.g. 0.1), after calibration and "
        "unit conversion. Values already on the grid are unchanged.",
        [](S& t, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadDouble(n, r, p, 1e-12, 1e12)) t.resolution = *v;
        }));
    return sec;
  }();
  return s;
}

const Section<ClockConfig>& ClockSection() {
  static const Section<ClockConfig> s = [] {
    using C = ClockConfig;
    Section<C> sec;
    sec.title = "[validation.clock]";
    sec.doc = "Readings stamped while the system clock is not synchronised (docs/data-quality.md, \"An "
              "unsynchronised clock\"): they are held durably with their monotonic time and the boot id, "
              "re-stamped when the clock synchronises and flagged `restamped`; those that cannot be fixed (a "
              "reboot before sync, or held longer than `max_hold`) are released flagged `clock_unsynced`.";
    sec.fields.push_back(EnumField<C, ClockMode>("mode", &C::mode,
        {{"off", ClockMode::kOff}, {"auto", ClockMode::kAuto}, {"adjtimex", ClockMode::kAdjtimex},
         {"timesyncd", ClockMode::kTimesyncd}},
        "`off`: trust the clock. `adjtimex`: synchronised when the kernel does not report STA_UNSYNC (any NTP "
        "daemon). `timesyncd`: synchronised once /run/systemd/timesync/synchronized exists. `auto`: either. "
        "Use `auto` on boards without a battery-backed RTC."));
    sec.fields.push_back(CustomField<C>("sources", "array of strings", "[\"*\"]",
        "Glob patterns over source names whose timestamps come from this gateway's clock (readings of other "
        "sources carry device time and are not held).",
        [](C& t, const toml::node& n, Reporter& r, const std::string& p) {
          auto arr = ReadStringArray(n, r, p);
          if (!arr) return;
          for (const auto& pat : *arr) {
            std::string err = validation::CheckGlob(pat);
            if (!err.empty()) r.Add(n.source(), p + ": pattern " + Quote(pat) + ": " + err);
          }
          t.sources = *arr;
        }));
    sec.fields.push_back(DurationField<C>("max_hold", &C::max_hold_us, kMin, 365 * kDay,
        "Longest a reading is held waiting for sync; older ones are released flagged `clock_unsynced`."));
    sec.fields.push_back(SizeField<C>("max_hold_size", &C::max_hold_bytes, 64 * 1024, 1ull << 34,
        "Disk budget of the hold file; beyond it the oldest held readings are released flagged `clock_unsynced`."));
    sec.fields.push_back(DurationField<C>("check_interval", &C::check_interval_us, 10 * kMs, kMin,
        "How often the synchronisation state is checked."));
    sec.fields.push_back(StringField<C>("synchronized_file", &C::synchronized_file,
        "For `timesyncd` and `auto`: the file whose existence means the clock is synchronised (systemd-timesyncd "
        "creates this one; point it at a file your own NTP tooling touches)."));
    Field<C> path = StringField<C>("hold_path", &C::hold_path,
        "File holding readings while unsynchronised. Relative paths are relative to the config file.");
    path.doc.default_text = "(buffer.path + \".clock-hold\")";
    sec.fields.push_back(path);
    return sec;
  }();
  return s;
}

}  // namespace

const Section<ValidationConfig>& ValidationSection() {
  static const Section<ValidationConfig> s = [] {
    using V = ValidationConfig;
    Section<V> sec;
    sec.title = "[validation]";
    sec.doc = "Data-quality rules and transforms applied to every reading before it is buffered "
              "(docs/data-quality.md). A rejected reading goes to quarantine with the rule and the reason; a "
              "flagged one is kept with a quality flag. Per-sensor rules are in `[validation.default]` and "
              "`[[validation.sensor]]`, clock handling in `[validation.clock]`.";
    sec.fields.push_back(EnumField<V, RuleAction>("non_finite", &V::non_finite,
        {{"reject", RuleAction::kReject}, {"flag", RuleAction::kFlag}},
        "NaN and infinite values: `reject` to quarantine, or `flag` (kept, written as null). The default of the "
        "`finite` rule."));
    sec.fields.push_back(EnumField<V, RuleAction>("duplicate", &V::duplicate, ActionChoices(),
        "A reading whose sensor and timestamp were already seen with a different value (a conflicting "
        "duplicate, e.g. a repeated hour in a log): `reject` to quarantine, `flag` (kept), or `off`. "
        "Checked against each sensor's last 64 timestamps, seeded at start from the newest buffered readings. "
        "The default of the `duplicate` rule."));
    sec.fields.push_back(BoolField<V>("drop_exact_duplicates", &V::drop_exact_duplicates,
        "Drop (and count) a reading identical to one already stored — same sensor, timestamp and value — "
        "as sent again by a peer that did not get our acknowledgement (MQTT redelivery, serial retransmit)."));
    sec.fields.push_back(EnumField<V, DuplicateKey>("duplicate_by", &V::duplicate_by,
        {{"timestamp", DuplicateKey::kTimestamp}, {"sequence", DuplicateKey::kSequence},
         {"either", DuplicateKey::kEither}},
        "What identifies a reading seen again: its timestamp, the source's sequence number (readings without one "
        "fall back to the timestamp), or either. Sequence numbers restart when a device reboots: use `sequence` "
        "only for sources whose numbers never repeat."));
    sec.fields.push_back(CustomField<V>("default", "table", "{}",
        "Rules and transforms for every sensor (keys as in `[[validation.sensor]]`, without `match`).",
        [](V& v, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* t = n.as_table();
          if (!t) {
            r.Add(n.source(), p + ": expected a table [validation.default], got " + Describe(n));
            return;
          }
          SensorRules rules;
          SensorRulesSection().Parse(rules, *t, r, p);
          if (t->contains("match"))
            r.Add(t->get("match")->source(), p + ".match: [validation.default] applies to every sensor; use "
                                                 "[[validation.sensor]] with match = ... to select sensors");
          rules.match.clear();
          rules.where = Where(r, *t);
          v.defaults = rules;
        }));
    sec.fields.push_back(CustomField<V>("sensor", "array of tables", "[]",
        "Per-sensor rules: one `[[validation.sensor]]` table per group of sensors.",
        [](V& v, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* arr = n.as_array();
          if (!arr || !arr->is_array_of_tables()) {
            r.Add(n.source(), p + ": expected [[validation.sensor]] tables, got " + Describe(n));
            return;
          }
          v.sensors.clear();
          for (size_t i = 0; i < arr->size(); ++i) {
            const toml::table& t = *arr->get(i)->as_table();
            const std::string path = p + "[" + std::to_string(i) + "]";
            SensorRules rules;
            SensorRulesSection().Parse(rules, t, r, path);
            if (!t.contains("match"))
              r.Add(t.source(), "missing required key '" + path + ".match': glob patterns over sensor ids, e.g. "
                                "match = \"boiler/*\"");
            rules.where = Where(r, t);
            v.sensors.push_back(std::move(rules));
          }
        }));
    sec.fields.push_back(CustomField<V>("clock", "table", "{}", "Unsynchronised clock handling, see below.",
        [](V& v, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* t = n.as_table();
          if (!t) {
            r.Add(n.source(), p + ": expected a table [validation.clock], got " + Describe(n));
            return;
          }
          ClockSection().Parse(v.clock, *t, r, p);
        }));
    return sec;
  }();
  return s;
}

std::string ValidationReferenceMarkdown() {
  std::string md = ValidationSection().Markdown();
  md += SensorRulesSection().Markdown();
  md += "#### Rule and transform tables\n\n"
        "Every rule has an `action`: `reject` (to quarantine with the rule name, value and reason), `flag` (kept "
        "with a quality flag of the rule's name) or `off`. Rules marked *table or action* may be given as just "
        "their action, e.g. `backwards = \"reject\"`.\n\n";
  md += FiniteSection().Markdown();
  md += TypeSection().Markdown();
  md += SentinelSection().Markdown();
  md += RangeSection().Markdown();
  md += RateSection().Markdown();
  md += StuckSection().Markdown();
  md += SpikeSection().Markdown();
  md += FutureSection().Markdown();
  md += TooOldSection().Markdown();
  md += BackwardsSection().Markdown();
  md += DuplicateSection().Markdown();
  md += CalibrationSection().Markdown();
  md += UnitSection().Markdown();
  md += ClockSection().Markdown();
  return md;
}

}  // namespace cfg
}  // namespace edgepipe::agent
