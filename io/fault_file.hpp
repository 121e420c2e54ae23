#pragma once
// A fault-injecting `file_system` for tests: wraps a real one, fails chosen operations with
// EIO/ENOSPC, tears writes, and simulates power loss ("crash"). Used by the WAL and segment
// crash tests; never by the server itself.

#include <cstdint>
#include <memory>
#include <string>

#include "io/file.hpp"

namespace hearth::io {

/// Operation kinds that faults can be injected into (and that are counted).
enum class fault_op : uint8_t {
  write,     ///< `writable_file::append`
  sync,      ///< `writable_file::sync`
  sync_dir,  ///< `file_system::sync_dir`
  rename,    ///< `file_system::rename`
};

/// Forwards everything to `base`, except that:
/// - `fail_nth` makes a chosen future operation fail with EIO (`errc::io_error`) or ENOSPC
///   (`errc::no_space`) without doing anything;
/// - `tear_nth` makes a chosen future append write only the first half of its bytes and then
///   fail with `errc::io_error` (a short write that the caller sees as an error: the torn tail a
///   crash in the middle of a write leaves behind);
/// - `crash` simulates power loss, from what this wrapper saw since it was created or last
///   crashed: (1) every file opened through it loses the bytes appended after its last
///   successful `sync` (or `truncate`); (2) renames not followed by `sync_dir` of the target's
///   directory are undone (the old target content comes back); (3) files created through
///   `open_appendable` whose directory was not synced afterwards disappear.
///   Not modelled: removals are never undone; files that existed before they were opened here
///   count as durable; renaming a file while it is open for append is not tracked; directories
///   are compared as the path strings given (use one spelling per directory).
/// Open files of this wrapper are dead after `crash` (every call fails); open them again.
/// Thread-safety: thread-safe like any `file_system`, except that `crash` must not run
/// concurrently with any other call on this wrapper or its files. `base` must outlive it.
class fault_file_system final : public file_system {
 public:
  /// Wraps `base` (not owned).
  explicit fault_file_system(file_system& base);
  ~fault_file_system() override;

  /// The `n`th future operation of kind `op` (1 = the next one) fails with `code`, which must
  /// be `errc::io_error` or `errc::no_space`. Several faults may be armed at once.
  void fail_nth(fault_op op, uint64_t n, errc code);
  /// The `n`th future append (1 = the next one) is torn, as described above.
  void tear_nth(uint64_t n);
  /// Disarms every fault not yet fired.
  void clear_faults();
  /// Operations of kind `op` attempted through this wrapper so far, failed ones included (calls
  /// on a file already poisoned or dead are refused before they count).
  uint64_t count(fault_op op) const;
  /// Simulates power loss, as described above.
  [[nodiscard]] status crash();

  std::string_view name() const override { return "fault"; }
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

  /// Shared with the open files (defined in fault_file.cpp).
  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace hearth::io
