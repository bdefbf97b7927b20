// libFuzzer target: the ec2 strategy's reply parsers (plugins/third_party/clusterd-plugin-ec2/
// ec2_api.hpp): DescribeInstances XML (libexpat), EC2 error documents and the instance role's
// credentials JSON, all read from the network. Besides "no crash, no UB, no leak", it aborts
// when:
//   - a failure has no message or leaves instances behind;
//   - a parsed field is longer than the parser's bound;
//   - a node name is not PREFIX@address with a non-empty address.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ec2_api.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  namespace api = clusterd_ec2;
  const std::string_view body(reinterpret_cast<const char *>(data), size);
  api::DescribeResult result;
  std::string error;
  if (!api::parse_describe_instances(body, result, error)) {
    check(!error.empty());
    check(result.instances.empty() && result.next_token.empty());
  } else {
    check(result.next_token.size() <= api::kMaxText);
    for (const auto &i : result.instances) {
      check(i.id.size() <= api::kMaxText && i.private_ip.size() <= api::kMaxText);
    }
    std::vector<std::string> skipped;
    for (const auto &n :
         api::node_names(result.instances, "app", api::NameType::private_ip, skipped)) {
      check(n.size() > 4 && n.compare(0, 4, "app@") == 0);
    }
  }
  (void)api::api_error(body);
  api::Credentials creds;
  if (!api::parse_role_credentials(body, creds, error)) {
    check(!error.empty());
  } else {
    check(!creds.access_key_id.empty() && !creds.secret_access_key.empty());
  }
  return 0;
}
