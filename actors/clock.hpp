#pragma once
// The wall clock, in the one place the actor shells read it (pure modules take `now` as a
// parameter, so they stay deterministic).

#include <chrono>
#include <cstdint>

namespace hearth {

/// Nanoseconds since the Unix epoch.
inline int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace hearth
