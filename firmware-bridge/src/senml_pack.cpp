#include "senml_pack.h"

#include <array>
#include <bit>
#include <cfloat>
#include <cstring>

namespace edgepipe::fb {

const char* JTypeName(JType t) {
  switch (t) {
    case JType::kArray: return "an array";
    case JType::kObject: return "an object";
    case JType::kNumber: return "a number";
    case JType::kString: return "a string";
    case JType::kBool: return "a boolean";
    case JType::kNull: return "null";
  }
  return "?";
}

namespace {

// The exact powers of ten of a double (10^22 is the largest).
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr uint64_t kMaxExactMantissa = uint64_t{1} << 53;
#if defined(FLT_EVAL_METHOD) && (FLT_EVAL_METHOD == 0 || FLT_EVAL_METHOD == 1)
constexpr bool kExactDivision = true;
#else
constexpr bool kExactDivision = false;
#endif

bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') <= 9; }

// Character classes of the scanner: whitespace, and bytes a string may hold as they are.
constexpr auto kClass = [] {
  std::array<uint8_t, 256> t{};
  t[' '] = t['\n'] = t['\r'] = t['\t'] = 1;
  for (int c = 0x20; c < 0x80; ++c)
    if (c != '"' && c != '\\') t[c] |= 2;
  return t;
}();
constexpr uint8_t kWs = 1, kPlain = 2;

// Reads a copy of the payload followed by a NUL: no byte-by-byte bounds check, since the NUL
// stops every loop (it is neither whitespace, nor a string's byte, nor a digit) and no token
// starts with it. The end is checked once, at the end.
struct Scanner {
  const char* p;

  uint8_t Class() const { return kClass[static_cast<unsigned char>(*p)]; }
  void Ws() {
    while (Class() & kWs) ++p;
  }
  bool Eat(char c) {
    if (*p != c) return false;
    ++p;
    return true;
  }
  // `c` after optional whitespace (machine-written JSON mostly has none: one comparison then).
  bool Tok(char c) {
    if (*p != c) {
      if (!(Class() & kWs)) return false;
      Ws();
      if (*p != c) return false;
    }
    ++p;
    return true;
  }
  // A string with no escape, no control character and no byte above 0x7F (simdjson validates
  // those; the scanner leaves them to it).
  bool Str(std::string_view* out) {
    if (!Tok('"')) return false;
    const char* b = p;
    while (Class() & kPlain) ++p;
    if (*p != '"') return false;
    *out = std::string_view(b, static_cast<size_t>(p - b));
    ++p;
    return true;
  }
  // A JSON number whose value is exact without a general decimal-to-binary conversion: an
  // integer of at most 18 digits (simdjson's int64, read as a double), or a decimal whose digits
  // make less than 2^53 and whose power of ten is within 10^±22 (one correctly rounded
  // multiplication or division, the value simdjson computes). Anything else goes to simdjson.
  bool Num(double* out) {
    const bool neg = Eat('-');
    uint64_t m = 0;
    const char* d0 = p;
    if (*p == '0') {
      ++p;
    } else if (IsDigit(*p)) {
      for (; IsDigit(*p); ++p) m = m * 10 + static_cast<uint64_t>(*p - '0');
    } else {
      return false;
    }
    int digits = static_cast<int>(p - d0);
    int exp10 = 0;
    bool integer = true;
    if (*p == '.') {
      integer = false;
      const char* f = ++p;
      for (; IsDigit(*p); ++p) m = m * 10 + static_cast<uint64_t>(*p - '0');
      if (p == f) return false;
      exp10 = -static_cast<int>(p - f);
      digits += static_cast<int>(p - f);
    }
    // 18 digits cannot overflow m (a longer run may have wrapped around: it is declined).
    if (digits > 18) return false;
    if (*p == 'e' || *p == 'E') {
      integer = false;
      ++p;
      bool eneg = false;
      if (*p == '+' || *p == '-') eneg = *p++ == '-';
      const char* f = p;
      int x = 0;
      for (; IsDigit(*p); ++p)
        if (x < 1000) x = x * 10 + (*p - '0');
      if (p == f) return false;
      exp10 += eneg ? -x : x;
    }
    if (integer) {
      // simdjson reads "-0" as the integer 0: +0.0.
      const double d = static_cast<double>(m);
      *out = neg && m != 0 ? -d : d;
      return true;
    }
    // Below 2^53 and within 10^+-22 exactly as simdjson's own fast path (other values it rounds
    // by a slower route, left to it); and only where double arithmetic is not carried out in a
    // wider type (FLT_EVAL_METHOD 0 or 1, as on x86-64 and ARM; simdjson checks the same).
    if (!kExactDivision || m >= kMaxExactMantissa || exp10 < -22 || exp10 > 22) return false;
    double d = static_cast<double>(m);
    d = exp10 < 0 ? d / kPow10[-exp10] : d * kPow10[exp10];
    *out = neg ? -d : d;  // a decimal "-0.0" is -0.0, as in simdjson
    return true;
  }
  // `w`, compared byte by byte: a shorter input stops at its NUL and nothing after it is read
  // (memcmp may read all of `w`'s length).
  bool Word(const char* w) {
    const char* q = p;
    for (; *w != '\0'; ++w, ++q)
      if (*q != *w) return false;
    p = q;
    return true;
  }
  bool Value(JValue* v) {
    if (Class() & kWs) Ws();
    switch (*p) {
      case '"':
        v->type = JType::kString;
        return Str(&v->str);
      case 't':
        v->type = JType::kBool;
        v->b = true;
        return Word("true");
      case 'f':
        v->type = JType::kBool;
        v->b = false;
        return Word("false");
      default:
        v->type = JType::kNumber;
        return Num(&v->num);
    }
  }
};

}  // namespace

bool ScanSenmlPack(std::string_view json, SenmlPack* pack) {
  pack->Clear();
  std::string& buf = pack->scan_copy;
  buf.assign(json);  // with its NUL: the scanner's sentinel
  if (std::memchr(buf.data(), 0, buf.size()) != nullptr) return false;  // a NUL inside: simdjson's
  Scanner s{buf.data()};
  std::vector<JField>& fields = pack->fields;
  size_t n = 0;
  if (!s.Tok('[')) return false;
  if (!s.Tok(']')) {
    for (;;) {
      if (!s.Tok('{')) return false;
      if (!s.Tok('}')) {
        for (;;) {
          if (n == fields.size()) fields.resize(fields.size() * 2 + 64);
          JField& f = fields[n++];
          if (!s.Str(&f.key) || !s.Tok(':') || !s.Value(&f.val)) return false;
          if (s.Tok(',')) continue;
          if (s.Tok('}')) break;
          return false;
        }
      }
      pack->ends.push_back(static_cast<uint32_t>(n));
      if (s.Tok(',')) continue;
      if (s.Tok(']')) break;
      return false;
    }
  }
  s.Ws();
  return s.p == buf.data() + buf.size();
}

JType JTypeOf(simdjson::dom::element_type t) {
  using ET = simdjson::dom::element_type;
  switch (t) {
    case ET::ARRAY: return JType::kArray;
    case ET::OBJECT: return JType::kObject;
    case ET::INT64:
    case ET::UINT64:
    case ET::DOUBLE: return JType::kNumber;
    case ET::STRING: return JType::kString;
    case ET::BOOL: return JType::kBool;
    case ET::NULL_VALUE: return JType::kNull;
  }
  return JType::kNull;
}

void FlattenSenmlPack(simdjson::dom::element root, SenmlPack* pack) {
  pack->Clear();
  pack->root = JTypeOf(root.type());
  if (pack->root != JType::kArray) return;
  // value_unsafe() below: each conversion is to the element's own type, which cannot fail.
  const simdjson::dom::array arr = root.get_array().value_unsafe();
  size_t n = 0;
  for (simdjson::dom::element rec_el : arr) {
    simdjson::dom::object rec;
    if (rec_el.get_object().get(rec) != simdjson::SUCCESS) {
      pack->stopped = true;
      pack->stop_type = JTypeOf(rec_el.type());
      return;
    }
    for (simdjson::dom::key_value_pair kv : rec) {
      if (n == pack->fields.size()) pack->fields.resize(pack->fields.size() * 2 + 64);
      JField& f = pack->fields[n++];
      f = JField{};
      f.key = kv.key;
      f.val.type = JTypeOf(kv.value.type());
      switch (f.val.type) {
        case JType::kNumber: f.val.num = kv.value.get_double().value_unsafe(); break;
        case JType::kString: f.val.str = kv.value.get_string().value_unsafe(); break;
        case JType::kBool: f.val.b = kv.value.get_bool().value_unsafe(); break;
        default: break;
      }
    }
    pack->ends.push_back(static_cast<uint32_t>(n));
  }
}

std::string ComparePacks(const SenmlPack& a, const SenmlPack& b) {
  if (a.root != b.root) return std::string("root: ") + JTypeName(a.root) + " / " + JTypeName(b.root);
  if (a.stopped != b.stopped || (a.stopped && a.stop_type != b.stop_type)) return "stopped at a non-object";
  if (a.ends != b.ends) return "records: " + std::to_string(a.ends.size()) + " / " + std::to_string(b.ends.size());
  const size_t n = a.ends.empty() ? 0 : a.ends.back();
  for (size_t i = 0; i < n; ++i) {
    const JField& x = a.fields[i];
    const JField& y = b.fields[i];
    const std::string at = "field " + std::to_string(i) + " (\"" + std::string(x.key) + "\"): ";
    if (x.key != y.key) return at + "key \"" + std::string(y.key) + "\"";
    if (x.val.type != y.val.type) return at + JTypeName(x.val.type) + " / " + JTypeName(y.val.type);
    switch (x.val.type) {
      case JType::kNumber:
        if (std::bit_cast<uint64_t>(x.val.num) != std::bit_cast<uint64_t>(y.val.num))
          return at + std::to_string(x.val.num) + " / " + std::to_string(y.val.num) + " (bits differ)";
        break;
      case JType::kString:
        if (x.val.str != y.val.str) return at + "string differs";
        break;
      case JType::kBool:
        if (x.val.b != y.val.b) return at + "boolean differs";
        break;
      default: break;
    }
  }
  return "";
}

}  // namespace edgepipe::fb
