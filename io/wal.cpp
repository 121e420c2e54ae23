// WAL file grammar (all integers little-endian):
//
//   file   := header record*
//   header := magic "HWAL" <4 bytes> | version <u32> (= 1)
//   record := len <u32> (1..max_record_bytes) | crc <u32> = crc32c(payload) | payload <len bytes>
//
// A length of zero never occurs in a record, so a zero-filled tail (a file system that extended
// the file but lost the data) reads as the end of the data. Files are named `%020llu.wal` by
// sequence number; a writer only ever appends to the file it created.
// TODO(doc): docs/design/format/wal.md with the box diagram.

#include "io/wal.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

namespace hearth::io {
namespace {

constexpr std::string_view magic = "HWAL";
constexpr uint32_t current_version = 1;  // On disk: never renumber.
constexpr size_t file_header_bytes = 8;
constexpr size_t record_header_bytes = 8;

std::string file_header() {
  encoder e;
  e.put_raw(magic);
  e.put_u32(current_version);
  return e.release();
}

/// The sequence number of a WAL file name, or nothing for any other name.
std::optional<uint64_t> parse_wal_name(std::string_view name) {
  constexpr std::string_view ext = ".wal";
  if (name.size() != 20 + ext.size() || !name.ends_with(ext)) return std::nullopt;
  uint64_t seq = 0;
  const char* end = name.data() + 20;
  auto [p, ec] = std::from_chars(name.data(), end, seq);
  if (ec != std::errc() || p != end || seq == 0) return std::nullopt;  // also rejects overflow
  return seq;
}

std::string join(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

/// The WAL files of `dir` as (seq, name), by ascending sequence.
result<std::vector<std::pair<uint64_t, std::string>>> list_wal_files(file_system& fs,
                                                                     const std::string& dir) {
  auto names = fs.list_dir(dir);
  if (!names.ok()) return names.take_error();
  std::vector<std::pair<uint64_t, std::string>> files;
  for (auto& n : *names) {
    if (auto seq = parse_wal_name(n)) files.emplace_back(*seq, std::move(n));
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

}  // namespace

std::string wal_file_name(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.wal", static_cast<unsigned long long>(seq));
  return buf;
}

// ---- wal_writer ----

wal_writer::wal_writer(file_system& fs, std::string dir, uint64_t max_record_bytes)
    : fs_(fs), dir_(std::move(dir)), max_record_bytes_(max_record_bytes) {}

// The open file's destructor writes out its buffer (unsynced) and closes it.
wal_writer::~wal_writer() = default;

result<std::unique_ptr<wal_writer>> wal_writer::open(file_system& fs, std::string dir,
                                                     uint64_t max_record_bytes) {
  if (max_record_bytes == 0 || max_record_bytes > wal_max_record_limit) {
    return error{errc::invalid_argument, "wal " + dir + ": max_record_bytes " +
                                             std::to_string(max_record_bytes) + " not in [1, " +
                                             std::to_string(wal_max_record_limit) + "]"};
  }
  if (auto st = fs.create_dirs(dir); !st.ok()) return st.err();
  auto files = list_wal_files(fs, dir);
  if (!files.ok()) return files.take_error();
  std::unique_ptr<wal_writer> w(new wal_writer(fs, std::move(dir), max_record_bytes));
  w->seq_ = files->empty() ? 1 : files->back().first + 1;
  if (auto st = w->start_file(); !st.ok()) return st.err();
  return w;
}

status wal_writer::start_file() {
  const std::string path = join(dir_, wal_file_name(seq_));
  auto f = fs_.open_appendable(path);
  if (!f.ok()) return f.take_error();
  if ((*f)->size() != 0) {
    // Only possible if someone else writes into the directory: never append to their file.
    return status(errc::internal, "wal " + path + ": new file is not empty");
  }
  const std::string header = file_header();
  if (auto st = (*f)->append(as_bytes(header)); !st.ok()) return st;
  file_ = std::move(*f);
  bytes_written_ += header.size();
  // Without this a power loss could drop the file's name, and with it records that a later
  // `sync` reported durable.
  return fs_.sync_dir(dir_);
}

status wal_writer::poison(status st) {
  if (failed_.ok()) failed_ = st;
  return st;
}

status wal_writer::append(bytes_view payload) {
  if (!failed_.ok()) return failed_;
  if (payload.empty() || payload.size() > max_record_bytes_) {
    return status(errc::invalid_argument, "wal " + dir_ + ": record of " +
                                              std::to_string(payload.size()) + " bytes, want 1.." +
                                              std::to_string(max_record_bytes_));
  }
  encoder hdr;
  hdr.put_u32(static_cast<uint32_t>(payload.size()));
  hdr.put_u32(crc32c(payload));
  if (auto st = file_->append(as_bytes(hdr.buffer())); !st.ok()) return poison(st);
  if (auto st = file_->append(payload); !st.ok()) return poison(st);
  bytes_written_ += record_header_bytes + payload.size();
  return {};
}

status wal_writer::sync() {
  if (!failed_.ok()) return failed_;
  if (auto st = file_->sync(); !st.ok()) return poison(st);
  return {};
}

result<uint64_t> wal_writer::cut() {
  if (auto st = sync(); !st.ok()) return st.err();
  if (auto st = file_->close(); !st.ok()) return poison(st).err();
  file_.reset();
  const uint64_t closed = seq_++;
  if (auto st = start_file(); !st.ok()) return poison(st).err();
  return closed;
}

uint64_t wal_writer::current_file_bytes() const {
  return file_ ? file_->size() : 0;
}

status wal_writer::remove_up_to(uint64_t seq) {
  if (seq >= seq_) {
    return status(errc::invalid_argument, "wal " + dir_ + ": remove_up_to(" + std::to_string(seq) +
                                              ") would remove the open file " +
                                              std::to_string(seq_));
  }
  auto files = list_wal_files(fs_, dir_);
  if (!files.ok()) return files.err();
  bool removed = false;
  for (const auto& [s, name] : *files) {
    if (s > seq) break;
    if (auto st = fs_.remove(join(dir_, name)); !st.ok() && st.err().code != errc::not_found) {
      return st;
    }
    removed = true;
  }
  return removed ? fs_.sync_dir(dir_) : status{};
}

// ---- replay ----

status replay_wal(file_system& fs, const std::string& dir, uint64_t after_seq,
                  const std::function<status(uint64_t seq, bytes_view payload)>& fn,
                  wal_replay_stats* stats, uint64_t max_record_bytes) {
  wal_replay_stats local;
  wal_replay_stats& st = stats != nullptr ? *stats : local;
  auto there = fs.exists(dir);
  if (!there.ok()) return there.err();
  if (!*there) return {};
  auto files = list_wal_files(fs, dir);
  if (!files.ok()) return files.err();
  const std::string header = file_header();

  for (const auto& [seq, name] : *files) {
    if (seq <= after_seq) continue;
    const std::string path = join(dir, name);
    auto content = fs.read_file(path);
    if (!content.ok()) return content.err();
    const std::string_view data = *content;

    size_t good_end;  // bytes of the file that stay
    bool torn = false;
    bool corrupt = false;
    if (data.size() < file_header_bytes) {
      // A crash right after creating the file: nothing, or part of the header, reached disk.
      if (!std::string_view(header).starts_with(data) && !all_zero(data)) {
        ++st.corrupt_files;
        continue;
      }
      good_end = 0;
      torn = !data.empty();
    } else if (data.substr(0, file_header_bytes) != header) {
      ++st.corrupt_files;
      continue;
    } else {
      size_t pos = file_header_bytes;
      while (pos < data.size()) {
        const std::string_view rest = data.substr(pos);
        if (rest.size() < record_header_bytes) {
          torn = true;
          break;
        }
        decoder d(rest);
        const uint32_t len = d.get_u32();
        const uint32_t crc = d.get_u32();
        if (len == 0) {
          (all_zero(rest) ? torn : corrupt) = true;
          break;
        }
        if (len > max_record_bytes) {
          corrupt = true;
          break;
        }
        if (len > rest.size() - record_header_bytes) {
          torn = true;
          break;
        }
        const bytes_view payload = as_bytes(rest.substr(record_header_bytes, len));
        if (crc32c(payload) != crc) {
          // A bad last record is a torn write; with records behind it, damage.
          (record_header_bytes + len == rest.size() ? torn : corrupt) = true;
          break;
        }
        if (auto s = fn(seq, payload); !s.ok()) return s;
        ++st.records;
        st.bytes += len;
        pos += record_header_bytes + len;
      }
      good_end = pos;
    }

    ++st.files;
    st.last_seq = seq;
    if (good_end < data.size()) {
      st.torn_tails += torn ? 1 : 0;
      st.corrupt_records += corrupt ? 1 : 0;
      if (auto s = fs.truncate(path, good_end); !s.ok()) return s;
      st.truncated_bytes += data.size() - good_end;
    }
  }
  return {};
}

}  // namespace hearth::io
