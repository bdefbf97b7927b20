// The Rancher 1.x metadata reply (GET /latest/self/service, Accept: application/json) as the
// rancher strategy reads it: a pure parser, unit-tested against the fixture and fuzzed
// (tests/fuzz/rancher_metadata_fuzz.cpp). The body comes from the network: any input gives a
// result or an error, never an exception or a crash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clusterd::rancher {

/// What one reply says.
struct Service {
  std::vector<std::string> ips;      ///< ips[0] of each container that has one, in reply order
  std::vector<std::string> skipped;  ///< "NAME: why" for each container left out
};

/// Reads a reply: a JSON object whose "containers" is an array of objects. A container's IP is
/// the first element of its "ips" (libcluster's rule); a container without one (a starting
/// container: "ips": [] or absent), or whose first IP is not an IP address, is skipped and
/// listed in `skipped` (libcluster crashes on it). Returns false with `error` when the body is
/// not JSON, not an object, or has no "containers" array.
bool parse_service(std::string_view body, Service &out, std::string &error);

}  // namespace clusterd::rancher
