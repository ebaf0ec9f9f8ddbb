// The process the crash test (fault_test.cpp, CrashTest) kills with SIGKILL at random moments.
//
//   buffer_crash_child DB OUTBOX ACKED_FILE full|normal SEED FIRST_SEQ [journal]
//
// With `journal`, WaitDurable is answered by the acknowledgement journal (Options::ack_journal):
// what was acknowledged may then be only in `DB.ack0`/`.ack1` when the kill lands, and the
// next Store::Open commits it.
// Two threads append readings with unique, increasing sequence numbers (FIRST_SEQ, FIRST_SEQ+1, ...)
// and, once WaitDurable returned OK, write "first last\n" to ACKED_FILE with one write() (which
// a SIGKILL cannot tear). An uploader thread leases batches, writes each to OUTBOX/<batch name>
// (temporary file, fsync, rename: what a file:// sink does) and then acknowledges it, sometimes
// releasing a batch instead. Merges and batch splits happen on the way (small merge target,
// random batch sizes). Runs until killed.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "edgepipe/buffer/store.h"
#include "edgepipe/core/log.h"

using namespace edgepipe;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000LL / 3'600'000'000LL * 3'600'000'000LL;

bool WriteAll(int fd, const std::string& s) {
  return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

void Deliver(const std::string& outbox, const Batch& b) {
  std::string body;
  for (const Reading& r : b.readings) body += std::to_string(r.seq) + "\n";
  const std::string tmp = outbox + "/." + b.name + ".tmp", dst = outbox + "/" + b.name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || !WriteAll(fd, body) || ::fsync(fd) != 0) std::abort();
  ::close(fd);
  if (::rename(tmp.c_str(), dst.c_str()) != 0) std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7 && !(argc == 8 && std::string(argv[7]) == "journal")) {
    fprintf(stderr, "usage: %s DB OUTBOX ACKED_FILE full|normal SEED FIRST_SEQ [journal]\n", argv[0]);
    return 64;
  }
  SetLogLevel(LogLevel::kWarning);
  const std::string outbox = argv[2];
  const int acked_fd = ::open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (acked_fd < 0) return 65;
  buffer::Options o;
  o.path = argv[1];
  o.sync = std::string(argv[4]) == "normal" ? buffer::SyncMode::kNormal : buffer::SyncMode::kFull;
  o.commit_interval_us = 2'000;
  o.merge_target_readings = 300;
  o.ack_journal = argc == 8;
  const uint32_t seed = static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10));
  std::atomic<uint64_t> next_seq{std::strtoull(argv[6], nullptr, 10)};
  auto store = buffer::Store::Open(o);
  if (!store.ok()) {
    fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  buffer::Store& st = **store;
  auto writer = [&](uint32_t wseed) {
    std::mt19937 rng(wseed);
    // Bounded per run: acknowledged through the journal at sync = normal, appends are cheap
    // enough to grow the database by hundreds of thousands of readings per run, and the test
    // reads all of it back after every kill.
    for (int appends = 0;; ++appends) {
      if (appends >= 300) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      const uint64_t n = 1 + rng() % 40;
      const uint64_t first = next_seq.fetch_add(n);
      std::vector<Reading> rs;
      for (uint64_t s = first; s < first + n; ++s) {
        Reading r;
        r.sensor = "s" + std::to_string(s % 7);
        r.ts_us = kT0 + static_cast<int64_t>(s) * 100'000;  // a new UTC hour every 36,000 readings
        r.value = static_cast<double>(s % 1000) / 10;
        r.unit = "Cel";
        r.source = "crash";
        r.seq = s;
        rs.push_back(std::move(r));
      }
      Result<uint64_t> t = st.Append(rs);
      if (!t.ok() || !st.WaitDurable(*t).ok()) continue;  // not acknowledged: the test does not count it
      if (!WriteAll(acked_fd, std::to_string(first) + " " + std::to_string(first + n - 1) + "\n")) std::abort();
    }
  };
  std::thread w1(writer, seed * 2 + 1), w2(writer, seed * 2 + 2);
  std::mt19937 rng(seed);
  while (true) {
    BatchPolicy p;
    p.max_readings = 50 + rng() % 800;
    p.max_age_us = 0;
    Result<std::optional<Batch>> b = st.LeaseBatch(p, rng() % 2 == 0);
    if (!b.ok() || !b->has_value()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (rng() % 10 == 0) {
      (void)st.ReleaseBatch((*b)->id);
      continue;
    }
    if ((*b)->kind == BatchKind::kReadings) Deliver(outbox, **b);
    (void)st.AckBatch((*b)->id, DeliveryReceipt{(*b)->name, 0, "", "", 0});
  }
}
