#pragma once
// SelectMergeProfile / PROFILE_FORMAT_PPROF (pyroscope-api.md §2.2, §2.3): the selected samples
// merged into one full-fidelity pprof profile. A per-block partial keeps the samples' location
// stacks and the symbols they use (mappings, functions, locations with their lines, strings),
// de-duplicated by content, so partials of any blocks merge; the render writes the
// perftools.profiles.Profile protobuf bytes (uncompressed) with a hand-written encoder.
// Pure and deterministic: output bytes depend only on the partial's content and the options.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "query/selector.hpp"

namespace hearth::query {

/// types.v1.GoPGO: a profile trimmed for Go's profile-guided optimization.
struct go_pgo {
  uint32_t keep_locations = 0;     ///< keep only this many leaf-most locations; 0 = all
  bool aggregate_callees = false;  ///< zero the innermost line number of each leaf location
};

/// Which stacks a pprof partial takes. With `pgo` set `call_site` is ignored (as in Pyroscope).
struct pprof_selector {
  std::vector<std::string> call_site;  ///< root-first prefix of frame names; empty = all
  std::optional<go_pgo> pgo;
  /// Sorted, unique span ids; non-empty: only the span samples (block_data::spans) with one of
  /// these ids are taken instead of the profiles' samples (SelectMergeSpanProfile).
  std::vector<uint64_t> span_ids;
};

/// Merged samples and the symbols they use. Sample i has the location stack
/// stack_locations[stack_offsets[i], stack_offsets[i + 1]) (indexes into syms.locations, leaf
/// first, as pprof) and value values[i]; stacks are unique and no value is 0. Symbols are unique by
/// content (strings by bytes, mappings by all fields, functions by name/system name/file/start
/// line, locations by mapping/address/lines), as symbol_interner (format/normalize.hpp) keeps them.
/// `first_ns`/`last_end_ns`: the earliest selected profile's time and the latest end
/// (time + duration); both 0 while `profiles` is 0. `period`: the largest period of the selected
/// profiles (0 when none is known).
/// A plain value type: copyable, only ints and strings, fit for an actor message.
struct pprof_partial {
  symbols syms;
  std::vector<uint32_t> stack_offsets{0};
  std::vector<uint32_t> stack_locations;
  std::vector<int64_t> values;
  int64_t first_ns = 0;
  int64_t last_end_ns = 0;
  uint64_t profiles = 0;  ///< profiles that contributed
  int64_t period = 0;

  size_t samples() const { return values.size(); }
};

/// Adds the samples of the profiles of `series` in [start_ns, end_ns) whose stacks pass `sel` to
/// `out` (which holds the partial of the same query, or is empty). Values are summed per stack
/// after the selector's trimming, so trimmed stacks that become equal are one sample.
void select_pprof(const block_data& block, std::span<const uint32_t> series, int64_t start_ns,
                  int64_t end_ns, const pprof_selector& sel, pprof_partial& out);

/// Merges `from` into `into`, de-duplicating symbols and stacks by content. Exact. Cost:
/// linear in the sizes of both (`into` is re-indexed).
void merge_pprof(pprof_partial& into, const pprof_partial& from);

/// What the render needs besides the samples.
struct pprof_options {
  profile_type type;   ///< sample type/unit and period type/unit come from here
  /// Overrides the partial's period when not 0 (the partial's is the stored profiles' period).
  int64_t period = 0;
  /// > 0: Pyroscope's pprof truncation: in the call tree of functions (inlined frames included)
  /// the nodes whose total is below the max_nodes-th largest node total are cut from every stack;
  /// the locations they leave empty become one "other" location (a function named "other"), a
  /// stack cut entirely becomes just "other". <= 0: no truncation.
  int64_t max_nodes = 0;
};

/// The merged profile as perftools.profiles.Profile bytes (not gzipped): one sample type
/// (type.sample_type/type.sample_unit), period type and period (opts.period, else p.period),
/// time_nanos/duration_nanos from
/// first_ns/last_end_ns, only the referenced mappings/locations/functions/strings with dense ids
/// from 1 (strings from index 0 = ""), samples sorted by their location id lists.
std::string render_pprof(const pprof_partial& p, const pprof_options& opts);

}  // namespace hearth::query
