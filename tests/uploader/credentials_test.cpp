// The credential chain: order, profiles, failures that name the place but never the secret.
#include "edgepipe/uploader/credentials.h"

#include <sys/stat.h>

#include <map>

#include "edgepipe/core/log.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;
using namespace edgepipe::testing;

namespace {

const char* kIni =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT01\n"
    "aws_secret_access_key = secret-default\n"
    "\n"
    "[profile field]\n"
    "aws_access_key_id=AKIDFIELD0002\n"
    "aws_secret_access_key=\"secret-field\"\n"
    "aws_session_token = token-field\n"
    "region = eu-west-1\n";

}  // namespace

TEST_GROUP(Credentials) {
  TempDir dir;
  ManualClock clock;
  std::map<std::string, std::string> env;

  CredentialEnvironment Env() {
    CredentialEnvironment e;
    e.getenv = [this](const char* n) -> std::optional<std::string> {
      auto it = env.find(n);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    return e;
  }
  Result<Credentials> Resolve(CredentialChainOptions o) { return CredentialChain(o, Env(), clock).Resolve(); }
  std::string Secret(const Credentials& c) { return std::string(c.secret_access_key->view()); }
};

TEST(Credentials, IniProfilesAndQuotes) {
  Result<Credentials> c = ParseCredentialsIni(kIni, "default", "f");
  CHECK_TRUE(c.ok());
  STRCMP_EQUAL("AKIDDEFAULT01", c->access_key_id.c_str());
  STRCMP_EQUAL("secret-default", Secret(*c).c_str());
  CHECK_FALSE(c->session_token);
  c = ParseCredentialsIni(kIni, "field", "f");
  CHECK_TRUE(c.ok());
  STRCMP_EQUAL("secret-field", Secret(*c).c_str());
  STRCMP_EQUAL("token-field", std::string(c->session_token->view()).c_str());
  STRCMP_EQUAL("f [field]", c->source.c_str());
  c = ParseCredentialsIni(kIni, "nope", "f");
  CHECK(c.status().code() == StatusCode::kNotFound);
  CHECK(c.status().message().find("no such profile") != std::string::npos);
}

TEST(Credentials, MalformedLinesAreReportedByNumberWithoutTheirContent) {
  Result<Credentials> c = ParseCredentialsIni("[default]\naws_access_key_id = A\nsecret-without-equals\n", "default", "f");
  CHECK(c.status().code() == StatusCode::kInvalidArgument);
  CHECK(c.status().message().find("line 3") != std::string::npos);
  CHECK(c.status().message().find("secret-without") == std::string::npos);
  c = ParseCredentialsIni("[default]\naws_access_key_id = A\n", "default", "f");
  CHECK(c.status().message().find("aws_secret_access_key is missing") != std::string::npos);
}

TEST(Credentials, ChainOrderConfigFileThenSystemdThenEnvironmentThenSharedFile) {
  WriteFile(dir.Join("cfg.ini"), "aws_access_key_id = AKIDCONFIG\naws_secret_access_key = s-config\n");
  WriteFile(dir.Join("creds/s3"), "[default]\naws_access_key_id = AKIDSYSTEMD\naws_secret_access_key = s-systemd\n");
  WriteFile(dir.Join("home/.aws/credentials"), kIni);
  env["CREDENTIALS_DIRECTORY"] = dir.Join("creds");
  env["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env["AWS_SECRET_ACCESS_KEY"] = "s-env";
  env["AWS_SESSION_TOKEN"] = "t-env";
  env["HOME"] = dir.Join("home");
  CredentialChainOptions o;
  o.credentials_file = dir.Join("cfg.ini");
  STRCMP_EQUAL("AKIDCONFIG", Resolve(o)->access_key_id.c_str());
  o.credentials_file = "";
  STRCMP_EQUAL("AKIDSYSTEMD", Resolve(o)->access_key_id.c_str());
  env.erase("CREDENTIALS_DIRECTORY");
  Result<Credentials> c = Resolve(o);
  STRCMP_EQUAL("AKIDENV", c->access_key_id.c_str());
  STRCMP_EQUAL("t-env", std::string(c->session_token->view()).c_str());
  env.erase("AWS_ACCESS_KEY_ID");
  env.erase("AWS_SECRET_ACCESS_KEY");
  STRCMP_EQUAL("AKIDDEFAULT01", Resolve(o)->access_key_id.c_str());
  env["AWS_PROFILE"] = "field";
  STRCMP_EQUAL("AKIDFIELD0002", Resolve(o)->access_key_id.c_str());
  o.profile = "default";  // the configured profile wins over $AWS_PROFILE
  STRCMP_EQUAL("AKIDDEFAULT01", Resolve(o)->access_key_id.c_str());
  env["AWS_SHARED_CREDENTIALS_FILE"] = dir.Join("cfg.ini");
  STRCMP_EQUAL("AKIDCONFIG", Resolve(o)->access_key_id.c_str());
}

TEST(Credentials, AConfiguredFileThatIsMissingIsAnErrorNotAFallThrough) {
  env["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env["AWS_SECRET_ACCESS_KEY"] = "s-env";
  CredentialChainOptions o;
  o.credentials_file = dir.Join("missing.ini");
  Result<Credentials> c = Resolve(o);
  CHECK(c.status().code() == StatusCode::kFailedPrecondition);
  CHECK(c.status().message().find(dir.Join("missing.ini")) != std::string::npos);
}

TEST(Credentials, HalfSetEnvironmentAndNothingFoundAreClearErrors) {
  env["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  CredentialChainOptions o;
  Result<Credentials> c = Resolve(o);
  CHECK(c.status().code() == StatusCode::kFailedPrecondition);
  CHECK(c.status().message().find("AWS_SECRET_ACCESS_KEY is not") != std::string::npos);
  env.clear();
  env["HOME"] = dir.Join("nohome");
  c = Resolve(o);
  CHECK(c.status().code() == StatusCode::kFailedPrecondition);
  const std::string& m = c.status().message();
  CHECK(m.find("upload.credentials_file (not set)") != std::string::npos);
  CHECK(m.find("$CREDENTIALS_DIRECTORY (not set)") != std::string::npos);
  CHECK(m.find("AWS_ACCESS_KEY_ID") != std::string::npos);
  CHECK(m.find(dir.Join("nohome/.aws/credentials")) != std::string::npos);
}

TEST(Credentials, CachedUntilInvalidatedOrRefreshed) {
  WriteFile(dir.Join("cfg.ini"), "aws_access_key_id = AKIDONE\naws_secret_access_key = s1\n");
  CredentialChainOptions o;
  o.credentials_file = dir.Join("cfg.ini");
  o.refresh_interval_us = 60'000'000;
  CredentialChain chain(o, Env(), clock);
  STRCMP_EQUAL("AKIDONE", chain.Get()->access_key_id.c_str());
  WriteFile(dir.Join("cfg.ini"), "aws_access_key_id = AKIDTWO\naws_secret_access_key = s2\n");
  STRCMP_EQUAL("AKIDONE", chain.Get()->access_key_id.c_str());
  chain.Invalidate();
  STRCMP_EQUAL("AKIDTWO", chain.Get()->access_key_id.c_str());
  WriteFile(dir.Join("cfg.ini"), "aws_access_key_id = AKIDTHREE\naws_secret_access_key = s3\n");
  clock.Advance(61'000'000);
  STRCMP_EQUAL("AKIDTHREE", chain.Get()->access_key_id.c_str());
}

TEST(Credentials, SecretsNeverReachTheLog) {
  std::string logged;
  SetLogSink([&](LogLevel, std::string_view c, std::string_view m) { logged += std::string(c) + ": " + std::string(m) + "\n"; });
  WriteFile(dir.Join("cfg.ini"), "aws_access_key_id = AKIDLOGTEST1\naws_secret_access_key = very-secret-1\naws_session_token = very-secret-2\n");
  chmod(dir.Join("cfg.ini").c_str(), 0644);
  CredentialChainOptions o;
  o.credentials_file = dir.Join("cfg.ini");
  CredentialChain chain(o, Env(), clock);
  Result<Credentials> c = chain.Get();
  SetLogSink(nullptr);
  CHECK_TRUE(c.ok());
  CHECK(logged.find("very-secret") == std::string::npos);
  CHECK(logged.find("TST1") != std::string::npos || logged.find("EST1") != std::string::npos);
  CHECK(logged.find("readable by every user") != std::string::npos);  // mode 0644 is flagged
  CHECK(c->Describe().find("very-secret") == std::string::npos);
}
