// The machinery behind the configuration table: a Section<T> lists the Fields of one TOML table,
// each Field knows its key, type, bounds, documentation and how to store itself into a T. The
// same declarations drive parsing (with file:line:col problems) and docs/configuration.md.
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgepipe/agent/config.h"

namespace edgepipe::agent::cfg {

// Collects problems; parsing continues after each so all are reported at once.
class Reporter {
 public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}
  void Add(const toml::source_region& where, std::string message);
  void AddNoLocation(std::string message);
  void Warn(const toml::source_region& where, std::string message);
  const std::string& file() const { return file_; }
  std::vector<ConfigProblem>& problems() { return problems_; }
  std::vector<ConfigProblem>& warnings() { return warnings_; }

 private:
  std::string file_;
  std::vector<ConfigProblem> problems_;
  std::vector<ConfigProblem> warnings_;
};

// "string \"abc\"", "integer 5", "table", ... for messages.
std::string Describe(const toml::node& node);
// Closest candidate within a small edit distance, or "".
std::string DidYouMean(std::string_view key, const std::vector<std::string>& candidates);
std::string Quote(std::string_view s);  // TOML-style "quoted" string

// Typed readers: return nullopt (and report) when the node has the wrong type or is out of range.
std::optional<std::string> ReadString(const toml::node& n, Reporter& r, const std::string& path, bool allow_empty = false);
std::optional<int64_t> ReadInt(const toml::node& n, Reporter& r, const std::string& path, int64_t min, int64_t max);
std::optional<double> ReadDouble(const toml::node& n, Reporter& r, const std::string& path, double min, double max);
std::optional<bool> ReadBool(const toml::node& n, Reporter& r, const std::string& path);
std::optional<uint64_t> ReadSize(const toml::node& n, Reporter& r, const std::string& path, uint64_t min, uint64_t max);
std::optional<int64_t> ReadDuration(const toml::node& n, Reporter& r, const std::string& path, int64_t min, int64_t max);
std::optional<std::vector<std::string>> ReadStringArray(const toml::node& n, Reporter& r, const std::string& path);
// Reads a secret given as { file = "..."} / { credential = "..." } / "inline".
std::optional<SecretRef> ReadSecret(const toml::node& n, Reporter& r, const std::string& path);

struct FieldDoc {
  std::string key;
  std::string type;          // "string", "size", "duration", "integer", ...
  std::string default_text;  // rendered default, "" = required or none
  std::string doc;
  bool required = false;
};

template <class T>
struct Field {
  FieldDoc doc;
  std::function<void(T&, const toml::node&, Reporter&, const std::string&)> parse;
  std::function<std::string(const T&)> show;  // renders the default from T{}
};

template <class T>
struct Section {
  std::string title;  // "[buffer]", "[[source]] type = \"simulator\""
  std::string doc;
  std::vector<Field<T>> fields;
  // Checks across fields once all are read (e.g. min <= max).
  std::function<void(T&, const toml::table&, Reporter&, const std::string&)> check;

  void Parse(T& target, const toml::table& table, Reporter& r, const std::string& path) const {
    std::vector<std::string> keys;
    for (const auto& f : fields) keys.push_back(f.doc.key);
    for (auto&& [k, v] : table) {
      const Field<T>* field = nullptr;
      for (const auto& f : fields)
        if (f.doc.key == k.str()) field = &f;
      const std::string kp = path.empty() ? std::string(k.str()) : path + "." + std::string(k.str());
      if (!field) {
        std::string msg = "unknown key '" + kp + "'";
        std::string hint = DidYouMean(k.str(), keys);
        if (!hint.empty()) msg += "; did you mean '" + hint + "'?";
        else msg += " (" + title + " accepts: " + Join(keys) + ")";
        r.Add(k.source(), msg);
        continue;
      }
      if (field->parse) field->parse(target, v, r, kp);
    }
    for (const auto& f : fields) {
      if (f.doc.required && !table.contains(f.doc.key))
        r.Add(table.source(), "missing required key '" + (path.empty() ? f.doc.key : path + "." + f.doc.key) +
                                  "' (" + f.doc.type + "): " + f.doc.doc);
    }
    if (check) check(target, table, r, path);
  }

  std::string Markdown() const {
    T defaults{};
    std::string md = "### " + title + "\n\n" + doc + "\n\n| key | type | default | description |\n|---|---|---|---|\n";
    for (const auto& f : fields) {
      std::string def = f.doc.required ? "**required**" : f.doc.default_text;
      if (def.empty() && f.show) def = f.show(defaults);
      if (def.empty()) def = "—";
      else if (!f.doc.required && def.front() != '*' && def.front() != '(' && def.front() != '`') def = "`" + def + "`";
      std::string d = f.doc.doc;
      for (auto& ch : d)
        if (ch == '\n') ch = ' ';
      md += "| `" + f.doc.key + "` | " + f.doc.type + " | " + def + " | " + d + " |\n";
    }
    return md + "\n";
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }
};

// ---- Field constructors for the common shapes. ----

template <class T>
Field<T> StringField(std::string key, std::string T::*m, std::string doc, bool required = false,
                     std::function<std::string(const std::string&)> validate = nullptr) {
  Field<T> f;
  f.doc = {std::move(key), "string", "", std::move(doc), required};
  f.parse = [m, validate](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadString(n, r, p, !validate)) {
      if (validate) {
        std::string err = validate(*v);
        if (!err.empty()) {
          r.Add(n.source(), p + ": " + err);
          return;
        }
      }
      t.*m = *v;
    }
  };
  f.show = [m](const T& t) { return (t.*m).empty() ? std::string() : Quote(t.*m); };
  return f;
}

template <class T, class I>
Field<T> IntField(std::string key, I T::*m, int64_t min, int64_t max, std::string doc) {
  Field<T> f;
  f.doc = {std::move(key), "integer (" + std::to_string(min) + " to " + std::to_string(max) + ")", "", std::move(doc), false};
  f.parse = [m, min, max](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadInt(n, r, p, min, max)) t.*m = static_cast<I>(*v);
  };
  f.show = [m](const T& t) { return std::to_string(t.*m); };
  return f;
}

template <class T>
Field<T> DoubleField(std::string key, double T::*m, double min, double max, std::string doc) {
  Field<T> f;
  f.doc = {std::move(key), "number", "", std::move(doc), false};
  f.parse = [m, min, max](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadDouble(n, r, p, min, max)) t.*m = *v;
  };
  f.show = [m](const T& t) {
    std::string s = std::to_string(t.*m);
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
    return s;
  };
  return f;
}

template <class T>
Field<T> BoolField(std::string key, bool T::*m, std::string doc) {
  Field<T> f;
  f.doc = {std::move(key), "boolean", "", std::move(doc), false};
  f.parse = [m](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadBool(n, r, p)) t.*m = *v;
  };
  f.show = [m](const T& t) { return std::string(t.*m ? "true" : "false"); };
  return f;
}

template <class T>
Field<T> SizeField(std::string key, uint64_t T::*m, uint64_t min, uint64_t max, std::string doc) {
  Field<T> f;
  f.doc = {std::move(key), "size (" + FormatSize(min) + " to " + FormatSize(max) + ")", "", std::move(doc), false};
  f.parse = [m, min, max](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadSize(n, r, p, min, max)) t.*m = *v;
  };
  f.show = [m](const T& t) { return Quote(FormatSize(t.*m)); };
  return f;
}

template <class T>
Field<T> DurationField(std::string key, int64_t T::*m, int64_t min, int64_t max, std::string doc) {
  Field<T> f;
  f.doc = {std::move(key), "duration (" + FormatDuration(min) + " to " + FormatDuration(max) + ")", "", std::move(doc), false};
  f.parse = [m, min, max](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    if (auto v = ReadDuration(n, r, p, min, max)) t.*m = *v;
  };
  f.show = [m](const T& t) { return Quote(FormatDuration(t.*m)); };
  return f;
}

template <class T, class E>
Field<T> EnumField(std::string key, E T::*m, std::vector<std::pair<std::string, E>> choices, std::string doc) {
  Field<T> f;
  std::string type = "one of ";
  for (size_t i = 0; i < choices.size(); ++i) type += (i ? ", " : "") + Quote(choices[i].first);
  f.doc = {std::move(key), type, "", std::move(doc), false};
  f.parse = [m, choices](T& t, const toml::node& n, Reporter& r, const std::string& p) {
    auto v = ReadString(n, r, p);
    if (!v) return;
    std::vector<std::string> names;
    for (const auto& [name, value] : choices) {
      if (name == *v) {
        t.*m = value;
        return;
      }
      names.push_back(name);
    }
    std::string msg = p + ": " + Quote(*v) + " is not one of " + Section<T>::Join(names);
    std::string hint = DidYouMean(*v, names);
    if (!hint.empty()) msg += "; did you mean " + Quote(hint) + "?";
    r.Add(n.source(), msg);
  };
  f.show = [m, choices](const T& t) {
    for (const auto& [name, value] : choices)
      if (value == t.*m) return Quote(name);
    return std::string();
  };
  return f;
}

template <class T>
Field<T> CustomField(std::string key, std::string type, std::string default_text, std::string doc,
                     std::function<void(T&, const toml::node&, Reporter&, const std::string&)> parse,
                     bool required = false) {
  Field<T> f;
  f.doc = {std::move(key), std::move(type), std::move(default_text), std::move(doc), required};
  f.parse = std::move(parse);
  return f;
}

// A key that the enclosing parser handles itself (e.g. a source's `type`), listed for docs.
template <class T>
Field<T> HandledField(std::string key, std::string type, std::string default_text, std::string doc, bool required = false) {
  return CustomField<T>(std::move(key), std::move(type), std::move(default_text), std::move(doc), nullptr, required);
}

// ---- The sections (config_sections.cpp, config_sources.cpp). ----

const Section<DeviceConfig>& DeviceSection();
const Section<AgentConfig>& AgentSection();
const Section<buffer::Options>& BufferSection();
const Section<BatchPolicy>& BatchSection();
const Section<UploadConfig>& UploadSection();
const Section<ValidationConfig>& ValidationSection();  // config_validation.cpp
// [validation] with its sub-tables (rules, transforms, clock), for docs/configuration.md.
std::string ValidationReferenceMarkdown();
const Section<fb::SerialOptions>& SerialSection();  // config_source_serial.cpp

// [republish] (config_source_mqtt.cpp).
const Section<RepublishConfig>& RepublishSection();
// Fills MQTT/republish defaults that depend on the device id and source name ({device}, {name}).
void FinishInputs(Config& c);
// One entry per [[source]] type.
struct SourceType {
  std::string type;
  std::string doc;
  // Parses a [[source]] table whose `type` and `name` were already read into `src`.
  std::function<void(SourceConfig& src, const toml::table&, Reporter&, const std::string& path)> parse;
  std::function<std::string()> markdown;
};
const std::vector<SourceType>& SourceTypes();
// The [[source]] entries of issue 6 (config_source_mqtt.cpp, config_source_sysfs.cpp).
SourceType MqttSourceType();
SourceType SysfsSourceType();

}  // namespace edgepipe::agent::cfg
