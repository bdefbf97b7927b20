// Unit tests of the EPMD encoders and reply parsers (plugins/common/epmd/epmd.hpp): every
// reply shape, every truncation, oversized, garbage, extra bytes, non-ASCII names, bad ports.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "epmd.hpp"

namespace {

using clusterd::epmd::kMaxAliveBytes;
using clusterd::epmd::kMaxReplyBytes;
using clusterd::epmd::Parse;
using clusterd::epmd::PortReply;
using clusterd::epmd::Registered;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// The NAMES reply captured from a real EPMD (erlang.md §3).
const std::string kNames =
    bytes({0, 0, 0x11, 0x11}) + "name b at port 37199\n" + "name a at port 33969\n";
// The PORT2_RESP captured from a real EPMD for "a".
const std::string kPort2 = bytes(
    {0x77, 0x00, 0x84, 0xb1, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00});

struct NamesResult {
  Parse parse;
  std::vector<Registered> names;
  std::string error;
};
NamesResult names(const std::string &reply, bool eof = true) {
  NamesResult r;
  r.parse = clusterd::epmd::parse_names(reply, eof, r.names, r.error);
  return r;
}
struct PortResult {
  Parse parse;
  PortReply reply;
  std::string error;
};
PortResult port2(const std::string &reply, bool eof = true) {
  PortResult r;
  r.parse = clusterd::epmd::parse_port2(reply, eof, r.reply, r.error);
  return r;
}
std::string names_reply(const std::string &lines) {
  return bytes({0, 0, 0x11, 0x11}) + lines;
}
// A registered PORT2_RESP for `name` with `port` and `extra`.
std::string port2_reply(const std::string &name, int port, const std::string &extra = "") {
  std::string s = bytes({119, 0, port >> 8, port & 0xff, 77, 0, 0, 6, 0, 5,
                         static_cast<int>(name.size() >> 8), static_cast<int>(name.size() & 0xff)});
  s += name;
  s += bytes({static_cast<int>(extra.size() >> 8), static_cast<int>(extra.size() & 0xff)});
  s += extra;
  return s;
}

// ---- requests ----

TEST(EpmdRequests, Names) {
  EXPECT_EQ(clusterd::epmd::names_request(), bytes({0, 1, 0x6e}));
}

TEST(EpmdRequests, PortPlease2) {
  EXPECT_EQ(clusterd::epmd::port_please2_request("a"), bytes({0, 2, 0x7a, 0x61}));
  const std::string longest(kMaxAliveBytes, 'x');
  const std::string req = clusterd::epmd::port_please2_request(longest);
  ASSERT_EQ(req.size(), 3 + kMaxAliveBytes);
  EXPECT_EQ((static_cast<unsigned char>(req[0]) << 8) | static_cast<unsigned char>(req[1]),
            static_cast<int>(kMaxAliveBytes + 1));
  EXPECT_EQ(clusterd::epmd::port_please2_request("caf\xc3\xa9").substr(3), "caf\xc3\xa9");
}

TEST(EpmdRequests, InvalidAliveNamesGiveNoRequest) {
  for (const std::string &bad :
       {std::string(), std::string("a@b"), std::string("a b"), std::string("a\nb"),
        std::string("a\x7f"), std::string(kMaxAliveBytes + 1, 'x'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(clusterd::epmd::valid_alive_name(bad)) << clusterd::epmd::printable(bad);
    EXPECT_EQ(clusterd::epmd::port_please2_request(bad), "");
  }
}

// ---- NAMES ----

TEST(EpmdNames, CompleteReplyAtEof) {
  const auto r = names(kNames);
  ASSERT_EQ(r.parse, Parse::complete) << r.error;
  ASSERT_EQ(r.names.size(), 2u);
  EXPECT_EQ(r.names[0].name, "b");
  EXPECT_EQ(r.names[0].port, 37199);
  EXPECT_EQ(r.names[1].name, "a");
  EXPECT_EQ(r.names[1].port, 33969);
}

TEST(EpmdNames, NeedsEofToComplete) {
  auto r = names(kNames, false);
  EXPECT_EQ(r.parse, Parse::need_more);
  EXPECT_TRUE(r.names.empty()) << "out is written only on complete";
}

TEST(EpmdNames, NoNamesIsAnEmptyAnswer) {
  const auto r = names(bytes({0, 0, 0x11, 0x11}));
  ASSERT_EQ(r.parse, Parse::complete) << r.error;
  EXPECT_TRUE(r.names.empty());
}

TEST(EpmdNames, TruncatedAtEveryByte) {
  for (std::size_t k = 0; k < kNames.size(); ++k) {
    const std::string prefix = kNames.substr(0, k);
    EXPECT_EQ(names(prefix, false).parse, Parse::need_more) << "prefix of " << k << " bytes";
    // Without a length, a prefix that ends at a line boundary is a valid, shorter reply.
    const bool boundary = k == 4 || (k > 4 && kNames[k - 1] == '\n');
    const auto r = names(prefix, true);
    if (boundary) {
      EXPECT_EQ(r.parse, Parse::complete) << k;
    } else {
      EXPECT_EQ(r.parse, Parse::error) << k;
      EXPECT_NE(r.error.find("truncated"), std::string::npos) << k << ": " << r.error;
    }
  }
}

TEST(EpmdNames, Oversized) {
  std::string big = names_reply("");
  while (big.size() <= kMaxReplyBytes) big += "name a at port 1\n";
  for (bool eof : {false, true}) {
    const auto r = names(big, eof);
    EXPECT_EQ(r.parse, Parse::error);
    EXPECT_NE(r.error.find("larger than 1048576"), std::string::npos) << r.error;
  }
}

TEST(EpmdNames, Garbage) {
  for (const std::string &g :
       {std::string("HTTP/1.1 400 Bad Request\r\n\r\n"), bytes({0, 0, 0, 0}) + "name a at port 1\n",
        bytes({0, 1, 0, 0}) + "name a at port 1\n", names_reply("hello\n"), names_reply("\n"),
        names_reply(std::string("\0\0\0", 3))}) {
    const auto r = names(g);
    EXPECT_EQ(r.parse, Parse::error) << clusterd::epmd::printable(g);
    EXPECT_FALSE(r.error.empty());
  }
  EXPECT_NE(names("HTTP/1.1 400 Bad Request\r\n").error.find("not an EPMD reply"),
            std::string::npos);
}

TEST(EpmdNames, BadLineFailsBeforeEof) {
  const auto r = names(names_reply("name a at port 1\nbogus line\n"), false);
  EXPECT_EQ(r.parse, Parse::error);
  EXPECT_NE(r.error.find("line 2"), std::string::npos) << r.error;
  // A partial line that can no longer become "name ..." fails at once too.
  EXPECT_EQ(names(names_reply("xyz"), false).parse, Parse::error);
  EXPECT_EQ(names(names_reply("nam"), false).parse, Parse::need_more);
}

TEST(EpmdNames, ExtraBytesAfterTheLastLine) {
  const auto r = names(kNames + "trailing junk");
  EXPECT_EQ(r.parse, Parse::error);
  EXPECT_NE(r.error.find("line 3"), std::string::npos) << r.error;
}

TEST(EpmdNames, NonAsciiNames) {
  const auto r =
      names(names_reply("name caf\xc3\xa9 at port 4000\nname \xe5\x90\x8d at port 4001\n"));
  ASSERT_EQ(r.parse, Parse::complete) << r.error;
  ASSERT_EQ(r.names.size(), 2u);
  EXPECT_EQ(r.names[0].name, "caf\xc3\xa9");
  EXPECT_EQ(r.names[1].name, "\xe5\x90\x8d");
  EXPECT_EQ(r.names[1].port, 4001);
}

TEST(EpmdNames, PortOutOfRange) {
  for (const char *port :
       {"0", "65536", "99999", "123456", "-1", "+1", "12a", "", " 1", "1 ", "0x10"}) {
    const auto r = names(names_reply(std::string("name a at port ") + port + "\n"));
    EXPECT_EQ(r.parse, Parse::error) << "port \"" << port << "\"";
  }
  const auto ok =
      names(names_reply("name a at port 65535\nname b at port 1\nname c at port 00080\n"));
  ASSERT_EQ(ok.parse, Parse::complete) << ok.error;
  EXPECT_EQ(ok.names[0].port, 65535);
  EXPECT_EQ(ok.names[1].port, 1);
  EXPECT_EQ(ok.names[2].port, 80);
}

TEST(EpmdNames, MalformedLines) {
  for (const char *line :
       {"nam a at port 1", "name  at port 1", "name a at  port 1", "name a port 1",
        "name a@b at port 1", "name a at port 1\r", "Name a at port 1", "name a at port", "name a",
        "name a\x01 at port 1", "name a\tb at port 1", " name a at port 1"}) {
    const auto r = names(names_reply(std::string(line) + "\n"));
    EXPECT_EQ(r.parse, Parse::error) << line;
    EXPECT_NE(r.error.find("line 1"), std::string::npos) << r.error;
  }
  // Erlang's rule: the name ends at the first space.
  EXPECT_EQ(names(names_reply("name a b at port 1\n")).parse, Parse::error);
}

TEST(EpmdNames, LongLines) {
  const std::string longest(kMaxAliveBytes, 'n');
  const auto ok = names(names_reply("name " + longest + " at port 65535\n"));
  ASSERT_EQ(ok.parse, Parse::complete) << ok.error;
  EXPECT_EQ(ok.names[0].name, longest);
  const auto bad = names(names_reply("name " + longest + "n at port 1\n"));
  EXPECT_EQ(bad.parse, Parse::error);
  // A line without a newline that is already too long fails before EOF.
  const auto endless = names(names_reply("name " + std::string(2000, 'x')), false);
  EXPECT_EQ(endless.parse, Parse::error);
  EXPECT_NE(endless.error.find("longer than"), std::string::npos) << endless.error;
}

// ---- PORT_PLEASE2 ----

TEST(EpmdPort2, RegisteredReplyFromARealEpmd) {
  for (bool eof : {false, true}) {
    const auto r = port2(kPort2, eof);
    ASSERT_EQ(r.parse, Parse::complete) << r.error;
    EXPECT_TRUE(r.reply.registered);
    EXPECT_EQ(r.reply.port, 33969);
    EXPECT_EQ(r.reply.node_type, 77);
    EXPECT_EQ(r.reply.protocol, 0);
    EXPECT_EQ(r.reply.highest_version, 6);
    EXPECT_EQ(r.reply.lowest_version, 5);
    EXPECT_EQ(r.reply.name, "a");
  }
}

TEST(EpmdPort2, NotRegistered) {
  for (int result : {1, 2, 255}) {
    const auto r = port2(bytes({119, result}), false);
    ASSERT_EQ(r.parse, Parse::complete) << r.error;
    EXPECT_FALSE(r.reply.registered);
    EXPECT_EQ(r.reply.port, 0);
  }
  const auto extra = port2(bytes({119, 1, 0}));
  EXPECT_EQ(extra.parse, Parse::error);
  EXPECT_NE(extra.error.find("unexpected"), std::string::npos) << extra.error;
}

TEST(EpmdPort2, TruncatedAtEveryByte) {
  for (const std::string &full : {kPort2, port2_reply("node", 4370, "xyz")}) {
    for (std::size_t k = 0; k < full.size(); ++k) {
      const std::string prefix = full.substr(0, k);
      PortReply untouched;
      untouched.port = 7;
      std::string error;
      EXPECT_EQ(clusterd::epmd::parse_port2(prefix, false, untouched, error), Parse::need_more)
          << k;
      EXPECT_EQ(untouched.port, 7) << "out is written only on complete";
      const auto r = port2(prefix, true);
      EXPECT_EQ(r.parse, Parse::error) << k;
      EXPECT_NE(r.error.find("truncated"), std::string::npos) << k << ": " << r.error;
    }
  }
}

TEST(EpmdPort2, ExtraBytes) {
  const auto r = port2(kPort2 + "x", false);
  EXPECT_EQ(r.parse, Parse::error);
  EXPECT_NE(r.error.find("1 unexpected byte"), std::string::npos) << r.error;
}

TEST(EpmdPort2, ExtraField) {
  const auto r = port2(port2_reply("n", 4370, "extra!"));
  ASSERT_EQ(r.parse, Parse::complete) << r.error;
  EXPECT_EQ(r.reply.name, "n");
  EXPECT_EQ(r.reply.port, 4370);
}

TEST(EpmdPort2, Garbage) {
  for (const std::string &g :
       {std::string("HTTP/1.1 400"), bytes({0}), bytes({118, 0}), bytes({0x77 + 1})}) {
    const auto r = port2(g, false);
    EXPECT_EQ(r.parse, Parse::error) << clusterd::epmd::printable(g);
    EXPECT_NE(r.error.find("PORT2_RESP"), std::string::npos) << r.error;
  }
}

TEST(EpmdPort2, PortAndNameOutOfRange) {
  EXPECT_EQ(port2(port2_reply("a", 0)).parse, Parse::error);
  EXPECT_NE(port2(port2_reply("a", 0)).error.find("port 0"), std::string::npos);
  EXPECT_EQ(port2(port2_reply("", 4370)).parse, Parse::error);
  EXPECT_EQ(port2(port2_reply(std::string(kMaxAliveBytes + 1, 'x'), 4370)).parse, Parse::error);
  const auto longest = port2(port2_reply(std::string(kMaxAliveBytes, 'x'), 65535));
  ASSERT_EQ(longest.parse, Parse::complete) << longest.error;
  EXPECT_EQ(longest.reply.port, 65535);
}

TEST(EpmdPort2, NonAsciiName) {
  const auto r = port2(port2_reply("caf\xc3\xa9", 4370));
  ASSERT_EQ(r.parse, Parse::complete) << r.error;
  EXPECT_EQ(r.reply.name, "caf\xc3\xa9");
}

TEST(EpmdPort2, Oversized) {
  const auto r = port2(kPort2 + std::string(kMaxReplyBytes, 'x'));
  EXPECT_EQ(r.parse, Parse::error);
  EXPECT_NE(r.error.find("larger than"), std::string::npos) << r.error;
}

TEST(EpmdPrintable, EscapesAndCuts) {
  EXPECT_EQ(clusterd::epmd::printable("abc"), "abc");
  EXPECT_EQ(clusterd::epmd::printable(std::string("a\0\n\"\\\xff", 6)),
            "a\\x00\\x0a\\x22\\x5c\\xff");
  EXPECT_EQ(clusterd::epmd::printable(std::string(50, 'x'), 10), std::string(10, 'x') + "...");
}

}  // namespace
