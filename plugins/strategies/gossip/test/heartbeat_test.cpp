// The heartbeat codec against libcluster's packets (tests/fixtures/gossip), byte for byte,
// and against malformed input: every bad packet is refused with its reason, never read past.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fixtures.hpp"
#include "heartbeat.hpp"

namespace {

using clusterd::gossip::announceable;
using clusterd::gossip::AtomEncoding;
using clusterd::gossip::decode_heartbeat;
using clusterd::gossip::Drop;
using clusterd::gossip::drop_name;
using clusterd::gossip::encode_heartbeat;

clusterd::gossip::ByteView view(const std::string &s) {
  return {reinterpret_cast<const std::uint8_t *>(s.data()), s.size()};
}

// Decodes `packet` expecting a failure; returns the reason's name ("ok" on success).
std::string refusal(const std::string &packet) {
  std::string node;
  Drop reason{};
  if (decode_heartbeat(view(packet), node, reason)) return "ok";
  return drop_name(reason);
}

std::string decoded(const std::string &packet) {
  std::string node;
  Drop reason{};
  if (!decode_heartbeat(view(packet), node, reason))
    return std::string("refused: ") + drop_name(reason);
  return node;
}

// "heartbeat::" 131 MAP_EXT arity, then `pairs` as given.
std::string packet(std::uint32_t arity, const std::string &pairs) {
  std::string p = "heartbeat::\x83\x74";
  for (int shift = 24; shift >= 0; shift -= 8) p.push_back(static_cast<char>(arity >> shift));
  return p + pairs;
}
std::string atom_ext(const std::string &latin1) {
  return std::string("\x64") + static_cast<char>(latin1.size() >> 8) +
         static_cast<char>(latin1.size() & 0xFF) + latin1;
}
std::string small_atom(const std::string &latin1) {
  return std::string("\x73") + static_cast<char>(latin1.size()) + latin1;
}
std::string atom_utf8(const std::string &utf8) {
  return std::string("\x76") + static_cast<char>(utf8.size() >> 8) +
         static_cast<char>(utf8.size() & 0xFF) + utf8;
}
std::string small_atom_utf8(const std::string &utf8) {
  return std::string("\x77") + static_cast<char>(utf8.size()) + utf8;
}

TEST(GossipHeartbeat, EncodesLikeOtp25ByteForByte) {
  EXPECT_EQ(encode_heartbeat("ga@198.18.0.1"), gossip_fixture("heartbeat-atom-ext.bin"));
  EXPECT_EQ(encode_heartbeat("ga@198.18.0.1", AtomEncoding::kOtp25),
            gossip_fixture("heartbeat-atom-ext.bin"));
}

TEST(GossipHeartbeat, EncodesLikeOtp26ByteForByte) {
  EXPECT_EQ(encode_heartbeat("pb@198.18.0.2", AtomEncoding::kOtp26),
            gossip_fixture("heartbeat-small-atom-utf8.bin"));
}

TEST(GossipHeartbeat, DecodesTheFixtures) {
  EXPECT_EQ(decoded(gossip_fixture("heartbeat-atom-ext.bin")), "ga@198.18.0.1");
  EXPECT_EQ(decoded(gossip_fixture("heartbeat-small-atom-utf8.bin")), "pb@198.18.0.2");
}

TEST(GossipHeartbeat, DecodesAllFourAtomEncodings) {
  EXPECT_EQ(decoded(packet(1, atom_ext("node") + atom_ext("a@h"))), "a@h");
  EXPECT_EQ(decoded(packet(1, small_atom("node") + small_atom("b@h"))), "b@h");
  EXPECT_EQ(decoded(packet(1, atom_utf8("node") + atom_utf8("c@h"))), "c@h");
  EXPECT_EQ(decoded(packet(1, small_atom_utf8("node") + small_atom_utf8("d@h"))), "d@h");
  // Non-ASCII atoms decode (Latin-1 as UTF-8), but no node name has them (node_name.h).
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_ext("caf\xe9@h"))), "bad_node_name");
  EXPECT_EQ(refusal(packet(1, small_atom("node") + small_atom_utf8("\xce\xbb@h"))),
            "bad_node_name");
}

TEST(GossipHeartbeat, NonAsciiNamesAreNeitherSentNorTaken) {
  // OTP's net_kernel refuses them as a node's own name, so no node announces one.
  for (const std::string name : {"\xce\xbb@host", "caf\xc3\xa9@h", "a@h\xc3\xa9"}) {
    EXPECT_THROW(encode_heartbeat(name), std::invalid_argument) << name;
    EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_utf8(name))), "bad_node_name") << name;
  }
}

TEST(GossipHeartbeat, AcceptsExtraKeysLikeLibcluster) {
  EXPECT_EQ(decoded(packet(3, atom_ext("node") + atom_ext("a@h") + atom_ext("v") +
                                  std::string("\x61\x05", 2) + atom_ext("b") +
                                  std::string("\x6d\x00\x00\x00\x02xy", 7))),
            "a@h");
  EXPECT_EQ(refusal(packet(2, atom_ext("node") + atom_ext("a@h") + atom_ext("v") +
                                  std::string("\x68\x00", 2))),
            "unsupported_term");
}

TEST(GossipHeartbeat, RefusesEveryBadFixture) {
  EXPECT_EQ(refusal(gossip_fixture("bad-no-prefix.bin")), "no_prefix");
  EXPECT_EQ(refusal(gossip_fixture("bad-truncated.bin")), "truncated");
  EXPECT_EQ(refusal(gossip_fixture("bad-huge-atom-len.bin")), "bad_atom");
  EXPECT_EQ(refusal(gossip_fixture("bad-map-arity-2.bin")), "truncated");
  EXPECT_EQ(refusal(gossip_fixture("bad-wrong-key.bin")), "no_node_key");
  EXPECT_EQ(refusal(gossip_fixture("bad-secret-wrong-iv-len.bin")), "no_prefix");
}

TEST(GossipHeartbeat, RefusesMalformedTerms) {
  const std::string good = atom_ext("node") + atom_ext("a@h");
  EXPECT_EQ(refusal("heartbeat::"), "truncated");
  EXPECT_EQ(refusal("heartbeat:"), "no_prefix");
  EXPECT_EQ(refusal(std::string("heartbeat::\x82\x74\x00\x00\x00\x01", 17) + good), "bad_version");
  EXPECT_EQ(refusal(std::string("heartbeat::\x83\x6a", 13)), "not_a_map");
  EXPECT_EQ(refusal(packet(0, "")), "bad_map");
  EXPECT_EQ(refusal(packet(0xFFFFFFFF, good)), "bad_map");
  EXPECT_EQ(refusal(packet(2, good + good)), "bad_map");  // `node` twice
  EXPECT_EQ(refusal(packet(1, good + "x")), "trailing_bytes");
  EXPECT_EQ(refusal(packet(1, std::string("\x61\x01", 2) + atom_ext("a@h"))), "unsupported_term");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + std::string("\x61\x01", 2))), "bad_node_name");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_ext("nonode@nohost"))), "bad_node_name");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_ext("no-at-sign"))), "bad_node_name");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_ext("a@b\n"))), "bad_node_name");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + small_atom_utf8("\xc3(@h"))), "bad_atom");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + small_atom_utf8("\xed\xa0\x80@h"))), "bad_atom");
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_ext(std::string(256, 'a')))), "bad_atom");
  std::string long_name;  // 129 characters in 256 bytes: a legal atom, too long a node name
  for (int i = 0; i < 127; ++i) long_name += "\xc3\xa9";
  EXPECT_EQ(refusal(packet(1, atom_ext("node") + atom_utf8(long_name + "@h"))), "bad_node_name");
}

TEST(GossipHeartbeat, EveryTruncationOfAGoodPacketIsRefused) {
  for (const std::string &good : {gossip_fixture("heartbeat-atom-ext.bin"),
                                  gossip_fixture("heartbeat-small-atom-utf8.bin")}) {
    for (std::size_t n = 0; n < good.size(); ++n) {
      const std::string why = refusal(good.substr(0, n));
      EXPECT_TRUE(why == "truncated" || why == "no_prefix") << n << ": " << why;
    }
  }
}

// The SDK's rule (tested in full in tests/unit/node_name_test.cpp), minus nonode@nohost.
TEST(GossipHeartbeat, AnnounceableNames) {
  EXPECT_TRUE(announceable("a@b"));
  EXPECT_TRUE(announceable("app@198.18.0.1"));
  EXPECT_FALSE(announceable("\xce\xbb@h"));
  for (const char *bad : {"", "@", "a@", "@b", "ab", "a@b@c", "a b@c", "nonode@nohost", "a@\x7f"})
    EXPECT_FALSE(announceable(bad)) << bad;
  EXPECT_FALSE(announceable(std::string(254, 'a') + "@h"));
  EXPECT_TRUE(announceable(std::string(253, 'a') + "@h"));
  EXPECT_THROW(encode_heartbeat("not a name"), std::invalid_argument);
}

}  // namespace
