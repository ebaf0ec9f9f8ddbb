// Subcommands of the edgepipe binary that live outside main.cpp.
#pragma once

#include <string>

namespace edgepipe::agent {

// `edgepipe status [--json]`: buffer contents plus the running agent's live counters.
// Exit status 0, 1 when the buffer cannot be read, 78 when the configuration is invalid.
int CmdStatus(const std::string& config_path, bool as_json);

}  // namespace edgepipe::agent
