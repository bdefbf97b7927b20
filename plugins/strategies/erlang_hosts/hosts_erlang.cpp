// The `.hosts.erlang` parser (see hosts_erlang.hpp). One pass, no recursion, no allocation
// beyond the output: every loop consumes at least one byte per iteration.
#include "hosts_erlang.hpp"

#include <cstdint>
#include <cstdio>

namespace clusterd::erlang_hosts {

namespace {

constexpr std::size_t kMaxAtomChars = 255;  // Erlang's limit on atoms (in characters)

// Erlang's reserved words: as unquoted atoms they are keywords, and file:consult fails.
constexpr std::string_view kReserved[] = {
    "after", "and",   "andalso", "band",   "begin",   "bnot", "bor", "bsl",  "bsr", "bxor",
    "case",  "catch", "cond",    "div",    "else",    "end",  "fun", "if",   "let", "maybe",
    "not",   "of",    "or",      "orelse", "receive", "rem",  "try", "when", "xor"};

bool is_space(unsigned char c) {
  return c <= 0x20;
}
bool is_lower(unsigned char c) {
  return c >= 'a' && c <= 'z';
}
bool is_upper(unsigned char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_atom_char(unsigned char c) {
  return is_lower(c) || is_upper(c) || is_digit(c) || c == '_' || c == '@';
}
int hex_value(unsigned char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string &out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  return n;
}

std::string shown(unsigned char c) {
  if (c >= 0x21 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  bool run(std::vector<std::string> &hosts, SyntaxError &error) {
    if (text_.substr(0, 3) == "\xef\xbb\xbf") pos_ = 3, column_ = 1;  // UTF-8 BOM
    std::vector<std::string> out;
    while (true) {
      skip_blanks();
      if (at_end()) break;
      const int line = line_, column = column_;
      std::string host;
      const bool bare = is_lower(peek());
      if (!term(host)) break;
      if (!check_host(host, line, column)) break;
      skip_blanks();
      if (!end_of_term(host, bare, line, column)) break;
      out.push_back(std::move(host));
    }
    if (failed_) {
      error = error_;
      return false;
    }
    hosts = std::move(out);
    return true;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  unsigned char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? static_cast<unsigned char>(text_[pos_ + ahead]) : 0;
  }
  bool has(std::size_t ahead) const { return pos_ + ahead < text_.size(); }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }
  bool fail(int line, int column, std::string message) {
    if (!failed_) {
      failed_ = true;
      error_ = SyntaxError{line, column, std::move(message)};
    }
    return false;
  }
  bool fail_here(std::string message) { return fail(line_, column_, std::move(message)); }

  // Whitespace and % comments.
  void skip_blanks() {
    while (!at_end()) {
      const unsigned char c = peek();
      if (is_space(c)) {
        advance();
      } else if (c == '%') {
        while (!at_end() && peek() != '\n') advance();
      } else {
        break;
      }
    }
  }

  bool term(std::string &host) {
    const unsigned char c = peek();
    if (c == '\'') return quoted('\'', host);
    if (c == '"') {
      // Adjacent strings concatenate ("a" "b" is "ab"), as Erlang's parser does.
      if (!quoted('"', host)) return false;
      while (true) {
        const std::size_t save_pos = pos_;
        const int save_line = line_, save_column = column_;
        skip_blanks();
        if (peek() != '"' || at_end()) {
          pos_ = save_pos, line_ = save_line, column_ = save_column;
          return true;
        }
        if (!quoted('"', host)) return false;
      }
    }
    if (is_lower(c)) return unquoted(host);
    if (is_upper(c) || c == '_') {
      std::string name;
      while (!at_end() && is_atom_char(peek()))
        name.push_back(static_cast<char>(peek())), advance();
      return fail(line_, column_ - static_cast<int>(name.size()),
                  "'" + name + "' is a variable, not a host name (quote it: '" + name + "')");
    }
    if (is_digit(c)) return fail_here("a number is not a host name (quote addresses: '10.0.0.1')");
    if (c == '{' || c == '[')
      return fail_here(std::string("a ") + (c == '{' ? "tuple" : "list") +
                       " is not a host name (one quoted atom per term: 'host'.)");
    if (c == '.') return fail_here("empty term: '.' without a host name");
    if (c >= 0x80) return fail_here("unexpected non-ASCII character (quote the host name)");
    return fail_here("unexpected character " + shown(c) + " (expected a host name like 'host'.)");
  }

  bool unquoted(std::string &host) {
    const int line = line_, column = column_;
    while (!at_end() && is_atom_char(peek())) {
      host.push_back(static_cast<char>(peek()));
      advance();
    }
    for (const auto word : kReserved)
      if (host == word)
        return fail(line, column,
                    "'" + host + "' is a reserved word in Erlang (quote it: '" + host + "')");
    return true;
  }

  // A quoted atom or string, with Erlang's escapes. Appends to `out`.
  bool quoted(char quote, std::string &out) {
    const int line = line_, column = column_;
    advance();  // the opening quote
    while (true) {
      if (at_end())
        return fail(line, column,
                    std::string("unterminated ") + (quote == '\'' ? "quoted atom" : "string") +
                        " (no closing " + quote + ")");
      const unsigned char c = peek();
      if (c == static_cast<unsigned char>(quote)) {
        advance();
        return true;
      }
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        advance();
        continue;
      }
      if (!escape(out)) return false;
    }
  }

  bool escape(std::string &out) {
    const int line = line_, column = column_;
    advance();  // the backslash
    if (at_end()) return fail(line, column, "unterminated escape sequence");
    const unsigned char c = peek();
    if (c >= '0' && c <= '7') {  // \O, \OO, \OOO
      std::uint32_t v = 0;
      for (int i = 0; i < 3 && !at_end() && peek() >= '0' && peek() <= '7'; ++i) {
        v = v * 8 + static_cast<std::uint32_t>(peek() - '0');
        advance();
      }
      append_utf8(out, v);
      return true;
    }
    if (c == 'x') {
      advance();
      if (peek() == '{' && !at_end()) {  // \x{H...}
        advance();
        std::uint32_t v = 0;
        int digits = 0;
        while (!at_end() && hex_value(peek()) >= 0) {
          if (++digits > 6) return fail(line, column, "\\x{...} escape too long");
          v = v * 16 + static_cast<std::uint32_t>(hex_value(peek()));
          advance();
        }
        if (digits == 0 || at_end() || peek() != '}')
          return fail(line, column, "malformed \\x{...} escape");
        advance();
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
          return fail(line, column, "\\x{...} escape is not a Unicode code point");
        append_utf8(out, v);
        return true;
      }
      int a = has(0) ? hex_value(peek()) : -1;
      int b = has(1) ? hex_value(peek(1)) : -1;
      if (a < 0 || b < 0) return fail(line, column, "malformed \\xHH escape");
      advance();
      advance();
      append_utf8(out, static_cast<std::uint32_t>(a * 16 + b));
      return true;
    }
    if (c == '^') {  // \^A = control-A
      advance();
      if (at_end()) return fail(line, column, "unterminated escape sequence");
      out.push_back(static_cast<char>(peek() & 0x1f));
      advance();
      return true;
    }
    char value = static_cast<char>(c);  // \\ \' \" and unknown escapes: the character itself
    switch (c) {
      case 'b':
        value = '\b';
        break;
      case 'd':
        value = '\x7f';
        break;
      case 'e':
        value = '\x1b';
        break;
      case 'f':
        value = '\f';
        break;
      case 'n':
        value = '\n';
        break;
      case 'r':
        value = '\r';
        break;
      case 's':
        value = ' ';
        break;
      case 't':
        value = '\t';
        break;
      case 'v':
        value = '\v';
        break;
      default:
        break;
    }
    out.push_back(value);
    advance();
    return true;
  }

  bool check_host(const std::string &host, int line, int column) {
    if (host.empty()) return fail(line, column, "empty host name");
    if (utf8_length(host) > kMaxAtomChars)
      return fail(line, column, "host name longer than 255 characters");
    for (const char ch : host) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '@') return fail(line, column, "host name '" + host + "' contains '@'");
      if (c <= 0x20 || c == 0x7f)
        return fail(line, column, "host name contains whitespace or a control character");
    }
    return true;
  }

  // The '.' that ends a term must be followed by whitespace, a comment or the end of the file.
  bool end_of_term(const std::string &host, bool bare, int line, int column) {
    if (at_end()) return fail_here("missing '.' after '" + host + "' at the end of the file");
    if (peek() != '.')
      return fail_here("expected '.' after '" + host + "', got " + shown(peek()) +
                       " (one host per term: 'a'. 'b'.)");
    advance();
    if (bare && !at_end() && is_atom_char(peek())) {
      std::string full = host + ".";  // show the whole dotted name in the message
      for (std::size_t i = 0; has(i) && (is_atom_char(peek(i)) || peek(i) == '.') && i < 253; ++i)
        full.push_back(static_cast<char>(peek(i)));
      while (!full.empty() && full.back() == '.') full.pop_back();
      return fail(line, column, "a host name with dots must be quoted: '" + full + "'.");
    }
    if (!at_end() && !is_space(peek()) && peek() != '%')
      return fail_here("'.' must be followed by whitespace or a newline, got " + shown(peek()));
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 1, column_ = 1;
  bool failed_ = false;
  SyntaxError error_;
};

}  // namespace

bool parse_hosts_erlang(std::string_view text, std::vector<std::string> &hosts,
                        SyntaxError &error) {
  return Parser(text).run(hosts, error);
}

}  // namespace clusterd::erlang_hosts
