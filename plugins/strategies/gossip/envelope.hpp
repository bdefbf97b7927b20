// The crypto envelope around a gossip heartbeat, one of three modes:
//  - plain: the heartbeat itself (libcluster without `secret`);
//  - libcluster: 16-byte IV ++ AES-256-CBC(key = SHA-256(secret), PKCS#7) of the heartbeat,
//    byte for byte libcluster's `secret` mode (unauthenticated: kept for compatibility only);
//  - aead: clusterd's authenticated format (below), with a replay window, a seen-nonce cache
//    and key rotation (the first key seals, every key opens).
//
// AEAD datagram (all integers big-endian):
//   "CDG" 0x01 | key id (4) | timestamp, Unix ms (8) | nonce (12) | AES-256-GCM(heartbeat) | tag
//   (16)
// The first 28 bytes are the associated data, so the timestamp and key id are authenticated.
// key = SHA-256("clusterd-gossip-v1 key" 0x00 ++ configured key); key id = the first 4 bytes of
// SHA-256("clusterd-gossip-v1 id" 0x00 ++ key): a hint to pick the key, not a secret.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "heartbeat.hpp"

namespace clusterd::gossip {

inline constexpr std::string_view kAeadMagic{"CDG\x01", 4};
inline constexpr std::size_t kAeadHeaderSize = 4 + 4 + 8 + crypto::kGcmNonceSize;
// Configured AEAD keys must be at least this long: they are used as they are, not stretched.
inline constexpr std::size_t kMinAeadKeySize = 16;

class Envelope {
 public:
  enum class Mode { kPlain, kLibcluster, kAead };

  // Plain mode: no crypto at all.
  Envelope() = default;
  // The modes below need a successful crypto::load() first.
  static Envelope libcluster(std::string_view secret);
  // `keys` non-empty, each >= kMinAeadKeySize bytes (throws std::invalid_argument otherwise).
  // Packets whose timestamp is more than `window` away from now are stale; up to `max_nonces`
  // nonces are remembered (when full, the oldest is forgotten and nothing older is accepted).
  static Envelope aead(const std::vector<std::string> &keys, std::chrono::milliseconds window,
                       std::size_t max_nonces = 8192);

  Mode mode() const noexcept { return mode_; }
  const char *mode_name() const noexcept;

  // The datagram for `heartbeat`, with a fresh random IV / nonce; `now_ms` = Unix time in ms.
  std::string seal(std::string_view heartbeat, std::int64_t now_ms) const;
  // The same with a given IV (16 bytes, libcluster) or nonce (12 bytes, aead): for tests.
  std::string seal_with(std::string_view heartbeat, std::int64_t now_ms, crypto::ByteView iv) const;

  // Unwraps `packet`: true with the heartbeat inside, or false with the reason. Nothing of an
  // unauthenticated AEAD packet is used; only authentic ones enter the replay cache.
  bool open(ByteView packet, std::int64_t now_ms, std::string &heartbeat, Drop &reason);

 private:
  struct AeadKey {
    crypto::Key256 key;
    std::array<std::uint8_t, 4> id;
  };
  bool open_cbc(ByteView packet, std::string &heartbeat, Drop &reason) const;
  bool open_aead(ByteView packet, std::int64_t now_ms, std::string &heartbeat, Drop &reason);
  bool fresh_nonce(std::int64_t timestamp, std::int64_t now_ms, std::string nonce, Drop &reason);

  Mode mode_ = Mode::kPlain;
  crypto::Key256 cbc_key_{};
  std::vector<AeadKey> keys_;
  std::int64_t window_ms_ = 0;
  std::size_t max_nonces_ = 0;
  // The replay cache: nonces of authentic packets by timestamp, and the timestamp at or below
  // which nothing is accepted any more (raised when the cache overflows).
  std::multimap<std::int64_t, std::string> by_time_;
  std::set<std::string> nonces_;
  std::int64_t floor_ = std::numeric_limits<std::int64_t>::min();
};

}  // namespace clusterd::gossip
