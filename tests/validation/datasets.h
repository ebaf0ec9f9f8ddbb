// Loaders for the real data sets in ../shared/data (see its README), turning each file into the
// readings an agent would receive, in file order. Naive local times are taken as UTC. Empty cells
// are not readings; the Beijing "NA" cells become string readings "NA" (what a CSV or MQTT
// device sends), so the type rule has something to catch. Used by tests/validation and
// bench/validation.
#pragma once

#include <string>
#include <vector>

#include "edgepipe/core/reading.h"

namespace edgepipe::datasets {

struct DataSet {
  std::string name;
  std::vector<Reading> readings;
  size_t rows = 0;          // data rows read
  size_t skipped_rows = 0;  // rows without a timestamp (or empty records)
};

// nab/*.csv: one sensor `sensor`.
DataSet LoadNab(const std::string& path, const std::string& sensor);
// uci_air_quality/AirQualityUCI.csv: sensors "uci/<column>" (13).
DataSet LoadUci(const std::string& path);
// chicago_beach/...csv: sensors "chicago/<beach>/<channel>" (6 channels per beach).
DataSet LoadChicago(const std::string& path);
// beijing_prsa/PRSA_Data_<station>_...csv: sensors "beijing/<station>/<column>" (11 numeric).
DataSet LoadBeijing(const std::string& path);

// The raw CSV cells of a file (for independent checks in tests): rows of fields, header first.
std::vector<std::vector<std::string>> ReadCsv(const std::string& path, char sep);

}  // namespace edgepipe::datasets
