#include "config/constraints.hpp"

#include <arpa/inet.h>

#include <clusterd/node_name.h>

#include <algorithm>
#include <cctype>

#include "util/strings.hpp"

namespace clusterd::config {
namespace {

bool is_ipv4(std::string_view text) {
  in_addr out{};
  return inet_pton(AF_INET, std::string(text).c_str(), &out) == 1;
}
bool is_ipv6(std::string_view text) {
  in6_addr out{};
  return inet_pton(AF_INET6, std::string(text).c_str(), &out) == 1;
}

// A DNS host name (letters, digits, '-', '_', dots between labels) or an IP literal.
bool is_host(std::string_view host) {
  if (is_ipv4(host) || is_ipv6(host)) return true;
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::optional<std::uint32_t> port_of(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return value <= 65535 ? std::optional(value) : std::nullopt;
}

// host, host:port, bare IPv6, [v6] or [v6]:port, with a port 1..65535.
bool is_host_port(std::string_view text) {
  if (is_ipv6(text)) return true;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || !is_ipv6(text.substr(1, close - 1))) return false;
    auto rest = text.substr(close + 1);
    if (rest.empty()) return true;
    auto port = rest.front() == ':' ? port_of(rest.substr(1)) : std::nullopt;
    return port && *port > 0;
  }
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return is_host(text);
  auto port = port_of(text.substr(colon + 1));
  return is_host(text.substr(0, colon)) && port && *port > 0;
}

bool is_url(std::string_view text, bool https_only) {
  std::string_view rest;
  if (text.substr(0, 8) == "https://")
    rest = text.substr(8);
  else if (!https_only && text.substr(0, 7) == "http://")
    rest = text.substr(7);
  else
    return false;
  if (std::any_of(text.begin(), text.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; }))
    return false;
  auto authority = rest.substr(0, rest.find_first_of("/?#"));
  return is_host_port(authority) && authority.find('@') == std::string_view::npos;
}

// The bound of an INT or DURATION option as written in the file.
std::string bound_text(const OptionSpec &spec, std::int64_t bound) {
  return spec.type == CLUSTERD_OPT_DURATION ? duration_text(bound) : std::to_string(bound);
}

// "from 1 to 65535", "at least 1s", "at most 255 bytes long", "at least 1 element(s)".
std::string range_text(const OptionSpec &spec) {
  std::string unit = spec.type == CLUSTERD_OPT_STRING        ? " bytes long"
                     : spec.type == CLUSTERD_OPT_STRING_LIST ? " element(s)"
                                                             : "";
  if (spec.min && spec.max)
    return "from " + bound_text(spec, *spec.min) + " to " + bound_text(spec, *spec.max) + unit;
  if (spec.min) return "at least " + bound_text(spec, *spec.min) + unit;
  return "at most " + bound_text(spec, *spec.max) + unit;
}

// "" when `n` is within the spec's bounds.
std::string check_range(const OptionSpec &spec, std::int64_t n, const std::string &found) {
  if ((spec.min && n < *spec.min) || (spec.max && n > *spec.max))
    return std::string(spec.type == CLUSTERD_OPT_STRING_LIST ? "must have " : "must be ") +
           range_text(spec) + (found.empty() ? "" : ", not " + found);
  return "";
}

// A string or one element of a list; `subject` names the element ("element #2"), or is "".
std::string check_element(const OptionSpec &spec, const std::string &text,
                          const std::string &subject) {
  std::string prefix = subject.empty() ? "" : subject + " ";
  if (spec.nonempty() && text.empty()) return prefix + "must not be empty";
  if (spec.format == CLUSTERD_FORMAT_ANY || text.empty()) return "";
  auto why = check_format(spec.format, text);
  if (why.empty()) return "";
  return prefix + (spec.secret() ? "" : util::quote_for_message(text) + " ") + why;
}

}  // namespace

std::string_view format_name(std::uint32_t format) {
  switch (format) {
    case CLUSTERD_FORMAT_NODE_NAME:
      return "a node name (name@host)";
    case CLUSTERD_FORMAT_HOST_PORT:
      return "a host or host:port";
    case CLUSTERD_FORMAT_IPV4:
      return "an IPv4 address (a.b.c.d)";
    case CLUSTERD_FORMAT_IPV6:
      return "an IPv6 address";
    case CLUSTERD_FORMAT_IP:
      return "an IP address";
    case CLUSTERD_FORMAT_HTTPS_URL:
      return "an https:// URL";
    case CLUSTERD_FORMAT_URL:
      return "an http:// or https:// URL";
    case CLUSTERD_FORMAT_IP_PORT:
      return "IP:PORT ([v6]:PORT for IPv6)";
    case CLUSTERD_FORMAT_NODE_BASENAME:
      return "the name part of a node name (before '@': 1 or more of A-Z a-z 0-9 _ -)";
    default:
      return "";
  }
}

std::string check_format(std::uint32_t format, std::string_view text) {
  bool ok = false;
  switch (format) {
    case CLUSTERD_FORMAT_ANY:
      return "";
    case CLUSTERD_FORMAT_NODE_NAME:  // the SDK's rule, the one the strategy sink applies
      if (int code = clusterd_node_name_parse(text.data(), text.size(), nullptr);
          code != CLUSTERD_NODE_NAME_OK)
        return "is not a node name: " + std::string(clusterd_node_name_error(code));
      return "";
    case CLUSTERD_FORMAT_HOST_PORT:
      ok = is_host_port(text);
      break;
    case CLUSTERD_FORMAT_IPV4:
      ok = is_ipv4(text);
      break;
    case CLUSTERD_FORMAT_IPV6:
      ok = is_ipv6(text);
      break;
    case CLUSTERD_FORMAT_IP:
      ok = is_ipv4(text) || is_ipv6(text);
      break;
    case CLUSTERD_FORMAT_HTTPS_URL:
      ok = is_url(text, true);
      if (!ok && text.substr(0, 7) == "http://")
        return "is not an https:// URL (plain http is refused: the traffic carries credentials)";
      break;
    case CLUSTERD_FORMAT_URL:
      ok = is_url(text, false);
      break;
    case CLUSTERD_FORMAT_IP_PORT: {
      auto parts = util::split_host_port(text);
      ok = parts && util::is_ip_address(parts->host);
      break;
    }
    case CLUSTERD_FORMAT_NODE_BASENAME: {  // the name part of that rule
      const std::string node = std::string(text) + "@h";
      ok = clusterd_node_name_parse(node.data(), node.size(), nullptr) == CLUSTERD_NODE_NAME_OK;
      break;
    }
    default:
      return "has an unknown format " + std::to_string(format);
  }
  return ok ? "" : "is not " + std::string(format_name(format));
}

std::string check_constraints(const OptionSpec &spec, const OptionValues::Value &value) {
  switch (spec.type) {
    case CLUSTERD_OPT_INT:
      return check_range(spec, value.integer, std::to_string(value.integer));
    case CLUSTERD_OPT_DURATION:
      if (value.integer < 0) {
        if (spec.finite()) return "must be a finite duration (\"infinity\" is not allowed here)";
        return spec.max ? "must be " + range_text(spec) + ", not \"infinity\"" : "";
      }
      return check_range(spec, value.integer, duration_text(value.integer));
    case CLUSTERD_OPT_STRING:
      if (auto why = check_element(spec, value.text, ""); !why.empty()) return why;
      return check_range(spec, static_cast<std::int64_t>(value.text.size()),
                         spec.secret() ? "" : std::to_string(value.text.size()));
    case CLUSTERD_OPT_STRING_LIST: {
      if (spec.nonempty() && value.list.empty()) return "needs at least one element";
      for (std::size_t i = 0; i < value.list.size(); ++i)
        if (auto why = check_element(spec, value.list[i], "element #" + std::to_string(i + 1));
            !why.empty())
          return why;
      return check_range(spec, static_cast<std::int64_t>(value.list.size()),
                         std::to_string(value.list.size()));
    }
    default:
      return "";
  }
}

std::string describe_constraints(const OptionSpec &spec) {
  std::vector<std::string> parts;
  if (spec.nonempty()) parts.emplace_back("non-empty");
  if (spec.min || spec.max) parts.push_back(range_text(spec));
  if (spec.finite()) parts.emplace_back("finite");
  if (spec.format != CLUSTERD_FORMAT_ANY)
    parts.push_back((spec.type == CLUSTERD_OPT_STRING_LIST ? "each " : "") +
                    std::string(format_name(spec.format)));
  if (!spec.needs.empty()) parts.push_back("needs " + util::join(spec.needs, ", "));
  if (!spec.conflicts.empty()) parts.push_back("not with " + util::join(spec.conflicts, ", "));
  return util::join(parts, "; ");
}

std::string duration_text(std::int64_t ms) {
  if (ms < 0) return "infinity";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace clusterd::config
