#include "format/otlp.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "format/protowire.hpp"

namespace hearth::otlp {
namespace {

using namespace protowire;

// The bytes of one embedded message.
struct span {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// AnyValue, reduced to what labels need: a string (inline or by string-table index) or not.
struct any_value {
  enum kind_t : uint8_t { none, str, strindex, other } kind = none;
  std::string_view s;
  int32_t idx = 0;
};

struct kv_attr {  // KeyValueAndUnit (dictionary) or KeyValue (resource, scope)
  std::string_view key;  // KeyValue.key
  int32_t key_idx = 0;   // key_strindex
  any_value value;
};

struct mapping_d {
  uint64_t start = 0, limit = 0, offset = 0;
  int32_t filename = 0;
  uint32_t attr_begin = 0, attr_count = 0;
};
struct line_d {
  int32_t function = 0;
  int64_t line = 0;
};
struct location_d {
  int32_t mapping = 0;
  uint64_t address = 0;
  uint32_t line_begin = 0, line_count = 0, attr_begin = 0, attr_count = 0;
};
struct function_d {
  int32_t name = 0, system_name = 0, filename = 0;
  int64_t start_line = 0;
};
struct link_d {
  std::string_view trace_id, span_id;
};
struct stack_d {
  uint32_t begin = 0, count = 0;
};

struct dictionary {
  std::vector<mapping_d> mappings;
  std::vector<location_d> locations;
  std::vector<line_d> lines;
  std::vector<function_d> functions;
  std::vector<link_d> links;
  std::vector<std::string_view> strings;
  std::vector<kv_attr> attrs;
  std::vector<stack_d> stacks;
  std::vector<int32_t> idx;  // attribute indices of mappings/locations, location indices of stacks
};

// pprof mapping flags, from every dictionary location that uses the mapping.
struct mapping_flags {
  bool functions = true, filenames = true, line_numbers = true, inline_frames = false;
};

std::string table_error(std::string_view field_name, int64_t index, std::string_view table,
                        size_t size) {
  return std::string(field_name) + " " + std::to_string(index) + " is out of range of dictionary." +
         std::string(table) + " (" + std::to_string(size) + " entries)";
}

// Maps dictionary positions to 1-based ids (or string indexes) of the profile being built, filled
// lazily; reset() undoes only what was set, so one remap serves many profiles cheaply. Dense (a
// vector as long as the table) for a profile's first service; sparse (a hash map of the entries
// used) for the others, so that many services in one profile cost memory only for what each uses.
struct remap {
  bool sparse = false;
  std::vector<uint32_t> to;  // 0 = not yet
  std::vector<uint32_t> touched;
  std::unordered_map<uint32_t, uint32_t> map;
  void prepare(size_t n) {
    if (!sparse && to.size() < n) to.resize(n, 0);
  }
  uint32_t get(size_t i) const {
    if (!sparse) return to[i];
    auto it = map.find(static_cast<uint32_t>(i));
    return it == map.end() ? 0 : it->second;
  }
  void set(size_t i, uint32_t v) {
    if (sparse) {
      map[static_cast<uint32_t>(i)] = v;
      return;
    }
    to[i] = v;
    touched.push_back(static_cast<uint32_t>(i));
  }
  // Forgets every entry; the next profile's builder uses the given mode.
  void reset(bool sparse_next) {
    for (uint32_t i : touched) to[i] = 0;
    touched.clear();
    map.clear();
    sparse = sparse_next;
  }
};

struct string_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class decoder {
 public:
  decoder(bytes_view raw, const limits& lim)
      : base_(reinterpret_cast<const uint8_t*>(raw.data())), end_(base_ + raw.size()), lim_(lim) {}

  result<request> run() {
    std::vector<span> resources, dicts;
    bool ok = fields(base_, end_, [&](const field& f) {
      if (f.number == 1) {
        if (!want(f, wt_len, "resource_profiles")) return false;
        resources.push_back({f.data, f.size});
      } else if (f.number == 2) {
        if (!want(f, wt_len, "dictionary")) return false;
        dicts.push_back({f.data, f.size});
      }
      return true;
    });
    if (!ok) return fail_result("");
    if (dicts.empty())
      return error{errc::bad_request_body,
                   "the request has no dictionary (ExportProfilesServiceRequest.dictionary, field "
                   "2, is required)"};
    // Repeated occurrences of an embedded message merge: their tables concatenate.
    for (const span& d : dicts)
      if (!parse_dictionary(d)) return fail_result("dictionary: ");
    if (resources.empty())
      return error{errc::bad_request_body,
                   "the request has no resource_profiles (ExportProfilesServiceRequest field 1)"};
    compute_mapping_flags();
    for (size_t i = 0; i < resources.size(); ++i) {
      std::string where = "resource_profiles[" + std::to_string(i) + "]";
      if (!parse_resource(resources[i], where)) return fail_result(where + ": ");
    }
    return std::move(out_);
  }

 private:
  // ---- wire level ----------------------------------------------------------------------------

  bool fail(std::string msg) {
    err_ = std::move(msg);
    return false;
  }
  error fail_result(const std::string& prefix) {
    errc code = too_large_ ? errc::body_too_large
                : labels_error_ ? errc::bad_labels
                                : errc::bad_request_body;
    return error{code, prefix + err_};
  }
  std::string at(const uint8_t* p) const { return " at byte " + std::to_string(p - base_); }

  [[gnu::always_inline]] bool next(const uint8_t*& p, const uint8_t* end, field& f) {
    f.start = p;
    uint64_t tag = 0;
    if (!read_varint(p, end, tag) || p - f.start > 5 || tag > UINT32_MAX)
      return fail("truncated or malformed field tag" + at(f.start));
    f.number = static_cast<uint32_t>(tag >> 3);
    f.type = static_cast<uint32_t>(tag & 7);
    auto fld = [&] { return "field " + std::to_string(f.number); };
    if (f.number == 0) return fail("field number 0" + at(f.start));
    switch (f.type) {
      case wt_varint:
        if (!read_varint(p, end, f.value))
          return fail(fld() + ": truncated varint or varint longer than 10 bytes" + at(p));
        return true;
      case wt_len: {
        uint64_t n = 0;
        if (!read_varint(p, end, n)) return fail(fld() + ": truncated length" + at(p));
        if (n > static_cast<uint64_t>(end - p))
          return fail(fld() + ": length " + std::to_string(n) + " runs past the end of its message (" +
                      std::to_string(end - p) + " bytes left)" + at(p));
        f.data = p;
        f.size = static_cast<size_t>(n);
        p += n;
        return true;
      }
      case wt_fixed64:
      case wt_fixed32: {
        size_t n = f.type == wt_fixed64 ? 8 : 4;
        if (static_cast<size_t>(end - p) < n) return fail(fld() + ": truncated fixed value" + at(p));
        f.value = 0;
        for (size_t i = 0; i < n; ++i) f.value |= static_cast<uint64_t>(p[i]) << (8 * i);
        p += n;
        return true;
      }
      default:
        return fail(fld() + " has wire type " + std::to_string(f.type) +
                    ", which OTLP does not use" + at(f.start));
    }
  }

  template <class Fn>
  bool fields(const uint8_t* p, const uint8_t* end, Fn&& fn) {
    field f;
    while (p < end) {
      if (!next(p, end, f)) return false;
      if (!fn(f)) return false;
    }
    return true;
  }
  template <class Fn>
  bool fields(span s, Fn&& fn) {
    return fields(s.data, s.data + s.size, std::forward<Fn>(fn));
  }

  bool want(const field& f, uint32_t type, const char* name) {
    if (f.type == type) return true;
    return fail("field " + std::to_string(f.number) + " (" + name + ") has wire type " +
                wire_type_name(f.type) + ", want " + wire_type_name(type) + at(f.start));
  }

  template <class T>
  bool scalar(const field& f, const char* name, T& dst) {
    if (!want(f, wt_varint, name)) return false;
    dst = static_cast<T>(f.value);
    return true;
  }

  // A repeated varint field, packed or not (both forms may be mixed).
  template <class T>
  bool varints(const field& f, const char* name, std::vector<T>& dst) {
    if (f.type == wt_varint) {
      dst.push_back(static_cast<T>(f.value));
      return true;
    }
    if (f.type != wt_len)
      return fail("field " + std::to_string(f.number) + " (" + name +
                  ") has a wire type that is neither varint nor packed" + at(f.start));
    const uint8_t* p = f.data;
    const uint8_t* end = p + f.size;
    while (p < end) {
      uint64_t v = 0;
      if (!read_varint(p, end, v))
        return fail("field " + std::to_string(f.number) + " (" + name +
                    "): packed run ends inside a varint" + at(p));
      dst.push_back(static_cast<T>(v));
    }
    return true;
  }

  // A repeated fixed64 field, packed or not: only the values' number and sum are needed.
  bool fixed64s(const field& f, const char* name, uint64_t& count) {
    if (f.type == wt_fixed64) {
      ++count;
      return true;
    }
    if (f.type != wt_len || f.size % 8 != 0)
      return fail("field " + std::to_string(f.number) + " (" + name +
                  ") is neither fixed64 nor a packed run of them" + at(f.start));
    count += f.size / 8;
    return true;
  }

  static std::string_view view(const field& f) {
    return {reinterpret_cast<const char*>(f.data), f.size};
  }

  // ---- messages ------------------------------------------------------------------------------

  bool parse_any(const field& m, any_value& v) {
    if (!want(m, wt_len, "value")) return false;
    return fields(span{m.data, m.size}, [&](const field& f) {
      switch (f.number) {
        case 1:
          if (!want(f, wt_len, "string_value")) return false;
          v.kind = any_value::str;
          v.s = view(f);
          return true;
        case 8:
          if (!scalar(f, "string_value_strindex", v.idx)) return false;
          v.kind = any_value::strindex;
          return true;
        case 2: case 3: case 4: case 5: case 6: case 7:
          v.kind = any_value::other;
          return true;
        default:
          return true;
      }
    });
  }

  // KeyValueAndUnit (dictionary: key_strindex 1, value 2) or KeyValue (key 1, value 2,
  // key_strindex 3).
  bool parse_attr(const field& m, kv_attr& a, bool keyvalue) {
    return fields(span{m.data, m.size}, [&](const field& f) {
      if (f.number == 1 && keyvalue) {
        if (!want(f, wt_len, "key")) return false;
        a.key = view(f);
      } else if (f.number == 1 || (f.number == 3 && keyvalue)) {
        return scalar(f, "key_strindex", a.key_idx);
      } else if (f.number == 2) {
        return parse_any(f, a.value);
      }
      return true;
    });
  }

  bool parse_dictionary(span d) {
    dictionary& x = dict_;
    return fields(d, [&](const field& m) {
      if (m.number < 1 || m.number > 7) return true;
      static const char* names[] = {"", "mapping_table", "location_table", "function_table",
                                    "link_table", "string_table", "attribute_table", "stack_table"};
      if (!want(m, wt_len, names[m.number])) return false;
      if (m.number == 5) {
        x.strings.push_back(view(m));
        return true;
      }
      auto in = [&](size_t n) {
        err_ = std::string(names[m.number]) + "[" + std::to_string(n) + "]: " + err_;
        return false;
      };
      switch (m.number) {
        case 1: {
          mapping_d mp;
          mp.attr_begin = static_cast<uint32_t>(x.idx.size());
          bool ok = fields(span{m.data, m.size}, [&](const field& f) {
            switch (f.number) {
              case 1: return scalar(f, "memory_start", mp.start);
              case 2: return scalar(f, "memory_limit", mp.limit);
              case 3: return scalar(f, "file_offset", mp.offset);
              case 4: return scalar(f, "filename_strindex", mp.filename);
              case 5: return varints(f, "attribute_indices", x.idx);
              default: return true;
            }
          });
          if (!ok) return in(x.mappings.size());
          mp.attr_count = static_cast<uint32_t>(x.idx.size() - mp.attr_begin);
          x.mappings.push_back(mp);
          return true;
        }
        case 2: {
          location_d loc;
          loc.attr_begin = static_cast<uint32_t>(x.idx.size());
          loc.line_begin = static_cast<uint32_t>(x.lines.size());
          bool ok = fields(span{m.data, m.size}, [&](const field& f) {
            switch (f.number) {
              case 1: return scalar(f, "mapping_index", loc.mapping);
              case 2: return scalar(f, "address", loc.address);
              case 3: {
                if (!want(f, wt_len, "lines")) return false;
                line_d ln;
                if (!fields(span{f.data, f.size}, [&](const field& g) {
                      if (g.number == 1) return scalar(g, "function_index", ln.function);
                      if (g.number == 2) return scalar(g, "line", ln.line);
                      return true;
                    }))
                  return false;
                x.lines.push_back(ln);
                return true;
              }
              case 4: return varints(f, "attribute_indices", x.idx);
              default: return true;
            }
          });
          if (!ok) return in(x.locations.size());
          loc.attr_count = static_cast<uint32_t>(x.idx.size() - loc.attr_begin);
          loc.line_count = static_cast<uint32_t>(x.lines.size() - loc.line_begin);
          x.locations.push_back(loc);
          return true;
        }
        case 3: {
          function_d fn;
          bool ok = fields(span{m.data, m.size}, [&](const field& f) {
            switch (f.number) {
              case 1: return scalar(f, "name_strindex", fn.name);
              case 2: return scalar(f, "system_name_strindex", fn.system_name);
              case 3: return scalar(f, "filename_strindex", fn.filename);
              case 4: return scalar(f, "start_line", fn.start_line);
              default: return true;
            }
          });
          if (!ok) return in(x.functions.size());
          x.functions.push_back(fn);
          return true;
        }
        case 4: {
          link_d ln;
          bool ok = fields(span{m.data, m.size}, [&](const field& f) {
            if (f.number == 1 || f.number == 2) {
              if (!want(f, wt_len, f.number == 1 ? "trace_id" : "span_id")) return false;
              (f.number == 1 ? ln.trace_id : ln.span_id) = view(f);
            }
            return true;
          });
          if (!ok) return in(x.links.size());
          x.links.push_back(ln);
          return true;
        }
        case 6: {
          kv_attr a;
          if (!parse_attr(m, a, false)) return in(x.attrs.size());
          x.attrs.push_back(a);
          return true;
        }
        case 7: {
          stack_d st;
          st.begin = static_cast<uint32_t>(x.idx.size());
          bool ok = fields(span{m.data, m.size}, [&](const field& f) {
            return f.number == 1 ? varints(f, "location_indices", x.idx) : true;
          });
          if (!ok) return in(x.stacks.size());
          st.count = static_cast<uint32_t>(x.idx.size() - st.begin);
          x.stacks.push_back(st);
          return true;
        }
      }
      return true;
    });
  }

  void compute_mapping_flags() {
    flags_.assign(dict_.mappings.size(), mapping_flags{});
    for (const location_d& loc : dict_.locations) {
      if (loc.mapping < 0 || static_cast<size_t>(loc.mapping) >= flags_.size()) continue;
      mapping_flags& fl = flags_[loc.mapping];
      if (loc.line_count == 0) {
        fl.functions = fl.filenames = fl.line_numbers = false;
        continue;
      }
      if (loc.line_count > 1) fl.inline_frames = true;
      for (uint32_t i = 0; i < loc.line_count; ++i) {
        const line_d& ln = dict_.lines[loc.line_begin + i];
        fl.line_numbers = fl.line_numbers && ln.line > 0;
        fl.functions = fl.functions && ln.function > 0;
        if (ln.function > 0 && static_cast<size_t>(ln.function) < dict_.functions.size())
          fl.filenames = fl.filenames && dict_.functions[ln.function].filename > 0;
      }
    }
  }

  // ---- lookups -------------------------------------------------------------------------------

  bool string_at(int32_t i, std::string_view what, std::string_view& out) {
    if (i < 0 || static_cast<size_t>(i) >= dict_.strings.size()) {
      // An empty table has no entry 0 either; index 0 then means "" (the proto3 default).
      if (i == 0 && dict_.strings.empty()) {
        out = {};
        return true;
      }
      return fail(table_error(what, i, "string_table", dict_.strings.size()));
    }
    out = dict_.strings[i];
    return true;
  }

  // The string an attribute value holds, or nullopt-like `is_str` false when it holds none.
  bool string_value(const any_value& v, std::string_view what, std::string_view& out,
                    bool& is_str) {
    is_str = false;
    if (v.kind == any_value::str) {
      out = v.s;
      is_str = true;
    } else if (v.kind == any_value::strindex) {
      if (!string_at(v.idx, what, out)) return false;
      is_str = true;
    }
    return true;
  }

  // Attribute `i`, the `pos`-th of some attribute_indices list.
  bool attr_at(int32_t i, size_t pos, const kv_attr*& out) {
    if (i < 0 || static_cast<size_t>(i) >= dict_.attrs.size())
      return fail(table_error("attribute_indices[" + std::to_string(pos) + "]", i,
                              "attribute_table", dict_.attrs.size()));
    out = &dict_.attrs[i];
    return true;
  }

  // The key of a resource/scope KeyValue: inline, or by string index.
  bool kv_key(const kv_attr& a, std::string_view& out) {
    if (!a.key.empty() || a.key_idx == 0) {
      out = a.key;
      return true;
    }
    return string_at(a.key_idx, "key_strindex", out);
  }

  // ---- resource, scope, profile --------------------------------------------------------------

  bool parse_kvs(const field& f, std::vector<kv_attr>& out, std::string_view what) {
    if (!want(f, wt_len, "attributes")) return false;
    kv_attr a;
    if (!parse_attr(f, a, true)) {
      err_ = std::string(what) + ".attributes[" + std::to_string(out.size()) + "]: " + err_;
      return false;
    }
    out.push_back(a);
    return true;
  }

  // Appends the string-valued attributes whose key is not yet among `labels` (first wins).
  bool add_attr_labels(const std::vector<kv_attr>& attrs, label_set& labels,
                       std::string_view what) {
    for (size_t i = 0; i < attrs.size(); ++i) {
      std::string_view key, value;
      bool is_str = false;
      if (!kv_key(attrs[i], key) ||
          !string_value(attrs[i].value, "string_value_strindex", value, is_str)) {
        err_ = std::string(what) + ".attributes[" + std::to_string(i) + "]: " + err_;
        return false;
      }
      if (!is_str || value.empty() || key.empty()) continue;
      bool seen = false;
      size_t visible = 0;
      for (const label& l : labels) {
        seen = seen || l.name == key;
        visible += !l.name.starts_with("__");
      }
      if (seen) continue;
      if (!key.starts_with("__") && visible + 1 > lim_.max_labels) {
        err_ = std::string(what) + ": the resource and scope attributes give more than " +
               std::to_string(lim_.max_labels) +
               " labels with service_name (limits.max_labels_per_series)";
        labels_error_ = true;
        return false;
      }
      labels.push_back({std::string(key), std::string(value)});
    }
    return true;
  }

  bool parse_resource(span r, const std::string& where) {
    std::vector<kv_attr> res_attrs;
    std::vector<span> scopes;
    bool ok = fields(r, [&](const field& f) {
      if (f.number == 1) {
        if (!want(f, wt_len, "resource")) return false;
        return fields(span{f.data, f.size}, [&](const field& g) {
          return g.number == 1 ? parse_kvs(g, res_attrs, "resource") : true;
        });
      }
      if (f.number == 2) {
        if (!want(f, wt_len, "scope_profiles")) return false;
        scopes.push_back({f.data, f.size});
      }
      return true;
    });
    if (!ok) return false;
    // Computed labels win over attributes of the same name.
    label_set base = {{"__delta__", "false"}, {"__otel__", "true"}, {"__name__", ""},
                      {"service_name", ""}};
    if (!add_attr_labels(res_attrs, base, "resource")) return false;
    // service_name: service.name, else unknown_service[:process.executable.name]. The keys and
    // values were checked by add_attr_labels.
    std::string service;
    std::string fallback = "unknown_service";
    bool have_exe = false;
    for (const kv_attr& a : res_attrs) {
      std::string_view key, value;
      bool is_str = false;
      if (!kv_key(a, key) || !string_value(a.value, "string_value_strindex", value, is_str))
        return false;
      if (!is_str || value.empty()) continue;
      if (key == "service.name" && service.empty()) service = value;
      if (key == "process.executable.name" && !have_exe) {
        fallback += ":" + std::string(value);
        have_exe = true;
      }
    }
    if (service.empty()) service = std::move(fallback);
    for (size_t j = 0; j < scopes.size(); ++j) {
      std::string w = where + ".scope_profiles[" + std::to_string(j) + "]";
      if (!parse_scope(scopes[j], base, service, w)) {
        err_ = "scope_profiles[" + std::to_string(j) + "]: " + err_;
        return false;
      }
    }
    return true;
  }

  bool parse_scope(span s, const label_set& resource_labels, const std::string& service,
                   const std::string& where) {
    std::vector<kv_attr> scope_attrs;
    std::vector<span> profiles;
    bool ok = fields(s, [&](const field& f) {
      if (f.number == 1) {
        if (!want(f, wt_len, "scope")) return false;
        return fields(span{f.data, f.size}, [&](const field& g) {
          return g.number == 3 ? parse_kvs(g, scope_attrs, "scope") : true;
        });
      }
      if (f.number == 2) {
        if (!want(f, wt_len, "profiles")) return false;
        profiles.push_back({f.data, f.size});
      }
      return true;
    });
    if (!ok) return false;
    label_set base = resource_labels;
    if (!add_attr_labels(scope_attrs, base, "scope")) return false;
    for (size_t k = 0; k < profiles.size(); ++k) {
      std::string w = where + ".profiles[" + std::to_string(k) + "]";
      if (!parse_profile(profiles[k], base, service, w)) {
        err_ = "profiles[" + std::to_string(k) + "]: " + err_;
        return false;
      }
    }
    return true;
  }

  struct value_type_d {
    bool present = false;
    int32_t type = 0, unit = 0;
  };

  bool parse_value_type(const field& f, const char* name, value_type_d& vt) {
    if (!want(f, wt_len, name)) return false;
    vt.present = true;
    return fields(span{f.data, f.size}, [&](const field& g) {
      if (g.number == 1) return scalar(g, "type_strindex", vt.type);
      if (g.number == 2) return scalar(g, "unit_strindex", vt.unit);
      return true;
    });
  }

  // One output profile under construction (one per service a profile's samples name).
  struct builder {
    std::string service;
    converted_profile out;
    remap strs, locs, fns, maps, kernel_maps;
    remap attr_values;  // attribute index -> string index of its value
    remap link_ids;     // link index -> string index of its span id (its trace id follows)
    uint32_t span_key = 0, trace_key = 0;
  };

  // A string that lives as long as the input (a view into it): no copy.
  uint32_t add_view(builder& b, std::string_view s) {
    b.out.profile.strings.push_back(s);
    return static_cast<uint32_t>(b.out.profile.strings.size() - 1);
  }

  uint32_t add_owned(builder& b, std::string s) {
    out_.owned.push_back(std::move(s));
    b.out.profile.strings.push_back(out_.owned.back());
    return static_cast<uint32_t>(b.out.profile.strings.size() - 1);
  }

  // The output string index of dictionary string `i` (already bounds-checked); "" is always 0.
  uint32_t str(builder& b, int32_t i) {
    if (dict_.strings.empty() || dict_.strings[i].empty()) return 0;
    b.strs.prepare(dict_.strings.size());
    if (uint32_t v = b.strs.get(i)) return v;
    b.out.profile.strings.push_back(dict_.strings[i]);
    auto v = static_cast<uint32_t>(b.out.profile.strings.size() - 1);
    b.strs.set(i, v);
    return v;
  }

  // The string value of the first attribute named `key` among indices [begin, begin + n) of
  // dict_.idx. Checks every index, also past the one found.
  bool find_attr(uint32_t begin, uint32_t n, std::string_view key, std::string_view& value,
                 bool& found) {
    found = false;
    for (uint32_t k = 0; k < n; ++k) {
      const kv_attr* a = nullptr;
      if (!attr_at(dict_.idx[begin + k], k, a))
        return false;
      std::string_view akey;
      if (!string_at(a->key_idx, "key_strindex", akey)) return false;
      std::string_view v;
      bool is_str = false;
      if (!string_value(a->value, "string_value_strindex", v, is_str)) return false;
      if (akey == key && !found && is_str) {
        value = v;
        found = true;
      }
    }
    return true;
  }

  bool mapping_id(builder& b, int32_t i, bool kernel, uint64_t& id) {
    const size_t n = dict_.mappings.size();
    if (i == 0 && n == 0) {  // no mapping table: no mapping
      id = 0;
      return true;
    }
    if (i < 0 || static_cast<size_t>(i) >= n)
      return fail(table_error("mapping_index", i, "mapping_table", n));
    remap& rm = kernel ? b.kernel_maps : b.maps;
    rm.prepare(n);
    if ((id = rm.get(i)) != 0) return true;
    const mapping_d& m = dict_.mappings[i];
    std::string_view filename, build_id;
    bool has_build_id = false;
    if (!string_at(m.filename, "filename_strindex", filename) ||
        !find_attr(m.attr_begin, m.attr_count, "process.executable.build_id.gnu", build_id,
                   has_build_id)) {
      err_ = "dictionary.mapping_table[" + std::to_string(i) + "]: " + err_;
      return false;
    }
    pprof::mapping pm;
    pm.memory_start = m.start;
    pm.memory_limit = m.limit;
    pm.file_offset = m.offset;
    if (kernel && !filename.starts_with("[kernel]"))
      pm.filename = add_owned(b, filename.empty() ? std::string("[kernel]")
                                                  : "[kernel] " + std::string(filename));
    else
      pm.filename = str(b, m.filename);
    if (has_build_id && !build_id.empty()) pm.build_id = add_view(b, build_id);
    const mapping_flags& fl = flags_[i];
    pm.has_functions = fl.functions;
    pm.has_filenames = fl.filenames;
    pm.has_line_numbers = fl.line_numbers;
    pm.has_inline_frames = fl.inline_frames;
    auto& ms = b.out.profile.mappings;
    pm.id = ms.size() + 1;
    ms.push_back(pm);
    id = pm.id;
    rm.set(i, static_cast<uint32_t>(id));
    return true;
  }

  bool function_id(builder& b, int32_t i, uint64_t& id) {
    const size_t n = dict_.functions.size();
    if (i == 0 && n == 0) {  // no function table: a line without function information
      id = 0;
      return true;
    }
    if (i < 0 || static_cast<size_t>(i) >= n)
      return fail(table_error("function_index", i, "function_table", n));
    b.fns.prepare(n);
    if ((id = b.fns.get(i)) != 0) return true;
    const function_d& f = dict_.functions[i];
    std::string_view s;
    if (!string_at(f.name, "name_strindex", s) ||
        !string_at(f.system_name, "system_name_strindex", s) ||
        !string_at(f.filename, "filename_strindex", s)) {
      err_ = "dictionary.function_table[" + std::to_string(i) + "]: " + err_;
      return false;
    }
    pprof::function pf;
    pf.name = str(b, f.name);
    pf.system_name = str(b, f.system_name);
    pf.filename = str(b, f.filename);
    pf.start_line = f.start_line;
    auto& fs = b.out.profile.functions;
    pf.id = fs.size() + 1;
    fs.push_back(pf);
    id = pf.id;
    b.fns.set(i, static_cast<uint32_t>(id));
    return true;
  }

  bool location_id(builder& b, int32_t i, uint64_t& id) {
    const size_t n = dict_.locations.size();
    if (i < 0 || static_cast<size_t>(i) >= n)
      return fail(table_error("location index", i, "location_table", n));
    b.locs.prepare(n);
    if ((id = b.locs.get(i)) != 0) return true;
    const location_d& loc = dict_.locations[i];
    auto in = [&] {
      err_ = "dictionary.location_table[" + std::to_string(i) + "]: " + err_;
      return false;
    };
    std::string_view frame_type;
    bool has_frame_type = false;
    if (!find_attr(loc.attr_begin, loc.attr_count, "profile.frame.type", frame_type,
                   has_frame_type))
      return in();
    pprof::location pl;
    pl.address = loc.address;
    if (!mapping_id(b, loc.mapping, has_frame_type && frame_type == "kernel", pl.mapping_id))
      return in();
    auto& lines = b.out.profile.lines;
    pl.line_begin = static_cast<uint32_t>(lines.size());
    for (uint32_t k = 0; k < loc.line_count; ++k) {
      const line_d& ln = dict_.lines[loc.line_begin + k];
      pprof::line pln;
      if (!function_id(b, ln.function, pln.function_id)) {
        err_ = "lines[" + std::to_string(k) + "]: " + err_;
        return in();
      }
      pln.line = ln.line;
      lines.push_back(pln);
    }
    pl.line_count = loc.line_count;
    auto& ls = b.out.profile.locations;
    pl.id = ls.size() + 1;
    ls.push_back(pl);
    id = pl.id;
    b.locs.set(i, static_cast<uint32_t>(id));
    return true;
  }

  // The builder for `service`, started for the current profile when new.
  // The builder for `service`, started for the current profile when new; nullptr (and err_)
  // past limits.max_profiles.
  builder* builder_for(std::string_view service) {
    if (active_ > 0 && pool_[0].service == service) return &pool_[0];  // the common case
    if (auto it = services_.find(service); it != services_.end()) return &pool_[it->second];
    if (out_.profiles.size() + active_ >= lim_.max_profiles) {
      too_large_ = true;
      fail("the request converts to more than " + std::to_string(lim_.max_profiles) +
           " profiles (one per OTLP profile and service; limits.max_otlp_profiles)");
      return nullptr;
    }
    if (active_ == pool_.size()) pool_.emplace_back();
    services_.emplace(std::string(service), active_);
    const bool sparse = active_ > 0;
    builder& b = pool_[active_++];
    b.service = service;
    b.out = converted_profile{};
    b.out.profile.strings.push_back({});
    for (remap* r : {&b.strs, &b.locs, &b.fns, &b.maps, &b.kernel_maps, &b.attr_values, &b.link_ids})
      r->reset(sparse);
    b.span_key = b.trace_key = 0;
    return &b;
  }

  bool parse_profile(span p, const label_set& scope_labels, const std::string& service,
                     const std::string& where) {
    value_type_d sample_type, period_type;
    uint64_t time = 0, duration = 0;
    int64_t period = 0;
    std::vector<span> samples;
    std::vector<int32_t> attrs;
    bool ok = fields(p, [&](const field& f) {
      switch (f.number) {
        case 1: return parse_value_type(f, "sample_type", sample_type);
        case 2:
          if (!want(f, wt_len, "samples")) return false;
          samples.push_back({f.data, f.size});
          return true;
        case 3:
          if (!want(f, wt_fixed64, "time_unix_nano")) return false;
          time = f.value;
          return true;
        case 4: return scalar(f, "duration_nano", duration);
        case 5: return parse_value_type(f, "period_type", period_type);
        case 6: return scalar(f, "period", period);
        case 11: return varints(f, "attribute_indices", attrs);
        default: return true;
      }
    });
    if (!ok) return false;
    if (!sample_type.present) return fail("the profile has no sample_type");
    for (size_t k = 0; k < attrs.size(); ++k) {
      const kv_attr* a = nullptr;
      if (!attr_at(attrs[k], k, a)) return false;
    }
    std::string_view type, unit, ptype, punit;
    if (!string_at(sample_type.type, "sample_type.type_strindex", type) ||
        !string_at(sample_type.unit, "sample_type.unit_strindex", unit))
      return false;
    if (period_type.present && (!string_at(period_type.type, "period_type.type_strindex", ptype) ||
                                !string_at(period_type.unit, "period_type.unit_strindex", punit)))
      return false;
    // The profile name from "type:unit:period type:period unit" (period parts only with a period).
    std::string_view name_ptype = period != 0 ? ptype : std::string_view();
    std::string_view name_punit = period != 0 ? punit : std::string_view();
    bool samples_to_nanos = type == "samples" && unit == "count" && name_ptype == "cpu" &&
                            name_punit == "nanoseconds";
    std::string name;
    if (samples_to_nanos) {
      name = "process_cpu";
    } else if (type == "off_cpu" && unit == "nanoseconds" && name_ptype.empty() &&
               name_punit.empty()) {
      name = "off_cpu";
    } else {
      std::string joined = std::string(type) + ":" + std::string(unit) + ":" +
                           std::string(name_ptype) + ":" + std::string(name_punit);
      size_t a = joined.find(':');
      size_t b = joined.find(':', a + 1);
      size_t c = joined.find(':', b + 1);
      name = joined.substr(b + 1, c - b - 1);
      if (name.empty()) name = "process_cpu";
    }

    active_ = 0;
    services_.clear();
    std::vector<int32_t> sample_attrs;
    std::vector<int64_t> values;
    for (size_t si = 0; si < samples.size(); ++si) {
      auto in = [&] {
        err_ = "samples[" + std::to_string(si) + "]: " + err_;
        return false;
      };
      int32_t stack_index = 0, link_index = 0;
      sample_attrs.clear();
      values.clear();
      uint64_t timestamps = 0;
      if (!fields(samples[si], [&](const field& f) {
            switch (f.number) {
              case 1: return scalar(f, "stack_index", stack_index);
              case 2: return varints(f, "attribute_indices", sample_attrs);
              case 3: return scalar(f, "link_index", link_index);
              case 4: return varints(f, "values", values);
              case 5: return fixed64s(f, "timestamps_unix_nano", timestamps);
              default: return true;
            }
          }))
        return in();
      // The value: the sum of the values (one per timestamp), else one per timestamp.
      uint64_t v = 0;
      if (!values.empty()) {
        for (int64_t x : values) v += static_cast<uint64_t>(x);
      } else if (timestamps > 0) {
        v = timestamps;
      } else {
        fail("the sample has neither values nor timestamps_unix_nano");
        return in();
      }
      if (samples_to_nanos) v *= static_cast<uint64_t>(period);
      // The sample's service (its service.name attribute) picks the output profile.
      std::string_view svc = service;
      bool sample_service = false;
      for (size_t k = 0; k < sample_attrs.size(); ++k) {
        const kv_attr* a = nullptr;
        std::string_view key, value;
        bool is_str = false;
        if (!attr_at(sample_attrs[k], k, a) ||
            !string_at(a->key_idx, "key_strindex", key) ||
            !string_value(a->value, "string_value_strindex", value, is_str))
          return in();
        if (key == "service.name" && is_str && !value.empty() && !sample_service) {
          svc = value;
          sample_service = true;
        }
      }
      if (stack_index < 0 || static_cast<size_t>(stack_index) >= dict_.stacks.size()) {
        fail(table_error("stack_index", stack_index, "stack_table", dict_.stacks.size()));
        return in();
      }
      const stack_d& st = dict_.stacks[stack_index];
      location_refs_ += st.count;
      if (location_refs_ > lim_.max_location_refs) {
        too_large_ = true;
        fail("the samples' stacks hold more than " + std::to_string(lim_.max_location_refs) +
             " locations in all (limits.max_profile_bytes)");
        return in();
      }
      builder* bp = builder_for(svc);
      if (bp == nullptr) return in();
      builder& b = *bp;
      pprof::profile& pp = b.out.profile;
      pprof::sample s;
      s.value_begin = static_cast<uint32_t>(pp.values.size());
      pp.values.push_back(static_cast<int64_t>(v));
      s.loc_begin = static_cast<uint32_t>(pp.location_ids.size());
      for (uint32_t k = 0; k < st.count; ++k) {
        uint64_t id = 0;
        if (!location_id(b, dict_.idx[st.begin + k], id)) {
          err_ = "dictionary.stack_table[" + std::to_string(stack_index) + "].location_indices[" +
                 std::to_string(k) + "]: " + err_;
          return in();
        }
        pp.location_ids.push_back(id);
      }
      s.loc_count = st.count;
      s.label_begin = static_cast<uint32_t>(pp.labels.size());
      for (int32_t ai : sample_attrs) {
        const kv_attr& a = dict_.attrs[ai];  // checked above
        std::string_view key = dict_.strings.empty() ? std::string_view() : dict_.strings[a.key_idx];
        std::string_view value;
        bool is_str = false;
        (void)string_value(a.value, "string_value_strindex", value, is_str);  // checked above
        if (!is_str || value.empty() || key.empty() || key == "service.name") continue;
        pprof::sample_label l;
        l.key = str(b, a.key_idx);
        if (a.value.kind == any_value::strindex) {
          l.str = str(b, a.value.idx);
        } else {
          b.attr_values.prepare(dict_.attrs.size());
          if ((l.str = b.attr_values.get(ai)) == 0) {
            l.str = add_view(b, value);
            b.attr_values.set(ai, static_cast<uint32_t>(l.str));
          }
        }
        pp.labels.push_back(l);
      }
      if (link_index != 0) {
        if (link_index < 0 || static_cast<size_t>(link_index) >= dict_.links.size()) {
          fail(table_error("link_index", link_index, "link_table", dict_.links.size()));
          return in();
        }
        const link_d& ln = dict_.links[link_index];
        if (b.span_key == 0) {
          b.span_key = add_view(b, "span_id");
          b.trace_key = add_view(b, "trace_id");
        }
        b.link_ids.prepare(dict_.links.size());
        uint32_t span = b.link_ids.get(link_index);
        if (span == 0) {
          span = add_owned(b, hex(ln.span_id));
          if (ln.trace_id.size() == 16) add_owned(b, hex(ln.trace_id));
          b.link_ids.set(link_index, span);
        }
        pp.labels.push_back({b.span_key, span, 0, 0});
        if (ln.trace_id.size() == 16) pp.labels.push_back({b.trace_key, span + 1, 0, 0});
      }
      s.label_count = static_cast<uint32_t>(pp.labels.size() - s.label_begin);
      pp.samples.push_back(s);
    }
    for (size_t i = 0; i < active_; ++i) {
      builder& b = pool_[i];
      pprof::profile& pp = b.out.profile;
      if (samples_to_nanos) {
        pp.sample_types.push_back({add_owned(b, "cpu"), add_owned(b, "nanoseconds")});
      } else {
        pp.sample_types.push_back({str(b, sample_type.type), str(b, sample_type.unit)});
      }
      if (period_type.present) pp.period_type = {str(b, period_type.type), str(b, period_type.unit)};
      pp.period = period;
      pp.time_nanos = static_cast<int64_t>(time);
      pp.duration_nanos = static_cast<int64_t>(duration);
      b.out.time_ns = static_cast<int64_t>(time);
      b.out.duration_ns = static_cast<int64_t>(duration);
      b.out.where = where;
      b.out.labels = scope_labels;
      for (label& l : b.out.labels) {
        if (l.name == "__name__") l.value = name;
        if (l.name == "service_name") l.value = b.service;
      }
      std::sort(b.out.labels.begin(), b.out.labels.end());
      out_.profiles.push_back(std::move(b.out));
    }
    return true;
  }

  static std::string hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
      s += digits[c >> 4];
      s += digits[c & 15];
    }
    return s;
  }

  const uint8_t* base_;
  const uint8_t* end_;
  std::string err_;
  dictionary dict_;
  std::vector<mapping_flags> flags_;
  const limits lim_;
  bool too_large_ = false;      // the error in err_ is a limit (413), not malformed input
  bool labels_error_ = false;   // the error in err_ is too many labels
  uint64_t location_refs_ = 0;  // sum of the stack lengths of all samples so far
  std::vector<builder> pool_;
  size_t active_ = 0;  // builders of pool_ in use by the current profile
  std::unordered_map<std::string, size_t, string_hash, std::equal_to<>> services_;  // -> pool_ index
  request out_;
};

}  // namespace

result<request> decode(bytes_view raw, const limits& lim) {
  decoder d(raw, lim);
  return d.run();
}

}  // namespace hearth::otlp
