// The request head of the metrics listener's HTTP/1.x: method and path, nothing else. Pure,
// no dependencies: fuzzed (tests/fuzz/metrics_http_fuzz.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace clusterd::metrics {

struct RequestHead {
  std::string method;
  std::string path;  // without the query string
};

// Parses a request head (the request line and headers, up to and including the blank line).
// nullopt when it is not HTTP/1.x. Pure; fuzzed (tests/fuzz/metrics_http_fuzz.cpp).
std::optional<RequestHead> parse_request_head(std::string_view head);

}  // namespace clusterd::metrics
