#pragma once
// Internal to io/: the parts the two real backends share. `buffered_file` is the user-space
// append buffer over a file descriptor (a backend only says how bytes reach the disk), and
// `posix_file_system` implements everything with plain syscalls; the io_uring backend derives
// from it and replaces the data path (appends, syncs, reads), keeping the directory operations.

#include <string>

#include "io/file.hpp"

namespace hearth::io {

/// An append-only file descriptor with a user-space buffer. Subclasses provide `write_out`.
/// Thread-safety: none (see `writable_file`).
class buffered_file : public writable_file {
 public:
  /// Takes ownership of `fd`, whose current size is `size`.
  buffered_file(std::string path, int fd, uint64_t size);
  /// Only releases the fd: writing out the buffer needs `write_out`, which is gone by the time
  /// this runs, so every subclass destructor must call `close()` itself.
  ~buffered_file() override;

  status append(bytes_view data) override;
  status sync() override;
  status write_behind() override;
  uint64_t size() const override { return written_ + buf_.size(); }
  status close() override;

  /// Appends below this size are buffered; bigger ones go straight to the file.
  static constexpr size_t buffer_bytes = 64 * 1024;

 protected:
  /// Writes all of `data` at `offset`, then, if `sync`, makes the file's data durable. `data`
  /// may be empty (sync only). Short writes and EINTR are the implementation's business.
  [[nodiscard]] virtual status write_out(uint64_t offset, bytes_view data, bool sync) = 0;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  status check_usable() const;
  /// Runs `write_out` and keeps its error sticky.
  status write(bytes_view data, bool sync);

  std::string path_;
  int fd_;
  uint64_t written_;    // bytes handed to write_out successfully
  bool dirty_ = false;  // written since the last successful sync
  std::string buf_;     // appended, not yet written
  status failed_;       // sticky error of a write or sync
};

/// A read-only file descriptor and its size at open. Subclasses provide `read_ranges`.
/// Thread-safety: none (see `readable_file`).
class fd_readable_file : public readable_file {
 public:
  /// Takes ownership of `fd`, whose size is `size`.
  fd_readable_file(std::string path, int fd, uint64_t size);
  ~fd_readable_file() override;

  uint64_t size() const override { return size_; }
  /// Checks every range against `size()`, then calls `read_ranges`.
  status read(std::span<const byte_range> ranges, char* dst) override;

 protected:
  /// Reads the (checked, non-empty) ranges into `dst`; a read that finds the end of the file
  /// before a range's end is an error. Short reads and EINTR are the implementation's business.
  [[nodiscard]] virtual status read_ranges(std::span<const byte_range> ranges, char* dst) = 0;
  /// The error for a file that ended at `offset` inside a range.
  error ended_early(uint64_t offset) const;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

/// The pwrite/pread/fdatasync backend. Thread-safety: stateless, so fully thread-safe.
class posix_file_system : public file_system {
 public:
  std::string_view name() const override { return "posix"; }
  result<std::unique_ptr<writable_file>> open_appendable(const std::string& path) override;
  result<std::string> read_file(const std::string& path) override;
  result<std::unique_ptr<readable_file>> open_readable(const std::string& path) override;
  status rename(const std::string& from, const std::string& to) override;
  status remove(const std::string& path) override;
  result<std::vector<std::string>> list_dir(const std::string& dir) override;
  status create_dirs(const std::string& dir) override;
  status sync_dir(const std::string& dir) override;
  result<bool> exists(const std::string& path) override;
  status truncate(const std::string& path, uint64_t size) override;
  result<uint64_t> file_size(const std::string& path) override;

 protected:
  /// Opens `path` for appending: returns the fd and its current size, or an error.
  static result<std::pair<int, uint64_t>> open_for_append(const std::string& path);
  /// Opens `path` read-only: returns the fd and its size, or an error.
  static result<std::pair<int, uint64_t>> open_for_read(const std::string& path);
};

/// Closes `fd`, ignoring EINTR (on Linux the fd is released even then).
int close_fd(int fd);

/// open(2) with O_CLOEXEC, retried on EINTR. Returns the fd or -1 with errno set.
int open_retry(const char* path, int flags, unsigned mode = 0);

/// Closes an fd at scope exit (for the short-lived descriptors of whole-file operations).
/// Thread-safety: none.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0) close_fd(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace hearth::io
