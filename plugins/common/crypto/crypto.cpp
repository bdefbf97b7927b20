// libcrypto through dlopen: the declarations come from the OpenSSL headers (so every pointer
// has the exact type of the function it is resolved to), the code never links libcrypto.
#include "crypto.hpp"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace clusterd::crypto {
namespace {

struct Api {
  // clang-format off
#define CLUSTERD_CRYPTO_FUNCTIONS(X)                                                           \
  X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_ctrl)                         \
  X(EVP_CIPHER_CTX_set_padding) X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate)                    \
  X(EVP_EncryptFinal_ex) X(EVP_DecryptInit_ex) X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex)    \
  X(EVP_aes_256_cbc) X(EVP_aes_256_gcm) X(EVP_sha256) X(EVP_Digest) X(HMAC) X(RAND_bytes)
  // clang-format on
#define CLUSTERD_CRYPTO_FIELD(name) decltype(&::name) name = nullptr;
  CLUSTERD_CRYPTO_FUNCTIONS(CLUSTERD_CRYPTO_FIELD)
#undef CLUSTERD_CRYPTO_FIELD
};

Api g_api;
std::string g_error;
bool g_loaded = false;

void load_once() {
  // The SONAME of OpenSSL 3: the ABI these declarations describe.
  void *library = ::dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char *why = ::dlerror();
    g_error = std::string("libcrypto (OpenSSL 3) is not available: ") +
              (why != nullptr ? why : "dlopen failed");
    return;
  }
#define CLUSTERD_CRYPTO_RESOLVE(name)                                           \
  g_api.name = reinterpret_cast<decltype(g_api.name)>(::dlsym(library, #name)); \
  if (g_api.name == nullptr) {                                                  \
    g_error = "libcrypto.so.3 lacks " #name;                                    \
    g_api = Api{};                                                              \
    return;                                                                     \
  }
  CLUSTERD_CRYPTO_FUNCTIONS(CLUSTERD_CRYPTO_RESOLVE)
#undef CLUSTERD_CRYPTO_RESOLVE
  g_loaded = true;
}

const Api &api() {
  if (!g_loaded) throw std::logic_error("clusterd::crypto used before a successful load()");
  return g_api;
}

int int_size(std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::runtime_error("crypto: input too large");
  return static_cast<int>(n);
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX *ctx) const noexcept { g_api.EVP_CIPHER_CTX_free(ctx); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

Ctx new_ctx() {
  Ctx ctx(api().EVP_CIPHER_CTX_new());
  if (!ctx) throw std::runtime_error("crypto: EVP_CIPHER_CTX_new failed");
  return ctx;
}

void check(int ok, const char *what) {
  if (ok != 1) throw std::runtime_error(std::string("crypto: ") + what + " failed");
}

}  // namespace

bool load(std::string &error) {
  static std::once_flag once;
  std::call_once(once, load_once);
  error = g_error;
  return g_loaded;
}

ByteView bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t *>(text.data()), text.size()};
}

Digest sha256(ByteView data) {
  Digest out{};
  unsigned int size = 0;
  check(api().EVP_Digest(data.data(), data.size(), out.data(), &size, api().EVP_sha256(), nullptr),
        "SHA-256");
  return out;
}

Digest hmac_sha256(ByteView key, ByteView data) {
  Digest out{};
  unsigned int size = 0;
  if (api().HMAC(api().EVP_sha256(), key.data(), int_size(key.size()), data.data(), data.size(),
                 out.data(), &size) == nullptr)
    throw std::runtime_error("crypto: HMAC-SHA256 failed");
  return out;
}

void random_bytes(std::span<std::uint8_t> out) {
  check(api().RAND_bytes(out.data(), int_size(out.size())), "RAND_bytes");
}

Bytes aes256_cbc_encrypt(const Key256 &key, ByteView iv, ByteView plaintext) {
  if (iv.size() != kCbcIvSize) throw std::invalid_argument("crypto: CBC IV must be 16 bytes");
  const Api &a = api();
  Ctx ctx = new_ctx();
  check(a.EVP_EncryptInit_ex(ctx.get(), a.EVP_aes_256_cbc(), nullptr, key.data(), iv.data()),
        "AES-256-CBC init");
  Bytes out(plaintext.size() + 16);
  int n = 0, tail = 0;
  check(
      a.EVP_EncryptUpdate(ctx.get(), out.data(), &n, plaintext.data(), int_size(plaintext.size())),
      "AES-256-CBC update");
  check(a.EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &tail), "AES-256-CBC final");
  out.resize(static_cast<std::size_t>(n + tail));
  return out;
}

std::optional<Bytes> aes256_cbc_decrypt_raw(const Key256 &key, ByteView iv, ByteView ciphertext) {
  if (iv.size() != kCbcIvSize || ciphertext.empty() || ciphertext.size() % 16 != 0)
    return std::nullopt;
  const Api &a = api();
  Ctx ctx = new_ctx();
  if (a.EVP_DecryptInit_ex(ctx.get(), a.EVP_aes_256_cbc(), nullptr, key.data(), iv.data()) != 1 ||
      a.EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1)
    return std::nullopt;
  Bytes out(ciphertext.size() + 16);
  int n = 0, tail = 0;
  if (a.EVP_DecryptUpdate(ctx.get(), out.data(), &n, ciphertext.data(),
                          int_size(ciphertext.size())) != 1 ||
      a.EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &tail) != 1)
    return std::nullopt;
  out.resize(static_cast<std::size_t>(n + tail));
  return out;
}

Bytes aes256_gcm_seal(const Key256 &key, ByteView nonce, ByteView aad, ByteView plaintext) {
  if (nonce.size() != kGcmNonceSize)
    throw std::invalid_argument("crypto: GCM nonce must be 12 bytes");
  const Api &a = api();
  Ctx ctx = new_ctx();
  check(a.EVP_EncryptInit_ex(ctx.get(), a.EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()),
        "AES-256-GCM init");
  int n = 0, tail = 0;
  if (!aad.empty())
    check(a.EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), int_size(aad.size())),
          "AES-256-GCM aad");
  Bytes out(plaintext.size() + kGcmTagSize);
  check(
      a.EVP_EncryptUpdate(ctx.get(), out.data(), &n, plaintext.data(), int_size(plaintext.size())),
      "AES-256-GCM update");
  check(a.EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &tail), "AES-256-GCM final");
  const auto body = static_cast<std::size_t>(n + tail);
  check(a.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagSize),
                              out.data() + body),
        "AES-256-GCM tag");
  out.resize(body + kGcmTagSize);
  return out;
}

std::optional<Bytes> aes256_gcm_open(const Key256 &key, ByteView nonce, ByteView aad,
                                     ByteView sealed) {
  if (nonce.size() != kGcmNonceSize || sealed.size() < kGcmTagSize) return std::nullopt;
  const Api &a = api();
  Ctx ctx = new_ctx();
  const ByteView body = sealed.first(sealed.size() - kGcmTagSize);
  // The tag is set through a non-const pointer (OpenSSL copies it): copy it first.
  std::array<std::uint8_t, kGcmTagSize> tag{};
  std::copy(sealed.end() - kGcmTagSize, sealed.end(), tag.begin());
  int n = 0, tail = 0;
  if (a.EVP_DecryptInit_ex(ctx.get(), a.EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1)
    return std::nullopt;
  if (!aad.empty() &&
      a.EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), int_size(aad.size())) != 1)
    return std::nullopt;
  Bytes out(body.size() + 16);
  if (a.EVP_DecryptUpdate(ctx.get(), out.data(), &n, body.data(), int_size(body.size())) != 1 ||
      a.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagSize),
                            tag.data()) != 1 ||
      a.EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &tail) != 1)
    return std::nullopt;
  out.resize(static_cast<std::size_t>(n + tail));
  return out;
}

}  // namespace clusterd::crypto
