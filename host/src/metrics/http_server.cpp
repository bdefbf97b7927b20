#include "metrics/http_server.hpp"

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <array>

#include "util/strings.hpp"

namespace clusterd::metrics {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t kMaxHead = 8 * 1024;
constexpr std::size_t kMaxConnections = 64;
constexpr auto kRequestTimeout = std::chrono::seconds(10);
// The /events stream: at most this many at once (of kMaxConnections), a comment line this often
// (a proxy keeps the stream open, a vanished peer is noticed), and a reader this far behind is
// dropped (its browser reconnects and reloads the status) rather than buffered for.
constexpr std::size_t kMaxStreams = 16;
constexpr auto kKeepalive = std::chrono::seconds(15);
constexpr std::size_t kMaxBehind = 64 * 1024;
constexpr int kStreamSendBuffer = 32 * 1024;
constexpr const char *kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    "Connection: close\r\n\r\n";

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}
}  // namespace

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(asio::io_context &io, Handler handler)
      : io(io), acceptor(io), handler(std::move(handler)) {}

  struct Connection : EventFeed::Listener, std::enable_shared_from_this<Connection> {
    Connection(std::shared_ptr<State> server, tcp::socket socket)
        : server(std::move(server)),
          socket(std::move(socket)),
          timer(this->socket.get_executor()),
          in(kMaxHead) {}
    ~Connection() { --server->connections; }

    void start() {
      timer.expires_after(kRequestTimeout);
      timer.async_wait([weak = weak_from_this()](const boost::system::error_code &ec) {
        if (auto self = weak.lock(); self && !ec) self->socket.close();
      });
      asio::async_read_until(socket, in, "\r\n\r\n",
                             [self = shared_from_this()](const boost::system::error_code &ec,
                                                         std::size_t n) { self->on_head(ec, n); });
    }

    void on_head(const boost::system::error_code &ec, std::size_t n) {
      if (ec) {
        // Too long a head fills the streambuf's limit: answer 400 rather than drop silently.
        if (ec == asio::error::not_found)
          reply({400, "text/plain; charset=utf-8", "request too large\n"}, false);
        return;
      }
      std::string_view head(static_cast<const char *>(in.data().data()), n);
      auto request = parse_request_head(head);
      if (!request) return reply({400, "text/plain; charset=utf-8", "bad request\n"}, false);
      if (request->path == "/events" && server->feed) {
        if (request->method == "GET") return start_stream();
        if (request->method == "HEAD") return send_and_close(kStreamHead);  // what GET would say
      }
      bool head_only = request->method == "HEAD";
      if (request->method != "GET" && !head_only)
        return reply({405, "text/plain; charset=utf-8", "only GET and HEAD\n"}, false);
      reply(server->handler(*request), head_only);
    }

    void reply(const Answer &answer, bool head_only) {
      auto text = fmt::format(
          "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
          answer.status, reason(answer.status), answer.content_type, answer.body.size());
      if (!head_only) text += answer.body;
      send_and_close(std::move(text));
    }

    void send_and_close(std::string text) {
      out = std::move(text);
      asio::async_write(
          socket, asio::buffer(out),
          [self = shared_from_this()](const boost::system::error_code &, std::size_t) {
            boost::system::error_code ignored;
            self->socket.shutdown(tcp::socket::shutdown_both, ignored);
            self->timer.cancel();
          });
    }

    // Server-sent events: the feed's events as they come, until the peer closes or falls behind.
    void start_stream() {
      timer.cancel();
      if (server->streams() >= kMaxStreams)
        return reply({503, "text/plain; charset=utf-8", "too many event streams\n"}, false);
      // A fixed kernel send buffer too (loopback would grow it to megabytes): a stalled reader
      // holds at most that plus kMaxBehind.
      boost::system::error_code ignored;
      socket.set_option(asio::socket_base::send_buffer_size(kStreamSendBuffer), ignored);
      server->stream_connections.push_back(weak_from_this());
      server->feed->listen(weak_from_this());
      pending = std::string(kStreamHead) + "retry: 1000\n\n";
      flush();
      watch_peer();
      keepalive();
    }

    void on_event(const nlohmann::json &event) override {
      if (!socket.is_open()) return;
      if (pending.size() > kMaxBehind) return close();  // a slow reader: drop it
      pending += fmt::format("id: {}\ndata: {}\n\n", event.value("seq", 0),
                             event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      flush();
    }

    void flush() {
      if (writing || pending.empty() || !socket.is_open()) return;
      writing = true;
      out.swap(pending);
      pending.clear();
      asio::async_write(
          socket, asio::buffer(out),
          [self = shared_from_this()](const boost::system::error_code &ec, std::size_t) {
            self->writing = false;
            if (ec) return self->close();
            self->flush();
          });
    }

    // A browser sends nothing more: reading only notices that the peer closed.
    void watch_peer() {
      socket.async_read_some(
          asio::buffer(discard),
          [self = shared_from_this()](const boost::system::error_code &ec, std::size_t) {
            if (ec) return self->close();
            self->watch_peer();
          });
    }

    void keepalive() {
      timer.expires_after(kKeepalive);
      timer.async_wait([weak = weak_from_this()](const boost::system::error_code &ec) {
        auto self = weak.lock();
        if (!self || ec || !self->socket.is_open()) return;
        self->pending += ": keepalive\n\n";
        self->flush();
        self->keepalive();
      });
    }

    void close() {
      boost::system::error_code ignored;
      socket.close(ignored);
      timer.cancel();
    }

    std::shared_ptr<State> server;
    tcp::socket socket;
    asio::steady_timer timer;
    asio::streambuf in;
    std::string out, pending;
    bool writing = false;
    std::array<char, 256> discard{};
  };

  std::size_t streams() {
    std::erase_if(stream_connections, [](const auto &weak) { return weak.expired(); });
    return stream_connections.size();
  }

  void accept() {
    acceptor.async_accept(
        [weak = weak_from_this()](const boost::system::error_code &ec, tcp::socket socket) {
          auto self = weak.lock();
          if (!self || ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (!ec && self->connections < kMaxConnections) {
            ++self->connections;
            std::make_shared<Connection>(self, std::move(socket))->start();
          }
          self->accept();
        });
  }

  asio::io_context &io;
  tcp::acceptor acceptor;
  Handler handler;
  EventFeed *feed = nullptr;
  std::size_t connections = 0;
  std::vector<std::weak_ptr<Connection>> stream_connections;
};

HttpServer::HttpServer(asio::io_context &io, Handler handler, EventFeed *feed)
    : state_(std::make_shared<State>(io, std::move(handler))) {
  state_->feed = feed;
}

HttpServer::~HttpServer() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->feed = nullptr;
  for (const auto &weak : state_->stream_connections)
    if (auto stream = weak.lock()) stream->close();
  state_->handler = [](const RequestHead &) { return Answer{503, "text/plain", "stopping\n"}; };
}

bool HttpServer::listen(const std::string &address, std::string &error) {
  auto parts = util::split_host_port(address);
  boost::system::error_code ec;
  auto ip = parts ? asio::ip::make_address(parts->host, ec) : asio::ip::address();
  if (!parts || ec) {
    error = "metrics_listen '" + address + "': expected IP:PORT";
    return false;
  }
  tcp::endpoint endpoint(ip, parts->port);
  auto &acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint bound;
  if (!ec) bound = acceptor.local_endpoint(ec);
  if (ec) {
    error = "metrics_listen " + address + ": " + ec.message();
    acceptor.close(ec);
    return false;
  }
  address_ = bound.address().is_v6()
                 ? fmt::format("[{}]:{}", bound.address().to_string(), bound.port())
                 : fmt::format("{}:{}", bound.address().to_string(), bound.port());
  state_->accept();
  return true;
}

}  // namespace clusterd::metrics
