#include "edgepipe/uploader/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

#include "edgepipe/core/time_util.h"

namespace edgepipe::uploader {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string Hex(const unsigned char* d, size_t n) {
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

struct Mac {
  unsigned char d[32];
};

Mac Hmac(std::string_view key, std::string_view data) {
  Mac m;
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), m.d, &len);
  return m;
}

std::string_view View(const Mac& m) { return {reinterpret_cast<const char*>(m.d), sizeof m.d}; }

std::string Sha256Hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  return Hex(d, n);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Canonical header value: leading/trailing whitespace removed, inner runs of spaces collapsed.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char kUpper[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kUpper[c >> 4]);
      out.push_back(kUpper[c & 15]);
    }
  }
  return out;
}

std::string AmzDate(int64_t unix_us) {
  CivilTime c = CivilFromUs(unix_us);
  char buf[20];
  snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

SignedHeaders SignV4(const SigningRequest& req, const Credentials& creds, std::string_view region, int64_t unix_us) {
  const std::string amz_date = AmzDate(unix_us);
  const std::string date = amz_date.substr(0, 8);
  SignedHeaders out;
  out.headers.emplace_back("Host", req.host);
  out.headers.emplace_back("x-amz-date", amz_date);
  out.headers.emplace_back("x-amz-content-sha256", req.payload_sha256_hex);
  if (creds.session_token) out.headers.emplace_back("x-amz-security-token", std::string(creds.session_token->view()));
  for (const auto& h : req.headers) out.headers.push_back(h);

  // Canonical headers: lower-case names, sorted; repeated names joined with ','.
  std::vector<std::pair<std::string, std::string>> canon;
  canon.reserve(out.headers.size());
  for (const auto& [k, v] : out.headers) canon.emplace_back(Lower(k), CanonicalValue(v));
  std::stable_sort(canon.begin(), canon.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, signed_names;
  for (size_t i = 0; i < canon.size(); ++i) {
    if (i > 0 && canon[i].first == canon[i - 1].first) {
      canonical_headers.pop_back();  // '\n'
      canonical_headers += "," + canon[i].second + "\n";
      continue;
    }
    canonical_headers += canon[i].first + ":" + canon[i].second + "\n";
    if (!signed_names.empty()) signed_names.push_back(';');
    signed_names += canon[i].first;
  }
  out.canonical_request = req.method + "\n" + req.encoded_path + "\n" + req.encoded_query + "\n" + canonical_headers +
                          "\n" + signed_names + "\n" + req.payload_sha256_hex;
  const std::string scope = date + "/" + std::string(region) + "/s3/aws4_request";
  out.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(out.canonical_request);

  // The key derivation handles the secret; its intermediate values are wiped afterwards.
  std::string k_secret = "AWS4";
  k_secret.append(creds.secret_access_key ? creds.secret_access_key->view() : std::string_view());
  Mac k_date = Hmac(k_secret, date);
  Mac k_region = Hmac(View(k_date), region);
  Mac k_service = Hmac(View(k_region), "s3");
  Mac k_signing = Hmac(View(k_service), "aws4_request");
  Mac sig = Hmac(View(k_signing), out.string_to_sign);
  OPENSSL_cleanse(k_secret.data(), k_secret.size());
  OPENSSL_cleanse(&k_date, sizeof k_date);
  OPENSSL_cleanse(&k_region, sizeof k_region);
  OPENSSL_cleanse(&k_service, sizeof k_service);
  OPENSSL_cleanse(&k_signing, sizeof k_signing);
  out.signature = Hex(sig.d, sizeof sig.d);
  out.headers.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + scope +
                                                ", SignedHeaders=" + signed_names + ", Signature=" + out.signature);
  return out;
}

}  // namespace edgepipe::uploader
