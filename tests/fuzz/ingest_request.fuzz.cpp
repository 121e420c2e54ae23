// libFuzzer target: the legacy /ingest request parsers on untrusted text: the first line is the
// Content-Type (multipart boundary), the second the `name` parameter, the third an attime value,
// the rest the body split by parse_multipart.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/ingest_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto line = [&]() {
    size_t nl = in.find('\n');
    std::string_view l = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    return l;
  };
  std::string_view content_type = line(), name = line(), attime = line();
  (void)parse_app_name(name);
  (void)parse_attime(attime, 1767225600000000000);
  auto boundary = multipart_boundary(content_type);
  if (!boundary) return 0;
  auto parts = parse_multipart(in, *boundary);
  if (parts) (void)find_part(*parts, "profile");
  return 0;
}
