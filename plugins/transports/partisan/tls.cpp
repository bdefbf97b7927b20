// libssl through dlopen: the declarations come from the OpenSSL headers (so every pointer has
// the exact type of the function it is resolved to); the plugin never links libssl.
#include "tls.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <climits>
#include <mutex>
#include <stdexcept>

namespace clusterd::partisan::tls {
namespace {

struct Api {
  // clang-format off
#define CLUSTERD_TLS_FUNCTIONS(X)                                                              \
  X(TLS_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl)                                 \
  X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file)                        \
  X(SSL_CTX_check_private_key) X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_verify)         \
  X(SSL_new) X(SSL_free) X(SSL_set_fd) X(SSL_set_connect_state) X(SSL_set_accept_state)        \
  X(SSL_do_handshake) X(SSL_read_ex) X(SSL_write_ex) X(SSL_get_error) X(SSL_pending)           \
  X(SSL_shutdown) X(SSL_get_verify_result) X(X509_verify_cert_error_string)                    \
  X(ERR_get_error) X(ERR_error_string_n) X(ERR_clear_error)
  // clang-format on
#define CLUSTERD_TLS_FIELD(name) decltype(&::name) name = nullptr;
  CLUSTERD_TLS_FUNCTIONS(CLUSTERD_TLS_FIELD)
#undef CLUSTERD_TLS_FIELD
};

Api g_api;
std::string g_error;
bool g_loaded = false;

void load_once() {
  void *library = ::dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char *why = ::dlerror();
    g_error = std::string("libssl (OpenSSL 3) is not available: ") +
              (why != nullptr ? why : "dlopen failed");
    return;
  }
  // dlsym on libssl's handle also finds its dependency libcrypto's symbols (ERR_*, X509_*).
#define CLUSTERD_TLS_RESOLVE(name)                                              \
  g_api.name = reinterpret_cast<decltype(g_api.name)>(::dlsym(library, #name)); \
  if (g_api.name == nullptr) {                                                  \
    g_error = "libssl.so.3 lacks " #name;                                       \
    g_api = Api{};                                                              \
    return;                                                                     \
  }
  CLUSTERD_TLS_FUNCTIONS(CLUSTERD_TLS_RESOLVE)
#undef CLUSTERD_TLS_RESOLVE
  g_loaded = true;
}

const Api &api() {
  if (!g_loaded) throw std::logic_error("tls used before a successful load()");
  return g_api;
}

// OpenSSL's queued errors as one line (and the queue emptied).
std::string openssl_errors() {
  std::string text;
  for (unsigned long e; (e = g_api.ERR_get_error()) != 0;) {
    char line[256];
    g_api.ERR_error_string_n(e, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? "unknown error" : text;
}

SSL *ssl_of(void *p) {
  return static_cast<SSL *>(p);
}

}  // namespace

bool load(std::string &error) {
  static std::once_flag once;
  std::call_once(once, load_once);
  if (!g_loaded) error = g_error;
  return g_loaded;
}

Context::Context(const std::string &cert_file, const std::string &key_file,
                 const std::string &ca_file) {
  const Api &a = api();
  a.ERR_clear_error();
  SSL_CTX *ctx = a.SSL_CTX_new(a.TLS_method());
  if (ctx == nullptr) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
  ctx_ = ctx;
  auto fail = [&](const std::string &what) {
    const std::string why = what + ": " + openssl_errors();
    a.SSL_CTX_free(ctx);
    ctx_ = nullptr;
    throw std::runtime_error(why);
  };
  a.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  // Writes of a partly sent buffer continue from a moved std::string (the connection's queue).
  a.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE,
                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, nullptr);
  if (a.SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    fail("tls_cert_file " + cert_file);
  if (a.SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("tls_key_file " + key_file);
  if (a.SSL_CTX_check_private_key(ctx) != 1)
    fail("tls_key_file " + key_file + " does not match tls_cert_file");
  if (a.SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1)
    fail("tls_ca_file " + ca_file);
  // Mutual: each side requires and verifies the other's certificate against the CA.
  a.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
}

Context::~Context() {
  if (ctx_ != nullptr) g_api.SSL_CTX_free(static_cast<SSL_CTX *>(ctx_));
}

Session::Session(const Context &context, int fd, bool client) {
  const Api &a = api();
  SSL *ssl = a.SSL_new(static_cast<SSL_CTX *>(context.raw()));
  if (ssl == nullptr) throw std::runtime_error("SSL_new: " + openssl_errors());
  ssl_ = ssl;
  a.SSL_set_fd(ssl, fd);
  if (client)
    a.SSL_set_connect_state(ssl);
  else
    a.SSL_set_accept_state(ssl);
}

Session::~Session() {
  if (ssl_ != nullptr) g_api.SSL_free(ssl_of(ssl_));
}

Session::Io Session::result(int rc, const char *what, std::string &error) {
  switch (g_api.SSL_get_error(ssl_of(ssl_), rc)) {
    case SSL_ERROR_NONE:
      return Io::kOk;
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    default: {
      const long verify = g_api.SSL_get_verify_result(ssl_of(ssl_));
      error = std::string("TLS ") + what + " failed: " + openssl_errors();
      if (verify != X509_V_OK)
        error +=
            std::string(" (peer certificate: ") + g_api.X509_verify_cert_error_string(verify) + ")";
      return Io::kError;
    }
  }
}

Session::Io Session::handshake(std::string &error) {
  g_api.ERR_clear_error();
  const int rc = g_api.SSL_do_handshake(ssl_of(ssl_));
  return rc == 1 ? Io::kOk : result(rc, "handshake", error);
}

Session::Io Session::read(char *buffer, std::size_t n, std::size_t *got, std::string &error) {
  g_api.ERR_clear_error();
  const int rc = g_api.SSL_read_ex(ssl_of(ssl_), buffer, n, got);
  return rc == 1 ? Io::kOk : result(rc, "read", error);
}

Session::Io Session::write(const char *buffer, std::size_t n, std::size_t *put,
                           std::string &error) {
  g_api.ERR_clear_error();
  const int rc = g_api.SSL_write_ex(ssl_of(ssl_), buffer, n, put);
  return rc == 1 ? Io::kOk : result(rc, "write", error);
}

bool Session::pending() const {
  return g_api.SSL_pending(ssl_of(ssl_)) > 0;
}

void Session::shutdown() {
  g_api.ERR_clear_error();
  (void)g_api.SSL_shutdown(ssl_of(ssl_));
  g_api.ERR_clear_error();
}

}  // namespace clusterd::partisan::tls
