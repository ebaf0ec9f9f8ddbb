#include "edgepipe/uploader/credentials.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "edgepipe/core/file_util.h"
#include "edgepipe/core/log.h"

namespace edgepipe::uploader {
namespace {

constexpr const char* kLog = "credentials";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Reads a whole file. kNotFound when absent, kFailedPrecondition when unreadable.
Result<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return NotFoundError(what + " " + path + " does not exist");
    return FailedPreconditionError("cannot read " + what + " " + path + ": " + std::strerror(err));
  }
  int err = 0;
  Result<std::string> text = ReadWholeFile(path, &err);
  if (!text.ok()) return FailedPreconditionError("cannot read " + what + " " + path + ": " + std::strerror(err));
  if (st.st_mode & S_IROTH)
    EP_LOG_WARN(kLog, "%s %s is readable by every user on this machine; restrict it: chmod 600 %s", what.c_str(),
                path.c_str(), path.c_str());
  return text;
}

}  // namespace

// ---- Secret ----

Secret::Secret(std::string_view value) {
  if (value.empty()) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  mapped_ = (value.size() + page - 1) / page * page;
  void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    // Out of address space: fall back to the heap (still wiped on release).
    mapped_ = 0;
    data_ = new char[value.size()];
  } else {
    data_ = static_cast<char*>(p);
    // Keep the secret out of core dumps; best effort (the call cannot fail on a fresh anonymous map).
    ::madvise(p, mapped_, MADV_DONTDUMP);
  }
  std::memcpy(data_, value.data(), value.size());
  size_ = value.size();
}

Secret::~Secret() {
  if (!data_) return;
  explicit_bzero(data_, size_);
  if (mapped_) ::munmap(data_, mapped_);
  else delete[] data_;
}

// ---- Credentials ----

std::string Credentials::Describe() const {
  std::string tail = access_key_id.size() > 4 ? access_key_id.substr(access_key_id.size() - 4) : access_key_id;
  return "access key id \xE2\x80\xA6" + tail + " from " + source + (session_token ? " (with session token)" : "");
}

Credentials MakeCredentials(std::string access_key_id, std::string_view secret, std::string_view session_token,
                            std::string source) {
  Credentials c;
  c.access_key_id = std::move(access_key_id);
  c.secret_access_key = std::make_shared<const Secret>(secret);
  if (!session_token.empty()) c.session_token = std::make_shared<const Secret>(session_token);
  c.source = std::move(source);
  return c;
}

Result<Credentials> ParseCredentialsIni(std::string_view text, const std::string& profile, const std::string& source) {
  std::string section;  // "" before any header
  bool profile_seen = false;
  std::string id, secret, token;
  bool have_id = false, have_secret = false, have_token = false;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return InvalidArgumentError(source + ", line " + std::to_string(line_no) + ": section header without ']'");
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.rfind("profile ", 0) == 0) name = Trim(name.substr(8));
      section = std::string(name);
      if (section == profile) profile_seen = true;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return InvalidArgumentError(source + ", line " + std::to_string(line_no) + ": expected 'name = value'");
    if (!section.empty() && section != profile) continue;
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    if (key == "aws_access_key_id") {
      id = std::string(value);
      have_id = true;
    } else if (key == "aws_secret_access_key") {
      secret = std::string(value);
      have_secret = true;
    } else if (key == "aws_session_token" || key == "aws_security_token") {
      token = std::string(value);
      have_token = true;
    }
  }
  std::string where = source + " [" + profile + "]";
  Status missing;
  if (!have_id && !have_secret) {
    missing = NotFoundError(where + ": " + (profile_seen ? "no aws_access_key_id / aws_secret_access_key in the profile"
                                                           : "no such profile"));
  } else if (!have_id || id.empty()) {
    missing = InvalidArgumentError(where + ": aws_secret_access_key is set but aws_access_key_id is missing or empty");
  } else if (!have_secret || secret.empty()) {
    missing = InvalidArgumentError(where + ": aws_access_key_id is set but aws_secret_access_key is missing or empty");
  }
  Credentials c;
  if (missing.ok()) c = MakeCredentials(id, secret, have_token ? token : "", where);
  explicit_bzero(secret.data(), secret.size());
  explicit_bzero(token.data(), token.size());
  if (!missing.ok()) return missing;
  return c;
}

// ---- CredentialChain ----

CredentialEnvironment CredentialEnvironment::Process() {
  CredentialEnvironment e;
  e.getenv = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
  return e;
}

CredentialChain::CredentialChain(CredentialChainOptions options, CredentialEnvironment env, Clock& clock)
    : opt_(std::move(options)), env_(std::move(env)), clock_(clock) {}

Result<Credentials> CredentialChain::Resolve() const {
  auto getenv = [&](const char* n) -> std::string {
    std::optional<std::string> v = env_.getenv ? env_.getenv(n) : std::nullopt;
    return v ? *v : "";
  };
  std::string profile = opt_.profile;
  if (profile.empty()) profile = getenv("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::vector<std::string> tried;

  // 1. The configured file: configured means required, so a typo does not fall through silently.
  if (!opt_.credentials_file.empty()) {
    Result<std::string> text = ReadSecretFile(opt_.credentials_file, "credentials file (upload.credentials_file)");
    if (!text.ok()) return FailedPreconditionError(text.status().message());
    Result<Credentials> c = ParseCredentialsIni(*text, profile, "credentials file " + opt_.credentials_file);
    std::string& t = *text;
    explicit_bzero(t.data(), t.size());
    if (!c.ok()) return FailedPreconditionError(c.status().message());
    return c;
  }
  tried.push_back("upload.credentials_file (not set)");

  // 2. systemd credentials.
  const std::string cred_dir = getenv("CREDENTIALS_DIRECTORY");
  if (!cred_dir.empty() && !opt_.credential_name.empty()) {
    const std::string path = cred_dir + "/" + opt_.credential_name;
    Result<std::string> text = ReadSecretFile(path, "systemd credential");
    if (text.ok()) {
      Result<Credentials> c = ParseCredentialsIni(*text, profile, "systemd credential " + opt_.credential_name);
      std::string& t = *text;
      explicit_bzero(t.data(), t.size());
      if (!c.ok()) return FailedPreconditionError(c.status().message());
      return c;
    }
    if (text.status().code() != StatusCode::kNotFound) return FailedPreconditionError(text.status().message());
    tried.push_back("$CREDENTIALS_DIRECTORY/" + opt_.credential_name + " (absent)");
  } else {
    tried.push_back("$CREDENTIALS_DIRECTORY (not set)");
  }

  // 3. Environment variables.
  std::string id = getenv("AWS_ACCESS_KEY_ID");
  std::string secret = getenv("AWS_SECRET_ACCESS_KEY");
  if (!id.empty() || !secret.empty()) {
    if (id.empty() || secret.empty()) {
      explicit_bzero(secret.data(), secret.size());
      return FailedPreconditionError(std::string("environment: ") +
                                     (id.empty() ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                                                 : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
    }
    std::string token = getenv("AWS_SESSION_TOKEN");
    Credentials c = MakeCredentials(id, secret, token, "environment (AWS_ACCESS_KEY_ID)");
    explicit_bzero(secret.data(), secret.size());
    explicit_bzero(token.data(), token.size());
    return c;
  }
  tried.push_back("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (not set)");

  // 4. Shared credentials file.
  std::string shared = getenv("AWS_SHARED_CREDENTIALS_FILE");
  if (shared.empty()) {
    std::string home = getenv("HOME");
    if (!home.empty()) shared = home + "/.aws/credentials";
  }
  if (!shared.empty()) {
    Result<std::string> text = ReadSecretFile(shared, "shared credentials file");
    if (text.ok()) {
      Result<Credentials> c = ParseCredentialsIni(*text, profile, "shared credentials file " + shared);
      std::string& t = *text;
      explicit_bzero(t.data(), t.size());
      if (!c.ok()) return FailedPreconditionError(c.status().message());
      return c;
    }
    if (text.status().code() != StatusCode::kNotFound) return FailedPreconditionError(text.status().message());
    tried.push_back(shared + " (absent)");
  }
  std::string msg = "no S3 credentials found; tried: ";
  for (size_t i = 0; i < tried.size(); ++i) msg += (i ? ", " : "") + tried[i];
  return FailedPreconditionError(msg + ". Set upload.credentials_file (see docs/s3.md)");
}

Result<Credentials> CredentialChain::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_.MonotonicNowUs();
  if (cached_ && now - cached_at_mono_us_ < opt_.refresh_interval_us) return *cached_;
  Result<Credentials> c = Resolve();
  if (!c.ok()) {
    cached_.reset();
    return c;
  }
  if (!cached_ || cached_->source != c->source || cached_->access_key_id != c->access_key_id)
    EP_LOG_INFO(kLog, "using %s", c->Describe().c_str());
  cached_ = *c;
  cached_at_mono_us_ = now;
  return c;
}

void CredentialChain::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  cached_.reset();
}

}  // namespace edgepipe::uploader
