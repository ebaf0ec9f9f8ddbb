// The built `edgepipe` binary uploading to a real radosgw: a wrong secret keeps the data until it
// is fixed, kill -9 in the middle of uploads re-sends the same key and bytes without duplicating
// a reading, and Debian's awscli (an independent client) reads the objects back. Label: s3.
#include <signal.h>
#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edgepipe/uploader/compress.h"
#include "edgepipe/uploader/object.h"
#include "s3_support.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::testing;
using nlohmann::json;

namespace {

std::string Ini(const std::string& secret) {
  return std::string("[default]\naws_access_key_id = ") + kS3AccessKey + "\naws_secret_access_key = " + secret + "\n";
}

void WriteSecretFile(const std::string& path, const std::string& content) {
  WriteFile(path, content);
  chmod(path.c_str(), 0600);
}

std::string Config(const std::string& dir, const std::string& bucket, const std::string& endpoint,
                   const std::string& upload_extra = "") {
  return "[device]\nid = \"e2e-s3\"\n"
         "[agent]\nstatus_interval = \"1s\"\nshutdown_timeout = \"20s\"\n"
         "[buffer]\npath = \"" + dir + "/buffer.db\"\ncommit_interval = \"50ms\"\n"
         "[batch]\nmax_readings = 200\nmax_age = \"300ms\"\n"
         "[upload]\nurl = \"s3://" + bucket + "/fleet\"\nendpoint = \"" + endpoint + "\"\n"
         "credentials_file = \"" + dir + "/s3.ini\"\npoll_interval = \"50ms\"\nretry_base = \"100ms\"\nretry_cap = \"1s\"\n"
         "config_retry = \"1s\"\n" + upload_extra +
         "[[source]]\ntype = \"simulator\"\nname = \"sim\"\nsensor_count = 4\ninterval = \"20ms\"\nseed = 3\n";
}

struct Readings {
  size_t objects = 0;
  std::vector<std::string> ids;   // every record's full text
  std::vector<std::string> keys;  // the object each came from
  // Records found in more than one object: what a re-delivery under another key would cause.
  // (Identical records inside one object are the source's: the simulator stamps the ticks it
  // catches up on after a stall with the same millisecond, and one object is one batch.)
  size_t InSeveralObjects() const {
    std::map<std::string, std::set<std::string>> where;
    for (size_t i = 0; i < ids.size(); ++i) where[ids[i]].insert(keys[i]);
    size_t n = 0;
    for (const auto& [id, ks] : where)
      if (ks.size() > 1) {
        fprintf(stderr, "record in %zu objects: %s\n", ks.size(), id.c_str());
        ++n;
      }
    return n;
  }
};

Readings Parse(const std::map<std::string, std::string>& objects) {
  Readings r;
  for (const auto& [key, body] : objects) {
    ++r.objects;
    Result<std::string> raw = uploader::ZstdDecompress(body);
    CHECK_TRUE_TEXT(raw.ok(), key.c_str());
    std::stringstream ss(*raw);
    std::string line;
    while (std::getline(ss, line)) {
      json j = json::parse(line);
      CHECK(j.contains("sensor") && j.contains("ts"));
      r.ids.push_back(line);
      r.keys.push_back(key);
    }
  }
  return r;
}

std::map<std::string, std::string> BucketObjects(const std::string& bucket) {
  std::map<std::string, std::string> out;
  for (const std::string& k : ListKeys(Rgw().http_endpoint(), bucket, "fleet/device="))
    out[k] = GetObject(Rgw().http_endpoint(), bucket, k);
  return out;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The object key in a proxied request target "/bucket/fleet/device%3D...".
std::string KeyOf(const std::string& target) { return PercentDecode(target.substr(target.find("/fleet/") + 1)); }

json AgentStatus(const std::string& config) {
  ProcessResult st = RunProcess({EdgepipeBinary(), "status", "-c", config, "--json"});
  LONGS_EQUAL(0, st.exit_code);
  return json::parse(st.out);
}

}  // namespace

TEST_GROUP(S3EndToEnd) {
  TempDir dir;
};

TEST(S3EndToEnd, WrongSecretKeepsTheDataUntilItIsFixedAndAwsCliReadsEverythingBack) {
  const std::string bucket = Rgw().NewBucket("e2e-secret");
  WriteSecretFile(dir.Join("s3.ini"), Ini("wrong-secret"));
  const std::string cfg = dir.Join("edgepipe.toml");
  WriteFile(cfg, Config(dir.path(), bucket, Rgw().http_endpoint()));
  Child agent({EdgepipeBinary(), "run", "-c", cfg, "--summary-json", dir.Join("summary.json")}, {}, dir.Join("out.log"),
              dir.Join("err.log"));
  CHECK_TRUE(WaitUntil(20'000, [&] { return ReadFile(dir.Join("err.log")).find("SignatureDoesNotMatch") != std::string::npos; }));
  const std::string log1 = ReadFile(dir.Join("err.log"));
  CHECK(log1.find("probe of s3://" + bucket) != std::string::npos);
  CHECK(log1.find("uploads will fail") != std::string::npos);
  CHECK(log1.find("wrong-secret") == std::string::npos);
  CHECK(log1.find(kS3AccessKey) == std::string::npos);  // only "…TKEY"
  // Nothing reached the bucket; the readings wait in the buffer.
  LONGS_EQUAL(0, ListKeys(Rgw().http_endpoint(), bucket).size());
  CHECK_TRUE(WaitUntil(10'000, [&] {
    json s = AgentStatus(cfg);
    return s["pending_readings"].get<uint64_t>() + s["claimed_readings"].get<uint64_t>() > 400;
  }));
  // Fix the secret on disk, without restarting: the next retry reads it again.
  WriteSecretFile(dir.Join("s3.ini"), Ini(kS3SecretKey));
  CHECK_TRUE(WaitUntil(20'000, [&] { return ListKeys(Rgw().http_endpoint(), bucket).size() >= 3; }));
  agent.Signal(SIGTERM);
  LONGS_EQUAL(0, agent.Wait(30'000));
  json summary = json::parse(ReadFile(dir.Join("summary.json")));
  const uint64_t accepted = summary["readings"]["accepted"].get<uint64_t>();
  CHECK(accepted > 400);
  json st = AgentStatus(cfg);
  LONGS_EQUAL(0, st["pending_readings"].get<uint64_t>());
  LONGS_EQUAL(accepted, st["readings_acked"].get<uint64_t>());

  // Read back with Debian's awscli (not the pip one first on PATH).
  const std::vector<std::string> env = {"AWS_ACCESS_KEY_ID=" + std::string(kS3AccessKey),
                                        "AWS_SECRET_ACCESS_KEY=" + std::string(kS3SecretKey),
                                        "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
                                        "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
                                        "HOME=" + dir.path()};
  ProcessResult cp = RunProcess({"/usr/bin/aws", "--endpoint-url", Rgw().http_endpoint(), "s3", "cp", "--recursive",
                                 "--only-show-errors", "--exclude", ".edgepipe-probe/*", "s3://" + bucket + "/fleet/",
                                 dir.Join("download")},
                                env, 120);
  LONGS_EQUAL_TEXT(0, cp.exit_code, (cp.out + cp.err).c_str());
  std::map<std::string, std::string> downloaded;
  for (const std::string& rel : ListFiles(dir.Join("download"))) {
    CHECK(rel.find("device=e2e-s3/date=") == 0);
    CHECK(rel.find(".ndjson.zst") != std::string::npos);
    downloaded[rel] = ReadFile(dir.Join("download/" + rel));
    // Every object is a complete zstd frame with a checksum the zstd tool verifies on its own.
    LONGS_EQUAL(0, RunProcess({"zstd", "-tq", dir.Join("download/" + rel)}).exit_code);
  }
  Readings r = Parse(downloaded);
  LONGS_EQUAL(accepted, r.ids.size());
  LONGS_EQUAL(0, r.InSeveralObjects());
  // The metadata awscli sees matches the content.
  const std::string first = downloaded.begin()->first;
  ProcessResult head = RunProcess({"/usr/bin/aws", "--endpoint-url", Rgw().http_endpoint(), "s3api", "head-object",
                                   "--bucket", bucket, "--key", "fleet/" + first, "--output", "json"},
                                  env, 60);
  LONGS_EQUAL_TEXT(0, head.exit_code, head.err.c_str());
  json h = json::parse(head.out);
  Readings one = Parse({{first, downloaded[first]}});
  STRCMP_EQUAL(std::to_string(one.ids.size()).c_str(), h["Metadata"]["edgepipe-records"].get<std::string>().c_str());
  STRCMP_EQUAL("readings", h["Metadata"]["edgepipe-kind"].get<std::string>().c_str());
  STRCMP_EQUAL("e2e-s3", h["Metadata"]["edgepipe-device"].get<std::string>().c_str());
}

TEST(S3EndToEnd, KillDuringUploadsResendsTheSameKeyAndBytesWithoutDuplicateReadings) {
  const std::string bucket = Rgw().NewBucket("e2e-kill");
  WriteSecretFile(dir.Join("s3.ini"), Ini(kS3SecretKey));
  FaultProxy proxy(Rgw().http_port());
  const std::string cfg = dir.Join("edgepipe.toml");
  // One upload at a time, and no client-side stall timeout inside the test's window.
  WriteFile(cfg, Config(dir.path(), bucket, proxy.endpoint(), "concurrency = 1\nstall_timeout = \"60s\"\n"));
  auto run = [&](const std::string& tag) {
    return std::make_unique<Child>(std::vector<std::string>{EdgepipeBinary(), "run", "-c", cfg}, std::vector<std::string>{},
                                   dir.Join(tag + ".out"), dir.Join(tag + ".err"));
  };
  auto stalled = [&](const std::string& after_first) {
    for (const auto& s : proxy.seen())
      if (s.method == "PUT" && s.target.find("/fleet/device%3D") != std::string::npos && s.answered == 0 &&
          s.target != after_first)
        return s;
    return FaultProxy::Seen{};
  };

  // Window 1: the server stored the object, the agent is killed before it saw the reply.
  // (Batch objects only: the start-up probe writes under fleet/.edgepipe-probe/.)
  proxy.Add(FaultProxy::Rule::Timed(FaultProxy::Fault::kStallReply, 1, 120'000, "/fleet/device%3D"));
  auto a1 = run("run1");
  CHECK_TRUE(WaitUntil(20'000, [&] { return !stalled("").target.empty(); }));
  FaultProxy::Seen w1 = stalled("");
  LONGS_EQUAL(200, w1.upstream);
  const std::string key1 = KeyOf(w1.target);
  a1->Signal(SIGKILL);
  LONGS_EQUAL(-SIGKILL, a1->Wait(10'000));
  proxy.ReleaseStalls();
  size_t puts_before = proxy.Count("PUT", w1.target);
  LONGS_EQUAL(1, puts_before);

  // Window 2 (second run): the agent is killed while the PUT of the next batch has not reached
  // the server. Batch names end in a 10-digit number; the next batch has the next one.
  const size_t dot = key1.rfind(".ndjson");
  const uint64_t n1 = std::stoull(key1.substr(dot - 10, 10));
  char next[32];
  snprintf(next, sizeof next, "-%010llu.ndjson", static_cast<unsigned long long>(n1 + 1));
  proxy.Add(FaultProxy::Rule::Timed(FaultProxy::Fault::kStall, 1, 120'000, next));
  auto a2 = run("run2");
  CHECK_TRUE(WaitUntil(20'000, [&] { return proxy.Count("PUT", w1.target) >= 2; }));
  CHECK_TRUE(WaitUntil(20'000, [&] { return !stalled(w1.target).target.empty(); }));
  FaultProxy::Seen w2 = stalled(w1.target);
  LONGS_EQUAL(0, w2.upstream);
  a2->Signal(SIGKILL);
  LONGS_EQUAL(-SIGKILL, a2->Wait(10'000));
  proxy.ReleaseStalls();

  // Third run: let it deliver, then stop it cleanly (drain).
  auto a3 = run("run3");
  CHECK_TRUE(WaitUntil(20'000, [&] { return proxy.Count("PUT", w2.target) >= 2; }));
  CHECK_TRUE(WaitUntil(5'000, [&] { return ListKeys(Rgw().http_endpoint(), bucket, "fleet/device=").size() >= 4; }));
  a3->Signal(SIGTERM);
  LONGS_EQUAL(0, a3->Wait(30'000));

  // Each interrupted batch was sent again under the same key with the same bytes.
  for (const FaultProxy::Seen& w : {w1, w2}) {
    std::vector<std::string> shas;
    for (const auto& s : proxy.seen())
      if (s.method == "PUT" && s.target == w.target) shas.push_back(s.body_sha256);
    CHECK_TEXT(shas.size() >= 2, w.target.c_str());
    for (const auto& sha : shas) STRCMP_EQUAL(w.body_sha256.c_str(), sha.c_str());
  }
  std::map<std::string, std::string> objects = BucketObjects(bucket);
  CHECK(objects.count(key1) == 1);
  STRCMP_EQUAL(w1.body_sha256.c_str(), uploader::Sha256Hex(objects[key1]).c_str());
  const std::string key2 = KeyOf(w2.target);
  CHECK(objects.count(key2) == 1);
  STRCMP_EQUAL(w2.body_sha256.c_str(), uploader::Sha256Hex(objects[key2]).c_str());
  // No reading twice in the bucket, and every acknowledged reading is there.
  Readings r = Parse(objects);
  LONGS_EQUAL(0, r.InSeveralObjects());
  json st = AgentStatus(cfg);
  LONGS_EQUAL(0, st["pending_readings"].get<uint64_t>());
  LONGS_EQUAL(st["readings_acked"].get<uint64_t>(), r.ids.size());
}
