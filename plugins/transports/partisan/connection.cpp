#include "connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "batch.hpp"
#include "crypto.hpp"

namespace clusterd::partisan {
namespace {

constexpr std::size_t kReadChunk = 65536;
constexpr int kReadsPerEvent = 16;  // then yield to the loop (level-triggered: we come back)
constexpr std::size_t kHandshakeFrame = 4096;      // no large frame before the peer is proven
constexpr std::size_t kKeptCapacity = 256 * 1024;  // send buffer kept between bursts

wire::Bytes32 random_nonce() {
  wire::Bytes32 nonce{};
  std::size_t got = 0;
  while (got < nonce.size()) {  // getrandom on a 32-byte buffer returns it whole or EINTR
    const ssize_t n = ::getrandom(nonce.data() + got, nonce.size() - got, 0);
    if (n > 0)
      got += static_cast<std::size_t>(n);
    else if (errno != EINTR)
      throw Error(CLUSTERD_E_GENERIC, "getrandom failed");
  }
  return nonce;
}

bool same_mac(const wire::Bytes32 &a, const wire::Bytes32 &b) {
  unsigned char diff = 0;  // constant time: no early exit on the first differing byte
  for (std::size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

void tune(int fd) {
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // frames are latency-bound
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
}

}  // namespace

std::optional<Endpoint> parse_endpoint(const std::string &text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const unsigned long number = std::stoul(port);
  if (number == 0 || number > 65535) return std::nullopt;
  if (host == "localhost") host = "127.0.0.1";
  Endpoint e;
  auto *v4 = reinterpret_cast<sockaddr_in *>(&e.addr);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&e.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(number));
    e.length = sizeof(sockaddr_in);
    e.text = host + ":" + port;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(number));
    e.length = sizeof(sockaddr_in6);
    e.text = "[" + host + "]:" + port;
  } else {
    return std::nullopt;
  }
  return e;
}

Connection::Connection(Host &host, const Identity &self, Role role, int fd, std::string peer_text,
                       std::size_t max_frame, Events events)
    : host_(host),
      self_(self),
      role_(role),
      fd_(fd),
      peer_text_(std::move(peer_text)),
      events_(std::move(events)),
      reader_(std::min(max_frame, kHandshakeFrame)),
      max_frame_(max_frame) {}

Connection::~Connection() {
  watch_ = FdWatch();
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<Connection> Connection::dial(Host &host, const Identity &self, const Endpoint &to,
                                             std::string expect_node, std::string channel,
                                             std::uint16_t index, std::size_t max_frame,
                                             std::chrono::milliseconds deadline, Events events) {
  const int fd = ::socket(to.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(CLUSTERD_E_IO, std::string("socket: ") + std::strerror(errno));
  std::shared_ptr<Connection> c(
      new Connection(host, self, Role::kDialer, fd, to.text, max_frame, std::move(events)));
  c->expect_node_ = std::move(expect_node);
  c->channel_ = std::move(channel);
  c->index_ = index;
  tune(fd);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&to.addr), to.length);
  if (rc != 0 && errno != EINPROGRESS)
    throw Error(CLUSTERD_E_UNREACHABLE,
                "cannot connect to " + to.text + ": " + std::strerror(errno));
  c->start(deadline, true);
  return c;
}

std::shared_ptr<Connection> Connection::accept(Host &host, const Identity &self, int fd,
                                               std::string peer_text, std::size_t max_frame,
                                               std::chrono::milliseconds deadline, Events events) {
  std::shared_ptr<Connection> c(new Connection(host, self, Role::kAcceptor, fd,
                                               std::move(peer_text), max_frame, std::move(events)));
  tune(fd);
  if (self.tls) {
    c->tls_ = std::make_unique<tls::Session>(*self.tls, fd, false);
    c->phase_ = Phase::kTls;
  } else {
    c->phase_ = Phase::kAwaitHello;
  }
  c->start(deadline, false);
  return c;
}

void Connection::start(std::chrono::milliseconds deadline, bool connecting) {
  std::weak_ptr<Connection> weak = weak_from_this();
  want_write_ = connecting;
  watch_ = FdWatch::watch(host_, fd_, CLUSTERD_FD_READ | (connecting ? CLUSTERD_FD_WRITE : 0u),
                          [weak](std::uint32_t events) {
                            if (auto self = weak.lock()) self->on_ready(events);
                          });
  deadline_ = Timer::after(host_, deadline, [weak] {
    if (auto self = weak.lock())
      if (!self->open()) self->close("handshake timed out");
  });
}

void Connection::on_ready(std::uint32_t events) {
  auto keep = shared_from_this();  // the owner may drop us from inside a callback
  if (phase_ == Phase::kConnecting) {
    if ((events & (CLUSTERD_FD_WRITE | CLUSTERD_FD_ERROR)) != 0) finish_connect();
    return;
  }
  if (phase_ == Phase::kTls) return drive_tls();
  {
    Batch batch;  // the answers to what one read brought (ACKs, PONGs) leave in one write
    if ((events & (CLUSTERD_FD_READ | CLUSTERD_FD_ERROR)) != 0) read_some();
    // Also after a read: a TLS write that wanted the socket readable continues here.
    if (!closed() && (queued() > 0 || tls_wants_write_)) flush();
  }
}

void Connection::finish_connect() {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return close(std::string("cannot connect: ") + std::strerror(err));
  if (self_.tls) {
    try {
      tls_ = std::make_unique<tls::Session>(*self_.tls, fd_, true);
    } catch (const std::exception &e) {
      return close(e.what());
    }
    phase_ = Phase::kTls;
    return drive_tls();
  }
  send_hello();
}

void Connection::drive_tls() {
  std::string error;
  switch (tls_->handshake(error)) {
    case tls::Session::Io::kOk:
      tls_wants_write_ = false;
      if (role_ == Role::kDialer) {
        send_hello();
      } else {
        phase_ = Phase::kAwaitHello;
        update_watch();
        read_some();  // the peer's HELLO may have arrived with its last handshake message
      }
      return;
    case tls::Session::Io::kWantRead:
      tls_wants_write_ = false;
      return update_watch();
    case tls::Session::Io::kWantWrite:
      tls_wants_write_ = true;
      return update_watch();
    case tls::Session::Io::kClosed:
      return close("connection closed during the TLS handshake");
    case tls::Session::Io::kError:
      return close(error);
  }
}

// One recv() (`receiving`) or send() result as an Io: bytes, would-block, end of stream (recv()
// returned 0) or an error.
Connection::Io Connection::io_of(ssize_t rc, bool receiving) {
  Io io;
  if (rc > 0 || (rc == 0 && !receiving)) {
    io.bytes = static_cast<std::size_t>(rc);
  } else if (rc == 0) {
    io.status = Io::kEof;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    io.status = Io::kAgain;
  } else {
    io.status = Io::kError;
    io.error = std::string(receiving ? "receive" : "send") + " failed: " + std::strerror(errno);
  }
  return io;
}

// One TLS read/write result as an Io. TLS may need the socket writable to read (or readable
// to write): the watch follows.
Connection::Io Connection::io_of(tls::Session::Io result, Io io) {
  tls_wants_write_ = result == tls::Session::Io::kWantWrite;
  if (tls_wants_write_) update_watch();
  switch (result) {
    case tls::Session::Io::kOk:
      break;
    case tls::Session::Io::kWantRead:
    case tls::Session::Io::kWantWrite:
      io.status = Io::kAgain;
      break;
    case tls::Session::Io::kClosed:
      io.status = Io::kEof;
      break;
    case tls::Session::Io::kError:
      io.status = Io::kError;
      break;
  }
  return io;
}

Connection::Io Connection::receive(char *buffer, std::size_t n) {
  if (tls_) {
    Io io;
    const auto result = tls_->read(buffer, n, &io.bytes, io.error);
    return io_of(result, std::move(io));
  }
  ssize_t got;
  do got = ::recv(fd_, buffer, n, 0);
  while (got < 0 && errno == EINTR);
  return io_of(got, true);
}

Connection::Io Connection::transmit(const char *buffer, std::size_t n) {
  if (tls_) {
    Io io;
    const auto result = tls_->write(buffer, n, &io.bytes, io.error);
    io = io_of(result, std::move(io));
    if (io.status == Io::kEof) {  // a write cannot end the stream: the peer closed TLS
      io.status = Io::kError;
      io.error = "the peer closed the TLS session";
    }
    return io;
  }
  ssize_t put;
  do put = ::send(fd_, buffer, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (put < 0 && errno == EINTR);
  return io_of(put, false);
}

void Connection::send_hello() {
  my_nonce_ = random_nonce();
  wire::Hello hello{self_.cluster,     self_.node,    channel_,  index_,
                    self_.incarnation, self_.address, my_nonce_, self_.secret.has_value()};
  phase_ = Phase::kAwaitChallenge;
  queue(hello);
}

void Connection::read_some() {
  // TLS may hold decrypted bytes the socket no longer signals: those are always read (at most
  // a record), the socket only kReadsPerEvent times.
  // One scratch buffer for every connection (all on the loop thread): a connection keeps only
  // the bytes of its unfinished frame, not 64 KiB of mostly idle read buffer.
  static char scratch[kReadChunk];
  for (int i = 0; !closed() && (i < kReadsPerEvent || (tls_ && tls_->pending())); ++i) {
    const Io io = receive(scratch, sizeof scratch);
    if (io.status == Io::kEof) return close("connection closed by peer");
    if (io.status == Io::kError) return close(io.error);
    if (io.status == Io::kAgain) break;
    const std::size_t n = io.bytes;
    std::memcpy(reader_.prepare(n), scratch, n);
    reader_.commit(n);
    last_received_ = std::chrono::steady_clock::now();
    wire::Frame frame;
    std::string error;
    while (!closed()) {
      const auto result = reader_.next(frame, error);
      if (result == wire::FrameReader::Result::kNeedMore) break;
      if (result == wire::FrameReader::Result::kError) {
        // A peer of another version learns why (HELLO and REJECT never change layout).
        return close("bad frame: " + error, error);
      }
      handle(frame);
    }
    if (!tls_ && n < kReadChunk) break;  // drained
  }
}

void Connection::handle(wire::Frame &frame) {
  if (auto *reject = std::get_if<wire::Reject>(&frame))
    return close("rejected by peer: " + reject->reason), void();
  if (phase_ != Phase::kOpen) return handle_handshake(frame);
  events_.on_frame(*this, frame);
}

wire::Bytes32 Connection::mac(const std::string &input) const {
  if (!self_.secret) return {};
  return crypto::hmac_sha256(crypto::bytes(*self_.secret), crypto::bytes(input));
}

void Connection::handle_handshake(wire::Frame &frame) {
  const bool have_secret = self_.secret.has_value();
  switch (phase_) {
    case Phase::kAwaitHello: {
      auto *hello = std::get_if<wire::Hello>(&frame);
      if (hello == nullptr) return close("expected HELLO", "expected HELLO");
      peer_node_ = hello->node;  // claimed, for logs until proven
      if (hello->cluster != self_.cluster)
        return close("cluster name mismatch: peer is in '" + hello->cluster + "', this node in '" +
                         self_.cluster + "'",
                     "cluster name mismatch");
      if (!clusterd::valid_node_name(hello->node))
        return close("invalid node name '" + hello->node + "'", "invalid node name");
      if (hello->node == self_.node)
        return close("peer uses this node's own name", "node name is this node's own");
      if (have_secret && !hello->has_secret)
        return close("peer has no cluster secret (this node requires one)",
                     "authentication required: this node has a cluster secret");
      if (!have_secret && hello->has_secret)
        return close("peer has a cluster secret, this node has none",
                     "this node has no cluster secret");
      channel_ = hello->channel;
      index_ = hello->index;
      peer_incarnation_ = hello->incarnation;
      peer_address_ = hello->address;
      peer_nonce_ = hello->nonce;
      my_nonce_ = random_nonce();
      phase_ = Phase::kAwaitAuth;
      return queue(wire::Challenge{my_nonce_, have_secret});
    }
    case Phase::kAwaitChallenge: {
      auto *challenge = std::get_if<wire::Challenge>(&frame);
      if (challenge == nullptr) return close("expected CHALLENGE");
      if (challenge->has_secret != have_secret)
        return close(have_secret ? "peer has no cluster secret (this node requires one)"
                                 : "peer requires a cluster secret, this node has none");
      peer_nonce_ = challenge->nonce;
      phase_ = Phase::kAwaitWelcome;
      return queue(wire::Auth{mac(wire::dialer_mac_input(self_.cluster, my_nonce_, peer_nonce_,
                                                         self_.node, channel_, index_))});
    }
    case Phase::kAwaitAuth: {
      auto *auth = std::get_if<wire::Auth>(&frame);
      if (auth == nullptr) return close("expected AUTH", "expected AUTH");
      const auto expected = mac(wire::dialer_mac_input(self_.cluster, peer_nonce_, my_nonce_,
                                                       peer_node_, channel_, index_));
      if (have_secret && !same_mac(expected, auth->mac))
        return close("authentication failed (a different cluster secret?)",
                     "authentication failed");
      queue(wire::Welcome{self_.node, self_.incarnation, self_.address,
                          mac(wire::acceptor_mac_input(self_.cluster, peer_nonce_, my_nonce_,
                                                       peer_node_, channel_, index_, self_.node))});
      return become_open();
    }
    case Phase::kAwaitWelcome: {
      auto *welcome = std::get_if<wire::Welcome>(&frame);
      if (welcome == nullptr) return close("expected WELCOME");
      const auto expected = mac(wire::acceptor_mac_input(
          self_.cluster, my_nonce_, peer_nonce_, self_.node, channel_, index_, welcome->node));
      if (have_secret && !same_mac(expected, welcome->mac))
        return close("peer failed to prove the cluster secret");
      if (!expect_node_.empty() && welcome->node != expect_node_)
        return close("unexpected peer: dialed " + expect_node_ + ", answered as " + welcome->node,
                     "unexpected peer");
      peer_node_ = welcome->node;
      peer_incarnation_ = welcome->incarnation;
      peer_address_ = welcome->address;
      return become_open();
    }
    default:
      return close("unexpected frame during the handshake");
  }
}

void Connection::become_open() {
  phase_ = Phase::kOpen;
  deadline_ = Timer();
  reader_.set_max_frame(max_frame_);
  events_.on_open(*this);
}

void Connection::queue(const wire::Frame &frame) {
  wire::encode(frame, out_);
  flush();
}

bool Connection::send(const wire::Frame &frame) {
  if (phase_ != Phase::kOpen || queued() > kMaxQueued) return false;
  queue(frame);
  return !closed();
}

bool Connection::send_encoded(std::string_view frames) {
  if (phase_ != Phase::kOpen || queued() > kMaxQueued) return false;
  out_.append(frames);
  flush();
  return !closed();
}

bool Connection::send_message(std::uint64_t id, std::string_view data) {
  if (phase_ != Phase::kOpen || queued() > kMaxQueued) return false;
  wire::encode_message(id, data, out_);
  flush();
  return !closed();
}

void Connection::flush() {
  if (phase_ == Phase::kConnecting || phase_ == Phase::kTls) return;  // HELLO waits its turn
  if (flush_deferred_) return;                                        // the open Batch writes it
  if (queued() < Batch::kMaxDeferred && Batch::defer([weak = weak_from_this()] {
        if (auto self = weak.lock()) {
          self->flush_deferred_ = false;
          if (!self->closed()) self->flush();
        }
      })) {
    flush_deferred_ = true;
    return;
  }
  const bool had_queue = out_offset_ < out_.size();
  while (out_offset_ < out_.size()) {
    const Io io = transmit(out_.data() + out_offset_, out_.size() - out_offset_);
    if (io.status == Io::kAgain) break;
    if (io.status == Io::kError) return close(io.error);
    out_offset_ += io.bytes;
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
    if (out_.capacity() > kKeptCapacity) std::string().swap(out_);  // a burst is over
  } else if (out_offset_ > out_.size() / 2) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  update_watch();
  if (had_queue && out_.empty() && phase_ == Phase::kOpen && events_.on_drained)
    events_.on_drained(*this);
}

void Connection::update_watch() {
  const bool want = out_offset_ < out_.size() || tls_wants_write_;
  if (want == want_write_ || closed()) return;
  want_write_ = want;
  watch_.modify(CLUSTERD_FD_READ | (want ? CLUSTERD_FD_WRITE : 0u));
}

void Connection::close(const std::string &reason, const std::string &reject_reason) {
  if (phase_ == Phase::kClosed) return;
  auto keep = shared_from_this();
  if (!reject_reason.empty() && phase_ != Phase::kConnecting && phase_ != Phase::kTls) {
    out_.erase(0, out_offset_);  // best effort, never blocking: one send of what fits
    out_offset_ = 0;
    wire::encode(wire::Reject{reject_reason}, out_);
    (void)transmit(out_.data(), out_.size());
  }
  if (tls_) {
    tls_->shutdown();
    tls_.reset();
  }
  // A refusal (either side's REJECT, or TLS that did not verify) is news for the log; a peer
  // that merely went away is not.
  const bool rejected = !reject_reason.empty() || reason.rfind("rejected by peer", 0) == 0 ||
                        reason.rfind("TLS ", 0) == 0;
  phase_ = Phase::kClosed;
  watch_ = FdWatch();
  deadline_ = Timer();
  ::close(fd_);
  fd_ = -1;
  out_.clear();
  out_offset_ = 0;
  if (events_.on_closed) events_.on_closed(*this, reason, rejected);
}

}  // namespace clusterd::partisan
