#pragma once
// The write-ahead log: a directory of numbered segment files `%020llu.wal` (sequence numbers from
// 1), each an 8-byte header (magic "HWAL", version u32 LE = 1) followed by records
// `len <u32 LE> | crc32c(payload) <u32 LE> | payload`. The writer always starts a new file; replay
// tolerates a torn tail (a crash in the middle of an append) and cuts it off.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/file.hpp"

namespace hearth::io {

/// Hard upper bound of a record's payload, for writers and readers. A length field above the
/// reader's bound is corruption, and replay cuts the file there, so readers must never use a
/// smaller bound than any writer did: keep the default.
inline constexpr uint64_t wal_max_record_limit = uint64_t{64} << 20;

/// "00000000000000000042.wal" for 42.
std::string wal_file_name(uint64_t seq);

/// Appends records to a WAL directory. Records are buffered by `append` and made durable by
/// `sync`; one sync covers every record appended before it (group commit). After a failed write
/// or sync the writer is poisoned and every later call returns that error: the file's tail is
/// unknown, so the owner must drop the writer, replay, and open a new one (which starts a new
/// file; replay has cut the torn tail).
/// Thread-safety: none; one owner (the WAL actor).
class wal_writer {
 public:
  wal_writer(const wal_writer&) = delete;
  wal_writer& operator=(const wal_writer&) = delete;
  ~wal_writer();

  /// Creates `dir` if needed and starts file `highest existing sequence + 1` (1 if none), never
  /// appending to an old, possibly torn file. The new file's name is synced into `dir`.
  /// `fs` must outlive the writer.
  /// Requires: 0 < max_record_bytes <= wal_max_record_limit; no other writer on `dir`.
  [[nodiscard]] static result<std::unique_ptr<wal_writer>> open(file_system& fs, std::string dir,
                                                                uint64_t max_record_bytes);

  /// Appends one record; not durable until `sync`. The payload is copied.
  /// Empty payloads and payloads above `max_record_bytes` are `invalid_argument` (and do not
  /// poison the writer): a zero length marks the end of the data (zero-filled tails).
  [[nodiscard]] status append(bytes_view payload);
  /// Makes every record appended so far durable.
  [[nodiscard]] status sync();
  /// Syncs and closes the current file and starts the next one. Returns the sequence number of
  /// the closed file: every record appended before the call is in files <= that number.
  [[nodiscard]] result<uint64_t> cut();
  /// Sequence number of the file being appended to.
  uint64_t current_seq() const { return seq_; }
  /// Bytes written by this writer over all its files (headers and framing included).
  uint64_t bytes_written() const { return bytes_written_; }
  /// Size of the current file so far (to decide when to `cut`).
  uint64_t current_file_bytes() const;
  /// Deletes the files with sequence <= `seq` (e.g. once their records are in blocks), then
  /// syncs the directory. Files not named like WAL files are left alone.
  /// Requires: seq < current_seq().
  [[nodiscard]] status remove_up_to(uint64_t seq);

 private:
  wal_writer(file_system& fs, std::string dir, uint64_t max_record_bytes);
  /// Creates file `seq_`, writes its header and syncs the directory entry.
  status start_file();
  /// Remembers the first failure; returns it.
  status poison(status st);

  file_system& fs_;
  std::string dir_;
  uint64_t max_record_bytes_;
  uint64_t seq_ = 0;
  uint64_t bytes_written_ = 0;
  std::unique_ptr<writable_file> file_;
  status failed_;
};

/// What a replay saw.
struct wal_replay_stats {
  uint64_t files = 0;            ///< files read (good header), including ones with a bad tail
  uint64_t records = 0;          ///< records handed to the callback
  uint64_t bytes = 0;            ///< payload bytes handed to the callback
  uint64_t torn_tails = 0;       ///< files ending in an incomplete record (cut off)
  uint64_t corrupt_records = 0;  ///< files cut at a bad checksum/length with more bytes behind it
  uint64_t corrupt_files = 0;    ///< files skipped for a bad header
  uint64_t truncated_bytes = 0;  ///< bytes cut off files by this replay
  uint64_t last_seq = 0;         ///< highest sequence number read (0 if none)
};

/// Replays the files of `dir` with sequence > `after_seq`, in order, calling `fn(seq, payload)`
/// per record (`payload` lives until `fn` returns). In each file, reading stops at the first
/// record that is incomplete, has a bad checksum, a zero length or a length above
/// `max_record_bytes`; the file is then truncated right after its last good record, so the
/// damage is reported once and later replays read a clean file. A torn tail counts in
/// `torn_tails` (the bad record reaches the end of the file, or the rest is zeros); anything
/// else in `corrupt_records` (records behind it are lost: without resync points there is no safe
/// way to find them). Files with a bad header are skipped and counted in `corrupt_files`.
/// A missing `dir` replays nothing. Returns the first error of `fn` (stopping there, with no
/// truncation of the file being read) or of the file system.
/// Requires: no writer open on `dir`. `stats` may be null.
[[nodiscard]] status replay_wal(file_system& fs, const std::string& dir, uint64_t after_seq,
                                const std::function<status(uint64_t seq, bytes_view payload)>& fn,
                                wal_replay_stats* stats,
                                uint64_t max_record_bytes = wal_max_record_limit);

}  // namespace hearth::io
