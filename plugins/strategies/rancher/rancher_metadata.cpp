// Rancher metadata reply parser; see rancher_metadata.hpp.
#include "rancher_metadata.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

namespace clusterd::rancher {

namespace {

bool is_ip(const std::string &text) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

// A container's name for messages: its "name" if it is a printable string, else "#INDEX".
std::string label(const nlohmann::json &container, std::size_t index) {
  const auto it = container.find("name");
  if (it != container.end() && it->is_string()) {
    const auto &name = it->get_ref<const std::string &>();
    const bool printable =
        !name.empty() && name.size() <= 253 && std::none_of(name.begin(), name.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
    if (printable) return name;
  }
  return "#" + std::to_string(index);
}

}  // namespace

bool parse_service(std::string_view body, Service &out, std::string &error) {
  out = {};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body.begin(), body.end());
  } catch (const std::exception &e) {
    error = std::string("not JSON: ") + e.what();
    return false;
  }
  if (!doc.is_object()) {
    error = "not a JSON object";
    return false;
  }
  const auto containers = doc.find("containers");
  if (containers == doc.end() || !containers->is_array()) {
    error = "no \"containers\" array";
    return false;
  }
  std::size_t index = 0;
  for (const auto &c : *containers) {
    ++index;
    if (!c.is_object()) {
      out.skipped.push_back("#" + std::to_string(index) + ": not an object");
      continue;
    }
    const auto ips = c.find("ips");
    if (ips == c.end() || !ips->is_array() || ips->empty()) {
      out.skipped.push_back(label(c, index) + ": no IP");
      continue;
    }
    const auto &first = ips->front();
    if (!first.is_string() || !is_ip(first.get_ref<const std::string &>())) {
      out.skipped.push_back(label(c, index) + ": first IP is not an IP address");
      continue;
    }
    out.ips.push_back(first.get<std::string>());
  }
  return true;
}

}  // namespace clusterd::rancher
