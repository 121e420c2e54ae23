#pragma once
// CPU and I/O priority of the calling thread, for background work (compaction) that must not
// delay the threads that acknowledge writes: partitions appending to and syncing the WAL, and the
// distributor workers decoding requests.

#include "format/error.hpp"

namespace hearth::io {

/// Makes the calling thread (only it, and the io_uring workers it creates later) a background
/// thread: scheduling policy SCHED_BATCH, nice +10 (capped at 19), I/O class best-effort at its lowest level (7;
/// not idle, which could starve compaction forever under a steady WAL load). Only lowers, so no
/// privilege is needed. Fails with `io_error` naming the first step the kernel refused; the steps
/// before it stay applied.
[[nodiscard]] status make_thread_background();

}  // namespace hearth::io
