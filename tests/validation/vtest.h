// Helpers shared by the validation suites. Include before <CppUTest/TestHarness.h>.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgepipe/agent/config.h"
#include "edgepipe/agent/validator.h"
#include "edgepipe/buffer/store.h"
#include "edgepipe/core/reading.h"

namespace edgepipe::vtest {

constexpr int64_t kSec = 1'000'000;
// 2024-01-01T00:00:00Z: a plausible "now" for readings in tests.
constexpr int64_t kT0 = 1'704'067'200'000'000ll;

inline Reading R(const std::string& sensor, int64_t ts, double v, const std::string& unit = "") {
  Reading r;
  r.sensor = sensor;
  r.ts_us = ts;
  r.value = v;
  r.unit = unit;
  r.source = "test";
  return r;
}

inline Reading Text(const std::string& sensor, int64_t ts, const std::string& text) {
  Reading r = R(sensor, ts, 0);
  r.type = ValueType::kString;
  r.text = text;
  return r;
}

struct Out {
  std::vector<Reading> passed;
  std::vector<QuarantineRecord> rejected;
  const QuarantineRecord* Rejected(const std::string& rule) const {
    for (const auto& q : rejected)
      if (q.rule == rule) return &q;
    return nullptr;
  }
};

inline Out Run(agent::Validator& v, std::vector<Reading> in) {
  Out o;
  v.Process(in, &o.passed, &o.rejected);
  return o;
}

// Parses a [validation] fragment (TOML) inside a minimal valid config; fails the test on problems.
agent::ValidationConfig ParseValidation(const std::string& toml);

// A buffer at `path` on `clock`, committing every 10 ms (fails the test when it cannot open).
std::unique_ptr<buffer::Store> OpenStore(const std::string& path, Clock& clock);

}  // namespace edgepipe::vtest
