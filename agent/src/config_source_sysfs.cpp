// [[source]] type = "sysfs" (issue 6).
#include "config_schema.h"

namespace edgepipe::agent::cfg {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 86'400 * kSec;

const Section<fb::SysfsOptions>& SysfsSection() {
  static const Section<fb::SysfsOptions> s = [] {
    using O = fb::SysfsOptions;
    Section<O> sec;
    sec.title = "[[source]] type = \"sysfs\"";
    sec.doc = "Polls Linux IIO channels (`in_*_raw` with `_scale`/`_offset`, `in_*_input`), hwmon sensors "
              "(`temp*`, `in*`, `curr*`, `power*`, `energy*`, `fan*`, `humidity*` `_input`) and thermal zones. "
              "Values are converted from the kernel's units to SI/SenML units (Cel, V, A, W, J, Pa, %RH, ...). "
              "Sensor ids: `iio/<name>/<channel>`, `hwmon/<name>/<channel>`, `thermal/<type>`. A channel that "
              "vanishes or fails to read is reported and retried every poll.";
    sec.fields.push_back(StringField<O>("root", &O::root, "Where sysfs is mounted (tests point it at a generated tree)."));
    sec.fields.push_back(DurationField<O>("interval", &O::interval_us, 10 * kMs, kDay, "Every selected channel is read once per interval."));
    sec.fields.push_back(DurationField<O>("rescan_interval", &O::rescan_interval_us, kSec, kDay,
        "How often to look for new or returning devices."));
    sec.fields.push_back(CustomField<O>("channels", "array of strings", "(all)",
        "Glob patterns on sensor ids selecting what to poll, e.g. `[\"hwmon/coretemp/*\", \"iio/bme280/*\"]`.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadStringArray(n, r, p)) o.channels = *v;
        }));
    sec.fields.push_back(CustomField<O>("exclude", "array of strings", "(none)", "Glob patterns removed from the selection.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          if (auto v = ReadStringArray(n, r, p)) o.exclude = *v;
        }));
    sec.fields.insert(sec.fields.begin(),
                      {HandledField<O>("type", "string", "", "`\"sysfs\"`.", true),
                       HandledField<O>("name", "string", "(the type, plus an index if repeated)",
                                       "Source name, unique; recorded with every reading it produces.")});
    return sec;
  }();
  return s;
}

}  // namespace

SourceType SysfsSourceType() {
  return {"sysfs", SysfsSection().doc,
          [](SourceConfig& src, const toml::table& t, Reporter& r, const std::string& p) {
            SysfsSection().Parse(src.sysfs, t, r, p);
            src.sysfs.name = src.name;
          },
          [] { return SysfsSection().Markdown(); }};
}

}  // namespace edgepipe::agent::cfg
