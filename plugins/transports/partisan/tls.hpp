// Mutual TLS for overlay connections, from libssl (OpenSSL 3) opened with dlopen when a
// transport configures TLS: like libcrypto (plugins/common/crypto), mapping libssl costs memory
// that a daemon without TLS should not pay. Non-blocking: the connection drives a Session from
// its fd readiness and learns from each call whether to wait for readable or writable.
#pragma once

#include <memory>
#include <string>

namespace clusterd::partisan::tls {

// Opens libssl.so.3 once (thread-safe). False with `error` saying why.
bool load(std::string &error);

// Credentials shared by every connection of a transport: this node's certificate chain and key,
// and the CA that every peer's certificate must chain to (both sides present one).
class Context {
 public:
  // Throws std::runtime_error naming the file and OpenSSL's reason. load() must have succeeded.
  Context(const std::string &cert_file, const std::string &key_file, const std::string &ca_file);
  ~Context();
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;
  void *raw() const { return ctx_; }  // SSL_CTX *

 private:
  void *ctx_ = nullptr;
};

// TLS on one connected non-blocking socket (the caller keeps and closes the fd).
class Session {
 public:
  enum class Io { kOk, kWantRead, kWantWrite, kClosed, kError };

  Session(const Context &context, int fd, bool client);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  // Advances the handshake: kOk once done. `error` says why on kError (a peer certificate that
  // does not verify names the reason).
  Io handshake(std::string &error);
  // Reads up to `n` bytes into `buffer`; `*got` is set on kOk. kClosed: the peer closed.
  Io read(char *buffer, std::size_t n, std::size_t *got, std::string &error);
  // Writes up to `n` bytes; `*put` is set on kOk (may be fewer than n).
  Io write(const char *buffer, std::size_t n, std::size_t *put, std::string &error);
  // Decrypted bytes buffered inside TLS: readable without the socket becoming readable.
  bool pending() const;
  // Sends close_notify, best effort (never waits).
  void shutdown();

 private:
  Io result(int rc, const char *what, std::string &error);
  void *ssl_ = nullptr;
};

}  // namespace clusterd::partisan::tls
