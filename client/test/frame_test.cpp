// The binary session frame codec (client/frame.c), shared by libclusterd-client and the
// partisan transport: round trips of every type, byte-exact encodings from
// docs/control-protocol.md, partial input, the limits and every malformation. Behaviour over
// real sockets is tested in tests/integration/test_partisan_binary.py.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "frame.h"

namespace {

constexpr std::size_t kMaxFrame = 1024;

std::string header(std::size_t n, const unsigned char *bytes) {
  return std::string(reinterpret_cast<const char *>(bytes), n);
}

std::string send_frame(std::uint64_t id, std::string_view to, std::string_view data) {
  unsigned char h[CLUSTERD_FRAME_MAX_HEADER];
  return header(clusterd_frame_send_header(h, id, to.size(), data.size()), h) + std::string(to) +
         std::string(data);
}
std::string ack_frame(std::uint64_t id, std::uint8_t status, std::string_view reason) {
  unsigned char h[CLUSTERD_FRAME_MAX_HEADER];
  return header(clusterd_frame_ack_header(h, id, status, reason.size()), h) + std::string(reason);
}
std::string message_frame(std::string_view from, std::string_view data) {
  unsigned char h[CLUSTERD_FRAME_MAX_HEADER];
  return header(clusterd_frame_message_header(h, from.size(), data.size()), h) + std::string(from) +
         std::string(data);
}
std::string error_frame(std::string_view reason) {
  unsigned char h[CLUSTERD_FRAME_MAX_HEADER];
  return header(clusterd_frame_error_header(h, reason.size()), h) + std::string(reason);
}

struct Parsed {
  long result = 0;
  clusterd_frame_t frame{};
  std::string error;
};
Parsed parse(const std::string &bytes, bool from_app, std::size_t max_frame = kMaxFrame) {
  Parsed p;
  const char *why = nullptr;
  p.result = clusterd_frame_parse(bytes.data(), bytes.size(), max_frame, from_app, &p.frame, &why);
  if (why) p.error = why;
  return p;
}
std::string_view node(const clusterd_frame_t &f) {
  return {f.node, f.node_length};
}
std::string_view data(const clusterd_frame_t &f) {
  return {f.data, f.data_length};
}

TEST(ClientFrame, SendRoundTripAndExactBytes) {
  const std::string bytes = send_frame(0x0102030405060708, "b@h", "hi");
  // length 16 = type + id + to_length + "b@h" + "hi"
  EXPECT_EQ(bytes, std::string("\x00\x00\x00\x10\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00\x03"
                               "b@hhi",
                               20));
  auto p = parse(bytes, true);
  ASSERT_EQ(p.result, 20) << p.error;
  EXPECT_EQ(p.frame.type, CLUSTERD_FRAME_SEND);
  EXPECT_EQ(p.frame.id, 0x0102030405060708u);
  EXPECT_EQ(node(p.frame), "b@h");
  EXPECT_EQ(data(p.frame), "hi");
}

TEST(ClientFrame, AckMessageErrorRoundTrip) {
  // The frame's views point into the bytes: they must outlive it.
  const std::string ack = ack_frame(7, 2, "too slow");
  auto a = parse(ack, false);
  ASSERT_GT(a.result, 0) << a.error;
  EXPECT_EQ(a.frame.type, CLUSTERD_FRAME_ACK);
  EXPECT_EQ(a.frame.id, 7u);
  EXPECT_EQ(a.frame.status, 2);
  EXPECT_EQ(data(a.frame), "too slow");

  const std::string binary("\0\xff\n", 3);
  const std::string message = message_frame("a@h", binary);
  auto m = parse(message, false);
  ASSERT_GT(m.result, 0) << m.error;
  EXPECT_EQ(m.frame.type, CLUSTERD_FRAME_MESSAGE);
  EXPECT_EQ(node(m.frame), "a@h");
  EXPECT_EQ(data(m.frame), binary);

  const std::string error = error_frame("malformed frame");
  auto e = parse(error, false);
  ASSERT_GT(e.result, 0) << e.error;
  EXPECT_EQ(e.frame.type, CLUSTERD_FRAME_ERROR);
  EXPECT_EQ(data(e.frame), "malformed frame");
}

TEST(ClientFrame, EmptyDataAndReason) {
  const std::string send = send_frame(1, "n@h", "");
  auto s = parse(send, true);
  ASSERT_GT(s.result, 0) << s.error;
  EXPECT_EQ(s.frame.data_length, 0u);
  auto a = parse(ack_frame(1, 0, ""), false);
  ASSERT_EQ(a.result, 4 + 1 + 8 + 1);
}

TEST(ClientFrame, PartialInputNeedsMore) {
  const std::string bytes = send_frame(1, "n@h", "payload");
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_EQ(parse(bytes.substr(0, n), true).result, CLUSTERD_FRAME_NEED_MORE) << n;
}

TEST(ClientFrame, SeveralFramesInOneBuffer) {
  const std::string first = ack_frame(1, 0, ""), second = message_frame("x@y", "z");
  const std::string both = first + second;
  auto p = parse(both, false);
  ASSERT_EQ(p.result, static_cast<long>(first.size()));
  const std::string rest = both.substr(first.size());
  auto q = parse(rest, false);
  ASSERT_EQ(q.result, static_cast<long>(second.size()));
  EXPECT_EQ(data(q.frame), "z");
}

TEST(ClientFrame, LengthLimits) {
  EXPECT_EQ(parse(std::string("\0\0\0\0\x01", 5), true).result, CLUSTERD_FRAME_MALFORMED);
  // Over the limit: refused from the prefix alone, before the body arrives.
  const std::string big = send_frame(1, "n@h", std::string(kMaxFrame, 'x'));
  auto p = parse(big.substr(0, 4), true);
  EXPECT_EQ(p.result, CLUSTERD_FRAME_MALFORMED);
  EXPECT_NE(p.error.find("limit"), std::string::npos);
  EXPECT_GT(parse(big, true, big.size()).result, 0);
}

TEST(ClientFrame, DirectionAndTypeAreChecked) {
  EXPECT_EQ(parse(send_frame(1, "n@h", "x"), false).result, CLUSTERD_FRAME_MALFORMED);
  auto p = parse(ack_frame(1, 0, ""), true);
  EXPECT_EQ(p.result, CLUSTERD_FRAME_MALFORMED);
  EXPECT_NE(p.error.find("direction"), std::string::npos);
  auto u = parse(std::string("\0\0\0\x01\x09", 5), true);
  EXPECT_EQ(u.result, CLUSTERD_FRAME_MALFORMED);
  EXPECT_NE(u.error.find("unknown"), std::string::npos);
}

TEST(ClientFrame, ShortBodiesAndBadNodeNames) {
  // SEND with 7 bytes of id.
  EXPECT_EQ(parse(std::string("\0\0\0\x08\x01"
                              "1234567",
                              12),
                  true)
                .result,
            CLUSTERD_FRAME_MALFORMED);
  // SEND whose node length runs past the frame.
  std::string s = send_frame(1, "n@h", "");
  s[14] = 9;
  EXPECT_EQ(parse(s, true).result, CLUSTERD_FRAME_MALFORMED);
  // An empty node name, and one of 256 bytes.
  EXPECT_EQ(parse(std::string("\0\0\0\x0b\x01"
                              "12345678\0\0",
                              16),
                  true)
                .result,
            CLUSTERD_FRAME_MALFORMED);
  EXPECT_EQ(parse(message_frame(std::string(256, 'n'), "x"), false).result,
            CLUSTERD_FRAME_MALFORMED);
  EXPECT_GT(parse(message_frame(std::string(255, 'n'), "x"), false).result, 0);
  // ACK without its status byte; MESSAGE with half a length.
  EXPECT_EQ(parse(std::string("\0\0\0\x09\x02"
                              "12345678",
                              13),
                  false)
                .result,
            CLUSTERD_FRAME_MALFORMED);
  EXPECT_EQ(parse(std::string("\0\0\0\x02\x03\x00", 6), false).result, CLUSTERD_FRAME_MALFORMED);
}

}  // namespace
