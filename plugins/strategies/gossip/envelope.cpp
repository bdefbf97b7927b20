#include "envelope.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace clusterd::gossip {
namespace {

crypto::Key256 derive(std::string_view label, crypto::ByteView material) {
  std::string input(label);
  input.push_back('\0');
  input.append(reinterpret_cast<const char *>(material.data()), material.size());
  return crypto::sha256(crypto::bytes(input));
}

void put_u64(std::string &out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

std::uint64_t get_u64(const std::uint8_t *p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

std::string as_string(crypto::ByteView b) {
  return std::string(reinterpret_cast<const char *>(b.data()), b.size());
}

}  // namespace

Envelope Envelope::libcluster(std::string_view secret) {
  Envelope e;
  e.mode_ = Mode::kLibcluster;
  e.cbc_key_ = crypto::sha256(crypto::bytes(secret));
  return e;
}

Envelope Envelope::aead(const std::vector<std::string> &keys, std::chrono::milliseconds window,
                        std::size_t max_nonces) {
  if (keys.empty()) throw std::invalid_argument("no key");
  if (window.count() <= 0 || max_nonces == 0)
    throw std::invalid_argument("the replay window and cache must not be empty");
  Envelope e;
  e.mode_ = Mode::kAead;
  e.window_ms_ = window.count();
  e.max_nonces_ = max_nonces;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].size() < kMinAeadKeySize)
      throw std::invalid_argument("key #" + std::to_string(i + 1) + " is shorter than " +
                                  std::to_string(kMinAeadKeySize) + " bytes");
    AeadKey k;
    k.key = derive("clusterd-gossip-v1 key", crypto::bytes(keys[i]));
    const crypto::Digest id = derive("clusterd-gossip-v1 id", k.key);
    std::copy_n(id.begin(), k.id.size(), k.id.begin());
    e.keys_.push_back(k);
  }
  return e;
}

const char *Envelope::mode_name() const noexcept {
  switch (mode_) {
    case Mode::kPlain:
      return "plain (libcluster-compatible, unauthenticated)";
    case Mode::kLibcluster:
      return "libcluster secret (AES-256-CBC, unauthenticated)";
    case Mode::kAead:
      return "authenticated (AES-256-GCM, replay window)";
  }
  return "?";
}

std::string Envelope::seal(std::string_view heartbeat, std::int64_t now_ms) const {
  std::array<std::uint8_t, crypto::kCbcIvSize> random{};
  switch (mode_) {
    case Mode::kPlain:
      return std::string(heartbeat);
    case Mode::kLibcluster:
      crypto::random_bytes(random);
      return seal_with(heartbeat, now_ms, random);
    case Mode::kAead:
      crypto::random_bytes(std::span(random).first(crypto::kGcmNonceSize));
      return seal_with(heartbeat, now_ms, std::span(random).first(crypto::kGcmNonceSize));
  }
  return {};
}

std::string Envelope::seal_with(std::string_view heartbeat, std::int64_t now_ms,
                                crypto::ByteView iv) const {
  if (mode_ == Mode::kPlain) return std::string(heartbeat);
  if (mode_ == Mode::kLibcluster)
    return as_string(iv) +
           as_string(crypto::aes256_cbc_encrypt(cbc_key_, iv, crypto::bytes(heartbeat)));
  const AeadKey &k = keys_.front();
  std::string header(kAeadMagic);
  header.append(reinterpret_cast<const char *>(k.id.data()), k.id.size());
  put_u64(header, static_cast<std::uint64_t>(now_ms));
  header += as_string(iv);
  return header + as_string(crypto::aes256_gcm_seal(k.key, iv, crypto::bytes(header),
                                                    crypto::bytes(heartbeat)));
}

bool Envelope::open(ByteView packet, std::int64_t now_ms, std::string &heartbeat, Drop &reason) {
  switch (mode_) {
    case Mode::kPlain:
      heartbeat = as_string(packet);
      return true;
    case Mode::kLibcluster:
      return open_cbc(packet, heartbeat, reason);
    case Mode::kAead:
      return open_aead(packet, now_ms, heartbeat, reason);
  }
  return false;
}

bool Envelope::open_cbc(ByteView packet, std::string &heartbeat, Drop &reason) const {
  if (packet.size() < crypto::kCbcIvSize) {
    reason = Drop::kTooShort;
    return false;
  }
  const ByteView body = packet.subspan(crypto::kCbcIvSize);
  if (body.empty() || body.size() % 16 != 0) {
    reason = Drop::kBadCiphertext;
    return false;
  }
  const auto plain =
      crypto::aes256_cbc_decrypt_raw(cbc_key_, packet.first(crypto::kCbcIvSize), body);
  if (!plain) {
    reason = Drop::kBadCiphertext;
    return false;
  }
  // PKCS#7, strictly: 1..16 bytes, all equal to their count (libcluster also lets 0 through).
  const std::uint8_t pad = plain->back();
  if (pad == 0 || pad > 16 ||
      !std::all_of(plain->end() - pad, plain->end(), [pad](std::uint8_t b) { return b == pad; })) {
    reason = Drop::kBadPadding;
    return false;
  }
  heartbeat.assign(reinterpret_cast<const char *>(plain->data()), plain->size() - pad);
  return true;
}

bool Envelope::open_aead(ByteView packet, std::int64_t now_ms, std::string &heartbeat,
                         Drop &reason) {
  if (packet.size() < kAeadMagic.size() ||
      as_string(packet.first(kAeadMagic.size())) != kAeadMagic) {
    reason = Drop::kBadMagic;
    return false;
  }
  if (packet.size() < kAeadHeaderSize + crypto::kGcmTagSize) {
    reason = Drop::kTooShort;
    return false;
  }
  const ByteView id = packet.subspan(4, 4);
  const auto key = std::find_if(keys_.begin(), keys_.end(), [&](const AeadKey &k) {
    return std::equal(id.begin(), id.end(), k.id.begin());
  });
  if (key == keys_.end()) {
    reason = Drop::kUnknownKey;
    return false;
  }
  const ByteView header = packet.first(kAeadHeaderSize);
  const ByteView nonce = header.subspan(16, crypto::kGcmNonceSize);
  const auto plain =
      crypto::aes256_gcm_open(key->key, nonce, header, packet.subspan(kAeadHeaderSize));
  if (!plain) {
    reason = Drop::kAuthFailed;
    return false;
  }
  const auto timestamp = static_cast<std::int64_t>(get_u64(header.data() + 8));
  if (!fresh_nonce(timestamp, now_ms, as_string(nonce), reason)) return false;
  heartbeat = as_string(*plain);
  return true;
}

bool Envelope::fresh_nonce(std::int64_t timestamp, std::int64_t now_ms, std::string nonce,
                           Drop &reason) {
  // Bounds from our own clock, so a forged extreme timestamp cannot overflow anything.
  if (timestamp < now_ms - window_ms_ || timestamp > now_ms + window_ms_) {
    reason = Drop::kStale;
    return false;
  }
  // Forget what left the window: such packets are refused as stale anyway.
  while (!by_time_.empty() && now_ms - by_time_.begin()->first > window_ms_) {
    nonces_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
  if (timestamp <= floor_ || nonces_.count(nonce) != 0) {
    reason = Drop::kReplay;
    return false;
  }
  nonces_.insert(nonce);
  by_time_.emplace(timestamp, std::move(nonce));
  if (by_time_.size() > max_nonces_) {
    // Full: forget the oldest and refuse anything not newer, so that it cannot come back.
    floor_ = std::max(floor_, by_time_.begin()->first);
    nonces_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
  return true;
}

}  // namespace clusterd::gossip
