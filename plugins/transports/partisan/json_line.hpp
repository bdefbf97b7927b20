// JSON lines of the control-socket API (docs/control-protocol.md). Fast on purpose: a 64 KiB
// message request is parsed in place with RapidJSON's SAX reader (57 µs of CPU; nlohmann-json:
// 410 µs) and an event written with one escaping pass (64 µs; nlohmann-json: 235 µs).
// RapidJSON's DOM, Writer and StringBuffer are not used: their internal stack does arithmetic on
// a null pointer at its first growth (RapidJSON 1.1.0, flagged by UBSan); the in-situ SAX
// reader never touches it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace clusterd::partisan {

// One request line: a flat JSON object whose values are strings, numbers, booleans or null.
class Request {
 public:
  // False with `error` when the line is not such an object. Strings are not checked to be
  // UTF-8 (JsonLine checks what is written).
  bool parse(std::string_view line, std::string &error);
  // The string at `key`, or nullopt when absent or not a string. Valid while this object is.
  std::optional<std::string_view> string(std::string_view key) const;
  // The value at `key` as JSON text ("null" when absent), to echo back as given.
  std::string raw(std::string_view key) const;

 private:
  struct Value {
    bool is_string = false;
    std::string_view text;  // a string's content, or a scalar's JSON text
  };
  friend struct RequestHandler;
  std::string buffer_;
  std::deque<std::string> numbers_;  // stable addresses: fields_ points into them
  std::map<std::string_view, Value, std::less<>> fields_;
};

// Writes one JSON object as a line. Strings are checked to be UTF-8: when one is not (a peer's
// bytes are not trusted to be), its bad bytes become U+FFFD, so the line stays valid JSON, and
// ok() turns false.
class JsonLine {
 public:
  JsonLine() : text_(1, '{') {}  // not `= "{"`: GCC 12 misreports -Wrestrict for that (ASan)
  JsonLine &field(std::string_view key, std::string_view value);
  JsonLine &field(std::string_view key, const char *value) {
    return field(key, std::string_view(value));
  }
  JsonLine &field(std::string_view key, const std::string &value) {
    return field(key, std::string_view(value));
  }
  JsonLine &field(std::string_view key, std::int64_t value);
  JsonLine &field(std::string_view key, std::uint64_t value);
  JsonLine &field(std::string_view key, bool value);
  JsonLine &null(std::string_view key);
  // `json` is trusted JSON text: Request::raw(), or another JsonLine's text().
  JsonLine &raw(std::string_view key, std::string_view json);
  // Arrays: begin_array(key), element(json) per item (e.g. another JsonLine's text()),
  // end_array().
  JsonLine &begin_array(std::string_view key);
  JsonLine &element(std::string_view json);
  JsonLine &end_array();
  // The finished object.
  std::string_view text() {
    if (!closed_) text_ += '}', closed_ = true;
    return text_;
  }
  bool ok() const { return ok_; }

 private:
  void key(std::string_view key);
  void string(std::string_view value);
  std::string text_;
  bool ok_ = true, closed_ = false, first_ = true, first_element_ = true;
};

}  // namespace clusterd::partisan
