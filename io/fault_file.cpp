#include "io/fault_file.hpp"

#include <cerrno>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

namespace hearth::io {
namespace {

class fault_writable_file;

/// "a/b/" and "a/b" name the same directory.
std::string norm_dir(std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

std::string_view op_name(fault_op op) {
  switch (op) {
    case fault_op::write:
      return "write";
    case fault_op::sync:
      return "fdatasync";
    case fault_op::sync_dir:
      return "fsync";
    case fault_op::rename:
      return "rename";
  }
  return "?";
}

}  // namespace

struct fault_file_system::state {
  explicit state(file_system& b) : base(b) {}

  struct armed {
    fault_op op;
    uint64_t at;  // fires when counts[op] reaches this
    errc code;
    bool tear;
  };
  struct pending_rename {
    std::string from, to;
    std::optional<std::string> old_to;  // durable content `to` had before, if it existed
  };

  /// Counts one operation of kind `op` and returns the fault armed for it, if any.
  std::optional<armed> next(fault_op op) {
    std::lock_guard<std::mutex> lock(mu);
    const uint64_t n = ++counts[static_cast<size_t>(op)];
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (it->op == op && it->at == n) {
        armed a = *it;
        faults.erase(it);
        return a;
      }
    }
    return std::nullopt;
  }

  static error injected(const armed& a, std::string_view path) {
    error e = errno_error(op_name(a.op), path, a.code == errc::no_space ? ENOSPC : EIO);
    e.message += " (injected fault)";
    return e;
  }

  file_system& base;
  mutable std::mutex mu;  // guards everything below
  std::vector<armed> faults;
  uint64_t counts[4] = {};
  std::map<std::string, uint64_t> durable;  // file opened here -> bytes that survive a crash
  std::set<std::string> created;            // created here; its directory not synced since
  std::vector<pending_rename> renames;      // renamed here; target directory not synced since
  std::set<fault_writable_file*> live;      // open files, killed by a crash
};

namespace {

/// Thread-safety: none (one owner), like every `writable_file`.
class fault_writable_file final : public writable_file {
 public:
  using state = fault_file_system::state;

  fault_writable_file(std::shared_ptr<state> st, std::string path,
                      std::unique_ptr<writable_file> base)
      : st_(std::move(st)), path_(std::move(path)), base_(std::move(base)) {}
  ~fault_writable_file() override {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->live.erase(this);
  }

  status append(bytes_view data) override {
    if (auto s = usable(); !s.ok()) return s;
    if (auto f = st_->next(fault_op::write)) {
      if (f->tear) {
        // The first half reaches the file; the caller only learns that the write failed.
        (void)base_->append(data.first(data.size() / 2));
      }
      failed_ = state::injected(*f, path_);
      return failed_;
    }
    return base_->append(data);
  }

  status sync() override {
    if (auto s = usable(); !s.ok()) return s;
    if (auto f = st_->next(fault_op::sync)) {
      failed_ = state::injected(*f, path_);
      return failed_;
    }
    if (auto s = base_->sync(); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->durable[path_] = base_->size();
    return {};
  }

  /// Makes nothing durable, so the crash model ignores it.
  status write_behind() override {
    if (auto s = usable(); !s.ok()) return s;
    return base_->write_behind();
  }

  uint64_t size() const override { return base_->size(); }

  status close() override {
    if (dead_) return status(errc::io_error, "close " + path_ + ": file lost in a simulated crash");
    return base_->close();
  }

  /// Power loss: the base file is closed (its buffer reaches the file, to be cut off by the
  /// crash's truncation) and every later call fails. Called by `crash` under `st_->mu`.
  void kill() {
    (void)base_->close();
    dead_ = true;
  }

 private:
  status usable() const {
    if (dead_) return status(errc::io_error, "write " + path_ + ": file lost in a simulated crash");
    return failed_;
  }

  std::shared_ptr<state> st_;
  std::string path_;
  std::unique_ptr<writable_file> base_;
  status failed_;  // sticky injected error, as a real file's would be
  bool dead_ = false;
};

}  // namespace

fault_file_system::fault_file_system(file_system& base) : state_(std::make_shared<state>(base)) {}

fault_file_system::~fault_file_system() = default;

void fault_file_system::fail_nth(fault_op op, uint64_t n, errc code) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults.push_back({op, state_->counts[static_cast<size_t>(op)] + n, code, false});
}

void fault_file_system::tear_nth(uint64_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  const uint64_t at = state_->counts[static_cast<size_t>(fault_op::write)] + n;
  state_->faults.push_back({fault_op::write, at, errc::io_error, true});
}

void fault_file_system::clear_faults() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults.clear();
}

uint64_t fault_file_system::count(fault_op op) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->counts[static_cast<size_t>(op)];
}

status fault_file_system::crash() {
  state& s = *state_;
  file_system& base = s.base;
  std::lock_guard<std::mutex> lock(s.mu);
  status first;  // the first failure of the base while rolling back; rolling back goes on
  auto note = [&](status st) {
    if (!st.ok() && first.ok()) first = std::move(st);
  };

  for (fault_writable_file* f : s.live) f->kill();
  s.live.clear();

  // Newest first, so a chain a->b->c unwinds to a.
  for (auto it = s.renames.rbegin(); it != s.renames.rend(); ++it) {
    note(base.rename(it->to, it->from));
    if (auto d = s.durable.find(it->to); d != s.durable.end()) {
      const uint64_t size = d->second;
      s.durable.erase(d);
      s.durable[it->from] = size;
    }
    if (it->old_to) {
      auto f = base.open_appendable(it->to);
      if (!f.ok()) {
        note(f.take_error());
        continue;
      }
      note((*f)->append(as_bytes(*it->old_to)));
      note((*f)->sync());
      note((*f)->close());
    }
  }
  s.renames.clear();

  for (const std::string& p : s.created) {
    if (auto st = base.remove(p); !st.ok() && st.err().code != errc::not_found) note(st);
    s.durable.erase(p);
  }
  s.created.clear();

  for (const auto& [path, size] : s.durable) {
    auto cur = base.file_size(path);
    if (!cur.ok()) {
      if (cur.err().code != errc::not_found) note(cur.take_error());
      continue;
    }
    if (*cur > size) note(base.truncate(path, size));
  }
  return first;
}

result<std::unique_ptr<writable_file>> fault_file_system::open_appendable(const std::string& path) {
  auto existed = state_->base.exists(path);
  if (!existed.ok()) return existed.take_error();
  auto f = state_->base.open_appendable(path);
  if (!f.ok()) return f.take_error();
  const uint64_t size = (*f)->size();
  auto w = std::make_unique<fault_writable_file>(state_, path, std::move(*f));
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!*existed) {
    state_->created.insert(path);
    state_->durable[path] = 0;
  } else {
    state_->durable.try_emplace(path, size);  // reopened: what was unsynced stays unsynced
  }
  state_->live.insert(w.get());
  return std::unique_ptr<writable_file>(std::move(w));
}

result<std::string> fault_file_system::read_file(const std::string& path) {
  return state_->base.read_file(path);
}

result<std::unique_ptr<readable_file>> fault_file_system::open_readable(const std::string& path) {
  return state_->base.open_readable(path);
}

status fault_file_system::rename(const std::string& from, const std::string& to) {
  if (auto f = state_->next(fault_op::rename)) return state::injected(*f, from + " -> " + to);
  // Keep what a crash would bring back in `to`: its durable prefix.
  std::optional<std::string> old_to;
  auto had = state_->base.exists(to);
  if (!had.ok()) return had.take_error();
  if (*had) {
    auto content = state_->base.read_file(to);
    if (!content.ok()) return content.take_error();
    old_to = std::move(*content);
  }
  if (auto st = state_->base.rename(from, to); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(state_->mu);
  if (old_to) {
    if (auto d = state_->durable.find(to); d != state_->durable.end() && d->second < old_to->size())
      old_to->resize(d->second);
  }
  state_->durable.erase(to);
  if (auto d = state_->durable.find(from); d != state_->durable.end()) {
    const uint64_t size = d->second;
    state_->durable.erase(d);
    state_->durable[to] = size;
  }
  state_->renames.push_back({from, to, std::move(old_to)});
  return {};
}

status fault_file_system::remove(const std::string& path) {
  if (auto st = state_->base.remove(path); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->durable.erase(path);
  state_->created.erase(path);
  return {};
}

result<std::vector<std::string>> fault_file_system::list_dir(const std::string& dir) {
  return state_->base.list_dir(dir);
}

status fault_file_system::create_dirs(const std::string& dir) {
  return state_->base.create_dirs(dir);
}

status fault_file_system::sync_dir(const std::string& dir) {
  if (auto f = state_->next(fault_op::sync_dir)) return state::injected(*f, dir);
  if (auto st = state_->base.sync_dir(dir); !st.ok()) return st;
  const std::string d = norm_dir(dir);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::erase_if(state_->created, [&](const std::string& p) { return parent_dir(p) == d; });
  std::erase_if(state_->renames,
                [&](const state::pending_rename& r) { return parent_dir(r.to) == d; });
  return {};
}

result<bool> fault_file_system::exists(const std::string& path) {
  return state_->base.exists(path);
}

status fault_file_system::truncate(const std::string& path, uint64_t size) {
  if (auto st = state_->base.truncate(path, size); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(state_->mu);
  if (auto d = state_->durable.find(path); d != state_->durable.end()) d->second = size;
  return {};
}

result<uint64_t> fault_file_system::file_size(const std::string& path) {
  return state_->base.file_size(path);
}

}  // namespace hearth::io
