#include "io/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "io/file.hpp"

namespace hearth::io {

file_lock::~file_lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

result<std::unique_ptr<file_lock>> file_lock::try_acquire(const std::string& path,
                                                          std::string_view holder) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("open", path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return errno_error("flock", path, err);
    }
    char buf[256];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    ::close(fd);
    std::string who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("another process");
    while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
    return error{errc::unavailable, path + " is held by " + who};
  }
  std::unique_ptr<file_lock> lock(new file_lock(path, fd));
  // Who holds it, for messages only: the lock itself is the flock, so a failed write is harmless.
  std::string text(holder);
  text += '\n';
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, text.data(), text.size(), 0);
  return lock;
}

}  // namespace hearth::io
