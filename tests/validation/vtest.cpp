#include "vtest.h"

#include <CppUTest/TestHarness.h>

namespace edgepipe::vtest {

agent::ValidationConfig ParseValidation(const std::string& toml) {
  std::string text = "[device]\nid = \"gw\"\n[upload]\nurl = \"file:///tmp/o\"\n[[source]]\ntype = \"simulator\"\n" + toml;
  agent::ParseResult r = agent::ParseConfigText(text, "test.toml");
  if (!r.config) {
    std::string all;
    for (auto& p : r.problems) all += p.ToString() + "\n";
    FAIL(("validation config has problems:\n" + all).c_str());
  }
  return r.config->validation;
}

}  // namespace edgepipe::vtest
