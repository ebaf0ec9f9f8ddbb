#include "validation/glob.h"

namespace edgepipe::agent::validation {
namespace {

// Matches one bracket expression starting at pattern[p] == '[' against c. Sets *end to the index
// after the closing ']'. Returns false in *ok when the expression is not closed.
bool MatchClass(std::string_view pattern, size_t p, char c, size_t* end, bool* ok) {
  size_t i = p + 1;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < pattern.size() && (pattern[i] != ']' || first)) {
    first = false;
    char lo = pattern[i];
    if (lo == '\\' && i + 1 < pattern.size()) lo = pattern[++i];
    char hi = lo;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      hi = pattern[i + 2];
      if (hi == '\\' && i + 3 < pattern.size()) {
        hi = pattern[i + 3];
        ++i;
      }
      i += 2;
    }
    if (c >= lo && c <= hi) matched = true;
    ++i;
  }
  if (i >= pattern.size()) {
    *ok = false;
    return false;
  }
  *ok = true;
  *end = i + 1;
  return matched != negate;
}

}  // namespace

std::string CheckGlob(std::string_view pattern) {
  if (pattern.empty()) return "empty pattern (use \"*\" to match every id)";
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 == pattern.size()) return "pattern ends with a lone '\\'";
      ++i;
    } else if (pattern[i] == '[') {
      size_t end = 0;
      bool ok = false;
      MatchClass(pattern, i, 'a', &end, &ok);
      if (!ok) return "'[' at position " + std::to_string(i + 1) + " is not closed by ']'";
      i = end - 1;
    }
  }
  return "";
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point for the last '*' (linear for patterns in practice).
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        star_p = ++p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        size_t end = 0;
        bool ok = false;
        if (MatchClass(pattern, p, text[t], &end, &ok) && ok) {
          p = end;
          ++t;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[++p];
        if (pc == text[t]) {
          ++p;
          ++t;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace edgepipe::agent::validation
