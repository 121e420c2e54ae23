// The posix backend: pwrite/pread/fdatasync, and the directory operations both real backends use.
// Every syscall that may be interrupted is retried on EINTR; reads and writes loop until done,
// since a regular file may still return short counts (signals, RLIMIT_FSIZE, quota edges).

#include "io/posix_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace hearth::io {

int close_fd(int fd) {
  int r = ::close(fd);
  return (r != 0 && errno == EINTR) ? 0 : r;
}

int open_retry(const char* path, int flags, unsigned mode) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC, static_cast<mode_t>(mode));
  } while (fd < 0 && errno == EINTR);
  return fd;
}

namespace {

int fsync_retry(int fd, bool data_only) {
  int r;
  do {
    r = data_only ? ::fdatasync(fd) : ::fsync(fd);
  } while (r != 0 && errno == EINTR);
  return r;
}

class posix_file final : public buffered_file {
 public:
  using buffered_file::buffered_file;
  ~posix_file() override { (void)close(); }

 protected:
  status write_out(uint64_t offset, bytes_view data, bool sync) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error("write", path(), errno);
      }
      if (n == 0) return error{errc::io_error, "write " + path() + ": wrote 0 bytes"};
      done += static_cast<size_t>(n);
    }
    if (sync && fsync_retry(fd(), true) != 0) return errno_error("fdatasync", path(), errno);
    return {};
  }
};

class posix_readable_file final : public fd_readable_file {
 public:
  using fd_readable_file::fd_readable_file;

 protected:
  status read_ranges(std::span<const byte_range> ranges, char* dst) override {
    for (const byte_range& r : ranges) {
      uint64_t done = 0;
      while (done < r.length) {
        const uint64_t at = r.offset + done;
        ssize_t n = ::pread(fd(), dst + at, r.length - done, static_cast<off_t>(at));
        if (n < 0) {
          if (errno == EINTR) continue;
          return errno_error("read", path(), errno);
        }
        if (n == 0) return ended_early(at);
        done += static_cast<uint64_t>(n);
      }
    }
    return {};
  }
};

}  // namespace

fd_readable_file::fd_readable_file(std::string path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size) {}

fd_readable_file::~fd_readable_file() {
  close_fd(fd_);
}

status fd_readable_file::read(std::span<const byte_range> ranges, char* dst) {
  for (const byte_range& r : ranges)
    if (r.offset > size_ || r.length > size_ - r.offset)
      return error{errc::io_error, "read " + path_ + ": range [" + std::to_string(r.offset) +
                                       ", +" + std::to_string(r.length) + ") is past the end (" +
                                       std::to_string(size_) + " bytes)"};
  std::vector<byte_range> todo;
  todo.reserve(ranges.size());
  for (const byte_range& r : ranges)
    if (r.length > 0) todo.push_back(r);
  if (todo.empty()) return {};
  return read_ranges(todo, dst);
}

error fd_readable_file::ended_early(uint64_t offset) const {
  return error{errc::io_error, "read " + path_ + ": the file ends at " + std::to_string(offset) +
                                   ", before the range read (it had " + std::to_string(size_) +
                                   " bytes when opened)"};
}

namespace {

// open(2) and fstat(2): the fd and the file's size, or an error naming `path`.
result<std::pair<int, uint64_t>> open_sized(const std::string& path, int flags, unsigned mode) {
  int fd = open_retry(path.c_str(), flags, mode);
  if (fd < 0) return errno_error("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    auto e = errno_error("stat", path, errno);
    close_fd(fd);
    return e;
  }
  return std::pair<int, uint64_t>{fd, static_cast<uint64_t>(st.st_size)};
}

}  // namespace

result<std::pair<int, uint64_t>> posix_file_system::open_for_read(const std::string& path) {
  return open_sized(path, O_RDONLY, 0);
}

result<std::unique_ptr<readable_file>> posix_file_system::open_readable(const std::string& path) {
  auto r = open_for_read(path);
  if (!r.ok()) return r.take_error();
  return std::unique_ptr<readable_file>(new posix_readable_file(path, r->first, r->second));
}

result<std::pair<int, uint64_t>> posix_file_system::open_for_append(const std::string& path) {
  return open_sized(path, O_WRONLY | O_CREAT, 0644);
}

result<std::unique_ptr<writable_file>> posix_file_system::open_appendable(const std::string& path) {
  auto r = open_for_append(path);
  if (!r.ok()) return r.take_error();
  return std::unique_ptr<writable_file>(new posix_file(path, r->first, r->second));
}

result<std::string> posix_file_system::read_file(const std::string& path) {
  fd_guard fd(open_retry(path.c_str(), O_RDONLY));
  if (fd.get() < 0) return errno_error("open", path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat", path, errno);
  // Read until EOF rather than trusting st_size: the file may be growing.
  std::string out;
  out.resize(static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  while (true) {
    if (got == out.size()) out.resize(out.size() * 2);
    ssize_t n = ::pread(fd.get(), out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

status posix_file_system::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return errno_error("rename", from + " -> " + to, errno);
  }
  return {};
}

status posix_file_system::remove(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return {};
  int err = errno;
  if (err == EISDIR || err == EPERM) {
    // unlink refuses directories (EISDIR on Linux, EPERM per POSIX): try it as one.
    if (::rmdir(path.c_str()) == 0) return {};
    if (errno != ENOTDIR) err = errno;
  }
  return errno_error("remove", path, err);
}

result<std::vector<std::string>> posix_file_system::list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_error("opendir", dir, errno);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      int err = errno;
      ::closedir(d);
      if (err != 0) return errno_error("readdir", dir, err);
      break;
    }
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

status posix_file_system::create_dirs(const std::string& dir) {
  if (dir.empty()) return status(errc::invalid_argument, "create_dirs: empty path");
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return errno_error("mkdir", dir, ENOTDIR);
  }
  if (errno != ENOENT) return errno_error("stat", dir, errno);
  const std::string parent = parent_dir(dir);
  if (parent != dir) {
    if (auto s = create_dirs(parent); !s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return {};  // a concurrent creator won; fine if it is a directory
    return errno_error("mkdir", dir, errno);
  }
  return sync_dir(parent);
}

status posix_file_system::sync_dir(const std::string& dir) {
  fd_guard fd(open_retry(dir.c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return errno_error("open", dir, errno);
  if (fsync_retry(fd.get(), false) != 0) return errno_error("fsync", dir, errno);
  return {};
}

result<bool> posix_file_system::exists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return errno_error("stat", path, errno);
}

status posix_file_system::truncate(const std::string& path, uint64_t size) {
  fd_guard fd(open_retry(path.c_str(), O_WRONLY));
  if (fd.get() < 0) return errno_error("open", path, errno);
  int r;
  do {
    r = ::ftruncate(fd.get(), static_cast<off_t>(size));
  } while (r != 0 && errno == EINTR);
  if (r != 0) return errno_error("truncate", path, errno);
  if (fsync_retry(fd.get(), false) != 0) return errno_error("fsync", path, errno);
  return {};
}

result<uint64_t> posix_file_system::file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno_error("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace hearth::io
