#pragma once
// Operator-facing logging: one line per event on stderr, "ts level component: message", with
// the ids (tenant, shard, segment) in the message. Thread-safe (one write(2) per line).

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::log {

enum class level : uint8_t { error = 0, warn = 1, info = 2, debug = 3 };

/// Sets the threshold (from config "log.level"). Call before starting threads.
void set_level(std::string_view name);
/// True when messages of `l` are printed.
bool enabled(level l);
/// Writes one line if `l` is enabled.
void write(level l, std::string_view component, std::string_view message);

inline void error(std::string_view c, std::string_view m) { write(level::error, c, m); }
inline void warn(std::string_view c, std::string_view m) { write(level::warn, c, m); }
inline void info(std::string_view c, std::string_view m) { write(level::info, c, m); }
inline void debug(std::string_view c, std::string_view m) { write(level::debug, c, m); }

}  // namespace hearth::log
