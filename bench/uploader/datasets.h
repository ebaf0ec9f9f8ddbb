// Loads the shared real sensor data sets (../shared/data, see its README) as Readings for the
// uploader benchmark: one reading per timestamp, sensor and numeric cell, in file order. Naive
// local timestamps are taken as UTC. Empty and NA cells are not readings; sentinels are.
#pragma once

#include <string>
#include <vector>

#include "edgepipe/core/reading.h"
#include "edgepipe/core/status.h"

namespace edgepipe::bench {

struct Dataset {
  std::string name;               // "nab-machine", "uci-air", "chicago-beach", "beijing" ...
  std::vector<Reading> readings;  // in file order
};

// The directory: $EDGEPIPE_DATA_DIR, else `fallback`.
std::string DataDir(const std::string& fallback);

// Every data set of the README. kNotFound naming the missing file when one is absent.
Result<std::vector<Dataset>> LoadAll(const std::string& dir);
// One of them by name (kNotFound for unknown names).
Result<Dataset> Load(const std::string& dir, const std::string& name);
std::vector<std::string> DatasetNames();

}  // namespace edgepipe::bench
