#pragma once
// A reader for JDK Flight Recorder files (format 2.x, JDK 11+ and async-profiler) that turns the
// profiling events into pprof profiles the way Pyroscope's Java ingest does (pyroscope-api.md §3.2;
// profile types as Grafana's jfr-parser names them). It reads each chunk's header, its metadata
// (the class and field layout of every event and constant type), its constant pools (stack traces,
// frames, methods, classes, symbols, thread states) and its events, and keeps:
//   jdk.ExecutionSample (thread not sleeping)  -> process_cpu  cpu:nanoseconds, 1e9/sampleRate each
//   jdk.ExecutionSample when the recording's `event` setting is `wall` (async-profiler)
//                                              -> wall         wall:nanoseconds, 1e9/sampleRate each
//   jdk.ObjectAllocationInNewTLAB              -> memory alloc_in_new_tlab_objects, _bytes (tlabSize)
//   jdk.ObjectAllocationOutsideTLAB            -> memory alloc_outside_tlab_objects, _bytes
//   jdk.ObjectAllocationSample                 -> memory alloc_sample_objects, _bytes (weight)
//   jdk.JavaMonitorEnter                       -> mutex contentions:count, delay:nanoseconds
//   jdk.ThreadPark                             -> block contentions:count, delay:nanoseconds
// Frames are named `<class>.<method>` with the class in the JVM's internal form
// (`java/lang/Thread.run`); generated lambda and reflection-accessor classes are merged
// (`Main$$Lambda$14/0x0000000800c0b000` -> `Main$$Lambda_`), as Pyroscope does (and also in the
// `Main$$Lambda$14+0x00007f78b8007a08/992802731` form of JDK 17's recorder).
// Untrusted bytes in, errors naming the chunk, byte offset and reason out; every loop is bounded
// by the input size and the limits below.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "format/coding.hpp"
#include "format/error.hpp"
#include "format/pprof.hpp"

namespace hearth {

/// Bounds on one JFR upload besides its size.
struct jfr_limits {
  size_t max_stack_depth = 4096;  ///< a stack trace with more frames is rejected
  size_t max_nesting = 32;        ///< nesting of metadata elements and of inline struct values
};

/// One profile of a recording: the `__name__` Pyroscope gives it and the pprof itself.
struct jfr_profile {
  std::string metric;  ///< process_cpu, wall, memory, mutex, block
  pprof::profile profile;
};

/// The profiles of one recording. Their strings point into `strings`, so the whole value moves
/// as one (std::deque keeps its elements in place when moved). Thread-safety: a value type.
struct jfr_profiles {
  std::deque<std::string> strings;
  std::vector<jfr_profile> profiles;  ///< only types with at least one sample, in the order above
  /// The recording's `event` setting (jdk.ActiveSetting, written by async-profiler: `itimer`,
  /// `cpu`, `wall`, ...); Pyroscope stores it as the series label `jfr_event`. "" when absent.
  std::string event;
};

/// The Java agent's `labels` form part (Pyroscope's LabelsSnapshot protobuf): label sets by
/// context id, as pairs of string ids, and the strings. async-profiler events carry a `contextId`
/// that selects the labels of their samples.
struct jfr_labels {
  std::unordered_map<int64_t, std::vector<std::pair<int64_t, int64_t>>> contexts;
  std::unordered_map<int64_t, std::string> strings;
};

/// Decodes a LabelsSnapshot `{map<int64, Context{map<int64,int64> labels = 1}> contexts = 1;
/// map<int64, string> strings = 2}` (uncompressed). Fails with bad_request_body when the bytes
/// are not that protobuf. Work is linear in the input size.
[[nodiscard]] result<jfr_labels> parse_jfr_labels(bytes_view data);

/// Decodes a JFR recording (one or more chunks, uncompressed) into profiles. `sample_rate` (Hz,
/// > 0) sets the weight of one execution sample: 1e9 / sample_rate nanoseconds. Events without a
/// stack trace, frames whose method or class is missing from the constant pools, and event
/// types other than the ones above are skipped. With `labels`, the samples of events whose
/// `contextId` names a context get that context's labels as pprof sample labels (string label
/// pairs whose key or value is missing or empty are left out), for CPU, TLAB allocation and
/// monitor events, as Pyroscope does. Fails with bad_request_body naming the chunk, the
/// byte offset and what was wrong (bad magic, unsupported version, truncation, sizes or offsets
/// outside the chunk, unknown classes, bad string encodings, limits exceeded).
[[nodiscard]] result<jfr_profiles> parse_jfr(bytes_view data, uint32_t sample_rate,
                                             const jfr_labels* labels = nullptr,
                                             const jfr_limits& lim = {});

}  // namespace hearth
