#include "test_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <CppUTest/TestHarness.h>

namespace fs = std::filesystem;

namespace edgepipe::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/edgepipe-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) FAIL(("mkdtemp failed: " + std::string(std::strerror(errno))).c_str());
  path_ = buf.data();
}

TempDir::~TempDir() {
  // EDGEPIPE_KEEP_TEMP=1 keeps every test directory (databases, logs, outboxes) for a post-mortem.
  if (const char* keep = std::getenv("EDGEPIPE_KEEP_TEMP"); keep && *keep && *keep != '0') {
    fprintf(stderr, "kept test directory %s (EDGEPIPE_KEEP_TEMP)\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) FAIL(("cannot write " + path).c_str());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FAIL(("cannot read " + path).c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) { return fs::exists(path); }

std::vector<std::string> ListFiles(const std::string& dir, bool with_temp) {
  // Tests list directories that a running agent writes to: a file renamed or removed during the
  // walk (the file sink's temporary file becoming its object) is skipped, never an exception.
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || type_ec) continue;
    const std::string name = it->path().filename().string();
    const bool temp = name.size() > 5 && name[0] == '.' && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (temp && !with_temp) continue;
    out.push_back(it->path().lexically_relative(dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// `bound`: the child is SIGKILLed when the test process dies (a test that aborts on an uncaught
// exception or a sanitizer report must not leave an agent or a broker running, which would also
// hold ctest's output pipe open until the test's timeout).
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int out_fd, int err_fd,
            bool bound = false) {
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    if (bound) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
    }
    if (out_fd >= 0) dup2(out_fd, 1);
    if (err_fd >= 0) dup2(err_fd, 2);
    for (const auto& e : env) putenv(const_cast<char*>(strdup(e.c_str())));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env, int timeout_s) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) FAIL("pipe failed");
  pid_t pid = Spawn(argv, env, out_pipe[1], err_pipe[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      FAIL(("timed out after " + std::to_string(timeout_s) + "s: " + argv[0]).c_str());
    }
    if (poll(fds, 2, left) < 0 && errno != EINTR) break;
    for (auto& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(f.fd, buf, sizeof buf);
      if (n <= 0) {
        close(f.fd);
        f.fd = -1;
        --open_fds;
      } else {
        (f.fd == out_pipe[0] ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = DecodeStatus(status);
  return r;
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& stdout_path,
             const std::string& stderr_path) {
  int out_fd = stdout_path.empty() ? -1 : open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err_fd = stderr_path.empty() ? -1 : open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = Spawn(argv, env, out_fd, err_fd, /*bound=*/true);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Child::Signal(int signo) {
  if (!reaped_) kill(pid_, signo);
}

bool Child::Running() {
  if (reaped_) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return true;
}

int Child::Wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!reaped_) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return DecodeStatus(status_);
}

std::string EdgepipeBinary() {
  const char* env = std::getenv("EDGEPIPE_BINARY");
  return env && *env ? env : EDGEPIPE_BINARY;
}

std::string SourceDir() { return EDGEPIPE_SOURCE_DIR; }

std::string DataFile(const std::string& relative) {
  const char* env = std::getenv("EDGEPIPE_DATA_DIR");
  std::string dir = env && *env ? env : EDGEPIPE_DATA_DIR_DEFAULT;
  std::string path = dir + "/" + relative;
  if (!fs::exists(path)) {
    FAIL(("shared data set missing: " + path +
          "\nThis test needs the real sensor data sets that live in ../shared/data beside the project root "
          "(see its README). Set EDGEPIPE_DATA_DIR to their location.")
             .c_str());
  }
  return path;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool WaitUntil(int timeout_ms, const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace edgepipe::testing
