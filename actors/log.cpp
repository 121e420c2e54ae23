#include "actors/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace hearth::log {
namespace {
std::atomic<int> threshold{static_cast<int>(level::info)};
}

void set_level(std::string_view name) {
  level l = level::info;
  if (name == "error") l = level::error;
  else if (name == "warn") l = level::warn;
  else if (name == "debug") l = level::debug;
  threshold.store(static_cast<int>(l));
}

bool enabled(level l) { return static_cast<int>(l) <= threshold.load(std::memory_order_relaxed); }

void write(level l, std::string_view component, std::string_view message) {
  if (!enabled(l)) return;
  static const char* names[] = {"error", "warn", "info", "debug"};
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(64 + message.size());
  line += ts;
  line += ' ';
  line += names[static_cast<int>(l)];
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  (void)!::write(2, line.data(), line.size());
}

}  // namespace hearth::log
