#pragma once
// Internal to io/: the io_uring backend's factory, used by `make_file_system` (io/file.cpp).
// The implementation, and why rings are pooled per operation, is in io/uring_file.cpp.

#include <memory>

#include "io/file.hpp"

namespace hearth::io {

/// Builds the io_uring backend after probing the kernel: a ring must come up and support READ,
/// WRITE and FSYNC. On failure returns `errc::unavailable` and sets `*probe_errno` to the
/// positive errno that explains it (EINVAL when an opcode is missing), so the caller can decide
/// whether to fall back.
[[nodiscard]] result<std::unique_ptr<file_system>> make_uring_file_system(int* probe_errno);

}  // namespace hearth::io
