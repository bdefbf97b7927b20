#include "metrics/request_head.hpp"

namespace clusterd::metrics {

std::optional<RequestHead> parse_request_head(std::string_view head) {
  auto eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view line = head.substr(0, eol);
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return std::nullopt;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
  for (char c : method)
    if (c < 'A' || c > 'Z') return std::nullopt;
  if (target.front() != '/') return std::nullopt;  // origin-form only
  for (char c : target)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
  target = target.substr(0, target.find('?'));
  return RequestHead{std::string(method), std::string(target)};
}

}  // namespace clusterd::metrics
