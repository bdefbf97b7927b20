#include "heartbeat.hpp"

#include <clusterd/node_name.h>

#include <stdexcept>

namespace clusterd::gossip {
namespace {

// External term format tags (erts/emulator/beam/external.h).
constexpr std::uint8_t kVersion = 131;
constexpr std::uint8_t kMapExt = 116;
constexpr std::uint8_t kAtomExt = 100;
constexpr std::uint8_t kSmallAtomExt = 115;
constexpr std::uint8_t kAtomUtf8Ext = 118;
constexpr std::uint8_t kSmallAtomUtf8Ext = 119;
constexpr std::uint8_t kSmallIntegerExt = 97;
constexpr std::uint8_t kIntegerExt = 98;
constexpr std::uint8_t kNilExt = 106;
constexpr std::uint8_t kBinaryExt = 109;

// A heartbeat has one pair; libcluster accepts maps with more keys, so do we, up to a bound.
constexpr std::uint32_t kMaxPairs = 16;
constexpr std::size_t kMaxAtomChars = 255;

// Decodes one UTF-8 code point at s[i]; false if malformed (overlong, surrogate, > U+10FFFF).
bool next_code_point(std::string_view s, std::size_t &i, std::uint32_t &cp) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t b0 = byte(i);
  std::size_t n = 0;
  if (b0 < 0x80) {
    cp = b0;
    n = 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    cp = b0 & 0x1Fu;
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    cp = b0 & 0x0Fu;
    n = 3;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    cp = b0 & 0x07u;
    n = 4;
  } else {
    return false;
  }
  if (s.size() - i < n) return false;
  for (std::size_t k = 1; k < n; ++k) {
    const std::uint8_t b = byte(i + k);
    if ((b & 0xC0u) != 0x80u) return false;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return false;
  i += n;
  return true;
}

// Number of code points of valid UTF-8 `s`, or npos when malformed.
std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++count) {
    std::uint32_t cp = 0;
    if (!next_code_point(s, i, cp)) return std::string_view::npos;
  }
  return count;
}

void append_utf8(std::string &out, std::uint8_t latin1) {
  if (latin1 < 0x80) {
    out.push_back(static_cast<char>(latin1));
  } else {
    out.push_back(static_cast<char>(0xC0 | (latin1 >> 6)));
    out.push_back(static_cast<char>(0x80 | (latin1 & 0x3F)));
  }
}

// A bounds-checked reader over the packet.
class Reader {
 public:
  explicit Reader(ByteView data) noexcept : data_(data) {}
  std::size_t left() const noexcept { return data_.size() - pos_; }
  bool u8(std::uint8_t &v) noexcept {
    if (left() < 1) return false;
    v = data_[pos_++];
    return true;
  }
  bool u16(std::uint32_t &v) noexcept {
    if (left() < 2) return false;
    v = (std::uint32_t{data_[pos_]} << 8) | data_[pos_ + 1];
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t &v) noexcept {
    if (left() < 4) return false;
    v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
        (std::uint32_t{data_[pos_ + 2]} << 8) | data_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  bool take(std::size_t n, ByteView &out) noexcept {
    if (left() < n) return false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::size_t n) noexcept {
    ByteView ignored;
    return take(n, ignored);
  }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

bool is_atom_tag(std::uint8_t tag) noexcept {
  return tag == kAtomExt || tag == kSmallAtomExt || tag == kAtomUtf8Ext || tag == kSmallAtomUtf8Ext;
}

// Reads the atom after `tag` as UTF-8 into `out`; false with the reason.
bool read_atom(Reader &in, std::uint8_t tag, std::string &out, Drop &reason) {
  std::uint32_t length = 0;
  const bool small = tag == kSmallAtomExt || tag == kSmallAtomUtf8Ext;
  const bool utf8 = tag == kAtomUtf8Ext || tag == kSmallAtomUtf8Ext;
  bool ok = false;
  if (small) {
    std::uint8_t b = 0;
    ok = in.u8(b);
    length = b;
  } else {
    ok = in.u16(length);
  }
  if (!ok) {
    reason = Drop::kTruncated;
    return false;
  }
  // Erlang refuses atoms longer than 255 characters: 255 bytes in Latin-1, 1020 in UTF-8.
  if (length > (utf8 ? 4 * kMaxAtomChars : kMaxAtomChars)) {
    reason = Drop::kBadAtom;
    return false;
  }
  ByteView text;
  if (!in.take(length, text)) {
    reason = Drop::kTruncated;
    return false;
  }
  out.clear();
  if (utf8) {
    out.assign(reinterpret_cast<const char *>(text.data()), text.size());
    const std::size_t chars = utf8_length(out);
    if (chars == std::string_view::npos || chars > kMaxAtomChars) {
      reason = Drop::kBadAtom;
      return false;
    }
  } else {
    for (const std::uint8_t b : text) append_utf8(out, b);
  }
  return true;
}

// Skips a map value that is not the node: atoms, small integers, binaries and [] only.
bool skip_value(Reader &in, Drop &reason) {
  std::uint8_t tag = 0;
  if (!in.u8(tag)) {
    reason = Drop::kTruncated;
    return false;
  }
  std::uint32_t length = 0;
  std::string ignored;
  switch (tag) {
    case kAtomExt:
    case kSmallAtomExt:
    case kAtomUtf8Ext:
    case kSmallAtomUtf8Ext:
      return read_atom(in, tag, ignored, reason);
    case kSmallIntegerExt:
      if (in.skip(1)) return true;
      break;
    case kIntegerExt:
      if (in.skip(4)) return true;
      break;
    case kNilExt:
      return true;
    case kBinaryExt:
      if (in.u32(length) && in.skip(length)) return true;
      break;
    default:
      reason = Drop::kUnsupportedTerm;
      return false;
  }
  reason = Drop::kTruncated;
  return false;
}

void put_atom(std::string &out, std::string_view utf8, AtomEncoding encoding) {
  // Latin-1 when every character fits (OTP 25's choice); the name is valid UTF-8 here.
  std::string latin1;
  bool fits = true;
  for (std::size_t i = 0; i < utf8.size() && fits;) {
    std::uint32_t cp = 0;
    if (!next_code_point(utf8, i, cp)) throw std::invalid_argument("atom is not UTF-8");
    if (cp > 0xFF)
      fits = false;
    else
      latin1.push_back(static_cast<char>(cp));
  }
  if (encoding == AtomEncoding::kOtp25 && fits) {
    out.push_back(static_cast<char>(kAtomExt));
    out.push_back(static_cast<char>(latin1.size() >> 8));
    out.push_back(static_cast<char>(latin1.size() & 0xFF));
    out += latin1;
  } else if (utf8.size() <= 0xFF) {
    out.push_back(static_cast<char>(kSmallAtomUtf8Ext));
    out.push_back(static_cast<char>(utf8.size()));
    out += utf8;
  } else {
    out.push_back(static_cast<char>(kAtomUtf8Ext));
    out.push_back(static_cast<char>(utf8.size() >> 8));
    out.push_back(static_cast<char>(utf8.size() & 0xFF));
    out += utf8;
  }
}

}  // namespace

const char *drop_name(Drop reason) noexcept {
  switch (reason) {
    case Drop::kNoPrefix:
      return "no_prefix";
    case Drop::kTruncated:
      return "truncated";
    case Drop::kBadVersion:
      return "bad_version";
    case Drop::kNotAMap:
      return "not_a_map";
    case Drop::kBadMap:
      return "bad_map";
    case Drop::kNoNodeKey:
      return "no_node_key";
    case Drop::kBadAtom:
      return "bad_atom";
    case Drop::kUnsupportedTerm:
      return "unsupported_term";
    case Drop::kTrailingBytes:
      return "trailing_bytes";
    case Drop::kBadNodeName:
      return "bad_node_name";
    case Drop::kOversize:
      return "oversize";
    case Drop::kTooShort:
      return "too_short";
    case Drop::kBadCiphertext:
      return "bad_ciphertext";
    case Drop::kBadPadding:
      return "bad_padding";
    case Drop::kBadMagic:
      return "bad_magic";
    case Drop::kUnknownKey:
      return "unknown_key";
    case Drop::kAuthFailed:
      return "auth_failed";
    case Drop::kStale:
      return "stale";
    case Drop::kReplay:
      return "replay";
    case Drop::kTooManyPeers:
      return "too_many_peers";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

bool announceable(std::string_view node) noexcept {
  return clusterd_node_name_parse(node.data(), node.size(), nullptr) == CLUSTERD_NODE_NAME_OK &&
         node != "nonode@nohost";  // a node that is not distributed: it can never be connected
}

std::string encode_heartbeat(std::string_view node, AtomEncoding encoding) {
  if (!announceable(node)) throw std::invalid_argument("not a valid node name");
  std::string out(kPrefix);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(kMapExt));
  out.append("\x00\x00\x00\x01", 4);
  put_atom(out, "node", encoding);
  put_atom(out, node, encoding);
  return out;
}

bool decode_heartbeat(ByteView packet, std::string &node, Drop &reason) {
  const auto fail = [&](Drop why) {
    reason = why;
    return false;
  };
  if (packet.size() < kPrefix.size() ||
      std::string_view(reinterpret_cast<const char *>(packet.data()), kPrefix.size()) != kPrefix)
    return fail(Drop::kNoPrefix);
  Reader in(packet.subspan(kPrefix.size()));
  std::uint8_t version = 0, tag = 0;
  if (!in.u8(version)) return fail(Drop::kTruncated);
  if (version != kVersion) return fail(Drop::kBadVersion);
  if (!in.u8(tag)) return fail(Drop::kTruncated);
  if (tag != kMapExt) return fail(Drop::kNotAMap);
  std::uint32_t pairs = 0;
  if (!in.u32(pairs)) return fail(Drop::kTruncated);
  if (pairs == 0 || pairs > kMaxPairs) return fail(Drop::kBadMap);

  bool found = false;
  std::string key, value;
  for (std::uint32_t i = 0; i < pairs; ++i) {
    if (!in.u8(tag)) return fail(Drop::kTruncated);
    if (!is_atom_tag(tag)) return fail(Drop::kUnsupportedTerm);
    if (!read_atom(in, tag, key, reason)) return false;
    if (key != "node") {
      if (!skip_value(in, reason)) return false;
      continue;
    }
    if (found) return fail(Drop::kBadMap);  // a map never holds a key twice
    if (!in.u8(tag)) return fail(Drop::kTruncated);
    if (!is_atom_tag(tag)) return fail(Drop::kBadNodeName);
    if (!read_atom(in, tag, value, reason)) return false;
    found = true;
  }
  if (in.left() != 0) return fail(Drop::kTrailingBytes);
  if (!found) return fail(Drop::kNoNodeKey);
  if (!announceable(value)) return fail(Drop::kBadNodeName);
  node = std::move(value);
  return true;
}

}  // namespace clusterd::gossip
