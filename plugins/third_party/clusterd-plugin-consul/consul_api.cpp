// Consul HTTP API helpers; see consul_api.hpp. The replies are parsed with nlohmann-json after
// a scan that bounds their nesting depth (its parser recurses per level), and only the fields
// the strategy needs are read, each checked for its type.
#include "consul_api.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace clusterd_consul {
namespace {

using json = nlohmann::json;

std::string_view strip_prefix(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix ? text.substr(prefix.size()) : text;
}

bool same_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The deepest nesting of arrays and objects, counted outside strings; stops past `limit`.
std::size_t depth(std::string_view text, std::size_t limit) {
  std::size_t level = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++level);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && level > 0) {
      --level;
    }
  }
  return deepest;
}

bool parse_json(std::string_view text, json &out, std::string &error) {
  if (depth(text, kMaxDepth) > kMaxDepth) {
    error = "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels";
    return false;
  }
  out = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    error = "not JSON: \"" + excerpt(text) + "\"";
    return false;
  }
  return true;
}

// A string member of `object`, "" when absent or null; false when it has another type or is
// too long.
bool string_member(const json &object, const char *key, std::string &out, std::string &error,
                   const std::string &where) {
  out.clear();
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) {
    error = where + ": " + key + " is not a string";
    return false;
  }
  const auto &s = it->get_ref<const std::string &>();
  if (s.size() > kMaxText) {
    error = where + ": " + key + " is longer than " + std::to_string(kMaxText) + " bytes";
    return false;
  }
  out = s;
  return true;
}

// The reply must be a JSON array of objects, at most kMaxEntries of them.
bool entry_list(std::string_view text, json &out, std::string &error) {
  if (!parse_json(text, out, error)) return false;
  if (!out.is_array()) {
    error = "expected a JSON array, found " + std::string(out.type_name());
    return false;
  }
  if (out.size() > kMaxEntries) {
    error = "more than " + std::to_string(kMaxEntries) + " entries";
    return false;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].is_object()) {
      error = "entry " + std::to_string(i) + " is not an object";
      return false;
    }
  }
  return true;
}

bool has_tag(const json &service, std::string_view tag) {
  const auto it = service.find("Tags");
  if (it == service.end() || !it->is_array()) return false;
  for (const auto &t : *it)
    if (t.is_string() && t.get_ref<const std::string &>() == tag) return true;
  return false;
}

}  // namespace

bool parse_endpoint(std::string_view text, Endpoint &out) {
  text = strip_prefix(strip_prefix(text, "Elixir."), "Cluster.Strategy.Consul.");
  static constexpr Endpoint kAll[] = {Endpoint::agent, Endpoint::catalog, Endpoint::health,
                                      Endpoint::multisite};
  for (Endpoint e : kAll) {
    if (same_ignoring_case(text, endpoint_name(e))) {
      out = e;
      return true;
    }
  }
  return false;
}

const char *endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::agent:
      return "agent";
    case Endpoint::catalog:
      return "catalog";
    case Endpoint::health:
      return "health";
    case Endpoint::multisite:
      return "multisite";
  }
  return "?";
}

bool supports_blocking(Endpoint e) {
  return e == Endpoint::catalog || e == Endpoint::health;
}

std::string url_encode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

void add_param(std::string &query, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  query += query.empty() ? '?' : '&';
  query += name;
  query += '=';
  query += url_encode(value);
}

}  // namespace

std::string request_path(Endpoint endpoint, const Selection &s) {
  std::string path, query;
  switch (endpoint) {
    case Endpoint::agent:
      path = "/v1/agent/services";
      break;
    case Endpoint::catalog:
      path = "/v1/catalog/service/" + url_encode(s.service_name);
      break;
    case Endpoint::health:
    case Endpoint::multisite:  // never asked for itself: Multisite runs the other endpoints
      path = "/v1/health/service/" + url_encode(s.service_name);
      break;
  }
  // The agent answers for itself: no dc, no near; it lists services of every tag.
  if (endpoint != Endpoint::agent) {
    add_param(query, "dc", s.dc);
    add_param(query, "tag", s.tag);
    add_param(query, "near", s.near);
  }
  add_param(query, "ns", s.ns);
  add_param(query, "partition", s.partition);
  add_param(query, "filter", s.filter);
  if (endpoint == Endpoint::health && s.passing) add_param(query, "passing", "true");
  return path + query;
}

std::string datacenters_path(const Selection &s) {
  std::string query;
  add_param(query, "partition", s.partition);
  return "/v1/catalog/datacenters" + query;
}

std::string write_query(const Selection &s) {
  std::string query;
  add_param(query, "ns", s.ns);
  add_param(query, "partition", s.partition);
  return query;
}

std::string registration_body(const Registration &r) {
  json check = {{"CheckID", r.check_id},
                {"Name", "clusterd"},
                {"TTL", std::to_string(r.ttl_ms) + "ms"},
                {"Status", "passing"},
                {"DeregisterCriticalServiceAfter", std::to_string(r.deregister_after_ms) + "ms"}};
  json body = {{"ID", r.id},
               {"Name", r.service},
               {"Address", r.address},
               {"Tags", r.tags},
               {"Check", check}};
  if (r.port > 0) body["Port"] = r.port;
  // Names and tags come from the configuration and the transport: replace invalid UTF-8.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string blocking_query(uint64_t index, uint64_t wait_ms) {
  if (index == 0) return "";
  return "index=" + std::to_string(index) + "&wait=" + std::to_string(wait_ms) + "ms";
}

std::optional<uint64_t> next_index(uint64_t previous, std::optional<std::string_view> header) {
  uint64_t index = 0;
  if (!header || header->empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(header->data(), header->data() + header->size(), index);
  if (ec != std::errc() || end != header->data() + header->size()) return std::nullopt;
  if (index < previous) return 0;  // went backwards (a snapshot restore, a new leader): reset
  return index == 0 ? 1 : index;
}

bool parse_catalog(std::string_view text, std::vector<Found> &out,
                   std::vector<std::string> &skipped, std::string &error) {
  json entries;
  if (!entry_list(text, entries, error)) return false;
  out.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = "entry " + std::to_string(i);
    std::string node, service_address, address, dc;
    if (!string_member(entries[i], "Node", node, error, where) ||
        !string_member(entries[i], "ServiceAddress", service_address, error, where) ||
        !string_member(entries[i], "Address", address, error, where) ||
        !string_member(entries[i], "Datacenter", dc, error, where))
      return false;
    std::string chosen = service_address.empty() ? address : service_address;
    if (chosen.empty()) {
      skipped.push_back("node " + (node.empty() ? where : node) + ": no address");
      continue;
    }
    out.push_back({std::move(chosen), std::move(dc)});
  }
  return true;
}

bool parse_health(std::string_view text, std::vector<Found> &out, std::vector<std::string> &skipped,
                  std::string &error) {
  json entries;
  if (!entry_list(text, entries, error)) return false;
  out.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = "entry " + std::to_string(i);
    const auto node = entries[i].find("Node");
    const auto service = entries[i].find("Service");
    if (node == entries[i].end() || !node->is_object() || service == entries[i].end() ||
        !service->is_object()) {
      error = where + ": Node or Service is missing or not an object";
      return false;
    }
    std::string node_name, node_address, service_address, dc;
    if (!string_member(*node, "Node", node_name, error, where + " Node") ||
        !string_member(*node, "Address", node_address, error, where + " Node") ||
        !string_member(*node, "Datacenter", dc, error, where + " Node") ||
        !string_member(*service, "Address", service_address, error, where + " Service"))
      return false;
    std::string chosen = service_address.empty() ? node_address : service_address;
    if (chosen.empty()) {
      skipped.push_back("node " + (node_name.empty() ? where : node_name) + ": no address");
      continue;
    }
    out.push_back({std::move(chosen), std::move(dc)});
  }
  return true;
}

bool parse_agent_services(std::string_view text, std::string_view service_name,
                          std::string_view tag, std::vector<Found> &out,
                          std::vector<std::string> &skipped, std::string &error) {
  json services;
  if (!parse_json(text, services, error)) return false;
  if (!services.is_object()) {
    error = "expected a JSON object, found " + std::string(services.type_name());
    return false;
  }
  if (services.size() > kMaxEntries) {
    error = "more than " + std::to_string(kMaxEntries) + " services";
    return false;
  }
  out.clear();
  for (const auto &[id, service] : services.items()) {
    const std::string where = "service " + excerpt(id);
    if (!service.is_object()) {
      error = where + " is not an object";
      return false;
    }
    std::string name, address, dc;
    if (!string_member(service, "Service", name, error, where) ||
        !string_member(service, "Address", address, error, where) ||
        !string_member(service, "Datacenter", dc, error, where))
      return false;
    if (name != service_name || (!tag.empty() && !has_tag(service, tag))) continue;
    if (address.empty()) {
      skipped.push_back(where + ": no address (registered without one)");
      continue;
    }
    out.push_back({std::move(address), std::move(dc)});
  }
  return true;
}

bool parse_datacenters(std::string_view text, std::vector<std::string> &out, std::string &error) {
  json list;
  if (!parse_json(text, list, error)) return false;
  if (!list.is_array()) {
    error = "expected a JSON array, found " + std::string(list.type_name());
    return false;
  }
  if (list.size() > kMaxEntries) {
    error = "more than " + std::to_string(kMaxEntries) + " datacenters";
    return false;
  }
  out.clear();
  for (const auto &dc : list) {
    if (!dc.is_string() || dc.get_ref<const std::string &>().empty() ||
        dc.get_ref<const std::string &>().size() > kMaxText) {
      error = "a datacenter is not a non-empty string";
      out.clear();
      return false;
    }
    out.push_back(dc.get<std::string>());
  }
  return true;
}

bool NameTemplate::parse(std::string_view text, std::string &error) {
  parts_.clear();
  while (!text.empty()) {
    const auto open = text.find("<%");
    if (open == std::string_view::npos) {
      parts_.push_back({Var::text, std::string(text)});
      break;
    }
    if (open > 0) parts_.push_back({Var::text, std::string(text.substr(0, open))});
    const auto close = text.find("%>", open);
    if (close == std::string_view::npos || text.substr(open, 3) != "<%=") {
      error = "only <%= ip %>, <%= dc %> and <%= node_basename %> tags are allowed";
      return false;
    }
    std::string_view name = text.substr(open + 3, close - open - 3);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name == "ip")
      parts_.push_back({Var::ip, {}});
    else if (name == "dc")
      parts_.push_back({Var::dc, {}});
    else if (name == "node_basename")
      parts_.push_back({Var::node_basename, {}});
    else {
      error = "unknown variable \"" + excerpt(name) + "\" (ip, dc and node_basename exist)";
      return false;
    }
    text.remove_prefix(close + 2);
  }
  return true;
}

std::string NameTemplate::render(std::string_view ip, std::string_view dc,
                                 std::string_view basename) const {
  std::string out;
  for (const auto &p : parts_) {
    switch (p.var) {
      case Var::text:
        out += p.text;
        break;
      case Var::ip:
        out += ip;
        break;
      case Var::dc:
        out += dc;
        break;
      case Var::node_basename:
        out += basename;
        break;
    }
  }
  return out;
}

bool NameTemplate::uses_basename() const {
  for (const auto &p : parts_)
    if (p.var == Var::node_basename) return true;
  return false;
}

std::string excerpt(std::string_view body) {
  constexpr std::size_t kMax = 200;
  std::string out;
  for (char c : body.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return body.size() > kMax ? out + "..." : out;
}

}  // namespace clusterd_consul
