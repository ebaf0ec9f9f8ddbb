#include "edgepipe/core/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace edgepipe {

Result<std::string> ReadWholeFile(const std::string& path, int* error) {
  auto fail = [&](int e) -> Status {
    if (error) *error = e;
    std::string m = "cannot read " + path + ": " + std::strerror(e);
    return e == ENOENT ? NotFoundError(std::move(m)) : FailedPreconditionError(std::move(m));
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  std::string out;
  char buf[64 * 1024];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      close(fd);
      return fail(e);
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (error) *error = 0;
  return out;
}

}  // namespace edgepipe
