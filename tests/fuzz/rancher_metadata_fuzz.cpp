// libFuzzer target: the Rancher metadata reply parser
// (plugins/strategies/rancher/rancher_metadata.hpp), which reads a body from the network.
// Besides "no crash, no UB, no leak", it aborts when:
//   - a failure has no message or leaves results behind;
//   - an accepted IP does not parse as an IPv4 or IPv6 address (it becomes a node name);
//   - a skipped entry has no "NAME: why" shape.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rancher_metadata.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_ip(const std::string &text) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char *>(data), size);
  clusterd::rancher::Service service;
  std::string error;
  if (!clusterd::rancher::parse_service(body, service, error)) {
    check(!error.empty());
    check(service.ips.empty() && service.skipped.empty());
    return 0;
  }
  for (const auto &ip : service.ips) check(is_ip(ip));
  for (const auto &s : service.skipped) {
    check(s.find(": ") != std::string::npos);
    for (const char c : s) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  }
  return 0;
}
