// libFuzzer target for the validation parsers of outside input (issue 7): the clock hold file
// (read back at start after a crash or a power cut: torn or corrupt records must be cut or
// refused, never crash), the sensor-id globs and the unit names of [validation]. Built and run by
// scripts/test.d/30-fuzz.sh. The first byte picks the parser; the rest is the input.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "edgepipe/agent/clock_sync.h"
#include "validation/glob.h"
#include "validation/units.h"

using namespace edgepipe;
using namespace edgepipe::agent;

namespace {

class Probe final : public ClockSyncProbe {
 public:
  Probe(bool synced, std::string boot) : synced_(synced), boot_(std::move(boot)) {}
  bool Synchronized() override { return synced_; }
  std::string BootId() override { return boot_; }

 private:
  bool synced_;
  std::string boot_;
};

void HoldFile(uint8_t sel, std::string_view bytes) {
  static const std::string path = "/tmp/edgepipe-validation-fuzz-" + std::to_string(getpid()) + ".hold";
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) abort();
  if (!bytes.empty() && fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) abort();
  fclose(f);
  struct Remove {
    ~Remove() { unlink(path.c_str()); }
  } remove;
  ManualClock clock(1'700'000'000'000'000, 50'000'000);
  ClockGuard::Options o;
  o.hold_path = path;
  o.sync_writes = false;
  o.config.mode = ClockMode::kAuto;
  o.config.max_hold_bytes = (sel & 0x10) ? 64 : 64ull << 20;
  // Synchronised: every record is read and re-stamped; otherwise records of another boot (or
  // over the budget) are released flagged.
  ClockGuard g(o, clock, std::make_unique<Probe>((sel & 0x20) != 0, (sel & 0x40) ? "boot-B" : "boot-A"));
  std::optional<std::string> state;
  if (sel & 0x80) state = "0000000000000000 16";
  if (!g.Open(state).ok()) return;
  for (int i = 0; i < 64; ++i) {
    Result<std::optional<HeldRelease>> rel = g.NextRelease(7);
    if (!rel.ok() || !rel->has_value()) break;
    if ((*rel)->readings.empty() && (*rel)->state.key.empty()) abort();
    if (!g.Released(**rel).ok()) break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t sel = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nl = rest.find('\n');
  const std::string_view a = nl == std::string_view::npos ? rest : rest.substr(0, nl);
  const std::string_view b = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  switch ((sel & 0x0f) % 3) {
    case 0:
      HoldFile(sel, rest);
      break;
    case 1:
      // A pattern the config parser accepts matches itself when it has no wildcard.
      if (validation::CheckGlob(a).empty()) {
        validation::GlobMatch(a, b);
        if (a.find_first_of("*?[\\") == std::string_view::npos && !validation::GlobMatch(a, a)) abort();
      }
      break;
    case 2: {
      std::string why;
      std::optional<validation::LinearMap> m = validation::UnitConversion(a, b, &why);
      if (m) {
        (void)m->Apply(21.5);
        if (validation::FindUnit(a) && !validation::UnitConversion(a, a, &why)->identity) abort();
      } else if (why.empty()) {
        abort();  // a refusal always says why
      }
      break;
    }
  }
  return 0;
}
