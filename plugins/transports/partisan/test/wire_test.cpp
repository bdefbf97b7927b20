// Unit tests of the partisan overlay's wire codec (wire.cpp, compiled in): every frame type
// round trip at its limits, byte-exact encodings written by hand from docs/overlay-protocol.md,
// each malformation's error text, the stream splitter under every chunking, and the MAC inputs.
#include "wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace clusterd::partisan::wire {
namespace {

using namespace std::string_literals;

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

Bytes32 counting_bytes(std::uint8_t first) {
  Bytes32 b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(first + i);
  return b;
}

std::string bytes_of(const Bytes32 &b) {
  return std::string(b.begin(), b.end());
}

std::string encoded(const Frame &frame) {
  std::string out;
  encode(frame, out);
  return out;
}

// The body of a single encoded frame, after checking its length prefix.
std::string body_of(const std::string &frame) {
  EXPECT_GE(frame.size(), kHeaderSize);
  const std::uint32_t length = (std::uint32_t{static_cast<std::uint8_t>(frame[0])} << 24) |
                               (std::uint32_t{static_cast<std::uint8_t>(frame[1])} << 16) |
                               (std::uint32_t{static_cast<std::uint8_t>(frame[2])} << 8) |
                               std::uint32_t{static_cast<std::uint8_t>(frame[3])};
  EXPECT_EQ(length, frame.size() - 4);
  return frame.substr(4);
}

Frame round_trip(const Frame &frame) {
  Frame out = Leave{};
  std::string error;
  EXPECT_TRUE(decode(body_of(encoded(frame)), out, error)) << error;
  return out;
}

std::string decode_error(std::string_view body) {
  Frame frame;
  std::string error;
  EXPECT_FALSE(decode(body, frame, error));
  return error;
}

// A frame around a hand-made body: length prefix, version 1, type.
std::string body(std::uint8_t type, std::string payload) {
  return "\x01"s + static_cast<char>(type) + payload;
}

// One frame of every type, boundary values included.
std::vector<Frame> sample_frames() {
  const std::string max(kMaxString, 'x');
  std::vector<Frame> frames;
  frames.push_back(
      Hello{"c1", "a@h", "membership", 0, 1, "127.0.0.1:9200", counting_bytes(0), true});
  frames.push_back(Hello{"", "", "", 0, 0, "", Bytes32{}, false});
  frames.push_back(Hello{max, max, max, 0xFFFF, kU64Max, max, counting_bytes(0xE0), true});
  frames.push_back(Challenge{counting_bytes(7), true});
  frames.push_back(Challenge{Bytes32{}, false});
  frames.push_back(Auth{counting_bytes(0x80)});
  frames.push_back(Welcome{"b@h", kU64Max, "[::1]:9201", counting_bytes(1)});
  frames.push_back(Welcome{"", 0, "", Bytes32{}});
  frames.push_back(Reject{"cluster name mismatch"});
  frames.push_back(Reject{""});
  frames.push_back(Reject{max});
  frames.push_back(Ping{0, 0});
  frames.push_back(Ping{kU64Max, kU64Max});
  frames.push_back(Pong{1, 1'700'000'000'000'000'000});
  frames.push_back(Members{});
  frames.push_back(Members{{{"a@h", "h:1", 7, MemberState::kAlive}}});
  frames.push_back(
      Members{{{max, max, kU64Max, MemberState::kLeft}, {"", "", 0, MemberState::kAlive}}});
  frames.push_back(Leave{});
  frames.push_back(Message{0, ""});
  frames.push_back(Message{kU64Max, "with\0NUL\xff bytes"s});
  frames.push_back(Ack{1, AckStatus::kDelivered, ""});
  frames.push_back(Ack{2, AckStatus::kNoReceiver, "no receiver"});
  frames.push_back(Ack{3, AckStatus::kReceiverTooSlow, max});
  frames.push_back(Ack{kU64Max, AckStatus::kMalformed, "x"});
  frames.push_back(ProbeReq{7, "b@h", "127.0.0.1:9201"});
  frames.push_back(ProbeReq{kU64Max, max, max});
  frames.push_back(ProbeAck{1, false});
  frames.push_back(ProbeAck{kU64Max, true});
  frames.push_back(Gossip{});
  frames.push_back(Gossip{{{"a@h", "h:1", 7, MemberState::kSuspect, "b@h"},
                           {max, max, kU64Max, MemberState::kDead, max},
                           {"", "", 0, MemberState::kLeft, ""}}});
  frames.push_back(State{true, true, {{"a@h", "h:1", 7, MemberState::kAlive, ""}}});
  frames.push_back(State{});
  frames.push_back(Neighbor{true});
  frames.push_back(Neighbor{false});
  frames.push_back(NeighborReply{true});
  frames.push_back(NeighborReply{false});
  frames.push_back(Disconnect{});
  return frames;
}

TEST(WireRoundTrip, EveryTypeAtItsLimits) {
  for (const Frame &frame : sample_frames()) {
    SCOPED_TRACE(type_name(frame));
    EXPECT_EQ(round_trip(frame), frame);
  }
}

TEST(WireRoundTrip, ManyMembers) {
  Members big;
  for (int i = 0; i < 5000; ++i)
    big.members.push_back({"node" + std::to_string(i) + "@host", "10.0.0.1:" + std::to_string(i),
                           static_cast<std::uint64_t>(i) * 7919,
                           i % 3 == 0 ? MemberState::kLeft : MemberState::kAlive});
  EXPECT_EQ(round_trip(big), Frame(big));
}

TEST(WireRoundTrip, LargeMessage) {
  std::string data(4 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + (i >> 9));
  const Message message{42, data};
  EXPECT_EQ(round_trip(message), Frame(message));
}

TEST(WireEncode, EncodeMessageMatchesEncode) {
  for (const std::string &data : {""s, "x"s, std::string(70000, 'm')}) {
    std::string fast = "prefix";
    encode_message(99, data, fast);
    EXPECT_EQ(fast, "prefix" + encoded(Message{99, data}));
  }
}

TEST(WireEncode, AppendsToOut) {
  std::string out = "ab";
  encode(Leave{}, out);
  encode(Leave{}, out);
  EXPECT_EQ(out, "ab\x00\x00\x00\x02\x01\x09\x00\x00\x00\x02\x01\x09"s);
}

TEST(WireEncode, OverlongOrNulStringsAreCutNotSent) {
  const std::string long_reason(kMaxString + 100, 'r');
  EXPECT_EQ(round_trip(Reject{long_reason}), Frame(Reject{std::string(kMaxString, 'r')}));
  EXPECT_EQ(round_trip(Reject{"before\0after"s}), Frame(Reject{"before"}));
}

// HELLO, byte by byte from the table in docs/overlay-protocol.md.
TEST(WireEncode, HelloBytesMatchTheSpec) {
  const Hello hello{
      "c1", "a@h", "membership", 1, 0x0102030405060708, "127.0.0.1:9200", counting_bytes(0), true};
  const std::string expected =
      "\x00\x00\x00\x52"s  // length 82
      "\x01"               // version
      "\x01"               // HELLO
      "\x00\x02"
      "c1"
      "\x00\x03"
      "a@h"
      "\x00\x0a"
      "membership"
      "\x00\x01"                          // index
      "\x01\x02\x03\x04\x05\x06\x07\x08"  // incarnation
      "\x00\x0e"
      "127.0.0.1:9200" +
      bytes_of(counting_bytes(0)) + "\x01";  // nonce, flags
  EXPECT_EQ(encoded(hello), expected);
}

TEST(WireEncode, MembersBytesMatchTheSpec) {
  const Members members{
      {{"a@h", "h:1", 7, MemberState::kAlive}, {"b@h", "", kU64Max, MemberState::kLeft}}};
  const std::string expected =
      "\x00\x00\x00\x29"s  // length 41
      "\x01\x08"           // version, MEMBERS
      "\x00\x00\x00\x02"   // count
      "\x00\x03"
      "a@h"
      "\x00\x03"
      "h:1"
      "\x00\x00\x00\x00\x00\x00\x00\x07"
      "\x01"
      "\x00\x03"
      "b@h"
      "\x00\x00"
      "\xff\xff\xff\xff\xff\xff\xff\xff"
      "\x02";
  EXPECT_EQ(encoded(members), expected);
}

TEST(WireEncode, TypeNumbersAndNames) {
  const std::vector<std::pair<Frame, std::string>> cases = {{Hello{}, "HELLO"},
                                                            {Challenge{}, "CHALLENGE"},
                                                            {Auth{}, "AUTH"},
                                                            {Welcome{}, "WELCOME"},
                                                            {Reject{}, "REJECT"},
                                                            {Ping{}, "PING"},
                                                            {Pong{}, "PONG"},
                                                            {Members{}, "MEMBERS"},
                                                            {Leave{}, "LEAVE"},
                                                            {Message{}, "MESSAGE"},
                                                            {Ack{}, "ACK"},
                                                            {ProbeReq{}, "PROBE_REQ"},
                                                            {ProbeAck{}, "PROBE_ACK"},
                                                            {Gossip{}, "GOSSIP"},
                                                            {State{}, "STATE"},
                                                            {Neighbor{}, "NEIGHBOR"},
                                                            {NeighborReply{}, "NEIGHBOR_REPLY"},
                                                            {Disconnect{}, "DISCONNECT"}};
  std::uint8_t type = 1;
  for (const auto &[frame, name] : cases) {
    EXPECT_STREQ(type_name(frame), name.c_str());
    EXPECT_EQ(static_cast<std::uint8_t>(encoded(frame)[5]), type++) << name;
  }
}

TEST(WireDecode, TooShortBody) {
  EXPECT_EQ(decode_error(""), "frame length 0 is too short");
  EXPECT_EQ(decode_error("\x01"), "frame length 1 is too short");
}

TEST(WireDecode, OtherVersionsAreRefusedWithTheSpecReason) {
  EXPECT_EQ(decode_error("\x02\x01"), "protocol version 2 is not supported (this node speaks 1)");
  EXPECT_EQ(decode_error("\x00\x06"s), "protocol version 0 is not supported (this node speaks 1)");
  // A version-2 HELLO: checked before the type or payload.
  std::string hello = body_of(encoded(Hello{"c1", "a@h", "membership", 0, 1, "h:1", {}, false}));
  hello[0] = 2;
  EXPECT_EQ(decode_error(hello), "protocol version 2 is not supported (this node speaks 1)");
  EXPECT_EQ(decode_error("\xff\x42"), "protocol version 255 is not supported (this node speaks 1)");
}

// REJECT keeps its layout across versions, so a newer peer's reason is still readable.
TEST(WireDecode, ARejectOfAnotherVersionIsRead) {
  std::string reject = body_of(encoded(Reject{"protocol version 1 is not supported"}));
  reject[0] = 2;
  Frame frame;
  std::string error;
  ASSERT_TRUE(decode(reject, frame, error)) << error;
  EXPECT_EQ(std::get<Reject>(frame).reason, "protocol version 1 is not supported");
}

TEST(WireDecode, UnknownType) {
  EXPECT_EQ(decode_error("\x01\x00"s), "unknown frame type 0");
  EXPECT_EQ(decode_error("\x01\x13"), "unknown frame type 19");
  EXPECT_EQ(decode_error("\x01\x2a"), "unknown frame type 42");
  EXPECT_EQ(decode_error("\x01\xff"), "unknown frame type 255");
}

// Every strict prefix of every valid body is malformed, and says so about its type.
TEST(WireDecode, EveryTruncationIsMalformed) {
  for (const Frame &frame : sample_frames()) {
    const std::string full = body_of(encoded(frame));
    const std::string prefix = "malformed "s + type_name(frame) + ": ";
    for (std::size_t n = 2; n < full.size(); n += (n < 64 ? 1 : 97)) {
      const std::string error = decode_error(std::string_view(full).substr(0, n));
      EXPECT_EQ(error.rfind(prefix, 0), 0u) << error;
      // A MEMBERS cut inside its entries fails the count check before any entry is read.
      EXPECT_TRUE(error.find(" is truncated") != std::string::npos ||
                  error.find(" exceeds the frame") != std::string::npos)
          << error;
    }
  }
  EXPECT_EQ(decode_error(body(1,
                              "\x00\x02"
                              "c1\x00\x03"
                              "a@h\x00\x0a"
                              "membership\x00\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00\x0e"
                              "127.0"s)),
            "malformed HELLO: address is truncated");
  EXPECT_EQ(decode_error(body(3, std::string(31, 'm'))), "malformed AUTH: mac is truncated");
  EXPECT_EQ(decode_error(body(6, std::string(12, '\0'))), "malformed PING: sent_ns is truncated");
}

TEST(WireDecode, TrailingBytes) {
  EXPECT_EQ(decode_error(body_of(encoded(Ping{1, 2})) + "x"),
            "malformed PING: 1 byte after the last field");
  EXPECT_EQ(decode_error(body(9, "abc")), "malformed LEAVE: 3 bytes after the last field");
  EXPECT_EQ(decode_error(body_of(encoded(Members{{{"a", "b", 1, MemberState::kAlive}}})) + "zz"),
            "malformed MEMBERS: 2 bytes after the last field");
}

TEST(WireDecode, StringLimits) {
  // Exactly kMaxString is fine, one more is not, however many bytes follow.
  const std::string at_limit = "\x04\x00"s + std::string(kMaxString, 'r');
  Frame frame;
  std::string error;
  ASSERT_TRUE(decode(body(5, at_limit), frame, error)) << error;
  EXPECT_EQ(std::get<Reject>(frame).reason.size(), kMaxString);
  EXPECT_EQ(decode_error(body(5, "\x04\x01"s + std::string(kMaxString + 1, 'r'))),
            "malformed REJECT: reason is 1025 bytes, longer than 1024");
  EXPECT_EQ(decode_error(body(5, "\xff\xff"s)),
            "malformed REJECT: reason is 65535 bytes, longer than 1024");
  EXPECT_EQ(decode_error(body(4,
                              "\x00\x03"
                              "a\0b"s)),
            "malformed WELCOME: node contains a NUL byte");
  EXPECT_EQ(decode_error(body(5, "\x00\x01\x00"s)), "malformed REJECT: reason contains a NUL byte");
}

TEST(WireDecode, MemberCountMustFitTheFrame) {
  EXPECT_EQ(decode_error(body(8, "\x00\x01\x11\x70"s + std::string(100, '\0'))),
            "malformed MEMBERS: count 70000 exceeds the frame");
  EXPECT_EQ(decode_error(body(8, "\xff\xff\xff\xff"s)),
            "malformed MEMBERS: count 4294967295 exceeds the frame");
  // Two minimal members (13 bytes each) fit in 26 bytes; three do not.
  const std::string minimal = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"s;
  Frame frame;
  std::string error;
  ASSERT_TRUE(decode(body(8, "\x00\x00\x00\x02"s + minimal + minimal), frame, error)) << error;
  EXPECT_EQ(std::get<Members>(frame).members.size(), 2u);
  EXPECT_EQ(decode_error(body(8, "\x00\x00\x00\x03"s + minimal + minimal)),
            "malformed MEMBERS: count 3 exceeds the frame");
}

TEST(WireDecode, UnknownEnumValues) {
  const std::string member =
      "\x00\x01"
      "a\x00\x01"
      "b\x00\x00\x00\x00\x00\x00\x00\x01"s;
  EXPECT_EQ(decode_error(body(8, "\x00\x00\x00\x01"s + member + "\x03")),
            "malformed MEMBERS: member 0 has unknown state 3");
  EXPECT_EQ(decode_error(body(8, "\x00\x00\x00\x02"s + member + "\x01" + member + "\x00"s)),
            "malformed MEMBERS: member 1 has unknown state 0");
  EXPECT_EQ(decode_error(body(11, std::string(8, '\0') + "\x04\x00\x00"s)),
            "malformed ACK: unknown status 4");
}

TEST(WireDecode, SwimFramesAreBounded) {
  // GOSSIP with 257 entries (each the smallest: 15 bytes) is over kMaxGossipUpdates.
  std::string many = "\x00\x00\x01\x01"s;
  for (int i = 0; i < 257; ++i) many += std::string(12, '\0') + "\x01"s + "\x00\x00"s;
  EXPECT_EQ(decode_error(body(14, many)), "malformed GOSSIP: count 257 exceeds the limit of 256");
  EXPECT_EQ(decode_error(body(14, "\x00\x00\x00\x01"s + std::string(12, '\0') + "\x05\x00\x00"s)),
            "malformed GOSSIP: member 0 has unknown state 5");
  EXPECT_EQ(decode_error(body(15, "\x01\xff\xff\xff\xff"s)),
            "malformed STATE: count 4294967295 exceeds the frame");
  EXPECT_EQ(decode_error(body(17, "\x02"s)), "malformed NEIGHBOR_REPLY: accepted is 2, not 0 or 1");
  EXPECT_EQ(decode_error(body(13, std::string(8, '\0') + "\x07"s)),
            "malformed PROBE_ACK: nack is 7, not 0 or 1");
  EXPECT_EQ(decode_error(body(18, "x")), "malformed DISCONNECT: 1 byte after the last field");
  // MEMBERS (mesh) still knows alive and left only.
  EXPECT_EQ(decode_error(body(8, "\x00\x00\x00\x01"s + std::string(12, '\0') + "\x03"s)),
            "malformed MEMBERS: member 0 has unknown state 3");
  EXPECT_EQ(decode_error(body(19, "")), "unknown frame type 19");
}

TEST(WireDecode, BlobLengthBeyondTheFrame) {
  EXPECT_EQ(decode_error(body(10, std::string(8, '\0') + "\x00\x00\x00\x05"
                                                         "abcd"s)),
            "malformed MESSAGE: data is truncated");
  EXPECT_EQ(decode_error(body(10, std::string(8, '\0') + "\xff\xff\xff\xff"s)),
            "malformed MESSAGE: data is truncated");
}

TEST(WireDecode, ReservedFlagBitsAreIgnored) {
  Frame frame;
  std::string error;
  ASSERT_TRUE(decode(body(2, std::string(32, 'n') + "\xfe"), frame, error)) << error;
  EXPECT_FALSE(std::get<Challenge>(frame).has_secret);
  ASSERT_TRUE(decode(body(2, std::string(32, 'n') + "\x81"), frame, error)) << error;
  EXPECT_TRUE(std::get<Challenge>(frame).has_secret);
}

// Decoding into a frame that already holds something replaces all of it.
TEST(WireDecode, ReusedFrameIsFullyOverwritten) {
  Frame frame =
      Members{{{"old", "old:1", 1, MemberState::kLeft}, {"x", "y", 2, MemberState::kLeft}}};
  std::string error;
  const Members fresh{{{"new", "", 3, MemberState::kAlive}}};
  ASSERT_TRUE(decode(body_of(encoded(fresh)), frame, error)) << error;
  EXPECT_EQ(frame, Frame(fresh));
  const Message shorter{5, "ab"};
  frame = Message{4, std::string(100, 'z')};
  ASSERT_TRUE(decode(body_of(encoded(shorter)), frame, error)) << error;
  EXPECT_EQ(frame, Frame(shorter));
}

std::string sample_stream() {
  std::string stream;
  for (const Frame &frame : sample_frames()) encode(frame, stream);
  return stream;
}

struct ReadResult {
  std::vector<Frame> frames;
  std::string error;
};

// Feeds `stream` to a reader in chunks chosen by `next_chunk`, collecting frames until an
// error or the end.
template <class NextChunk>
ReadResult read_stream(const std::string &stream, std::size_t max_frame, NextChunk next_chunk) {
  FrameReader reader(max_frame);
  ReadResult result;
  std::size_t fed = 0;
  while (fed < stream.size()) {
    const std::size_t n = std::min(next_chunk(), stream.size() - fed);
    std::memcpy(reader.prepare(n), stream.data() + fed, n);
    reader.commit(n);
    fed += n;
    for (;;) {
      Frame frame;
      const auto r = reader.next(frame, result.error);
      if (r == FrameReader::Result::kNeedMore) break;
      if (r == FrameReader::Result::kError) return result;
      result.frames.push_back(std::move(frame));
    }
    EXPECT_LE(reader.buffered(), fed);
  }
  EXPECT_EQ(reader.buffered(), 0u);
  return result;
}

constexpr std::size_t kTestMaxFrame = 1 << 20;

TEST(FrameReader, ByteByByte) {
  const ReadResult r = read_stream(sample_stream(), kTestMaxFrame, [] { return std::size_t{1}; });
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.frames, sample_frames());
}

TEST(FrameReader, RandomChunks) {
  const std::string stream = sample_stream();
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> size(1, seed % 2 ? 64 : 5000);
    const ReadResult r = read_stream(stream, kTestMaxFrame, [&] { return size(rng); });
    EXPECT_EQ(r.error, "") << "seed " << seed;
    EXPECT_EQ(r.frames, sample_frames()) << "seed " << seed;
  }
}

TEST(FrameReader, WholeStreamAtOnce) {
  const std::string stream = sample_stream();
  const ReadResult r = read_stream(stream, kTestMaxFrame, [&] { return stream.size(); });
  EXPECT_EQ(r.frames, sample_frames());
}

TEST(FrameReader, MessagesOfMaxFrameThroughSmallReads) {
  const std::size_t max_frame = 200000;
  const std::string data(max_frame - 2 - 8 - 4, 'd');  // exactly max_frame
  std::string stream;
  for (std::uint64_t id = 0; id < 5; ++id) encode_message(id, data, stream);
  const ReadResult r = read_stream(stream, max_frame, [] { return std::size_t{65536}; });
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.frames.size(), 5u);
  EXPECT_EQ(std::get<Message>(r.frames[4]).id, 4u);
  EXPECT_EQ(std::get<Message>(r.frames[4]).data, data);
}

TEST(FrameReader, NeedsMoreUntilTheFrameIsComplete) {
  const std::string frame = encoded(Ping{1, 2});
  FrameReader reader(kTestMaxFrame);
  Frame out;
  std::string error;
  for (std::size_t i = 0; i + 1 < frame.size(); ++i) {
    *reader.prepare(1) = frame[i];
    reader.commit(1);
    EXPECT_EQ(reader.next(out, error), FrameReader::Result::kNeedMore);
    EXPECT_EQ(reader.buffered(), i + 1);
  }
  *reader.prepare(1) = frame.back();
  reader.commit(1);
  ASSERT_EQ(reader.next(out, error), FrameReader::Result::kFrame);
  EXPECT_EQ(out, Frame(Ping{1, 2}));
  EXPECT_EQ(reader.next(out, error), FrameReader::Result::kNeedMore);
  EXPECT_EQ(reader.buffered(), 0u);
}

// Feeds `bytes` in one piece; returns the result of the first next() that is not kFrame.
FrameReader::Result feed(FrameReader &reader, std::string_view bytes, std::string &error) {
  std::memcpy(reader.prepare(bytes.size()), bytes.data(), bytes.size());
  reader.commit(bytes.size());
  Frame frame;
  FrameReader::Result r;
  while ((r = reader.next(frame, error)) == FrameReader::Result::kFrame) {
  }
  return r;
}

TEST(FrameReader, OversizedLengthFailsOnItsPrefixAlone) {
  FrameReader reader(100);
  std::string error;
  EXPECT_EQ(feed(reader, "\x00\x00\x00\x64\x01\x09"s + std::string(98, '\0'), error),
            FrameReader::Result::kError);  // a 100-byte LEAVE: at the limit, but malformed
  EXPECT_EQ(error, "malformed LEAVE: 98 bytes after the last field");
  FrameReader at_limit(100);
  EXPECT_EQ(feed(at_limit,
                 "\x00\x00\x00\x64\x01\x0a"s + std::string(8, '\0') + "\x00\x00\x00\x56"s +
                     std::string(86, 'm'),
                 error),
            FrameReader::Result::kNeedMore)
      << error;
  EXPECT_EQ(at_limit.buffered(), 0u);  // the 100-byte MESSAGE was split off
  FrameReader over(100);
  EXPECT_EQ(feed(over, "\x00\x00\x00\x65"s, error), FrameReader::Result::kError);
  EXPECT_EQ(error, "frame of 101 bytes exceeds the limit of 100");
  FrameReader huge(kTestMaxFrame);
  EXPECT_EQ(feed(huge, "\xff\xff\xff\xff"s, error), FrameReader::Result::kError);
  EXPECT_EQ(error, "frame of 4294967295 bytes exceeds the limit of 1048576");
}

TEST(FrameReader, LimitRaisedAfterTheHandshake) {
  const std::string big = encoded(Message{1, std::string(1000, 'b')});
  FrameReader reader(100);
  std::string error;
  EXPECT_EQ(feed(reader, encoded(Ping{1, 1}), error), FrameReader::Result::kNeedMore);
  reader.set_max_frame(2000);
  EXPECT_EQ(feed(reader, big, error), FrameReader::Result::kNeedMore) << error;
  EXPECT_EQ(reader.buffered(), 0u);
  FrameReader strict(100);
  EXPECT_EQ(feed(strict, big, error), FrameReader::Result::kError);
  EXPECT_EQ(error, "frame of 1014 bytes exceeds the limit of 100");
}

TEST(FrameReader, TooShortLength) {
  for (const char length : {'\0', '\x01'}) {
    FrameReader reader(kTestMaxFrame);
    std::string error;
    EXPECT_EQ(feed(reader, encoded(Leave{}) + "\x00\x00\x00"s + length, error),
              FrameReader::Result::kError);
    EXPECT_EQ(error, "frame length "s + (length ? "1" : "0") + " is too short");
  }
}

TEST(FrameReader, ErrorsAreSticky) {
  FrameReader reader(kTestMaxFrame);
  std::string error;
  std::string v2 = encoded(Ping{1, 2});
  v2[4] = 2;
  EXPECT_EQ(feed(reader, encoded(Ping{0, 0}) + v2, error), FrameReader::Result::kError);
  EXPECT_EQ(error, "protocol version 2 is not supported (this node speaks 1)");
  // Valid frames after the failure are never decoded.
  error.clear();
  EXPECT_EQ(feed(reader, encoded(Leave{}), error), FrameReader::Result::kError);
  EXPECT_EQ(error, "protocol version 2 is not supported (this node speaks 1)");
}

TEST(FrameReader, MalformedFrameInAStream) {
  const std::string bad = "\x00\x00\x00\x03\x01\x09x"s;  // LEAVE with a payload byte
  std::string stream = encoded(Ping{1, 1}) + bad + encoded(Ping{2, 2});
  const ReadResult r = read_stream(stream, kTestMaxFrame, [] { return std::size_t{3}; });
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.error, "malformed LEAVE: 1 byte after the last field");
}

// The doc's formula, spelled out byte by byte.
TEST(WireMac, InputsMatchTheSpec) {
  const Bytes32 nd = counting_bytes(0x00), na = counting_bytes(0x40);
  const std::string transcript = "clusterd-overlay/1"s +
                                 "\x00\x02"
                                 "c1"s +
                                 bytes_of(nd) + bytes_of(na) +
                                 "\x00\x03"
                                 "a@h"
                                 "\x00\x07"
                                 "updates"
                                 "\x01\x02"s;
  EXPECT_EQ(dialer_mac_input("c1", nd, na, "a@h", "updates", 0x0102), "dialer" + transcript);
  EXPECT_EQ(acceptor_mac_input("c1", nd, na, "a@h", "updates", 0x0102, "b@h"), "acceptor" +
                                                                                   transcript +
                                                                                   "\x00\x03"
                                                                                   "b@h"s);
  // Each input binds every field: changing any one changes the bytes.
  const std::string base = dialer_mac_input("c1", nd, na, "a@h", "updates", 1);
  EXPECT_NE(dialer_mac_input("c2", nd, na, "a@h", "updates", 1), base);
  EXPECT_NE(dialer_mac_input("c1", na, nd, "a@h", "updates", 1), base);
  EXPECT_NE(dialer_mac_input("c1", nd, na, "a@h", "updates", 2), base);
  EXPECT_NE(dialer_mac_input("c1a", nd, na, "@h", "updates", 1), base);
}

// The fuzz seeds (tests/fuzz/corpus/partisan) are these encodings; the test fails when the
// format changes without them. CLUSTERD_PARTISAN_WRITE_CORPUS=1 rewrites them.
std::vector<std::pair<std::string, std::string>> seeds() {
  std::vector<std::pair<std::string, std::string>> out = {
      {"hello",
       encoded(Hello{"c1", "a@h", "membership", 0, 1, "127.0.0.1:9200", counting_bytes(0), true})},
      {"challenge", encoded(Challenge{counting_bytes(7), true})},
      {"auth", encoded(Auth{counting_bytes(0x80)})},
      {"welcome", encoded(Welcome{"b@h", 77, "127.0.0.1:9201", counting_bytes(1)})},
      {"reject", encoded(Reject{"cluster name mismatch"})},
      {"ping", encoded(Ping{1, 2})},
      {"pong", encoded(Pong{1, 2})},
      {"members", encoded(Members{{{"a@h", "h:1", 7, MemberState::kAlive},
                                   {"b@h", "h:2", 9, MemberState::kLeft}}})},
      {"leave", encoded(Leave{})},
      {"message", encoded(Message{5, "hello, world"})},
      {"ack", encoded(Ack{5, AckStatus::kNoReceiver, "no receiver"})},
      {"probe-req", encoded(ProbeReq{3, "b@h", "127.0.0.1:9201"})},
      {"probe-ack", encoded(ProbeAck{3, true})},
      {"gossip", encoded(Gossip{{{"a@h", "h:1", 7, MemberState::kSuspect, "b@h"},
                                 {"c@h", "h:3", 2, MemberState::kDead, ""}}})},
      {"state", encoded(State{true,
                              true,
                              {{"a@h", "h:1", 7, MemberState::kAlive, ""},
                               {"b@h", "h:2", 9, MemberState::kLeft, ""}}})},
      {"neighbor", encoded(Neighbor{true})},
      {"neighbor-reply", encoded(NeighborReply{true})},
      {"disconnect", encoded(Disconnect{})},
      {"stream", sample_stream().substr(0, 4000)},
  };
  std::string v2 = encoded(Hello{"c1", "a@h", "membership", 0, 1, "h:1", {}, false});
  v2[4] = 2;
  out.emplace_back("bad-version-2", v2);
  out.emplace_back("bad-oversized", "\x00\x10\x00\x00\x01\x0a"s);
  out.emplace_back("bad-members-count",
                   "\x00\x00\x00\x0a\x01\x08\xff\xff\xff\xff\x00\x00\x00\x00"s);
  return out;
}

TEST(WireCorpus, SeedsAreCurrent) {
  const bool write = std::getenv("CLUSTERD_PARTISAN_WRITE_CORPUS") != nullptr;
  for (const auto &[name, bytes] : seeds()) {
    const std::string path = std::string(CLUSTERD_PARTISAN_CORPUS) + "/" + name;
    if (write) {
      std::ofstream(path, std::ios::binary) << bytes;
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << path << " is missing (CLUSTERD_PARTISAN_WRITE_CORPUS=1 writes it)";
    const std::string stored((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    EXPECT_EQ(stored, bytes) << path << " is stale (CLUSTERD_PARTISAN_WRITE_CORPUS=1 rewrites it)";
  }
}

}  // namespace
}  // namespace clusterd::partisan::wire
