// The EPMD protocol: request encoders and reply parsers (see epmd.hpp).
#include "epmd.hpp"

#include <cstdio>

namespace clusterd::epmd {

namespace {

constexpr char kNamesReq = 110;            // 'n'
constexpr char kPortPlease2Req = 122;      // 'z'
constexpr unsigned char kPort2Resp = 119;  // 'w'

// "name " + NAME + " at port " + 5 digits: no valid NAMES line is longer.
constexpr std::size_t kMaxNamesLine = 5 + kMaxAliveBytes + 9 + 5;

std::uint16_t u16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(b[at]) << 8) |
                                    static_cast<unsigned char>(b[at + 1]));
}

std::uint32_t u32(std::string_view b, std::size_t at) {
  return (static_cast<std::uint32_t>(u16(b, at)) << 16) | u16(b, at + 2);
}

std::string frame(std::string_view body) {
  std::string out;
  out.reserve(2 + body.size());
  out.push_back(static_cast<char>((body.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.append(body);
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A prefix of `expected` (or all of it): the bytes seen so far may still become `expected`.
bool prefix_of(std::string_view seen, std::string_view expected) {
  return expected.substr(0, seen.size()) == seen.substr(0, expected.size());
}

// Decimal 1..65535, digits only (no sign, no spaces).
bool parse_port(std::string_view digits, std::uint16_t &port) {
  if (digits.empty() || digits.size() > 5) return false;
  std::uint32_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// One NAMES line without its '\n'. Empty `why` on success.
void parse_names_line(std::string_view line, Registered &entry, std::string &why) {
  constexpr std::string_view kName = "name ";
  constexpr std::string_view kAtPort = " at port ";
  if (!starts_with(line, kName)) {
    why = "expected \"name NAME at port PORT\", got \"" + printable(line) + "\"";
    return;
  }
  const std::string_view rest = line.substr(kName.size());
  const auto space = rest.find(' ');  // the name ends at the first space, as in erl_epmd
  if (space == std::string_view::npos) {
    why = "no \" at port \" in \"" + printable(line) + "\"";
    return;
  }
  const std::string_view name = rest.substr(0, space);
  if (!valid_alive_name(name)) {
    why = "invalid node name \"" + printable(name) + "\"";
    return;
  }
  const std::string_view tail = rest.substr(space);
  if (!starts_with(tail, kAtPort)) {
    why = "expected \" at port \" after the name, got \"" + printable(tail) + "\"";
    return;
  }
  const std::string_view digits = tail.substr(kAtPort.size());
  if (!parse_port(digits, entry.port)) {
    why = "port \"" + printable(digits) + "\" is not a number in 1..65535";
    return;
  }
  entry.name.assign(name);
}

Parse truncated(bool eof, std::string &error, const std::string &what) {
  if (!eof) return Parse::need_more;
  error = "truncated: " + what;
  return Parse::error;
}

}  // namespace

bool valid_alive_name(std::string_view alive) {
  if (alive.empty() || alive.size() > kMaxAliveBytes) return false;
  for (const char ch : alive) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '@') return false;
  }
  return true;
}

std::string names_request() {
  return frame(std::string_view(&kNamesReq, 1));
}

std::string port_please2_request(std::string_view alive) {
  if (!valid_alive_name(alive)) return {};
  std::string body(1, kPortPlease2Req);
  body.append(alive);
  return frame(body);
}

Parse parse_names(std::string_view bytes, bool eof, std::vector<Registered> &out,
                  std::string &error) {
  if (bytes.size() > kMaxReplyBytes) {
    error = "reply larger than " + std::to_string(kMaxReplyBytes) + " bytes";
    return Parse::error;
  }
  if (bytes.size() < 4)
    return truncated(eof, error, std::to_string(bytes.size()) + " of the 4 header bytes");
  const std::uint32_t epmd_port = u32(bytes, 0);
  if (epmd_port == 0 || epmd_port > 65535) {
    error = "the header (EPMD's port) is " + std::to_string(epmd_port) +
            ", not a TCP port: not an EPMD reply";
    return Parse::error;
  }
  std::vector<Registered> names;
  std::size_t pos = 4;
  // Every iteration consumes at least one byte, so the loop ends after at most |bytes| rounds.
  for (std::size_t line_no = 1; pos < bytes.size(); ++line_no) {
    const std::string_view rest = bytes.substr(pos);
    const auto newline = rest.find('\n');
    if (newline == std::string_view::npos) {
      const std::string where = "line " + std::to_string(line_no);
      if (rest.size() > kMaxNamesLine) {
        error = where + " is longer than " + std::to_string(kMaxNamesLine) + " bytes";
        return Parse::error;
      }
      if (!prefix_of(rest, "name ")) {
        error = where + ": expected \"name NAME at port PORT\", got \"" + printable(rest) + "\"";
        return Parse::error;
      }
      return truncated(eof, error, where + " has no newline: \"" + printable(rest) + "\"");
    }
    if (newline > kMaxNamesLine) {
      error = "line " + std::to_string(line_no) + " is longer than " +
              std::to_string(kMaxNamesLine) + " bytes";
      return Parse::error;
    }
    Registered entry{{}, 0};
    std::string why;
    parse_names_line(rest.substr(0, newline), entry, why);
    if (!why.empty()) {
      error = "line " + std::to_string(line_no) + ": " + why;
      return Parse::error;
    }
    names.push_back(std::move(entry));
    pos += newline + 1;
  }
  if (!eof) return Parse::need_more;
  out = std::move(names);
  return Parse::complete;
}

Parse parse_port2(std::string_view bytes, bool eof, PortReply &out, std::string &error) {
  if (bytes.size() > kMaxReplyBytes) {
    error = "reply larger than " + std::to_string(kMaxReplyBytes) + " bytes";
    return Parse::error;
  }
  if (bytes.empty()) return truncated(eof, error, "empty reply");
  if (static_cast<unsigned char>(bytes[0]) != kPort2Resp) {
    error = "expected PORT2_RESP (119), got byte " +
            std::to_string(static_cast<unsigned char>(bytes[0])) + ": not an EPMD reply";
    return Parse::error;
  }
  if (bytes.size() < 2) return truncated(eof, error, "1 byte, no result");
  const auto result = static_cast<unsigned char>(bytes[1]);
  if (result != 0) {  // not registered: exactly 2 bytes
    if (bytes.size() > 2) {
      error = std::to_string(bytes.size() - 2) +
              " unexpected byte(s) after a \"not registered\" "
              "reply (result " +
              std::to_string(result) + ")";
      return Parse::error;
    }
    out = PortReply{};
    return Parse::complete;
  }
  // 119, 0, PortNo:16, NodeType:8, Protocol:8, Highest:16, Lowest:16, Nlen:16, Name, Elen:16, Extra
  constexpr std::size_t kFixed = 12;
  if (bytes.size() < kFixed)
    return truncated(eof, error,
                     std::to_string(bytes.size()) + " of the " + std::to_string(kFixed) +
                         " fixed bytes of a registered reply");
  const std::uint16_t port = u16(bytes, 2);
  if (port == 0) {
    error = "port 0 is out of range";
    return Parse::error;
  }
  const std::size_t name_length = u16(bytes, 10);
  if (name_length == 0 || name_length > kMaxAliveBytes) {
    error = "node name length " + std::to_string(name_length) + " is not in 1.." +
            std::to_string(kMaxAliveBytes);
    return Parse::error;
  }
  const std::size_t extra_at = kFixed + name_length;
  if (bytes.size() < extra_at + 2)
    return truncated(eof, error,
                     std::to_string(bytes.size()) + " bytes, the name and extra length need " +
                         std::to_string(extra_at + 2));
  const std::size_t total = extra_at + 2 + u16(bytes, extra_at);
  if (bytes.size() < total)
    return truncated(eof, error,
                     std::to_string(bytes.size()) + " of " + std::to_string(total) + " bytes");
  if (bytes.size() > total) {
    error = std::to_string(bytes.size() - total) + " unexpected byte(s) after the reply";
    return Parse::error;
  }
  PortReply reply;
  reply.registered = true;
  reply.port = port;
  reply.node_type = static_cast<std::uint8_t>(bytes[4]);
  reply.protocol = static_cast<std::uint8_t>(bytes[5]);
  reply.highest_version = u16(bytes, 6);
  reply.lowest_version = u16(bytes, 8);
  reply.name.assign(bytes.substr(kFixed, name_length));
  out = std::move(reply);
  return Parse::complete;
}

std::string printable(std::string_view bytes, std::size_t max) {
  std::string out;
  const std::size_t n = bytes.size() < max ? bytes.size() : max;
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

}  // namespace clusterd::epmd
