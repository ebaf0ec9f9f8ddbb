#include "edgepipe/agent/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <set>

#include "config_schema.h"
#include "edgepipe/core/file_util.h"
#include "edgepipe/core/log.h"

namespace edgepipe::agent {
namespace {

using cfg::Reporter;

const std::vector<std::string> kTopLevel = {"device", "agent", "buffer", "batch", "upload", "source", "validation", "republish"};

const toml::table* RequireTable(const toml::node& n, Reporter& r, const std::string& name) {
  const auto* t = n.as_table();
  if (!t) r.Add(n.source(), "'" + name + "' must be a table ([" + name + "]), got " + cfg::Describe(n));
  return t;
}

void ParseSources(const toml::node& n, Config& c, Reporter& r) {
  const auto* arr = n.as_array();
  if (!arr || !arr->is_array_of_tables()) {
    r.Add(n.source(), "'source' must be an array of tables: write each source as [[source]], got " + cfg::Describe(n));
    return;
  }
  std::vector<std::string> type_names;
  for (const auto& t : cfg::SourceTypes()) type_names.push_back(t.type);
  std::map<std::string, int> type_counts;
  std::vector<std::pair<const toml::table*, size_t>> parsed;  // table and index of each kept source
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table& t = *arr->get(i)->as_table();
    const std::string path = "source[" + std::to_string(i) + "]";
    SourceConfig src;
    const toml::node* type_node = t.get("type");
    if (!type_node) {
      r.Add(t.source(), "missing required key '" + path + ".type' (one of " +
                            cfg::Section<int>::Join(type_names) + ")");
      continue;
    }
    auto type = cfg::ReadString(*type_node, r, path + ".type");
    if (!type) continue;
    const cfg::SourceType* st = nullptr;
    for (const auto& candidate : cfg::SourceTypes())
      if (candidate.type == *type) st = &candidate;
    if (!st) {
      std::string hint = cfg::DidYouMean(*type, type_names);
      r.Add(type_node->source(), path + ".type: unknown source type " + cfg::Quote(*type) +
                                     (hint.empty() ? "; known: " + cfg::Section<int>::Join(type_names)
                                                   : "; did you mean " + cfg::Quote(hint) + "?"));
      continue;
    }
    src.type = *type;
    if (const toml::node* name_node = t.get("name")) {
      if (auto name = cfg::ReadString(*name_node, r, path + ".name")) src.name = *name;
    }
    if (src.name.empty()) {
      int k = type_counts[src.type]++;
      src.name = k == 0 ? src.type : src.type + std::to_string(k);
    }
    st->parse(src, t, r, path);
    c.sources.push_back(std::move(src));
    parsed.emplace_back(&t, i);
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < c.sources.size(); ++i) {
    if (seen.insert(c.sources[i].name).second) continue;
    const toml::node* at = parsed[i].first->get("name");
    r.Add(at ? at->source() : parsed[i].first->source(), "source[" + std::to_string(parsed[i].second) + "]: duplicate source name " +
                                                         cfg::Quote(c.sources[i].name) + "; give each source a unique 'name'");
  }
}

std::string DirName(const std::string& file) {
  size_t slash = file.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : file.substr(0, slash);
}

void Finish(Config& c, const toml::table& root, Reporter& r) {
  if (!root.contains("device")) r.AddNoLocation("missing required section [device] (with at least id = \"...\")");
  if (!root.contains("upload")) r.AddNoLocation("missing required section [upload] (with url = \"file:///...\" or \"s3://...\")");
  if (!root.contains("source")) r.AddNoLocation("no [[source]] configured: the agent would collect nothing");
  // Relative paths are relative to the directory of the config file.
  if (!c.buffer.path.empty() && c.buffer.path.front() != '/' && c.file != "<embedded>")
    c.buffer.path = DirName(c.file) + "/" + c.buffer.path;
  std::string& hold = c.validation.clock.hold_path;
  if (!hold.empty() && hold.front() != '/' && c.file != "<embedded>") hold = DirName(c.file) + "/" + hold;
  const std::string& url = c.upload.url;
  if (url.rfind("file://", 0) == 0) {
    c.upload.scheme = "file";
    c.upload.path = url.substr(7);
    c.upload.prefix = "";
  } else if (url.rfind("s3://", 0) == 0) {
    c.upload.scheme = "s3";
    std::string rest = url.substr(5);
    size_t slash = rest.find('/');
    c.upload.path = rest.substr(0, slash);
    c.upload.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!c.upload.prefix.empty() && c.upload.prefix.back() == '/') c.upload.prefix.pop_back();
  }
}

// Settings that are valid one by one but work against each other.
void WarnAboutCombinations(const Config& c, const toml::table& root, Reporter& r) {
  // A backlog drained at full rate commits groups of just over commit_readings; a batch smaller
  // than two groups splits a chunk in nearly every batch (docs/benchmarks.md: ~30 % more CPU).
  const uint64_t group = c.buffer.commit_max_readings;
  if (c.batch.max_readings < 2 * group) {
    // At the key that sets the smaller batch, else at the larger group; without a place if the
    // defaults themselves ever disagree.
    const toml::node* at = root.at_path("batch.max_readings").node();
    if (at == nullptr) at = root.at_path("buffer.commit_readings").node();
    r.Warn(at != nullptr ? at->source() : toml::source_region{},
           StrFormat("batch.max_readings (%llu) is less than twice buffer.commit_readings (%llu): a backlog drained "
                     "at full rate then splits a stored chunk for nearly every batch, which costs ~30 %% more CPU "
                     "per reading; raise batch.max_readings to at least %llu or lower buffer.commit_readings",
                     static_cast<unsigned long long>(c.batch.max_readings), static_cast<unsigned long long>(group),
                     static_cast<unsigned long long>(2 * group)));
  }
}

}  // namespace

ParseResult ParseConfigText(const std::string& text, const std::string& file_name) {
  Reporter r(file_name);
  ParseResult result;
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    r.Add(e.source(), "TOML syntax error: " + std::string(e.description()));
    result.problems = std::move(r.problems());
    return result;
  }
  Config c;
  c.file = file_name;
  c.buffer.path = "/var/lib/edgepipe/buffer.db";
  c.buffer.ack_journal = true;
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key == "device") {
      if (auto t = RequireTable(v, r, key)) cfg::DeviceSection().Parse(c.device, *t, r, key);
    } else if (key == "agent") {
      if (auto t = RequireTable(v, r, key)) cfg::AgentSection().Parse(c.agent, *t, r, key);
    } else if (key == "buffer") {
      if (auto t = RequireTable(v, r, key)) cfg::BufferSection().Parse(c.buffer, *t, r, key);
    } else if (key == "batch") {
      if (auto t = RequireTable(v, r, key)) cfg::BatchSection().Parse(c.batch, *t, r, key);
    } else if (key == "upload") {
      if (auto t = RequireTable(v, r, key)) cfg::UploadSection().Parse(c.upload, *t, r, key);
    } else if (key == "validation") {
      if (auto t = RequireTable(v, r, key)) cfg::ValidationSection().Parse(c.validation, *t, r, key);
    } else if (key == "source") {
      ParseSources(v, c, r);
    } else if (key == "republish") {
      if (auto t = RequireTable(v, r, key)) cfg::RepublishSection().Parse(c.republish, *t, r, key);
    } else {
      std::string hint = cfg::DidYouMean(key, kTopLevel);
      r.Add(k.source(), "unknown section or key '" + key + "'" +
                            (hint.empty() ? "; known sections: " + cfg::Section<int>::Join(kTopLevel)
                                          : "; did you mean '" + hint + "'?"));
    }
  }
  Finish(c, root, r);
  cfg::FinishInputs(c);
  result.problems = std::move(r.problems());
  // toml++ iterates keys in sorted order; report in file order (unlocated problems last).
  std::stable_sort(result.problems.begin(), result.problems.end(), [](const ConfigProblem& a, const ConfigProblem& b) {
    auto key = [](const ConfigProblem& p) { return std::make_pair(p.line == 0 ? INT32_MAX : p.line, p.column); };
    return key(a) < key(b);
  });
  if (result.problems.empty()) {
    WarnAboutCombinations(c, root, r);
    result.warnings = std::move(r.warnings());
    result.config = std::move(c);
  }
  return result;
}

ParseResult LoadConfigFile(const std::string& path) {
  int err = 0;
  Result<std::string> text = ReadWholeFile(path, &err);
  if (!text.ok()) {
    ParseResult r;
    r.problems.push_back({path, 0, 0, std::string("cannot read the configuration file: ") + std::strerror(err)});
    return r;
  }
  return ParseConfigText(*text, path);
}

std::string DefaultConfigText(const std::string& state_dir) {
  std::string t = R"(# edgepipe embedded default: simulated sensors -> validation -> durable buffer -> local outbox.
# Everything lives under @STATE@.

[device]
id = "demo-gateway"
labels = { site = "demo" }

[agent]
status_interval = "10s"
shutdown_timeout = "20s"

[buffer]
path = "@STATE@/buffer.db"
sync = "full"
commit_interval = "500ms"
commit_readings = 2000

[batch]
max_readings = 5000
max_age = "5s"

[upload]
url = "file://@STATE@/outbox"
format = "ndjson"
poll_interval = "500ms"

[[source]]
type = "simulator"
name = "sim"
sensor_count = 8
interval = "100ms"
seed = 42
nan_rate = 0.001

[validation]
non_finite = "reject"
)";
  std::string out;
  const std::string mark = "@STATE@";
  size_t pos = 0;
  while (true) {
    size_t hit = t.find(mark, pos);
    out.append(t, pos, hit == std::string::npos ? std::string::npos : hit - pos);
    if (hit == std::string::npos) break;
    out += state_dir;
    pos = hit + mark.size();
  }
  return out;
}

std::string ConfigReferenceMarkdown() {
  std::string md =
      "# Configuration reference\n\n"
      "<!-- Generated by `edgepipe config-reference` from the table in agent/src/config_*.cpp.\n"
      "     Do not edit by hand: a test fails when this file and the code disagree. -->\n\n"
      "edgepipe reads one TOML file (`edgepipe run --config /etc/edgepipe/edgepipe.toml`). "
      "`edgepipe check-config FILE` validates it and prints every problem as `file:line:column: message` "
      "(exit status 78 when invalid). Unknown keys are errors, with a suggestion when a known key is close. "
      "Settings that are valid but work against each other are warnings, `file:line:column: warning: message`: "
      "the file is still accepted (exit status 0, \"OK with N warnings\"), and the agent logs them when it "
      "starts or reloads.\n\n"
      "**Units.** Sizes are strings with a unit — `B`, `kB`/`KB` (1000), `KiB` (1024), `MB`, `MiB`, `GB`, `GiB`, "
      "`TB`, `TiB` — or a plain integer number of bytes. Durations are strings such as `\"250ms\"`, `\"5s\"`, "
      "`\"5m\"`, `\"2h\"`, `\"1d\"` or combinations such as `\"1h30m\"` (units `us`, `ms`, `s`, `m`, `h`, `d`); "
      "a bare number is rejected as ambiguous.\n\n"
      "**Secrets** (passwords, keys) are never required inline. Wherever a secret is accepted it may be "
      "`{ file = \"/etc/edgepipe/s3.key\" }` or `{ credential = \"s3-secret\" }`, the latter read from "
      "`$CREDENTIALS_DIRECTORY` as set by systemd's `LoadCredential=`. A plain string is accepted for tests.\n\n"
      "**Paths** that are relative are relative to the directory of the configuration file.\n\n"
      "Sections: `[device]` (required), `[agent]`, `[buffer]`, `[batch]`, `[upload]` (required), "
      "`[[source]]` (at least one), `[validation]`.\n\n";
  md += cfg::DeviceSection().Markdown();
  md += cfg::AgentSection().Markdown();
  md += cfg::BufferSection().Markdown();
  md += cfg::BatchSection().Markdown();
  md += cfg::UploadSection().Markdown();
  md += "## Sources\n\nEach `[[source]]` table has a `type`; the other keys depend on it.\n\n";
  for (const auto& t : cfg::SourceTypes()) md += t.markdown();
  md += cfg::ValidationReferenceMarkdown();
  md += cfg::RepublishSection().Markdown();
  return md;
}

Result<std::string> LoadSecret(const SecretRef& ref) {
  std::string path;
  if (!ref.value.empty()) return ref.value;
  if (!ref.file.empty()) {
    path = ref.file;
  } else if (!ref.credential.empty()) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
      return FailedPreconditionError("credential '" + ref.credential +
                                     "' requested but $CREDENTIALS_DIRECTORY is not set; add "
                                     "LoadCredential=" + ref.credential + ":/path/to/secret to the service unit");
    path = std::string(dir) + "/" + ref.credential;
  } else {
    return NotFoundError("no secret configured");
  }
  int err = 0;
  Result<std::string> text = ReadWholeFile(path, &err);
  if (!text.ok()) return NotFoundError("cannot read secret file " + path + ": " + std::strerror(err));
  std::string s = std::move(*text);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) return FailedPreconditionError("secret file " + path + " is empty");
  return s;
}

}  // namespace edgepipe::agent
