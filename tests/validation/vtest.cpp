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

std::unique_ptr<buffer::Store> OpenStore(const std::string& path, Clock& clock) {
  buffer::Options o;
  o.path = path;
  o.clock = &clock;
  o.commit_interval_us = 10'000;
  Result<std::unique_ptr<buffer::Store>> s = buffer::Store::Open(o);
  if (!s.ok()) FAIL(("opening the buffer: " + s.status().ToString()).c_str());
  return std::move(*s);
}

}  // namespace edgepipe::vtest
