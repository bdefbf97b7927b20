// libFuzzer target: the consul strategy's reply parsers (plugins/third_party/
// clusterd-plugin-consul/consul_api.hpp): the JSON of /v1/catalog/service, /v1/health/service,
// /v1/agent/services and /v1/catalog/datacenters, the X-Consul-Index header and the node name
// template, all read from the network or the configuration. Besides "no crash, no UB, no
// leak", it aborts when:
//   - a failure has no message;
//   - an instance has an empty address, or a field is longer than the parser's bound;
//   - the next index goes backwards without a reset to 0, or is 0 after a valid header.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "consul_api.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_found(bool ok, const std::vector<clusterd_consul::Found> &found,
                 const std::string &error) {
  namespace api = clusterd_consul;
  if (!ok) return check(!error.empty());
  check(found.size() <= api::kMaxEntries);
  for (const auto &f : found)
    check(!f.address.empty() && f.address.size() <= api::kMaxText &&
          f.datacenter.size() <= api::kMaxText);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  namespace api = clusterd_consul;
  const std::string_view body(reinterpret_cast<const char *>(data), size);
  std::vector<api::Found> found;
  std::vector<std::string> skipped;
  std::string error;
  check_found(api::parse_catalog(body, found, skipped, error), found, error);
  error.clear();
  check_found(api::parse_health(body, found, skipped, error), found, error);
  error.clear();
  check_found(api::parse_agent_services(body, "web", "", found, skipped, error), found, error);
  error.clear();
  std::vector<std::string> dcs;
  if (!api::parse_datacenters(body, dcs, error)) {
    check(!error.empty() && dcs.empty());
  } else {
    for (const auto &dc : dcs) check(!dc.empty() && dc.size() <= api::kMaxText);
  }
  const std::string_view header = body.substr(0, 24);
  for (uint64_t previous : {uint64_t{0}, uint64_t{7}, ~uint64_t{0}}) {
    if (auto next = api::next_index(previous, header)) check(*next == 0 || *next >= previous);
    if (auto next = api::next_index(previous, header); next && previous == 0) check(*next != 0);
  }
  api::NameTemplate tpl;
  if (!tpl.parse(body.substr(0, 256), error)) {
    check(!error.empty());
  } else {
    (void)tpl.render("10.0.0.1", "dc1", "app");
  }
  return 0;
}
