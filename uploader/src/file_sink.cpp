#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "edgepipe/core/log.h"
#include "edgepipe/uploader/sink.h"

namespace edgepipe::uploader {
namespace {

Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOTDIR:
      return FailedPreconditionError(msg);
    default:
      return UnavailableError(msg);
  }
}

// mkdir -p, fsyncing each parent whose entry list changed so the new directories survive a power cut.
Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : FailedPreconditionError(dir + " exists and is not a directory");
  }
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) EP_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + dir, errno);
  if (slash != std::string::npos && slash > 0) {
    int fd = ::open(dir.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  return Status::Ok();
}

Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path, errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

FileSink::FileSink(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Result<PutResult> FileSink::Put(const Object& object) {
  if (object.key.empty() || object.key.find("..") != std::string::npos)
    return InvalidArgumentError("refusing object key '" + object.key + "'");
  const std::string path = root_ + "/" + object.key;
  const std::string dir = path.substr(0, path.find_last_of('/'));
  EP_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string name = path.substr(path.find_last_of('/') + 1);
  // Hidden temp name in the same directory: readers that skip dot-files never see partial objects.
  const std::string tmp = dir + "/." + name + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create " + tmp, errno);
  Status s = WriteAll(fd, object.body, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("fsync " + tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("close " + tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus("rename to " + path, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  // The rename is durable only once the directory entry is on disk.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoStatus("open directory " + dir, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return ErrnoStatus("fsync directory " + dir, err);
  return PutResult{};
}

}  // namespace edgepipe::uploader
