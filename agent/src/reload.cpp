#include "reload.h"

#include <toml++/toml.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace edgepipe::agent {
namespace {

std::string Render(const toml::node* n) {
  if (!n) return "";
  std::ostringstream out;
  n->visit([&out](const auto& v) { out << v; });
  std::string s = out.str();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

void Diff(const std::string& path, const toml::node* a, const toml::node* b, std::vector<ConfigChange>& out) {
  const toml::table* ta = a ? a->as_table() : nullptr;
  const toml::table* tb = b ? b->as_table() : nullptr;
  if (ta && tb) {
    std::set<std::string> keys;
    for (auto&& [k, v] : *ta) keys.insert(std::string(k.str()));
    for (auto&& [k, v] : *tb) keys.insert(std::string(k.str()));
    for (const std::string& k : keys) Diff(path.empty() ? k : path + "." + k, ta->get(k), tb->get(k), out);
    return;
  }
  const toml::array* aa = a ? a->as_array() : nullptr;
  const toml::array* ab = b ? b->as_array() : nullptr;
  if (aa && ab && aa->is_array_of_tables() && ab->is_array_of_tables()) {
    const size_t n = std::max(aa->size(), ab->size());
    for (size_t i = 0; i < n; ++i)
      Diff(path + "[" + std::to_string(i) + "]", i < aa->size() ? aa->get(i) : nullptr,
           i < ab->size() ? ab->get(i) : nullptr, out);
    return;
  }
  std::string ra = Render(a), rb = Render(b);
  if (ra != rb || (a == nullptr) != (b == nullptr)) out.push_back({path, ra, rb});
}

toml::table ParseOrEmpty(const std::string& text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error&) {
    return {};
  }
}

}  // namespace

std::vector<ConfigChange> DiffConfigText(const std::string& old_text, const std::string& new_text) {
  toml::table a = ParseOrEmpty(old_text), b = ParseOrEmpty(new_text);
  std::vector<ConfigChange> out;
  Diff("", &a, &b, out);
  return out;
}

const std::vector<std::string>& LiveKeys() {
  static const std::vector<std::string> keys = {
      "agent.log_level",      "agent.status_interval", "agent.shutdown_timeout", "agent.stats_interval",
      "agent.writer_stall_timeout", "agent.metrics_listen", "agent.status_file"};
  return keys;
}

bool AppliesLive(const std::string& key) {
  const auto& keys = LiveKeys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace edgepipe::agent
