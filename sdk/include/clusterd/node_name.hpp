// clusterd plugin SDK — the node-name rule of node_name.h for C++: parse, check, explain; the very
// check the host applies at the strategy sink.
#ifndef CLUSTERD_NODE_NAME_HPP
#define CLUSTERD_NODE_NAME_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "node_name.h"

namespace clusterd {

// ---- Node names ------------------------------------------------------------------------------

/// A node name taken apart by the node-name rule (clusterd/node_name.h states it; the host
/// applies the same rule to every name a strategy reports). The views point into the text that
/// was parsed: valid as long as it is.
struct NodeName {
  enum class HostKind : uint32_t {
    kShort = CLUSTERD_NODE_HOST_SHORT,    // no dots: an Erlang short name's host
    kDotted = CLUSTERD_NODE_HOST_DOTTED,  // an FQDN: an Erlang long name's host
    kIpv4 = CLUSTERD_NODE_HOST_IPV4,
    kIpv6 = CLUSTERD_NODE_HOST_IPV6,
  };
  std::string_view name;         // before '@'
  std::string_view host;         // after '@', without the port, IPv6 without brackets
  std::optional<uint16_t> port;  // partisan's "name@host:port"; nullopt when absent
  HostKind host_kind = HostKind::kShort;

  /// The host as it goes before ":port" in an address: IPv6 in brackets.
  std::string address_host() const {
    std::string out;
    if (host_kind == HostKind::kIpv6) out += '[';
    out += host;
    if (host_kind == HostKind::kIpv6) out += ']';
    return out;
  }
};

/// `node` taken apart, or nullopt when it breaks the node-name rule. [thread-safe]
inline std::optional<NodeName> parse_node_name(std::string_view node) noexcept {
  clusterd_node_name_t parts{};
  if (clusterd_node_name_parse(node.data(), node.size(), &parts) != CLUSTERD_NODE_NAME_OK)
    return std::nullopt;
  NodeName out;
  out.name = node.substr(0, parts.name_length);
  out.host = node.substr(parts.host_offset, parts.host_length);
  if (parts.port != 0) out.port = static_cast<uint16_t>(parts.port);
  out.host_kind = static_cast<NodeName::HostKind>(parts.host_kind);
  return out;
}

/// True when `node` follows the node-name rule: the very check the host applies at the strategy
/// sink. [thread-safe]
inline bool valid_node_name(std::string_view node) noexcept {
  return clusterd_node_name_parse(node.data(), node.size(), nullptr) == CLUSTERD_NODE_NAME_OK;
}

/// Why `node` breaks the node-name rule, in words ("" when it does not). Static storage.
/// [thread-safe]
inline const char *node_name_error(std::string_view node) noexcept {
  return clusterd_node_name_error(clusterd_node_name_parse(node.data(), node.size(), nullptr));
}

}  // namespace clusterd

#endif  // CLUSTERD_NODE_NAME_HPP
