#include "format/folded.hpp"

#include <string>
#include <unordered_map>
#include <vector>

namespace hearth {
namespace {

struct suffix_rule {
  std::string_view suffix, name, type, unit;
  bool scaled;  // cpu/wall: counts become nanoseconds of samples
};

// PY ingest_adapter.go convertMetadata, as a table. Scaled rules get type cpu/wall, unit
// nanoseconds and period type cpu:nanoseconds.
constexpr suffix_rule k_rules[] = {
    {"cpu", "process_cpu", "cpu", "nanoseconds", true},
    {"itimer", "process_cpu", "cpu", "nanoseconds", true},
    {"wall", "wall", "wall", "nanoseconds", true},
    {"seconds", "wall", "wall", "nanoseconds", true},
    {"nanoseconds", "wall", "wall", "nanoseconds", true},
    {"microseconds", "wall", "wall", "nanoseconds", true},
    {"milliseconds", "wall", "wall", "nanoseconds", true},
    {"inuse_objects", "memory", "inuse_objects", "count", false},
    {"inuse_space", "memory", "inuse_space", "bytes", false},
    {"alloc_objects", "memory", "alloc_objects", "count", false},
    {"alloc_space", "memory", "alloc_space", "bytes", false},
    {"goroutines", "goroutine", "goroutines", "count", false},
    {"mutex_count", "mutex", "contentions", "count", false},
    {"mutex_duration", "mutex", "delay", "nanoseconds", false},
    {"block_count", "block", "contentions", "count", false},
    {"block_duration", "block", "delay", "nanoseconds", false},
    {"lock_count", "block", "contentions", "count", false},
    {"lock_duration", "block", "delay", "nanoseconds", false},
    {"alloc_in_new_tlab_objects", "memory", "alloc_in_new_tlab_objects", "count", false},
    {"alloc_in_new_tlab_bytes", "memory", "alloc_in_new_tlab_bytes", "bytes", false},
    {"alloc_outside_tlab_objects", "memory", "alloc_outside_tlab_objects", "count", false},
    {"alloc_outside_tlab_bytes", "memory", "alloc_outside_tlab_bytes", "bytes", false},
    {"live", "memory", "live", "count", false},
    {"exceptions", "exceptions", "samples", "count", false},
    {"bytes", "memory", "samples", "bytes", false},
};

std::string line_no(size_t n) { return "line " + std::to_string(n); }

}  // namespace

result<legacy_text_type> legacy_text_type_of(std::string_view app_name, uint32_t sample_rate) {
  std::string_view app = app_name, suffix = "cpu";
  if (size_t dot = app_name.rfind('.'); dot != std::string_view::npos) {
    app = app_name.substr(0, dot);
    suffix = app_name.substr(dot + 1);
  }
  for (const suffix_rule& r : k_rules) {
    if (r.suffix != suffix) continue;
    if (app.empty())
      return error{errc::bad_labels, "application name " + quote_untrusted(app_name) +
                                         " has nothing before its profile type suffix"};
    legacy_text_type t;
    t.app = app;
    t.name = r.name;
    t.type = r.type;
    t.unit = r.unit;
    if (r.scaled) {
      t.period_type = "cpu";
      t.period_unit = "nanoseconds";
      t.period = 1'000'000'000 / static_cast<int64_t>(sample_rate);
    }
    return t;
  }
  return error{errc::unknown_profile_type,
               "unknown profile type " + quote_untrusted(suffix) + " (the suffix of name " +
                   quote_untrusted(app_name) +
                   "); text formats take the type from the app name's last '.', e.g. myapp.cpu, "
                   "myapp.alloc_space, myapp.wall"};
}

result<pprof::profile> parse_text_profile(std::string_view text, text_format f,
                                          const legacy_text_type& t, const text_limits& lim) {
  pprof::profile p;
  p.strings.push_back("");
  auto intern = [&p](std::string_view s) {
    p.strings.push_back(s);
    return static_cast<int64_t>(p.strings.size() - 1);
  };
  p.sample_types.push_back({intern(t.type), intern(t.unit)});
  if (!t.period_type.empty() || !t.period_unit.empty())
    p.period_type = {intern(t.period_type), intern(t.period_unit)};
  p.period = t.period;

  // Frame text -> location id (1-based; function i+1 and location i+1 go together).
  std::unordered_map<std::string_view, uint64_t> frames;
  std::vector<uint64_t> stack;  // location ids of one line, root first
  size_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    if (l.size() > lim.max_line_bytes)
      return error{errc::bad_request_body, line_no(line) + " is " + std::to_string(l.size()) +
                                               " bytes, over the limit of " +
                                               std::to_string(lim.max_line_bytes)};
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank

    uint64_t count = 1;
    if (f == text_format::folded) {
      size_t sp = l.rfind(' ');
      if (sp == std::string_view::npos)
        return error{errc::bad_request_body,
                     line_no(line) + " has no sample count: want 'frame;frame;frame <count>', got " +
                         quote_untrusted(l)};
      std::string_view num = l.substr(sp + 1);
      l = l.substr(0, sp);
      if (num.empty() || num.size() > 19 || num.find_first_not_of("0123456789") != std::string_view::npos)
        return error{errc::bad_request_body, line_no(line) + ": sample count " + quote_untrusted(num) +
                                                 " is not a non-negative decimal integer"};
      count = 0;
      for (char c : num) count = count * 10 + static_cast<uint64_t>(c - '0');
      if (count > static_cast<uint64_t>(INT64_MAX))
        return error{errc::bad_request_body,
                     line_no(line) + ": sample count " + quote_untrusted(num) + " overflows int64"};
    }
    int64_t value = static_cast<int64_t>(count);
    if (t.period > 0) {
      if (count > static_cast<uint64_t>(INT64_MAX / t.period))
        return error{errc::bad_request_body,
                     line_no(line) + ": sample count " + std::to_string(count) + " times the period " +
                         std::to_string(t.period) + " ns overflows int64"};
      value = static_cast<int64_t>(count) * t.period;
    }

    stack.clear();
    for (size_t fpos = 0;;) {
      size_t semi = l.find(';', fpos);
      std::string_view frame = l.substr(fpos, semi == std::string_view::npos ? l.size() - fpos : semi - fpos);
      if (frame.empty())
        return error{errc::bad_request_body,
                     line_no(line) + ": frame " + std::to_string(stack.size() + 1) +
                         " is empty (frames are separated by single ';')"};
      if (stack.size() == lim.max_stack_depth)
        return error{errc::bad_request_body, line_no(line) + " has more than " +
                                                 std::to_string(lim.max_stack_depth) + " frames"};
      auto [it, inserted] = frames.emplace(frame, p.locations.size() + 1);
      if (inserted) {
        uint64_t id = it->second;
        p.functions.push_back({id, intern(frame), 0, 0, 0});
        p.lines.push_back({id, 0});
        p.locations.push_back({id, 0, 0, static_cast<uint32_t>(p.lines.size() - 1), 1, false});
      }
      stack.push_back(it->second);
      if (semi == std::string_view::npos) break;
      fpos = semi + 1;
    }
    if (value == 0) continue;
    pprof::sample s;
    s.loc_begin = static_cast<uint32_t>(p.location_ids.size());
    s.loc_count = static_cast<uint32_t>(stack.size());
    s.value_begin = static_cast<uint32_t>(p.values.size());
    p.location_ids.insert(p.location_ids.end(), stack.rbegin(), stack.rend());  // leaf first
    p.values.push_back(value);
    p.samples.push_back(s);
  }
  return p;
}

}  // namespace hearth
