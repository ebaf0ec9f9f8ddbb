// libFuzzer target for the uploader's parsers of outside input: AWS credentials files, S3 error
// replies and HTTP dates, upload windows, and the encoders whose output goes into requests
// (metadata values must stay printable ASCII, URI-encoded keys only unreserved characters).
// Built and run by scripts/test.d/30-fuzz.sh (tests/fuzz/CMakeLists.txt) (clang-14, ASan + UBSan).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/s3_sink.h"
#include "edgepipe/uploader/schedule.h"
#include "edgepipe/uploader/sigv4.h"

using namespace edgepipe;
using namespace edgepipe::uploader;

namespace {
void Require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      const std::string profile = data[0] & 0x80 ? "field" : "default";
      Result<Credentials> c = ParseCredentialsIni(in, profile, "fuzz");
      if (c.ok()) Require(!c->access_key_id.empty() && !c->secret_access_key->empty());
      // A rejection never quotes a value from the file. Checked with a canary value (which no
      // message template contains) in front of the fuzzed text: comparing the message with the
      // whole input was wrong for inputs that are themselves a piece of a message.
      static const std::string kCanary = "c4n4ry-Q7vX-s3cr3t";
      const std::string key = data[0] & 0x40 ? "aws_secret_access_key" : "aws_session_token";
      Result<Credentials> k = ParseCredentialsIni(key + " = " + kCanary + "\n" + in, profile, "fuzz");
      if (!k.ok()) Require(k.status().message().find(kCanary) == std::string::npos);
      break;
    }
    case 1: {
      HttpResponse r;
      r.status = 300 + (data[0] >> 3) % 300;
      r.body = in;
      S3Error e = ParseS3Error(r);
      Status s = ClassifyS3Error(e, "PUT s3://b/k", "creds");
      Require(!s.ok());
      break;
    }
    case 2: {
      std::optional<int64_t> t = ParseHttpDate(in);
      if (t) Require(ParseHttpDate(FormatHttpDate(*t)) == t);
      break;
    }
    case 3: {
      std::string err = UploadWindows::Validate(in);
      Result<UploadWindows> w = UploadWindows::Parse({in}, false);
      Require(err.empty() == w.ok());
      if (w.ok()) {
        int64_t until = w->UntilOpenUs(static_cast<int64_t>(size) * 977'000'000);
        Require(until >= 0 && until <= 24LL * 3600 * 1'000'000);
      }
      break;
    }
    case 4: {
      for (unsigned char c : EncodeMetadataValue(in)) Require(c >= 0x20 && c < 0x7f);
      for (unsigned char c : UriEncode(in, true))
        Require(std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '%');
      break;
    }
  }
  return 0;
}
