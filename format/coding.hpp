#pragma once
// Byte-level coding shared by every on-disk and wire format we write ourselves: little-endian
// fixed-width integers, unsigned/zig-zag varints, CRC-32C, an append-only encoder and a
// bounds-checked decoder with a sticky error (after Prometheus' Encbuf/Decbuf).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

/// A read-only view of bytes. Whoever hands one out states what keeps the bytes alive.
using bytes_view = std::span<const std::byte>;

/// A byte range of a file or buffer: [offset, offset + length).
struct byte_range {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

inline bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(bytes_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// CRC-32C (Castagnoli), as used by every section and WAL record. `init` chains partial sums.
/// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once, at the first call), else
/// crc32c_portable(); both give the same value for every input.
uint32_t crc32c(bytes_view data, uint32_t init = 0);
/// The table-driven CRC-32C (slicing-by-8) that crc32c() falls back to without SSE4.2.
uint32_t crc32c_portable(bytes_view data, uint32_t init = 0);
/// True when crc32c() runs on the SSE4.2 crc32 instruction.
bool crc32c_hardware();

/// Appends encoded values to a growing byte string. Thread-safety: none (a value type).
class encoder {
 public:
  void put_u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void put_u32(uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
    buf_.append(b, 4);
  }
  void put_u64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
    buf_.append(b, 8);
  }
  void put_uvarint(uint64_t v) {
    if (v < 0x80) {  // the common case in every column we write: one byte
      buf_.push_back(static_cast<char>(v));
      return;
    }
    char b[max_uvarint_bytes];
    buf_.append(b, static_cast<size_t>(write_uvarint(b, v) - b));
  }
  /// Zig-zag signed varint.
  void put_varint(int64_t v) { put_uvarint(zigzag(v)); }
  /// Appends the uvarints of `value_at(0) .. value_at(n - 1)`, writing through a pointer into
  /// space reserved for n of the longest encoding and then cut back: one capacity check per run
  /// instead of one per byte (the sample and profile columns of a segment are such runs).
  template <class F>
  void put_uvarints(size_t n, F&& value_at) {
    const size_t used = buf_.size();
    buf_.resize(used + n * max_uvarint_bytes);
    char* p = buf_.data() + used;
    for (size_t k = 0; k < n; ++k) p = write_uvarint(p, value_at(k));
    buf_.resize(static_cast<size_t>(p - buf_.data()));
  }
  /// put_uvarints for zig-zag signed varints.
  template <class F>
  void put_varints(size_t n, F&& value_at) {
    put_uvarints(n, [&](size_t k) { return zigzag(value_at(k)); });
  }
  /// uvarint length, then the bytes.
  void put_string(std::string_view s) {
    put_uvarint(s.size());
    buf_.append(s);
  }
  void put_raw(std::string_view s) { buf_.append(s); }
  void put_raw(bytes_view b) { buf_.append(as_chars(b)); }

  size_t size() const { return buf_.size(); }
  std::string& buffer() { return buf_; }
  const std::string& buffer() const { return buf_; }
  std::string release() { return std::move(buf_); }
  void reset() { buf_.clear(); }

 private:
  static constexpr size_t max_uvarint_bytes = 10;
  static uint64_t zigzag(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  }
  // Writes v at p (room for max_uvarint_bytes) and returns the end.
  static char* write_uvarint(char* p, uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
    return p;
  }

  std::string buf_;
};

/// Reads encoded values from a byte view with bounds checks. The first failure makes the decoder
/// sticky: every later read returns 0/empty and `ok()` stays false, so callers check once at the
/// end of a record. Views returned by `get_string`/`get_raw` point into the input.
class decoder {
 public:
  explicit decoder(bytes_view b) : p_(b.data()), end_(b.data() + b.size()) {}
  explicit decoder(std::string_view s) : decoder(as_bytes(s)) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }
  /// Marks the decoder as failed (for semantic checks by the caller).
  void fail() {
    ok_ = false;
    p_ = end_;
  }

  uint8_t get_u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t get_u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p_[i]) << (8 * i);
    p_ += 4;
    return v;
  }
  uint64_t get_u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&v, p_, 8);
    } else {
      for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    }
    p_ += 8;
    return v;
  }
  /// The one-byte case inline everywhere; longer varints out of line.
  [[gnu::always_inline]] uint64_t get_uvarint() {
    if (p_ < end_ && static_cast<uint8_t>(*p_) < 0x80) [[likely]]
      return static_cast<uint8_t>(*p_++);
    return get_uvarint_long();
  }
  /// get_uvarint for columns whose values mostly take several bytes (nanosecond time deltas):
  /// varints of up to 8 bytes decoded inline, without a loop.
  [[gnu::always_inline]] uint64_t get_uvarint_wide() {
    if constexpr (std::endian::native == std::endian::little) {
      if (remaining() >= 8) [[likely]] {  // 0 once failed
        uint64_t v;
        if (take_varint8(v)) [[likely]]
          return v;
      }
    }
    return get_uvarint_long();
  }
  [[gnu::noinline]] uint64_t get_uvarint_long() {
    if constexpr (std::endian::native == std::endian::little) {
      if (ok_ && remaining() >= 8) [[likely]] {
        uint64_t v;
        if (take_varint8(v)) return v;
      }
    }
    if (ok_ && remaining() >= 10) [[likely]] {
      // No varint of ours is longer than 10 bytes: no bounds check per byte.
      uint64_t v = 0;
      const std::byte* q = p_;
      for (int shift = 0; shift < 64; shift += 7) {
        auto b = static_cast<uint8_t>(*q++);
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (b < 0x80) {
          p_ = q;
          return v;
        }
      }
      fail();
      return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!need(1)) return 0;
      auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    fail();
    return 0;
  }
  /// With 8 bytes left: a varint of up to 8 bytes (56 bits) at once. Finds the terminating byte
  /// (high bit clear), keeps the bytes up to it, then gathers the 7-bit groups pairwise (bytes,
  /// 16-bit lanes, 32-bit lanes). False (nothing taken) for a longer varint.
  [[gnu::always_inline]] bool take_varint8(uint64_t& v) {
    uint64_t w;
    std::memcpy(&w, p_, 8);
    const uint64_t stops = ~w & 0x8080808080808080ULL;
    if (stops == 0) return false;
    // stops ^ (stops - 1): every bit up to the lowest stop bit, i.e. the varint's bytes.
    uint64_t x = w & (stops ^ (stops - 1)) & 0x7f7f7f7f7f7f7f7fULL;
    x = (x & 0x007f007f007f007fULL) | ((x & 0x7f007f007f007f00ULL) >> 1);
    x = (x & 0x00003fff00003fffULL) | ((x & 0x3fff00003fff0000ULL) >> 2);
    x = (x & 0x000000000fffffffULL) | ((x & 0x0fffffff00000000ULL) >> 4);
    p_ += (std::countr_zero(stops) + 1) / 8;
    v = x;
    return true;
  }
  int64_t get_varint() {
    uint64_t u = get_uvarint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  [[gnu::always_inline]] int64_t get_varint_wide() {
    uint64_t u = get_uvarint_wide();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  /// A uvarint that must fit in 32 bits and be <= `max`.
  uint32_t get_uvarint32(uint64_t max = UINT32_MAX) {
    uint64_t v = get_uvarint();
    if (v > max) {
      fail();
      return 0;
    }
    return static_cast<uint32_t>(v);
  }
  std::string_view get_string() {
    uint64_t n = get_uvarint();
    if (!need(n)) return {};
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  bytes_view get_raw(size_t n) {
    if (!need(n)) return {};
    bytes_view b(p_, n);
    p_ += n;
    return b;
  }

 private:
  bool need(uint64_t n) {
    if (ok_ && n <= remaining()) return true;
    fail();
    return false;
  }

  const std::byte* p_;
  const std::byte* end_;
  bool ok_ = true;
};

}  // namespace hearth
