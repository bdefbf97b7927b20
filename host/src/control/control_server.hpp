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

namespace clusterd::control {

// Limits of the socket protocol (documented in docs/control-protocol.md).
inline constexpr std::size_t kMaxHostLine = 64 * 1024;           // a host command line
inline constexpr std::size_t kMaxSessionLine = 8 * 1024 * 1024;  // any line of a session
inline constexpr std::size_t kMaxSessions = 256;                 // open sessions per server
inline constexpr std::size_t kMaxConnections = 512;              // sessions + pending clients
inline constexpr std::size_t kMaxBuffered = CLUSTERD_CONTROL_MAX_BUFFERED;

class Session;

// The plugin side of sessions (a plugin instance with a control interface).
class SessionTarget {
 public:
  virtual ~SessionTarget() = default;
  // A new session: the target keeps it (weakly) to serve its sink calls.
  virtual void session_opened(const std::shared_ptr<Session> &session) = 0;
  // A line of the client's; false: `error` is answered and the session ends.
  virtual bool session_line(std::uint64_t id, const std::string &line, std::string &error) = 0;
  // The session is over. Always from its own loop turn, never from inside a sink call.
  virtual void session_over(std::uint64_t id) = 0;
};

// One client's session, as the plugin side sees it. [loop-thread]
class Session {
 public:
  virtual ~Session() = default;
  std::uint64_t id() const { return id_; }
  // Queues a line (newline added). CLUSTERD_OK, CLUSTERD_E_NOT_FOUND once the session is over
  // or ending, CLUSTERD_E_AGAIN past kMaxBuffered (the session is then closed at once).
  virtual clusterd_status_t send(std::string_view line) = 0;
  // Closes once the queued lines are written (bounded in time).
  virtual void end() = 0;
  virtual std::size_t buffered() const = 0;

 protected:
  explicit Session(std::uint64_t id) : id_(id) {}

 private:
  std::uint64_t id_;
};

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
