#pragma once
// Pure helpers of hearthctl (tools/hearthctl.cpp): time arguments, human units, JSON strings,
// aligned tables and the terminal flame tree. No I/O, no RPC: unit-tested in
// tools/hearthctl_util.test.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::ctl {

/// A time argument in Unix ns: "now", "now-1h" (s, m, h, d, w; several like "now-1h30m"),
/// RFC 3339 ("2026-11-22T10:00:00Z", "…T10:00:00.5+02:00"), or a Unix timestamp whose digit
/// count picks the unit (10 digits = s, 13 = ms, 16 = µs, 19 = ns). nullopt when malformed.
std::optional<int64_t> parse_time(std::string_view s, int64_t now_ns);

/// A duration argument: "15s", "1m", "2h30m", "500ms", or a plain number of seconds.
std::optional<double> parse_duration_s(std::string_view s);

/// "1.5 KiB", "12.0 MiB"; below 1024: "512 B".
std::string human_bytes(double bytes);
/// "1.20 s", "350 ms", "2h 3m"; from nanoseconds.
std::string human_duration_ns(double ns);
/// "1.2k", "3.4M"; plain below 10000.
std::string human_count(double n);
/// A value in the unit of a profile type's sample ("nanoseconds", "bytes", "count", ...).
std::string human_value(double v, std::string_view unit);
/// The sample unit of a profile type id "name:sample_type:sample_unit:period_type:period_unit";
/// "" when it is not one.
std::string sample_unit_of(std::string_view profile_type_id);
/// "2026-11-22 10:00:00Z" (UTC) from Unix ns.
std::string format_time_ns(int64_t ns);

/// Appends `s` as a JSON string (quotes and escapes).
void append_json(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

/// Left-aligned text columns and right-aligned number columns, padded to the widest cell.
class table {
 public:
  /// `right[i]`: column i is right-aligned (numbers).
  table(std::vector<std::string> header, std::vector<bool> right);
  void add(std::vector<std::string> row);
  /// The table; the last column is cut to fit `width` when width > 0.
  std::string render(size_t width = 0) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// A flame graph as Pyroscope's levels (4 ints per node: x delta, total, self, name index).
struct flame_levels {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> levels;
};

struct tree_options {
  int max_depth = 0;          ///< 0 = unlimited (below the root)
  double min_percent = 0.5;   ///< nodes under this share of the total are folded into "…"
  size_t width = 0;           ///< cut lines to this many columns (0 = no limit)
  std::string unit;           ///< sample unit for human values
};

/// The terminal tree: one line per node (children by total, descending) with total and self,
/// both in human units and as a percentage of the root, indented by depth.
std::string render_tree(const flame_levels& g, const tree_options& o);

/// A progress bar line ("\r[#####.....]  42%  1.2 MiB/2.9 MiB"), `width` columns at most.
std::string progress_line(uint64_t done, uint64_t total, size_t width);

}  // namespace hearth::ctl
