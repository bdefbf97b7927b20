// One overlay TCP connection on the host's fd service: non-blocking connect or accept, the
// handshake of docs/overlay-protocol.md (version, cluster, HMAC challenge-response), then
// frames both ways. The owner gets the open connection's frames and exactly one on_closed().
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <clusterd/plugin.hpp>

#include "tls.hpp"
#include "wire.hpp"

namespace clusterd::partisan {

// What this node says about itself in handshakes, and its credentials.
struct Identity {
  std::string cluster;
  std::string node;
  std::string address;  // advertised host:port
  std::uint64_t incarnation = 0;
  std::optional<std::string> secret;  // the cluster secret (HMAC key); never logged
  std::shared_ptr<tls::Context> tls;  // mutual TLS under the handshake, when configured
};

// A socket address plus its text, for dialing and for logs.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1:9200", "[::1]:9200"
};

// "host:port" (IPv4, or [IPv6]:port) with a literal address; nullopt when it is not one.
std::optional<Endpoint> parse_endpoint(const std::string &text);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Role { kDialer, kAcceptor };
  struct Events {
    std::function<void(Connection &)> on_open;
    std::function<void(Connection &, wire::Frame &)> on_frame;
    // Once, after which nothing else is called. `rejected` tells a refused handshake (the
    // peer or this node said REJECT) from a transport failure.
    std::function<void(Connection &, const std::string &reason, bool rejected)> on_closed;
    // Optional: the send queue was written out (senders held back may go on). Called from
    // inside send calls too: it must not send or close on this connection.
    std::function<void(Connection &)> on_drained;
  };

  // Dials `to`; `expect_node` is the peer it must be (empty: any). `deadline` bounds the dial
  // and the handshake.
  static std::shared_ptr<Connection> dial(Host &host, const Identity &self, const Endpoint &to,
                                          std::string expect_node, std::string channel,
                                          std::uint16_t index, std::size_t max_frame,
                                          std::chrono::milliseconds deadline, Events events);
  // Takes an accepted socket.
  static std::shared_ptr<Connection> accept(Host &host, const Identity &self, int fd,
                                            std::string peer_text, std::size_t max_frame,
                                            std::chrono::milliseconds deadline, Events events);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // Queues a frame (only once open). False when closed or when more than `limit` bytes wait
  // to be written (the peer does not read).
  bool send(const wire::Frame &frame);
  bool send_message(std::uint64_t id, std::string_view data);
  // Queues frames already encoded (the same member list to every member: encoded once).
  bool send_encoded(std::string_view frames);
  // Closes now (idempotent) and calls on_closed(reason) before returning; the object stays
  // valid while its owner holds it. A REJECT with `reject_reason` goes out first if set.
  void close(const std::string &reason, const std::string &reject_reason = {});

  Role role() const { return role_; }
  bool open() const { return phase_ == Phase::kOpen; }
  bool closed() const { return phase_ == Phase::kClosed; }
  // After the handshake: the peer's node, incarnation, advertised address; the channel.
  const std::string &peer_node() const { return peer_node_; }
  std::uint64_t peer_incarnation() const { return peer_incarnation_; }
  const std::string &peer_address() const { return peer_address_; }
  const std::string &channel() const { return channel_; }
  std::uint16_t index() const { return index_; }
  // The remote socket address, for logs ("127.0.0.1:41234").
  const std::string &peer_text() const { return peer_text_; }
  std::size_t queued() const { return out_.size() - out_offset_; }
  // When the last bytes arrived (or the connection opened).
  std::chrono::steady_clock::time_point last_received() const { return last_received_; }

  static constexpr std::size_t kMaxQueued = 64u << 20;  // unwritten bytes per connection

 private:
  enum class Phase {
    kConnecting,
    kTls,
    kAwaitHello,
    kAwaitChallenge,
    kAwaitAuth,
    kAwaitWelcome,
    kOpen,
    kClosed
  };
  // The result of one socket (or TLS) read or write.
  struct Io {
    std::size_t bytes = 0;
    enum { kOk, kAgain, kEof, kError } status = kOk;
    std::string error;
  };
  Connection(Host &host, const Identity &self, Role role, int fd, std::string peer_text,
             std::size_t max_frame, Events events);

  void start(std::chrono::milliseconds deadline, bool connecting);
  void on_ready(std::uint32_t events);
  void finish_connect();
  void drive_tls();
  void send_hello();
  Io receive(char *buffer, std::size_t n);
  Io transmit(const char *buffer, std::size_t n);
  static Io io_of(ssize_t rc, bool receiving);
  Io io_of(tls::Session::Io result, Io io);
  void read_some();
  void handle(wire::Frame &frame);
  void handle_handshake(wire::Frame &frame);
  void flush();
  void update_watch();
  void queue(const wire::Frame &frame);
  void become_open();
  wire::Bytes32 mac(const std::string &input) const;

  Host &host_;
  const Identity &self_;
  Role role_;
  int fd_;
  std::string peer_text_;
  Events events_;
  Phase phase_ = Phase::kConnecting;
  FdWatch watch_;
  Timer deadline_;
  wire::FrameReader reader_;
  std::size_t max_frame_;
  std::string out_;
  std::size_t out_offset_ = 0;
  bool want_write_ = false;
  bool flush_deferred_ = false;   // a Batch (batch.hpp) writes the queue when it ends
  bool tls_wants_write_ = false;  // TLS needs the socket writable to make progress
  std::unique_ptr<tls::Session> tls_;

  std::string expect_node_, channel_;
  std::uint16_t index_ = 0;
  wire::Bytes32 my_nonce_{}, peer_nonce_{};
  std::string peer_node_, peer_address_;
  std::uint64_t peer_incarnation_ = 0;
  std::chrono::steady_clock::time_point last_received_ = std::chrono::steady_clock::now();
};

}  // namespace clusterd::partisan
