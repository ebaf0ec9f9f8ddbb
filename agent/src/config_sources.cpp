// [[source]] types. Each type declares its keys in a Section of its own options struct; the
// common keys `type` and `name` are read by the top-level parser (config.cpp).
#include "config_schema.h"

namespace edgepipe::agent::cfg {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 86'400 * kSec;

template <class T>
void AddCommonDocs(Section<T>& sec, const std::string& type) {
  sec.fields.insert(sec.fields.begin(),
                    {HandledField<T>("type", "string", "", "`\"" + type + "\"`.", true),
                     HandledField<T>("name", "string", "(the type, plus an index if repeated)",
                                     "Source name, unique; recorded with every reading it produces.")});
}

const Section<fb::SimSensor>& SimSensorSection() {
  static const Section<fb::SimSensor> s = [] {
    using S = fb::SimSensor;
    Section<S> sec;
    sec.title = "[[source.sensor]] (simulator)";
    sec.doc = "One simulated sensor: `base + amplitude * sin(2*pi*t/period) + noise`, rounded to `decimals`.";
    sec.fields.push_back(StringField<S>("name", &S::name, "Sensor id.", true));
    sec.fields.push_back(StringField<S>("unit", &S::unit, "SenML/UCUM unit, e.g. `Cel`, `%RH`, `hPa`."));
    sec.fields.push_back(DoubleField<S>("base", &S::base, -1e12, 1e12, "Mean value."));
    sec.fields.push_back(DoubleField<S>("amplitude", &S::amplitude, 0, 1e12, "Amplitude of the sine wave."));
    sec.fields.push_back(DoubleField<S>("period_s", &S::period_s, 0.001, 1e9, "Period of the sine wave, seconds."));
    sec.fields.push_back(DoubleField<S>("noise", &S::noise, 0, 1e12, "Standard deviation of Gaussian noise."));
    sec.fields.push_back(IntField<S, int>("decimals", &S::decimals, 0, 9, "Values are rounded to this many decimals."));
    return sec;
  }();
  return s;
}

const Section<fb::SimulatorOptions>& SimulatorSection() {
  static const Section<fb::SimulatorOptions> s = [] {
    using O = fb::SimulatorOptions;
    Section<O> sec;
    sec.title = "[[source]] type = \"simulator\"";
    sec.doc = "Built-in sensor simulator: smooth signals with seeded noise. Deterministic for a given seed.";
    sec.fields.push_back(IntField<O, int>("sensor_count", &O::sensor_count, 1, 100'000,
        "Number of generated sensors when no `sensor` tables are given (temperature, humidity, pressure, supply, ...)."));
    sec.fields.push_back(CustomField<O>("sensor", "array of tables", "(generated)",
        "Explicit sensor table; see `[[source.sensor]]` below.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          const auto* arr = n.as_array();
          if (!arr || !arr->is_array_of_tables()) {
            r.Add(n.source(), p + ": expected [[source.sensor]] tables, got " + Describe(n));
            return;
          }
          o.sensors.clear();
          for (size_t i = 0; i < arr->size(); ++i) {
            fb::SimSensor sensor;
            sensor.name.clear();
            SimSensorSection().Parse(sensor, *arr->get(i)->as_table(), r, p + "[" + std::to_string(i) + "]");
            o.sensors.push_back(sensor);
          }
        }));
    sec.fields.push_back(DurationField<O>("interval", &O::interval_us, kMs, kDay,
        "One reading per sensor per interval. Consecutive ticks start at least one interval apart: after a "
        "stall the rate drops rather than bursting, so a sensor never has two readings within one interval."));
    sec.fields.push_back(IntField<O, uint64_t>("seed", &O::seed, 0, INT64_MAX, "Random seed for the noise."));
    sec.fields.push_back(DoubleField<O>("nan_rate", &O::nan_rate, 0, 1,
        "Probability that a reading is NaN, to exercise validation and quarantine."));
    sec.fields.push_back(IntField<O, uint64_t>("max_readings", &O::max_readings, 0, INT64_MAX,
        "Stop after this many readings (0 = never)."));
    AddCommonDocs(sec, "simulator");
    return sec;
  }();
  return s;
}

}  // namespace

const std::vector<SourceType>& SourceTypes() {
  static const std::vector<SourceType> types = {
      {"simulator", SimulatorSection().doc,
       [](SourceConfig& src, const toml::table& t, Reporter& r, const std::string& p) {
         SimulatorSection().Parse(src.simulator, t, r, p);
         src.simulator.name = src.name;
       },
       [] { return SimulatorSection().Markdown() + SimSensorSection().Markdown(); }},
      MqttSourceType(),   // issue 6
      SysfsSourceType(),  // issue 6
      {"serial", SerialSection().doc,
       [](SourceConfig& src, const toml::table& t, Reporter& r, const std::string& p) {
         SerialSection().Parse(src.serial, t, r, p);
         src.serial.name = src.name;
       },
       [] { return SerialSection().Markdown(); }},
  };
  return types;
}

}  // namespace edgepipe::agent::cfg
