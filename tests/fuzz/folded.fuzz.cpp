// libFuzzer target: the folded / lines text parsers and the app-name suffix mapping on untrusted
// text (the first line is the app name, the rest the body), then batch_builder over the result.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/folded.hpp"
#include "format/normalize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string_view app = in.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  auto t = legacy_text_type_of(app, app.size() % 2 ? 100 : 997);
  if (!t) return 0;
  text_limits lim;
  lim.max_stack_depth = 256;
  for (auto f : {text_format::folded, text_format::lines}) {
    auto p = parse_text_profile(body, f, *t, lim);
    if (!p) continue;
    ingest_meta m;
    m.labels = {{"service_name", std::string(t->app.empty() ? "x" : t->app)}};
    m.time_ns = 1;
    batch_builder b;
    b.start("fuzz", normalize_limits{});
    (void)b.add_converted(*p, m, t->name, t->app.empty() ? "x" : t->app);
    (void)b.finish();
  }
  return 0;
}
