#include "json_line.hpp"

#include <rapidjson/reader.h>

#include <cstdio>

namespace clusterd::partisan {

// Collects the top-level members of a flat object; anything nested is refused.
struct RequestHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, RequestHandler> {
  explicit RequestHandler(Request &r) : request(r) {}
  Request &request;
  int depth = 0;
  std::string_view key;
  const char *error = nullptr;

  bool scalar(std::string_view text, bool is_string) {
    if (depth != 1) return refuse("values must be strings, numbers, booleans or null");
    request.fields_[key] = {is_string, text};
    return true;
  }
  bool refuse(const char *why) {
    error = why;
    return false;
  }
  bool StartObject() { return ++depth == 1 || refuse("nested objects are not accepted"); }
  bool EndObject(rapidjson::SizeType) { return --depth, true; }
  bool StartArray() { return refuse("arrays are not accepted"); }
  bool EndArray(rapidjson::SizeType) { return true; }
  bool Key(const char *text, rapidjson::SizeType length, bool) {
    key = std::string_view(text, length);
    return true;
  }
  bool String(const char *text, rapidjson::SizeType length, bool) {
    return scalar(std::string_view(text, length), true);
  }
  // Numbers are written back from their value (RapidJSON's raw-number mode needs its stack).
  bool number(std::string text) {
    return scalar(request.numbers_.emplace_back(std::move(text)), false);
  }
  bool Int(int i) { return number(std::to_string(i)); }
  bool Uint(unsigned u) { return number(std::to_string(u)); }
  bool Int64(int64_t i) { return number(std::to_string(i)); }
  bool Uint64(uint64_t u) { return number(std::to_string(u)); }
  bool Double(double d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", d);
    return number(text);
  }
  bool Bool(bool b) { return scalar(b ? "true" : "false", false); }
  bool Null() { return scalar("null", false); }
};

bool Request::parse(std::string_view line, std::string &error) {
  fields_.clear();
  numbers_.clear();
  if (line.find('\0') != std::string_view::npos) {
    error = "a NUL byte in the request";  // in situ parsing would stop there
    return false;
  }
  buffer_.assign(line);  // NUL-terminated: where in situ parsing ends
  RequestHandler handler(*this);
  rapidjson::Reader reader;
  rapidjson::InsituStringStream in(buffer_.data());
  // No UTF-8 validation here (it halves the speed): text is validated where it is written,
  // and a message that is not UTF-8 is refused by the receiving node (docs/control-protocol.md).
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag;
  if (reader.Parse<kFlags>(in, handler).IsError() || handler.depth != 0) {
    error = handler.error != nullptr ? handler.error
                                     : "expected one JSON object of UTF-8 text per line";
    fields_.clear();
    return false;
  }
  return true;
}

std::optional<std::string_view> Request::string(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end() || !it->second.is_string) return std::nullopt;
  return it->second.text;
}

std::string Request::raw(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return "null";
  if (!it->second.is_string) return std::string(it->second.text);
  JsonLine line;  // re-escape the decoded string
  line.field("", it->second.text);
  const std::string_view text = line.text();  // {"":"..."}
  return std::string(text.substr(4, text.size() - 5));
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when it is not one (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void JsonLine::string(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  text_.reserve(text_.size() + value.size() + 2);
  text_ += '"';
  std::size_t run = 0;  // start of the bytes that need no escaping, copied in bulk
  for (std::size_t i = 0; i < value.size();) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = utf8_length(value, i);
      if (n > 0) {
        i += n;
        continue;
      }
      // Not UTF-8: the line stays valid JSON (U+FFFD in its place) and ok() tells.
      ok_ = false;
      text_.append(value.data() + run, i - run);
      text_ += "\xef\xbf\xbd";
      run = ++i;
      continue;
    }
    text_.append(value.data() + run, i - run);
    switch (c) {
      case '"':
        text_ += "\\\"";
        break;
      case '\\':
        text_ += "\\\\";
        break;
      case '\n':
        text_ += "\\n";
        break;
      case '\r':
        text_ += "\\r";
        break;
      case '\t':
        text_ += "\\t";
        break;
      default:
        text_ += "\\u00";
        text_ += kHex[c >> 4];
        text_ += kHex[c & 0xF];
    }
    run = ++i;
  }
  text_.append(value.data() + run, value.size() - run);
  text_ += '"';
}

void JsonLine::key(std::string_view key) {
  if (!first_) text_ += ',';
  first_ = false;
  string(key);
  text_ += ':';
}

JsonLine &JsonLine::field(std::string_view key, std::string_view value) {
  this->key(key);
  string(value);
  return *this;
}

JsonLine &JsonLine::field(std::string_view key, std::int64_t value) {
  this->key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonLine &JsonLine::field(std::string_view key, std::uint64_t value) {
  this->key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonLine &JsonLine::field(std::string_view key, bool value) {
  this->key(key);
  text_ += value ? "true" : "false";
  return *this;
}

JsonLine &JsonLine::null(std::string_view key) {
  this->key(key);
  text_ += "null";
  return *this;
}

JsonLine &JsonLine::raw(std::string_view key, std::string_view json) {
  this->key(key);
  text_ += json;
  return *this;
}

JsonLine &JsonLine::begin_array(std::string_view key) {
  this->key(key);
  text_ += '[';
  first_element_ = true;
  return *this;
}

JsonLine &JsonLine::element(std::string_view json) {
  if (!first_element_) text_ += ',';
  first_element_ = false;
  text_ += json;
  return *this;
}

JsonLine &JsonLine::end_array() {
  text_ += ']';
  return *this;
}

}  // namespace clusterd::partisan
