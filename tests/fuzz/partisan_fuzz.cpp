// libFuzzer target: the partisan overlay's wire codec (plugins/transports/partisan/wire.cpp),
// which reads whatever a TCP peer sends. The input is used twice: as one frame body for
// decode(), and as a byte stream for FrameReader. Besides "no crash, no UB, no leak", it checks
// the codec's contracts and aborts when one is broken:
//   - a decoded frame re-encodes (with a correct length prefix) to a body that decodes to an
//     equal frame;
//   - FrameReader yields the same frames and the same error whether the stream arrives whole,
//     in two chunks (split where the input's last byte says) or byte by byte;
//   - it never holds more bytes than it was fed, and an error is sticky;
//   - a MESSAGE's bytes (a peer's, untrusted) written into a control-socket JSON line
//     (json_line.hpp) give one valid line that reads back to the same bytes, or with U+FFFD
//     where they are not UTF-8 (and then the writer says so);
//   - the frames the stream yields, fed to the membership = "swim" core (swim.hpp) as if from
//     a member, never make it hold more members than its bound, nor a neighbour beyond its
//     active view's bound, nor answer with a frame it could not encode.
// Also built without libFuzzer as a corpus replayer (replay_main.cpp). Seeds: corpus/partisan/
// (written by partisan_wire_test, which fails when they are stale).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "json_line.hpp"
#include "swim.hpp"
#include "wire.hpp"

namespace {

namespace wire = clusterd::partisan::wire;

// Small enough that -max_len=8192 reaches the frame-size limit.
constexpr std::size_t kMaxFrame = 4096;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_reencodes(const wire::Frame &frame) {
  std::string out;
  wire::encode(frame, out);
  check(out.size() >= wire::kHeaderSize);
  const std::uint32_t length = (std::uint32_t{static_cast<std::uint8_t>(out[0])} << 24) |
                               (std::uint32_t{static_cast<std::uint8_t>(out[1])} << 16) |
                               (std::uint32_t{static_cast<std::uint8_t>(out[2])} << 8) |
                               std::uint32_t{static_cast<std::uint8_t>(out[3])};
  check(length == out.size() - 4);
  wire::Frame again;
  std::string error;
  check(wire::decode(std::string_view(out).substr(4), again, error));
  check(again == frame);
  if (const auto *m = std::get_if<wire::Message>(&frame)) {
    std::string fast;
    wire::encode_message(m->id, m->data, fast);
    check(fast == out);
  }
}

struct Outcome {
  std::vector<wire::Frame> frames;
  std::string error;
  bool operator==(const Outcome &) const = default;
};

// Feeds `input` to a fresh reader: `first` bytes, then pieces of at most `chunk` bytes. One
// Frame is decoded into again and again, as the transport does (its strings are reused).
Outcome split(std::string_view input, std::size_t first, std::size_t chunk) {
  wire::FrameReader reader(kMaxFrame);
  Outcome outcome;
  wire::Frame frame;
  std::size_t fed = 0;
  while (fed < input.size()) {
    const std::size_t n = std::min(fed == 0 ? first : chunk, input.size() - fed);
    std::memcpy(reader.prepare(n), input.data() + fed, n);
    reader.commit(n);
    fed += n;
    for (;;) {
      check(reader.buffered() <= fed);
      const auto r = reader.next(frame, outcome.error);
      if (r == wire::FrameReader::Result::kNeedMore) break;
      if (r == wire::FrameReader::Result::kError) {
        check(!outcome.error.empty());
        std::string again;
        check(reader.next(frame, again) == wire::FrameReader::Result::kError &&
              again == outcome.error);
        return outcome;
      }
      check_reencodes(frame);
      outcome.frames.push_back(frame);
    }
  }
  return outcome;
}

void check_json(const std::string &data) {
  clusterd::partisan::JsonLine line;
  line.field("data", data);
  const std::string text(line.text());
  check(text.find('\n') == std::string::npos);
  clusterd::partisan::Request back;
  std::string error;
  check(back.parse(text, error));
  const auto read = back.string("data");
  check(read.has_value());
  check(line.ok() ? *read == data : read->find("\xef\xbf\xbd") != std::string_view::npos);
}

// The frames as a member's, to a core that knows two members, over three seconds.
void check_swim(const std::vector<wire::Frame> &frames) {
  namespace swim = clusterd::partisan::swim;
  swim::Config config;
  config.max_members = 8;
  config.max_active = 2;
  swim::Membership core(config, "self@127.0.0.1:1", "127.0.0.1:1", 5, 1);
  swim::Time now{0};
  core.receive("a@127.0.0.1:2",
               wire::State{false,
                           false,
                           {{"a@127.0.0.1:2", "127.0.0.1:2", 1, wire::MemberState::kAlive, {}},
                            {"b@127.0.0.1:3", "127.0.0.1:3", 1, wire::MemberState::kAlive, {}}}},
               now);
  for (const wire::Frame &frame : frames) {
    core.receive("a@127.0.0.1:2", frame, now);
    now += std::chrono::milliseconds(100);
    core.tick(now);
    check(core.members().size() <= config.max_members);
    check(core.active_view().size() <= config.max_active);
    for (const swim::Send &send : core.take_sends()) {
      check(send.to != "self@127.0.0.1:1");
      std::string out;
      wire::encode(send.frame, out);
      wire::Frame again;
      std::string error;
      check(wire::decode(std::string_view(out).substr(4), again, error));
    }
    core.take_closes();
    core.take_events();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char *>(data), size);

  wire::Frame frame;
  std::string error;
  if (wire::decode(input, frame, error)) {
    check(error.empty());
    check_reencodes(frame);
    if (const auto *message = std::get_if<wire::Message>(&frame)) check_json(message->data);
  } else {
    check(!error.empty());
  }

  if (size == 0) return 0;
  const Outcome whole = split(input, size, size);
  check_swim(whole.frames);
  const std::size_t cut = 1 + data[size - 1] % size;
  check(split(input, cut, size) == whole);
  if (size <= 1024) check(split(input, 1, 1) == whole);
  return 0;
}
