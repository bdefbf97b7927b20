// The gossip heartbeat codec: libcluster's datagram "heartbeat::" ++ term_to_binary(#{node =>
// Node}), encoded as OTP 25 does and decoded strictly (every length bounded, nothing read past
// the packet), and the reasons a datagram is dropped. Pure code: no I/O, no crypto.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace clusterd::gossip {

using ByteView = std::span<const std::uint8_t>;

inline constexpr std::string_view kPrefix = "heartbeat::";
// An atom holds at most 255 characters; node names are atoms.
inline constexpr std::size_t kMaxNodeName = 255;

// Why a datagram was dropped. Codec reasons first, then the crypto envelope's.
enum class Drop : std::uint8_t {
  kNoPrefix,         // does not start with "heartbeat::"
  kTruncated,        // a length or element points past the end of the packet
  kBadVersion,       // the term does not start with 131
  kNotAMap,          // a well-formed term other than a map (libcluster ignores these too)
  kBadMap,           // a map with no pair or more pairs than a heartbeat has any use for
  kNoNodeKey,        // no `node` key
  kBadAtom,          // an atom with a bad tag, length or UTF-8
  kUnsupportedTerm,  // a map value of a type the decoder does not skip
  kTrailingBytes,    // bytes after the term
  kBadNodeName,      // `node` is not name@host (empty part, control characters, too long)
  kOversize,         // larger than any heartbeat (the read buffer)
  kTooShort,         // envelope: shorter than its header (IV, nonce, tag)
  kBadCiphertext,    // envelope CBC: ciphertext not a non-empty multiple of 16 bytes
  kBadPadding,       // envelope CBC: PKCS#7 padding wrong: a different secret, or tampering
  kBadMagic,         // envelope AEAD: not a clusterd authenticated heartbeat
  kUnknownKey,       // envelope AEAD: sealed with a key that is not configured
  kAuthFailed,       // envelope AEAD: the tag does not verify (wrong key or tampered)
  kStale,            // envelope AEAD: timestamp outside the replay window
  kReplay,           // envelope AEAD: nonce already seen within the window
  kTooManyPeers,     // plugin: a new node while the peer table is full
  kCount
};
inline constexpr std::size_t kDropCount = static_cast<std::size_t>(Drop::kCount);

// "no_prefix", "auth_failed", ...: for counters, status keys and logs.
const char *drop_name(Drop reason) noexcept;

// Atom encodings of term_to_binary: OTP <= 25 writes Latin-1 atoms as ATOM_EXT (100) (and only
// atoms with characters above 255 as UTF-8); OTP >= 26 writes SMALL_ATOM_UTF8_EXT (119).
enum class AtomEncoding { kOtp25, kOtp26 };

// True for a name a heartbeat may carry: a node name by the SDK's rule (clusterd/node_name.h)
// other than "nonode@nohost", which a node without distribution calls itself.
bool announceable(std::string_view node) noexcept;

// The heartbeat datagram for `node` (which must be announceable; throws
// std::invalid_argument otherwise).
std::string encode_heartbeat(std::string_view node, AtomEncoding encoding = AtomEncoding::kOtp25);

// Decodes one heartbeat: true with the sender's node name (as UTF-8), or false with the reason.
// Never reads outside `packet`, never allocates more than kMaxNodeName-sized strings.
bool decode_heartbeat(ByteView packet, std::string &node, Drop &reason);

}  // namespace clusterd::gossip
