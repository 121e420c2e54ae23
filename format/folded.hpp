#pragma once
// The legacy `/ingest` text formats (pyroscope-api.md §3.2, §3.3): `format=folded` (collapsed
// stacks, `root;caller;leaf <count>` per line, Pyroscope's "groups" and the default format) and
// `format=lines` (one stack per line, each line one sample). Both become a pprof::profile whose
// single sample type is picked, as Pyroscope does, by the app name's last dot-suffix. Untrusted
// text in, error values naming the line and the reason out; work is linear in the text size.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/error.hpp"
#include "format/pprof.hpp"

namespace hearth {

/// What Pyroscope makes of a text upload's `name` (PY `ingest_adapter.go` convertMetadata): the
/// last `.`-separated part of the app name selects the profile type and is removed from the
/// service name. All views except `app` point to static strings.
struct legacy_text_type {
  std::string_view app;          ///< the app name without the suffix (points into the input)
  std::string_view name;         ///< `__name__`: process_cpu, wall, memory, mutex, block, ...
  std::string_view type;         ///< the sample type
  std::string_view unit;         ///< the sample unit
  std::string_view period_type;  ///< "" when the type has no period
  std::string_view period_unit;  ///< "" when the type has no period
  /// 0, or (cpu/wall types) 1e9 / sampleRate: every count is multiplied by it, making
  /// nanoseconds of samples.
  int64_t period = 0;
};

/// Maps an app name (the `__name__` that parse_app_name() returns) and the request's sampleRate
/// (Hz; callers pass 100 when it is absent or invalid) to the profile type Pyroscope stores:
///   no suffix, `cpu`, `itimer`          -> process_cpu:cpu:nanoseconds:cpu:nanoseconds (scaled)
///   `wall`, `seconds`, `nanoseconds`, `microseconds`, `milliseconds`
///                                       -> wall:wall:nanoseconds:cpu:nanoseconds (scaled)
///   `alloc_objects`, `inuse_objects`    -> memory:<suffix>:count::
///   `alloc_space`, `inuse_space`        -> memory:<suffix>:bytes::
///   `goroutines`                        -> goroutine:goroutines:count::
///   `mutex_count`, `mutex_duration`     -> mutex:contentions:count:: / mutex:delay:nanoseconds::
///   `block_count`, `block_duration`     -> block:contentions:count:: / block:delay:nanoseconds::
///   `lock_count`, `lock_duration`       -> block:contentions:count:: / block:delay:nanoseconds::
///   `alloc_in_new_tlab_{objects,bytes}`, `alloc_outside_tlab_{objects,bytes}`, `live`
///                                       -> memory:<suffix>:{count,bytes}::
///   `exceptions`                        -> exceptions:samples:count::
///   `bytes`                             -> memory:samples:bytes::
/// Fails with unknown_profile_type on any other suffix (so `my.app` is rejected, as upstream)
/// and with bad_labels when nothing is left of the app name. Requires: sample_rate > 0.
[[nodiscard]] result<legacy_text_type> legacy_text_type_of(std::string_view app_name,
                                                           uint32_t sample_rate);

/// The two text bodies.
enum class text_format : uint8_t {
  folded,  ///< `frame;frame;frame <count>`: the count follows the last space
  lines,   ///< `frame;frame;frame`: each line counts 1
};

/// Bounds on one text upload (the body size bounds the rest).
struct text_limits {
  size_t max_line_bytes = 1 << 20;  ///< a longer line is rejected
  size_t max_stack_depth = 4096;    ///< a line with more frames is rejected
};

/// Parses a folded or lines body into a profile with one sample type (`t.type`/`t.unit`,
/// period `t.period_type`/`t.period_unit`/`t.period`). Frames are separated by `;`, root first;
/// each distinct frame becomes one function and one location. Lines end in LF or CRLF; blank
/// lines are skipped, as are samples whose count is 0. Identical stacks are not merged here
/// (batch_builder sums them). Fails with bad_request_body naming the 1-based line and what was
/// wrong: a line over max_line_bytes, more than max_stack_depth frames, an empty frame, no count
/// or a count that is not a non-negative decimal integer (folded), a count that overflows int64
/// once multiplied by the period.
/// Requires: `text` and `t` outlive the returned profile (its strings point into both).
[[nodiscard]] result<pprof::profile> parse_text_profile(std::string_view text, text_format f,
                                                        const legacy_text_type& t,
                                                        const text_limits& lim = {});

}  // namespace hearth
