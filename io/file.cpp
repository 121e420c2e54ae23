#include "io/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "io/posix_file.hpp"
#include "io/uring_file.hpp"

namespace hearth::io {

error errno_error(std::string_view op, std::string_view path, int err) {
  errc code = errc::io_error;
  if (err == ENOENT) code = errc::not_found;
  if (err == ENOSPC || err == EDQUOT) code = errc::no_space;
  char buf[256];
  // GNU strerror_r: returns a pointer to the text (maybe a static string, maybe `buf`).
  const char* text = strerror_r(err, buf, sizeof buf);
  std::string msg;
  msg.reserve(op.size() + path.size() + 40);
  msg.append(op).append(" ").append(path).append(": ").append(text);
  return error{code, std::move(msg)};
}

std::string parent_dir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

// ---- buffered_file ----

buffered_file::buffered_file(std::string path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), written_(size) {}

buffered_file::~buffered_file() {
  // Subclass destructors have called close() already; this only covers a subclass that did not.
  if (fd_ >= 0) close_fd(fd_);
}

status buffered_file::check_usable() const {
  if (!failed_.ok()) return failed_;
  if (fd_ < 0) return status(errc::io_error, "file already closed: " + path_);
  return {};
}

status buffered_file::write(bytes_view data, bool sync) {
  status st = write_out(written_, data, sync);
  if (!st.ok()) {
    // The file's tail is now unknown (maybe partly written), so nothing may follow it.
    failed_ = st;
    return st;
  }
  written_ += data.size();
  dirty_ = !sync && (dirty_ || !data.empty());
  return {};
}

status buffered_file::append(bytes_view data) {
  if (auto st = check_usable(); !st.ok()) return st;
  if (buf_.size() + data.size() <= buffer_bytes) {
    buf_.append(as_chars(data));
    return {};
  }
  // Too big to buffer: write out what is buffered, then either buffer the new bytes or (if
  // they alone fill the buffer) write them straight from the caller's memory.
  if (!buf_.empty()) {
    if (auto st = write(as_bytes(buf_), false); !st.ok()) return st;
    buf_.clear();
  }
  if (data.size() < buffer_bytes) {
    buf_.append(as_chars(data));
    return {};
  }
  return write(data, false);
}

status buffered_file::sync() {
  if (auto st = check_usable(); !st.ok()) return st;
  if (buf_.empty() && !dirty_) return {};
  // One submission: the buffered bytes and the fdatasync (linked SQEs under io_uring).
  if (auto st = write(as_bytes(buf_), true); !st.ok()) return st;
  buf_.clear();
  return {};
}

status buffered_file::write_behind() {
  if (auto st = check_usable(); !st.ok()) return st;
  if (!buf_.empty()) {
    if (auto st = write(as_bytes(buf_), false); !st.ok()) return st;
    buf_.clear();
  }
  // WAIT_BEFORE waits for pages already under writeback (the previous step), WRITE starts the
  // dirty ones; neither waits for the new writeback. Both backends wrote through the page cache.
  int r;
  do {
    r = ::sync_file_range(fd_, 0, static_cast<off_t>(written_),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE);
  } while (r != 0 && errno == EINTR);
  // A file system without it (ESPIPE, EINVAL, ENOSYS) simply has everything flushed by `sync`.
  if (r != 0 && errno != ESPIPE && errno != EINVAL && errno != ENOSYS) {
    failed_ = errno_error("sync_file_range", path_, errno);
    return failed_;
  }
  return {};
}

status buffered_file::close() {
  if (fd_ < 0) return check_usable();
  status st = failed_;
  if (st.ok() && !buf_.empty()) {
    st = write(as_bytes(buf_), false);
    buf_.clear();
  }
  if (close_fd(fd_) != 0 && st.ok()) st = errno_error("close", path_, errno);
  fd_ = -1;
  return st;
}

// ---- file_system ----

status file_system::write_file_atomic(const std::string& path, bytes_view data) {
  const std::string tmp = path + ".tmp";
  // open_appendable appends, so a leftover tmp from a crash must go first.
  if (auto st = remove(tmp); !st.ok() && st.err().code != errc::not_found) return st;
  auto publish = [&]() -> status {
    auto f = open_appendable(tmp);
    if (!f.ok()) return f.take_error();
    for (size_t at = 0; at < data.size(); at += write_behind_bytes) {
      if (auto st = (*f)->append(data.subspan(at, std::min(write_behind_bytes, data.size() - at)));
          !st.ok())
        return st;
      if (data.size() - at > write_behind_bytes)
        if (auto st = (*f)->write_behind(); !st.ok()) return st;
    }
    if (auto st = (*f)->sync(); !st.ok()) return st;
    if (auto st = (*f)->close(); !st.ok()) return st;
    return rename(tmp, path);
  };
  if (auto st = publish(); !st.ok()) {
    (void)remove(tmp);  // best effort: the error that matters is `st`
    return st;
  }
  return sync_dir(parent_dir(path));
}

// ---- make_file_system ----

result<std::unique_ptr<file_system>> make_file_system(backend want) {
  if (want == backend::automatic) {
    if (const char* env = std::getenv("HEARTH_IO_BACKEND"); env != nullptr && *env != '\0') {
      std::string_view v(env);
      if (v == "posix") {
        want = backend::posix;
      } else if (v == "io_uring") {
        want = backend::io_uring;
      } else {
        return error{errc::bad_config,
                     "HEARTH_IO_BACKEND=" + std::string(v) + ": want \"posix\" or \"io_uring\""};
      }
    }
  }
  if (want == backend::posix) return std::unique_ptr<file_system>(new posix_file_system());

  int probe_errno = 0;
  auto fs = make_uring_file_system(&probe_errno);
  if (fs.ok() || want == backend::io_uring) return fs;
  switch (probe_errno) {
    case EPERM:
    case ENOSYS:
    case EACCES:
    case EINVAL:
    case ENOMEM:
      return std::unique_ptr<file_system>(new posix_file_system());
    default:
      return fs;
  }
}

}  // namespace hearth::io
