#include "format/jfr.hpp"

// JFR chunk layout (all integers big-endian; with the "compressed integers" flag, every short,
// char, int and long inside events is a little-endian base-128 varint of at most 9 bytes, the
// 9th byte contributing all 8 bits):
//   header <68b>: magic "FLR\0" | major <2b> | minor <2b> | chunk size <8b> | constant pool
//     offset <8b> | metadata offset <8b> | start ns <8b> | duration ns <8b> | start ticks <8b> |
//     ticks per second <8b> | state, flags <4b> (bit 0 of the last byte: compressed integers)
//   events, back to back: size <int, counts itself> | type id <long> | payload
//     type 0 = metadata: start, duration, id <long> | string count <int> | strings | root element
//       element: name <int> | attr count <int> | (key <int>, value <int>)* | child count <int> |
//       children (indexes into the strings); root > metadata > class(name, id, simpleType) >
//       field(name, class, constantPool, dimension)
//     type 1 = constant pool: start, duration, delta <long> | flush <1b> | pool count <int> |
//       (class id <long> | count <int> | (key <long> | value)*)*
//     other = an event of that class: its fields in declared order
//   values: pooled field = key <long>; array = count <int> + elements; boolean, byte = 1 byte;
//     float = 4 bytes, double = 8 bytes; String = encoding <1b>: 0 null, 1 "", 2 pool key <long>,
//     3 UTF-8 (length <int> + bytes), 4 UTF-16 (length <int> + chars <char>), 5 Latin-1
//     (length <int> + bytes); any other class = its fields inline.

#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace hearth {
namespace {

constexpr size_t k_header = 68;

enum class kind : uint8_t { object, boolean, byte, character, shortint, integer, longint, floating, doubling, string };

kind kind_of(std::string_view name) {
  if (name == "boolean") return kind::boolean;
  if (name == "byte") return kind::byte;
  if (name == "char") return kind::character;
  if (name == "short") return kind::shortint;
  if (name == "int") return kind::integer;
  if (name == "long") return kind::longint;
  if (name == "float") return kind::floating;
  if (name == "double") return kind::doubling;
  if (name == "java.lang.String") return kind::string;
  return kind::object;
}

struct field_def {
  std::string name;
  uint64_t type = 0;
  bool pooled = false;
  bool array = false;
};

struct class_def {
  std::string name;
  kind k = kind::object;
  std::vector<field_def> fields;
};

// A bounds-checked reader over one chunk with a sticky error.
class cursor {
 public:
  cursor(const uint8_t* begin, size_t size, bool compressed)
      : begin_(begin), p_(begin), end_(begin + size), compressed_(compressed) {}

  size_t pos() const { return static_cast<size_t>(p_ - begin_); }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  bool ok() const { return err_.empty(); }
  const std::string& err() const { return err_; }
  size_t err_pos() const { return err_pos_; }

  void seek(size_t pos) {
    if (pos > static_cast<size_t>(end_ - begin_)) return fail("offset " + std::to_string(pos) + " is outside the chunk");
    p_ = begin_ + pos;
  }
  void fail(std::string why) {
    if (!ok()) return;
    err_ = std::move(why);
    err_pos_ = pos();
    p_ = end_;  // every later read fails too
  }

  uint8_t u8() {
    if (p_ >= end_) {
      fail("truncated");
      return 0;
    }
    return *p_++;
  }
  uint64_t fixed(int bytes) {
    if (left() < static_cast<size_t>(bytes)) {
      fail("truncated");
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | *p_++;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int i = 0; i < 9; ++i) {
      uint8_t b = u8();
      if (!ok()) return 0;
      if (i == 8) return v | static_cast<uint64_t>(b) << 56;
      v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) return v;
    }
    return v;
  }
  uint64_t i16() { return compressed_ ? varint() : fixed(2); }
  uint64_t i32() { return compressed_ ? varint() : fixed(4); }
  uint64_t i64() { return compressed_ ? varint() : fixed(8); }
  /// A count of things each at least one byte long: bounded by what is left.
  size_t count(std::string_view what) {
    uint64_t n = i32();
    if (ok() && n > left()) fail(std::string(what) + " count " + std::to_string(n) + " exceeds the bytes left");
    return ok() ? static_cast<size_t>(n) : 0;
  }
  std::string_view bytes(size_t n) {
    if (left() < n) {
      fail("truncated");
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  bool compressed_;
  std::string err_;
  size_t err_pos_ = 0;
};

void put_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xc0 | c >> 6));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xe0 | c >> 12));
    out.push_back(static_cast<char>(0x80 | (c >> 6 & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

// Generated classes whose names differ per JVM run: Pyroscope (jfr-parser) merges them so that
// profiles of different runs line up: `X$$Lambda$<n>/0x<hex>`, `X$$Lambda.0x<hex>`,
// `X$$Lambda$<n>` -> `X$$Lambda_`; `jdk/internal/reflect/GeneratedMethodAccessor<n>` -> `..._`.
// We also merge the form JDK 17's own recorder writes for hidden classes,
// `X$$Lambda$<n>+0x<hex>/<n>`, which upstream's pattern misses.
std::string merge_generated(std::string name) {
  auto take = [](std::string_view& s, std::string_view set) {
    size_t n = s.find_first_not_of(set);
    if (n == std::string_view::npos) n = s.size();
    s.remove_prefix(n);
    return n;
  };
  constexpr std::string_view accessor = "jdk/internal/reflect/GeneratedMethodAccessor";
  constexpr std::string_view digits = "0123456789", hex = "0123456789abcdef";
  if (name.starts_with(accessor)) {
    std::string_view rest = std::string_view(name).substr(accessor.size());
    if (take(rest, digits) > 0 && rest.empty()) return std::string(accessor) + "_";
    return name;
  }
  size_t at = name.rfind("$$Lambda");
  if (at == std::string::npos || at == 0) return name;
  std::string_view rest = std::string_view(name).substr(at + 8);
  if (!rest.empty() && rest[0] == '$') rest.remove_prefix(1);
  size_t n = take(rest, digits);
  bool generated = false;
  if (rest.empty()) {
    generated = n > 0;
  } else if (rest[0] == '.' || rest[0] == '/' || rest[0] == '+') {
    bool plus = rest[0] == '+';
    rest.remove_prefix(1);
    if (rest.starts_with("0x")) rest.remove_prefix(2);
    generated = take(rest, hex) > 0;
    if (plus && rest.starts_with("/")) {
      rest.remove_prefix(1);
      generated = generated && take(rest, digits) > 0;
    }
    generated = generated && rest.empty();
  }
  if (!generated) return name;
  name.resize(at + 8);
  name += '_';
  return name;
}

// The profile types, in output order.
enum ptype : int { pt_cpu, pt_wall, pt_tlab, pt_outside, pt_sample, pt_lock, pt_park, pt_count };

struct ptype_def {
  const char* metric;
  const char* types[2];
  const char* units[2];
  const char* period_type;
  const char* period_unit;
};
constexpr ptype_def k_ptypes[pt_count] = {
    {"process_cpu", {"cpu", nullptr}, {"nanoseconds", nullptr}, "cpu", "nanoseconds"},
    {"wall", {"wall", nullptr}, {"nanoseconds", nullptr}, "wall", "nanoseconds"},
    {"memory", {"alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes"}, {"count", "bytes"}, "space", "bytes"},
    {"memory", {"alloc_outside_tlab_objects", "alloc_outside_tlab_bytes"}, {"count", "bytes"}, "space", "bytes"},
    {"memory", {"alloc_sample_objects", "alloc_sample_bytes"}, {"count", "bytes"}, "space", "bytes"},
    {"mutex", {"contentions", "delay"}, {"count", "nanoseconds"}, "mutex", "count"},
    {"block", {"contentions", "delay"}, {"count", "nanoseconds"}, "block", "count"},
};

// Samples of one profile type: (stack, context id) -> summed values.
struct type_acc {
  std::vector<std::vector<uint64_t>> stacks;  // location ids, leaf first
  std::vector<uint64_t> contexts;             // per stack: the events' contextId (0: none)
  std::vector<int64_t> values;                // 1 or 2 per stack
  struct key_hash {
    size_t operator()(const std::pair<const void*, uint64_t>& k) const {
      return std::hash<const void*>{}(k.first) ^ (k.second * 0x9e3779b97f4a7c15ULL);
    }
  };
  std::unordered_map<std::pair<const void*, uint64_t>, uint32_t, key_hash> index;
};

// A protobuf reader just big enough for LabelsSnapshot (proto3 wire format).
struct pb_reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) break;
      uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    ok = false;
    return 0;
  }
  // Next field of this message: false at its end or on an error.
  bool next(uint32_t& field, uint32_t& wire) {
    if (!ok || p >= end) return false;
    uint64_t tag = varint();
    field = static_cast<uint32_t>(tag >> 3);
    wire = static_cast<uint32_t>(tag & 7);
    return ok;
  }
  pb_reader sub() {
    uint64_t n = varint();
    if (!ok || n > static_cast<uint64_t>(end - p)) {
      ok = false;
      return {end, end, false};
    }
    pb_reader r{p, p + n};
    p += n;
    return r;
  }
  void skip(uint32_t wire) {
    size_t n = 0;
    switch (wire) {
      case 0: varint(); return;
      case 1: n = 8; break;
      case 2: sub(); return;
      case 5: n = 4; break;
      default: ok = false; return;
    }
    if (static_cast<size_t>(end - p) < n) ok = false;
    else p += n;
  }
};

class reader {
 public:
  reader(bytes_view data, uint32_t sample_rate, const jfr_labels* labels, const jfr_limits& lim)
      : data_(reinterpret_cast<const uint8_t*>(data.data())), size_(data.size()),
        period_(1'000'000'000 / static_cast<int64_t>(sample_rate)), labels_(labels), lim_(lim) {}

  result<jfr_profiles> run() {
    if (size_ == 0) return error{errc::bad_request_body, "jfr: empty recording"};
    size_t chunk = 0;
    for (size_t at = 0; at < size_; ++chunk) {
      size_t len = 0;
      if (auto st = read_chunk(at, chunk, len); !st.ok()) return st.err();
      at += len;
    }
    return finish();
  }

 private:
  // ---- per chunk --------------------------------------------------------------------------

  status chunk_error(size_t chunk, size_t at, std::string_view why) {
    return error{errc::bad_request_body,
                 "jfr: chunk " + std::to_string(chunk) + " at byte " + std::to_string(at) + ": " + std::string(why)};
  }
  status cursor_error(size_t chunk, size_t chunk_start, const cursor& c, std::string_view ctx) {
    return chunk_error(chunk, chunk_start + c.err_pos(), std::string(ctx) + ": " + c.err());
  }

  status read_chunk(size_t at, size_t chunk, size_t& len) {
    const uint8_t* h = data_ + at;
    size_t avail = size_ - at;
    if (avail < k_header) return chunk_error(chunk, at, "truncated chunk header (" + std::to_string(avail) + " bytes)");
    if (std::string_view(reinterpret_cast<const char*>(h), 4) != std::string_view("FLR\0", 4))
      return chunk_error(chunk, at, "not a JFR chunk (magic is not FLR\\0)");
    cursor hc(h, k_header, false);
    hc.seek(4);
    uint64_t major = hc.fixed(2), minor = hc.fixed(2);
    if (major != 2)
      return chunk_error(chunk, at, "unsupported JFR version " + std::to_string(major) + "." + std::to_string(minor) + " (want 2.x)");
    uint64_t chunk_size = hc.fixed(8), cp_off = hc.fixed(8), meta_off = hc.fixed(8);
    hc.fixed(8);  // start ns
    hc.fixed(8);  // duration ns
    hc.fixed(8);  // start ticks
    ticks_per_second_ = hc.fixed(8);
    bool compressed = (h[67] & 1) != 0;
    if (chunk_size < k_header || chunk_size > avail)
      return chunk_error(chunk, at, "chunk size " + std::to_string(chunk_size) + " is outside 68.." + std::to_string(avail));
    if (meta_off < k_header || meta_off >= chunk_size || cp_off >= chunk_size)
      return chunk_error(chunk, at, "metadata or constant pool offset outside the chunk");
    len = static_cast<size_t>(chunk_size);

    cursor c(h, len, compressed);
    classes_.clear();
    pools_.clear();
    stack_memo_.clear();
    method_memo_.clear();
    state_memo_.clear();
    string_class_ = 0;
    for (type_acc& acc : acc_) acc.index.clear();  // stack pointers are per chunk
    read_metadata(c, meta_off);
    if (!c.ok()) return cursor_error(chunk, at, c, "metadata");
    if (!meta_error_.empty()) return chunk_error(chunk, at + meta_off, meta_error_);
    bind_classes();

    // Pass 1: constant pools (events may reference pools written later in the chunk).
    for (size_t pos = k_header; pos < len;) {
      c.seek(pos);
      uint64_t size = c.i32();
      uint64_t type = c.i64();
      if (!c.ok()) return cursor_error(chunk, at, c, "event header");
      if (size == 0 || size > len - pos)
        return chunk_error(chunk, at + pos, "event size " + std::to_string(size) + " is outside the chunk");
      if (type == 1) {
        read_pool(c, pos + size);
        if (!c.ok()) return cursor_error(chunk, at, c, "constant pool");
      }
      pos += static_cast<size_t>(size);
    }
    // Pass 2: events.
    for (size_t pos = k_header; pos < len;) {
      c.seek(pos);
      uint64_t size = c.i32();
      uint64_t type = c.i64();
      size_t end = pos + static_cast<size_t>(size);
      if (type > 1) {
        read_event(c, type);
        if (!c.ok()) return cursor_error(chunk, at, c, "event of type " + std::to_string(type));
        if (c.pos() > end) return chunk_error(chunk, at + pos, "event of type " + std::to_string(type) + " overruns its size");
      }
      pos = end;
    }
    return {};
  }

  // ---- metadata ---------------------------------------------------------------------------

  void read_metadata(cursor& c, uint64_t off) {
    meta_error_.clear();
    c.seek(static_cast<size_t>(off));
    c.i32();  // size: the element tree ends the event
    uint64_t type = c.i64();
    if (c.ok() && type != 0) {
      meta_error_ = "the metadata offset does not point at a metadata event (type " + std::to_string(type) + ")";
      return;
    }
    c.i64();  // start
    c.i64();  // duration
    c.i64();  // metadata id
    size_t n = c.count("metadata string");
    strings_.clear();
    strings_.reserve(n);
    for (size_t i = 0; i < n && c.ok(); ++i) strings_.push_back(read_string(c, 0));
    read_element(c, 0, element_ctx::other, nullptr);
  }

  // Where an element sits: under the root element, under `metadata`, under a `class`, elsewhere.
  enum class element_ctx { root, metadata, cls, other };

  const std::string& str(uint64_t i) {
    static const std::string empty;
    if (i >= strings_.size()) {
      if (meta_error_.empty()) meta_error_ = "metadata string index " + std::to_string(i) + " out of range";
      return empty;
    }
    return strings_[static_cast<size_t>(i)];
  }

  void read_element(cursor& c, size_t depth, element_ctx ctx, class_def* owner) {
    if (depth > lim_.max_nesting) return c.fail("metadata nested deeper than " + std::to_string(lim_.max_nesting));
    const std::string& name = str(c.i32());
    size_t nattr = c.count("metadata attribute");
    std::vector<std::pair<std::string_view, std::string_view>> attrs;
    for (size_t i = 0; i < nattr && c.ok(); ++i) {
      const std::string& k = str(c.i32());
      const std::string& v = str(c.i32());
      attrs.emplace_back(k, v);
    }
    auto attr = [&](std::string_view k) -> std::string_view {
      for (auto& [ak, av] : attrs)
        if (ak == k) return av;
      return {};
    };
    element_ctx child_ctx = element_ctx::other;
    class_def* child_owner = nullptr;
    if (ctx == element_ctx::root && name == "metadata") {
      child_ctx = element_ctx::metadata;
    } else if (ctx == element_ctx::metadata && name == "class") {
      uint64_t id = 0;
      if (!parse_u64(attr("id"), id)) {
        if (meta_error_.empty()) meta_error_ = "class without a numeric id";
      } else {
        class_def& cd = classes_[id];
        cd.name = std::string(attr("name"));
        cd.k = kind_of(cd.name);
        cd.fields.clear();
        child_owner = &cd;
      }
      child_ctx = element_ctx::cls;
    } else if (ctx == element_ctx::cls && name == "field" && owner != nullptr) {
      field_def f;
      f.name = std::string(attr("name"));
      if (!parse_u64(attr("class"), f.type) && meta_error_.empty())
        meta_error_ = "field " + f.name + " of class " + owner->name + " has no numeric class";
      f.pooled = attr("constantPool") == "true";
      f.array = attr("dimension") == "1";
      owner->fields.push_back(std::move(f));
    }
    if (depth == 0) {
      if (name != "root" && meta_error_.empty()) meta_error_ = "the metadata root element is not 'root'";
      child_ctx = element_ctx::root;
    }
    size_t nchild = c.count("metadata child");
    for (size_t i = 0; i < nchild && c.ok(); ++i) read_element(c, depth + 1, child_ctx, child_owner);
  }

  static bool parse_u64(std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) return false;
    out = 0;
    for (char ch : s) out = out * 10 + static_cast<uint64_t>(ch - '0');
    return true;
  }

  // ---- values -----------------------------------------------------------------------------

  const class_def* cls(cursor& c, uint64_t id) {
    auto it = classes_.find(id);
    if (it == classes_.end()) {
      c.fail("unknown class id " + std::to_string(id));
      return nullptr;
    }
    return &it->second;
  }

  // Reads a String value. depth guards pool references (a String pool entry is itself a String).
  std::string read_string(cursor& c, size_t depth) {
    uint8_t enc = c.u8();
    switch (enc) {
      case 0:
      case 1: return {};
      case 2: {
        uint64_t key = c.i64();
        if (!c.ok()) return {};
        if (depth > 0) {
          c.fail("a pooled string refers to another pooled string");
          return {};
        }
        return pooled_string(c, key);
      }
      case 3: {
        size_t n = c.count("string byte");
        return std::string(c.bytes(n));
      }
      case 4: {
        size_t n = c.count("string char");
        std::string out;
        for (size_t i = 0; i < n && c.ok(); ++i) put_utf8(out, static_cast<uint32_t>(c.i16() & 0xffff));
        return out;
      }
      case 5: {
        size_t n = c.count("string byte");
        std::string out;
        for (char ch : c.bytes(n)) put_utf8(out, static_cast<uint8_t>(ch));
        return out;
      }
      default: c.fail("unknown string encoding " + std::to_string(enc)); return {};
    }
  }

  void skip_string(cursor& c) {
    uint8_t enc = c.u8();
    switch (enc) {
      case 0:
      case 1: return;
      case 2: c.i64(); return;
      case 3:
      case 5: c.bytes(c.count("string byte")); return;
      case 4: {
        size_t n = c.count("string char");
        for (size_t i = 0; i < n && c.ok(); ++i) c.i16();
        return;
      }
      default: c.fail("unknown string encoding " + std::to_string(enc));
    }
  }

  void skip_value(cursor& c, const field_def& f, size_t depth) {
    size_t n = 1;
    if (f.array) n = c.count("array element");
    const class_def* t = f.pooled ? nullptr : cls(c, f.type);
    for (size_t i = 0; i < n && c.ok(); ++i) {
      if (f.pooled) {
        c.i64();
        continue;
      }
      skip_one(c, *t, depth);
    }
  }

  void skip_one(cursor& c, const class_def& t, size_t depth) {
    switch (t.k) {
      case kind::boolean:
      case kind::byte: c.u8(); return;
      case kind::character:
      case kind::shortint: c.i16(); return;
      case kind::integer: c.i32(); return;
      case kind::longint: c.i64(); return;
      case kind::floating: c.fixed(4); return;
      case kind::doubling: c.fixed(8); return;
      case kind::string: skip_string(c); return;
      case kind::object:
        if (depth >= lim_.max_nesting) return c.fail("values nested deeper than " + std::to_string(lim_.max_nesting));
        for (const field_def& f : t.fields) {
          if (!c.ok()) return;
          skip_value(c, f, depth + 1);
        }
    }
  }

  // The integer value of a scalar field (pool key, or number for integer kinds; 0 otherwise).
  uint64_t read_scalar(cursor& c, const field_def& f) {
    if (f.pooled && !f.array) return c.i64();
    if (!f.array) {
      const class_def* t = cls(c, f.type);
      if (t == nullptr) return 0;
      switch (t->k) {
        case kind::boolean:
        case kind::byte: return c.u8();
        case kind::character:
        case kind::shortint: return c.i16();
        case kind::integer: return c.i32();
        case kind::longint: return c.i64();
        default: break;
      }
    }
    skip_value(c, f, 0);
    return 0;
  }

  // ---- constant pools -------------------------------------------------------------------------

  void read_pool(cursor& c, size_t end) {
    c.i64();  // start
    c.i64();  // duration
    c.i64();  // delta to the previous pool
    c.u8();   // flush / checkpoint type
    size_t npools = c.count("constant pool");
    for (size_t i = 0; i < npools && c.ok(); ++i) {
      uint64_t id = c.i64();
      size_t n = c.count("constant");
      const class_def* t = cls(c, id);
      if (t == nullptr) return;
      auto& pool = pools_[id];
      for (size_t k = 0; k < n && c.ok(); ++k) {
        uint64_t key = c.i64();
        pool[key] = c.pos();
        skip_one(c, *t, 0);
      }
    }
    if (c.ok() && c.pos() > end) c.fail("constant pool overruns its event size");
  }

  // Seeks `c` to the value of pool entry (class, key); false when absent.
  bool seek_pool(cursor& c, uint64_t class_id, uint64_t key) {
    auto p = pools_.find(class_id);
    if (p == pools_.end()) return false;
    auto e = p->second.find(key);
    if (e == p->second.end()) return false;
    c.seek(e->second);
    return true;
  }

  std::string pooled_string(cursor& c, uint64_t key) {
    size_t back = c.pos();
    std::string out;
    if (string_class_ == 0) {
      c.fail("a string refers to the constant pool before any is defined");
      return out;
    }
    if (seek_pool(c, string_class_, key)) out = read_string(c, 1);
    if (c.ok()) c.seek(back);
    return out;
  }

  // A string-typed field `name` of a pooled struct (e.g. Symbol.string, ThreadState.name).
  std::string pooled_struct_string(cursor& c, uint64_t class_id, uint64_t key, std::string_view name) {
    size_t back = c.pos();
    std::string out;
    const class_def* t = classes_.count(class_id) ? &classes_[class_id] : nullptr;
    if (t != nullptr && seek_pool(c, class_id, key)) {
      for (const field_def& f : t->fields) {
        if (!c.ok()) break;
        const class_def* ft = f.pooled || f.array ? nullptr : cls(c, f.type);
        if (f.name == name && ft != nullptr && ft->k == kind::string) {
          out = read_string(c, 0);
          break;
        }
        skip_value(c, f, 1);
      }
    }
    if (c.ok()) c.seek(back);
    return out;
  }

  // ---- symbols ----------------------------------------------------------------------------------

  struct known_class {
    uint64_t id = 0;
    const class_def* def = nullptr;
    int field(std::string_view n) const {
      if (def == nullptr) return -1;
      for (size_t i = 0; i < def->fields.size(); ++i)
        if (def->fields[i].name == n) return static_cast<int>(i);
      return -1;
    }
  };

  void bind_classes() {
    string_class_ = 0;
    for (auto* k : {&stack_trace_, &stack_frame_, &method_, &class_, &symbol_, &thread_state_})
      *k = known_class{};
    for (known_class& e : events_) e = known_class{};
    active_setting_ = known_class{};
    for (auto& [id, cd] : classes_) {
      known_class kc{id, &cd};
      const std::string& n = cd.name;
      if (n == "java.lang.String") string_class_ = id;
      else if (n == "jdk.types.StackTrace") stack_trace_ = kc;
      else if (n == "jdk.types.StackFrame") stack_frame_ = kc;
      else if (n == "jdk.types.Method") method_ = kc;
      else if (n == "java.lang.Class") class_ = kc;
      else if (n == "jdk.types.Symbol") symbol_ = kc;
      else if (n == "jdk.types.ThreadState") thread_state_ = kc;
      else if (n == "jdk.ExecutionSample") events_[pt_cpu] = kc;
      else if (n == "jdk.ObjectAllocationInNewTLAB") events_[pt_tlab] = kc;
      else if (n == "jdk.ObjectAllocationOutsideTLAB") events_[pt_outside] = kc;
      else if (n == "jdk.ObjectAllocationSample") events_[pt_sample] = kc;
      else if (n == "jdk.JavaMonitorEnter") events_[pt_lock] = kc;
      else if (n == "jdk.ThreadPark") events_[pt_park] = kc;
      else if (n == "jdk.ActiveSetting") active_setting_ = kc;
    }
  }

  // Output symbol table, shared by all profile types and chunks.
  uint64_t function_id(const std::string& name) {
    auto [it, inserted] = fn_ids_.emplace(name, fn_names_.size() + 1);
    if (inserted) fn_names_.push_back(&it->first);
    return it->second;
  }
  uint64_t location_id(uint64_t fn, int64_t line) {
    auto [it, inserted] = loc_ids_.emplace(std::make_pair(fn, line), locs_.size() + 1);
    if (inserted) locs_.emplace_back(fn, line);
    return it->second;
  }

  // Function id of a pooled method, 0 when the method or its class cannot be resolved.
  uint64_t method_function(cursor& c, uint64_t key) {
    if (auto it = method_memo_.find(key); it != method_memo_.end()) return it->second;
    uint64_t fn = 0;
    size_t back = c.pos();
    if (method_.def != nullptr && seek_pool(c, method_.id, key)) {
      uint64_t type_key = 0, name_key = 0;
      bool has_type = false, has_name = false;
      for (const field_def& f : method_.def->fields) {
        if (!c.ok()) break;
        if (f.name == "type" && f.pooled && !f.array) {
          type_key = c.i64();
          has_type = true;
        } else if (f.name == "name" && f.pooled && !f.array) {
          name_key = c.i64();
          has_name = true;
        } else {
          skip_value(c, f, 1);
        }
      }
      if (c.ok() && has_type && has_name && class_.def != nullptr && pools_.count(class_.id) &&
          pools_[class_.id].count(type_key)) {
        std::string cls_name;
        // Class.name is a pooled Symbol.
        c.seek(pools_[class_.id][type_key]);
        for (const field_def& f : class_.def->fields) {
          if (!c.ok()) break;
          if (f.name == "name" && f.pooled && !f.array) {
            cls_name = pooled_struct_string(c, symbol_.id, c.i64(), "string");
            break;
          }
          skip_value(c, f, 1);
        }
        std::string method_name = pooled_struct_string(c, symbol_.id, name_key, "string");
        if (c.ok()) fn = function_id(merge_generated(std::move(cls_name)) + "." + method_name);
      }
    }
    if (c.ok()) c.seek(back);
    method_memo_[key] = fn;
    return fn;
  }

  // Location ids (leaf first) of a pooled stack trace; nullptr when absent.
  const std::vector<uint64_t>* stack(cursor& c, uint64_t key) {
    if (auto it = stack_memo_.find(key); it != stack_memo_.end()) return it->second.get();
    std::unique_ptr<std::vector<uint64_t>> locs;
    size_t back = c.pos();
    if (stack_trace_.def != nullptr && stack_frame_.def != nullptr && seek_pool(c, stack_trace_.id, key)) {
      locs = std::make_unique<std::vector<uint64_t>>();
      std::vector<std::pair<uint64_t, int64_t>> frames;  // (method key, line)
      for (const field_def& f : stack_trace_.def->fields) {
        if (!c.ok()) break;
        if (f.name != "frames" || f.pooled || !f.array || f.type != stack_frame_.id) {
          skip_value(c, f, 1);
          continue;
        }
        size_t n = c.count("stack frame");
        if (n > lim_.max_stack_depth) {
          c.fail("stack trace " + std::to_string(key) + " has " + std::to_string(n) + " frames, over the limit of " +
                 std::to_string(lim_.max_stack_depth));
          break;
        }
        for (size_t i = 0; i < n && c.ok(); ++i) {
          uint64_t m = 0;
          int64_t line = 0;
          for (const field_def& ff : stack_frame_.def->fields) {
            if (!c.ok()) break;
            if (ff.name == "method" && ff.pooled && !ff.array) m = c.i64();
            else if (ff.name == "lineNumber" && !ff.pooled && !ff.array) line = static_cast<int32_t>(read_scalar(c, ff));
            else skip_value(c, ff, 2);
          }
          frames.emplace_back(m, line);
        }
      }
      for (auto [m, line] : frames) {
        if (!c.ok()) break;
        uint64_t fn = method_function(c, m);
        if (fn != 0) locs->push_back(location_id(fn, line));
      }
    }
    if (c.ok()) c.seek(back);
    auto* raw = locs.get();
    stack_memo_[key] = std::move(locs);
    return raw;
  }

  const std::string& thread_state(cursor& c, uint64_t key) {
    auto it = state_memo_.find(key);
    if (it == state_memo_.end())
      it = state_memo_.emplace(key, thread_state_.def ? pooled_struct_string(c, thread_state_.id, key, "name") : "").first;
    return it->second;
  }

  // ---- events -------------------------------------------------------------------------------

  void read_event(cursor& c, uint64_t type) {
    int which = -1;
    for (int i = 0; i < pt_count; ++i)
      if (events_[i].def != nullptr && events_[i].id == type) which = i;
    if (active_setting_.def != nullptr && active_setting_.id == type) return read_setting(c);
    if (which < 0) return;  // not a profiling event: skipped by size
    const class_def& e = *events_[which].def;
    uint64_t stack_key = 0, state_key = 0, amount = 0, context = 0;
    bool has_stack = false, has_state = false;
    std::string_view amount_field = which == pt_tlab      ? "tlabSize"
                                    : which == pt_outside ? "allocationSize"
                                    : which == pt_sample  ? "weight"
                                    : which == pt_cpu     ? ""
                                                          : "duration";
    for (const field_def& f : e.fields) {
      if (!c.ok()) return;
      if (f.name == "stackTrace" && f.pooled && !f.array) {
        stack_key = c.i64();
        has_stack = true;
      } else if (which == pt_cpu && f.name == "state" && f.pooled && !f.array) {
        state_key = c.i64();
        has_state = true;
      } else if (!amount_field.empty() && f.name == amount_field) {
        amount = read_scalar(c, f);
      } else if (f.name == "contextId" && !f.pooled && !f.array && which != pt_sample && which != pt_park) {
        context = read_scalar(c, f);  // async-profiler (Pyroscope's build): the labels' context
      } else {
        skip_value(c, f, 1);
      }
    }
    if (!c.ok() || !has_stack) return;
    const std::vector<uint64_t>* locs = stack(c, stack_key);
    if (!c.ok() || locs == nullptr) return;
    if (which == pt_cpu) {
      // As Pyroscope: a sample counts as CPU unless its thread slept (or its state is unknown);
      // with async-profiler's `event=wall` every sample also counts as wall time.
      if (has_state && thread_state(c, state_key) != "STATE_SLEEPING" && !thread_state(c, state_key).empty())
        add(pt_cpu, locs, context, period_, 0);
      if (event_ == "wall") add(pt_wall, locs, 0, period_, 0);
      return;
    }
    int64_t v = static_cast<int64_t>(amount);
    if (which == pt_lock || which == pt_park) v = ticks_to_ns(amount);
    add(static_cast<ptype>(which), locs, context, 1, v);
  }

  void read_setting(cursor& c) {
    std::string name, value;
    for (const field_def& f : active_setting_.def->fields) {
      if (!c.ok()) return;
      const class_def* t = f.pooled || f.array ? nullptr : cls(c, f.type);
      if (t != nullptr && t->k == kind::string && (f.name == "name" || f.name == "value")) {
        (f.name == "name" ? name : value) = read_string(c, 0);
      } else {
        skip_value(c, f, 1);
      }
    }
    if (c.ok() && name == "event") event_ = value;
  }

  int64_t ticks_to_ns(uint64_t ticks) const {
    if (ticks_per_second_ == 0 || ticks_per_second_ == 1'000'000'000) return static_cast<int64_t>(ticks);
    unsigned __int128 ns = static_cast<unsigned __int128>(ticks) * 1'000'000'000u / ticks_per_second_;
    return ns > static_cast<unsigned __int128>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(ns);
  }

  static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
  }

  void add(ptype t, const std::vector<uint64_t>* locs, uint64_t context, int64_t v0, int64_t v1) {
    type_acc& acc = acc_[t];
    int nv = k_ptypes[t].types[1] ? 2 : 1;
    if (labels_ == nullptr || !labels_->contexts.count(context)) context = 0;
    auto [it, inserted] = acc.index.emplace(std::make_pair(static_cast<const void*>(locs), context),
                                            static_cast<uint32_t>(acc.stacks.size()));
    if (inserted) {
      acc.stacks.push_back(*locs);
      acc.contexts.push_back(context);
      acc.values.resize(acc.values.size() + nv, 0);
    }
    int64_t* vals = &acc.values[static_cast<size_t>(it->second) * nv];
    vals[0] = sat_add(vals[0], v0);
    if (nv == 2) vals[1] = sat_add(vals[1], v1);
  }

  // ---- output ---------------------------------------------------------------------------------

  result<jfr_profiles> finish() {
    jfr_profiles out;
    out.event = event_;
    std::vector<std::string_view> fn_names;
    fn_names.reserve(fn_names_.size());
    for (const std::string* n : fn_names_) fn_names.push_back(out.strings.emplace_back(*n));
    for (int t = 0; t < pt_count; ++t) {
      type_acc& acc = acc_[t];
      if (acc.stacks.empty()) continue;
      const ptype_def& d = k_ptypes[t];
      jfr_profile jp;
      jp.metric = d.metric;
      pprof::profile& p = jp.profile;
      p.strings.push_back("");
      auto intern = [&p](std::string_view s) {
        p.strings.push_back(s);
        return static_cast<int64_t>(p.strings.size() - 1);
      };
      int nv = d.types[1] ? 2 : 1;
      for (int i = 0; i < nv; ++i) p.sample_types.push_back({intern(d.types[i]), intern(d.units[i])});
      p.period_type = {intern(d.period_type), intern(d.period_unit)};
      if (t == pt_cpu || t == pt_wall) p.period = period_;
      int64_t first_fn = static_cast<int64_t>(p.strings.size());
      for (std::string_view n : fn_names) intern(n);
      for (size_t i = 0; i < fn_names_.size(); ++i)
        p.functions.push_back({i + 1, first_fn + static_cast<int64_t>(i), 0, 0, 0});
      for (size_t i = 0; i < locs_.size(); ++i) {
        p.lines.push_back({locs_[i].first, locs_[i].second});
        p.locations.push_back({i + 1, 0, 0, static_cast<uint32_t>(i), 1, false});
      }
      for (size_t s = 0; s < acc.stacks.size(); ++s) {
        pprof::sample smp;
        smp.loc_begin = static_cast<uint32_t>(p.location_ids.size());
        smp.loc_count = static_cast<uint32_t>(acc.stacks[s].size());
        smp.value_begin = static_cast<uint32_t>(p.values.size());
        p.location_ids.insert(p.location_ids.end(), acc.stacks[s].begin(), acc.stacks[s].end());
        for (int i = 0; i < nv; ++i) p.values.push_back(acc.values[s * nv + i]);
        if (acc.contexts[s] != 0) {
          smp.label_begin = static_cast<uint32_t>(p.labels.size());
          for (auto [k, v] : labels_->contexts.at(acc.contexts[s])) {
            auto ks = labels_->strings.find(k), vs = labels_->strings.find(v);
            if (ks == labels_->strings.end() || vs == labels_->strings.end() || ks->second.empty() ||
                vs->second.empty())
              continue;
            p.labels.push_back({intern(ks->second), intern(vs->second), 0, 0});
          }
          smp.label_count = static_cast<uint32_t>(p.labels.size() - smp.label_begin);
        }
        p.samples.push_back(smp);
      }
      out.profiles.push_back(std::move(jp));
    }
    return out;
  }

  const uint8_t* data_;
  size_t size_;
  int64_t period_;
  const jfr_labels* labels_;
  jfr_limits lim_;
  uint64_t ticks_per_second_ = 0;

  // Per chunk.
  std::unordered_map<uint64_t, class_def> classes_;
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, size_t>> pools_;  // class -> key -> offset
  std::vector<std::string> strings_;  // metadata strings
  std::string meta_error_;
  uint64_t string_class_ = 0;
  known_class stack_trace_, stack_frame_, method_, class_, symbol_, thread_state_, active_setting_;
  known_class events_[pt_count];
  std::unordered_map<uint64_t, std::unique_ptr<std::vector<uint64_t>>> stack_memo_;
  std::unordered_map<uint64_t, uint64_t> method_memo_;
  std::unordered_map<uint64_t, std::string> state_memo_;

  // Whole recording.
  std::string event_;
  std::unordered_map<std::string, uint64_t> fn_ids_;
  std::vector<const std::string*> fn_names_;
  struct pair_hash {
    size_t operator()(const std::pair<uint64_t, int64_t>& p) const {
      return std::hash<uint64_t>{}(p.first * 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(p.second));
    }
  };
  std::unordered_map<std::pair<uint64_t, int64_t>, uint64_t, pair_hash> loc_ids_;
  std::vector<std::pair<uint64_t, int64_t>> locs_;  // (function id, line) per location id - 1
  type_acc acc_[pt_count];
};

}  // namespace

result<jfr_profiles> parse_jfr(bytes_view data, uint32_t sample_rate, const jfr_labels* labels,
                               const jfr_limits& lim) {
  reader r(data, sample_rate == 0 ? 100 : sample_rate, labels, lim);
  return r.run();
}

result<jfr_labels> parse_jfr_labels(bytes_view data) {
  jfr_labels out;
  auto bad = [](std::string_view what) {
    return error{errc::bad_request_body, "jfr labels: not a LabelsSnapshot protobuf (" + std::string(what) + ")"};
  };
  const auto* b = reinterpret_cast<const uint8_t*>(data.data());
  pb_reader r{b, b + data.size()};
  uint32_t field = 0, wire = 0;
  while (r.next(field, wire)) {
    if ((field != 1 && field != 2) || wire != 2) {
      r.skip(wire);
      continue;
    }
    pb_reader entry = r.sub();
    int64_t key = 0;
    std::vector<std::pair<int64_t, int64_t>> ctx;
    std::string_view str;
    uint32_t ef = 0, ew = 0;
    while (entry.next(ef, ew)) {
      if (ef == 1 && ew == 0) {
        key = static_cast<int64_t>(entry.varint());
      } else if (ef == 2 && ew == 2 && field == 2) {
        pb_reader v = entry.sub();
        str = std::string_view(reinterpret_cast<const char*>(v.p), static_cast<size_t>(v.end - v.p));
      } else if (ef == 2 && ew == 2) {  // Context { map<int64, int64> labels = 1; }
        pb_reader c = entry.sub();
        uint32_t cf = 0, cw = 0;
        while (c.next(cf, cw)) {
          if (cf != 1 || cw != 2) {
            c.skip(cw);
            continue;
          }
          pb_reader kv = c.sub();
          int64_t k = 0, v = 0;
          uint32_t kf = 0, kw = 0;
          while (kv.next(kf, kw)) {
            if (kw == 0 && (kf == 1 || kf == 2)) (kf == 1 ? k : v) = static_cast<int64_t>(kv.varint());
            else kv.skip(kw);
          }
          if (!kv.ok) return bad("context label");
          ctx.emplace_back(k, v);
        }
        if (!c.ok) return bad("context");
      } else {
        entry.skip(ew);
      }
    }
    if (!entry.ok) return bad(field == 1 ? "contexts entry" : "strings entry");
    if (field == 1) out.contexts[key] = std::move(ctx);
    else out.strings[key] = std::string(str);
  }
  if (!r.ok) return bad("top level");
  return out;
}

}  // namespace hearth
