// libFuzzer target: the binary control session frame codec (client/frame.c), which parses what
// an application sends the daemon (SEND frames, the partisan transport's app_session.cpp) and
// what the daemon sends an application (ACK, MESSAGE, ERROR; libclusterd-client). The first
// input byte picks the direction, the rest is a byte stream, parsed frame after frame as both
// readers do. Besides "no crash, no UB", it checks the codec's contracts and aborts when one is
// broken:
//   - a frame's views lie inside the bytes it took, and it took no more than it was given;
//   - any shorter prefix of a complete frame needs more (never a different frame);
//   - a parsed frame re-encodes, with the header encoders, to the very bytes it was read from.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp). Seeds:
// corpus/client_frame/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "frame.h"

namespace {

constexpr std::size_t kMaxFrame = 4096;  // small enough that -max_len=8192 reaches it

void check(bool ok) {
  if (!ok) std::abort();
}

std::string reencode(const clusterd_frame_t &f) {
  unsigned char h[CLUSTERD_FRAME_MAX_HEADER];
  std::size_t n = 0;
  std::string node(f.node ? f.node : "", f.node_length), data(f.data ? f.data : "", f.data_length);
  switch (f.type) {
    case CLUSTERD_FRAME_SEND:
      n = clusterd_frame_send_header(h, f.id, f.node_length, f.data_length);
      return std::string(reinterpret_cast<char *>(h), n) + node + data;
    case CLUSTERD_FRAME_ACK:
      n = clusterd_frame_ack_header(h, f.id, f.status, f.data_length);
      return std::string(reinterpret_cast<char *>(h), n) + data;
    case CLUSTERD_FRAME_MESSAGE:
      n = clusterd_frame_message_header(h, f.node_length, f.data_length);
      return std::string(reinterpret_cast<char *>(h), n) + node + data;
    default:
      n = clusterd_frame_error_header(h, f.data_length);
      return std::string(reinterpret_cast<char *>(h), n) + data;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *input, std::size_t size) {
  if (size == 0) return 0;
  const int from_app = input[0] & 1;
  const std::string stream(reinterpret_cast<const char *>(input + 1), size - 1);
  std::size_t at = 0;
  for (int frames = 0; frames < 1024; ++frames) {
    const char *buf = stream.data() + at;
    const std::size_t left = stream.size() - at;
    clusterd_frame_t frame;
    const char *why = nullptr;
    const long n = clusterd_frame_parse(buf, left, kMaxFrame, from_app, &frame, &why);
    if (n == CLUSTERD_FRAME_NEED_MORE) break;
    if (n < 0) {
      check(n == CLUSTERD_FRAME_MALFORMED && why != nullptr && *why != '\0');
      break;
    }
    const std::size_t took = static_cast<std::size_t>(n);
    check(took <= left && took >= CLUSTERD_FRAME_PREFIX + 1);
    auto inside = [&](const char *p, std::size_t length) {
      return length == 0 || (p >= buf && p + length <= buf + took);
    };
    check(inside(frame.node, frame.node_length) && inside(frame.data, frame.data_length));
    check(from_app ? frame.type == CLUSTERD_FRAME_SEND : frame.type != CLUSTERD_FRAME_SEND);
    check(reencode(frame) == std::string(buf, took));
    // A shorter prefix never parses as a frame (checked at a few cuts: cost stays linear).
    for (std::size_t cut : {took - 1, took / 2, std::size_t{CLUSTERD_FRAME_PREFIX}}) {
      clusterd_frame_t partial;
      const char *partial_why = nullptr;
      const long r = clusterd_frame_parse(buf, cut, kMaxFrame, from_app, &partial, &partial_why);
      check(r == CLUSTERD_FRAME_NEED_MORE);
    }
    at += took;
  }
  return 0;
}
