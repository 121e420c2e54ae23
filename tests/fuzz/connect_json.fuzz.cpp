// libFuzzer target: Connect request decoding and validation (cluster/query_api.cpp) for every
// QuerierService and FindingsService method, in both codecs. The first byte picks the method and
// the codec; the rest is the request body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/query_api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth;
  static constexpr std::pair<std::string_view, std::string_view> methods[] = {
      {"querier.v1.QuerierService", "ProfileTypes"},
      {"querier.v1.QuerierService", "LabelNames"},
      {"querier.v1.QuerierService", "LabelValues"},
      {"querier.v1.QuerierService", "Series"},
      {"querier.v1.QuerierService", "SelectMergeStacktraces"},
      {"querier.v1.QuerierService", "SelectMergeProfile"},
      {"querier.v1.QuerierService", "SelectSeries"},
      {"querier.v1.QuerierService", "SelectMergeSpanProfile"},
      {"querier.v1.QuerierService", "Diff"},
      {"querier.v1.QuerierService", "GetProfileStats"},
      {"querier.v1.QuerierService", "AnalyzeQuery"},
      {"hearth.v1.FindingsService", "Explain"},
      {"hearth.v1.FindingsService", "Regression"},
  };
  if (size == 0) return 0;
  const auto& [service, method] = methods[data[0] % std::size(methods)];
  const auto codec = (data[0] / std::size(methods)) % 2 ? connect::codec::proto : connect::codec::json;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)api::parse_request(service, method, codec, body, api::limits{}, 1767225600000000000);
  return 0;
}
