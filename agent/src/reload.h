// SIGHUP configuration reload: which keys changed between two configuration files, and which of
// them the running agent applies without a restart (docs/operations.md, "Reloading").
#pragma once

#include <string>
#include <vector>

namespace edgepipe::agent {

struct ConfigChange {
  std::string key;        // dotted path: "agent.log_level", "upload.url", "source[1].interval"
  std::string old_value;  // TOML rendering; "" when the key was absent
  std::string new_value;  // TOML rendering; "" when the key was removed
};

// Keys whose value differs between two TOML texts (added, removed or changed), in key order.
// Arrays of tables ([[source]]) are compared element by element. Both texts must parse; a text
// that does not parse is treated as empty.
std::vector<ConfigChange> DiffConfigText(const std::string& old_text, const std::string& new_text);

// True for the keys a reload applies to the running agent; every other change needs a restart.
bool AppliesLive(const std::string& key);

// The keys AppliesLive accepts, for documentation and messages.
const std::vector<std::string>& LiveKeys();

}  // namespace edgepipe::agent
