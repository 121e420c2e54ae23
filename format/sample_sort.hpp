#pragma once
// The per-profile sample sort shared by the segment writer and the streaming compaction merge:
// both lay a profile's (stack, value) pairs out by ascending stack id so the ids delta-encode.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#include "format/block.hpp"

namespace hearth {

// Sorts one profile's samples by stack id (ids must be < `nodes`). Most
// rows span a narrow id range compared with their length: they are sorted by marking their ids
// in a bitmap over that range and reading the bits back in order (a counting sort, O(n + range /
// 64), no comparisons); other rows fall back to std::sort. Keeps its buffers across rows.
class row_sorter {
 public:
  struct sorted {
    std::span<const sample_rec> rows;
    uint32_t err_stack = 0;  ///< a repeated stack, if `rows` is empty for that reason
    explicit operator bool() const { return err_stack == 0; }
  };

  explicit row_sorter(size_t nodes) : index_(nodes) {}

  /// Makes room for ids < `nodes` (for a stack tree that grew since construction).
  void grow(size_t nodes) {
    if (nodes > index_.size()) index_.resize(std::max(nodes, index_.size() * 2));
  }

  sorted sort(std::span<const sample_rec> s) {
    out_.resize(s.size());
    uint32_t lo = UINT32_MAX, hi = 0;
    for (const auto& x : s) {
      lo = std::min(lo, x.stack);
      hi = std::max(hi, x.stack);
    }
    const size_t base = lo / 64, words = hi / 64 - base + 1;
    if (words <= 2 * s.size() + 16) {
      bits_.assign(words, 0);
      for (uint32_t k = 0; k < s.size(); ++k) {
        const uint32_t id = s[k].stack;
        uint64_t& w = bits_[id / 64 - base];
        const uint64_t bit = uint64_t{1} << (id % 64);
        if (w & bit) return {{}, id};
        w |= bit;
        index_[id] = k;
      }
      size_t n = 0;
      for (size_t w = 0; w < words; ++w)
        for (uint64_t m = bits_[w]; m != 0; m &= m - 1) {
          const auto id = static_cast<uint32_t>((base + w) * 64 + std::countr_zero(m));
          out_[n++] = s[index_[id]];
        }
      return {out_, 0};
    }
    std::copy(s.begin(), s.end(), out_.begin());
    std::sort(out_.begin(), out_.end(),
              [](const sample_rec& x, const sample_rec& y) { return x.stack < y.stack; });
    auto twice = std::adjacent_find(out_.begin(), out_.end(),
                                    [](const auto& x, const auto& y) { return x.stack == y.stack; });
    if (twice != out_.end()) return {{}, twice->stack};
    return {out_, 0};
  }

 private:
  std::vector<uint32_t> index_;  // stack id -> its position in the row being sorted
  std::vector<uint64_t> bits_;
  std::vector<sample_rec> out_;
};

}  // namespace hearth
