// Unit tests of the .hosts.erlang parser (plugins/strategies/erlang_hosts/hosts_erlang.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hosts_erlang.hpp"

namespace {

using clusterd::erlang_hosts::parse_hosts_erlang;
using clusterd::erlang_hosts::SyntaxError;

std::vector<std::string> ok(const std::string &text) {
  std::vector<std::string> hosts;
  SyntaxError error;
  EXPECT_TRUE(parse_hosts_erlang(text, hosts, error))
      << error.line << ":" << error.column << ": " << error.message << "\n---\n"
      << text;
  return hosts;
}

SyntaxError bad(const std::string &text) {
  std::vector<std::string> hosts = {"untouched"};
  SyntaxError error;
  EXPECT_FALSE(parse_hosts_erlang(text, hosts, error)) << text;
  EXPECT_EQ(hosts, std::vector<std::string>{"untouched"}) << "hosts unchanged on error";
  EXPECT_FALSE(error.message.empty());
  return error;
}

using V = std::vector<std::string>;

TEST(HostsErlang, QuotedAtomsOnePerLine) {
  EXPECT_EQ(ok("'host1.example.com'.\n'host2.example.com'.\n"),
            (V{"host1.example.com", "host2.example.com"}));
}

TEST(HostsErlang, UnquotedAtoms) {
  EXPECT_EQ(ok("localhost.\nweb_1.\nhOST9.\n"), (V{"localhost", "web_1", "hOST9"}));
  EXPECT_EQ(ok("\"db.example.com\".\n"), (V{"db.example.com"}));
  EXPECT_EQ(ok("\"db.\" \"example.com\".\n"), (V{"db.example.com"})) << "adjacent strings join";
  EXPECT_EQ(ok("\"a\"\n%c\n\"b\".\n"), (V{"ab"}));
}

TEST(HostsErlang, CommentsAndWhitespace) {
  EXPECT_EQ(ok("% the hosts\n'a'. % first\n\n\t  'b'  .\r\n%%%\n   'c'.%no space needed\n"
               "'d'.\f'e'.\v'f'."),
            (V{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ(ok("'a'\n.\n"), (V{"a"})) << "whitespace before the dot";
  EXPECT_EQ(ok("'a'."), (V{"a"})) << "no trailing newline";
  EXPECT_EQ(ok(std::string("'a'.\0'b'.", 9)), (V{"a", "b"})) << "NUL is whitespace, as in Erlang";
}

TEST(HostsErlang, EmptyFiles) {
  EXPECT_EQ(ok(""), V{});
  EXPECT_EQ(ok("\n\n   \t\n"), V{});
  EXPECT_EQ(ok("% only a comment"), V{});
  EXPECT_EQ(ok("\xef\xbb\xbf'a'.\n"), (V{"a"})) << "UTF-8 BOM skipped";
}

TEST(HostsErlang, DuplicatesAreKept) {
  EXPECT_EQ(ok("'a'. 'a'. b. 'b'."), (V{"a", "a", "b", "b"}));
}

TEST(HostsErlang, Escapes) {
  EXPECT_EQ(ok("'\\x41b'."), (V{"Ab"}));
  EXPECT_EQ(ok("'\\101\\60'."), (V{"A0"}));
  EXPECT_EQ(ok("'\\x{61}\\x{e9}'."), (V{"a\xc3\xa9"}));
  EXPECT_EQ(ok("'a\\'b'."), (V{"a'b"}));
  EXPECT_EQ(ok("'a\\\\b'."), (V{"a\\b"}));
  EXPECT_EQ(ok("'a\\.b'."), (V{"a.b"})) << "unknown escapes are the character itself";
  EXPECT_EQ(ok("\"a\\\"b\"."), (V{"a\"b"}));
  EXPECT_EQ(ok("'h\xc3\xb6st'."), (V{"h\xc3\xb6st"})) << "UTF-8 inside quotes";
}

TEST(HostsErlang, EscapesThatGiveBadHostNames) {
  EXPECT_EQ(bad("'a\\nb'.").line, 1);
  EXPECT_EQ(bad("'a\\sb'.").message, "host name contains whitespace or a control character");
  EXPECT_EQ(bad("'a\\^Ab'.").line, 1);
  EXPECT_EQ(bad("'a\\x40b'.").message, "host name 'a@b' contains '@'");
}

TEST(HostsErlang, MalformedEscapes) {
  for (const char *text : {"'\\x4'.", "'\\xg0'.", "'\\x{}'.", "'\\x{110000}'.", "'\\x{d800}'.",
                           "'\\x{1234567}'.", "'\\x{41'.", "'\\", "'\\^"}) {
    const SyntaxError e = bad(text);
    EXPECT_EQ(e.line, 1) << text;
  }
}

TEST(HostsErlang, ErrorsNameLineAndColumn) {
  struct Case {
    std::string text;
    int line, column;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"'a'.\n'b'", 2, 4, "missing '.'"},
      {"'a'.\n\n  'b' 'c'.", 3, 7, "expected '.' after 'b'"},
      {"'a'.\n10.0.0.1.\n", 2, 1, "a number is not a host name"},
      {"Host.\n", 1, 1, "variable"},
      {"_x.\n", 1, 1, "variable"},
      {"{'a', 1}.\n", 1, 1, "tuple"},
      {"['a'].\n", 1, 1, "list"},
      {"'a'.\n'unterminated.\n\n", 2, 1, "unterminated quoted atom"},
      {"\"open", 1, 1, "unterminated string"},
      {"'a'.'b'.\n", 1, 5, "'.' must be followed by whitespace"},
      {"host.example.com.\n", 1, 1, "must be quoted: 'host.example.com'"},
      {"'a'.\n  end.\n", 2, 3, "reserved word"},
      {"''.\n", 1, 1, "empty host name"},
      {"'a b'.\n", 1, 1, "whitespace"},
      {"'a@b'.\n", 1, 1, "contains '@'"},
      {"a@b.\n", 1, 1, "contains '@'"},
      {".\n", 1, 1, "empty term"},
      {"'a'. .\n", 1, 6, "empty term"},
      {"h\xc3\xb6st.\n", 1, 2, "expected '.' after 'h'"},
      {"\xc3\xb6.\n", 1, 1, "non-ASCII"},
      {"#\n", 1, 1, "unexpected character '#'"},
      {"'a'.\n'b',\n", 2, 4, "expected '.' after 'b', got ','"},
      {"'multi\nline'.", 1, 1, "whitespace"},
      {"'a'.\n%c\n%d\n 'y' 'z'.", 4, 6, "expected '.' after 'y'"},
  };
  for (const auto &c : cases) {
    const SyntaxError e = bad(c.text);
    EXPECT_EQ(e.line, c.line) << c.text << " -> " << e.message;
    EXPECT_EQ(e.column, c.column) << c.text << " -> " << e.message;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.text << " -> " << e.message;
  }
}

TEST(HostsErlang, LongNames) {
  EXPECT_EQ(ok("'" + std::string(255, 'h') + "'.").at(0).size(), 255u);
  std::string accents;
  for (int i = 0; i < 55; ++i) accents += "\xc3\xa9";
  EXPECT_EQ(ok("'" + std::string(200, 'h') + accents + "'.").size(), 1u)
      << "255 characters (310 bytes): characters are counted, not bytes";
  EXPECT_NE(bad("'" + std::string(201, 'h') + accents + "'.").message.find("longer than 255"),
            std::string::npos);
  EXPECT_NE(bad("'" + std::string(256, 'h') + "'.").message.find("longer than 255"),
            std::string::npos);
}

TEST(HostsErlang, LargeFile) {
  std::string text;
  V expected;
  for (int i = 0; i < 5000; ++i) {
    text += "'host" + std::to_string(i) + ".example.com'.\n";
    expected.push_back("host" + std::to_string(i) + ".example.com");
  }
  EXPECT_EQ(ok(text), expected);
}

}  // namespace
