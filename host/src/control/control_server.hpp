// The control socket: a Unix stream socket of JSON lines (docs/control-protocol.md). A host
// command gets one answer line, then the connection closes; a request routed to a plugin opens
// a session that streams lines both ways. Bounded in every dimension; never blocks the loop.
#pragma once

#include <clusterd/control.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "plugin/session.hpp"

namespace clusterd::control {

// Limits of the socket protocol (documented in docs/control-protocol.md).
inline constexpr std::size_t kMaxHostLine = 64 * 1024;           // a host command line
inline constexpr std::size_t kMaxSessionLine = 8 * 1024 * 1024;  // any line of a session
inline constexpr std::size_t kMaxSessions = 256;                 // open sessions per server
inline constexpr std::size_t kMaxConnections = 512;              // sessions + pending clients
inline constexpr std::size_t kMaxBuffered = CLUSTERD_CONTROL_MAX_BUFFERED;

// The socket implements the loader's session interface (plugin/session.hpp): the dependency
// points from control/ to plugin/, never back. kMaxBuffered is Session::send's limit.
using plugin::Session;
using plugin::SessionTarget;

// What the daemon does with a connection's first line: answer it, or route it to `target`.
struct Reply {
  std::string line;
  std::shared_ptr<SessionTarget> target;
};

class ControlServer {
 public:
  using Handler = std::function<Reply(const std::string &request_line)>;
  ControlServer(boost::asio::io_context &io, Handler handler);
  ~ControlServer();

  // Binds `path` (creating its directory; replacing a stale socket, refusing a live one).
  bool listen(const std::string &path, std::string &error);
  void close();
  const std::string &path() const { return path_; }

  struct Shared;  // handler and counters; outlives the server while connections use it

 private:
  void accept();

  boost::asio::io_context &io_;
  std::shared_ptr<Shared> shared_;
  std::string path_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Client side, for clusterctl: sends `request` and returns the response line (5 s timeouts).
bool control_request(const std::string &path, const std::string &request, std::string &response,
                     std::string &error);

// Client side of a session, for clusterctl's streaming commands: sends `request`, then calls
// `on_line` for every line until the server closes or on_line returns false. No receive
// timeout when `timeout_ms` is 0. Returns false (with `error`) if the daemon is unreachable.
bool control_stream(const std::string &path, const std::string &request, int timeout_ms,
                    const std::function<bool(const std::string &line)> &on_line,
                    std::string &error);

}  // namespace clusterd::control
