#pragma once
// An exclusive advisory lock on a file (flock), for directories that several processes can
// reach: a partition directory on shared storage is served (and compacted) by the node that wrote
// it while it lives, and compacted by another node only while it is down
// (docs/design/cluster.md, "Compaction ownership"). The kernel drops the lock when its holder's
// descriptor closes, so a holder killed with SIGKILL never leaves it taken. Needs a file system
// whose flock works across the processes involved (local file systems; NFSv4 and CephFS map it
// to their own locks).

#include <memory>
#include <string>

#include "format/error.hpp"

namespace hearth::io {

class file_lock {
 public:
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  ~file_lock();  ///< releases the lock (the file stays)

  const std::string& path() const { return path_; }

  /// Takes the lock on `path` (created if missing) without waiting, and writes `holder` into the
  /// file for operators and for the error of the next one who tries. Fails with
  /// `errc::unavailable` "PATH is held by HOLDER" when another open file holds it (in this
  /// process too), or with the syscall's error.
  [[nodiscard]] static result<std::unique_ptr<file_lock>> try_acquire(const std::string& path,
                                                                      std::string_view holder);

 private:
  file_lock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace hearth::io
