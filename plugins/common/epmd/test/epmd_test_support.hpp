// Test support for the EPMD client and the EPMD strategies: a FAKE EPMD, a TCP server on
// 127.0.0.1 (or ::1) at an ephemeral port that answers correctly or misbehaves on purpose,
// driven by the shared loop host of tests/support/plugin_test_host.hpp (which also brings the
// fake DNS, the config fake and the plugin loader). Header-only; test code only (it uses gtest).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <clusterd/clusterd.h>

#include "epmd.hpp"
#include "plugin_test_host.hpp"

namespace epmd_test {

// ---- The fake EPMD ------------------------------------------------------------------------------

// How the fake EPMD treats a connection.
enum class Mode {
  answer,         // a correct reply, then close
  answer_open,    // a correct reply, but keep the connection open (PORT2 completes anyway)
  dribble,        // a correct reply, one byte per loop turn, then close
  truncate,       // the first `truncate_at` bytes of the correct reply, then close
  raw,            // `raw_reply` as is, then close
  oversize,       // a valid NAMES header and more than kMaxReplyBytes of valid lines
  hang,           // read the request, never answer, keep the connection open
  no_accept,      // never accept (the kernel completes the handshake; nothing is read)
  close_at_once,  // accept and close without reading or answering
  refuse,         // the port is bound but not listening: connection refused
};

class FakeEpmd {
 public:
  // Listens on `address` (127.0.0.1 or ::1) at `port` (0: an ephemeral one).
  explicit FakeEpmd(clusterd_test::LoopHost &loop, Mode mode = Mode::answer,
                    const std::string &address = "127.0.0.1", uint16_t port = 0)
      : loop_(loop), mode_(mode) {
    const bool ipv6 = address.find(':') != std::string::npos;
    listen_fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(listen_fd_, 0) << std::strerror(errno);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ipv6) ::setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (ipv6) {
      auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
      a->sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
      a->sin6_port = htons(port);
      len = sizeof *a;
    } else {
      auto *a = reinterpret_cast<sockaddr_in *>(&ss);
      a->sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &a->sin_addr);
      a->sin_port = htons(port);
      len = sizeof *a;
    }
    ok_ = ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&ss), len) == 0;
    EXPECT_TRUE(ok_) << "bind: " << std::strerror(errno);
    socklen_t got = sizeof ss;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&ss), &got);
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                       : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    if (mode_ == Mode::refuse) return;  // bound, never listening
    EXPECT_EQ(::listen(listen_fd_, 64), 0) << std::strerror(errno);
    if (mode_ == Mode::no_accept) return;
    loop_.add_test_fd(listen_fd_, POLLIN, [this](short) { accept_all(); });
  }
  ~FakeEpmd() {
    for (auto &c : conns_) {
      loop_.remove_test_fd(c.first);
      ::close(c.first);
    }
    loop_.remove_test_fd(listen_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  FakeEpmd(const FakeEpmd &) = delete;
  FakeEpmd &operator=(const FakeEpmd &) = delete;

  uint16_t port() const { return port_; }
  bool ok() const { return ok_; }
  void set_mode(Mode m) { mode_ = m; }

  // The registry the correct replies come from.
  std::vector<clusterd::epmd::Registered> names;
  std::size_t truncate_at = 0;
  std::string raw_reply;
  // What arrived: every complete request body (after the 2-byte length), in order.
  std::vector<std::string> requests;
  std::size_t accepted = 0;

  // The correct reply to request body `body`.
  std::string reply_to(const std::string &body) const {
    std::string out;
    if (body == "n") {
      out = {0, 0, static_cast<char>(port_ >> 8), static_cast<char>(port_ & 0xff)};
      for (const auto &n : names)
        out += "name " + n.name + " at port " + std::to_string(n.port) + "\n";
      return out;
    }
    if (!body.empty() && body[0] == 'z') {
      const std::string alive = body.substr(1);
      for (const auto &n : names)
        if (n.name == alive) {
          out = {119,
                 0,
                 static_cast<char>(n.port >> 8),
                 static_cast<char>(n.port & 0xff),
                 77,
                 0,
                 0,
                 6,
                 0,
                 5,
                 static_cast<char>(alive.size() >> 8),
                 static_cast<char>(alive.size() & 0xff)};
          out += alive;
          out += std::string(2, '\0');
          return out;
        }
      return std::string{119, 1};
    }
    return {};  // unknown request: EPMD closes
  }

 private:
  struct Conn {
    std::string in, out;
    std::size_t sent = 0;
    bool replying = false;
    bool keep_open = false;
    bool dribble = false;
  };

  void accept_all() {
    for (int i = 0; i < 64; ++i) {  // bounded: at most 64 per turn
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++accepted;
      if (mode_ == Mode::close_at_once) {
        ::close(fd);
        continue;
      }
      conns_[fd] = Conn{};
      loop_.add_test_fd(fd, POLLIN, [this, fd](short revents) { serve(fd, revents); });
    }
  }

  void drop(int fd) {
    loop_.remove_test_fd(fd);
    ::close(fd);
    conns_.erase(fd);
  }

  void serve(int fd, short revents) {
    Conn &c = conns_.at(fd);
    if (c.replying && !(revents & POLLOUT)) {  // hang-up or error after (or while) replying
      drop(fd);
      return;
    }
    if (!c.replying) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
        return;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (c.in.size() < 2) return;
      const std::size_t length =
          (static_cast<unsigned char>(c.in[0]) << 8) | static_cast<unsigned char>(c.in[1]);
      if (c.in.size() < 2 + length) return;
      const std::string body = c.in.substr(2, length);
      requests.push_back(body);
      if (mode_ == Mode::hang) {
        loop_.set_test_fd_events(fd, 0);  // keep it open, do nothing
        return;
      }
      c.out = compose(body);
      c.replying = true;
      c.keep_open = mode_ == Mode::answer_open;
      c.dribble = mode_ == Mode::dribble;
      loop_.set_test_fd_events(fd, POLLOUT);
      return;
    }
    if (c.sent < c.out.size()) {
      const std::size_t chunk = c.dribble ? 1 : c.out.size() - c.sent;
      const ssize_t n = ::send(fd, c.out.data() + c.sent, chunk, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) drop(fd);  // the client gave up (EPIPE, RST)
        return;
      }
      c.sent += static_cast<std::size_t>(n);
    }
    if (c.sent == c.out.size()) {
      if (c.keep_open) {
        loop_.set_test_fd_events(fd, 0);
      } else {
        drop(fd);
      }
    }
  }

  std::string compose(const std::string &body) const {
    switch (mode_) {
      case Mode::truncate:
        return reply_to(body).substr(0, truncate_at);
      case Mode::raw:
        return raw_reply;
      case Mode::oversize: {
        std::string out = {0, 0, 0x11, 0x11};
        const std::string line = "name filler at port 1\n";
        while (out.size() <= clusterd::epmd::kMaxReplyBytes + 4096) out += line;
        return out;
      }
      default:
        return reply_to(body);
    }
  }

  clusterd_test::LoopHost &loop_;
  Mode mode_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
  std::map<int, Conn> conns_;
};

// True when this machine has an IPv6 loopback to bind to.
inline bool have_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port free on both 127.0.0.1 and ::1 right now (for a pair of fakes on one port), or 0.
inline uint16_t port_free_on_both() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int v6 = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int v4 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a6;
    uint16_t port = 0;
    if (::bind(v6, reinterpret_cast<sockaddr *>(&a6), sizeof a6) == 0 &&
        ::getsockname(v6, reinterpret_cast<sockaddr *>(&a6), &len) == 0) {
      sockaddr_in a4{};
      a4.sin_family = AF_INET;
      a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a4.sin_port = a6.sin6_port;
      if (::bind(v4, reinterpret_cast<sockaddr *>(&a4), sizeof a4) == 0) port = ntohs(a6.sin6_port);
    }
    ::close(v4);
    ::close(v6);
    if (port != 0) return port;
  }
  return 0;
}

}  // namespace epmd_test
