// When the buffer refuses what validation passed (full with on_full = "reject_new", a commit
// error), the source keeps its readings and sends them again. The validator must then forget the
// refused call (Validator::Forget, called by Ingest): otherwise the retry is dropped as an exact
// duplicate of readings that were never stored — silent loss — or misjudged as going backwards or
// stuck against its own first attempt.
#include <memory>
#include <random>

#include "edgepipe/agent/agent.h"
#include "edgepipe/buffer/store.h"
#include "test_util.h"
#include "vtest.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe;
using namespace edgepipe::agent;
using namespace edgepipe::testing;
using namespace edgepipe::vtest;

namespace {

const char* kRules = R"(
[validation.default]
backwards = "reject"
stuck = { count = 4, action = "flag" }
rate_of_change = { max = 5, action = "flag" }
spike = { window = 5, threshold = 3, min_scale = 0.5, action = "reject" }
range = { min = -50, max = 50 }
)";

// Two sensors, one reading a second each, a repeated value now and then (stuck runs), a jump
// now and then (rate, spike), and an out-of-range value now and then.
std::vector<Reading> Series(uint64_t seed, int64_t t0, int n) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 19);
  std::vector<Reading> out;
  double v[2] = {10, 20};
  for (int i = 0; i < n; ++i) {
    for (int s = 0; s < 2; ++s) {
      const int k = pick(rng);
      if (k < 4) {
      } else if (k == 4) {
        v[s] += 30;
      } else if (k == 5) {
        v[s] = 99;
      } else {
        v[s] = (s ? 20 : 10) + pick(rng) * 0.1;
      }
      out.push_back(R(s ? "b" : "a", t0 + i * kSec, v[s]));
    }
  }
  return out;
}

bool Same(const Out& x, const Out& y) {
  if (x.passed.size() != y.passed.size() || x.rejected.size() != y.rejected.size()) return false;
  for (size_t i = 0; i < x.passed.size(); ++i)
    if (!(x.passed[i] == y.passed[i]) || x.passed[i].quality != y.passed[i].quality) return false;
  for (size_t i = 0; i < x.rejected.size(); ++i)
    if (x.rejected[i].rule != y.rejected[i].rule || x.rejected[i].reason != y.rejected[i].reason) return false;
  return true;
}

std::string Dump(const ValidationStats& s) {
  std::string out = std::to_string(s.received) + "/" + std::to_string(s.passed) + "/" + std::to_string(s.flagged) +
                    "/" + std::to_string(s.duplicates_dropped);
  for (const auto& [k, n] : s.rejected) out += " r:" + k + "=" + std::to_string(n);
  for (const auto& [k, n] : s.flags) out += " f:" + k + "=" + std::to_string(n);
  return out;
}

// The real buffer, refusing appends or quarantine records while told to (as a full buffer with
// on_full = "reject_new" does).
class RefusingBuffer final : public ReadingSink {
 public:
  explicit RefusingBuffer(ReadingSink& real) : real_(real) {}
  int refuse_appends = 0;
  int refuse_quarantine = 0;
  Result<uint64_t> Append(std::span<const Reading> r) override { return AppendWithState(r, {}); }
  Result<uint64_t> AppendWithState(std::span<const Reading> r, const SourceState& s) override {
    if (refuse_appends > 0) {
      --refuse_appends;
      return Status(StatusCode::kResourceExhausted, "buffer full (on_full = reject_new)");
    }
    return real_.AppendWithState(r, s);
  }
  Result<std::optional<std::string>> LoadState(const std::string& key) override { return real_.LoadState(key); }
  Status WaitDurable(uint64_t ticket) override { return real_.WaitDurable(ticket); }
  Result<uint64_t> Quarantine(const QuarantineRecord& q) override {
    if (refuse_quarantine > 0) {
      --refuse_quarantine;
      return Status(StatusCode::kResourceExhausted, "buffer full (on_full = reject_new)");
    }
    return real_.Quarantine(q);
  }
  Result<uint64_t> RecordGap(const GapRecord& g) override { return real_.RecordGap(g); }

 private:
  ReadingSink& real_;
};

std::vector<Reading> Drain(buffer::Store& store) {
  CHECK_TRUE(store.Flush().ok());
  std::vector<Reading> out;
  while (true) {
    auto b = store.LeaseBatch(BatchPolicy{}, true);
    CHECK_TRUE(b.ok());
    if (!b->has_value()) break;
    out.insert(out.end(), (*b)->readings.begin(), (*b)->readings.end());
    CHECK_TRUE(store.AckBatch((*b)->id, DeliveryReceipt{}).ok());
  }
  return out;
}

}  // namespace

TEST_GROUP(Forget){};

TEST(Forget, WithoutItARetryIsDroppedAsAnExactDuplicate) {
  // The loss this guards against: the same readings processed twice, the first result thrown
  // away, come out as nothing the second time.
  ManualClock clock(kT0);
  Validator v(ParseValidation(""), clock);
  Out first = Run(v, {R("t", kT0, 1), R("t", kT0 + kSec, 2)});
  LONGS_EQUAL(2, first.passed.size());
  Out retry = Run(v, {R("t", kT0, 1), R("t", kT0 + kSec, 2)});
  LONGS_EQUAL(0, retry.passed.size());
  LONGS_EQUAL(2, v.stats().duplicates_dropped);
}

TEST(Forget, ARetryAfterForgetIsJudgedExactlyAsTheFirstAttempt) {
  ManualClock clock(kT0 + 3600 * kSec);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<Reading> before = Series(seed, kT0, 40);
    const std::vector<Reading> batch = Series(seed + 1000, kT0 + 40 * kSec, 30);
    // Reference: the batch processed once.
    Validator ref(ParseValidation(kRules), clock);
    Run(ref, before);
    Out want = Run(ref, batch);
    // The batch processed, refused by the buffer, forgotten, and sent again.
    Validator v(ParseValidation(kRules), clock);
    Run(v, before);
    Out refused = Run(v, batch);
    CHECK_TRUE(Same(want, refused));
    v.Forget();
    Out retry = Run(v, batch);
    if (!Same(want, retry)) FAIL(("seed " + std::to_string(seed) + ": the retry was judged differently").c_str());
    STRCMP_EQUAL(Dump(ref.stats()).c_str(), Dump(v.stats()).c_str());
    // Per-sensor counters too.
    auto a = ref.SensorReport(), b = v.SensorReport();
    LONGS_EQUAL(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) STRCMP_EQUAL(Dump({a[i].counters}).c_str(), Dump({b[i].counters}).c_str());
    // Then both go on alike.
    const std::vector<Reading> after = Series(seed + 2000, kT0 + 70 * kSec, 20);
    CHECK_TRUE(Same(Run(ref, after), Run(v, after)));
  }
}

TEST(Forget, TheDuplicateWindowComesBackEvenWhenTheRefusedCallOverwroteItSeveralTimes) {
  // The window of recent (timestamp, sequence, value) per sensor is put back slot by slot: a
  // refused call of more readings than the window holds wraps it more than once. After Forget,
  // a reading from before that call is again an exact duplicate (dropped) and one with another
  // value a conflicting duplicate, exactly as for a validator that never saw the refused call.
  ManualClock clock(kT0 + 3600 * kSec);
  for (const char* by : {"timestamp", "sequence", "either"}) {
    const std::string rules = std::string("[validation]\nduplicate_by = \"") + by + "\"\n";
    auto series = [](int64_t first, int n) {
      std::vector<Reading> out;
      for (int i = 0; i < n; ++i) {
        Reading r = R("t", kT0 + (first + i) * kSec, static_cast<double>(first + i));
        r.seq = static_cast<uint64_t>(first + i + 1);
        out.push_back(r);
      }
      return out;
    };
    const int w = Validator::kDuplicateWindow;
    Validator ref(ParseValidation(rules), clock), v(ParseValidation(rules), clock);
    Run(ref, series(0, w));
    Run(v, series(0, w));
    Out refused = Run(v, series(w, 2 * w + 17));
    LONGS_EQUAL(2 * w + 17, refused.passed.size());
    v.Forget();
    std::vector<Reading> probe = {series(5, 1)[0], series(w - 1, 1)[0]};
    probe[1].value = -1;  // same timestamp and sequence, another value
    Out want = Run(ref, probe), got = Run(v, probe);
    LONGS_EQUAL(0, want.passed.size());  // the first dropped, the second rejected (duplicate)
    LONGS_EQUAL(1, want.rejected.size());
    CHECK_TRUE(Same(want, got));
    STRCMP_EQUAL(Dump(ref.stats()).c_str(), Dump(v.stats()).c_str());
    // And both go on alike with what the refused call had sent.
    CHECK_TRUE(Same(Run(ref, series(w, 2 * w + 17)), Run(v, series(w, 2 * w + 17))));
  }
}

TEST(Forget, AnotherBatchAfterForgetSeesOnlyWhatWasKept) {
  // Forget puts back the state before the refused call, not some other one: a different batch
  // after it is judged as if the refused one never came, and a second Forget changes nothing.
  ManualClock clock(kT0 + 3600 * kSec);
  const char* rules = "[validation.default]\nbackwards = \"reject\"\nstuck = { count = 3, action = \"flag\" }\n";
  Validator v(ParseValidation(rules), clock);
  Run(v, {R("t", kT0, 5), R("t", kT0 + kSec, 5)});
  Out refused = Run(v, {R("t", kT0 + 10 * kSec, 5), R("u", kT0, 1)});  // would make a run of 3
  LONGS_EQUAL(kQualityStuck, refused.passed[0].quality);
  v.Forget();
  v.Forget();
  Out o = Run(v, {R("t", kT0 + 5 * kSec, 5)});  // earlier than the forgotten reading: not backwards
  LONGS_EQUAL(1, o.passed.size());
  LONGS_EQUAL(kQualityStuck, o.passed[0].quality);  // the third 5, counted once
  LONGS_EQUAL(3, v.stats().received);
  LONGS_EQUAL(1, v.SensorReport().size());  // "u" has no reading counted any more
}

TEST(Forget, IngestForgetsWhatTheBufferRefusedSoTheRetryIsStored) {
  TempDir dir;
  ManualClock clock(kT0 + 3600 * kSec);
  std::unique_ptr<buffer::Store> store = OpenStore(dir.Join("buffer.db"), clock);
  RefusingBuffer buffer(*store);
  Ingest ingest(ParseValidation("[validation.default]\nbackwards = \"reject\"\nrange = { max = 100 }\n"), clock, buffer);

  std::vector<Reading> batch = {R("t", kT0, 1), R("t", kT0 + kSec, 2), R("t", kT0 + 2 * kSec, 3)};
  buffer.refuse_appends = 1;
  auto t = ingest.Append(batch);
  CHECK_FALSE(t.ok());
  LONGS_EQUAL(static_cast<int>(StatusCode::kResourceExhausted), static_cast<int>(t.status().code()));
  t = ingest.Append(batch);  // the source's retry
  CHECK_TRUE(t.ok());
  CHECK_TRUE(ingest.WaitDurable(*t).ok());

  // A batch with a rejected reading whose quarantine record is refused: nothing of it is kept,
  // and the retry stores both the reading that passes and the quarantine record.
  std::vector<Reading> second = {R("t", kT0 + 3 * kSec, 4), R("t", kT0 + 4 * kSec, 500)};
  buffer.refuse_quarantine = 1;
  CHECK_FALSE(ingest.Append(second).ok());
  t = ingest.Append(second);
  CHECK_TRUE(t.ok());
  CHECK_TRUE(ingest.WaitDurable(*t).ok());

  CHECK_TRUE(store->Flush().ok());
  LONGS_EQUAL(1, store->GetStats().quarantine_rows);
  std::vector<Reading> stored = Drain(*store);
  LONGS_EQUAL(4, stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    LONGS_EQUAL(kT0 + static_cast<int64_t>(i) * kSec, stored[i].ts_us);
    DOUBLES_EQUAL(static_cast<double>(i + 1), stored[i].value, 0);
    LONGS_EQUAL(0, stored[i].quality);
  }
  // Counted once each, not per attempt.
  ValidationStats s = ingest.stats();
  LONGS_EQUAL(5, s.received);
  LONGS_EQUAL(4, s.passed);
  LONGS_EQUAL(0, s.duplicates_dropped);
  LONGS_EQUAL(1, s.rejected["range"]);
}

TEST(Forget, IngestTakingTheReadingsForgetsARefusedCallAndValidatesThemInPlace) {
  // The MQTT source hands its readings over (AppendWithStateOwned: swapped in, validated in
  // place, not copied). A refused call leaves the caller without them; it builds them again and
  // the retry is judged as a first attempt. What passes, and its flags, are those of the copying
  // call on a second validator.
  TempDir dir;
  ManualClock clock(kT0 + 3600 * kSec);
  std::unique_ptr<buffer::Store> store = OpenStore(dir.Join("buffer.db"), clock);
  RefusingBuffer buffer(*store);
  const char* config = "[validation.default]\nbackwards = \"reject\"\nrange = { max = 100 }\n";
  Ingest ingest(ParseValidation(config), clock, buffer);
  auto make = [] {
    return std::vector<Reading>{R("t", kT0, 1), R("t", kT0 + kSec, 500), R("t", kT0 + 2 * kSec, 3), R("t", kT0 + kSec / 2, 4)};
  };
  std::vector<Reading> batch = make();
  buffer.refuse_appends = 1;
  CHECK_FALSE(ingest.AppendWithStateOwned(batch, {}).ok());
  batch = make();  // the caller's vector was taken: built again
  auto t = ingest.AppendWithStateOwned(batch, {});
  CHECK_TRUE_TEXT(t.ok(), t.status().ToString().c_str());
  CHECK_TRUE(ingest.WaitDurable(*t).ok());
  std::vector<Reading> stored = Drain(*store);

  // The same readings through the copying call, into a second store.
  TempDir dir2;
  std::unique_ptr<buffer::Store> store2 = OpenStore(dir2.Join("buffer.db"), clock);
  Ingest copying(ParseValidation(config), clock, *store2);
  const std::vector<Reading> again = make();
  t = copying.Append(again);
  CHECK_TRUE(t.ok());
  CHECK_TRUE(copying.WaitDurable(*t).ok());
  std::vector<Reading> want = Drain(*store2);
  LONGS_EQUAL(2, want.size());  // 500 out of range, the last one backwards
  CHECK_TRUE(stored == want);
  ValidationStats s = ingest.stats();
  LONGS_EQUAL(4, s.received);
  LONGS_EQUAL(2, s.passed);
  LONGS_EQUAL(0, s.duplicates_dropped);
  LONGS_EQUAL(1, s.rejected["range"]);
}
