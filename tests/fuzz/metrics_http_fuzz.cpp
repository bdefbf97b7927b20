// libFuzzer target: the metrics listener's request-head parser
// (host/src/metrics/request_head.hpp), which reads bytes from any TCP client.
// Besides "no crash, no UB, no leak", it aborts when an accepted request has a method that is
// not upper-case letters, or a path that does not start with '/' or holds a space, a control
// character or the query string.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metrics/request_head.hpp"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  std::string_view head(reinterpret_cast<const char *>(data), size);
  auto request = clusterd::metrics::parse_request_head(head);
  if (!request) return 0;
  check(!request->method.empty());
  for (char c : request->method) check(c >= 'A' && c <= 'Z');
  check(!request->path.empty() && request->path[0] == '/');
  for (char c : request->path) check(static_cast<unsigned char>(c) > ' ' && c != 0x7f && c != '?');
  return 0;
}
