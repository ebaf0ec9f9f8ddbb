// Glob patterns over sensor and source ids: `*` any run of characters (including '/'), `?` one
// character, `[abc]`, `[a-z]`, `[!abc]` one character of (not of) a set, `\x` the character x.
#pragma once

#include <string>
#include <string_view>

namespace edgepipe::agent::validation {

// "" when `pattern` is well formed, else what is wrong with it.
std::string CheckGlob(std::string_view pattern);

// True when `text` matches the whole of `pattern` (a pattern that CheckGlob accepts).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace edgepipe::agent::validation
