#include "edgepipe/firmware_bridge/topic_template.h"

#include <algorithm>

namespace edgepipe::fb {
namespace {

bool ValidName(std::string_view n) {
  if (n.empty()) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

Result<TopicTemplate> TopicTemplate::Parse(std::string_view pattern, std::string_view sensor_format) {
  TopicTemplate t;
  t.pattern_ = std::string(pattern);
  if (!pattern.empty()) {
    size_t pos = 0;
    while (true) {
      size_t slash = pattern.find('/', pos);
      std::string_view lvl = pattern.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
      Level L;
      if (lvl == "+") {
        L.kind = Kind::kAny;
      } else if (lvl == "#") {
        if (slash != std::string_view::npos) return InvalidArgumentError("'#' must be the last level of a topic template");
        L.kind = Kind::kRest;
      } else if (lvl.size() >= 2 && lvl.front() == '{' && lvl.back() == '}') {
        std::string name(lvl.substr(1, lvl.size() - 2));
        if (!ValidName(name))
          return InvalidArgumentError("bad capture {" + name + "}: names use letters, digits, '_' and '-'");
        if (std::find(t.captures_.begin(), t.captures_.end(), name) != t.captures_.end())
          return InvalidArgumentError("capture {" + name + "} appears twice");
        L.kind = Kind::kCapture;
        L.text = name;
        t.captures_.push_back(name);
      } else {
        if (lvl.find_first_of("{}+#") != std::string_view::npos)
          return InvalidArgumentError("level \"" + std::string(lvl) +
                                      "\": '{name}', '+' and '#' must fill a whole level");
        L.kind = Kind::kLiteral;
        L.text = std::string(lvl);
      }
      t.levels_.push_back(std::move(L));
      if (slash == std::string_view::npos) break;
      pos = slash + 1;
    }
  }
  // The sensor id format.
  size_t i = 0;
  while (i < sensor_format.size()) {
    size_t open = sensor_format.find('{', i);
    if (open == std::string_view::npos) {
      t.format_.push_back({false, std::string(sensor_format.substr(i))});
      break;
    }
    if (open > i) t.format_.push_back({false, std::string(sensor_format.substr(i, open - i))});
    size_t close = sensor_format.find('}', open);
    if (close == std::string_view::npos) return InvalidArgumentError("sensor format: unclosed '{'");
    std::string name(sensor_format.substr(open + 1, close - open - 1));
    auto it = std::find(t.captures_.begin(), t.captures_.end(), name);
    if (it == t.captures_.end())
      return InvalidArgumentError("sensor format refers to {" + name + "}, which the topic template \"" +
                                  t.pattern_ + "\" does not capture");
    t.format_.push_back({true, name, static_cast<int>(it - t.captures_.begin())});
    i = close + 1;
  }
  return t;
}

bool TopicTemplate::Match(std::string_view topic, std::string* sensor) const {
  if (levels_.empty()) {
    sensor->assign(topic);
    return !topic.empty();
  }
  // Captured levels as views into `topic` (templates are short: a fixed array avoids allocation).
  constexpr size_t kMaxCaptures = 16;
  std::string_view caps[kMaxCaptures];
  size_t ncap = 0;
  size_t pos = 0;
  bool topic_done = false;
  bool rest = false;
  for (const Level& L : levels_) {
    if (L.kind == Kind::kRest) {
      rest = true;
      break;
    }
    if (topic_done) return false;  // template has more levels than the topic
    size_t slash = topic.find('/', pos);
    std::string_view lvl = topic.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (slash == std::string_view::npos) topic_done = true;
    else pos = slash + 1;
    if (L.kind == Kind::kLiteral && lvl != L.text) return false;
    if (L.kind == Kind::kCapture) {
      if (lvl.empty()) return false;
      if (ncap < kMaxCaptures) caps[ncap] = lvl;
      ++ncap;
    }
  }
  if (!rest && !topic_done) return false;  // topic has more levels than the template
  if (ncap > kMaxCaptures) return false;
  sensor->clear();
  if (format_.empty()) {
    if (ncap == 0) {
      sensor->assign(topic);
    } else {
      for (size_t k = 0; k < ncap; ++k) {
        if (k) sensor->push_back('/');
        sensor->append(caps[k]);
      }
    }
  } else {
    for (const Piece& p : format_) sensor->append(p.capture ? caps[p.index] : std::string_view(p.text));
  }
  return !sensor->empty();
}

std::string TopicTemplate::Filter() const {
  if (levels_.empty()) return "#";
  std::string f;
  for (size_t i = 0; i < levels_.size(); ++i) {
    if (i) f.push_back('/');
    switch (levels_[i].kind) {
      case Kind::kLiteral: f += levels_[i].text; break;
      case Kind::kCapture:
      case Kind::kAny: f.push_back('+'); break;
      case Kind::kRest: f.push_back('#'); break;
    }
  }
  return f;
}

}  // namespace edgepipe::fb
