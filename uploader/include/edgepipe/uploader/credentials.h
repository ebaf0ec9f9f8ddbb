// S3 credentials and where they come from. The chain, first match wins:
//   1. the configured credentials file (upload.credentials_file)          — must exist if configured
//   2. systemd's $CREDENTIALS_DIRECTORY/<upload.credential_name>          — LoadCredential=
//   3. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [/ AWS_SESSION_TOKEN]
//   4. the AWS shared credentials file ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
//      profile upload.profile, else $AWS_PROFILE, else "default"
// Files 1, 2 and 4 use the AWS INI format (aws_access_key_id, aws_secret_access_key,
// aws_session_token under [profile]; keys before any section header count for every profile).
//
// Secrets never appear in logs or error messages (only the source and the last 4 characters of
// the access key id), and live in memory excluded from core dumps (MADV_DONTDUMP) that is wiped
// when released.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "edgepipe/core/clock.h"
#include "edgepipe/core/status.h"

namespace edgepipe::uploader {

// An immutable secret in memory that is kept out of core dumps and zeroed when freed.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string_view value);
  ~Secret();
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  std::string_view view() const { return {data_, size_}; }
  bool empty() const { return size_ == 0; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

struct Credentials {
  std::string access_key_id;
  std::shared_ptr<const Secret> secret_access_key;
  std::shared_ptr<const Secret> session_token;  // null for long-term keys
  std::string source;                           // "credentials file /etc/edgepipe/s3.ini [default]"

  // "…WXYZ from <source>": what messages may say about the credentials.
  std::string Describe() const;
};

// Makes credentials from plain values (tests, benchmarks).
Credentials MakeCredentials(std::string access_key_id, std::string_view secret, std::string_view session_token = "",
                            std::string source = "static");

// Supplies credentials to the S3 sink. Thread-safe.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // Current credentials; kFailedPrecondition naming every place tried when none are found.
  virtual Result<Credentials> Get() = 0;
  // The server rejected the credentials: read them again on the next Get().
  virtual void Invalidate() {}
};

class StaticCredentials final : public CredentialProvider {
 public:
  explicit StaticCredentials(Credentials c) : c_(std::move(c)) {}
  Result<Credentials> Get() override { return c_; }

 private:
  Credentials c_;
};

// What the chain reads from the process environment, injectable for tests.
struct CredentialEnvironment {
  std::function<std::optional<std::string>(const char* name)> getenv;
  static CredentialEnvironment Process();  // getenv(3)
};

struct CredentialChainOptions {
  std::string credentials_file;           // 1. "" = not configured
  std::string credential_name = "s3";     // 2. file name under $CREDENTIALS_DIRECTORY
  std::string profile;                    // 4. "" = $AWS_PROFILE or "default"
  int64_t refresh_interval_us = 300'000'000;  // re-read at least this often (rotated temporary keys)
};

class CredentialChain final : public CredentialProvider {
 public:
  CredentialChain(CredentialChainOptions options, CredentialEnvironment env, Clock& clock);
  Result<Credentials> Get() override;
  void Invalidate() override;

  // Resolves the chain once, without caching.
  Result<Credentials> Resolve() const;

 private:
  CredentialChainOptions opt_;
  CredentialEnvironment env_;
  Clock& clock_;
  std::mutex mu_;
  std::optional<Credentials> cached_;
  int64_t cached_at_mono_us_ = 0;
};

// Parses an AWS INI credentials text for `profile`. kNotFound when the profile (or a key in
// it) is missing; kInvalidArgument on a malformed line (reported with its line number, never
// with its content).
Result<Credentials> ParseCredentialsIni(std::string_view text, const std::string& profile, const std::string& source);

}  // namespace edgepipe::uploader
