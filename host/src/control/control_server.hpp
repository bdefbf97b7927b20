// The control socket: a Unix stream socket of JSON lines (docs/control-protocol.md). A host
// command gets one answer line, then the connection closes; a request routed to a plugin opens
// a session that streams lines both ways. Bounded in every dimension; never blocks the loop.
#pragma once

#include <clusterd/control.h>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugin/session.hpp"

namespace clusterd::control {

// Limits of the socket protocol (documented in docs/control-protocol.md).
inline constexpr std::size_t kMaxHostLine = 64 * 1024;           // a host command line
inline constexpr std::size_t kMaxSessionLine = 8 * 1024 * 1024;  // any line of a session
inline constexpr std::size_t kMaxDepth = 32;  // nesting of a first line's JSON, checked first
// Bytes of unfinished input lines held across all connections: one client may fill it, then
// the next connection that needs more is closed with an error (the others go on).
inline constexpr std::size_t kMaxInput = 32 * 1024 * 1024;
inline constexpr std::size_t kMaxSessions = 256;     // open sessions per server
inline constexpr std::size_t kMaxConnections = 512;  // sessions + pending clients
inline constexpr std::size_t kMaxBuffered = CLUSTERD_CONTROL_MAX_BUFFERED;

// The socket implements the loader's session interface (plugin/session.hpp): the dependency
// points from control/ to plugin/, never back. kMaxBuffered is Session::send's limit.
using plugin::Session;
using plugin::SessionTarget;

// Who is at the other end of a connection (SO_PEERCRED, SO_PEERGROUPS), as the kernel says.
struct Peer {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;  // supplementary groups
};

// What a peer may ask: nothing, read-only requests, or everything.
enum class Access { none, read, all };

// The allow-lists ([clusterd] control_allow_* / control_read_*). All empty: whoever can open
// the socket (its file mode) may ask anything. Root and the daemon's own uid may always.
struct AccessPolicy {
  std::vector<uid_t> uids, read_uids;
  std::vector<gid_t> groups, read_groups;
  Access of(const Peer &peer) const;
};

// A connection's first line, parsed once (depth-bounded; a discarded value if it is not JSON).
struct Request {
  const nlohmann::json &document;
  std::size_t size;  // bytes of the line
  const Peer &peer;
  Access access;
};

// What the daemon does with a connection's first line: answer it, or route it to `target`.
struct Reply {
  std::string line;
  std::shared_ptr<SessionTarget> target;
  bool read_only = true;  // the request changes nothing (logged at debug, else at info)
  std::string what;       // for the log: "status", "transport 'x' send" (escaped)
};

class ControlServer {
 public:
  using Handler = std::function<Reply(const Request &request)>;
  ControlServer(boost::asio::io_context &io, Handler handler);
  ~ControlServer();

  // Binds `path` (creating its directory). An existing socket nobody listens on is replaced;
  // a live one, or anything that is not a socket, is an error naming the path. Never blocks.
  bool listen(const std::string &path, std::string &error);
  void close();
  const std::string &path() const { return path_; }
  // True if `path` names the socket this server listens on (by device and inode, so
  // "/tmp/x/./r.sock" and a path through a symlinked directory count as the same).
  bool listens_at(const std::string &path) const;
  void set_access(AccessPolicy policy);

  struct Shared;  // handler and counters; outlives the server while connections use it

 private:
  void accept();

  boost::asio::io_context &io_;
  std::shared_ptr<Shared> shared_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Client side, for clusterctl: sends `request` and returns the response line (5 s deadline).
bool control_request(const std::string &path, const std::string &request, std::string &response,
                     std::string &error);

// Client side of a session, for clusterctl's streaming commands: sends `request`, then calls
// `on_line` for every line until the server closes or on_line returns false. `timeout_ms`
// bounds the whole exchange (0: none once connected; connecting is always bounded to 5 s).
// Returns false (with `error`) if the daemon is unreachable or the deadline passes.
bool control_stream(const std::string &path, const std::string &request, int timeout_ms,
                    const std::function<bool(const std::string &line)> &on_line,
                    std::string &error);

}  // namespace clusterd::control
