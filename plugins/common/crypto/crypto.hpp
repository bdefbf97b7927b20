// clusterd_crypto: the few OpenSSL primitives plugins need (SHA-256, HMAC-SHA256, random bytes,
// AES-256-CBC, AES-256-GCM), with libcrypto opened by dlopen on first use instead of linked.
//
// Why lazy: merely mapping libcrypto.so.3 costs ~1.5 MB of resident memory, and most daemons
// never need it (the host does the same for libcurl: host/src/services/curl_api.cpp). Call
// load() where crypto is configured (a plugin's init) and fail with its error; every other
// function needs a successful load() first (they throw std::logic_error otherwise).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace clusterd::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Digest = std::array<std::uint8_t, 32>;
using Key256 = std::array<std::uint8_t, 32>;

inline constexpr std::size_t kCbcIvSize = 16;
inline constexpr std::size_t kGcmNonceSize = 12;
inline constexpr std::size_t kGcmTagSize = 16;

// Opens libcrypto.so.3 once (thread-safe, never unloaded). False with `error` saying why.
bool load(std::string &error);

// The bytes of a string, as a ByteView.
ByteView bytes(std::string_view text);

// Throw std::runtime_error if OpenSSL fails (it does not for valid input).
Digest sha256(ByteView data);
Digest hmac_sha256(ByteView key, ByteView data);
void random_bytes(std::span<std::uint8_t> out);

// AES-256-CBC with PKCS#7 padding added: the result is a multiple of 16 bytes.
Bytes aes256_cbc_encrypt(const Key256 &key, ByteView iv, ByteView plaintext);
// AES-256-CBC without touching the padding (the caller checks it): nullopt when `ciphertext`
// is not a non-empty multiple of 16 bytes or `iv` is not 16 bytes.
std::optional<Bytes> aes256_cbc_decrypt_raw(const Key256 &key, ByteView iv, ByteView ciphertext);

// AES-256-GCM: ciphertext followed by the 16-byte tag; `nonce` is 12 bytes.
Bytes aes256_gcm_seal(const Key256 &key, ByteView nonce, ByteView aad, ByteView plaintext);
// nullopt when the tag does not verify (wrong key, tampered, truncated).
std::optional<Bytes> aes256_gcm_open(const Key256 &key, ByteView nonce, ByteView aad,
                                     ByteView sealed);

}  // namespace clusterd::crypto
