// The partisan overlay's wire format (docs/overlay-protocol.md): frame types, their encoding,
// a bounded stream splitter and decoder that never reads past a frame, and the handshake's
// MAC inputs. Pure code: no sockets, no crypto, no host; fuzzed by tests/fuzz/partisan_fuzz.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace clusterd::partisan::wire {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kMaxString = 1024;    // a `str` field
inline constexpr std::size_t kHeaderSize = 6;      // u32 length + u8 version + u8 type
inline constexpr std::size_t kFrameSlack = 65536;  // max_frame = max_message_size + this

using Bytes32 = std::array<std::uint8_t, 32>;  // a nonce or an HMAC-SHA-256

enum class Type : std::uint8_t {
  kHello = 1,
  kChallenge = 2,
  kAuth = 3,
  kWelcome = 4,
  kReject = 5,
  kPing = 6,
  kPong = 7,
  kMembers = 8,
  kLeave = 9,
  kMessage = 10,
  kAck = 11,
  // membership = "swim" (docs/overlay-protocol.md, "Scalable membership")
  kProbeReq = 12,
  kProbeAck = 13,
  kGossip = 14,
  kState = 15,
  kNeighbor = 16,
  kNeighborReply = 17,
  kDisconnect = 18,
};

// MEMBERS carries alive and left only; the swim frames all four.
enum class MemberState : std::uint8_t { kAlive = 1, kLeft = 2, kSuspect = 3, kDead = 4 };
inline constexpr std::size_t kMaxGossipUpdates = 256;  // entries of one GOSSIP
inline constexpr std::size_t kMaxStateMembers = 4096;  // entries of one STATE
enum class AckStatus : std::uint8_t {
  kDelivered = 0,
  kNoReceiver = 1,
  kReceiverTooSlow = 2,
  kMalformed = 3,
};

struct Hello {
  std::string cluster, node, channel;
  std::uint16_t index = 0;
  std::uint64_t incarnation = 0;
  std::string address;  // host:port where the sender accepts connections
  Bytes32 nonce{};
  bool has_secret = false;
  bool operator==(const Hello &) const = default;
};
struct Challenge {
  Bytes32 nonce{};
  bool has_secret = false;
  bool operator==(const Challenge &) const = default;
};
struct Auth {
  Bytes32 mac{};
  bool operator==(const Auth &) const = default;
};
struct Welcome {
  std::string node;
  std::uint64_t incarnation = 0;
  std::string address;
  Bytes32 mac{};
  bool operator==(const Welcome &) const = default;
};
struct Reject {
  std::string reason;
  bool operator==(const Reject &) const = default;
};
struct Ping {
  std::uint64_t id = 0, sent_ns = 0;
  bool operator==(const Ping &) const = default;
};
struct Pong {
  std::uint64_t id = 0, sent_ns = 0;
  bool operator==(const Pong &) const = default;
};
struct Member {
  std::string node, address;
  std::uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  bool operator==(const Member &) const = default;
};
struct Members {
  std::vector<Member> members;
  bool operator==(const Members &) const = default;
};
struct Leave {
  bool operator==(const Leave &) const = default;
};
struct Message {
  std::uint64_t id = 0;
  std::string data;
  bool operator==(const Message &) const = default;
};
struct Ack {
  std::uint64_t id = 0;
  AckStatus status = AckStatus::kDelivered;
  std::string reason;
  bool operator==(const Ack &) const = default;
};

// ---- membership = "swim" ----

// What one member's state is, as gossip and state exchanges carry it. `from` names the member
// that suspects `node` (a suspicion's independent confirmations are counted by it); empty
// otherwise.
struct Update {
  std::string node, address;
  std::uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  std::string from;
  bool operator==(const Update &) const = default;
};
// Asks the receiver to probe `target` (at `address`) and answer with PROBE_ACK `seq`.
struct ProbeReq {
  std::uint64_t seq = 0;
  std::string target, address;
  bool operator==(const ProbeReq &) const = default;
};
// The answer to PROBE_REQ: the target answered (ack), or not within the probe timeout (nack).
struct ProbeAck {
  std::uint64_t seq = 0;
  bool nack = false;
  bool operator==(const ProbeAck &) const = default;
};
struct Gossip {
  std::vector<Update> updates;  // at most kMaxGossipUpdates
  bool operator==(const Gossip &) const = default;
};
// Push/pull anti-entropy: the sender's whole member table (itself included).
struct State {
  bool reply_wanted = false;    // the receiver answers with its own STATE
  bool join = false;            // the sender is joining through the receiver
  std::vector<Update> members;  // at most kMaxStateMembers
  bool operator==(const State &) const = default;
};
// HyParView: asks the receiver to keep this connection in its active view.
struct Neighbor {
  bool high_priority = false;  // the sender has no neighbour at all
  bool operator==(const Neighbor &) const = default;
};
struct NeighborReply {
  bool accepted = false;
  bool operator==(const NeighborReply &) const = default;
};
// The sender drops the receiver from its active view (both stay members).
struct Disconnect {
  bool operator==(const Disconnect &) const = default;
};

using Frame =
    std::variant<Hello, Challenge, Auth, Welcome, Reject, Ping, Pong, Members, Leave, Message, Ack,
                 ProbeReq, ProbeAck, Gossip, State, Neighbor, NeighborReply, Disconnect>;

// The frame's type name for logs ("HELLO", "MEMBERS", ...).
const char *type_name(const Frame &frame);

// Appends `frame`, length prefix included, to `out`. Strings longer than kMaxString are the
// caller's bug: they are cut to kMaxString bytes (never a malformed frame on the wire).
void encode(const Frame &frame, std::string &out);

// Appends a MESSAGE frame without building a Message (the hot path: one copy of `data`).
void encode_message(std::uint64_t id, std::string_view data, std::string &out);

// Decodes one frame body: the bytes after the length prefix (version, type, payload). false
// with `error` saying why (for the log and REJECT): an unsupported version says
// "protocol version N is not supported (this node speaks 1)"; anything else names the frame
// type and the defect ("malformed MEMBERS: count 70000 exceeds the frame").
bool decode(std::string_view body, Frame &frame, std::string &error);

// Splits a byte stream into frames. Receive straight into it (prepare/commit), then call
// next() until it says kNeedMore. Memory stays bounded by max_frame plus one read.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame);

  // A writable area of at least `n` bytes at the end of the buffer; commit() what was written.
  char *prepare(std::size_t n);
  void commit(std::size_t n);

  enum class Result { kFrame, kNeedMore, kError };
  // The next complete frame. kError (sticky) when the length is below 2 or above max_frame
  // ("frame of N bytes exceeds the limit of M") or decode() fails; `error` says why.
  Result next(Frame &frame, std::string &error);

  // Changes the frame limit (a connection raises it once the peer is authenticated).
  void set_max_frame(std::size_t max_frame) { max_frame_ = max_frame; }

  // Bytes received and not yet consumed.
  std::size_t buffered() const { return end_ - begin_; }

 private:
  std::string buffer_;
  std::size_t begin_ = 0, end_ = 0;
  std::size_t max_frame_;
  bool failed_ = false;
  std::string failure_;
};

// The handshake's HMAC inputs (docs/overlay-protocol.md, "Handshake").
std::string dialer_mac_input(std::string_view cluster, const Bytes32 &dialer_nonce,
                             const Bytes32 &acceptor_nonce, std::string_view dialer_node,
                             std::string_view channel, std::uint16_t index);
std::string acceptor_mac_input(std::string_view cluster, const Bytes32 &dialer_nonce,
                               const Bytes32 &acceptor_nonce, std::string_view dialer_node,
                               std::string_view channel, std::uint16_t index,
                               std::string_view acceptor_node);

}  // namespace clusterd::partisan::wire
