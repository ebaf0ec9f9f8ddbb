#include "validation/units.h"

#include <cstring>

namespace edgepipe::agent::validation {

const std::vector<UnitDef>& UnitTable() {
  // si = (value + pre_offset) * scale
  static const std::vector<UnitDef> kTable = {
      // temperature (K)
      {"K", "temperature", 1.0, 0.0, ""},
      {"Cel", "temperature", 1.0, 273.15, "degC °C"},
      {"[degF]", "temperature", 5.0 / 9.0, 459.67, "degF °F"},
      // pressure (Pa)
      {"Pa", "pressure", 1.0, 0.0, ""},
      {"hPa", "pressure", 100.0, 0.0, ""},
      {"kPa", "pressure", 1000.0, 0.0, ""},
      {"MPa", "pressure", 1e6, 0.0, ""},
      {"bar", "pressure", 1e5, 0.0, ""},
      {"mbar", "pressure", 100.0, 0.0, ""},
      {"atm", "pressure", 101325.0, 0.0, ""},
      {"[psi]", "pressure", 6894.757293168361, 0.0, "psi"},
      {"mm[Hg]", "pressure", 133.322387415, 0.0, "mmHg"},
      {"[in_i'Hg]", "pressure", 3386.388640341, 0.0, "inHg"},
      // length (m)
      {"m", "length", 1.0, 0.0, ""},
      {"km", "length", 1000.0, 0.0, ""},
      {"cm", "length", 0.01, 0.0, ""},
      {"mm", "length", 0.001, 0.0, ""},
      {"[in_i]", "length", 0.0254, 0.0, "in"},
      {"[ft_i]", "length", 0.3048, 0.0, "ft"},
      {"[mi_i]", "length", 1609.344, 0.0, "mi"},
      // speed (m/s)
      {"m/s", "speed", 1.0, 0.0, ""},
      {"km/h", "speed", 1.0 / 3.6, 0.0, ""},
      {"[mi_i]/h", "speed", 0.44704, 0.0, "mph"},
      {"[kn_i]", "speed", 1852.0 / 3600.0, 0.0, "kn"},
      // mass (kg)
      {"kg", "mass", 1.0, 0.0, ""},
      {"g", "mass", 1e-3, 0.0, ""},
      {"mg", "mass", 1e-6, 0.0, ""},
      {"[lb_av]", "mass", 0.45359237, 0.0, "lb"},
      // mass concentration (kg/m3)
      {"kg/m3", "mass concentration", 1.0, 0.0, ""},
      {"g/m3", "mass concentration", 1e-3, 0.0, ""},
      {"mg/m3", "mass concentration", 1e-6, 0.0, ""},
      {"ug/m3", "mass concentration", 1e-9, 0.0, "µg/m3"},
      // volume (m3)
      {"m3", "volume", 1.0, 0.0, ""},
      {"l", "volume", 1e-3, 0.0, "L"},
      {"ml", "volume", 1e-6, 0.0, "mL"},
      {"[gal_us]", "volume", 0.003785411784, 0.0, "gal"},
      // volume flow (m3/s)
      {"m3/s", "volume flow", 1.0, 0.0, ""},
      {"m3/h", "volume flow", 1.0 / 3600.0, 0.0, ""},
      {"l/s", "volume flow", 1e-3, 0.0, "L/s"},
      {"l/min", "volume flow", 1e-3 / 60.0, 0.0, "L/min"},
      // energy (J)
      {"J", "energy", 1.0, 0.0, ""},
      {"kJ", "energy", 1e3, 0.0, ""},
      {"MJ", "energy", 1e6, 0.0, ""},
      {"Wh", "energy", 3600.0, 0.0, ""},
      {"kWh", "energy", 3.6e6, 0.0, ""},
      // power (W)
      {"W", "power", 1.0, 0.0, ""},
      {"mW", "power", 1e-3, 0.0, ""},
      {"kW", "power", 1e3, 0.0, ""},
      {"MW", "power", 1e6, 0.0, ""},
      // electric potential (V), current (A), resistance (Ohm)
      {"V", "voltage", 1.0, 0.0, ""},
      {"mV", "voltage", 1e-3, 0.0, ""},
      {"kV", "voltage", 1e3, 0.0, ""},
      {"A", "current", 1.0, 0.0, ""},
      {"mA", "current", 1e-3, 0.0, ""},
      {"Ohm", "resistance", 1.0, 0.0, ""},
      {"kOhm", "resistance", 1e3, 0.0, ""},
      // frequency (Hz)
      {"Hz", "frequency", 1.0, 0.0, "1/s"},
      {"kHz", "frequency", 1e3, 0.0, ""},
      {"1/min", "frequency", 1.0 / 60.0, 0.0, "rpm"},
      // time (s)
      {"s", "time", 1.0, 0.0, ""},
      {"ms", "time", 1e-3, 0.0, ""},
      {"us", "time", 1e-6, 0.0, ""},
      {"min", "time", 60.0, 0.0, ""},
      {"h", "time", 3600.0, 0.0, ""},
      {"d", "time", 86400.0, 0.0, ""},
      // ratio (1)
      {"/", "ratio", 1.0, 0.0, "1"},
      {"%", "ratio", 0.01, 0.0, ""},
      {"[ppm]", "ratio", 1e-6, 0.0, "ppm"},
      {"[ppb]", "ratio", 1e-9, 0.0, "ppb"},
      // plane angle (rad)
      {"rad", "angle", 1.0, 0.0, ""},
      {"deg", "angle", 3.14159265358979323846 / 180.0, 0.0, "°"},
      // electric conductivity (S/m)
      {"S/m", "conductivity", 1.0, 0.0, ""},
      {"mS/cm", "conductivity", 0.1, 0.0, ""},
      {"uS/cm", "conductivity", 1e-4, 0.0, "µS/cm"},
  };
  return kTable;
}

const UnitDef* FindUnit(std::string_view name) {
  for (const UnitDef& u : UnitTable()) {
    if (name == u.name) return &u;
    std::string_view aliases(u.aliases);
    while (!aliases.empty()) {
      size_t sp = aliases.find(' ');
      std::string_view a = aliases.substr(0, sp);
      if (a == name) return &u;
      if (sp == std::string_view::npos) break;
      aliases.remove_prefix(sp + 1);
    }
  }
  return nullptr;
}

std::optional<LinearMap> UnitConversion(std::string_view from, std::string_view to, std::string* why) {
  const UnitDef* f = FindUnit(from);
  const UnitDef* t = FindUnit(to);
  if (from == to || (f && f == t)) return LinearMap{};
  auto quote = [](std::string_view s) { return "\"" + std::string(s) + "\""; };
  if (!f || !t) {
    if (why) {
      if (from.empty()) *why = "the reading has no unit and none is declared (unit.from)";
      else *why = "unknown unit " + quote(!f ? from : to) + " (see the unit table in docs/data-quality.md)";
    }
    return std::nullopt;
  }
  if (std::strcmp(f->dimension, t->dimension) != 0) {
    if (why)
      *why = "cannot convert " + quote(from) + " (" + f->dimension + ") to " + quote(to) + " (" + t->dimension + ")";
    return std::nullopt;
  }
  // out = (value + f.pre) * f.scale / t.scale - t.pre
  LinearMap m;
  m.identity = false;
  m.factor = f->scale / t->scale;
  m.offset = f->pre_offset * m.factor - t->pre_offset;
  return m;
}

}  // namespace edgepipe::agent::validation
