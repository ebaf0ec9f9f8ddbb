#include "config_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace edgepipe::agent {

std::string ConfigProblem::ToString() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  return s + ": " + message;
}

// ---- Human units ----

std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 19) return std::nullopt;
  uint64_t n = std::stoull(std::string(text.substr(0, i)));
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},          {"B", 1},
      {"kB", 1000},     {"KB", 1000},          {"KiB", 1024},
      {"MB", 1000000},  {"MiB", 1ull << 20},   {"GB", 1000000000},
      {"GiB", 1ull << 30}, {"TB", 1000000000000ull}, {"TiB", 1ull << 40}};
  for (const auto& [u, mult] : kUnits) {
    if (unit == u) {
      if (mult > 1 && n > UINT64_MAX / mult) return std::nullopt;
      return n * mult;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 12) return std::nullopt;
    int64_t n = std::stoll(std::string(text.substr(start, i - start)));
    size_t ustart = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == 'u')) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    int64_t mult;
    if (unit == "us") mult = 1;
    else if (unit == "ms") mult = 1000;
    else if (unit == "s") mult = 1'000'000;
    else if (unit == "m" || unit == "min") mult = 60'000'000;
    else if (unit == "h") mult = 3'600'000'000ll;
    else if (unit == "d") mult = 86'400'000'000ll;
    else return std::nullopt;
    total += n * mult;
  }
  return total;
}

std::string FormatSize(uint64_t b) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1024}};
  for (const auto& [u, mult] : kUnits)
    if (b >= mult && b % mult == 0) return std::to_string(b / mult) + u;
  if (b >= 1000000 && b % 1000000 == 0) return std::to_string(b / 1000000) + "MB";
  return std::to_string(b) + "B";
}

std::string FormatDuration(int64_t us) {
  if (us == 0) return "0s";
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"d", 86'400'000'000ll}, {"h", 3'600'000'000ll}, {"m", 60'000'000}, {"s", 1'000'000}, {"ms", 1000}, {"us", 1}};
  std::string out;
  int64_t left = us;
  for (const auto& [u, mult] : kUnits) {
    if (left >= mult) {
      // Only exact decompositions ("1h30m"), so the text parses back to the same value.
      out += std::to_string(left / mult) + u;
      left %= mult;
    }
  }
  return out;
}

namespace cfg {

void Reporter::Add(const toml::source_region& where, std::string message) {
  problems_.push_back({file_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column), std::move(message)});
}

void Reporter::AddNoLocation(std::string message) { problems_.push_back({file_, 0, 0, std::move(message)}); }

void Reporter::Warn(const toml::source_region& where, std::string message) {
  warnings_.push_back({file_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                       "warning: " + std::move(message)});
}

std::string Quote(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  return q + "\"";
}

std::string Describe(const toml::node& n) {
  if (auto s = n.as_string()) {
    std::string v = s->get();
    if (v.size() > 40) v = v.substr(0, 37) + "...";
    return "string " + Quote(v);
  }
  if (auto i = n.as_integer()) return "integer " + std::to_string(i->get());
  if (auto f = n.as_floating_point()) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g", f->get());
    return std::string("float ") + buf;
  }
  if (auto b = n.as_boolean()) return std::string("boolean ") + (b->get() ? "true" : "false");
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  if (n.is_date() || n.is_time() || n.is_date_time()) return "a date/time";
  return "a value";
}

static size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      // Transposition of two adjacent characters counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev[j - 1]);
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DidYouMean(std::string_view key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = EditDistance(key, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  const size_t limit = std::max<size_t>(2, key.size() / 3);
  return best_d <= limit ? best : std::string();
}

std::optional<std::string> ReadString(const toml::node& n, Reporter& r, const std::string& p, bool allow_empty) {
  const auto* s = n.as_string();
  if (!s) {
    r.Add(n.source(), p + ": expected a string, got " + Describe(n));
    return std::nullopt;
  }
  if (!allow_empty && s->get().empty()) {
    r.Add(n.source(), p + ": must not be empty");
    return std::nullopt;
  }
  return s->get();
}

std::optional<int64_t> ReadInt(const toml::node& n, Reporter& r, const std::string& p, int64_t min, int64_t max) {
  const auto* i = n.as_integer();
  if (!i) {
    r.Add(n.source(), p + ": expected an integer, got " + Describe(n));
    return std::nullopt;
  }
  if (i->get() < min || i->get() > max) {
    r.Add(n.source(), p + ": " + std::to_string(i->get()) + " is out of range; expected " + std::to_string(min) +
                          " to " + std::to_string(max));
    return std::nullopt;
  }
  return i->get();
}

std::optional<double> ReadDouble(const toml::node& n, Reporter& r, const std::string& p, double min, double max) {
  double v;
  if (const auto* i = n.as_integer()) v = static_cast<double>(i->get());
  else if (const auto* f = n.as_floating_point()) v = f->get();
  else {
    r.Add(n.source(), p + ": expected a number, got " + Describe(n));
    return std::nullopt;
  }
  if (!std::isfinite(v) || v < min || v > max) {
    char buf[96];
    snprintf(buf, sizeof buf, "%g is out of range; expected %g to %g", v, min, max);
    r.Add(n.source(), p + ": " + buf);
    return std::nullopt;
  }
  return v;
}

std::optional<bool> ReadBool(const toml::node& n, Reporter& r, const std::string& p) {
  const auto* b = n.as_boolean();
  if (!b) {
    r.Add(n.source(), p + ": expected true or false, got " + Describe(n));
    return std::nullopt;
  }
  return b->get();
}

std::optional<uint64_t> ReadSize(const toml::node& n, Reporter& r, const std::string& p, uint64_t min, uint64_t max) {
  std::optional<uint64_t> v;
  if (const auto* i = n.as_integer()) {
    if (i->get() >= 0) v = static_cast<uint64_t>(i->get());
  } else if (const auto* s = n.as_string()) {
    v = ParseSize(s->get());
  }
  if (!v) {
    r.Add(n.source(), p + ": expected a size such as \"512MiB\", \"64KiB\" or \"10MB\", got " + Describe(n));
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    r.Add(n.source(), p + ": " + FormatSize(*v) + " is out of range; expected " + FormatSize(min) + " to " + FormatSize(max));
    return std::nullopt;
  }
  return v;
}

std::optional<int64_t> ReadDuration(const toml::node& n, Reporter& r, const std::string& p, int64_t min, int64_t max) {
  std::optional<int64_t> v;
  if (const auto* s = n.as_string()) v = ParseDuration(s->get());
  if (!v) {
    std::string hint = n.is_integer() ? " (a bare number is ambiguous: add a unit)" : "";
    r.Add(n.source(), p + ": expected a duration such as \"250ms\", \"5s\", \"5m\" or \"1h30m\", got " + Describe(n) + hint);
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    r.Add(n.source(), p + ": " + FormatDuration(*v) + " is out of range; expected " + FormatDuration(min) + " to " +
                          FormatDuration(max));
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> ReadStringArray(const toml::node& n, Reporter& r, const std::string& p) {
  const auto* a = n.as_array();
  if (!a) {
    r.Add(n.source(), p + ": expected an array of strings, got " + Describe(n));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < a->size(); ++i) {
    auto s = ReadString(*a->get(i), r, p + "[" + std::to_string(i) + "]");
    if (s) out.push_back(*s);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<SecretRef> ReadSecret(const toml::node& n, Reporter& r, const std::string& p) {
  SecretRef ref;
  if (const auto* s = n.as_string()) {
    ref.value = s->get();
    return ref;
  }
  const auto* t = n.as_table();
  if (!t) {
    r.Add(n.source(), p + ": expected { file = \"/path\" }, { credential = \"name\" } or a string, got " + Describe(n));
    return std::nullopt;
  }
  bool ok = true;
  for (auto&& [k, v] : *t) {
    if (k.str() == "file") {
      if (auto s = ReadString(v, r, p + ".file")) ref.file = *s;
      else ok = false;
    } else if (k.str() == "credential") {
      if (auto s = ReadString(v, r, p + ".credential")) ref.credential = *s;
      else ok = false;
    } else {
      std::string hint = DidYouMean(k.str(), {"file", "credential"});
      r.Add(k.source(), "unknown key '" + p + "." + std::string(k.str()) + "'" +
                            (hint.empty() ? " (accepted: file, credential)" : "; did you mean '" + hint + "'?"));
      ok = false;
    }
  }
  if (ok && ref.file.empty() == ref.credential.empty()) {
    r.Add(n.source(), p + ": give exactly one of 'file' or 'credential'");
    ok = false;
  }
  if (ok && !ref.credential.empty() && ref.credential.find('/') != std::string::npos) {
    r.Add(n.source(), p + ".credential: a credential name must not contain '/'");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return ref;
}

}  // namespace cfg
}  // namespace edgepipe::agent
