// Helpers shared by the test suites: temporary directories, files, child processes, data sets.
// Include before <CppUTest/TestHarness.h> (CppUTest's macros clash with STL headers).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace edgepipe::testing {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
bool FileExists(const std::string& path);
// Regular files under `dir` (recursive), relative paths, sorted; none when `dir` does not exist.
// The file sink's temporary files (".NAME.tmp", an object being written) only `with_temp`.
std::vector<std::string> ListFiles(const std::string& dir, bool with_temp = false);

struct ProcessResult {
  int exit_code = -1;       // -signal when killed by a signal
  std::string out;          // stdout
  std::string err;          // stderr
};
// Runs argv[0] with arguments, waits, captures output. `env` entries are "K=V" added to the
// current environment. Fails the test on a timeout.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                         int timeout_s = 120);

// A child process running in the background.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
        const std::string& stdout_path = "", const std::string& stderr_path = "");
  ~Child();  // SIGKILLs the child if still running (and it is SIGKILLed when the test process dies)
  pid_t pid() const { return pid_; }
  void Signal(int signo);
  // Waits for exit; returns the exit code or -signal; -1000 on timeout.
  int Wait(int timeout_ms);
  bool Running();

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Path of the built edgepipe binary.
std::string EdgepipeBinary();
std::string SourceDir();
// The shared data sets directory ($EDGEPIPE_DATA_DIR or ../shared/data). Fails the current test
// with a message saying what is missing and how to provide it when `relative` does not exist.
std::string DataFile(const std::string& relative);
// A free TCP port on 127.0.0.1 (bound and released).
int FreePort();
// Polls `pred` every 20 ms until it is true or `timeout_ms` passes.
bool WaitUntil(int timeout_ms, const std::function<bool()>& pred);

}  // namespace edgepipe::testing
