#include "notify.hpp"

#include <clusterd/node_name.hpp>

namespace clusterd_postgres {

namespace {

constexpr std::size_t kMaxShown = 80;

bool parameter_name_char(char c, bool first) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (!first && ((c >= '0' && c <= '9') || c == '.'));
}

}  // namespace

std::string channel_problem(std::string_view channel) {
  if (channel.empty() || channel.size() > kMaxChannel)
    return "must be 1 to " + std::to_string(kMaxChannel) +
           " bytes (PostgreSQL truncates longer identifiers)";
  for (char c : channel)
    if (c <= ' ' || c > '~' || c == '"')
      return "must be printable ASCII without spaces or '\"' (libcluster_postgres writes it "
             "between double quotes, unescaped)";
  return "";
}

std::string listen_sql(std::string_view channel) {
  return "LISTEN \"" + std::string(channel) + "\"";
}

std::string notify_sql(std::string_view channel, std::string_view node) {
  return "NOTIFY \"" + std::string(channel) + "\", '" + std::string(node) + "'";
}

Payload classify_payload(std::string_view payload) {
  if (payload == "nonode@nohost") return Payload::kNotDistributed;
  return clusterd::valid_node_name(payload) ? Payload::kNode : Payload::kNotANodeName;
}

const char *payload_label(Payload kind) {
  switch (kind) {
    case Payload::kNotANodeName:
      return "not_a_node_name";
    case Payload::kNotDistributed:
      return "not_distributed";
    default:
      return "";
  }
}

std::string payload_problem(std::string_view payload) {
  switch (classify_payload(payload)) {
    case Payload::kNode:
      return "";
    case Payload::kNotDistributed:
      return "nonode@nohost: a node started without a name (not distributed)";
    default:
      return std::string("not a node name: ") + clusterd::node_name_error(payload);
  }
}

std::string printable(std::string_view payload) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < payload.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(payload[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (payload.size() > kMaxShown) out += "...";
  return out;
}

std::string startup_options(const std::vector<std::string> &parameters, std::string &options,
                            std::string &application_name) {
  options.clear();
  application_name.clear();
  for (const auto &entry : parameters) {
    const auto eq = entry.find('=');
    const std::string_view name = std::string_view(entry).substr(0, eq);
    bool good = eq != std::string::npos && !name.empty();
    for (std::size_t i = 0; good && i < name.size(); ++i)
      good = parameter_name_char(name[i], i == 0);
    if (!good)
      return "'" + printable(entry) + "' is not name=value (a run-time parameter such as " +
             "\"statement_timeout=5s\")";
    const std::string_view value = std::string_view(entry).substr(eq + 1);
    for (char c : value)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return "the value of " + std::string(name) + " has a control character";
    if (name == "application_name") {
      application_name = value;
      continue;
    }
    if (!options.empty()) options += ' ';
    options += "-c ";
    options += name;
    options += '=';
    for (char c : value) {
      if (c == ' ' || c == '\\') options += '\\';
      options += c;
    }
  }
  return "";
}

}  // namespace clusterd_postgres
