#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

namespace clusterd::partisan::wire {
namespace {

constexpr std::size_t kLengthSize = 4;
// The smallest MEMBERS entry: two empty strs, u64 incarnation, u8 state. Bounds the count
// before anything is allocated for it.
constexpr std::size_t kMinMemberSize = 2 + 2 + 8 + 1;
constexpr std::size_t kMinUpdateSize = kMinMemberSize + 2;  // and an empty str from

// Indexed by Frame::index(); the wire type is index + 1.
constexpr const char *kTypeNames[] = {
    "HELLO",   "CHALLENGE", "AUTH",           "WELCOME",   "REJECT",    "PING",      "PONG",
    "MEMBERS", "LEAVE",     "MESSAGE",        "ACK",       "PROBE_REQ", "PROBE_ACK", "GOSSIP",
    "STATE",   "NEIGHBOR",  "NEIGHBOR_REPLY", "DISCONNECT"};
static_assert(std::size(kTypeNames) == std::variant_size_v<Frame>);

template <class T, std::size_t I = 0>
constexpr std::uint8_t type_of() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, Frame>, T>)
    return static_cast<std::uint8_t>(I + 1);
  else
    return type_of<T, I + 1>();
}
static_assert(type_of<Hello>() == static_cast<std::uint8_t>(Type::kHello) &&
              type_of<Members>() == static_cast<std::uint8_t>(Type::kMembers) &&
              type_of<Ack>() == static_cast<std::uint8_t>(Type::kAck) &&
              type_of<ProbeReq>() == static_cast<std::uint8_t>(Type::kProbeReq) &&
              type_of<Disconnect>() == static_cast<std::uint8_t>(Type::kDisconnect));

// Big-endian integers, written through a small stack buffer: one append per field.
template <class T>
void put_int(std::string &out, T v) {
  char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i)
    b[i] = static_cast<char>(static_cast<std::uint8_t>(v >> (8 * (sizeof(T) - 1 - i))));
  out.append(b, sizeof(T));
}

template <class T>
T get_int(const char *p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v = static_cast<T>((v << 8) | static_cast<std::uint8_t>(p[i]));
  return v;
}

void put_u8(std::string &out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

// A str as it must appear on the wire: cut at a NUL and at kMaxString (the caller's bug either
// way; sending a frame the peer must reject would be worse).
std::string_view wire_str(std::string_view s) {
  return s.substr(0, std::min(s.find('\0'), kMaxString));
}

void put_str(std::string &out, std::string_view s) {
  s = wire_str(s);
  put_int(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

void put_bytes(std::string &out, const Bytes32 &b) {
  out.append(reinterpret_cast<const char *>(b.data()), b.size());
}

void put_blob(std::string &out, std::string_view data) {
  put_int(out, static_cast<std::uint32_t>(data.size()));
  out.append(data);
}

void put_fields(std::string &out, const Hello &f) {
  put_str(out, f.cluster);
  put_str(out, f.node);
  put_str(out, f.channel);
  put_int(out, f.index);
  put_int(out, f.incarnation);
  put_str(out, f.address);
  put_bytes(out, f.nonce);
  put_u8(out, f.has_secret ? 1 : 0);
}
void put_fields(std::string &out, const Challenge &f) {
  put_bytes(out, f.nonce);
  put_u8(out, f.has_secret ? 1 : 0);
}
void put_fields(std::string &out, const Auth &f) {
  put_bytes(out, f.mac);
}
void put_fields(std::string &out, const Welcome &f) {
  put_str(out, f.node);
  put_int(out, f.incarnation);
  put_str(out, f.address);
  put_bytes(out, f.mac);
}
void put_fields(std::string &out, const Reject &f) {
  put_str(out, f.reason);
}
void put_fields(std::string &out, const Ping &f) {
  put_int(out, f.id);
  put_int(out, f.sent_ns);
}
void put_fields(std::string &out, const Pong &f) {
  put_int(out, f.id);
  put_int(out, f.sent_ns);
}
void put_fields(std::string &out, const Members &f) {
  put_int(out, static_cast<std::uint32_t>(f.members.size()));
  for (const Member &m : f.members) {
    put_str(out, m.node);
    put_str(out, m.address);
    put_int(out, m.incarnation);
    put_u8(out, static_cast<std::uint8_t>(m.state));
  }
}
void put_fields(std::string &, const Leave &) {}
void put_fields(std::string &out, const Message &f) {
  put_int(out, f.id);
  put_blob(out, f.data);
}
void put_fields(std::string &out, const Ack &f) {
  put_int(out, f.id);
  put_u8(out, static_cast<std::uint8_t>(f.status));
  put_str(out, f.reason);
}

void put_updates(std::string &out, const std::vector<Update> &updates) {
  put_int(out, static_cast<std::uint32_t>(updates.size()));
  for (const Update &u : updates) {
    put_str(out, u.node);
    put_str(out, u.address);
    put_int(out, u.incarnation);
    put_u8(out, static_cast<std::uint8_t>(u.state));
    put_str(out, u.from);
  }
}
void put_fields(std::string &out, const ProbeReq &f) {
  put_int(out, f.seq);
  put_str(out, f.target);
  put_str(out, f.address);
}
void put_fields(std::string &out, const ProbeAck &f) {
  put_int(out, f.seq);
  put_u8(out, f.nack ? 1 : 0);
}
void put_fields(std::string &out, const Gossip &f) {
  put_updates(out, f.updates);
}
void put_fields(std::string &out, const State &f) {
  put_u8(out, static_cast<std::uint8_t>((f.reply_wanted ? 1 : 0) | (f.join ? 2 : 0)));
  put_updates(out, f.members);
}
void put_fields(std::string &out, const Neighbor &f) {
  put_u8(out, f.high_priority ? 1 : 0);
}
void put_fields(std::string &out, const NeighborReply &f) {
  put_u8(out, f.accepted ? 1 : 0);
}
void put_fields(std::string &, const Disconnect &) {}

// Starts a frame at the end of `out`; returns where its length prefix goes.
std::size_t begin_frame(std::string &out, std::uint8_t type) {
  const std::size_t start = out.size();
  const char head[kHeaderSize] = {0, 0, 0, 0, static_cast<char>(kVersion), static_cast<char>(type)};
  out.append(head, kHeaderSize);
  return start;
}

void end_frame(std::string &out, std::size_t start) {
  const auto length = static_cast<std::uint32_t>(out.size() - start - kLengthSize);
  for (std::size_t i = 0; i < kLengthSize; ++i)
    out[start + i] = static_cast<char>(static_cast<std::uint8_t>(length >> (8 * (3 - i))));
}

// Reads the fields of one frame body, bounds-checked; the first defect becomes `error`
// ("malformed <TYPE>: <why>") and every later read fails too.
class Reader {
 public:
  Reader(std::string_view payload, const char *type, std::string &error)
      : data_(payload), type_(type), error_(error) {}

  std::size_t left() const { return data_.size() - pos_; }

  template <class T>
  bool integer(T &v, const char *field) {
    const char *p = take(sizeof(T), field);
    if (p == nullptr) return false;
    v = get_int<T>(p);
    return true;
  }

  bool flags(bool &has_secret) {
    std::uint8_t v = 0;
    if (!integer(v, "flags")) return false;
    has_secret = (v & 1u) != 0;  // other bits: reserved for later versions, ignored
    return true;
  }

  bool bytes(Bytes32 &b, const char *field) {
    const char *p = take(b.size(), field);
    if (p == nullptr) return false;
    std::memcpy(b.data(), p, b.size());
    return true;
  }

  bool str(std::string &s, const char *field) {
    std::uint16_t n = 0;
    if (!integer(n, field)) return false;
    if (n > kMaxString)
      return fail(std::string(field) + " is " + std::to_string(n) + " bytes, longer than " +
                  std::to_string(kMaxString));
    const char *p = take(n, field);
    if (p == nullptr) return false;
    if (std::memchr(p, '\0', n) != nullptr)
      return fail(std::string(field) + " contains a NUL byte");
    s.assign(p, n);
    return true;
  }

  bool blob(std::string &s, const char *field) {
    std::uint32_t n = 0;
    if (!integer(n, field)) return false;
    const char *p = take(n, field);
    if (p == nullptr) return false;
    s.assign(p, n);
    return true;
  }

  // A count of entries of at least `min_size` bytes each: must fit in what is left (and be
  // at most `max`).
  bool count(std::uint32_t &n, std::size_t min_size, std::size_t max = SIZE_MAX) {
    if (!integer(n, "count")) return false;
    if (n > left() / min_size) return fail("count " + std::to_string(n) + " exceeds the frame");
    if (n > max)
      return fail("count " + std::to_string(n) + " exceeds the limit of " + std::to_string(max));
    return true;
  }

  // A u8 that must be 0 or 1.
  bool boolean(bool &b, const char *field) {
    std::uint8_t v = 0;
    if (!integer(v, field)) return false;
    if (v > 1) return fail(std::string(field) + " is " + std::to_string(v) + ", not 0 or 1");
    b = v == 1;
    return true;
  }

  bool end() {
    if (left() == 0) return true;
    return fail(std::to_string(left()) + (left() == 1 ? " byte" : " bytes") +
                " after the last field");
  }

  bool fail(const std::string &why) {
    if (!failed_) error_ = std::string("malformed ") + type_ + ": " + why;
    failed_ = true;
    return false;
  }

 private:
  const char *take(std::size_t n, const char *field) {
    if (failed_) return nullptr;
    if (n > left()) {
      fail(std::string(field) + " is truncated");
      return nullptr;
    }
    const char *p = data_.data() + pos_;
    pos_ += n;
    return p;
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  const char *type_;
  std::string &error_;
  bool failed_ = false;
};

// Decodes into the frame's current alternative when it is already T, so that a reader loop
// reuses its strings' capacity instead of allocating per frame.
template <class T>
T &reuse(Frame &frame) {
  if (T *p = std::get_if<T>(&frame)) return *p;
  return frame.emplace<T>();
}

bool get_fields(Reader &r, Hello &f) {
  return r.str(f.cluster, "cluster") && r.str(f.node, "node") && r.str(f.channel, "channel") &&
         r.integer(f.index, "index") && r.integer(f.incarnation, "incarnation") &&
         r.str(f.address, "address") && r.bytes(f.nonce, "nonce") && r.flags(f.has_secret);
}
bool get_fields(Reader &r, Challenge &f) {
  return r.bytes(f.nonce, "nonce") && r.flags(f.has_secret);
}
bool get_fields(Reader &r, Auth &f) {
  return r.bytes(f.mac, "mac");
}
bool get_fields(Reader &r, Welcome &f) {
  return r.str(f.node, "node") && r.integer(f.incarnation, "incarnation") &&
         r.str(f.address, "address") && r.bytes(f.mac, "mac");
}
bool get_fields(Reader &r, Reject &f) {
  return r.str(f.reason, "reason");
}
bool get_fields(Reader &r, Ping &f) {
  return r.integer(f.id, "id") && r.integer(f.sent_ns, "sent_ns");
}
bool get_fields(Reader &r, Pong &f) {
  return r.integer(f.id, "id") && r.integer(f.sent_ns, "sent_ns");
}
bool get_fields(Reader &r, Members &f) {
  std::uint32_t n = 0;
  if (!r.count(n, kMinMemberSize)) return false;
  f.members.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    Member &m = f.members[i];
    std::uint8_t state = 0;
    if (!(r.str(m.node, "node") && r.str(m.address, "address") &&
          r.integer(m.incarnation, "incarnation") && r.integer(state, "state")))
      return false;
    if (state != static_cast<std::uint8_t>(MemberState::kAlive) &&
        state != static_cast<std::uint8_t>(MemberState::kLeft))
      return r.fail("member " + std::to_string(i) + " has unknown state " + std::to_string(state));
    m.state = static_cast<MemberState>(state);
  }
  return true;
}
bool get_updates(Reader &r, std::vector<Update> &updates, std::size_t max) {
  std::uint32_t n = 0;
  if (!r.count(n, kMinUpdateSize, max)) return false;
  updates.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    Update &u = updates[i];
    std::uint8_t state = 0;
    if (!(r.str(u.node, "node") && r.str(u.address, "address") &&
          r.integer(u.incarnation, "incarnation") && r.integer(state, "state") &&
          r.str(u.from, "from")))
      return false;
    if (state < static_cast<std::uint8_t>(MemberState::kAlive) ||
        state > static_cast<std::uint8_t>(MemberState::kDead))
      return r.fail("member " + std::to_string(i) + " has unknown state " + std::to_string(state));
    u.state = static_cast<MemberState>(state);
  }
  return true;
}
bool get_fields(Reader &r, ProbeReq &f) {
  return r.integer(f.seq, "seq") && r.str(f.target, "target") && r.str(f.address, "address");
}
bool get_fields(Reader &r, ProbeAck &f) {
  return r.integer(f.seq, "seq") && r.boolean(f.nack, "nack");
}
bool get_fields(Reader &r, Gossip &f) {
  return get_updates(r, f.updates, kMaxGossipUpdates);
}
bool get_fields(Reader &r, State &f) {
  std::uint8_t flags = 0;
  if (!r.integer(flags, "flags")) return false;
  f.reply_wanted = (flags & 1u) != 0;
  f.join = (flags & 2u) != 0;  // other bits: reserved, ignored
  return get_updates(r, f.members, kMaxStateMembers);
}
bool get_fields(Reader &r, Neighbor &f) {
  std::uint8_t flags = 0;
  if (!r.integer(flags, "flags")) return false;
  f.high_priority = (flags & 1u) != 0;
  return true;
}
bool get_fields(Reader &r, NeighborReply &f) {
  return r.boolean(f.accepted, "accepted");
}
bool get_fields(Reader &, Disconnect &) {
  return true;
}
bool get_fields(Reader &, Leave &) {
  return true;
}
bool get_fields(Reader &r, Message &f) {
  return r.integer(f.id, "id") && r.blob(f.data, "data");
}
bool get_fields(Reader &r, Ack &f) {
  std::uint8_t status = 0;
  if (!(r.integer(f.id, "id") && r.integer(status, "status"))) return false;
  if (status > static_cast<std::uint8_t>(AckStatus::kMalformed))
    return r.fail("unknown status " + std::to_string(status));
  f.status = static_cast<AckStatus>(status);
  return r.str(f.reason, "reason");
}

template <class T>
bool decode_as(std::string_view payload, Frame &frame, std::string &error) {
  Reader r(payload, kTypeNames[type_of<T>() - 1], error);
  return get_fields(r, reuse<T>(frame)) && r.end();
}

using DecodeFn = bool (*)(std::string_view, Frame &, std::string &);
constexpr DecodeFn kDecoders[] = {
    decode_as<Hello>,         decode_as<Challenge>, decode_as<Auth>,  decode_as<Welcome>,
    decode_as<Reject>,        decode_as<Ping>,      decode_as<Pong>,  decode_as<Members>,
    decode_as<Leave>,         decode_as<Message>,   decode_as<Ack>,   decode_as<ProbeReq>,
    decode_as<ProbeAck>,      decode_as<Gossip>,    decode_as<State>, decode_as<Neighbor>,
    decode_as<NeighborReply>, decode_as<Disconnect>};
static_assert(std::size(kDecoders) == std::variant_size_v<Frame>);

// A reader's buffer larger than this is released once it is empty.
constexpr std::size_t kKeptBuffer = 256 * 1024;

// Moves the unconsumed bytes [begin, end) to the front of the buffer.
void compact(std::string &buffer, std::size_t &begin, std::size_t &end) {
  std::memmove(buffer.data(), buffer.data() + begin, end - begin);
  end -= begin;
  begin = 0;
}

std::string too_short(std::size_t length) {
  return "frame length " + std::to_string(length) + " is too short";
}

// "clusterd-overlay/1" ‖ str cluster ‖ nonce_d ‖ nonce_a ‖ str dialer_node ‖ str channel ‖
// u16 index, after `role`.
std::string transcript(std::string_view role, std::string_view cluster, const Bytes32 &dialer_nonce,
                       const Bytes32 &acceptor_nonce, std::string_view dialer_node,
                       std::string_view channel, std::uint16_t index) {
  std::string out(role);
  out.append("clusterd-overlay/1");
  put_str(out, cluster);
  put_bytes(out, dialer_nonce);
  put_bytes(out, acceptor_nonce);
  put_str(out, dialer_node);
  put_str(out, channel);
  put_int(out, index);
  return out;
}

}  // namespace

const char *type_name(const Frame &frame) {
  return kTypeNames[frame.index()];
}

void encode(const Frame &frame, std::string &out) {
  const std::size_t start = begin_frame(out, static_cast<std::uint8_t>(frame.index() + 1));
  std::visit([&out](const auto &f) { put_fields(out, f); }, frame);
  end_frame(out, start);
}

void encode_message(std::uint64_t id, std::string_view data, std::string &out) {
  out.reserve(out.size() + kHeaderSize + 8 + 4 + data.size());
  const std::size_t start = begin_frame(out, type_of<Message>());
  put_int(out, id);
  put_blob(out, data);
  end_frame(out, start);
}

bool decode(std::string_view body, Frame &frame, std::string &error) {
  if (body.size() < 2) {
    error = too_short(body.size());
    return false;
  }
  const auto version = static_cast<std::uint8_t>(body[0]);
  const auto type_byte = static_cast<std::uint8_t>(body[1]);
  // REJECT keeps its layout in every version: a newer peer's reason is readable here.
  if (version != kVersion && type_byte == static_cast<std::uint8_t>(Type::kReject))
    return kDecoders[type_byte - 1](body.substr(2), frame, error);
  if (version != kVersion) {
    error = "protocol version " + std::to_string(version) + " is not supported (this node speaks " +
            std::to_string(kVersion) + ")";
    return false;
  }
  const auto type = static_cast<std::uint8_t>(body[1]);
  if (type == 0 || type > std::size(kDecoders)) {
    error = "unknown frame type " + std::to_string(type);
    return false;
  }
  return kDecoders[type - 1](body.substr(2), frame, error);
}

FrameReader::FrameReader(std::size_t max_frame) : max_frame_(max_frame) {}

char *FrameReader::prepare(std::size_t n) {
  if (buffer_.size() - end_ < n) {
    // Compact first: what is buffered is less than a frame, so this moves little.
    if (begin_ > 0) compact(buffer_, begin_, end_);
    if (buffer_.size() - end_ < n) {
      // Doubling keeps growth amortised O(1) per byte; the cap keeps memory at one frame
      // plus one read.
      const std::size_t cap = std::max(buffer_.size() * 2, std::size_t{4096});
      const std::size_t bound = kLengthSize + max_frame_ + n;
      buffer_.resize(std::max(end_ + n, std::min(cap, bound)));
    }
  }
  return buffer_.data() + end_;
}

void FrameReader::commit(std::size_t n) {
  end_ += std::min(n, buffer_.size() - end_);
}

FrameReader::Result FrameReader::next(Frame &frame, std::string &error) {
  if (failed_) {
    error = failure_;
    return Result::kError;
  }
  const std::size_t available = end_ - begin_;
  if (available < kLengthSize) return Result::kNeedMore;
  const auto length = get_int<std::uint32_t>(buffer_.data() + begin_);
  if (length < 2 || length > max_frame_) {
    failed_ = true;
    failure_ = length < 2 ? too_short(length)
                          : "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                                std::to_string(max_frame_);
    error = failure_;
    return Result::kError;
  }
  if (available - kLengthSize < length) return Result::kNeedMore;
  // Decoded in place; the buffer moves only after the frame's fields were copied out.
  const bool ok =
      decode(std::string_view(buffer_.data() + begin_ + kLengthSize, length), frame, error);
  begin_ += kLengthSize + length;
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // After a burst of large frames, idle connections give the memory back.
    if (buffer_.size() > kKeptBuffer) std::string().swap(buffer_);
  } else if (begin_ > buffer_.size() / 2) {
    compact(buffer_, begin_, end_);
  }
  if (!ok) {
    failed_ = true;
    failure_ = error;
    return Result::kError;
  }
  return Result::kFrame;
}

std::string dialer_mac_input(std::string_view cluster, const Bytes32 &dialer_nonce,
                             const Bytes32 &acceptor_nonce, std::string_view dialer_node,
                             std::string_view channel, std::uint16_t index) {
  return transcript("dialer", cluster, dialer_nonce, acceptor_nonce, dialer_node, channel, index);
}

std::string acceptor_mac_input(std::string_view cluster, const Bytes32 &dialer_nonce,
                               const Bytes32 &acceptor_nonce, std::string_view dialer_node,
                               std::string_view channel, std::uint16_t index,
                               std::string_view acceptor_node) {
  std::string out =
      transcript("acceptor", cluster, dialer_nonce, acceptor_nonce, dialer_node, channel, index);
  put_str(out, acceptor_node);
  return out;
}

}  // namespace clusterd::partisan::wire
