#include "edgepipe/firmware_bridge/payload.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "edgepipe/core/time_util.h"
#include "senml_pack.h"

namespace edgepipe::fb {
namespace {

namespace dom = simdjson::dom;

// RFC 8428 4.5.3: resolved times below 2^28 s are relative to "now".
constexpr double kRelativeLimit = 268'435'456.0;
constexpr double kMaxAbsSeconds = 253'402'300'800.0;  // year 10000: keeps the conversion in range
constexpr int kSenmlVersion = 10;

// RFC 8428 4.5.1 name characters: 1 = A-Z a-z 0-9 (may also start a name), 2 = - : . / _.
constexpr auto kNameChar = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) t[c] = 1;
    else if (c == '-' || c == ':' || c == '.' || c == '/' || c == '_') t[c] = 2;
  }
  return t;
}();

bool AllNameChars(std::string_view s) {
  for (char c : s)
    if (kNameChar[static_cast<unsigned char>(c)] == 0) return false;
  return true;
}

std::string Trunc(std::string_view s, size_t n = 64) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

bool SecondsToUs(double s, int64_t* us) {
  if (!std::isfinite(s) || std::fabs(s) > kMaxAbsSeconds) return false;
  *us = std::llround(s * 1e6);
  return true;
}

// simdjson's types named as in every error message (the SenML pack reader's words).
const char* TypeName(dom::element_type t) { return JTypeName(JTypeOf(t)); }

bool IsNumber(dom::element_type t) { return JTypeOf(t) == JType::kNumber; }

}  // namespace

const char* PayloadFormatName(PayloadFormat f) {
  switch (f) {
    case PayloadFormat::kSenml: return "senml";
    case PayloadFormat::kNumber: return "number";
    case PayloadFormat::kJson: return "json";
  }
  return "?";
}

bool IsValidSenmlName(std::string_view name) {
  return !name.empty() && kNameChar[static_cast<unsigned char>(name[0])] == 1 && AllNameChars(name);
}

std::string CheckJsonPointer(std::string_view p) {
  if (p.empty()) return "";
  if (p[0] != '/') return "a JSON pointer starts with '/' (RFC 6901), e.g. \"/value\"";
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1')))
      return "'~' must be followed by 0 or 1 in a JSON pointer (RFC 6901)";
  }
  return "";
}

namespace {
// SenML base fields, reset per pack; kept to reuse their capacity.
struct SenmlScratch {
  std::string base_name;
  bool base_name_valid = false;  // base_name is a valid start of a name (checked once per pack)
  std::string base_unit;
};
}  // namespace

struct PayloadParser::Impl {
  // The capacity goes through the constructor: simdjson 3.0.1's set_max_capacity() inverts its
  // test and caps every parser at 32 bytes.
  explicit Impl(size_t max_capacity) : parser(max_capacity) {}
  dom::parser parser;
  std::string padded;  // payload copy with simdjson's padding; reused between messages
  SenmlScratch senml;
  SenmlPack pack;  // the SenML records being read; reused between messages

  std::string_view Pad(std::string_view payload) {
    const size_t need = payload.size() + simdjson::SIMDJSON_PADDING;
    if (padded.size() < need) padded.resize(need);
    std::memcpy(padded.data(), payload.data(), payload.size());
    std::memset(padded.data() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
    return std::string_view(padded.data(), payload.size());
  }
};

PayloadParser::PayloadParser(PayloadOptions options)
    : opt_(std::move(options)), impl_(std::make_unique<Impl>(std::max<size_t>(opt_.max_bytes, 4096))) {}
PayloadParser::~PayloadParser() = default;
PayloadParser::PayloadParser(PayloadParser&&) noexcept = default;
PayloadParser& PayloadParser::operator=(PayloadParser&&) noexcept = default;

namespace {

struct Ctx {
  std::string_view topic_sensor;
  int64_t now_us;
  std::string_view source;
  PayloadError* error;
  bool Fail(const char* rule, std::string reason, std::string_view sensor = {}) {
    error->rule = rule;
    error->reason = std::move(reason);
    error->sensor = std::string(sensor);
    return false;
  }
};

Reading NewReading(const Ctx& c) {
  Reading r;
  r.source = std::string(c.source);
  return r;
}

// ---- SenML (RFC 8428) ----

bool ParseSenml(SenmlScratch& im, const PayloadOptions& opt, const SenmlPack& pack, Ctx& c,
                std::vector<Reading>* out) {
  if (pack.root != JType::kArray)
    return c.Fail("senml", std::string("a SenML pack is a JSON array of records, got ") + JTypeName(pack.root));
  im.base_name.clear();
  im.base_unit.clear();
  double bt = 0, bv = 0, bs = 0;
  bool has_bv = false, has_bs = false;
  const size_t first = out->size();
  size_t index = 0;
  auto fail = [&](const char* rule, std::string reason, std::string_view sensor = {}) {
    std::string kept(sensor);  // it may be the name of a reading dropped here
    out->resize(first);
    return c.Fail(rule, "record " + std::to_string(index) + ": " + reason, kept);
  };
  const size_t records = pack.ends.size() + (pack.stopped ? 1 : 0);
  for (size_t rec_i = 0; rec_i < records; ++rec_i) {
    if (rec_i == pack.ends.size())
      return fail("senml", std::string("a SenML record is a JSON object, got ") + JTypeName(pack.stop_type));
    if (out->size() - first >= opt.max_readings)
      return fail("oversize", "more than " + std::to_string(opt.max_readings) + " records in one message");
    std::string_view n;
    std::string_view u;
    bool has_n = false, has_u = false, has_t = false, has_v = false, has_vs = false, has_vb = false,
         has_vd = false, has_s = false;
    double t = 0, v = 0, s = 0;
    bool vb = false;
    std::string_view vs;
    int values = 0;
    const uint32_t fields_end = pack.ends[rec_i];
    for (uint32_t fi = rec_i == 0 ? 0 : pack.ends[rec_i - 1]; fi < fields_end; ++fi) {
      const std::string_view k = pack.fields[fi].key;
      const JValue& val = pack.fields[fi].val;
      const JType ty = val.type;
      auto want_num = [&](double* dst) {
        if (ty != JType::kNumber) return false;
        *dst = val.num;
        return true;
      };
      auto want_str = [&](std::string_view* dst) {
        if (ty != JType::kString) return false;
        *dst = val.str;
        return true;
      };
      auto bad_type = [&](const char* want) {
        return fail("schema", "field \"" + std::string(k) + "\" must be " + want + ", got " + JTypeName(ty));
      };
      if (k == "n") {
        if (!want_str(&n)) return bad_type("a string");
        has_n = true;
      } else if (k == "v") {
        if (!want_num(&v)) return bad_type("a number");
        has_v = true;
        ++values;
      } else if (k == "t") {
        if (!want_num(&t)) return bad_type("a number");
        has_t = true;
      } else if (k == "u") {
        if (!want_str(&u)) return bad_type("a string");
        has_u = true;
      } else if (k == "vs") {
        if (!want_str(&vs)) return bad_type("a string");
        has_vs = true;
        ++values;
      } else if (k == "vb") {
        if (ty != JType::kBool) return bad_type("a boolean");
        vb = val.b;
        has_vb = true;
        ++values;
      } else if (k == "vd") {
        if (!want_str(&vs)) return bad_type("a string (base64url data)");
        has_vd = true;
        ++values;
      } else if (k == "s") {
        if (!want_num(&s)) return bad_type("a number");
        has_s = true;
      } else if (k == "bn") {
        std::string_view b;
        if (!want_str(&b)) return bad_type("a string");
        im.base_name.assign(b);
        im.base_name_valid = IsValidSenmlName(b);
      } else if (k == "bt") {
        if (!want_num(&bt)) return bad_type("a number");
      } else if (k == "bu") {
        std::string_view b;
        if (!want_str(&b)) return bad_type("a string");
        im.base_unit.assign(b);
      } else if (k == "bv") {
        if (!want_num(&bv)) return bad_type("a number");
        has_bv = true;
      } else if (k == "bs") {
        if (!want_num(&bs)) return bad_type("a number");
        has_bs = true;
      } else if (k == "bver") {
        double ver = 0;
        if (!want_num(&ver)) return bad_type("a number");
        if (ver > kSenmlVersion) {
          // Printed as the number it is (%g): a cast of 1e79 to an integer is undefined.
          char shown[32];
          snprintf(shown, sizeof shown, "%g", ver);
          return fail("senml", std::string("SenML version ") + shown + " is newer than the supported version 10");
        }
      } else if (!k.empty() && k.back() == '_') {
        // RFC 8428 4.4: a field ending in '_' must be understood, or the pack rejected.
        return fail("senml", "unknown must-understand field \"" + Trunc(k) + "\"");
      }
      // "ut" (update time) and other unknown fields are ignored as the RFC allows.
    }
    if (values > 1) return fail("senml", "more than one value field (v, vs, vb, vd) in one record");
    // The reading is built in place (fail() drops it with the rest of the pack), its name first.
    Reading& r = out->emplace_back();
    r.sensor.assign(im.base_name);
    if (has_n) r.sensor.append(n);
    if (r.sensor.empty()) r.sensor.assign(c.topic_sensor);
    const std::string_view name = r.sensor;
    if (name.empty()) return fail("topic", "no name: the record has neither bn nor n and the topic gives no sensor id");
    // bn + n is valid when bn is (checked once) and n has only name characters.
    const bool valid = !im.base_name.empty() && has_n ? im.base_name_valid && AllNameChars(n) : IsValidSenmlName(name);
    if (!valid && !(name == c.topic_sensor && !name.empty()))
      return fail("senml", "invalid SenML name \"" + Trunc(name) +
                               "\" (allowed: A-Z a-z 0-9 - : . / _, starting with a letter or digit)",
                  name);
    // Resolve the time (RFC 8428 4.5.3).
    double rt = bt + (has_t ? t : 0.0);
    int64_t ts = 0;
    if (!std::isfinite(rt)) return fail("senml", "time is not finite", name);
    if (rt < kRelativeLimit) {
      int64_t rel = 0;
      if (!SecondsToUs(rt, &rel)) return fail("senml", "time out of range", name);
      ts = c.now_us + rel;
    } else if (!SecondsToUs(rt, &ts)) {
      return fail("senml", "time out of range", name);
    }
    r.source.assign(c.source);
    r.ts_us = ts;
    if (has_u) r.unit.assign(u);
    else r.unit = im.base_unit;
    if (has_v) {
      r.value = has_bv ? bv + v : v;
    } else if (has_vs || has_vd) {
      r.type = ValueType::kString;
      r.text.assign(vs);
    } else if (has_vb) {
      r.type = ValueType::kBool;
      r.value = vb ? 1.0 : 0.0;
    } else if (has_s) {
      r.value = has_bs ? bs + s : s;
      r.sensor += "/sum";  // a Sum is its own series: "<name>/sum"
      has_s = false;
    } else if (has_bv) {
      r.value = bv;
    } else {
      return fail("senml", "record has no value (v, vs, vb, vd) and no sum (s)", name);
    }
    if (has_s) {  // a record carrying both a value and a sum: the sum is a second reading
      Reading sum = NewReading(c);
      sum.sensor = std::string(name) + "/sum";
      sum.ts_us = ts;
      sum.unit = out->back().unit;
      sum.value = has_bs ? bs + s : s;
      out->push_back(std::move(sum));
    }
    ++index;
  }
  if (out->size() == first) return c.Fail("senml", "empty SenML pack (no records)");
  return true;
}

// ---- JSON object(s) with configurable pointers ----

bool JsonTime(dom::element el, const PayloadOptions& opt, int64_t* ts, std::string* why) {
  dom::element_type ty = el.type();
  if (IsNumber(ty)) {
    double d = 0;
    if (el.get_double().get(d) != simdjson::SUCCESS) return false;
    double s = opt.time_unit == TimeUnit::kSeconds ? d : opt.time_unit == TimeUnit::kMilliseconds ? d / 1e3 : d / 1e6;
    if (!SecondsToUs(s, ts)) {
      *why = "time out of range";
      return false;
    }
    return true;
  }
  if (ty == dom::element_type::STRING) {
    std::string_view str;
    if (el.get_string().get(str) != simdjson::SUCCESS) return false;
    std::optional<int64_t> t = ParseIso8601(str);
    if (!t) {
      *why = "time \"" + Trunc(str) + "\" is not ISO 8601";
      return false;
    }
    *ts = *t;
    return true;
  }
  *why = std::string("time must be a number or an ISO 8601 string, got ") + TypeName(ty);
  return false;
}

bool ParseJsonObject(const PayloadOptions& opt, dom::element obj, Ctx& c, std::vector<Reading>* out) {
  if (obj.type() != dom::element_type::OBJECT)
    return c.Fail("schema", std::string("expected a JSON object, got ") + TypeName(obj.type()));
  Reading r = NewReading(c);
  // Sensor.
  dom::element el;
  if (!opt.sensor_pointer.empty() && obj.at_pointer(opt.sensor_pointer).get(el) == simdjson::SUCCESS) {
    std::string_view s;
    if (el.get_string().get(s) != simdjson::SUCCESS)
      return c.Fail("schema", "sensor at " + opt.sensor_pointer + " must be a string, got " + TypeName(el.type()));
    r.sensor.assign(s);
  }
  if (r.sensor.empty()) r.sensor.assign(c.topic_sensor);
  if (r.sensor.empty())
    return c.Fail("topic", "no sensor id: nothing at " + (opt.sensor_pointer.empty() ? std::string("(no sensor_pointer)") : opt.sensor_pointer) +
                               " and the topic gives none");
  // Value.
  if (obj.at_pointer(opt.value_pointer).get(el) != simdjson::SUCCESS)
    return c.Fail("schema", "no value at " + opt.value_pointer, r.sensor);
  switch (el.type()) {
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      if (el.get_double().get(r.value) != simdjson::SUCCESS) return c.Fail("schema", "bad number", r.sensor);
      break;
    case dom::element_type::BOOL: {
      bool b = false;
      if (el.get_bool().get(b) != simdjson::SUCCESS) return c.Fail("schema", "bad boolean", r.sensor);
      r.type = ValueType::kBool;
      r.value = b ? 1 : 0;
      break;
    }
    case dom::element_type::STRING: {
      std::string_view s;
      if (el.get_string().get(s) != simdjson::SUCCESS) return c.Fail("schema", "bad string", r.sensor);
      r.type = ValueType::kString;
      r.text.assign(s);
      break;
    }
    default:
      return c.Fail("schema", "value at " + opt.value_pointer + " must be a number, boolean or string, got " +
                                  TypeName(el.type()),
                    r.sensor);
  }
  // Time.
  r.ts_us = c.now_us;
  if (!opt.time_pointer.empty() && obj.at_pointer(opt.time_pointer).get(el) == simdjson::SUCCESS) {
    std::string why = "bad time";
    if (!JsonTime(el, opt, &r.ts_us, &why)) return c.Fail("schema", why + " (at " + opt.time_pointer + ")", r.sensor);
  }
  // Unit.
  if (!opt.unit_pointer.empty() && obj.at_pointer(opt.unit_pointer).get(el) == simdjson::SUCCESS) {
    std::string_view u;
    if (el.get_string().get(u) != simdjson::SUCCESS)
      return c.Fail("schema", "unit at " + opt.unit_pointer + " must be a string", r.sensor);
    r.unit.assign(u);
  } else {
    r.unit = opt.unit;
  }
  out->push_back(std::move(r));
  return true;
}

bool ParseJson(const PayloadOptions& opt, dom::element root, Ctx& c, std::vector<Reading>* out) {
  if (root.type() != dom::element_type::ARRAY) return ParseJsonObject(opt, root, c, out);
  dom::array arr;
  if (root.get_array().get(arr) != simdjson::SUCCESS) return c.Fail("parse", "bad array");
  const size_t first = out->size();
  size_t i = 0;
  for (dom::element el : arr) {
    if (i >= opt.max_readings) {
      out->resize(first);
      return c.Fail("oversize", "more than " + std::to_string(opt.max_readings) + " objects in one message");
    }
    if (!ParseJsonObject(opt, el, c, out)) {
      out->resize(first);
      c.error->reason = "element " + std::to_string(i) + ": " + c.error->reason;
      return false;
    }
    ++i;
  }
  if (out->size() == first) return c.Fail("schema", "empty JSON array");
  return true;
}

// ---- plain number ----

bool ParseNumber(const PayloadOptions& opt, std::string_view p, Ctx& c, std::vector<Reading>* out) {
  size_t b = 0, e = p.size();
  while (b < e && (p[b] == ' ' || p[b] == '\t' || p[b] == '\r' || p[b] == '\n')) ++b;
  while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\r' || p[e - 1] == '\n')) --e;
  std::string_view s = p.substr(b, e - b);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size())
    return c.Fail("parse", "payload is not a number: \"" + Trunc(p) + "\"", c.topic_sensor);
  if (c.topic_sensor.empty()) return c.Fail("topic", "a plain-number payload needs a sensor id from the topic");
  Reading r = NewReading(c);
  r.sensor.assign(c.topic_sensor);
  r.ts_us = c.now_us;
  r.value = v;
  r.unit = opt.unit;
  out->push_back(std::move(r));
  return true;
}

}  // namespace

bool PayloadParser::Parse(std::string_view payload, std::string_view topic_sensor, int64_t now_us,
                          std::string_view source, std::vector<Reading>* out, PayloadError* error) {
  Ctx c{topic_sensor, now_us, source, error};
  if (payload.size() > opt_.max_bytes)
    return c.Fail("oversize", "payload of " + std::to_string(payload.size()) + " bytes exceeds max_payload (" +
                                  std::to_string(opt_.max_bytes) + " bytes)",
                  topic_sensor);
  if (opt_.format == PayloadFormat::kNumber) return ParseNumber(opt_, payload, c, out);
  // SenML in its common shape is read by the scanner; anything else (and every payload
  // that is not valid JSON) goes through simdjson.
  // Whatever the outcome, a SenML message's pack scratch is trimmed when it is done (a long
  // payload that turned out not to be JSON included).
  const TrimScratchOnExit trim(opt_.format == PayloadFormat::kSenml ? &impl_->pack : nullptr);
  if (opt_.format == PayloadFormat::kSenml && ScanSenmlPack(payload, &impl_->pack))
    return ParseSenml(impl_->senml, opt_, impl_->pack, c, out);
  std::string_view padded = impl_->Pad(payload);
  dom::element root;
  simdjson::error_code ec = impl_->parser.parse(padded.data(), padded.size(), false).get(root);
  if (ec != simdjson::SUCCESS)
    return c.Fail("parse", std::string("not valid JSON: ") + simdjson::error_message(ec), topic_sensor);
  if (opt_.format == PayloadFormat::kSenml) {
    FlattenSenmlPack(root, &impl_->pack);
    return ParseSenml(impl_->senml, opt_, impl_->pack, c, out);
  }
  return ParseJson(opt_, root, c, out);
}

}  // namespace edgepipe::fb
