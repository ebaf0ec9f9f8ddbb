// Tests of the tests' own helpers (tests/support): the ones other suites lean on while an agent
// runs beside them.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "test_util.h"

#include <CppUTest/TestHarness.h>

using namespace edgepipe::testing;

namespace {

// Running or sleeping, as opposed to gone or a zombie (a container's PID 1 may never reap it).
bool Alive(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return false;
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string stat(buf, n);
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

}  // namespace

TEST_GROUP(TestSupport) {
  TempDir dir;
};

// The systemd suite once aborted on std::filesystem::filesystem_error because an object's
// temporary file was renamed while ListFiles walked the outbox.
TEST(TestSupport, ListFilesSkipsFilesRenamedDuringTheWalkAndHidesTemporaryFiles) {
  std::filesystem::create_directories(dir.Join("out/a/b"));
  WriteFile(dir.Join("out/a/kept.zst"), "k");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    // What the file sink does per object: write ".NAME.tmp", rename it to NAME; then remove it.
    for (unsigned i = 0; !stop; ++i) {
      const std::string name = "o" + std::to_string(i % 50) + ".zst";
      const std::string tmp = dir.Join("out/a/b/." + name + ".tmp");
      WriteFile(tmp, "x");
      std::rename(tmp.c_str(), dir.Join("out/a/b/" + name).c_str());
      std::remove(dir.Join("out/a/b/" + name).c_str());
    }
  });
  size_t walks = 0, saw_temp = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  bool kept_always = true;
  while (std::chrono::steady_clock::now() < until) {
    for (const std::string& f : ListFiles(dir.Join("out"))) {
      if (f.find(".tmp") != std::string::npos) ++saw_temp;
    }
    bool kept = false;
    for (const std::string& f : ListFiles(dir.Join("out"), /*with_temp=*/true)) kept = kept || f == "a/kept.zst";
    kept_always = kept_always && kept;
    ++walks;
  }
  stop = true;
  writer.join();
  CHECK_TRUE(walks > 10);
  LONGS_EQUAL(0, saw_temp);
  CHECK_TRUE(kept_always);
  // A temporary file at rest is listed only with_temp.
  WriteFile(dir.Join("out/.x.zst.tmp"), "t");
  LONGS_EQUAL(1, ListFiles(dir.Join("out")).size());
  LONGS_EQUAL(2, ListFiles(dir.Join("out"), /*with_temp=*/true).size());
  LONGS_EQUAL(0, ListFiles(dir.Join("missing")).size());
}

// A test that dies (uncaught exception, sanitizer report) must not leave its agent or broker
// running: ctest would then wait for the pipe they hold until the test's timeout.
TEST(TestSupport, AChildIsKilledWhenTheTestProcessDies) {
  int fds[2];
  CHECK_EQUAL(0, pipe(fds));
  const pid_t test_process = fork();
  if (test_process == 0) {
    close(fds[0]);
    Child* sleeper = new Child({"sleep", "60"});  // never destroyed: the process ends without unwinding
    const pid_t pid = sleeper->pid();
    if (write(fds[1], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) _exit(1);
    _exit(3);
  }
  close(fds[1]);
  pid_t sleeper = -1;
  LONGS_EQUAL(static_cast<long>(sizeof sleeper), static_cast<long>(read(fds[0], &sleeper, sizeof sleeper)));
  close(fds[0]);
  int status = 0;
  CHECK_EQUAL(test_process, waitpid(test_process, &status, 0));
  CHECK_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  CHECK_TRUE(sleeper > 0);
  // The sleeper was re-parented; whether its new parent reaps it or not, it must not be running.
  const bool gone = WaitUntil(5000, [&] { return !Alive(sleeper); });
  if (!gone) kill(sleeper, SIGKILL);
  CHECK_TRUE_TEXT(gone, "the child outlived the test process that started it");
}
