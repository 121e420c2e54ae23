#pragma once
// Hand-written decoder for OTLP profiles export requests (package
// opentelemetry.proto.collector.profiles.v1development, numbered as opentelemetry-proto v1.10.0;
// our declaration: cluster/proto/otlp_*.proto) that turns each OTLP profile into the pprof shape the
// distributor already normalizes (format/normalize.hpp, source::push), with the labels Pyroscope's
// OTLP ingest gives it (pyroscope-api.md §5, §9):
//   `__delta__`="false", `__otel__`="true", `__name__` (below), the resource's string attributes
//   then the scope's (first occurrence of a key wins), and `service_name`: the resource's
//   `service.name`, else `unknown_service:<process.executable.name>`, else `unknown_service`. A
//   sample whose attributes carry `service.name` goes to a profile of that service instead.
//   `__name__` and the stored sample type: `samples`/`count` with period type `cpu`/`nanoseconds`
//   -> `process_cpu`, stored as `cpu`/`nanoseconds` with each value times the period;
//   `off_cpu`/`nanoseconds` without period -> `off_cpu`; otherwise the period type's name (the
//   third part of Pyroscope's `type:unit:period type:period unit` string); `process_cpu` when that
//   is empty.
// Samples: the value is the sum of `values` (one per timestamp when both are given), or the
// number of timestamps when there are no values. Other string attributes of a sample become pprof
// sample labels (so series labels, as for pprof); a link (link_index != 0) adds `span_id` (16 hex
// digits) and, for a 16-byte trace id, `trace_id`. Locations whose `profile.frame.type` attribute
// is `kernel` get their mapping's file name prefixed with `[kernel]`; a mapping's
// `process.executable.build_id.gnu` attribute is its build id.
// Untrusted bytes in; every dictionary index is bounds-checked and errors name the table, the
// index and where it was used. Work is linear in the input size plus, per profile, the dictionary
// entries it references.

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "format/block.hpp"
#include "format/coding.hpp"
#include "format/error.hpp"
#include "format/pprof.hpp"

namespace hearth::otlp {

/// One OTLP profile (or, when samples name other services, one service's part of it) as a pprof
/// profile with a single sample type, ids 1..N and strings[0] == "".
struct converted_profile {
  label_set labels;         ///< sorted by name; for batch_builder with source::push
  int64_t time_ns = 0;      ///< time_unix_nano (0 when absent)
  int64_t duration_ns = 0;  ///< duration_nano
  std::string where;        ///< "resource_profiles[0].scope_profiles[1].profiles[2]", for errors
  pprof::profile profile;
};

/// The profiles of one request. Their strings point into the buffer given to decode() and into
/// `owned`, so the value moves as one (std::deque keeps its elements in place).
struct request {
  std::deque<std::string> owned;
  std::vector<converted_profile> profiles;
};

/// Bounds on what one request may expand to (a stack of the dictionary is stored once but
/// copied into every sample that uses it, and every profile carries its own labels).
struct limits {
  /// Profiles the request converts to (one per OTLP profile and service with samples).
  size_t max_profiles = 10000;
  /// Sum over all samples of their stack's length.
  uint64_t max_location_refs = 64ull << 20;
  /// Labels not starting with `__` that resource and scope attributes (with service_name) may
  /// give a profile: normalize_limits::max_labels, checked before they are copied to every
  /// profile of the scope (bad_labels).
  size_t max_labels = 30;
};

/// Decodes a binary ExportProfilesServiceRequest (uncompressed). Fails with bad_request_body on
/// malformed protobuf (naming the field and byte offset), a missing `dictionary`, no
/// `resource_profiles`, a profile without `sample_type`, a sample without values or timestamps,
/// and any dictionary index out of range (naming the table, the index and its user); with
/// body_too_large beyond `lim`. OTLP profiles without samples convert to nothing (as Pyroscope).
/// Unknown fields are skipped; packed and unpacked repeated scalars are both accepted.
/// Requires: `raw` outlives the result.
[[nodiscard]] result<request> decode(bytes_view raw, const limits& lim = {});

}  // namespace hearth::otlp
