#pragma once
// The I/O boundary (leveldb's Env): every file syscall of the server goes through a `file_system`.
// Two real backends (io_uring, and a pwrite/fdatasync fallback picked when io_uring is unavailable)
// and a fault-injecting wrapper for tests (io/fault_file.hpp). Publishing a file is always
// "write x.tmp, fsync, rename, fsync the directory" (`write_file_atomic`).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/coding.hpp"
#include "format/error.hpp"

namespace hearth::io {

/// A file open for appending, with one owner. `append` copies the bytes into a user-space buffer
/// (64 KiB) and writes it out when full; bigger appends are written straight through. Nothing
/// appended is durable until `sync` returns ok. After any failed write or sync the file is
/// poisoned: every later call returns that error (a failed fsync may have dropped dirty pages,
/// so retrying it could wrongly report success). The destructor closes the file and drops any
/// error; call `close` to see it.
/// Thread-safety: none; one owner at a time. A file may outlive its `file_system`.
class writable_file {
 public:
  writable_file() = default;
  writable_file(const writable_file&) = delete;
  writable_file& operator=(const writable_file&) = delete;
  virtual ~writable_file() = default;

  /// Appends `data` (the caller keeps it alive for the call only). Not durable until `sync`.
  [[nodiscard]] virtual status append(bytes_view data) = 0;
  /// Writes out everything appended and makes it durable (fdatasync semantics: the data and the
  /// file size, not the mtime). Does not make a newly created file's name durable: sync its
  /// directory for that (`file_system::sync_dir`).
  [[nodiscard]] virtual status sync() = 0;
  /// Writes out everything appended and starts writing it back to the disk, after waiting for
  /// the writeback the previous call started (sync_file_range). Makes nothing durable: only
  /// `sync` does. Calling it every few MiB while writing a big file keeps the file's dirty pages
  /// to about two such steps, so its final `sync` is short; one big flush would otherwise hold
  /// the file system's journal commit, which every other file's sync (the WAL's) waits for.
  [[nodiscard]] virtual status write_behind() = 0;
  /// Bytes in the file, counting appended bytes still buffered.
  virtual uint64_t size() const = 0;
  /// Writes out the buffer (without syncing) and closes the file. Later calls fail.
  [[nodiscard]] virtual status close() = 0;
};

/// A file open for reading at chosen offsets (leveldb's RandomAccessFile), with one owner. It
/// reads the file it opened: a rename over its path, or its removal, afterwards does not change
/// what it reads. The destructor closes it.
/// Thread-safety: none; one owner at a time. A file may outlive its `file_system`.
class readable_file {
 public:
  readable_file() = default;
  readable_file(const readable_file&) = delete;
  readable_file& operator=(const readable_file&) = delete;
  virtual ~readable_file() = default;

  /// The file's size when it was opened.
  virtual uint64_t size() const = 0;
  /// Reads every range into `dst` at its own offset: `dst[r.offset, r.offset + r.length)` gets
  /// the file's bytes there (`dst` spans at least the largest range end). Ranges may come in any
  /// order; the io_uring backend submits them together. A range past `size()`, or a file that
  /// ends before a range does (it shrank), fails with `errc::io_error` naming the path.
  [[nodiscard]] virtual status read(std::span<const byte_range> ranges, char* dst) = 0;
};

/// Which backend `make_file_system` builds.
enum class backend : uint8_t {
  automatic,  ///< io_uring if the kernel allows it, else posix (see `make_file_system`)
  io_uring,   ///< io_uring or an error
  posix,      ///< pwrite/pread/fdatasync
};

/// A file system: files are named by paths (relative to the working directory or absolute);
/// paths are used as given, never resolved or normalized. Errors carry a message naming the path
/// and the errno text; ENOENT maps to `errc::not_found`, ENOSPC/EDQUOT to `errc::no_space`,
/// everything else to `errc::io_error`.
/// Thread-safety: every method may be called concurrently from any thread. Operations on the
/// same path from several threads at once are not ordered (as with the syscalls themselves).
class file_system {
 public:
  file_system() = default;
  file_system(const file_system&) = delete;
  file_system& operator=(const file_system&) = delete;
  virtual ~file_system() = default;

  /// "io_uring", "posix" or "fault".
  virtual std::string_view name() const = 0;

  /// Opens `path` for appending, creating it if missing; writes go after the existing bytes.
  /// A new file's name is durable only after `sync_dir` of its directory.
  [[nodiscard]] virtual result<std::unique_ptr<writable_file>> open_appendable(
      const std::string& path) = 0;
  /// The whole content of `path`.
  [[nodiscard]] virtual result<std::string> read_file(const std::string& path) = 0;
  /// Opens `path` for reads at chosen offsets (`readable_file`).
  [[nodiscard]] virtual result<std::unique_ptr<readable_file>> open_readable(
      const std::string& path) = 0;
  /// Renames `from` to `to`, replacing `to` atomically if it exists (rename(2)).
  [[nodiscard]] virtual status rename(const std::string& from, const std::string& to) = 0;
  /// Removes a file or an empty directory.
  [[nodiscard]] virtual status remove(const std::string& path) = 0;
  /// Names in `dir` (not paths; without "." and ".."), sorted bytewise.
  [[nodiscard]] virtual result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  /// Creates `dir` and its missing parents (mkdir -p), syncing each parent that gained an entry.
  [[nodiscard]] virtual status create_dirs(const std::string& dir) = 0;
  /// Makes the entries of `dir` durable (creations, renames, removals): open + fsync.
  [[nodiscard]] virtual status sync_dir(const std::string& dir) = 0;
  /// Whether `path` exists (an error only if that cannot be told, e.g. EACCES).
  [[nodiscard]] virtual result<bool> exists(const std::string& path) = 0;
  /// Cuts or extends `path` to `size` bytes and fsyncs it.
  [[nodiscard]] virtual status truncate(const std::string& path, uint64_t size) = 0;
  /// Size of `path` in bytes.
  [[nodiscard]] virtual result<uint64_t> file_size(const std::string& path) = 0;

  /// Publishes `data` as `path` so that a reader, even after a crash, sees either the old file
  /// or the complete new one: writes `path.tmp`, syncs it, renames it over `path`, syncs the
  /// directory. Built from the primitives above, so every backend (and the fault wrapper) gets
  /// the same sequence. A stale `path.tmp` from an earlier crash is replaced. Data larger than
  /// `write_behind_bytes` is appended in steps of that size with a `write_behind` after each.
  /// Requires: no concurrent `write_file_atomic` of the same path.
  [[nodiscard]] status write_file_atomic(const std::string& path, bytes_view data);

  /// The step of `write_file_atomic`'s write-behind.
  static constexpr size_t write_behind_bytes = size_t{4} << 20;
};

/// Builds a file system.
/// - `backend::automatic`: the environment variable `HEARTH_IO_BACKEND` (`posix` or `io_uring`)
///   decides if set (any other value is a `bad_config` error). Otherwise this probes io_uring
///   once (`io_uring_queue_init` plus the READ/WRITE/FSYNC opcodes) and falls back to posix if
///   the kernel refuses it (-EPERM, -ENOSYS, -EACCES, -EINVAL, -ENOMEM: seccomp, gVisor,
///   io_uring_disabled, old kernels); any other probe failure is returned as an error.
/// - `backend::io_uring` / `backend::posix`: exactly that backend (the environment variable is
///   ignored; explicit configuration wins); io_uring fails with `errc::unavailable` naming the
///   kernel's reason if it cannot be used.
[[nodiscard]] result<std::unique_ptr<file_system>> make_file_system(backend want);

/// The error for a failed syscall: "`op` `path`: <strerror(err)>", with the code derived from
/// `err` as described at `file_system`.
error errno_error(std::string_view op, std::string_view path, int err);

/// The directory part of `path` ("a/b" -> "a", "/b" -> "/", "b" -> ".").
std::string parent_dir(std::string_view path);

}  // namespace hearth::io
