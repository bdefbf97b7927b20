// etcd v3 JSON gateway requests and answers; see etcd_parse.hpp.
#include "etcd_parse.hpp"

#include <charconv>
#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

#include "printable.hpp"

namespace clusterd::etcd {

namespace {

using Json = nlohmann::json;

constexpr int kMaxDepth = 16;  // deeper values are no etcd answer: dropped unread

// Parses `text` as a JSON object; "" on success. No exceptions; nlohmann's parser keeps its
// own stack (no recursion), and values nested deeper than kMaxDepth are discarded as they are
// read, so a hostile line costs neither stack nor a tree.
std::string parse_object(std::string_view text, Json &doc) {
  doc = Json::parse(
      text.begin(), text.end(),
      [](int depth, Json::parse_event_t, Json &) { return depth <= kMaxDepth; },
      /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "not JSON: " + printable_prefix(text);
  if (!doc.is_object()) return "not a JSON object: " + printable_prefix(text);
  return {};
}

const Json *member(const Json &object, const char *name) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

// An int64 field: the gateway writes "123"; plain numbers are accepted too. Absent = 0.
bool int64_field(const Json &object, const char *name, std::int64_t &out) {
  out = 0;
  const Json *v = member(object, name);
  if (v == nullptr) return true;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > INT64_MAX) return false;
    out = v->get<std::int64_t>();
    return true;
  }
  if (!v->is_string()) return false;
  const std::string &text = v->get_ref<const std::string &>();
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::string string_field(const Json &object, const char *name) {
  const Json *v = member(object, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

bool bool_field(const Json &object, const char *name) {
  const Json *v = member(object, name);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

// A base64 field decoded into `out`; absent = "".
bool bytes_field(const Json &object, const char *name, std::string &out) {
  out.clear();
  const Json *v = member(object, name);
  if (v == nullptr) return true;
  if (!v->is_string()) return false;
  auto decoded = base64_decode(v->get_ref<const std::string &>());
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

// The gateway's error shapes: {"error": "text", "message": "text", "code": N} for unary calls;
// {"error": {"grpc_code": N, "message": "text", ...}} inside streams.
std::optional<Error> error_of(const Json &object) {
  const Json *e = member(object, "error");
  if (e == nullptr) return std::nullopt;
  const Json &holder = e->is_object() ? *e : object;
  Error error;
  std::int64_t code = 0;
  if (!int64_field(holder, "code", code) || code == 0) int64_field(holder, "grpc_code", code);
  error.code = code > 0 && code < 100 ? static_cast<int>(code) : 0;
  std::string message = string_field(holder, "message");
  if (message.empty() && e->is_string()) message = e->get<std::string>();
  error.message = printable_prefix(message.empty() ? "(no message)" : message);
  return error;
}

std::string with_code(std::string_view what, const Error &e) {
  return std::string(what) + ": " + describe(e);
}

// A request body: a JSON object of string fields (int64s are strings on the gateway too).
// Bytes that are not UTF-8 (a password read from a file) are replaced, never thrown over.
std::string object_of(std::initializer_list<std::pair<const char *, std::string>> fields) {
  Json doc = Json::object();
  for (const auto &[name, value] : fields) doc[name] = value;
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string describe(const Error &e) {
  return e.message + " (code " + std::to_string(e.code) + ")";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                   static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                   static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    std::uint32_t n = 0;
    for (int j = 0; j < 4; ++j) {
      const int s = j >= 4 - pad ? 0 : sextet(text[i + static_cast<std::size_t>(j)]);
      if (s < 0) return std::nullopt;
      n = n << 6 | static_cast<std::uint32_t>(s);
    }
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto &last = reinterpret_cast<unsigned char &>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string range_request(std::string_view prefix) {
  return object_of(
      {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}});
}

std::string watch_request(std::string_view prefix, std::int64_t start_revision) {
  return "{\"create_request\":" +
         object_of({{"key", base64_encode(prefix)},
                    {"range_end", base64_encode(prefix_range_end(prefix))},
                    {"start_revision", std::to_string(start_revision)}}) +
         "}";
}

std::string put_request(std::string_view key, std::string_view value, std::int64_t lease) {
  return object_of({{"key", base64_encode(key)},
                    {"value", base64_encode(value)},
                    {"lease", std::to_string(lease)}});
}

std::string delete_request(std::string_view key) {
  return object_of({{"key", base64_encode(key)}});
}

std::string grant_request(std::int64_t ttl_seconds) {
  return object_of({{"TTL", std::to_string(ttl_seconds)}});
}

std::string keepalive_request(std::int64_t lease) {
  return object_of({{"ID", std::to_string(lease)}});
}

std::string revoke_request(std::int64_t lease) {
  return object_of({{"ID", std::to_string(lease)}});
}

std::string authenticate_request(std::string_view name, std::string_view password) {
  return object_of({{"name", std::string(name)}, {"password", std::string(password)}});
}

std::optional<Error> parse_error(std::string_view body) {
  Json doc;
  if (!parse_object(body, doc).empty()) {
    if (body.empty()) return std::nullopt;
    return Error{0, printable_prefix(body)};
  }
  if (const Json *result = member(doc, "result"); result != nullptr)
    if (auto e = error_of(*result)) return e;
  return error_of(doc);
}

std::string parse_range(std::string_view body, RangeResult &out) {
  out = {};
  Json doc;
  if (std::string error = parse_object(body, doc); !error.empty()) return error;
  if (auto e = error_of(doc)) return with_code("error", *e);
  const Json *header = member(doc, "header");
  if (header == nullptr || !int64_field(*header, "revision", out.revision) || out.revision <= 0)
    return "no header.revision";
  const Json *kvs = member(doc, "kvs");
  if (kvs == nullptr) return {};  // no keys under the prefix
  if (!kvs->is_array()) return "\"kvs\" is not a list";
  for (const Json &kv : *kvs) {
    KeyValue item;
    if (!kv.is_object() || !bytes_field(kv, "key", item.key) ||
        !bytes_field(kv, "value", item.value))
      return "a key-value without a base64 \"key\" and \"value\"";
    out.kvs.push_back(std::move(item));
  }
  return {};
}

std::string parse_grant(std::string_view body, Lease &out) {
  out = {};
  Json doc;
  if (std::string error = parse_object(body, doc); !error.empty()) return error;
  if (auto e = error_of(doc)) return with_code("error", *e);
  if (!int64_field(doc, "ID", out.id) || out.id == 0) return "no lease \"ID\"";
  if (!int64_field(doc, "TTL", out.ttl) || out.ttl <= 0) return "no positive \"TTL\"";
  return {};
}

std::string parse_keepalive(std::string_view body, Lease &out) {
  out = {};
  // A streaming endpoint: one {"result": ...} (or {"error": ...}) per line; the first counts.
  const std::string_view line = body.substr(0, body.find('\n'));
  Json doc;
  if (std::string error = parse_object(line, doc); !error.empty()) return error;
  if (auto e = error_of(doc)) return with_code("error", *e);
  const Json *result = member(doc, "result");
  if (result == nullptr || !result->is_object()) return "no \"result\" object";
  if (auto e = error_of(*result)) return with_code("error", *e);
  if (!int64_field(*result, "ID", out.id) || !int64_field(*result, "TTL", out.ttl))
    return "\"ID\" or \"TTL\" is not an integer";
  return {};
}

std::string parse_authenticate(std::string_view body, std::string &token) {
  token.clear();
  Json doc;
  if (std::string error = parse_object(body, doc); !error.empty()) return error;
  if (auto e = error_of(doc)) return with_code("error", *e);
  token = string_field(doc, "token");
  if (token.empty()) return "no \"token\"";
  // The token goes into a header line: refuse anything that could split it.
  for (char c : token)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      token.clear();
      return "the token contains control characters";
    }
  return {};
}

std::string parse_watch_line(std::string_view line, WatchMessage &out) {
  out = {};
  Json doc;
  if (std::string error = parse_object(line, doc); !error.empty()) return error;
  if ((out.error = error_of(doc))) return {};
  const Json *result = member(doc, "result");
  if (result == nullptr || !result->is_object()) return "no \"result\" object";
  if (const Json *header = member(*result, "header"); header != nullptr)
    if (!int64_field(*header, "revision", out.revision)) return "header.revision is no integer";
  out.created = bool_field(*result, "created");
  out.canceled = bool_field(*result, "canceled");
  if (!int64_field(*result, "compact_revision", out.compact_revision))
    return "compact_revision is no integer";
  out.cancel_reason = printable_prefix(string_field(*result, "cancel_reason"));
  const Json *events = member(*result, "events");
  if (events == nullptr) return {};
  if (!events->is_array()) return "\"events\" is not a list";
  for (const Json &e : *events) {
    Event event;
    const std::string type = string_field(e, "type");  // absent: PUT (proto3's default)
    if (type == "DELETE") {
      event.type = EventType::kDelete;
    } else if (!type.empty() && type != "PUT") {
      return "an event of unknown type \"" + printable_prefix(type) + "\"";
    }
    const Json *kv = member(e, "kv");
    if (kv == nullptr || !bytes_field(*kv, "key", event.key))
      return "an event without a base64 kv.key";
    if (!int64_field(*kv, "mod_revision", event.mod_revision) || event.mod_revision <= 0)
      return "an event without a positive kv.mod_revision";
    out.events.push_back(std::move(event));
  }
  return {};
}

}  // namespace clusterd::etcd
