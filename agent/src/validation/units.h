// The unit table: SenML/UCUM unit names grouped by dimension, each with its relation to the SI
// unit of that dimension: si = (value + pre_offset) * scale. docs/data-quality.md lists it (a test
// keeps the two in sync).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepipe::agent::validation {

struct UnitDef {
  const char* name;       // canonical SenML/UCUM name, e.g. "Cel", "[degF]", "hPa"
  const char* dimension;  // "temperature", "pressure", ...
  double scale;
  double pre_offset;
  const char* aliases;    // space-separated other spellings accepted, e.g. "degF °F"
};

// Every unit known for conversion, table order.
const std::vector<UnitDef>& UnitTable();

// The definition for a name or alias, or nullptr.
const UnitDef* FindUnit(std::string_view name);

// out = value * factor + offset.
struct LinearMap {
  double factor = 1.0;
  double offset = 0.0;
  bool identity = true;  // from and to are the same unit: leave the value untouched
  double Apply(double v) const { return identity ? v : v * factor + offset; }
};

// The conversion from one unit to another, or nullopt with `*why` saying why (unknown unit,
// different dimensions). Equal names (or aliases of one unit) convert as identity, also for units
// not in the table.
std::optional<LinearMap> UnitConversion(std::string_view from, std::string_view to, std::string* why);

}  // namespace edgepipe::agent::validation
