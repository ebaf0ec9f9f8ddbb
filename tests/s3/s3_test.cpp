// The S3 sink and the upload loop against a real radosgw (which checks SigV4 signatures, the
// payload hash and Content-MD5), with faults injected by a proxy in the test. Label: s3.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"
#include "edgepipe/uploader/compress.h"
#include "edgepipe/uploader/credentials.h"
#include "edgepipe/uploader/http.h"
#include "edgepipe/uploader/object.h"
#include "edgepipe/uploader/s3_sink.h"
#include "edgepipe/uploader/uploader.h"
#include "s3_support.h"
#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::uploader;
using namespace edgepipe::testing;
using nlohmann::json;

namespace {

const int64_t kBase = UsFromCivil(CivilTime{2026, 1, 5, 10, 0, 0, 0});

std::shared_ptr<CredentialProvider> Creds(const std::string& secret = kS3SecretKey) {
  return std::make_shared<StaticCredentials>(MakeCredentials(kS3AccessKey, secret, "", "test"));
}

std::unique_ptr<S3Sink> MakeSink(const std::string& endpoint, const std::string& bucket, Clock& clock = RealClock::Default(),
                                 std::shared_ptr<CredentialProvider> creds = Creds(), CurlTransportOptions t = {},
                                 Addressing addressing = Addressing::kPath) {
  S3Options o;
  o.bucket = bucket;
  o.endpoint = endpoint;
  o.addressing = addressing;
  o.probe_prefix = "probe-area";
  if (t.connect_timeout_us == CurlTransportOptions{}.connect_timeout_us) {
    t.connect_timeout_us = 2'000'000;
    t.stall_timeout_us = 3'000'000;
    t.request_timeout_us = 20'000'000;
  }
  return std::make_unique<S3Sink>(o, MakeCurlTransport(t), std::move(creds), clock);
}

Batch MakeBatch(uint64_t id, int n, int64_t start_us) {
  Batch b;
  b.id = id;
  b.name = "rt-" + std::to_string(id);
  b.partition_us = FloorToHour(start_us);
  for (int i = 0; i < n; ++i) {
    Reading r;
    r.sensor = "s" + std::to_string(i % 7);
    r.ts_us = start_us + i * 1000;
    r.value = i * 0.25;
    r.unit = "Cel";
    r.source = "test";
    b.readings.push_back(r);
  }
  b.quality.passed = b.quality.readings_in = static_cast<uint64_t>(n);
  return b;
}

ObjectBuilder Builder() {
  ObjectOptions oo;
  oo.context.device = "gw-s3";
  oo.prefix = "fleet";
  return ObjectBuilder(oo);
}

struct BucketContent {
  size_t objects = 0;
  std::vector<std::pair<std::string, std::string>> readings;  // (sensor, ts)
};

// Reads every object under `prefix` back with curl (independent client), decompresses and parses it.
BucketContent ReadBucket(const std::string& bucket, const std::string& prefix) {
  BucketContent c;
  for (const std::string& key : ListKeys(Rgw().http_endpoint(), bucket, prefix)) {
    ++c.objects;
    Result<std::string> raw = ZstdDecompress(GetObject(Rgw().http_endpoint(), bucket, key));
    CHECK_TRUE_TEXT(raw.ok(), key.c_str());
    std::stringstream ss(*raw);
    std::string line;
    while (std::getline(ss, line)) {
      json j = json::parse(line);
      c.readings.emplace_back(j["sensor"].get<std::string>(), j["ts"].get<std::string>());
    }
  }
  return c;
}

// A buffer holding `n` readings, one every `step_s` seconds from kBase.
std::unique_ptr<buffer::Store> FilledStore(const std::string& path, int n, int step_s = 1) {
  buffer::Options bo;
  bo.path = path;
  bo.sync = buffer::SyncMode::kNormal;
  bo.commit_interval_us = 5'000;
  Result<std::unique_ptr<buffer::Store>> s = buffer::Store::Open(bo);
  CHECK_TRUE_TEXT(s.ok(), s.status().ToString().c_str());
  std::vector<Reading> rs;
  for (int i = 0; i < n; ++i) {
    Reading r;
    r.sensor = "m" + std::to_string(i % 5);
    r.ts_us = kBase + static_cast<int64_t>(i) * step_s * 1'000'000;
    r.value = i;
    r.source = "test";
    rs.push_back(r);
    if (rs.size() == 250) {  // one chunk each: batches of 500 (two chunks) under FastRetries()
      CHECK_TRUE((*s)->Append(rs).ok());
      CHECK_TRUE((*s)->Flush().ok());
      rs.clear();
    }
  }
  if (!rs.empty()) CHECK_TRUE((*s)->Append(rs).ok());
  CHECK_TRUE((*s)->Flush().ok());
  return std::move(*s);
}

UploaderOptions FastRetries() {
  UploaderOptions o;
  o.policy.max_readings = 500;
  o.policy.max_age_us = 0;
  o.poll_interval_us = 20'000;
  o.retry_base_us = 50'000;
  o.retry_cap_us = 400'000;
  o.config_retry_us = 300'000;
  o.seed = 7;
  return o;
}

// Runs the upload loop until the buffer is empty (or the timeout passes).
bool RunUntilEmpty(Uploader& up, buffer::Store& store, int timeout_ms) {
  std::thread t([&] { up.Run(); });
  bool done = WaitUntil(timeout_ms, [&] {
    buffer::Stats s = store.GetStats();
    return s.pending_readings == 0 && s.claimed_batches == 0 && s.memory_readings == 0;
  });
  up.Stop();
  t.join();
  return done;
}

void ExpectEachReadingOnce(const BucketContent& c, size_t n) {
  LONGS_EQUAL(n, c.readings.size());
  std::set<std::pair<std::string, std::string>> uniq(c.readings.begin(), c.readings.end());
  LONGS_EQUAL(n, uniq.size());
}

}  // namespace

TEST_GROUP(S3Radosgw) {
  TempDir dir;
};

TEST(S3Radosgw, RoundTripOfRealDataReadBackAndCompared) {
  // Real readings: the NAB machine temperature series (timestamp,value).
  std::ifstream in(DataFile("nab/machine_temperature_system_failure.csv"));
  std::string line;
  std::getline(in, line);  // header
  Batch b;
  b.id = 1;
  b.name = "nab-0000000001";
  while (std::getline(in, line) && b.readings.size() < 2000) {
    size_t comma = line.find(',');
    Reading r;
    r.sensor = "machine_temperature";
    r.ts_us = *ParseIso8601(line.substr(0, comma));
    r.value = std::stod(line.substr(comma + 1));
    r.source = "nab";
    if (FloorToHour(r.ts_us) != FloorToHour(b.readings.empty() ? r.ts_us : b.readings[0].ts_us)) break;
    b.readings.push_back(r);
  }
  b.partition_us = FloorToHour(b.readings[0].ts_us);
  b.quality.passed = b.quality.readings_in = b.readings.size();
  const std::string bucket = Rgw().NewBucket("roundtrip");
  auto sink = MakeSink(Rgw().http_endpoint(), bucket);
  ObjectBuilder builder = Builder();
  Result<Object> obj = builder.Build(b);
  CHECK_TRUE(obj.ok());
  Result<PutResult> put = sink->Put(*obj);
  CHECK_TRUE_TEXT(put.ok(), put.status().ToString().c_str());
  // Read back with an independent client: the same bytes, a frame that decodes to the records.
  std::string back = GetObject(Rgw().http_endpoint(), bucket, obj->key);
  CHECK(back == obj->body);
  std::string ndjson;
  EncodeReadings(Format::kNdjson, builder.options().context, b, &ndjson);
  CHECK(*ZstdDecompress(back) == ndjson);
  // The ETag of a single PUT is the body's MD5; metadata came through.
  Result<HttpResponse> head = sink->Send("HEAD", obj->key);
  CHECK_TRUE(head.ok());
  LONGS_EQUAL(200, head->status);
  STRCMP_EQUAL(put->etag.c_str(), head->Header("etag").c_str());
  STRCMP_EQUAL(std::to_string(b.readings.size()).c_str(), head->Header("x-amz-meta-edgepipe-records").c_str());
  STRCMP_EQUAL("nab-0000000001", head->Header("x-amz-meta-edgepipe-batch").c_str());
  STRCMP_EQUAL(obj->metadata["edgepipe-first-ts"].c_str(), head->Header("x-amz-meta-edgepipe-first-ts").c_str());
  STRCMP_EQUAL(obj->metadata["edgepipe-quality"].c_str(), head->Header("x-amz-meta-edgepipe-quality").c_str());
  STRCMP_EQUAL("application/zstd", head->Header("content-type").c_str());
  // Deterministic keys: the same batch again overwrites the same object with the same bytes.
  CHECK_TRUE(sink->Put(*Builder().Build(b)).ok());
  LONGS_EQUAL(1, ListKeys(Rgw().http_endpoint(), bucket).size());
}

TEST(S3Radosgw, KeysThatNeedEncodingNonAsciiMetadataAndConnectionReuse) {
  const std::string bucket = Rgw().NewBucket("keys");
  auto sink = MakeSink(Rgw().http_endpoint(), bucket);
  Object o = *Builder().Build(MakeBatch(2, 10, kBase));
  o.key = "odd keys/a b+c=d&e$f@g,h;i:j(k)l!m*n'o~p/\xC3\xA9t\xC3\xA9.ndjson.zst";
  o.metadata["edgepipe-device"] = "g\xC3\xA4rtner";
  Result<PutResult> put = sink->Put(o);
  CHECK_TRUE_TEXT(put.ok(), put.status().ToString().c_str());
  std::vector<std::string> keys = ListKeys(Rgw().http_endpoint(), bucket);
  LONGS_EQUAL(1, keys.size());
  STRCMP_EQUAL(o.key.c_str(), keys[0].c_str());
  CHECK(GetObject(Rgw().http_endpoint(), bucket, o.key) == o.body);
  // Several requests on one transport reuse the connection.
  Result<HttpResponse> h1 = sink->Send("HEAD", o.key);
  Result<HttpResponse> h2 = sink->Send("HEAD", o.key);
  CHECK_TRUE(h1.ok() && h2.ok());
  CHECK_TRUE(h2->reused_connection);
  STRCMP_EQUAL("=?UTF-8?B?Z8OkcnRuZXI=?=", h2->Header("x-amz-meta-edgepipe-device").c_str());
}

TEST(S3Radosgw, VirtualHostedAddressing) {
  const std::string bucket = Rgw().NewBucket("vhost");
  // radosgw runs with rgw_dns_name = localhost; curl resolves *.localhost to loopback itself.
  auto sink = MakeSink("http://localhost:" + std::to_string(Rgw().http_port()), bucket, RealClock::Default(), Creds(), {},
                       Addressing::kVirtual);
  Object o = *Builder().Build(MakeBatch(3, 10, kBase));
  Result<PutResult> put = sink->Put(o);
  CHECK_TRUE_TEXT(put.ok(), put.status().ToString().c_str());
  CHECK(sink->ObjectUrl(o.key).rfind("http://" + bucket + ".localhost:", 0) == 0);
  CHECK(GetObject(Rgw().http_endpoint(), bucket, o.key) == o.body);
}

TEST(S3Radosgw, TlsIsVerifiedAgainstTheConfiguredCaAndCanBeSwitchedOffOnlyLoudly) {
  const std::string bucket = Rgw().NewBucket("tls");
  Object o = *Builder().Build(MakeBatch(4, 10, kBase));
  // The system store does not trust the test CA.
  Result<PutResult> r = MakeSink(Rgw().https_endpoint(), bucket)->Put(o);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK_TEXT(r.status().message().find("upload.ca_file") != std::string::npos, r.status().message().c_str());
  // With the CA file it works.
  CurlTransportOptions t;
  t.ca_file = Rgw().ca_file();
  r = MakeSink(Rgw().https_endpoint(), bucket, RealClock::Default(), Creds(), t)->Put(o);
  CHECK_TRUE_TEXT(r.ok(), r.status().ToString().c_str());
  // localhost is in the certificate too; a name that is not fails the host check.
  CurlTransportOptions off;
  off.tls_verify = false;
  std::string logged;
  SetLogSink([&](LogLevel l, std::string_view, std::string_view m) {
    if (l <= LogLevel::kWarning) logged += std::string(m) + "\n";
  });
  r = MakeSink(Rgw().https_endpoint(), bucket, RealClock::Default(), Creds(), off)->Put(o);
  SetLogSink(nullptr);
  CHECK_TRUE_TEXT(r.ok(), r.status().ToString().c_str());
  CHECK(logged.find("TLS CERTIFICATE VERIFICATION IS OFF") != std::string::npos);
}

TEST(S3Radosgw, WrongSecretIsAConfigurationProblemUntilTheFileIsFixed) {
  const std::string bucket = Rgw().NewBucket("secret");
  const std::string ini = dir.Join("s3.ini");
  WriteFile(ini, std::string("[default]\naws_access_key_id = ") + kS3AccessKey + "\naws_secret_access_key = not-the-secret\n");
  CredentialChainOptions co;
  co.credentials_file = ini;
  ManualClock mono_only(RealClock::Default().SystemNowUs(), 1);
  auto chain = std::make_shared<CredentialChain>(co, CredentialEnvironment{}, mono_only);
  auto sink = MakeSink(Rgw().http_endpoint(), bucket, RealClock::Default(), chain);
  Object o = *Builder().Build(MakeBatch(5, 10, kBase));
  Result<PutResult> r = sink->Put(o);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK_TEXT(r.status().message().find("SignatureDoesNotMatch") != std::string::npos, r.status().message().c_str());
  CHECK(r.status().message().find("not-the-secret") == std::string::npos);
  LONGS_EQUAL(0, ListKeys(Rgw().http_endpoint(), bucket).size());
  // Fixed on disk: the rejection invalidated the cached credentials, so the next try reads it.
  WriteFile(ini, std::string("[default]\naws_access_key_id = ") + kS3AccessKey + "\naws_secret_access_key = " + kS3SecretKey + "\n");
  r = sink->Put(o);
  CHECK_TRUE_TEXT(r.ok(), r.status().ToString().c_str());
  // An unknown key id and a missing bucket are configuration problems too.
  auto unknown = std::make_shared<StaticCredentials>(MakeCredentials("NOSUCHKEY", "x"));
  r = MakeSink(Rgw().http_endpoint(), bucket, RealClock::Default(), unknown)->Put(o);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find("InvalidAccessKeyId") != std::string::npos);
  r = MakeSink(Rgw().http_endpoint(), "t-no-such-bucket")->Put(o);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find("NoSuchBucket") != std::string::npos);
}

TEST(S3Radosgw, TheServerRejectsABodyThatDoesNotMatchItsDigests) {
  const std::string bucket = Rgw().NewBucket("digest");
  auto sink = MakeSink(Rgw().http_endpoint(), bucket);
  Object o = *Builder().Build(MakeBatch(6, 10, kBase));
  Object corrupt = o;
  corrupt.body[corrupt.body.size() / 2] ^= 0x01;  // changed after the digests were taken
  Result<PutResult> r = sink->Put(corrupt);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_TEXT(r.status().message().find("HTTP 400") != std::string::npos, r.status().message().c_str());
  // Content-MD5 alone is checked too.
  Object bad_md5 = o;
  bad_md5.md5_base64 = Md5Base64("something else");
  r = sink->Put(bad_md5);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_TEXT(r.status().message().find("BadDigest") != std::string::npos, r.status().message().c_str());
  LONGS_EQUAL(0, ListKeys(Rgw().http_endpoint(), bucket).size());
}

TEST(S3Radosgw, ClockSkewIsCorrectedFromTheDateHeader) {
  const std::string bucket = Rgw().NewBucket("skew");
  // The device clock is two hours behind; radosgw allows 15 minutes.
  ManualClock skewed(RealClock::Default().SystemNowUs() - 2 * 3'600'000'000LL, 1'000'000);
  auto sink = MakeSink(Rgw().http_endpoint(), bucket, skewed);
  std::string logged;
  SetLogSink([&](LogLevel, std::string_view, std::string_view m) { logged += std::string(m) + "\n"; });
  Result<PutResult> r = sink->Put(*Builder().Build(MakeBatch(7, 10, kBase)));
  SetLogSink(nullptr);
  CHECK_TRUE_TEXT(r.ok(), r.status().ToString().c_str());
  const int64_t corr = sink->ClockCorrectionUs();
  CHECK_TEXT(corr > 2 * 3'600'000'000LL - 5'000'000 && corr < 2 * 3'600'000'000LL + 5'000'000, std::to_string(corr).c_str());
  CHECK(logged.find("device clock is off by +7") != std::string::npos);
  LONGS_EQUAL(1, ListKeys(Rgw().http_endpoint(), bucket).size());
}

TEST(S3Radosgw, ProbeReportsWhatWorks) {
  const std::string bucket = Rgw().NewBucket("probe");
  ProbeReport p = MakeSink(Rgw().http_endpoint(), bucket)->Probe();
  CHECK_TRUE(p.ran);
  CHECK_TRUE_TEXT(p.put.ok(), p.summary.c_str());
  CHECK_TRUE_TEXT(p.head.ok(), p.summary.c_str());
  CHECK_TRUE_TEXT(p.del.ok(), p.summary.c_str());
  CHECK_TRUE(p.clock_skew_us.has_value());
  CHECK(std::llabs(*p.clock_skew_us) < 3'000'000);
  LONGS_EQUAL(0, ListKeys(Rgw().http_endpoint(), bucket).size());  // the probe object is gone
  ProbeReport bad = MakeSink(Rgw().http_endpoint(), bucket, RealClock::Default(), Creds("wrong"))->Probe();
  CHECK(bad.put.code() == StatusCode::kFailedPrecondition);
  CHECK(bad.summary.find("uploads will fail") != std::string::npos);
}

TEST(S3Radosgw, ErrorsAndStallsInjectedByAProxyLoseNothingAndDuplicateNothing) {
  const std::string bucket = Rgw().NewBucket("faults");
  FaultProxy proxy(Rgw().http_port());
  using R = FaultProxy::Rule;
  using F = FaultProxy::Fault;
  proxy.Add(R::Status(500, "InternalError", 3));
  proxy.Add(R::Status(503, "SlowDown", 3));
  proxy.Add(R::Timed(F::kStall, 2, 60'000));  // cut by the client's 3 s stall timeout
  proxy.Add(R::Timed(F::kReset, 2, 0));
  proxy.Add(R::Status(429, "TooManyRequests", 1));
  proxy.Add(R::Timed(F::kDelay, 2, 500));
  auto store = FilledStore(dir.Join("buffer.db"), 6000);
  auto sink = MakeSink(proxy.endpoint(), bucket);
  UploaderOptions o = FastRetries();
  o.concurrency = 3;
  o.probe = false;
  Uploader up(*store, Builder(), *sink, RealClock::Default(), o);
  CHECK_TRUE(RunUntilEmpty(up, *store, 90'000));
  UploaderStats st = up.stats();
  CHECK(st.failures >= 10);  // every injected fault was seen and retried
  LONGS_EQUAL(6000, st.readings);
  ExpectEachReadingOnce(ReadBucket(bucket, "fleet/"), 6000);
  LONGS_EQUAL(st.objects, ListKeys(Rgw().http_endpoint(), bucket).size());
  LONGS_EQUAL(6000, store->GetStats().readings_acked);
}

TEST(S3Radosgw, ServerDownForAWhileThenEverythingIsDeliveredOnce) {
  const std::string bucket = Rgw().NewBucket("down");
  FaultProxy proxy(Rgw().http_port());
  proxy.Down();
  auto store = FilledStore(dir.Join("buffer.db"), 3000, 3);  // 10:00 to 12:30: three partitions
  auto sink = MakeSink(proxy.endpoint(), bucket);
  UploaderOptions o = FastRetries();
  o.concurrency = 2;
  Uploader up(*store, Builder(), *sink, RealClock::Default(), o);
  std::thread t([&] { up.Run(); });
  CHECK_TRUE(WaitUntil(10'000, [&] { return up.stats().failures >= 5; }));
  LONGS_EQUAL(0, up.stats().objects);
  LONGS_EQUAL(3000, store->GetStats().pending_readings + store->GetStats().claimed_readings);
  proxy.Up();
  bool empty = WaitUntil(60'000, [&] {
    buffer::Stats s = store->GetStats();
    return s.pending_readings == 0 && s.claimed_batches == 0;
  });
  up.Stop();
  t.join();
  CHECK_TRUE(empty);
  ExpectEachReadingOnce(ReadBucket(bucket, "fleet/"), 3000);
  // The backlog went out oldest first: batches are claimed in time order, so a batch with a
  // higher id never holds an older hour. (The order of the PUTs themselves depends on each
  // in-flight upload's retry timer and is not asserted.)
  std::vector<std::pair<long, int>> delivered;  // (batch id, hour)
  for (const FaultProxy::Seen& s : proxy.seen()) {
    if (s.method != "PUT" || s.answered != 200) continue;
    const size_t at = s.target.find("/gw-s3-");
    const size_t h = s.target.find("hour%3D");
    if (at == std::string::npos || h == std::string::npos) continue;
    const size_t dash = s.target.find('-', at + 7);
    delivered.emplace_back(std::stol(s.target.substr(dash + 1, 10)), std::stoi(s.target.substr(h + 7, 2)));
  }
  CHECK(delivered.size() >= 3);
  std::sort(delivered.begin(), delivered.end());
  for (size_t i = 1; i < delivered.size(); ++i) CHECK(delivered[i - 1].second <= delivered[i].second);
  CHECK_EQUAL(10, delivered.front().second);
  CHECK_EQUAL(12, delivered.back().second);
}

TEST(S3Radosgw, ABatchTheServerRefusesIsSetAsideAndTheRestIsDelivered) {
  const std::string bucket = Rgw().NewBucket("poison");
  FaultProxy proxy(Rgw().http_port());
  // Every PUT of batch 2 is refused as too large; probes and other batches pass.
  proxy.Add(FaultProxy::Rule::Status(400, "EntityTooLarge", -1, "-0000000002.ndjson"));
  auto store = FilledStore(dir.Join("buffer.db"), 2000);
  const std::string instance = store->instance_id();
  auto sink = MakeSink(proxy.endpoint(), bucket);
  UploaderOptions o = FastRetries();
  o.poison_retry_budget = 3;
  o.set_aside_dir = dir.Join("set-aside");
  Uploader up(*store, Builder(), *sink, RealClock::Default(), o);
  CHECK_TRUE(RunUntilEmpty(up, *store, 60'000));
  UploaderStats st = up.stats();
  LONGS_EQUAL(1, st.set_aside_objects);
  LONGS_EQUAL(500, st.set_aside_records);
  LONGS_EQUAL(1500, st.readings);
  LONGS_EQUAL(3, proxy.Count("PUT", "-0000000002.ndjson"));  // exactly the budget
  BucketContent c = ReadBucket(bucket, "fleet/");
  ExpectEachReadingOnce(c, 1500);
  // The refused object is on local disk, byte for byte what was sent.
  std::vector<std::string> aside = ListFiles(dir.Join("set-aside"));
  LONGS_EQUAL(2, aside.size());
  std::string obj_path = aside[0].find(".reason.json") == std::string::npos ? aside[0] : aside[1];
  CHECK(obj_path.find(instance + "-0000000002.ndjson.zst") != std::string::npos);
  std::string body = ReadFile(dir.Join("set-aside/" + obj_path));
  std::string refused_sha;
  for (const auto& seen : proxy.seen())
    if (seen.target.find("-0000000002.ndjson") != std::string::npos) refused_sha = seen.body_sha256;
  STRCMP_EQUAL(refused_sha.c_str(), Sha256Hex(body).c_str());
  CHECK(ReadFile(dir.Join("set-aside/" + obj_path + ".reason.json")).find("EntityTooLarge") != std::string::npos);
}
