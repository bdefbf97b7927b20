// The pure parts of the ec2 strategy: the EC2 Query API request body, the DescribeInstances XML
// reply (libexpat), the instance role's credentials JSON and node naming. No I/O, so the unit
// tests and the fuzzer (in the clusterd tree) compile this file alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterd_ec2 {

struct Instance {
  std::string id, state, private_ip, public_ip, private_dns;
  std::vector<std::pair<std::string, std::string>> tags;  // key, value
};

struct DescribeResult {
  std::vector<Instance> instances;
  std::string next_token;  // "" on the last page
};

// DescribeInstancesResponse → `out`. On false, `error` says why; for an EC2 error document
// (<Response><Errors><Error>) it is "CODE: MESSAGE". Bounded: at most kMaxInstances
// instances and kMaxText bytes per text field; a DTD is refused.
inline constexpr std::size_t kMaxInstances = 100000;
inline constexpr std::size_t kMaxText = 4096;
bool parse_describe_instances(std::string_view xml, DescribeResult &out, std::string &error);

// "CODE: MESSAGE" of an EC2 error document, or "" when `body` is not one.
std::string api_error(std::string_view body);

// RFC 3986 percent-encoding of everything but unreserved characters (what SigV4 expects).
std::string url_encode(std::string_view text);
// A form body (application/x-www-form-urlencoded) from name/value pairs, in the given order.
std::string form(const std::vector<std::pair<std::string, std::string>> &params);
// DescribeInstances of the running instances tagged name=value, from `next_token` on.
std::string describe_tagged_form(std::string_view tag_name, std::string_view tag_value,
                                 std::string_view next_token);
// DescribeInstances of one instance (to read this instance's own tags).
std::string describe_instance_form(std::string_view instance_id);

struct Credentials {
  std::string access_key_id, secret_access_key, session_token;
  int64_t expiration = 0;  // Unix seconds; 0 = does not expire
};
// The JSON of /latest/meta-data/iam/security-credentials/ROLE. `error` never holds a secret.
bool parse_role_credentials(std::string_view json, Credentials &out, std::string &error);
// "2026-11-27T12:34:56Z" (also with fractional seconds) → Unix seconds; false if malformed.
bool parse_iso8601(std::string_view text, int64_t &out);

// Which address names a node: ip_type "private", "public" (libcluster_ec2's) or "private_dns".
enum class NameType { private_ip, public_ip, private_dns };
bool parse_name_type(std::string_view text, NameType &out);
// An AWS region name as the endpoints use it: lower-case letters, digits and '-', at least
// three parts ("eu-west-1", "us-gov-west-1", "ap-southeast-3").
bool valid_region(std::string_view text);
// prefix@address for each running instance, sorted and unique; instances without the address
// are listed in `skipped` ("i-123: no public IP").
std::vector<std::string> node_names(const std::vector<Instance> &instances,
                                    std::string_view app_prefix, NameType type,
                                    std::vector<std::string> &skipped);

}  // namespace clusterd_ec2
